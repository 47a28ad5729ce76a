"""nodeutils.solve: the solve engine (integrate, dense output, step counting, friendly solver errors).

The golden step counts pin the solver's efficiency: a solver can give right answers and still waste work
(a wrong error estimate makes it take five times the steps). The counts are deterministic (float64 problems)
and do not depend on the CPU or the thread count. After a deliberate change to the solver, regenerate them
with ``python tests/test_solve.py`` and paste the printed dictionary here.
"""

import math
import re

import numpy as np
import pytest
import torch
from helpers import oscillator

from nodeutils.errors import InputError, NonFiniteStateError, SolverError, StepLimitError
from nodeutils.solve import SolveCounter, integrate

# (problem, rtol = atol) -> (accepted steps, function evaluations, rejected steps) of a Tsit5 forward solve.
GOLDEN_FORWARD = {
    ("oscillator", 1e-3): (4, 26, 0),
    ("oscillator", 1e-6): (11, 68, 0),
    ("oscillator", 1e-9): (39, 236, 0),
    ("relaxation", 1e-3): (35, 248, 6),
    ("relaxation", 1e-6): (76, 482, 4),
    ("van der pol", 1e-3): (12, 104, 5),
    ("van der pol", 1e-6): (33, 248, 8),
    ("van der pol", 1e-9): (120, 806, 14),
}


def _relaxation(t, y):  # fast decay onto cos(t): the step size is limited by stability at first
    return -50 * (y - torch.cos(t))


def _van_der_pol(t, y):
    return torch.stack([y[1], (1 - y[0] ** 2) * y[1] - y[0]])


PROBLEMS = {
    "oscillator": (oscillator, [1.0, 0.0], 3.0),
    "relaxation": (_relaxation, [0.0], 2.0),
    "van der pol": (_van_der_pol, [2.0, 0.0], 5.0),
}


def forward_counts(problem: str, tol: float) -> tuple[int, int, int]:
    """(accepted steps, evaluations, rejected steps) of one Tsit5 solve of a reference problem."""
    f, y0, horizon = PROBLEMS[problem]
    counter = SolveCounter()
    integrate(f, torch.tensor(y0, dtype=torch.float64), torch.tensor([0.0, horizon], dtype=torch.float64),
              rtol=tol, atol=tol, counter=counter)
    return counter.steps, counter.nfe, counter.rejected


@pytest.mark.parametrize("problem, tol", list(GOLDEN_FORWARD), ids=str)
def test_forward_solve_takes_the_golden_number_of_steps(problem, tol):
    assert forward_counts(problem, tol) == GOLDEN_FORWARD[problem, tol]


def test_evaluations_per_step_follow_the_method():
    # Tsit5 with FSAL: 2 evaluations to start (f(t0) and the initial step-size guess), then 6 per step,
    # accepted or rejected. Checks the counter against the method's structure, not against itself.
    for (problem, tol), (steps, nfe, rejected) in GOLDEN_FORWARD.items():
        assert nfe == 2 + 6 * (steps + rejected), (problem, tol)


def test_oscillator_error_matches_the_tolerance():
    # The oscillator's exact solution is (cos t, -sin t); measured global errors at t = 3: 2.7e-3, 8.9e-7,
    # 3.0e-10 for rtol = atol = 1e-3, 1e-6, 1e-9. Bounds within 10x of these.
    for tol, bound in ((1e-3, 1e-2), (1e-6, 5e-6), (1e-9, 2e-9)):
        ys, _ = integrate(oscillator, torch.tensor([1.0, 0.0], dtype=torch.float64),
                          torch.tensor([0.0, 3.0], dtype=torch.float64), rtol=tol, atol=tol)
        exact = torch.tensor([math.cos(3.0), -math.sin(3.0)], dtype=torch.float64)
        assert float((ys[-1] - exact).abs().max()) < bound, tol


# ---------------------------------------------------------------------------------------------------------------
# Dense output and the steps it is made of
# ---------------------------------------------------------------------------------------------------------------
def test_dense_output_interpolates_between_steps_and_backward_in_time():
    y0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    _, dense = integrate(oscillator, y0, torch.tensor([0.0, 3.0], dtype=torch.float64), rtol=1e-9, atol=1e-9,
                         dense=True)
    # Measured errors against (cos t, -sin t): 5.4e-10 forward, 4.4e-10 backward in time.
    for t in (0.1, 1.234, 2.9):
        assert torch.allclose(dense(t), torch.tensor([math.cos(t), -math.sin(t)], dtype=torch.float64), atol=5e-9)
    ys, back = integrate(oscillator, y0, torch.tensor([3.0, 0.0], dtype=torch.float64), rtol=1e-9, atol=1e-9,
                         dense=True)
    assert back.step_times[0] == 3.0 and back.step_times[-1] <= 0.0
    assert torch.allclose(back(1.0), torch.tensor([math.cos(-2.0), -math.sin(-2.0)], dtype=torch.float64), atol=5e-9)


def test_dense_solution_refuses_to_extrapolate():
    _, dense = integrate(lambda t, u: -u, torch.ones(2, dtype=torch.float64),
                         torch.tensor([0.0, 1.0], dtype=torch.float64), rtol=1e-6, atol=1e-6, dense=True)
    lo, hi = dense.span
    assert lo == 0.0 and hi >= 1.0
    assert torch.allclose(dense(0.5), torch.full((2,), math.exp(-0.5), dtype=torch.float64), atol=1e-6)
    with pytest.raises(InputError, match="cannot be evaluated at t=-0.1"):
        dense(-0.1)
    with pytest.raises(InputError, match="extrapolating"):
        dense(hi + 0.5)


def test_counter_and_on_step_see_every_accepted_step():
    seen = []
    ys, dense = integrate(oscillator, torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), rtol=1e-6, atol=1e-6,
                          dense=True, on_step=lambda a, b, c: seen.append((a, b)))
    assert len(seen) == dense.num_steps > 1
    assert seen[0][0] == 0.0 and seen[-1][1] >= 1.0


@pytest.mark.parametrize("span", [(0.0, 1.0), (1.0, 0.0), (0.0, 0.3, 1.0)])
def test_land_on_times_ends_every_step_on_the_output_times(span):
    t = torch.tensor(span, dtype=torch.float64)
    steps = []
    integrate(lambda t_, u: -u, torch.ones(1, dtype=torch.float64), t, rtol=1e-3, atol=1e-3,
              on_step=lambda a, b, _: steps.append((a, b)), land_on_times=True)
    ends = [b for _, b in steps]
    assert ends[-1] == span[-1]
    assert all(s in ends for s in span[1:])
    direction = 1.0 if span[-1] > span[0] else -1.0
    assert all((b - span[-1]) * direction <= 0 for b in ends)


# ---------------------------------------------------------------------------------------------------------------
# What integrate refuses, and the solver errors it explains
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("t, match", [
    ([0.0, 1.0, 1.0], "strictly increasing"),
    ([0.0, 1.0, 0.5], "strictly increasing"),
    ([0.0], "at least two"),
    ([0.0, float("nan")], "NaN"),
])
def test_bad_time_spans_are_rejected(t, match):
    with pytest.raises(InputError, match=match):
        integrate(oscillator, torch.tensor([1.0, 0.0]), torch.tensor(t))


@pytest.mark.parametrize("rtol, atol", [(-1e-3, 1e-3), (1e-3, 0.0), (float("nan"), 1e-3), (1e-3, float("inf"))])
def test_bad_tolerances_are_rejected(rtol, atol):
    with pytest.raises(InputError, match="must be a positive finite number"):
        integrate(oscillator, torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), rtol=rtol, atol=atol)


def test_unknown_solver_lists_the_choices():
    with pytest.raises(InputError, match="unknown solver 'tsit6'.*tsit5"):
        integrate(oscillator, torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), method="tsit6")


def test_blow_up_reports_the_time_it_happened():
    def explode(t, y):  # y' = y^2 from y(0) = 1 reaches infinity at t = 1
        return y**2

    with pytest.raises(SolverError, match=r"after reaching t=(0\.99|1\.0)"):
        integrate(explode, torch.tensor([1.0]), torch.tensor([0.0, 2.0]), rtol=1e-3, atol=1e-3)


def test_nan_derivative_names_the_time():
    def poisoned(t, y):
        return y * (torch.nan if float(t) > 0.5 else 1.0)

    where = r"between t=0\.\d+ and t=(0\.[5-9]|1)"
    with pytest.raises(NonFiniteStateError, match="derivative became NaN or infinite " + where):
        integrate(poisoned, torch.tensor([1.0]), torch.tensor([0.0, 1.0]))


def test_step_limit_says_how_to_raise_it():
    def stiff(t, y):
        return -1e6 * (y - torch.cos(t))

    with pytest.raises(StepLimitError, match="max_num_steps"):
        integrate(stiff, torch.tensor([0.0]), torch.tensor([0.0, 1.0]), rtol=1e-6, atol=1e-6,
                  options={"max_num_steps": 50})


def test_wrong_rhs_shape_is_reported():
    with pytest.raises(InputError, match="shaped like the state"):
        integrate(lambda t, y: y.sum(), torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0]))


def test_integer_state_is_rejected():
    with pytest.raises(InputError, match="floating-point"):
        integrate(oscillator, torch.tensor([1, 0]), torch.tensor([0.0, 1.0]))


if __name__ == "__main__":  # print the golden dictionary for the current code
    print("GOLDEN_FORWARD = {")
    for key in GOLDEN_FORWARD:
        print(f"    {key!r}: {forward_counts(*key)!r},")
    print("}")


def test_dense_output_is_read_at_one_time_at_a_time():
    _, dense = integrate(oscillator, torch.tensor([1.0, 0.0], dtype=torch.float64),
                         torch.tensor([0.0, 1.0], dtype=torch.float64), rtol=1e-6, atol=1e-6, dense=True)
    assert torch.equal(dense(torch.tensor(0.5, dtype=torch.float64)), dense(0.5))
    with pytest.raises(InputError, match="one time at a time"):
        dense(torch.tensor([0.1, 0.2]))


@pytest.mark.parametrize("kwargs, fragment", [({"func": 3}, "func must be the right-hand side"),
                                              ({"counter": "x"}, "counter must be a SolveCounter()"),
                                              ({"on_step": 3}, "on_step must be a function")])
def test_integrate_refuses_what_it_cannot_call(kwargs, fragment):
    arguments = {"func": oscillator, **kwargs}
    with pytest.raises(InputError, match=re.escape(fragment)):
        integrate(arguments.pop("func"), torch.tensor([1.0, 0.0], dtype=torch.float64),
                  torch.tensor([0.0, 1.0], dtype=torch.float64), **arguments)


@pytest.mark.parametrize("t", [[0.5], None, "a", np.zeros(2)], ids=repr)
def test_dense_output_refuses_anything_but_one_time(t):
    _, dense = integrate(oscillator, torch.tensor([1.0, 0.0], dtype=torch.float64),
                         torch.tensor([0.0, 1.0], dtype=torch.float64), rtol=1e-6, atol=1e-6, dense=True)
    with pytest.raises(InputError, match="dense solution is evaluated at"):
        dense(t)
