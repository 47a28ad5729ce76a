"""Notebook 01's exercises: the reference passes, the placeholder is unanswered, typical mistakes get their hint."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_exercises_numbered_and_reachable, assert_reference_is_correct

from nodeutils.exercises import ____, exercises_of
from nodeutils.exercises import notebook01 as exercises


def test_every_exercise_is_reachable_by_its_name_and_numbered_in_order():
    assert_exercises_numbered_and_reachable(exercises)


@pytest.mark.parametrize("exercise", exercises_of(exercises), ids=lambda e: e.name)
def test_the_reference_solution_is_correct(exercise):
    assert_reference_is_correct(exercise)


# --------------------------------------------------------------------------------------------------------------
# Exercise 1: one Euler step as a residual block
# --------------------------------------------------------------------------------------------------------------
def placeholder(f, u, h):
    return ____


def flipped_sign(f, u, h):
    return u - h * f(u)


def forgot_h(f, u, h):
    return u + f(u)


def forgot_skip_connection(f, u, h):
    return h * f(u)


def returned_the_slope(f, u, h):
    return f(u)


def did_not_move(f, u, h):
    return u


def wrong_point(f, u, h):
    return u + h * f(u + h)


def heun_step(f, u, h):  # two slopes: a better method, but not the Euler step
    k = f(u)
    return u + h / 2 * (k + f(u + h * k))


def first_sample_only(f, u, h):  # broadcasts one sample's slope over the batch
    return u + h * f(u[0])


def summed_over_features(f, u, h):
    return (u + h * f(u)).sum(-1)


def broadcast_to_a_square(f, u, h):
    return u[:, None] + h * f(u)


def transposed(f, u, h):
    return u + h * f(u.T)


def forgot_to_call_f(f, u, h):
    return u + h * f


def forgot_return(f, u, h):
    u + h * f(u)  # noqa: B018


def fixed_step(f, u, h):
    return u + 0.25 * f(u)


def test_euler_step_accepts_the_reference_and_equivalent_forms():
    for answer in (lambda f, u, h: u + h * f(u), lambda f, u, h: torch.add(u, f(u), alpha=h),
                   lambda f, u, h: f(u).mul(h).add(u), lambda f, u, h: (u.float() + h * f(u).float())):
        verdict = exercises.euler_step.verdict(answer)
        assert verdict.startswith("Exercise 1 · one Euler step as a residual block: correct. One Euler step")


def test_euler_step_placeholder_is_not_answered():
    assert exercises.euler_step.verdict(placeholder) == (
        "Exercise 1 · one Euler step as a residual block: not answered yet. Replace ____ with your code and run the "
        "cell again (exercises.euler_step.hint() for a hint).")


@pytest.mark.parametrize(("answer", "phrase"), [
    (flipped_sign, "not yet. Your step goes against the slope"),
    (forgot_h, "not yet. Your step has size 1 whatever h is"),
    (fixed_step, "not yet. With h = 0.5, your result differs"),  # right for the first step size only
    (forgot_skip_connection, "not yet. You returned only the increment h * f(u) and forgot the skip connection"),
    (returned_the_slope, "not yet. You returned the slope f(u), not a new state"),
    (did_not_move, "not yet. Your step does not move"),
    (wrong_point, "not yet. You evaluated f somewhere other than the current state u"),
    (heun_step, "not yet. You evaluated f somewhere other than the current state u"),
    (first_sample_only, "not yet. You evaluated f somewhere other than the current state u"),
    (summed_over_features, "returned a tensor of shape (4,), but the result should have shape (4, 3)"),
    (broadcast_to_a_square, "returned a tensor of shape (4, 4, 3), but the result should have shape (4, 3)"),
    (forgot_return, "returned None: end the function with `return`"),
    (transposed, "mat1 and mat2 shapes cannot be multiplied (3x4 and 3x3) "
                 "(line 2: return u + h * f(u.T)). Your code reshaped a tensor"),
    (forgot_to_call_f, "your code raised TypeError: unsupported operand type(s) for *: 'float' and 'function' "
                       "(line 2: return u + h * f). f is a function: call it"),
], ids=lambda a: getattr(a, "__name__", "phrase"))
def test_euler_step_mistakes_get_their_hint(answer, phrase):
    verdict = exercises.euler_step.verdict(answer)
    phrase = phrase.replace("line 2:", f"line {answer.__code__.co_firstlineno + 1}:")
    assert phrase in verdict
    assert ": correct." not in verdict and "\n" not in verdict


# --------------------------------------------------------------------------------------------------------------
# Exercise 2: a ResNet of n Euler blocks
# --------------------------------------------------------------------------------------------------------------
def solve_placeholder(f, u0, n):
    return ____


def in_place(f, u0, n):
    u = u0
    for _ in range(n):
        u += f(u) / n  # changes the caller's u0
    return u


def unit_steps(f, u0, n):
    u = u0
    for _ in range(n):
        u = u + f(u)
    return u


def one_step_only(f, u0, n):
    return u0 + f(u0) / n


def frozen_slope(f, u0, n):
    u = u0
    for _ in range(n):
        u = u + f(u0) / n
    return u


def one_step_too_many(f, u0, n):
    u = u0
    for _ in range(n + 1):
        u = u + f(u) / n
    return u


def integer_division(f, u0, n):
    u = u0
    for _ in range(n):
        u = u + (1 // n) * f(u)
    return u


def every_state(f, u0, n):
    states = [u0]
    for _ in range(n):
        states.append(states[-1] + f(states[-1]) / n)
    return torch.stack(states)


def a_list_of_states(f, u0, n):
    states = [u0]
    for _ in range(n):
        states.append(states[-1] + f(states[-1]) / n)
    return states


def accurate_solve(f, u0, n):
    import torchdiffeq

    return torchdiffeq.odeint(lambda t, u: f(u), u0, torch.tensor([0.0, 1.0]), method="dopri5")[-1]


def never_calls_f(f, u0, n):
    return u0 * 1.5


def test_euler_solve_accepts_the_reference_and_equivalent_forms():
    def with_euler_steps(f, u0, n):
        u = u0
        for _ in range(n):
            u = torch.add(u, f(u), alpha=1 / n)
        return u

    def recursive(f, u0, n, k=None):
        k = n if k is None else k
        return u0 if k == 0 else recursive(f, u0 + f(u0) / n, n, k - 1)

    for answer in (with_euler_steps, recursive):
        verdict = exercises.euler_solve.verdict(answer)
        assert verdict.startswith("Exercise 2 · a ResNet that converges to the ODE: correct. Against an accurate solve")


def test_euler_solve_correct_message_states_first_order_and_the_blocks_tsit5_is_worth():
    verdict = exercises.euler_solve.verdict(exercises.euler_solve.solution_answer())
    assert "with n = 1, 4, 16, 64 blocks" in verdict and "20 calls of f; Euler needs 199 blocks" in verdict
    errors, tsit5_error, calls, blocks = exercises._euler_facts()
    assert all(3.5 < a / b < 4.5 for a, b in zip(errors[1:-1], errors[2:]))  # four times the blocks, 1/4 the error
    assert calls == 20 and blocks == 199 and tsit5_error < errors[-1]
    # the fewest blocks: n = 199 does as well as Tsit5, n = 198 does not
    net, u0 = exercises._field()
    exact = exercises._accurate()
    with torch.no_grad():
        assert [float((exercises._euler(net, u0, n, 1 / n) - exact).abs().max()) <= tsit5_error
                for n in (198, 199)] == [False, True]


def test_euler_solve_placeholder_is_not_answered():
    assert ": not answered yet." in exercises.euler_solve.verdict(solve_placeholder)


@pytest.mark.parametrize(("answer", "phrase"), [
    (in_place, "not yet. Your code changed u0 in place"),
    (unit_steps, "not yet. Your steps have size 1"),
    (one_step_only, "not yet. You took one step of size 1 / n, not n of them"),
    (frozen_slope, "not yet. Every step used the slope at u0"),
    (one_step_too_many, "not yet. You took 2 steps for n = 1: an off-by-one"),
    (integer_division, "not yet. Your function returns u0 unchanged: check the step size (1 // n is 0"),
    (every_state, "not yet. You returned every state of the solve, stacked"),
    (a_list_of_states, "not yet. euler_solve(f, u0, n) returned a list"),
    (accurate_solve, "not yet. That is an accurate solution of the ODE, not n Euler steps"),
    (never_calls_f, "not yet. Your code never calls f"),
], ids=lambda a: getattr(a, "__name__", "phrase"))
def test_euler_solve_mistakes_get_their_hint(answer, phrase):
    verdict = exercises.euler_solve.verdict(answer)
    assert phrase in verdict
    assert ": correct." not in verdict and "\n" not in verdict


# --------------------------------------------------------------------------------------------------------------
# Exercise 3: calls of f at three tolerances
# --------------------------------------------------------------------------------------------------------------
def _counting(f, calls):
    def counted(t, u):
        calls.append(t)
        return f(t, u)

    return counted


def count_placeholder(f, u0, tol):
    return ____


def default_method(f, u0, tol):
    import torchdiffeq

    calls = []
    torchdiffeq.odeint(_counting(f, calls), u0, torch.tensor([0.0, 1.0]), rtol=tol, atol=tol)
    return len(calls)


def no_tolerances(f, u0, tol):
    import torchdiffeq

    calls = []
    torchdiffeq.odeint(_counting(f, calls), u0, torch.tensor([0.0, 1.0]), method="tsit5")
    return len(calls)


def rtol_only(f, u0, tol):
    import torchdiffeq

    calls = []
    torchdiffeq.odeint(_counting(f, calls), u0, torch.tensor([0.0, 1.0]), method="tsit5", rtol=tol)
    return len(calls)


def atol_only(f, u0, tol):  # same counts as the right answer on the exercise's field, where |u| is about 0.7
    import torchdiffeq

    calls = []
    torchdiffeq.odeint(_counting(f, calls), u0, torch.tensor([0.0, 1.0]), method="tsit5", atol=tol)
    return len(calls)


def returns_the_solution(f, u0, tol):
    import torchdiffeq

    return torchdiffeq.odeint(f, u0, torch.tensor([0.0, 1.0]), method="tsit5", rtol=tol, atol=tol)


def counts_steps(f, u0, tol):
    return (exercises.count_evaluations.solution_answer()(f, u0, tol) - 2) // 6


def counts_from_one(f, u0, tol):
    return exercises.count_evaluations.solution_answer()(f, u0, tol) + 1


def returns_a_float(f, u0, tol):
    return float(exercises.count_evaluations.solution_answer()(f, u0, tol))


def test_count_evaluations_correct_message_decodes_the_counts():
    verdict = exercises.count_evaluations.verdict(exercises.count_evaluations.solution_answer())
    assert verdict == (
        "Exercise 3 · what a tighter tolerance costs: correct. 20, 32 and 62 calls at tol = 1e-3, 1e-5 and 1e-7: "
        "2 + 6 × 3, 5 and 10 attempted steps. Tsit5's error estimate for a step shrinks like h^5, so the steps need "
        "to shrink only like tol^(1/5): about 2.5 times the steps per hundredfold tighter tolerance. Here it is "
        "3 -> 5 -> 10, less than that, because with so few steps the cautious first step and the last one, which "
        "overshoots t = 1, weigh a lot.")


def test_count_evaluations_placeholder_is_not_answered():
    assert ": not answered yet." in exercises.count_evaluations.verdict(count_placeholder)


@pytest.mark.parametrize(("answer", "phrase"), [
    (default_method, "not yet. Those are the counts of odeint's default method, dopri5"),
    (no_tolerances, "not yet. Your count does not change with tol"),
    (rtol_only, "not yet. You set only rtol=tol; the other tolerance keeps odeint's default (atol=1e-9)"),
    (atol_only, "not yet. You set only atol=tol; the other tolerance keeps odeint's default (rtol=1e-7)"),
    (returns_the_solution, "not yet. count_evaluations returned a tensor, probably the solution"),
    (counts_steps, "not yet. Those are the steps, not the calls of f"),
    (counts_from_one, "not yet. Your counts are one too high at every tolerance"),
    (returns_a_float, "not yet. count_evaluations returned"),
], ids=lambda a: getattr(a, "__name__", "phrase"))
def test_count_evaluations_mistakes_get_their_hint(answer, phrase):
    verdict = exercises.count_evaluations.verdict(answer)
    assert phrase in verdict
    assert ": correct." not in verdict and "\n" not in verdict


def test_count_evaluations_atol_only_gives_the_right_counts_on_the_field_and_others_where_rtol_dominates():
    counts = exercises._counts()
    n = len(exercises._TOLERANCES)
    assert counts["atol only"][:n] == counts["tsit5"][:n]  # why the second problem is needed
    assert counts["atol only"][n:] != counts["tsit5"][n:]
    assert counts["tsit5"] == (20, 32, 62, 14, 26, 44)
