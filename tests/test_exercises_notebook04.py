"""Notebook 04's exercises: the reference passes, the placeholder is unanswered, typical mistakes get their hint."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_exercises_numbered_and_reachable, assert_reference_is_correct, wrong_verdict

import nodeutils
from nodeutils.exercises import NotYet, ____, exercises_of
from nodeutils.exercises import notebook04 as exercises
from nodeutils.probing import solver_steps
from nodeutils.statistics import class_spread


def test_every_exercise_is_reachable_by_its_name_and_numbered_in_order():
    assert_exercises_numbered_and_reachable(exercises, [1, 2, 3])


@pytest.mark.parametrize("exercise", exercises_of(exercises), ids=lambda e: e.name)
def test_the_reference_solution_is_correct(exercise):
    assert_reference_is_correct(exercise)


# --------------------------------------------------------------------------------------------------------------
# Exercise 1: the class spread
# --------------------------------------------------------------------------------------------------------------
def test_the_reference_spread_is_nodeutils_class_spread():
    reference = exercises.spread.solution_answer()
    for states, labels in exercises._spread_cases():
        assert reference(states, labels) == pytest.approx(class_spread(states, labels), rel=1e-12)


def spread_placeholder(states, labels):
    return ____


def spread_by_state(states, labels):  # large classes weigh more
    distances = torch.empty(len(states), dtype=states.dtype)
    for c in labels.unique():
        members = labels == c
        distances[members] = (states[members] - states[members].mean(0)).norm(dim=1)
    return float(distances.mean() / (states - states.mean(0)).norm(dim=1).mean())


def spread_over_range_10(states, labels):  # NaN where a digit is absent
    within = torch.stack([(states[labels == c] - states[labels == c].mean(0)).norm(dim=1).mean()
                          for c in range(10)]).mean()
    return float(within / (states - states.mean(0)).norm(dim=1).mean())


def spread_squared(states, labels):
    within = torch.stack([(states[labels == c] - states[labels == c].mean(0)).pow(2).sum(1).mean()
                          for c in labels.unique()]).mean()
    return float(within / (states - states.mean(0)).pow(2).sum(1).mean())


def spread_inverted(states, labels):
    within = torch.stack([(states[labels == c] - states[labels == c].mean(0)).norm(dim=1).mean()
                          for c in labels.unique()]).mean()
    return float((states - states.mean(0)).norm(dim=1).mean() / within)


def spread_not_divided(states, labels):
    return float(torch.stack([(states[labels == c] - states[labels == c].mean(0)).norm(dim=1).mean()
                              for c in labels.unique()]).mean())


def spread_per_state(states, labels):  # forgot to average: one value per state
    return (states - states.mean(0)).norm(dim=1)


def test_spread_placeholder_is_unanswered():
    assert "not answered yet" in exercises.spread.verdict(spread_placeholder)


@pytest.mark.parametrize(("answer", "phrase"), [
    (spread_by_state, "large classes weigh more"),
    (spread_over_range_10, "labels.unique(), not over range(10)"),
    (spread_squared, "squared distances"),
    (spread_inverted, "upside down"),
    (spread_not_divided, "within-class distance alone"),
    (spread_per_state, "one number"),
])
def test_spread_mistakes_get_their_hint(answer, phrase):
    assert phrase in wrong_verdict(exercises.spread, answer)


def test_spread_that_raises_is_reported_not_raised():
    def broken(states, labels):
        return states.norm(dim=5)

    text = wrong_verdict(exercises.spread, broken)
    assert "your code raised IndexError" in text


# --------------------------------------------------------------------------------------------------------------
# Exercise 2: the solver's first step
# --------------------------------------------------------------------------------------------------------------
def test_the_solved_first_steps_take_each_side_of_the_minimum():
    f, start = exercises._first_step_problem()
    solved = exercises._solved_first_steps()
    variants = [exercises._first_step_variants(f, start, rtol, atol) for rtol, atol, _ in solved]
    for (_, _, solved), variant in zip(exercises._solved_first_steps(), variants):
        assert solved == pytest.approx(variant["reference"], rel=1e-9)
    assert any(v["reference"] == v["tolerance_free"] for v in variants)
    assert any(v["reference"] == v["h1_only"] for v in variants)


def first_step_placeholder(f, u0, rtol, atol):
    return ____


def rule(power=1 / 5, norm=lambda x: x.pow(2).mean().sqrt(), scaled=True, divide=True, pick=min, part=None):
    def first_step(f, u0, rtol, atol):
        scale = atol + rtol * u0.abs() if scaled else 1.0
        f0 = f(u0)
        d0, d1 = float(norm(u0 / scale)), float(norm(f0 / scale))
        h0 = 0.01 * d0 / d1
        d2 = float(norm((f(u0 + h0 * f0) - f0) / scale)) / (h0 if divide else 1.0)
        h1 = (0.01 / max(d1, d2)) ** power
        return {"cap": 100 * h0, "h1": h1}.get(part, pick(100 * h0, h1))
    return first_step


@pytest.mark.parametrize(("answer", "phrase"), [
    (rule(part="cap"), "ignores the tolerance"),
    (rule(part="h1"), "The rule caps it"),
    (rule(pick=max), "took the larger"),
    (rule(power=1 / 4), "exponent is 1/4"),
    (rule(power=1 / 6), "exponent is 1/6"),
    (rule(divide=False), "d2 is a rate"),
    (rule(scaled=False), "not in the solver's units"),
    (rule(norm=lambda x: x.norm()), "sums the squares"),
    (lambda f, u0, rtol, atol: 0.5, "the solver's first step was"),
    (lambda f, u0, rtol, atol: "0.5", "return the step length as a number"),
])
def test_first_step_mistakes_get_their_hint(answer, phrase):
    assert phrase in wrong_verdict(exercises.first_step, answer)


def test_first_step_placeholder_is_unanswered():
    assert "not answered yet" in exercises.first_step.verdict(first_step_placeholder)


def test_first_step_on_the_notebook_model_gives_the_table_s_first_steps():
    model = nodeutils.create_model()
    images = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        u0 = nodeutils.models.encode(model, images).double()
        answer = exercises.first_step.solution_answer()
        for tolerance in (1e2, 1e-3):
            mine = answer(lambda u: model.ode.model(u.view(8, 20)).reshape(-1), u0.reshape(-1), tolerance, tolerance)
            steps = solver_steps(model, images, tolerance)
            assert mine == pytest.approx(steps.step_ends[1] - steps.step_ends[0], rel=1e-9)


# --------------------------------------------------------------------------------------------------------------
# Exercise 3: a decoder of u(0) from a decoder of u(1)
# --------------------------------------------------------------------------------------------------------------
def test_the_reference_decoder_scores_u0_as_the_original_scores_u1():
    weight, bias, A, b, start = exercises._decoder_case(5)
    new_weight, new_bias = exercises.decoder_of_start.solution_answer()(weight, bias, A, b)
    end = start @ A.T + b
    torch.testing.assert_close(start @ new_weight.T + new_bias, end @ weight.T + bias)


def decoder_placeholder(weight, bias, A, b):
    return ____


@pytest.mark.parametrize(("answer", "phrase"), [
    (lambda w, c, A, b: (w @ A.T, w @ b + c), "A transposed"),
    (lambda w, c, A, b: (w @ A, c), "misses the shift b"),
    (lambda w, c, A, b: (w @ A, w @ b), "lost the decoder's own bias"),
    (lambda w, c, A, b: (w @ A, b + c), "shapes do not fit"),
    (lambda w, c, A, b: (A @ w, w @ b + c), "shapes do not fit"),
    (lambda w, c, A, b: (w @ b + c, w @ A), "swapped"),
    (lambda w, c, A, b: w @ A, "return a pair"),
    (lambda w, c, A, b: (w, w @ b + c), "is the old one"),
])
def test_decoder_mistakes_get_their_hint(answer, phrase):
    assert phrase in wrong_verdict(exercises.decoder_of_start, answer)


def test_decoder_placeholder_is_unanswered():
    assert "not answered yet" in exercises.decoder_of_start.verdict(decoder_placeholder)
    assert isinstance(exercises.decoder_of_start.judge(lambda w, c, A, b: (w @ A.T, c)), NotYet)
