"""The solve engine: :func:`integrate` runs a torchdiffeq solver, counts its work and keeps its dense output.

:func:`integrate` is where nodeutils runs a solver (``BacksolveAdjoint`` alone hands its solves to torchdiffeq's
``odeint_adjoint``). It checks the inputs (with :mod:`nodeutils.checks.methods` and :mod:`nodeutils.checks.solve`),
counts function evaluations, turns torchdiffeq's bare assertions into errors that say what to do, and can record
the dense solution (every accepted step and its interpolating polynomial, a :class:`DenseSolution`), which the
continuous adjoints of :mod:`nodeutils.sensitivity` read.
The solvers themselves are torchdiffeq's, and nodeutils' Tsit5 (:mod:`nodeutils.tsit5`).
"""

from __future__ import annotations

import bisect
import contextlib
import numbers
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch.compiler import is_compiling
from torchdiffeq._impl.misc import _check_inputs
from torchdiffeq._impl.odeint import SOLVERS

from .checks import (
    adaptive_methods,
    check_callable,
    check_method,
    check_options,
    check_precision,
    check_state,
    check_time_span,
    check_tolerances,
    describe,
)
from .errors import InputError, NonFiniteStateError, StepLimitError, StepSizeUnderflowError

__all__ = ["DEFAULT_MAX_NUM_STEPS", "DenseSolution", "SolveCounter", "evaluate_polynomial", "integrate"]

#: Step limit per output interval unless ``options={"max_num_steps": ...}`` says otherwise.
DEFAULT_MAX_NUM_STEPS = 10_000


@dataclass
class DenseSolution:
    """Continuous solution u(t) of one solve: each accepted step and its interpolating polynomial.

    Built by :func:`integrate` with ``dense=True``. Calling it evaluates u at any time inside the
    span (4th-order interpolation, as torchdiffeq does). Times are stored in the solver's own
    increasing time variable ``s = sign * t`` so a backward-in-time solve works the same way.
    """

    sign: float = 1.0
    knots: list[float] = field(default_factory=list)  # step boundaries s_0 < s_1 < ... (solver time)
    coefficients: list[list[torch.Tensor]] = field(default_factory=list)

    def add_step(self, s0: float, s1: float, coefficients: list[torch.Tensor]) -> None:
        """Append one accepted step and its interpolating polynomial (the coefficients are stored detached).

        Args:
            s0: the step's start, in solver time.
            s1: the step's end, in solver time.
            coefficients: the polynomial's coefficient tensors, lowest power first.
        """
        if not self.knots:
            self.knots.append(s0)
        self.knots.append(s1)
        self.coefficients.append([c.detach() for c in coefficients])

    @property
    def num_steps(self) -> int:
        """Number of accepted steps."""
        return len(self.coefficients)

    @property
    def step_times(self) -> list[float]:
        """Accepted step boundaries in the caller's time, in the order they were taken."""
        return [self.sign * s for s in self.knots]

    def tensors(self) -> list[torch.Tensor]:
        """Every stored tensor (to account for the memory the solution holds).

        Returns:
            The coefficient tensors of every step, step by step.
        """
        return [c for coeffs in self.coefficients for c in coeffs]

    def nbytes(self) -> int:
        """The memory the solution holds.

        Returns:
            The bytes of all stored tensors.
        """
        return sum(c.numel() * c.element_size() for c in self.tensors())

    @property
    def span(self) -> tuple[float, float]:
        """First and last time covered by the accepted steps, in the caller's time."""
        return self.sign * self.knots[0], self.sign * self.knots[-1]

    def __call__(self, t: float | torch.Tensor) -> torch.Tensor:
        """u(t) for t inside the solved span; anywhere else is refused.

        Outside the span a step's polynomial would be extrapolated, and extrapolation amplifies the
        rounding errors in its coefficients: a value read there is not the solution.

        Args:
            t: a time in the caller's variable, a float or a one-element tensor.

        Returns:
            u(t), shaped like the solved state.

        Raises:
            InputError: ``t`` is not one real time, or lies outside the span of the accepted steps.
        """
        s = self.sign * _one_time(t)
        lo, hi = self.knots[0], self.knots[-1]
        slack = 1e-12 * max(abs(lo), abs(hi), hi - lo)  # the rounding of t0 + c * dt at a step's end
        if not lo - slack <= s <= hi + slack:
            a, b = self.span
            raise InputError(
                f"the dense solution covers t in [{min(a, b):.6g}, {max(a, b):.6g}] and cannot be evaluated at "
                f"t={float(t):.6g}: extrapolating a step's polynomial does not give the solution. Solve over a span "
                "that contains t"
            )
        return self.clamped(t)

    def clamped(self, t: float | torch.Tensor) -> torch.Tensor:
        """u(t) inside the span; beyond it, u at the nearer end of the span (never an extrapolation).

        For the adjoint solves' right-hand sides: their steps stay inside the span (``land_on_times``), but the
        solver sizes its first step by probing f once at t0 + h0, which on a short interval can lie past its end.
        That probe only sets the first step size, so u held at the end is enough there.

        Args:
            t: a time in the caller's variable, a float or a one-element tensor.

        Returns:
            u at ``t`` moved into the span, shaped like the solved state.

        Raises:
            InputError: ``t`` is not one real time.
        """
        time = float(t) if isinstance(t, torch.Tensor) and t.numel() == 1 else _one_time(t)  # one call per read
        s = min(max(self.sign * time, self.knots[0]), self.knots[-1])
        i = min(max(bisect.bisect_right(self.knots, s) - 1, 0), self.num_steps - 1)
        s0, s1 = self.knots[i], self.knots[i + 1]
        return evaluate_polynomial(self.coefficients[i], (s - s0) / (s1 - s0))


def _one_time(t: object) -> float:
    """``t`` as a float if it is one real time (a number or a one-element real tensor), else InputError."""
    if isinstance(t, torch.Tensor):
        if t.numel() != 1 or t.is_complex():
            raise InputError(f"the dense solution is evaluated at one time at a time; got a tensor of shape "
                             f"{tuple(t.shape)}: call it once per time")
    elif isinstance(t, bool) or not isinstance(t, numbers.Real):
        raise InputError(f"the dense solution is evaluated at a time, a float or a one-element tensor; got {t!r}")
    return float(t)


@dataclass
class SolveCounter:
    """Counts right-hand-side evaluations and accepted steps of one or more solves."""

    nfe: int = 0
    steps: int = 0
    rejected: int = 0
    sign: float = 1.0
    last_step_end: torch.Tensor | None = None  # solver time at the end of the latest accepted step

    @property
    def t_reached(self) -> float | None:
        """End of the latest accepted step, in the caller's time (None before the first step)."""
        return None if self.last_step_end is None else self.sign * float(self.last_step_end)


class _CheckedRHS:
    """Wraps f(t, y): counts calls, checks the first result's shape (and finiteness), if asked every result's.

    Adaptive solvers are checked once per step instead (see :func:`integrate`), which is cheaper.
    """

    def __init__(self, func: Callable, counter: SolveCounter, phase: str, check_every_call: bool = True) -> None:
        self.func, self.counter, self.phase, self.check_every_call = func, counter, phase, check_every_call
        self.shape_checked = False

    def __call__(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not is_compiling():  # a Python counter would force recompilation at every call
            self.counter.nfe += 1
        out = self.func(t, y)
        if not self.shape_checked:
            if not isinstance(out, torch.Tensor) or out.shape != y.shape:
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise InputError(
                    f"the right-hand side must return a tensor shaped like the state {tuple(y.shape)}; got {got}"
                )
            self.shape_checked = True
            if not is_compiling() and not bool(torch.isfinite(out).all()):
                raise NonFiniteStateError(  # the state is finite (checked before the solve): f itself is not
                    f"the right-hand side returned NaN or infinite values at the start (t={float(t):.6g}) of the "
                    f"{self.phase}, from a finite state: f itself produces them. Check f for a division by zero, "
                    "log/sqrt of a negative number, or NaN/infinite parameters"
                )
        if self.check_every_call and not bool(torch.isfinite(out).all()):
            what = "state" if not bool(torch.isfinite(y).all()) else "derivative"
            raise _non_finite(what, float(t), self.phase)
        return out


def _non_finite(what: str, t: float, phase: str, t_end: float | None = None) -> NonFiniteStateError:
    where = f"at t={t:.6g}" if t_end is None else f"between t={t:.6g} and t={t_end:.6g} (one solver step)"
    return NonFiniteStateError(
        f"the {what} became NaN or infinite {where} during the {phase}: the dynamics diverged. Lower the "
        "learning rate, rescale the inputs, shorten the time span, or tighten rtol/atol"
    )


_STEP_LIMIT = re.compile(r"max_num_steps exceeded \((\d+)>=(\d+)\)")


@contextlib.contextmanager
def _friendly_solver_errors(t: torch.Tensor, rtol: float, atol: float, phase: str,
                            counter: SolveCounter | None = None) -> Iterator[None]:
    """Turn torchdiffeq's assertion failures into errors that say what to do."""
    try:
        yield
    except AssertionError as err:
        msg = str(err)
        span = f"[{float(t[0]):.6g}, {float(t[-1]):.6g}]"
        if counter is not None and counter.t_reached is not None:
            span += f" after reaching t={counter.t_reached:.6g}"
        if "max_num_steps" in msg:
            m = _STEP_LIMIT.search(msg)
            limit = m.group(2) if m else "the"
            raise StepLimitError(
                f"the {phase} over {span} took more than {limit} steps (rtol={rtol:g}, atol={atol:g}): the "
                "dynamics are stiff or blowing up. Loosen rtol/atol, shorten the span, or raise the limit with "
                "options={'max_num_steps': N}"
            ) from None
        if "underflow in dt" in msg:
            raise StepSizeUnderflowError(
                f"the {phase} over {span} shrank its step size to zero (rtol={rtol:g}, atol={atol:g}): the "
                "solution is singular or discontinuous there. Check the dynamics, or loosen rtol/atol"
            ) from None
        if "non-finite values" in msg:
            raise NonFiniteStateError(
                f"the state became NaN or infinite during the {phase} over {span}: the dynamics diverged"
            ) from None
        raise


def integrate(
    func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y0: torch.Tensor,
    t: torch.Tensor,
    *,
    method: str = "tsit5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    options: dict | None = None,
    dense: bool = False,
    on_step: Callable[[float, float, list[torch.Tensor]], None] | None = None,
    counter: SolveCounter | None = None,
    phase: str = "forward solve",
    land_on_times: bool = False,
    inputs_checked: bool = False,
) -> tuple[torch.Tensor, DenseSolution | None]:
    """Solve dy/dt = func(t, y) and return the states at ``t`` (and the dense solution if asked).

    Differentiable by plain autograd when called with gradients enabled. By default an adaptive solver,
    as in torchdiffeq, lets its last step run past ``t[-1]`` and interpolates back.

    Args:
        func: the right-hand side f(t, y), returning a tensor shaped like ``y``.
        y0: the initial state, a float32 or float64 tensor.
        t: the output times, increasing or decreasing, starting at the initial time.
        method: the solver's name; ``dense`` and ``on_step`` need an adaptive Runge-Kutta method.
        rtol: relative tolerance of the adaptive step-size control.
        atol: absolute tolerance of the adaptive step-size control.
        options: solver options, as torchdiffeq takes them (``max_num_steps``: :data:`DEFAULT_MAX_NUM_STEPS`
            per output interval unless given).
        dense: whether to record the :class:`DenseSolution`.
        on_step: called as ``on_step(t_start, t_end, coefficients)`` after every accepted step, with the step's
            interpolating polynomial (times in the caller's variable).
        counter: a :class:`SolveCounter` that the evaluations and steps are added to (default: a new one).
        phase: what this solve is (``"forward solve"``, ``"backward (adjoint) solve"`` ...), for the messages.
        land_on_times: shorten a step that would cross a time of ``t`` so that it ends exactly on it: no stage
            of any step then looks beyond the span (the first-step size estimate probes f once at t0 + h0, see
            :meth:`DenseSolution.clamped`). The adjoint solves use it, because their right-hand side reads
            a stored forward solution that exists only there.
        inputs_checked: the caller has already checked ``y0``, ``t`` (a finite, strictly monotone 1-D tensor on
            y0's device), ``method`` and ``options``, as :func:`~nodeutils.sensitivity.odeint` does once per
            solve, so they are not checked again (except while TorchDynamo traces the solve, which keeps the
            traced graphs unchanged).

    Returns:
        ``(states, dense)``, the states at ``t`` (shape ``(len(t), *y0.shape)``) and the dense solution
        (``None`` unless ``dense=True``).

    Raises:
        InputError: a bad ``y0``, ``t``, tolerance, method or option (unless ``inputs_checked``), tolerances
            below what y0's dtype resolves, or a ``func`` whose result is not shaped like the state.
        NonFiniteStateError: the initial state, or the state or its derivative during the solve, is NaN or infinite.
        StepLimitError: an output interval took more than ``max_num_steps`` steps.
        StepSizeUnderflowError: the step size shrank to nothing.
    """
    check_callable("func", func, "the right-hand side f(t, y), returning a tensor shaped like y")
    if on_step is not None:
        check_callable("on_step", on_step, "a function on_step(t_start, t_end, coefficients), or None")
    if counter is not None and not isinstance(counter, SolveCounter):
        raise InputError(f"counter must be a SolveCounter() to fill in, or None; got {describe(counter)}")
    want_steps = dense or on_step is not None
    if not inputs_checked or is_compiling():  # under torch.compile: the same trace as ever
        check_state(y0)
        t = check_time_span(t).to(y0.device)
        check_tolerances(rtol, atol)
        check_method(method, need_dense=want_steps)
    if is_compiling():  # checked when the model was built; keep the traced graph free of Python checks
        options = dict(options or {})
    else:
        check_precision(y0.dtype, rtol, atol)
        options = dict(options or {}) if inputs_checked else check_options(method, options)
    counter = counter if counter is not None else SolveCounter()
    options.setdefault("max_num_steps", DEFAULT_MAX_NUM_STEPS)
    if method not in adaptive_methods():
        options.pop("max_num_steps")
    elif land_on_times:
        step_t = options.get("step_t")
        step_t = t if step_t is None else torch.cat([torch.as_tensor(step_t, dtype=t.dtype, device=t.device), t])
        jump_t = options.get("jump_t")
        if jump_t is not None:  # torchdiffeq refuses a time listed in both; a jump time is landed on anyway
            jump_t = torch.as_tensor(jump_t, dtype=t.dtype, device=t.device)
            step_t = step_t[~torch.isin(step_t, jump_t)]
        options["step_t"] = torch.unique(step_t)

    # Value checks read tensors into Python; under torch.compile they would break the graph, so they are skipped.
    checking = not is_compiling()
    if checking and not bool(torch.isfinite(y0).all()):
        cause = ("the input is not finite. Check the data (torch.isfinite(x).all()) and the layers before the ODE"
                 if phase.startswith("forward") else
                 "the values this solve starts from are not finite. Check the loss and its gradient for NaN")
        raise NonFiniteStateError(
            f"the initial state contains NaN or infinite values at t={float(t[0]):.6g} during the {phase}, "
            f"before the first step: {cause}"
        )
    adaptive = method in adaptive_methods()
    checked = _CheckedRHS(func, counter, phase, check_every_call=checking and not adaptive)
    _, wrapped, y0_, t_, rtol_, atol_, method_, options_, _, reversed_ = _check_inputs(
        checked, y0, t, rtol, atol, method, options, None, SOLVERS
    )
    solver = SOLVERS[method_](func=wrapped, y0=y0_, rtol=rtol_, atol=atol_, **options_)
    sign = -1.0 if reversed_ else 1.0
    solution = DenseSolution(sign=sign) if dense else None

    counter.sign, counter.last_step_end = sign, None
    if adaptive:
        take_step = solver._adaptive_step

        def checked_step(rk_state):  # noqa: ANN001, ANN202 - torchdiffeq's private state type
            new = take_step(rk_state)
            if new.t1 is not rk_state.t1:  # accepted (a rejected step keeps the very same time tensor)
                if checking:
                    if not bool(torch.isfinite(new.y1).all()):
                        raise _non_finite("state", sign * float(new.t0), phase, sign * float(new.t1))
                    counter.steps += 1
                counter.last_step_end = new.t1
                if solution is not None or on_step is not None:
                    s0, s1 = float(new.t0.detach()), float(new.t1.detach())
                    if solution is not None:
                        solution.add_step(s0, s1, new.interp_coeff)
                    if on_step is not None:
                        on_step(sign * s0, sign * s1, new.interp_coeff)
            elif checking:
                counter.rejected += 1
                if not bool(torch.isfinite(new.dt)):  # a NaN/inf error estimate: f blew up inside the step
                    t_from = float(rk_state.t1)
                    t_to = t_from + float(rk_state.dt.clamp(solver.min_step, solver.max_step))
                    raise _non_finite("derivative", sign * t_from, phase, sign * t_to)
            return new

        solver._adaptive_step = checked_step

    with _friendly_solver_errors(t, float(rtol), float(atol), phase, counter):
        ys = solver.integrate(t_)
    return ys, solution


def evaluate_polynomial(coefficients: list[torch.Tensor], fraction: float) -> torch.Tensor:
    """Evaluate a step's interpolating polynomial at ``fraction`` in [0, 1] of the step.

    Args:
        coefficients: the polynomial's coefficient tensors, lowest power first (at least one).
        fraction: where in the step: 0 at its start, 1 at its end.

    Returns:
        ``sum(coefficients[k] * fraction**k)``, shaped like the coefficients.
    """
    total = coefficients[0]
    power = 1.0
    for c in coefficients[1:]:
        power *= fraction
        total = total + power * c
    return total
