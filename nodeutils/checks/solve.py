"""Checks of what enters an ODE solve: the method, time span, tolerances, state, options and f itself.

:func:`~nodeutils.sensitivity.odeint` and :func:`~nodeutils.solve.integrate` call them once per solve (not per
step), and the layers once when they are built.
"""

from __future__ import annotations

import functools
import inspect
import math
import types
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.compiler import is_compiling
from torch.utils import _pytree as pytree
from torchdiffeq._impl.odeint import SOLVERS
from torchdiffeq._impl.rk_common import RKAdaptiveStepsizeODESolver

from ..errors import InputError
from .values import check_bool, check_callable, check_choice, check_int, check_number, describe

__all__ = ["available_methods", "adaptive_methods", "check_method", "check_time_span", "check_tolerances",
           "check_state", "check_precision", "solver_options", "check_options", "VJP_CHOICES", "check_vjp",
           "check_checkpoints", "check_func", "check_solve_entry", "MAX_FIXED_STEPS"]

#: How vector-Jacobian products can be computed (``autojacvec=`` of the continuous adjoints).
VJP_CHOICES = ("autograd", "func", "jacobian")

#: A fixed-step solve with more steps than this is refused (its grid alone would fill the memory).
MAX_FIXED_STEPS = 10**7


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


def check_time_span(t: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """Return ``t`` as a 1-D tensor after checking it is finite and strictly monotone.

    Under ``torch.compile`` only the type and shape are checked.

    Args:
        t: the times, a tensor or a sequence (list, tuple, NumPy array) of real numbers.

    Returns:
        ``t`` as a 1-D floating-point tensor: a list or tuple in float64, integer tensors in the default dtype.

    Raises:
        InputError: ``t`` is not a 1-D sequence of at least two real numbers, holds NaN or infinity, or is not
            strictly increasing or strictly decreasing.
    """
    if not isinstance(t, torch.Tensor):
        if isinstance(t, (str, bytes)) or not isinstance(t, (Sequence, np.ndarray)):
            raise InputError(f"the time span must be a sequence of at least two times, like (0.0, 1.0); "
                             f"got {describe(t)}")
        values = t
        try:
            t = torch.as_tensor(values)
            if not isinstance(values, np.ndarray) and not (t.is_complex() or t.dtype == torch.bool):
                t = torch.as_tensor(values, dtype=torch.float64)  # Python floats are float64: no rounding to float32
        except (TypeError, ValueError, RuntimeError):
            raise InputError(f"the time span must hold numbers only, like (0.0, 1.0); got {describe(values)}") from None
    if t.is_complex() or t.dtype == torch.bool:
        raise InputError(f"the time span must hold real numbers, like (0.0, 1.0); got dtype {t.dtype}")
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if t.ndim != 1 or t.numel() < 2:
        raise InputError(
            f"the time span must be a 1-D sequence of at least two times, like (0.0, 1.0); got shape {tuple(t.shape)}"
        )
    if is_compiling():  # value checks would break the graph; layers check their span when built
        return t
    # One read-back, then plain Python: a real floating-point value reads back exactly, and two different
    # values compare as their difference's sign would (a difference of distinct floats is never rounded to 0).
    times = t.detach().tolist()
    if all(map(math.isfinite, times)) and (all(a < b for a, b in zip(times, times[1:]))
                                           or all(a > b for a, b in zip(times, times[1:]))):
        return t
    if not all(map(math.isfinite, times)):
        raise InputError(f"the time span contains NaN or infinity: {t.tolist()}")
    raise InputError(
        f"the time span must be strictly increasing (or strictly decreasing to integrate backward); "
        f"got {t.tolist()}: sort it and remove repeated times"
    )


def check_tolerances(rtol: float, atol: float) -> None:
    """Check the tolerances of an adaptive solve.

    Args:
        rtol: the relative tolerance.
        atol: the absolute tolerance.

    Raises:
        InputError: either is not one positive finite number.
    """
    for name, value in (("rtol", rtol), ("atol", atol)):
        check_number(name, value, example="1e-3")


def check_state(y0: object, *, name: str = "the initial state") -> torch.Tensor:
    """Return ``y0`` if it is a non-empty float32 or float64 tensor.

    Args:
        y0: the initial state.
        name: how the message names it.

    Returns:
        ``y0`` unchanged.

    Raises:
        InputError: ``y0`` is not a tensor, is empty, or its dtype is not float32 or float64.
    """
    if not isinstance(y0, torch.Tensor):
        convertible = isinstance(y0, (np.ndarray, list))
        fix = ": convert it with torch.as_tensor(..., dtype=torch.float32)" if convertible else ""
        raise InputError(f"{name} must be a tensor; got {type(y0).__name__}{fix}")
    if y0.dtype in (torch.float16, torch.bfloat16):
        raise InputError(
            f"{name} has dtype {y0.dtype}, which resolves only about {2 if y0.dtype == torch.bfloat16 else 3} "
            "significant digits: the solver's error control cannot work in it. Solve in float32 or float64 "
            "(y0.float(), or model.float() for a model)"
        )
    if not y0.is_floating_point():
        kind = "complex" if y0.is_complex() else "integer"
        raise InputError(f"{name} must be a floating-point tensor (float32 or float64); got the {kind} dtype "
                         f"{y0.dtype}: call .float()")
    if y0.numel() == 0:
        raise InputError(f"{name} is empty (shape {tuple(y0.shape)}): there is nothing to solve. For a model, "
                         "pass a batch of at least one image")
    return y0


def check_precision(dtype: torch.dtype, rtol: float, atol: float) -> None:
    """Refuse tolerances far below what ``dtype`` resolves: the solver would crawl to its step limit.

    Args:
        dtype: the state's floating-point dtype.
        rtol: the relative tolerance.
        atol: the absolute tolerance.

    Raises:
        InputError: both tolerances are below 1e-3 times the machine epsilon of ``dtype``.
    """
    eps = torch.finfo(dtype).eps
    floor = 1e-3 * eps
    if float(rtol) < floor and float(atol) < floor:
        raise InputError(
            f"rtol={float(rtol):g} and atol={float(atol):g} ask for more accuracy than a {dtype} state can hold "
            f"(machine epsilon {eps:.1e}): loosen them to at least {floor:.0e}, or solve in float64 (y0.double())"
        )


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


def check_vjp(autojacvec: object) -> str:
    """``autojacvec`` if it names a VJP choice; Julia's ``autojacvec=false`` gets a pointer to ``"jacobian"``.

    Args:
        autojacvec: one of :data:`VJP_CHOICES`.

    Returns:
        ``autojacvec`` unchanged.

    Raises:
        InputError: ``autojacvec`` is not one of :data:`VJP_CHOICES`.
    """
    hint = "Julia's autojacvec=false is autojacvec='jacobian' here" if isinstance(autojacvec, bool) else ""
    return check_choice("autojacvec", autojacvec, VJP_CHOICES, hint)


def check_checkpoints(checkpoints: object) -> list[float]:
    """The checkpoint times of an adjoint as a list of floats.

    Args:
        checkpoints: the times, a list, tuple, NumPy array or 0-D/1-D tensor of real numbers.

    Returns:
        The times as Python floats, in the given order (not checked against the time span).

    Raises:
        InputError: ``checkpoints`` is not such a sequence, or a time is not a finite number.
    """
    if isinstance(checkpoints, torch.Tensor):
        checkpoints = checkpoints.detach().reshape(-1).tolist() if checkpoints.ndim <= 1 else checkpoints
    if isinstance(checkpoints, (str, bytes, dict)) or not isinstance(checkpoints, (Sequence, np.ndarray)):
        raise InputError(f"checkpoints must be a list of times inside the time span, like [0.5]; got "
                         f"{describe(checkpoints)}")
    return [check_number(f"checkpoints[{i}]", c, positive=False) for i, c in enumerate(checkpoints)]


#: Signatures already found callable as f(t, y) / f(t, y, params): (code, defaults, keyword defaults, params?).
_CALLABLE_SIGNATURES: set[tuple] = set()


def check_func(func: object, params: object) -> None:
    """Refuse a func that is not callable or cannot be called as f(t, y) (or f(t, y, params)).

    Callables whose signature Python cannot read are accepted.

    Args:
        func: the right-hand side, a function or an ``nn.Module`` (judged by its ``forward``).
        params: the explicit parameters passed with it (``None``: it is called as f(t, y)).

    Raises:
        InputError: ``func`` is not callable, or its signature does not take those arguments.
    """
    if not callable(func):
        raise InputError(f"func must be an nn.Module or a callable f(t, y[, params]); got {describe(func)}")
    key = None
    if isinstance(func, types.FunctionType) and not hasattr(func, "__wrapped__") and not hasattr(func, "__signature__"):
        # A function's signature is fixed by its code and which arguments have defaults, so the closures one
        # `def` makes on every call (a layer's right-hand side) are checked once.
        key = (func.__code__, len(func.__defaults__ or ()), frozenset(func.__kwdefaults__ or ()), params is None)
        if key in _CALLABLE_SIGNATURES:
            return
    try:
        # a module is called through forward (the module's own signature is (*args, **kwargs))
        signature = inspect.signature(func.forward if isinstance(func, torch.nn.Module) else func)
    except (TypeError, ValueError):  # builtins and some C callables have no signature: let them run
        return
    wanted = "(t, y)" if params is None else "(t, y, params)"
    args = (0.0, 0.0) if wanted == "(t, y)" else (0.0, 0.0, 0.0)
    try:
        signature.bind(*args)
    except TypeError:
        if isinstance(func, torch.nn.Module):
            fix = ("odeint finds a module's parameters itself: drop params=" if params is not None
                   else "give it forward(self, t, y), or wrap it, e.g. lambda t, y: module(y)")
            raise InputError(f"the module {type(func).__name__} is called as forward{wanted}, but its forward takes "
                             f"{signature}: {fix}") from None
        fix = ("pass the parameters with params=..." if wanted == "(t, y)" and len(signature.parameters) == 3
               else f"wrap it, e.g. lambda t, y{', params' if params is not None else ''}: f(y)")
        raise InputError(f"func is called as f{wanted}, but its signature is {signature}: {fix}") from None
    if key is not None:
        _CALLABLE_SIGNATURES.add(key)


def check_solve_entry(func: object, y0: torch.Tensor, t: torch.Tensor, params: Any, options: dict) -> None:
    """Once per solve: parameters in the state's dtype and on its device; a step size that fits the span.

    Args:
        func: the right-hand side (a module's own parameters are checked when ``params`` is ``None``).
        y0: the checked initial state.
        t: the checked time span.
        params: the explicit parameters (a tensor, or a dict/tuple of tensors), or ``None``.
        options: the checked solver options.

    Raises:
        InputError: a floating-point parameter in another dtype than ``y0``, a parameter on another device, or a
            ``step_size`` longer than the span or needing more than :data:`MAX_FIXED_STEPS` steps.
    """
    leaves = (list(func.parameters()) if isinstance(func, torch.nn.Module) and params is None
              else [x for x in pytree.tree_flatten(params)[0] if isinstance(x, torch.Tensor)])
    for leaf in leaves:
        if leaf.is_floating_point() and leaf.numel() and leaf.dtype != y0.dtype:
            raise InputError(f"the state is {y0.dtype} but the parameters of f are {leaf.dtype}: convert one to the "
                             f"other, e.g. the state with y0.to({leaf.dtype}) or the network with "
                             f"network.to({y0.dtype})")
        if leaf.device != y0.device:
            raise InputError(f"the state is on {y0.device} but the parameters of f are on {leaf.device}: move one to "
                             f"the other, e.g. y0.to({str(leaf.device)!r})")
    step = options.get("step_size")
    if step is not None and len(t) >= 2:
        span = float(abs(t[-1] - t[0]))
        if step > span > 0:
            raise InputError(f"options['step_size']={step:g} is longer than the time span ({span:g}), so the solver "
                             f"would take a single step across it: choose a step size well below {span:g}")
        if span / step > MAX_FIXED_STEPS:
            raise InputError(f"options['step_size']={step:g} would take {span / step:.3g} steps over the span "
                             f"{span:g} (more than {MAX_FIXED_STEPS:.0e}; they would not fit in memory): choose a "
                             "larger step size")
