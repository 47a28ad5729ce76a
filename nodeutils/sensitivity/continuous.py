"""The continuous adjoints' shared machinery (the forward record, one autograd node) and the interpolating adjoint."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ..checks import check_bool, check_checkpoints, check_method, check_number, check_vjp
from ..errors import InputError, NonFiniteStateError
from ..solve import DenseSolution, SolveCounter, integrate
from .discrete import AutogradAdjoint
from .problem import Problem, SensitivityAlgorithm, unflatten_like
from .vjp import make_vjp

__all__ = ["ForwardRecord", "InterpolatingAdjoint"]


@dataclass
class ForwardRecord:
    """What a continuous adjoint keeps from its forward solve for the backward pass.

    ``grid`` holds the output times and any checkpoints, in the order the solve passed them; ``outputs[i]``
    is the grid index of output time i. Either ``dense`` (the dense forward solution) or ``checkpoint_states``
    (u at every grid time, ``checkpointing=True``) is set, except in the bookkeeping copy of :meth:`without_tensors`.
    """

    grid: list[float]
    outputs: list[int]
    dense: DenseSolution | None = None
    checkpoint_states: torch.Tensor | None = None
    #: Tensors per step of ``dense`` (kept when the tensors themselves are handed to ``save_for_backward``).
    coefficients_per_step: list[int] = field(default_factory=list)

    def tensors(self) -> list[torch.Tensor]:
        """Every tensor the record holds.

        Returns:
            ``[checkpoint_states]``, or the dense solution's coefficient tensors, step by step.
        """
        return [self.checkpoint_states] if self.dense is None else self.dense.tensors()

    def without_tensors(self) -> ForwardRecord:
        """The bookkeeping alone (grid, step times, tensors per step): what the autograd node keeps itself.

        Returns:
            A record without tensors; :meth:`with_tensors` puts them back.
        """
        if self.dense is None:
            return ForwardRecord(self.grid, self.outputs)
        shell = DenseSolution(sign=self.dense.sign, knots=list(self.dense.knots))
        return ForwardRecord(self.grid, self.outputs, dense=shell,
                             coefficients_per_step=[len(c) for c in self.dense.coefficients])

    def with_tensors(self, tensors: Sequence[torch.Tensor]) -> ForwardRecord:
        """Inverse of :meth:`without_tensors`, from the tensors ``save_for_backward`` kept.

        Args:
            tensors: the tensors :meth:`tensors` listed, in that order.

        Returns:
            The complete record.
        """
        if self.dense is None:
            return ForwardRecord(self.grid, self.outputs, checkpoint_states=tensors[0])
        coefficients, start = [], 0
        for size in self.coefficients_per_step:
            coefficients.append(list(tensors[start:start + size]))
            start += size
        dense = DenseSolution(sign=self.dense.sign, knots=self.dense.knots, coefficients=coefficients)
        return ForwardRecord(self.grid, self.outputs, dense=dense)


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
        self.checkpoints = None if checkpoints is None else check_checkpoints(checkpoints)

    def solve(self, problem: Problem, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Solve as one autograd node whose backward runs this adjoint (a plain solve, no graph, in no-grad mode).

        Arguments and result as for :meth:`~nodeutils.sensitivity.problem.SensitivityAlgorithm.solve`.

        Raises:
            InputError: a method without dense output, or ``checkpoints`` outside the open time span.
            SolverError: the forward solve failed.
        """
        check_method(problem.method, need_dense=True)
        if not torch.is_grad_enabled():
            return AutogradAdjoint().solve(problem, y0, t)
        return _AdjointFunction.apply(self, problem, y0, t, *problem.leaves)

    # Forward pass: what to keep. -------------------------------------------------------------
    def record_forward(self, problem: Problem, y0: torch.Tensor,
                       t: torch.Tensor) -> tuple[torch.Tensor, ForwardRecord]:
        """Solve forward; keep the dense solution, or only checkpoints when ``checkpointing=True``.

        Returns:
            The states at ``t`` and the record the backward pass reads.
        """
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
        if self.checkpointing:
            record = ForwardRecord(grid, outputs, checkpoint_states=states)
        else:
            record = ForwardRecord(grid, outputs, dense=dense)
        problem.stats.stored_bytes += sum(x.numel() * x.element_size() for x in record.tensors())
        return states[outputs], record

    def state_on(self, problem: Problem, record: ForwardRecord, k: int, counter: SolveCounter) -> DenseSolution:
        """u(t) on grid interval k (between grid[k] and grid[k+1]); re-solved from a checkpoint if needed."""
        if record.dense is not None:
            return record.dense
        span = torch.tensor(record.grid[k:k + 2], dtype=torch.float64)
        _, dense = integrate(problem.closed(), record.checkpoint_states[k], span,
                             method=problem.method, rtol=problem.rtol, atol=problem.atol, options=problem.options,
                             dense=True, counter=counter, phase="checkpoint re-solve")
        return dense

    # Backward pass. -----------------------------------------------------------------------------
    def tolerances(self, problem: Problem) -> tuple[float, float]:
        """The backward solve's (rtol, atol): the algorithm's own, else the forward solve's."""
        return (self.rtol or problem.rtol, self.atol or problem.atol)

    def sweep(self, problem: Problem, record: ForwardRecord, grad_ys: torch.Tensor,
              solve_interval: Callable[[int, DenseSolution, torch.Tensor, SolveCounter], torch.Tensor]) -> torch.Tensor:
        """Carry lambda backward over the grid intervals, last to first, adding dL/dy where it reaches an output time.

        ``solve_interval`` carries whatever else the algorithm integrates along with lambda itself (the
        interpolating adjoint's mu, the quadrature adjoints' parameter gradients).

        Args:
            problem: the problem solved forward.
            record: what the forward solve kept.
            grad_ys: dL/dy(t_i), shape ``(len(t), *y0.shape)``.
            solve_interval: ``(k, u, lam, counter) -> lam`` solves from ``grid[k+1]`` back to ``grid[k]`` with u(t)
                read from ``u`` (a dense solution covering the interval) and returns lambda at ``grid[k]``.

        Returns:
            lambda at the first grid time, dL/du(t0); the backward counts are added to ``problem.stats``.

        Raises:
            NonFiniteStateError: lambda became NaN or infinite.
            SolverError: a backward solve or checkpoint re-solve failed.
        """
        grid = record.grid
        grad_at = {k: grad_ys[i] for i, k in enumerate(record.outputs)}
        lam = grad_ys[-1].clone()  # the last grid time is the last output time (checkpoints lie inside the span)
        counter = SolveCounter()
        for k in range(len(grid) - 2, -1, -1):
            lam = solve_interval(k, self.state_on(problem, record, k, counter), lam, counter) + grad_at.get(k, 0)
            _check_finite("state lambda", lam, grid[k])
        problem.stats.nfe_backward += counter.nfe
        problem.stats.steps_backward += counter.steps
        return lam

    def backward(self, problem: Problem, record: ForwardRecord,
                 grad_ys: torch.Tensor) -> tuple[torch.Tensor, list]:
        """dL/du(t0) and dL/dp for each parameter leaf, from dL/dy at the output times.

        Args:
            problem: the problem solved forward.
            record: what the forward solve kept.
            grad_ys: dL/dy(t_i), shape ``(len(t), *y0.shape)``.

        Returns:
            ``(dL/du(t0), [dL/dp_i])``.
        """
        raise NotImplementedError


class _AdjointFunction(torch.autograd.Function):
    """The continuous adjoints as one autograd node.

    The forward record's tensors live only in ``save_for_backward``, so autograd frees them after the
    first backward and refuses a second one (unless ``retain_graph=True``), as for any PyTorch operation.
    """

    @staticmethod
    def forward(ctx, sensealg, problem, y0, t, *leaves):
        with torch.no_grad():
            ys, record = sensealg.record_forward(problem, y0, t)
        ctx.sensealg, ctx.problem, ctx.record = sensealg, problem, record.without_tensors()
        ctx.save_for_backward(*record.tensors())
        return ys

    @staticmethod
    def backward(ctx, grad_ys):
        if torch.is_grad_enabled():  # backward(create_graph=True) or autograd.grad(..., create_graph=True)
            raise InputError(
                f"{type(ctx.sensealg).__name__} computes gradients once: higher-order gradients (create_graph=True) "
                "are not supported through it. Use sensealg=AutogradAdjoint() (sensealg='autograd') for them"
            )
        record = ctx.record.with_tensors(ctx.saved_tensors)  # raises after a freed first backward
        grad_y0, grad_leaves = ctx.sensealg.backward(ctx.problem, record, grad_ys)
        return (None, None, grad_y0, None, *grad_leaves)


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

    Args:
        autojacvec: how vector-Jacobian products are computed: ``"autograd"``, ``"func"`` or ``"jacobian"``.
        rtol: relative tolerance of the backward solve (``None``: the forward solve's).
        atol: absolute tolerance of the backward solve (``None``: the forward solve's).
        checkpointing: whether to keep checkpoints of u instead of the dense forward solution.
        checkpoints: extra times inside the time span at which u is kept (only with ``checkpointing=True``).

    Raises:
        InputError: an unknown ``autojacvec``, a tolerance that is not a positive number, a ``checkpointing``
            that is not a bool, or ``checkpoints`` that are not numbers or come without ``checkpointing=True``.
    """

    name = "interpolating"

    def backward(self, problem: Problem, record: ForwardRecord,
                 grad_ys: torch.Tensor) -> tuple[torch.Tensor, list]:
        """Integrate lambda and the running parameter integral mu together, backward over each grid interval.

        Arguments and result as for the continuous adjoints' shared ``backward``: ``(dL/du(t0), [dL/dp_i])``.

        Raises:
            InputError: the algorithm's own rtol and atol ask for more precision than the state's dtype holds.
            SolverError: lambda became NaN or infinite, or a backward solve or checkpoint re-solve failed.
        """
        vjp = make_vjp(self.autojacvec, problem.rhs)
        rtol, atol = self.tolerances(problem)
        leaves, grid = problem.leaves, record.grid
        shape, n = grad_ys.shape[1:], grad_ys[0].numel()
        mu = torch.zeros(sum(p.numel() for p in leaves), dtype=grad_ys.dtype, device=grad_ys.device)

        def solve_interval(k: int, u_of: DenseSolution, lam: torch.Tensor, counter: SolveCounter) -> torch.Tensor:
            nonlocal mu

            def adjoint_rhs(t_, z):
                lam_t = z[:n].view(shape)
                dtype = z.dtype
                u = u_of.clamped(t_)  # t_ lies past the interval only in the first-step probe
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
            mu = zs[-1][n:]
            return zs[-1][:n].view(shape).clone()

        lam = self.sweep(problem, record, grad_ys, solve_interval)
        return lam, unflatten_like(mu, leaves)


