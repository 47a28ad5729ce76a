"""nodeutils.tsit5: the Tsitouras 5(4) tableau, its dense output and its registration with torchdiffeq."""

import math

import pytest
import torch
import torchdiffeq
from helpers import convergence_order, oscillator

from nodeutils.checks import available_methods
from nodeutils.solve import integrate
from nodeutils.tsit5 import TSIT5_TABLEAU, Tsit5Solver, register_tsit5, tsit5_dense_weights


def _tableau_arrays():
    c = torch.cat([torch.zeros(1, dtype=torch.float64), TSIT5_TABLEAU.alpha])
    a = torch.zeros(7, 7, dtype=torch.float64)
    for i, row in enumerate(TSIT5_TABLEAU.beta):
        a[i + 1, : len(row)] = row
    return a, TSIT5_TABLEAU.c_sol, c


def _order_conditions(w, a, c):
    """sum(w * Phi(tree)) and 1 / gamma(tree) for the 17 rooted trees with at most 5 nodes, by order."""
    ac = a @ c
    return {
        1: {"1": (w.sum(), 1.0)},
        2: {"c": (w @ c, 1 / 2)},
        3: {"c^2": (w @ c**2, 1 / 3), "Ac": (w @ ac, 1 / 6)},
        4: {"c^3": (w @ c**3, 1 / 4), "cAc": (w @ (c * ac), 1 / 8), "Ac^2": (w @ (a @ c**2), 1 / 12),
            "AAc": (w @ (a @ ac), 1 / 24)},
        5: {"c^4": (w @ c**4, 1 / 5), "c^2Ac": (w @ (c**2 * ac), 1 / 10), "c(Ac)^2": (w @ ac**2, 1 / 20),
            "cAc^2": (w @ (c * (a @ c**2)), 1 / 15), "cAAc": (w @ (c * (a @ ac)), 1 / 30),
            "Ac^3": (w @ (a @ c**3), 1 / 20), "AcAc": (w @ (a @ (c * ac)), 1 / 40),
            "AAc^2": (w @ (a @ (a @ c**2)), 1 / 60), "AAAc": (w @ (a @ (a @ ac)), 1 / 120)},
    }


@pytest.mark.parametrize("solution, order", [("5th-order b", 5), ("embedded b_hat", 4)])
def test_tsit5_weights_satisfy_their_order_conditions(solution, order):
    a, b, c = _tableau_arrays()
    w = b if order == 5 else b - TSIT5_TABLEAU.c_error  # the error weights are b - b_hat
    conditions = _order_conditions(w, a, c)
    # Measured: every condition up to the method's order holds to 9e-16; 1e-14 leaves rounding room only.
    for k in range(1, order + 1):
        for name, (value, expected) in conditions[k].items():
            assert abs(float(value) - expected) < 1e-14, (solution, name)
    if order == 4:  # a genuine 4th-order companion: it misses 5th-order conditions (by 1e-4 to 9e-4)
        assert max(abs(float(v) - e) for v, e in conditions[5].values()) > 5e-4
    assert (a.sum(1) - c).abs().max() < 8e-15  # row-sum condition (measured 8e-16)


def test_tsit5_dense_weights_match_endpoints():
    # Measured: 1.7e-16 and 1.8e-15 (the published coefficients are rounded to double precision).
    assert sum(tsit5_dense_weights(0.37)) == pytest.approx(0.37, rel=0, abs=2e-15)
    assert tsit5_dense_weights(1.0) == pytest.approx(TSIT5_TABLEAU.c_sol.tolist(), rel=0, abs=2e-14)
    assert tsit5_dense_weights(0.0) == [0.0] * 7


def test_tsit5_converges_with_order_five_on_fixed_steps():
    y0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    exact = torch.tensor([math.cos(2.0), -math.sin(2.0)], dtype=torch.float64)
    steps = [0.2, 0.1, 0.05, 0.025]
    errors = []
    for h in steps:  # huge tolerances + max_step = first_step = h give a fixed step size
        ys, _ = integrate(oscillator, y0, torch.tensor([0.0, 2.0], dtype=torch.float64), method="tsit5",
                          rtol=1e10, atol=1e10, options={"first_step": h, "max_step": h})
        errors.append(float((ys[-1] - exact).norm()))
    assert 4.7 < convergence_order(errors, steps) < 5.5


def test_tsit5_agrees_with_dopri5_on_a_smooth_problem():
    def f(t, y):
        return torch.sin(t) * y - 0.3 * y**3

    y0 = torch.linspace(-1, 1, 5, dtype=torch.float64)
    t = torch.linspace(0, 3, 7, dtype=torch.float64)
    ours = torchdiffeq.odeint(f, y0, t, method="tsit5", rtol=1e-9, atol=1e-9)
    reference = torchdiffeq.odeint(f, y0, t, method="dopri5", rtol=1e-11, atol=1e-11)
    assert (ours - reference).abs().max() < 2e-8  # measured 2.9e-9


def test_tsit5_is_listed_among_methods():
    assert "tsit5" in available_methods()


def test_tsit5_is_ours_even_where_torchdiffeq_ships_one():
    from torchdiffeq._impl.odeint import SOLVERS

    assert SOLVERS["tsit5"] is Tsit5Solver

    class TheirTsit5:  # what torchdiffeq's development branch registers under the same name
        pass

    table = {"tsit5": TheirTsit5, "dopri5": object}
    register_tsit5(table)
    assert table["tsit5"] is Tsit5Solver and table["tsit5_torchdiffeq"] is TheirTsit5 and table["dopri5"] is object
    register_tsit5(table)  # again: nothing changes
    assert table["tsit5"] is Tsit5Solver and table["tsit5_torchdiffeq"] is TheirTsit5
