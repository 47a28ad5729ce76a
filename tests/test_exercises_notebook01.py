"""Notebook 01's exercises: the reference passes, the placeholder is unanswered, typical mistakes get their hint."""

from __future__ import annotations

import pytest
import torch

from nodeutils.exercises import Correct, ____, exercises_of
from nodeutils.exercises import notebook01 as exercises


def test_every_exercise_is_reachable_by_its_name_and_numbered_in_order():
    found = exercises_of(exercises)
    assert [e.number for e in found] == list(range(1, len(found) + 1))
    assert all(getattr(exercises, e.name) is e for e in found)  # the printed advice exercises.<name>.hint() works
    assert len({e.title for e in found}) == len(found)


@pytest.mark.parametrize("exercise", exercises_of(exercises), ids=lambda e: e.name)
def test_the_reference_solution_is_correct(exercise):
    assert isinstance(exercise.judge(exercise.solution_answer()), Correct)
    assert ": correct. " in exercise.verdict(exercise.solution_answer())


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
    (transposed, "your code raised RuntimeError: mat1 and mat2 shapes cannot be multiplied (3x4 and 3x3) "
                 "(line 2: return u + h * f(u.T)). Your code reshaped a tensor"),
    (forgot_to_call_f, "your code raised TypeError: unsupported operand type(s) for *: 'float' and 'function' "
                       "(line 2: return u + h * f). f is a function: call it"),
], ids=lambda a: getattr(a, "__name__", "phrase"))
def test_euler_step_mistakes_get_their_hint(answer, phrase):
    verdict = exercises.euler_step.verdict(answer)
    phrase = phrase.replace("line 2:", f"line {answer.__code__.co_firstlineno + 1}:")
    assert phrase in verdict
    assert ": correct." not in verdict and "\n" not in verdict
