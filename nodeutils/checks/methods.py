"""Checks of the solver's name and of its ``options={...}``, read from torchdiffeq's solver classes.

A solver's accepted options are read from its constructor's signature, so a misspelt option is named
with the list of those the solver takes, and a value that would fail deep inside torchdiffeq is refused
with its range.
"""

from __future__ import annotations

import functools
import inspect

import torch
from torchdiffeq._impl.odeint import SOLVERS
from torchdiffeq._impl.rk_common import RKAdaptiveStepsizeODESolver

from ..errors import InputError
from .values import check_bool, check_callable, check_choice, check_int, check_number, describe

__all__ = ["available_methods", "adaptive_methods", "check_method", "solver_options", "check_options"]


def available_methods() -> list[str]:
    """Names accepted as ``method=`` / ``solver=``.

    Returns:
        The solver names registered with torchdiffeq, sorted (``"scipy_solver"`` left out).
    """
    return sorted(name for name in SOLVERS if name != "scipy_solver")


@functools.cache
def adaptive_methods() -> tuple[str, ...]:
    """Methods with step-size control and dense output (required by the continuous adjoints).

    Returns:
        Their names, sorted.
    """
    return tuple(sorted(
        n for n, cls in SOLVERS.items() if isinstance(cls, type) and issubclass(cls, RKAdaptiveStepsizeODESolver)
    ))


def check_method(method: str, *, need_dense: bool = False) -> str:
    """Return ``method`` if it names a solver, else raise :class:`InputError` listing the choices.

    Args:
        method: the solver's name.
        need_dense: whether only :func:`adaptive_methods` are allowed (for an adjoint that needs dense output).

    Returns:
        ``method`` unchanged.

    Raises:
        InputError: ``method`` is not one of the allowed names.
    """
    names = adaptive_methods() if need_dense else available_methods()
    if not isinstance(method, str) or method not in names:
        what = ("an adaptive Runge-Kutta solver (dense output is needed: by the continuous adjoints, or dense=True)"
                if need_dense else "a solver")
        raise InputError(f"unknown solver {method!r}: expected {what}, one of {', '.join(names)}")
    return method


@functools.cache
def solver_options(method: str) -> tuple[str, ...]:
    """Names accepted in ``options={...}`` by ``method`` (read from the solver's constructor).

    Args:
        method: a solver's name, one of :func:`available_methods` (not checked).

    Returns:
        The option names, sorted.
    """
    names = {"norm"}
    for cls in SOLVERS[method].__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in _NOT_OPTIONS:
                names.add(p.name)
    return tuple(sorted(names))


_NOT_OPTIONS = {"self", "func", "y0", "rtol", "atol"}
_POSITIVE_OPTIONS = ("step_size", "first_step", "max_step", "safety", "ifactor", "dfactor")


def check_options(method: str, options: object) -> dict:
    """Return ``options`` as a new dict after checking every name and value against ``method``.

    Fixed-step methods need ``step_size`` (or ``grid_constructor``): without it torchdiffeq takes a
    single step per output interval, so ``method="euler"`` over (0, 1) would be one Euler step.

    Args:
        method: the solver's name, already checked by :func:`check_method`.
        options: the solver options, a dict or ``None`` (no options).

    Returns:
        A new dict: numbers as ``float`` (``max_num_steps`` as ``int``), ``jump_t``/``step_t`` as tensors.

    Raises:
        InputError: ``options`` is not a dict, holds a name ``method`` does not take or a value out of range, or
            a fixed-step method has neither ``step_size`` nor ``grid_constructor``.
    """
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise InputError(f"options must be a dict such as {{'max_num_steps': 1000}}; got {describe(options)}")
    allowed = solver_options(method)
    unknown = sorted(str(k) for k in options if k not in allowed)
    if unknown:
        raise InputError(f"option {', '.join(map(repr, unknown))} is not understood by method={method!r}: "
                         f"it accepts {', '.join(allowed)}")
    out = dict(options)
    for key in _POSITIVE_OPTIONS:
        if key in out and out[key] is not None:
            out[key] = check_number(f"options[{key!r}]", out[key])
    if "max_num_steps" in out:
        out["max_num_steps"] = check_int("options['max_num_steps']", out["max_num_steps"], minimum=1)
    _check_option_values(out)
    if method not in adaptive_methods() and out.get("step_size") is None and out.get("grid_constructor") is None:
        raise InputError(
            f"method={method!r} takes fixed steps and was given no step size, so it would take one step per "
            f"output interval: pass options={{'step_size': 0.01}} (a step size suited to your problem), or "
            "use an adaptive method such as 'tsit5'"
        )
    return out


def _check_option_values(out: dict) -> None:
    """Range and kind of the option values whose wrong values would fail deep inside torchdiffeq (in place)."""
    for key, usual in (("safety", "0.9"), ("dfactor", "0.2")):  # already checked to be positive
        if out.get(key) is not None and not out[key] <= 1:
            raise InputError(f"options[{key!r}]={out[key]:g} must lie between 0 and 1 for the step-size controller "
                             f"to work (the usual value is {usual})")
    if out.get("ifactor") is not None and not out["ifactor"] > 1:
        raise InputError(f"options['ifactor']={out['ifactor']:g} must be above 1 (it is how much a step may grow; "
                         "the usual value is 10)")
    if out.get("min_step") is not None:
        out["min_step"] = check_number("options['min_step']", out["min_step"], positive=False)
        if out["min_step"] < 0:
            raise InputError(f"options['min_step'] must be 0 or more; got {out['min_step']:g}")
        if out.get("max_step") is not None and out["max_step"] < out["min_step"]:
            raise InputError(f"options['max_step']={out['max_step']:g} is below options['min_step']="
                             f"{out['min_step']:g}: swap them")
    for key, what in (("norm", "a function of one tensor returning its size, such as torch.linalg.vector_norm"),
                      ("grid_constructor", "a function (func, y0, t) -> tensor of grid times")):
        if out.get(key) is not None:
            check_callable(f"options[{key!r}]", out[key], what)
    if out.get("dtype") is not None and out["dtype"] not in (torch.float32, torch.float64):
        raise InputError(f"options['dtype'] is the dtype of the solver's time variable and must be torch.float32 or "
                         f"torch.float64; got {describe(out['dtype'])}")
    if "interp" in out:
        check_choice("options['interp']", out["interp"], ("linear", "cubic"))
    if "perturb" in out:
        out["perturb"] = check_bool("options['perturb']", out["perturb"])
    for key in ("jump_t", "step_t"):
        if out.get(key) is not None:
            value = out[key]
            try:
                times = torch.as_tensor(value, dtype=torch.float64)
            except (TypeError, ValueError, RuntimeError):
                times = None
            if isinstance(value, (str, bytes, dict)) or times is None or times.ndim != 1 \
                    or not bool(torch.isfinite(times).all()):
                raise InputError(f"options[{key!r}] must be a 1-D list or tensor of finite times, like [0.5]; got "
                                 f"{describe(value)}")
            out[key] = value if isinstance(value, torch.Tensor) else times
