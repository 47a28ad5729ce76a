"""Checks of what enters an ODE solve: the time span, tolerances, state, checkpoints and f itself.

:func:`~nodeutils.sensitivity.odeint` and :func:`~nodeutils.solve.integrate` call them once per solve (not per
step), and the layers once when they are built.
"""

from __future__ import annotations

import inspect
import math
import types
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.compiler import is_compiling
from torch.utils import _pytree as pytree

from ..errors import InputError
from .values import check_choice, check_number, describe

__all__ = ["check_time_span", "check_tolerances", "check_state", "check_precision", "VJP_CHOICES", "check_vjp",
           "check_checkpoints", "check_func", "check_solve_entry", "MAX_FIXED_STEPS"]

#: How vector-Jacobian products can be computed (``autojacvec=`` of the continuous adjoints).
VJP_CHOICES = ("autograd", "func", "jacobian")

#: A fixed-step solve with more steps than this is refused (its grid alone would fill the memory).
MAX_FIXED_STEPS = 10**7


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
