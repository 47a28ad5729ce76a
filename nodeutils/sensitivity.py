r"""Sensitivity algorithms: how the gradient of a loss flows back through an ODE solve.

For du/dt = f(u, p, t) on [t0, T] and a loss L(u(T)), every *continuous adjoint* solves the adjoint
ODE backward from T:

    lambda(T) = dL/du(T),   d lambda/dt = -lambda^T df/du,   dL/dp = \int_{t0}^{T} lambda^T df/dp dt,

and returns dL/du(t0) = lambda(t0). The algorithms differ in where u(t) comes from on the way back
and how the parameter integral is computed. The alternative is *discrete*: backpropagate through
every operation the solver performed.

==========================  ===============================  ==================================================
SciMLSensitivity (Julia)    nodeutils (PyTorch)              what happens on the backward pass
==========================  ===============================  ==================================================
ReverseDiffAdjoint,         ``AutogradAdjoint()``            torch.autograd replays the recorded solver graph;
ZygoteAdjoint                                                exact gradient of the discrete solution; memory
                                                             grows with the number of steps.
BacksolveAdjoint            ``BacksolveAdjoint(seminorm)``   torchdiffeq.odeint_adjoint: integrates [u, lambda,
                                                             mu] backward, re-computing u by running the ODE in
                                                             reverse. O(1) memory; unstable when the forward
                                                             dynamics contract (u cannot be recovered backward).
InterpolatingAdjoint        ``InterpolatingAdjoint(...)``    integrates [lambda, mu] backward; u(t) comes from
                                                             the stored dense forward solution, or is re-solved
                                                             from checkpoints (``checkpointing=True``).
QuadratureAdjoint           ``QuadratureAdjoint(...)``       integrates lambda alone backward and keeps it; then
                                                             computes dL/dp by adaptive Gauss-Kronrod (7-15)
                                                             quadrature of lambda^T df/dp.
GaussAdjoint                ``GaussAdjoint(...)``            integrates lambda alone backward; on every accepted
                                                             step adds that step's share of dL/dp by Gauss-
                                                             Legendre quadrature. Parameters never enter the ODE
                                                             state, so any nesting of tensors works as-is.
==========================  ===============================  ==================================================

Vector-Jacobian products (``autojacvec``), i.e. how lambda^T df/du and lambda^T df/dp are computed:

================  ===================  ==============================================================
Julia             ``autojacvec=``      PyTorch mechanism
================  ===================  ==============================================================
ZygoteVJP         ``"autograd"``       ``torch.autograd.grad`` on a graph built fresh for each call
ReverseDiffVJP    ``"func"``           ``torch.func.vjp``: a functional transform of f(u, p)
autojacvec=false  ``"jacobian"``       ``torch.func.jacrev`` builds the full Jacobian, then a product;
                                       n times the work of a VJP, included to show why VJPs matter
================  ===================  ==============================================================

One entry point, shaped like ``torchdiffeq.odeint``::

    ys = odeint(func, y0, t, method="tsit5", rtol=1e-3, atol=1e-3,
                sensealg=GaussAdjoint(autojacvec="func"), stats=stats)

``func`` is an ``nn.Module`` called as ``func(t, y)`` (its trainable parameters are used), or a plain
callable ``func(t, y, params)`` together with ``params=`` (a tensor, or any list/tuple/dict nesting
of tensors). ``stats`` (a :class:`SolveStats`) receives forward and backward function-evaluation counts.
Gradients with respect to ``t`` are not computed, and the continuous adjoints are once-differentiable.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torchdiffeq
from torch.compiler import is_compiling
from torch.func import functional_call
from torch.utils import _pytree as pytree

from .checks import check_bool, check_choice, check_int, check_number, describe
from .errors import InputError, NonFiniteStateError
from .solvers import (
    DEFAULT_MAX_NUM_STEPS,
    DenseSolution,
    SolveCounter,
    _CheckedRHS,
    _friendly_solver_errors,
    check_method,
    check_options,
    check_precision,
    check_state,
    check_time_span,
    check_tolerances,
    evaluate_polynomial,
    integrate,
)

__all__ = [
    "odeint",
    "SolveStats",
    "SensitivityAlgorithm",
    "AutogradAdjoint",
    "BacksolveAdjoint",
    "InterpolatingAdjoint",
    "QuadratureAdjoint",
    "GaussAdjoint",
    "VJP_CHOICES",
    "SENSEALG_NAMES",
    "make_sensealg",
    "make_vjp",
    "relative_error",
    "flat_grad",
    "kronrod15_rule",
    "gauss_legendre",
]

VJP_CHOICES = ("autograd", "func", "jacobian")
Leaves = tuple[torch.Tensor, ...]
RHS = Callable[[torch.Tensor, torch.Tensor, Leaves], torch.Tensor]
VJPFn = Callable[..., tuple[torch.Tensor | None, list]]


@dataclass
class SolveStats:
    """Work done by one solve and its backward pass (filled in as they run).

    ``nfe_backward`` counts every evaluation of f on the backward pass: adjoint right-hand sides,
    quadrature nodes, and forward re-solves from checkpoints. ``stored_bytes`` is what the algorithm
    itself keeps between the forward and the backward pass (dense solutions, checkpoints).
    ``backward_state_size`` is how many numbers the backward solve of nodeutils' own continuous adjoints
    integrates: lambda and the running parameter integral for the interpolating adjoint, lambda alone for the
    quadrature and Gauss adjoints (0 when no such solve ran: discrete backprop, backsolve).
    """

    nfe_forward: int = 0
    nfe_backward: int = 0
    steps_forward: int = 0
    steps_backward: int = 0
    stored_bytes: int = 0
    backward_state_size: int = 0


# --------------------------------------------------------------------------------------------
# Vector-Jacobian products
# --------------------------------------------------------------------------------------------
def _zeros_for_none(grads: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, like)]


def make_vjp(kind: str, rhs: RHS) -> VJPFn:
    """Return ``vjp(t, u, lam, leaves, wrt_state, wrt_params) -> (lam^T df/du or None, [lam^T df/dp_i])``."""
    if kind not in VJP_CHOICES:
        raise InputError(f"unknown autojacvec {kind!r}: choose one of {', '.join(VJP_CHOICES)}")

    detached: list = [None, None]  # the latest leaves and their differentiable stand-ins, made once per leaves

    def vjp(t, u, lam, leaves, wrt_state=True, wrt_params=True):
        if kind == "autograd":  # a fresh graph per call, like Zygote's pullback
            with torch.enable_grad():
                u_in = u.detach().requires_grad_(wrt_state)
                if wrt_params:
                    if detached[0] is not leaves:
                        detached[:] = leaves, tuple(p if p.is_leaf and p.requires_grad else p.detach().requires_grad_()
                                                    for p in leaves)
                    ps = detached[1]
                else:
                    ps = tuple(leaves)
                inputs = ((u_in,) if wrt_state else ()) + (ps if wrt_params else ())
                grads = list(torch.autograd.grad(rhs(t, u_in, ps), inputs, lam, allow_unused=True)) if inputs else []
            grads = _zeros_for_none(grads, inputs)
        else:
            fixed = [p.detach() for p in leaves]
            n_state = 1 if wrt_state else 0

            def f(*args):
                u_ = args[0] if wrt_state else u
                ps = tuple(args[n_state:]) if wrt_params else tuple(fixed)
                return rhs(t, u_, ps)

            primals = ([u] if wrt_state else []) + (fixed if wrt_params else [])
            if not primals:
                return None, []
            if kind == "func":  # a functional transform of f(u, p)
                grads = list(torch.func.vjp(f, *primals)[1](lam))
            else:  # materialise the Jacobian, then contract: O(n) times the work of a VJP
                jac = torch.func.jacrev(f, argnums=tuple(range(len(primals))))(*primals)
                grads = [torch.tensordot(lam, j, dims=lam.ndim) for j in jac]
        a_u = grads[0] if wrt_state else None
        return a_u, grads[1:] if wrt_state else grads

    return vjp


# --------------------------------------------------------------------------------------------
# The problem: f, its parameters, and the solver settings
# --------------------------------------------------------------------------------------------
class _ModuleRHS:
    """f(t, u, leaves) for an nn.Module: a direct call when the leaves are its own parameters."""

    def __init__(self, module: torch.nn.Module, names: list[str], own: Leaves) -> None:
        self.module, self.names, self.own = module, names, own

    def __call__(self, t: torch.Tensor, u: torch.Tensor, leaves: Leaves) -> torch.Tensor:
        if len(leaves) == len(self.own) and all(a is b for a, b in zip(leaves, self.own)):
            return self.module(t, u)
        return functional_call(self.module, dict(zip(self.names, leaves)), (t, u), tie_weights=False)


@dataclass
class _Problem:
    rhs: RHS
    leaves: Leaves
    method: str
    rtol: float
    atol: float
    options: dict
    stats: SolveStats

    def closed(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """f(t, u) with the problem's own parameters."""
        return lambda t, u: self.rhs(t, u, self.leaves)


def _build_problem(func, params, method, rtol, atol, options, stats, sensealg) -> _Problem:
    if isinstance(func, torch.nn.Module) and params is None:
        named = [(n, p) for n, p in func.named_parameters() if p.requires_grad]
        names = [n for n, _ in named]
        leaves = tuple(p for _, p in named)
        return _Problem(_ModuleRHS(func, names, leaves), leaves, method, rtol, atol, options, stats)
    if not callable(func):
        raise InputError(f"func must be an nn.Module or a callable f(t, y[, params]); got {type(func).__name__}")
    if params is None:
        if not isinstance(sensealg, AutogradAdjoint):
            raise InputError(
                f"{type(sensealg).__name__} needs to know the parameters of f, but func is a plain callable "
                "without params=: pass odeint(f, y0, t, params=...) with f(t, y, params), or make f an nn.Module"
            )
        return _Problem(lambda t, u, leaves: func(t, u), (), method, rtol, atol, options, stats)
    flat, spec = pytree.tree_flatten(params)
    for i, leaf in enumerate(flat):
        if not isinstance(leaf, torch.Tensor) or not leaf.is_floating_point():
            raise InputError(f"params leaf {i} must be a floating-point tensor; got {type(leaf).__name__}")
        if torch.is_grad_enabled() and not leaf.requires_grad and not isinstance(sensealg, AutogradAdjoint):
            raise InputError(
                f"params leaf {i} (shape {tuple(leaf.shape)}) does not require grad, so "
                f"{type(sensealg).__name__} cannot compute its gradient: call .requires_grad_() on it, or leave "
                "it out of params and close over it in f"
            )

    if spec.is_leaf():  # params is one tensor: hand it over as it is

        def rhs(t, u, leaves):
            return func(t, u, leaves[0])
    else:

        def rhs(t, u, leaves):
            return func(t, u, pytree.tree_unflatten(list(leaves), spec))

    return _Problem(rhs, tuple(flat), method, rtol, atol, options, stats)


# --------------------------------------------------------------------------------------------
# Algorithms
# --------------------------------------------------------------------------------------------
class SensitivityAlgorithm:
    """Base class: a way to compute gradients through :func:`odeint`."""

    name: str = ""  # short name, as used by make_sensealg and the CLI
    uses_dense_output = False

    def solve(self, problem: _Problem, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class AutogradAdjoint(SensitivityAlgorithm):
    """Discrete sensitivities: backpropagate through every operation of the solver.

    The counterpart of SciMLSensitivity's ReverseDiffAdjoint/ZygoteAdjoint and of plain
    ``torchdiffeq.odeint``. Gives the exact gradient of the computed solution; the autograd graph
    (every stage of every step) stays in memory until ``backward``.
    """

    name = "autograd"

    def solve(self, problem: _Problem, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        counter = SolveCounter()
        try:
            ys, _ = integrate(problem.closed(), y0, t, method=problem.method, rtol=problem.rtol,
                              atol=problem.atol, options=problem.options, counter=counter, inputs_checked=True)
        finally:
            problem.stats.nfe_forward += counter.nfe
            problem.stats.steps_forward += counter.steps
        return ys


class BacksolveAdjoint(SensitivityAlgorithm):
    """torchdiffeq's ``odeint_adjoint``: re-integrate u backward together with the adjoint.

    ``seminorm=True`` leaves the parameter-gradient part out of the backward step-size control
    (Kidger, Chen & Lyons 2021), which usually saves backward steps.
    """

    name = "backsolve"

    def __init__(self, seminorm: bool = False) -> None:
        self.seminorm = check_bool("seminorm", seminorm)

    def solve(self, problem: _Problem, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        stats = problem.stats

        class _Dynamics(torch.nn.Module):
            # odeint_adjoint evaluates f without gradients forward and with gradients backward.
            def forward(self, t_, y_):
                if torch.is_grad_enabled():
                    stats.nfe_backward += 1
                else:
                    stats.nfe_forward += 1
                return problem.rhs(t_, y_, problem.leaves)

        dynamics = _CheckedRHS(_Dynamics(), SolveCounter(), "backsolve adjoint solve")
        # Each backward interval ends exactly on its output time (no step past it): torchdiffeq's default
        # overshoot would carry u(t) beyond the span, where reversed contracting dynamics blow up.
        adjoint_options = {"max_num_steps": problem.options.get("max_num_steps", DEFAULT_MAX_NUM_STEPS),
                           "step_t": t}
        if self.seminorm:
            adjoint_options["norm"] = "seminorm"
        with _friendly_solver_errors(t, problem.rtol, problem.atol, "backsolve adjoint solve"):
            return torchdiffeq.odeint_adjoint(
                dynamics, y0, t, rtol=problem.rtol, atol=problem.atol, method=problem.method,
                options={"max_num_steps": DEFAULT_MAX_NUM_STEPS, **problem.options},
                adjoint_params=problem.leaves, adjoint_options=adjoint_options)


class _ContinuousAdjoint(SensitivityAlgorithm):
    """Shared machinery of the adjoints that keep the forward solution (or checkpoints of it)."""

    uses_dense_output = True

    def __init__(self, autojacvec: str = "autograd", rtol: float | None = None, atol: float | None = None,
                 checkpointing: bool = False, checkpoints: Sequence[float] | None = None) -> None:
        self.autojacvec = check_vjp(autojacvec)
        # None: the forward solve's tolerances. 0 is refused rather than read as "unset".
        self.rtol = None if rtol is None else check_number("rtol", rtol, example="1e-6 (or None for the forward rtol)")
        self.atol = None if atol is None else check_number("atol", atol, example="1e-6 (or None for the forward atol)")
        self.checkpointing = check_bool("checkpointing", checkpointing)
        if checkpoints is not None and not checkpointing:
            raise InputError(
                "checkpoints were given but checkpointing=False: pass checkpointing=True to use them, or drop them"
            )
        self.checkpoints = None if checkpoints is None else _check_checkpoints(checkpoints)

    def solve(self, problem: _Problem, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        check_method(problem.method, need_dense=True)
        if not torch.is_grad_enabled():
            return AutogradAdjoint().solve(problem, y0, t)
        return _AdjointFunction.apply(self, problem, y0, t, *problem.leaves)

    # Forward pass: what to keep. -------------------------------------------------------------
    def record_forward(self, problem: _Problem, y0: torch.Tensor, t: torch.Tensor) -> dict[str, Any]:
        """Solve forward; keep the dense solution, or only checkpoints when ``checkpointing=True``."""
        times = [float(x) for x in t]
        grid = times
        if self.checkpointing and self.checkpoints:
            lo, hi = min(times), max(times)
            outside = [c for c in self.checkpoints if not lo < c < hi]
            if outside:
                raise InputError(f"checkpoints {outside} lie outside the open time span ({lo:g}, {hi:g})")
            grid = sorted(set(times) | set(self.checkpoints), reverse=times[0] > times[-1])
        counter = SolveCounter()
        try:
            states, dense = integrate(problem.closed(), y0, torch.tensor(grid, dtype=t.dtype, device=t.device),
                                      method=problem.method, rtol=problem.rtol, atol=problem.atol,
                                      options=problem.options, dense=not self.checkpointing, counter=counter,
                                      inputs_checked=True)
        finally:
            problem.stats.nfe_forward += counter.nfe
            problem.stats.steps_forward += counter.steps
        outputs = [grid.index(x) for x in times]
        record = {"ys": states[outputs], "grid": grid, "outputs": outputs}
        if self.checkpointing:
            record.update(states=states, tensors=[states])
        else:
            record.update(dense=dense, tensors=dense.tensors())
        problem.stats.stored_bytes += sum(x.numel() * x.element_size() for x in record["tensors"])
        return record

    def state_on(self, problem: _Problem, record: dict, k: int, counter: SolveCounter) -> DenseSolution:
        """u(t) on grid interval k (between grid[k] and grid[k+1]); re-solved from a checkpoint if needed."""
        if not self.checkpointing:
            return record["dense"]
        grid = record["grid"]
        _, dense = integrate(problem.closed(), record["states"][k], torch.tensor(grid[k:k + 2], dtype=torch.float64),
                             method=problem.method, rtol=problem.rtol, atol=problem.atol, options=problem.options,
                             dense=True, counter=counter, phase="checkpoint re-solve")
        return dense

    # Backward pass. -----------------------------------------------------------------------------
    def tolerances(self, problem: _Problem) -> tuple[float, float]:
        return (self.rtol or problem.rtol, self.atol or problem.atol)

    def backward(self, problem: _Problem, record: dict, grad_ys: torch.Tensor) -> tuple[torch.Tensor, list]:
        raise NotImplementedError


class _AdjointFunction(torch.autograd.Function):
    """The continuous adjoints as one autograd node.

    The forward record's tensors live only in ``save_for_backward``, so autograd frees them after the
    first backward and refuses a second one (unless ``retain_graph=True``), as for any PyTorch operation.
    """

    @staticmethod
    def forward(ctx, sensealg, problem, y0, t, *leaves):
        with torch.no_grad():
            record = sensealg.record_forward(problem, y0, t)
        ctx.sensealg, ctx.problem, ctx.record = sensealg, problem, _record_without_tensors(record)
        ctx.save_for_backward(*record["tensors"])
        return record["ys"]

    @staticmethod
    def backward(ctx, grad_ys):
        if torch.is_grad_enabled():  # backward(create_graph=True) or autograd.grad(..., create_graph=True)
            raise InputError(
                f"{type(ctx.sensealg).__name__} computes gradients once: higher-order gradients (create_graph=True) "
                "are not supported through it. Use sensealg=AutogradAdjoint() (sensealg='autograd') for them"
            )
        record = _record_with_tensors(ctx.record, ctx.saved_tensors)  # raises after a freed first backward
        grad_y0, grad_leaves = ctx.sensealg.backward(ctx.problem, record, grad_ys)
        return (None, None, grad_y0, None, *grad_leaves)


def _record_without_tensors(record: dict[str, Any]) -> dict[str, Any]:
    """The record's bookkeeping (grid, step times, how many tensors per step), none of its tensors."""
    kept = {k: v for k, v in record.items() if k not in ("ys", "tensors", "states", "dense")}
    if "dense" in record:
        dense = record["dense"]
        kept["dense_shell"] = (dense.sign, list(dense.knots), [len(c) for c in dense.coefficients])
    return kept


def _record_with_tensors(kept: dict[str, Any], tensors: Sequence[torch.Tensor]) -> dict[str, Any]:
    """Inverse of :func:`_record_without_tensors`, from the saved tensors."""
    record = dict(kept, tensors=list(tensors))
    if "dense_shell" in kept:
        sign, knots, sizes = kept["dense_shell"]
        coefficients, start = [], 0
        for size in sizes:
            coefficients.append(list(tensors[start:start + size]))
            start += size
        record["dense"] = DenseSolution(sign=sign, knots=knots, coefficients=coefficients)
    else:
        record["states"] = tensors[0]
    return record


def _flat(tensors: Sequence[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    if not tensors:
        return torch.zeros(0, dtype=dtype)
    return torch.cat([x.reshape(-1).to(dtype) for x in tensors])


def _unflat(vector: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    out, i = [], 0
    for x in like:
        out.append(vector[i:i + x.numel()].view_as(x).to(x.dtype))
        i += x.numel()
    return out


def _check_finite(name: str, value: torch.Tensor, t: float) -> None:
    if not bool(torch.isfinite(value).all()):
        raise NonFiniteStateError(
            f"the adjoint {name} became NaN or infinite at t={t:.6g} during the backward solve: the loss gradient "
            "or the dynamics blew up. Check the loss for NaN, lower the learning rate, or tighten rtol/atol"
        )


class InterpolatingAdjoint(_ContinuousAdjoint):
    """Backward solve of [lambda, mu] with u(t) read from the forward pass, never integrated backward.

    ``checkpointing=False`` keeps the forward solver's dense output (every step's polynomial).
    ``checkpointing=True`` keeps only u at the output times (plus ``checkpoints``) and re-solves the
    forward ODE, densely, inside each interval when the backward pass reaches it: less memory, about
    one extra forward solve of work.
    """

    name = "interpolating"

    def backward(self, problem, record, grad_ys):
        vjp = make_vjp(self.autojacvec, problem.rhs)
        rtol, atol = self.tolerances(problem)
        leaves, grid, outputs = problem.leaves, record["grid"], record["outputs"]
        shape, n = grad_ys.shape[1:], grad_ys[0].numel()
        dtype = grad_ys.dtype
        grad_at = {k: grad_ys[i] for i, k in enumerate(outputs)}
        lam = grad_at.get(len(grid) - 1, torch.zeros(shape, dtype=dtype)).clone()
        mu = torch.zeros(sum(p.numel() for p in leaves), dtype=dtype, device=grad_ys.device)
        counter = SolveCounter()
        for k in range(len(grid) - 2, -1, -1):
            u_of = self.state_on(problem, record, k, counter)

            def adjoint_rhs(t_, z, u_of=u_of):
                lam_t = z[:n].view(shape)
                dtype = z.dtype
                u = u_of(t_)
                if u.dtype != dtype:
                    u = u.to(dtype)
                a_u, a_p = vjp(t_ if t_.dtype == dtype else t_.to(dtype), u, lam_t, leaves)
                # -[a_u, a_p] in one negation: the same numbers as negating each part (negation is exact)
                parts = [a_u.reshape(-1)] + [g.reshape(-1) for g in a_p]
                for g in parts:
                    if g.dtype != dtype or g.device != z.device:
                        parts = [g.to(dtype).to(z.device) for g in parts]
                        break
                return torch.cat(parts).neg_()

            z0 = torch.cat([lam.reshape(-1), mu])
            problem.stats.backward_state_size = z0.numel()
            zs, _ = integrate(adjoint_rhs, z0, torch.tensor([grid[k + 1], grid[k]], dtype=torch.float64),
                              method=problem.method, rtol=rtol, atol=atol, options=problem.options, counter=counter,
                              phase="backward (adjoint) solve", land_on_times=True, inputs_checked=True)
            lam, mu = zs[-1][:n].view(shape).clone(), zs[-1][n:]
            lam = lam + grad_at.get(k, 0)
            _check_finite("state lambda", lam, grid[k])
        problem.stats.nfe_backward += counter.nfe
        problem.stats.steps_backward += counter.steps
        return lam, _unflat(mu, leaves)


class _LambdaOnlyAdjoint(_ContinuousAdjoint):
    """Solve lambda alone backward; the parameter integral is computed separately by quadrature."""

    def integrate_lambda(self, problem, record, grad_ys, on_interval):
        vjp = make_vjp(self.autojacvec, problem.rhs)
        rtol, atol = self.tolerances(problem)
        grid, outputs, leaves = record["grid"], record["outputs"], problem.leaves
        grad_at = {k: grad_ys[i] for i, k in enumerate(outputs)}
        lam = grad_at.get(len(grid) - 1, torch.zeros_like(grad_ys[0])).clone()
        counter = SolveCounter()
        grads = [torch.zeros_like(p) for p in leaves]
        for k in range(len(grid) - 2, -1, -1):
            u_of = self.state_on(problem, record, k, counter)

            def lambda_rhs(t_, lam_t, u_of=u_of):
                a_u, _ = vjp(t_, u_of(t_).to(lam_t.dtype), lam_t, leaves, True, False)
                return -a_u

            def param_integrand(t_, lam_t, u_of=u_of):
                counter.nfe += 1
                tt = torch.tensor(t_, dtype=lam_t.dtype, device=lam_t.device)
                return vjp(tt, u_of(tt).to(lam_t.dtype), lam_t, leaves, False, True)[1]

            problem.stats.backward_state_size = lam.numel()
            lams, _ = on_interval(lambda_rhs, param_integrand, lam, grid[k + 1], grid[k], rtol, atol, counter, grads)
            lam = lams[-1] + grad_at.get(k, 0)
            _check_finite("state lambda", lam, grid[k])
        problem.stats.nfe_backward += counter.nfe
        problem.stats.steps_backward += counter.steps
        return lam, grads


# Gauss-Kronrod 7-15 nodes on [-1, 1] (non-negative half) and weights (QUADPACK's qk15).
_XGK = [0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
        0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
        0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
        0.207784955007898467600689403773245, 0.0]
_WGK = [0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
        0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
        0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
        0.204432940075298892414161999234649, 0.209482141084727828012999174891714]
_WG = [0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
       0.381830050505118944950369775488975, 0.417959183673469387755102040816327]


def kronrod15_rule() -> tuple[list[float], list[float], list[float]]:
    """Nodes on [-1, 1], Kronrod-15 weights and embedded Gauss-7 weights (0 off the Gauss nodes)."""
    nodes = [-x for x in _XGK[:-1]] + [0.0] + _XGK[:-1][::-1]
    wk = _WGK[:-1] + [_WGK[-1]] + _WGK[:-1][::-1]
    g = [0.0, _WG[0], 0.0, _WG[1], 0.0, _WG[2], 0.0]
    wg = g + [_WG[3]] + g[::-1]
    return nodes, wk, wg


class QuadratureAdjoint(_LambdaOnlyAdjoint):
    """Solve lambda backward and keep its dense solution; then integrate lambda^T df/dp adaptively.

    The integral over each interval is computed with Gauss-Kronrod 7-15 panels, bisected until the
    Kronrod and Gauss estimates agree within the adjoint's tolerances (as QuadGK does in Julia).
    Memory: the forward and the backward dense solutions.
    """

    name = "quadrature"

    def __init__(self, autojacvec: str = "autograd", rtol: float | None = None, atol: float | None = None,
                 max_panels: int = 64) -> None:
        super().__init__(autojacvec, rtol, atol)
        self.max_panels = check_int("max_panels", max_panels, minimum=1,
                                    hint="the number of Gauss-Kronrod panels per interval, e.g. 64")

    def backward(self, problem, record, grad_ys):
        nodes, wk, wg = kronrod15_rule()

        def on_interval(lambda_rhs, integrand, lam0, t_from, t_to, rtol, atol, counter, grads):
            lams, lam_dense = integrate(lambda_rhs, lam0, torch.tensor([t_from, t_to], dtype=torch.float64),
                                        method=problem.method, rtol=rtol, atol=atol, options=problem.options,
                                        dense=True, counter=counter, phase="backward (adjoint) solve",
                                        land_on_times=True)
            problem.stats.stored_bytes += lam_dense.nbytes()
            dtype = lam0.dtype

            def panel(a, b):
                values = [integrand(0.5 * (a + b) + 0.5 * (b - a) * x, lam_dense(0.5 * (a + b) + 0.5 * (b - a) * x))
                          for x in nodes]
                k = [sum(w * v[i] for w, v in zip(wk, values)) * (0.5 * (b - a)) for i in range(len(grads))]
                g = [sum(w * v[i] for w, v in zip(wg, values) if w) * (0.5 * (b - a)) for i in range(len(grads))]
                return k, g

            stack, panels = [(t_to, t_from)], 0  # integrate over [t_to, t_from] in the forward direction
            while stack:
                a, b = stack.pop()
                k, g = panel(a, b)
                panels += 1
                err = float(_flat([x - y for x, y in zip(k, g)], dtype).abs().max()) if grads else 0.0
                scale = float(_flat(k, dtype).abs().max()) if grads else 0.0
                if err <= max(atol, rtol * scale) or panels >= self.max_panels:
                    for acc, x in zip(grads, k):
                        acc += x  # mu(t0) = \int_{t0}^{T} lambda^T df/dp dt
                else:
                    mid = 0.5 * (a + b)
                    stack += [(a, mid), (mid, b)]
            return lams, lam_dense

        return self.integrate_lambda(problem, record, grad_ys, on_interval)


def gauss_legendre(n: int) -> tuple[list[float], list[float]]:
    """n Gauss-Legendre nodes as fractions of [0, 1] and weights summing to 1."""
    x, w = np.polynomial.legendre.leggauss(n)
    return ((x + 1) / 2).tolist(), (w / 2).tolist()


class GaussAdjoint(_LambdaOnlyAdjoint):
    """Solve lambda backward; add each accepted step's share of dL/dp by Gauss-Legendre quadrature.

    The parameter gradient is accumulated into one tensor per parameter while the backward solve
    runs, so parameters keep their own shapes and nesting and never join the ODE state. Memory: the
    forward dense solution, or only checkpoints with ``checkpointing=True`` (as for
    :class:`InterpolatingAdjoint`). ``nodes`` Gauss points per step integrate polynomials of degree
    2 * nodes - 1 exactly.
    """

    name = "gauss"

    def __init__(self, autojacvec: str = "autograd", rtol: float | None = None, atol: float | None = None,
                 nodes: int = 4, checkpointing: bool = False, checkpoints: Sequence[float] | None = None) -> None:
        super().__init__(autojacvec, rtol, atol, checkpointing, checkpoints)
        self.nodes = check_int("nodes", nodes, minimum=1, maximum=64,
                               hint="the number of Gauss-Legendre nodes per step, 1 to 64 (default 4)")

    def backward(self, problem, record, grad_ys):
        fractions, weights = gauss_legendre(self.nodes)

        def on_interval(lambda_rhs, integrand, lam0, t_from, t_to, rtol, atol, counter, grads):
            def accumulate(s_start, s_end, coefficients):
                # Steps land exactly on t_to (land_on_times), so every step lies inside [t_to, t_from].
                for x, w in zip(fractions, weights):
                    node = s_start + x * (s_end - s_start)
                    contribution = integrand(node, evaluate_polynomial(coefficients, x))
                    for acc, c in zip(grads, contribution):
                        acc += (w * (s_start - s_end)) * c

            return integrate(lambda_rhs, lam0, torch.tensor([t_from, t_to], dtype=torch.float64),
                             method=problem.method, rtol=rtol, atol=atol, options=problem.options,
                             on_step=accumulate, counter=counter, phase="backward (adjoint) solve",
                             land_on_times=True)

        return self.integrate_lambda(problem, record, grad_ys, on_interval)


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------
#: Short names (as used by the CLI) -> algorithm classes.
SENSEALG_NAMES = {cls.name: cls for cls in
                  (AutogradAdjoint, BacksolveAdjoint, InterpolatingAdjoint, QuadratureAdjoint, GaussAdjoint)}


def check_vjp(autojacvec: object) -> str:
    """``autojacvec`` if it names a VJP choice; Julia's ``autojacvec=false`` gets a pointer to ``"jacobian"``."""
    hint = "Julia's autojacvec=false is autojacvec='jacobian' here" if isinstance(autojacvec, bool) else ""
    return check_choice("autojacvec", autojacvec, VJP_CHOICES, hint)


def _check_checkpoints(checkpoints: object) -> list[float]:
    if isinstance(checkpoints, torch.Tensor):
        checkpoints = checkpoints.detach().reshape(-1).tolist() if checkpoints.ndim <= 1 else checkpoints
    if isinstance(checkpoints, (str, bytes, dict)) or not isinstance(checkpoints, (Sequence, np.ndarray)):
        raise InputError(f"checkpoints must be a list of times inside the time span, like [0.5]; got "
                         f"{describe(checkpoints)}")
    return [check_number(f"checkpoints[{i}]", c, positive=False) for i, c in enumerate(checkpoints)]


def make_sensealg(
    name: str | SensitivityAlgorithm | None, vjp: str | None = None, **kwargs: Any
) -> SensitivityAlgorithm:
    """Build an algorithm from its short name (``"gauss"``) and a VJP choice; objects pass through.

    ``vjp`` (default ``"autograd"``) applies to the continuous adjoints (interpolating, quadrature,
    gauss). The discrete (``"autograd"``) and backsolve algorithms get their products from autograd,
    so another ``vjp`` for them is refused rather than ignored.

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
    unknown = sorted(k for k in kwargs if k not in accepted)
    if unknown:
        raise InputError(f"{cls.__name__} does not take {', '.join(unknown)}: it accepts "
                         f"{', '.join(accepted) or 'no settings'}")
    return cls(**kwargs)


#: Signatures already found callable as f(t, y) / f(t, y, params): (code, defaults, keyword defaults, params?).
_CALLABLE_SIGNATURES: set[tuple] = set()


def _check_func(func: object, params: object) -> None:
    """Refuse a func that is not callable or cannot be called as f(t, y) (or f(t, y, params))."""
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


def _check_solve_entry(func: object, y0: torch.Tensor, t: torch.Tensor, params: Any, options: dict) -> None:
    """Once per solve: parameters in the state's dtype and on its device; a step size that fits the span."""
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


#: A fixed-step solve with more steps than this is refused (its grid alone would fill the memory).
MAX_FIXED_STEPS = 10**7


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
        sensealg: how gradients are computed: an algorithm object, a short name, or ``None`` for backprop.
        options: solver options, as torchdiffeq takes them.
        params: explicit parameters (a tensor or a dict/tuple of tensors) passed to ``func`` as its third argument.
        stats: a :class:`SolveStats` that receives the function-evaluation counts.

    Returns:
        The states at the times ``t``, stacked along a new first dimension: shape ``(len(t), *y0.shape)``.

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
        _check_func(func, params)
        _check_solve_entry(func, y0, t, params, options)
    if t.requires_grad:
        raise InputError("gradients with respect to the time points are not supported: pass t.detach()")
    if stats is not None and not isinstance(stats, SolveStats):
        raise InputError(f"stats must be a SolveStats() to fill in, or None; got {describe(stats)}")
    stats = stats if stats is not None else SolveStats()
    problem = _build_problem(func, params, method, float(rtol), float(atol), dict(options or {}), stats, sensealg)
    return sensealg.solve(problem, y0, t)


def relative_error(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    """||estimate - reference|| / ||reference|| (0 when both are zero)."""
    denom = float(reference.norm())
    num = float((estimate - reference).norm())
    return num / denom if denom > 0 else num


def flat_grad(tensors: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate gradients into one vector (zeros where a gradient is None)."""
    return torch.cat([(torch.zeros_like(x) if g is None else g).reshape(-1) for g, x in zip(tensors, like)])

