"""The entry points: :func:`odeint` and :func:`make_sensealg` (names, and the one meaning of ``"default"``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.compiler import is_compiling

from ..checks import (
    check_choice,
    check_func,
    check_keywords,
    check_method,
    check_options,
    check_precision,
    check_solve_entry,
    check_state,
    check_time_span,
    check_tolerances,
    check_vjp,
    describe,
)
from ..errors import InputError
from .continuous import InterpolatingAdjoint, _ContinuousAdjoint
from .discrete import AutogradAdjoint, BacksolveAdjoint
from .problem import SensitivityAlgorithm, SolveStats, build_problem
from .quadrature import GaussAdjoint, QuadratureAdjoint

__all__ = ["DEFAULT_SENSEALG", "SENSEALG_NAMES", "make_sensealg", "odeint"]


#: Short names (as used by the CLI) -> algorithm classes.
SENSEALG_NAMES = {cls.name: cls for cls in
                  (AutogradAdjoint, BacksolveAdjoint, InterpolatingAdjoint, QuadratureAdjoint, GaussAdjoint)}

#: What ``sensealg="default"`` means (in create_model, train and the CLI): the tutorial's InterpolatingAdjoint.
DEFAULT_SENSEALG = "interpolating"


def make_sensealg(
    name: str | SensitivityAlgorithm | None, vjp: str | None = None, **kwargs: Any
) -> SensitivityAlgorithm:
    """Build an algorithm from its short name (``"gauss"``) and a VJP choice; objects pass through.

    ``"default"`` is the tutorial's InterpolatingAdjoint (:data:`DEFAULT_SENSEALG`), here and wherever
    a ``sensealg`` name is taken. ``vjp`` (default ``"autograd"``) applies to the continuous adjoints
    (interpolating, quadrature, gauss). The discrete (``"autograd"``) and backsolve algorithms get their
    products from autograd, so another ``vjp`` for them is refused rather than ignored.

    Args:
        name: ``"autograd"``, ``"backsolve"``, ``"interpolating"``, ``"quadrature"``, ``"gauss"`` (or
            ``"default"``), an algorithm object (returned as it is), or ``None`` for ``"autograd"``.
        vjp: ``"autograd"``, ``"func"`` or ``"jacobian"``: how vector-Jacobian products are computed.
        **kwargs: further settings of the algorithm's constructor (e.g. ``checkpointing=True``).

    Returns:
        The sensitivity algorithm.

    Raises:
        InputError: an unknown name, a ``vjp`` the algorithm cannot use, or settings it does not take.
    """
    if isinstance(name, type) and issubclass(name, SensitivityAlgorithm):
        raise InputError(f"sensealg must be an algorithm object, not the class {name.__name__}: "
                         f"write {name.__name__}() with parentheses")
    if vjp is not None:
        vjp = check_vjp(vjp)
    if isinstance(name, SensitivityAlgorithm):
        if kwargs:
            raise InputError(f"settings {sorted(kwargs)} cannot be applied to the ready-made {name!r}: "
                             f"pass them to its constructor instead")
        own = getattr(name, "autojacvec", "autograd")
        if vjp is not None and vjp != own:
            raise InputError(f"vjp={vjp!r} conflicts with {name!r}, which uses autojacvec={own!r}: "
                             f"build it with autojacvec={vjp!r}, or drop vjp")
        return name
    if name is None:
        name = "autograd"
    elif not isinstance(name, str):
        raise InputError(f"sensealg must be an algorithm object such as InterpolatingAdjoint(), or one of the names "
                         f"default, {', '.join(SENSEALG_NAMES)}; got {describe(name)}")
    elif name == "default":
        name = DEFAULT_SENSEALG
    name = check_choice("sensitivity algorithm", name, SENSEALG_NAMES)
    cls = SENSEALG_NAMES[name]
    continuous = issubclass(cls, _ContinuousAdjoint)
    if not continuous and vjp not in (None, "autograd"):
        raise InputError(
            f"vjp={vjp!r} has no effect with the {name!r} algorithm (it takes its products from autograd): "
            f"drop it, or choose a continuous adjoint that uses it: interpolating, quadrature or gauss"
        )
    if continuous:
        kwargs = {"autojacvec": vjp or "autograd", **kwargs}
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    check_keywords(cls.__name__, kwargs, accepted)
    return cls(**kwargs)


def odeint(
    func: torch.nn.Module | Callable,
    y0: torch.Tensor,
    t: torch.Tensor | Sequence[float],
    *,
    method: str = "tsit5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    sensealg: SensitivityAlgorithm | str | None = None,
    options: dict | None = None,
    params: Any = None,
    stats: SolveStats | None = None,
) -> torch.Tensor:
    """Solve dy/dt = func(t, y) at the times ``t``; gradients flow back by ``sensealg``.

    Same call as ``torchdiffeq.odeint`` plus ``sensealg`` (default: :class:`AutogradAdjoint`, i.e.
    backprop through the solver), ``params`` (explicit parameters for a callable ``func(t, y, params)``)
    and ``stats`` (a :class:`SolveStats` to receive function-evaluation counts). ``y0`` must be a
    float32 or float64 tensor; fixed-step methods (``"euler"``, ``"rk4"`` ...) need
    ``options={"step_size": h}``.

    Args:
        func: the right-hand side, ``func(t, y)`` (or ``func(t, y, params)`` when ``params`` is given).
        y0: the initial state, a float32 or float64 tensor.
        t: increasing (or decreasing) times at which to return the state, starting at the initial time.
        method: the solver's name (``"tsit5"``, ``"dopri5"`` ...).
        rtol: relative tolerance of the adaptive step-size control.
        atol: absolute tolerance of the adaptive step-size control.
        sensealg: how gradients are computed: an algorithm object, a short name (``"default"`` is the tutorial's
            InterpolatingAdjoint), or ``None`` (odeint's default) for backprop through the solver.
        options: solver options, as torchdiffeq takes them.
        params: explicit parameters (a tensor or a dict/tuple of tensors) passed to ``func`` as its third argument.
        stats: a :class:`SolveStats` that receives the function-evaluation counts.

    Returns:
        The states at the times ``t``, stacked along a new first dimension, shape ``(len(t), *y0.shape)``.

    Raises:
        InputError: a bad argument (shape, dtype, tolerance, method, options, or a ``func`` that does not fit).
        SolverError: the solve failed (non-finite state, too many steps, or a step size that shrank to nothing).
    """
    sensealg = make_sensealg(sensealg)
    check_state(y0, name="y0")
    t = check_time_span(t)
    t = t.to(y0.device)
    check_tolerances(rtol, atol)
    check_method(method, need_dense=sensealg.uses_dense_output)
    if not is_compiling():
        check_precision(y0.dtype, rtol, atol)
        options = check_options(method, options)
        check_func(func, params)
        check_solve_entry(func, y0, t, params, options)
    if t.requires_grad:
        raise InputError("gradients with respect to the time points are not supported: pass t.detach()")
    if stats is not None and not isinstance(stats, SolveStats):
        raise InputError(f"stats must be a SolveStats() to fill in, or None; got {describe(stats)}")
    stats = stats if stats is not None else SolveStats()
    problem = build_problem(func, params, method, float(rtol), float(atol), dict(options or {}), stats, sensealg)
    return sensealg.solve(problem, y0, t)


