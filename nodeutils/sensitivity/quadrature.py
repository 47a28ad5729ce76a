"""The adjoints that solve lambda alone backward and integrate dL/dp by quadrature: QuadratureAdjoint, GaussAdjoint."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..checks import check_int
from ..solve import DenseSolution, SolveCounter, evaluate_polynomial, integrate
from .continuous import ForwardRecord, _ContinuousAdjoint
from .problem import Problem, flatten_tensors
from .rules import gauss_legendre, kronrod15_rule
from .vjp import make_vjp

__all__ = ["QuadratureAdjoint", "GaussAdjoint"]


class _LambdaOnlyAdjoint(_ContinuousAdjoint):
    """Solve lambda alone backward; the parameter integral is computed separately by quadrature."""

    def integrate_lambda(self, problem: Problem, record: ForwardRecord, grad_ys: torch.Tensor,
                         on_interval: Callable) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Solve lambda backward interval by interval; ``on_interval`` solves one and adds its share of dL/dp.

        Args:
            problem: the problem solved forward.
            record: what the forward solve kept.
            grad_ys: dL/dy(t_i), shape ``(len(t), *y0.shape)``.
            on_interval: ``(lambda_rhs, integrand, lam, t_from, t_to, rtol, atol, counter, grads) -> (lams, dense)``
                solves d lambda/dt = ``lambda_rhs`` from ``t_from`` back to ``t_to`` (``lams``: lambda at both ends)
                and adds the interval's integral of ``integrand(t, lam_t)`` (lambda^T df/dp, one tensor per
                parameter) into ``grads``.

        Returns:
            ``(dL/du(t0), [dL/dp_i])``.

        Raises:
            NonFiniteStateError: lambda became NaN or infinite.
            SolverError: a backward solve or checkpoint re-solve failed.
        """
        vjp = make_vjp(self.autojacvec, problem.rhs)
        rtol, atol = self.tolerances(problem)
        grid, leaves = record.grid, problem.leaves
        grads = [torch.zeros_like(p) for p in leaves]

        def solve_interval(k: int, u_of: DenseSolution, lam: torch.Tensor, counter: SolveCounter) -> torch.Tensor:
            def lambda_rhs(t_, lam_t):
                a_u, _ = vjp(t_, u_of.clamped(t_).to(lam_t.dtype), lam_t, leaves, True, False)
                return -a_u

            def param_integrand(t_, lam_t):
                counter.nfe += 1
                tt = torch.tensor(t_, dtype=lam_t.dtype, device=lam_t.device)
                return vjp(tt, u_of(tt).to(lam_t.dtype), lam_t, leaves, False, True)[1]

            problem.stats.backward_state_size = lam.numel()
            lams, _ = on_interval(lambda_rhs, param_integrand, lam, grid[k + 1], grid[k], rtol, atol, counter, grads)
            return lams[-1]

        return self.sweep(problem, record, grad_ys, solve_interval), grads


class QuadratureAdjoint(_LambdaOnlyAdjoint):
    """Solve lambda backward and keep its dense solution; then integrate lambda^T df/dp adaptively.

    The integral over each interval is computed with Gauss-Kronrod 7-15 panels: a panel whose Kronrod and Gauss
    estimates agree within the adjoint's tolerances is accepted, any other is bisected (each panel is judged on
    its own, where Julia's QuadGK splits the worst panel until the total error estimate meets the tolerance).
    Memory: the forward and the backward dense solutions.

    Args:
        autojacvec: how vector-Jacobian products are computed: ``"autograd"``, ``"func"`` or ``"jacobian"``.
        rtol: relative tolerance of the backward solve (``None``: the forward solve's).
        atol: absolute tolerance of the backward solve (``None``: the forward solve's).
        max_panels: how many Gauss-Kronrod panels are evaluated per interval before every remaining one is accepted.

    Raises:
        InputError: an unknown ``autojacvec``, a tolerance that is not a positive number, or ``max_panels`` below 1.
    """

    name = "quadrature"

    def __init__(self, autojacvec: str = "autograd", rtol: float | None = None, atol: float | None = None,
                 max_panels: int = 64) -> None:
        super().__init__(autojacvec, rtol, atol)
        self.max_panels = check_int("max_panels", max_panels, minimum=1,
                                    hint="the number of Gauss-Kronrod panels per interval, e.g. 64")

    def backward(self, problem: Problem, record: ForwardRecord,
                 grad_ys: torch.Tensor) -> tuple[torch.Tensor, list]:
        """Solve lambda backward keeping its dense solution, then integrate lambda^T df/dp by adaptive quadrature.

        Arguments and result as for the continuous adjoints' shared ``backward``: ``(dL/du(t0), [dL/dp_i])``.

        Raises:
            InputError: the algorithm's own rtol and atol ask for more precision than the state's dtype holds.
            SolverError: lambda became NaN or infinite, or a backward solve failed.
        """
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
                err = float(flatten_tensors([x - y for x, y in zip(k, g)], dtype).abs().max()) if grads else 0.0
                scale = float(flatten_tensors(k, dtype).abs().max()) if grads else 0.0
                if err <= max(atol, rtol * scale) or panels >= self.max_panels:
                    for acc, x in zip(grads, k):
                        acc += x  # mu(t0) = \int_{t0}^{T} lambda^T df/dp dt
                else:
                    mid = 0.5 * (a + b)
                    stack += [(a, mid), (mid, b)]
            return lams, lam_dense

        return self.integrate_lambda(problem, record, grad_ys, on_interval)


class GaussAdjoint(_LambdaOnlyAdjoint):
    """Solve lambda backward; add each accepted step's share of dL/dp by Gauss-Legendre quadrature.

    The parameter gradient is accumulated into one tensor per parameter while the backward solve
    runs, so parameters keep their own shapes and nesting and never join the ODE state. Memory: the
    forward dense solution, or only checkpoints with ``checkpointing=True`` (as for
    :class:`InterpolatingAdjoint`). ``nodes`` Gauss points per step integrate polynomials of degree
    2 * nodes - 1 exactly.

    Args:
        autojacvec: how vector-Jacobian products are computed: ``"autograd"``, ``"func"`` or ``"jacobian"``.
        rtol: relative tolerance of the backward solve (``None``: the forward solve's).
        atol: absolute tolerance of the backward solve (``None``: the forward solve's).
        nodes: Gauss-Legendre nodes per step, 1 to 64.
        checkpointing: whether to keep checkpoints of u instead of the dense forward solution.
        checkpoints: extra times inside the time span at which u is kept (only with ``checkpointing=True``).

    Raises:
        InputError: an unknown ``autojacvec``, a tolerance that is not a positive number, ``nodes`` outside 1-64,
            or ``checkpoints`` that are not numbers or come without ``checkpointing=True``.
    """

    name = "gauss"

    def __init__(self, autojacvec: str = "autograd", rtol: float | None = None, atol: float | None = None,
                 nodes: int = 4, checkpointing: bool = False, checkpoints: Sequence[float] | None = None) -> None:
        super().__init__(autojacvec, rtol, atol, checkpointing, checkpoints)
        self.nodes = check_int("nodes", nodes, minimum=1, maximum=64,
                               hint="the number of Gauss-Legendre nodes per step, 1 to 64 (default 4)")

    def backward(self, problem: Problem, record: ForwardRecord,
                 grad_ys: torch.Tensor) -> tuple[torch.Tensor, list]:
        """Solve lambda backward, adding each accepted step's share of dL/dp by Gauss-Legendre quadrature.

        Arguments and result as for the continuous adjoints' shared ``backward``: ``(dL/du(t0), [dL/dp_i])``.

        Raises:
            InputError: the algorithm's own rtol and atol ask for more precision than the state's dtype holds.
            SolverError: lambda became NaN or infinite, or a backward solve or checkpoint re-solve failed.
        """
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
