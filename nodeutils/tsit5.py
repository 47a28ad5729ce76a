"""Tsitouras' 5(4) Runge-Kutta pair for torchdiffeq: ``method="tsit5"``.

torchdiffeq already has the adaptive Runge-Kutta loop (step-size control, FSAL, interpolation). A new
explicit method is therefore just data: its Butcher tableau, its error weights, and the weights that
give the solution at the middle of a step (used for torchdiffeq's 4th-order dense interpolation).
:class:`Tsit5Solver` is exactly that; importing nodeutils registers it under ``method="tsit5"``
(:func:`register_tsit5`), so that the name means this solver whatever torchdiffeq release is installed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchdiffeq._impl.odeint import SOLVERS
from torchdiffeq._impl.rk_common import RKAdaptiveStepsizeODESolver, _ButcherTableau

__all__ = ["TSIT5_TABLEAU", "Tsit5Solver", "register_tsit5", "tsit5_dense_weights"]

# Ch. Tsitouras, "Runge-Kutta pairs of order 5(4) satisfying only the first column simplifying assumption",
# Computers & Mathematics with Applications 62 (2011) 770-775.
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
    """Tsitouras' continuous-extension weights b_i(theta) for the 7 stages, 0 <= theta <= 1.

    Args:
        theta: the fraction of the step.

    Returns:
        The 7 weights, with which the solution at ``t0 + theta * dt`` is ``y0 + dt * sum(b_i(theta) * k_i)``.
    """
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
