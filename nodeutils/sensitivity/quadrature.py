"""The adjoints that solve lambda alone backward and integrate dL/dp by quadrature: QuadratureAdjoint, GaussAdjoint."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..checks import check_int
from ..solvers import evaluate_polynomial, integrate
from .continuous import ForwardRecord, _LambdaOnlyAdjoint
from .problem import Problem, flatten_tensors

__all__ = ["kronrod15_rule", "QuadratureAdjoint", "gauss_legendre", "GaussAdjoint"]


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
    """Nodes on [-1, 1], Kronrod-15 weights and embedded Gauss-7 weights (0 off the Gauss nodes).

    Returns:
        ``(nodes, kronrod_weights, gauss_weights)``, 15 nodes in increasing order and each rule's weight per node.
    """
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

    Args:
        autojacvec: how vector-Jacobian products are computed: ``"autograd"``, ``"func"`` or ``"jacobian"``.
        rtol: relative tolerance of the backward solve (``None``: the forward solve's).
        atol: absolute tolerance of the backward solve (``None``: the forward solve's).
        max_panels: the most Gauss-Kronrod panels per interval (the bisection stops there).

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

        Args:
            problem: the problem solved forward.
            record: what the forward solve kept.
            grad_ys: dL/dy(t_i), shape ``(len(t), *y0.shape)``.

        Returns:
            ``(dL/du(t0), [dL/dp_i])``, each dL/dp_i shaped like its parameter leaf.

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


def gauss_legendre(n: int) -> tuple[list[float], list[float]]:
    """n Gauss-Legendre nodes as fractions of [0, 1] and weights summing to 1.

    Args:
        n: the number of nodes, a positive integer.

    Returns:
        ``(fractions, weights)``, two lists of n floats, the fractions in increasing order.
    """
    n = check_int("n", n, minimum=1, hint="the number of Gauss-Legendre nodes, e.g. 4")
    x, w = np.polynomial.legendre.leggauss(n)
    return ((x + 1) / 2).tolist(), (w / 2).tolist()


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

        Args:
            problem: the problem solved forward.
            record: what the forward solve kept.
            grad_ys: dL/dy(t_i), shape ``(len(t), *y0.shape)``.

        Returns:
            ``(dL/du(t0), [dL/dp_i])``, each dL/dp_i shaped like its parameter leaf.

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


# --------------------------------------------------------------------------------------------
# Entry points
