"""ODE solvers: Tsitouras' 5(4) method for torchdiffeq, input checks, and solves with dense output.

torchdiffeq already has the adaptive Runge-Kutta loop (step-size control, FSAL, interpolation). A new
explicit method is therefore just data: its Butcher tableau, its error weights, and the weights that
give the solution at the middle of a step (used for torchdiffeq's 4th-order dense interpolation).
:class:`Tsit5Solver` is exactly that, registered under ``method="tsit5"``.

:func:`integrate` is the one place where nodeutils runs a solver. It checks the inputs, counts
function evaluations, turns torchdiffeq's bare assertions into errors that say what to do, and can
record the dense solution (every accepted step and its interpolating polynomial), which the
interpolating and Gauss adjoints of :mod:`nodeutils.sensitivity` need.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import inspect
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.compiler import is_compiling
from torchdiffeq._impl.misc import _check_inputs
from torchdiffeq._impl.odeint import SOLVERS
from torchdiffeq._impl.rk_common import RKAdaptiveStepsizeODESolver, _ButcherTableau

from .checks import check_bool, check_callable, check_choice, check_int, check_number, describe
from .errors import InputError, NonFiniteStateError, StepLimitError, StepSizeUnderflowError

__all__ = [
    "TSIT5_TABLEAU",
    "Tsit5Solver",
    "DenseSolution",
    "SolveCounter",
    "integrate",
    "check_time_span",
    "check_tolerances",
    "check_method",
    "check_state",
    "check_precision",
    "check_options",
    "available_methods",
    "DEFAULT_MAX_NUM_STEPS",
]

#: Step limit per output interval unless ``options={"max_num_steps": ...}`` says otherwise.
DEFAULT_MAX_NUM_STEPS = 10_000

# --------------------------------------------------------------------------------------------
# Tsit5: Ch. Tsitouras, "Runge-Kutta pairs of order 5(4) satisfying only the first column
# simplifying assumption", Computers & Mathematics with Applications 62 (2011) 770-775.
# --------------------------------------------------------------------------------------------
_C = [0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0]
_A = [
    [0.161],
    [-0.008480655492356989, 0.335480655492357],
    [2.897153057105493, -6.359448489975075, 4.3622954328695815],
    [5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525],
    [5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401, -0.028269050394068383],
    # Last row = 5th-order weights b (first same as last: stage 7 is f at the new point).
    [0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081, 2.324710524099774],
]
# b - b_hat: the embedded 4th-order solution's difference, used as the local error estimate.
_B_ERROR = [
    -0.00178001105222577714,
    -0.0008164344596567469,
    0.007880878010261995,
    -0.1447110071732629,
    0.5823571654525552,
    -0.45808210592918697,
    0.015151515151515152,
]


def tsit5_dense_weights(theta: float) -> list[float]:
    """Tsitouras' continuous-extension weights b_i(theta) for the 7 stages, 0 <= theta <= 1."""
    t = theta
    return [
        -1.0530884977290216 * t * (t - 1.3299890189751412) * (t * t - 1.4364028541716351 * t + 0.7139816917074209),
        0.1017 * t * t * (t * t - 2.1966568338249754 * t + 1.2949852507374631),
        2.490627285651252793 * t * t * (t * t - 2.38535645472061657 * t + 1.57803468208092486),
        -16.54810288924490272 * (t - 1.21712927295533244) * (t - 0.61620406037800089) * t * t,
        47.37952196281928122 * (t - 1.203071208372362603) * (t - 0.658047292653547382) * t * t,
        -34.87065786149660974 * (t - 1.2) * (t - 0.666666666666666667) * t * t,
        2.5 * (t - 1) * (t - 0.6) * t * t,
    ]


def _f64(values: Sequence[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


TSIT5_TABLEAU = _ButcherTableau(
    alpha=_f64(_C),
    beta=[_f64(row) for row in _A],
    c_sol=_f64(_A[-1] + [0.0]),
    c_error=_f64(_B_ERROR),
)
TSIT5_C_MID = _f64(tsit5_dense_weights(0.5))


class Tsit5Solver(RKAdaptiveStepsizeODESolver):
    """Tsitouras 5(4): the default explicit solver of DifferentialEquations.jl, for torchdiffeq.

    Seven stages (the last reused as the first of the next step), a 5th-order solution and an
    embedded 4th-order error estimate. Often needs fewer steps than dopri5 at the same tolerance.
    """

    order = 5
    tableau = TSIT5_TABLEAU
    mid = TSIT5_C_MID


def register_tsit5(solvers: dict[str, type] = SOLVERS) -> None:
    """Make ``method="tsit5"`` mean :class:`Tsit5Solver` in torchdiffeq's table of solvers.

    torchdiffeq's development branch ships a Tsit5 of its own (another dense output, so other numbers) under the
    same name, with the same version number as the release; it stays available as ``"tsit5_torchdiffeq"``.

    Args:
        solvers: the table to register in (torchdiffeq's ``SOLVERS``).
    """
    existing = solvers.get("tsit5")
    if existing is not None and existing is not Tsit5Solver:
        solvers.setdefault("tsit5_torchdiffeq", existing)
    solvers["tsit5"] = Tsit5Solver


register_tsit5()


def available_methods() -> list[str]:
    """Names accepted as ``method=`` / ``solver=``."""
    return sorted(name for name in SOLVERS if name != "scipy_solver")


@functools.cache
def adaptive_methods() -> tuple[str, ...]:
    """Methods with step-size control and dense output (required by the continuous adjoints)."""
    return tuple(sorted(
        n for n, cls in SOLVERS.items() if isinstance(cls, type) and issubclass(cls, RKAdaptiveStepsizeODESolver)
    ))


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------
def check_method(method: str, *, need_dense: bool = False) -> str:
    """Return ``method`` if it names a solver, else raise :class:`InputError` listing the choices."""
    names = adaptive_methods() if need_dense else available_methods()
    if not isinstance(method, str) or method not in names:
        what = "an adaptive Runge-Kutta solver (the adjoint needs its dense output)" if need_dense else "a solver"
        raise InputError(f"unknown solver {method!r}: expected {what}, one of {', '.join(names)}")
    return method


def check_time_span(t: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """Return ``t`` as a 1-D tensor after checking it is finite and strictly monotone."""
    if not isinstance(t, torch.Tensor):
        if isinstance(t, (str, bytes)) or not isinstance(t, (Sequence, np.ndarray)):
            raise InputError(f"the time span must be a sequence of at least two times, like (0.0, 1.0); "
                             f"got {describe(t)}")
        try:
            t = torch.as_tensor(t)
        except (TypeError, ValueError, RuntimeError):
            raise InputError(f"the time span must hold numbers only, like (0.0, 1.0); got {describe(t)}") from None
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
    """Raise :class:`InputError` unless both tolerances are positive finite numbers (one number each)."""
    for name, value in (("rtol", rtol), ("atol", atol)):
        check_number(name, value, example="1e-3")


def check_state(y0: object, *, name: str = "the initial state") -> torch.Tensor:
    """Return ``y0`` if it is a non-empty float32 or float64 tensor, else raise :class:`InputError`."""
    if not isinstance(y0, torch.Tensor):
        fix = ": convert it with torch.as_tensor(y0, dtype=torch.float32)" if isinstance(y0, (np.ndarray, list)) else ""
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
    """Refuse tolerances far below what ``dtype`` resolves: the solver would crawl to its step limit."""
    eps = torch.finfo(dtype).eps
    floor = 1e-3 * eps
    if float(rtol) < floor and float(atol) < floor:
        raise InputError(
            f"rtol={float(rtol):g} and atol={float(atol):g} ask for more accuracy than a {dtype} state can hold "
            f"(machine epsilon {eps:.1e}): loosen them to at least {floor:.0e}, or solve in float64 (y0.double())"
        )


@functools.cache
def solver_options(method: str) -> tuple[str, ...]:
    """Names accepted in ``options={...}`` by ``method`` (read from the solver's constructor)."""
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


# --------------------------------------------------------------------------------------------
# Dense output
# --------------------------------------------------------------------------------------------
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
        if not self.knots:
            self.knots.append(s0)
        self.knots.append(s1)
        self.coefficients.append([c.detach() for c in coefficients])

    @property
    def num_steps(self) -> int:
        return len(self.coefficients)

    @property
    def step_times(self) -> list[float]:
        """Accepted step boundaries in the caller's time, in the order they were taken."""
        return [self.sign * s for s in self.knots]

    def tensors(self) -> list[torch.Tensor]:
        """Every stored tensor (to account for the memory the solution holds)."""
        return [c for coeffs in self.coefficients for c in coeffs]

    def nbytes(self) -> int:
        return sum(c.numel() * c.element_size() for c in self.tensors())

    @property
    def span(self) -> tuple[float, float]:
        """First and last time covered by the accepted steps, in the caller's time."""
        return self.sign * self.knots[0], self.sign * self.knots[-1]

    def __call__(self, t: float | torch.Tensor) -> torch.Tensor:
        """u(t) for t inside the solved span; anywhere else is refused.

        Outside the span a step's polynomial would be extrapolated, and extrapolation amplifies the
        rounding errors in its coefficients: a value read there is not the solution.
        """
        s = self.sign * float(t)
        lo, hi = self.knots[0], self.knots[-1]
        slack = 1e-12 * max(abs(lo), abs(hi), hi - lo)  # the rounding of t0 + c * dt at a step's end
        if not lo - slack <= s <= hi + slack:
            a, b = self.span
            raise InputError(
                f"the dense solution covers t in [{min(a, b):.6g}, {max(a, b):.6g}] and cannot be evaluated at "
                f"t={float(t):.6g}: extrapolating a step's polynomial does not give the solution. Solve over a span "
                "that contains t"
            )
        i = min(max(bisect.bisect_right(self.knots, s) - 1, 0), self.num_steps - 1)
        s0, s1 = self.knots[i], self.knots[i + 1]
        return evaluate_polynomial(self.coefficients[i], (s - s0) / (s1 - s0))


# --------------------------------------------------------------------------------------------
# Running a solve
# --------------------------------------------------------------------------------------------
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

    ``t`` may be increasing or decreasing. ``on_step(t_start, t_end, coefficients)`` is called after
    every accepted step with the step's interpolating polynomial (times in the caller's variable).
    Differentiable by plain autograd when called with gradients enabled.

    By default an adaptive solver, as in torchdiffeq, lets its last step run past ``t[-1]`` and
    interpolates back. ``land_on_times=True`` shortens the steps so that each one ends exactly on the
    next time of ``t`` instead: no stage of any step then looks beyond the span. The adjoint solves
    use it, because their right-hand side reads a stored forward solution that exists only there.

    ``inputs_checked=True`` says the caller has already run these checks on ``y0`` (a float32/float64
    tensor), ``t`` (a finite, strictly monotone 1-D tensor on y0's device), ``method`` and ``options``
    (as :func:`~nodeutils.sensitivity.odeint` does once per solve), so they are not repeated here
    (they still run while TorchDynamo traces the solve, which keeps the traced graphs unchanged).
    """
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
    """Evaluate a step's interpolating polynomial at ``fraction`` in [0, 1] of the step."""
    total = coefficients[0]
    power = 1.0
    for c in coefficients[1:]:
        power *= fraction
        total = total + power * c
    return total


def convergence_order(errors: Sequence[float], step_sizes: Sequence[float]) -> float:
    """Least-squares slope of log(error) against log(step size): the empirical order of a method."""
    xs = [math.log(h) for h in step_sizes]
    ys = [math.log(e) for e in errors]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
