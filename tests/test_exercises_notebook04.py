"""Notebook 04's exercises: the reference passes, the placeholder is unanswered, typical mistakes get their hint."""

from __future__ import annotations

import pytest
import torch

from nodeutils.analysis import class_spread
from nodeutils.exercises import Correct, NotYet, ____, exercises_of
from nodeutils.exercises import notebook04 as exercises


def test_every_exercise_is_reachable_by_its_name_and_numbered_in_order():
    found = exercises_of(exercises)
    assert [e.number for e in found] == [1, 2, 3]
    assert all(getattr(exercises, e.name) is e for e in found)
    assert len({e.title for e in found}) == len(found)


@pytest.mark.parametrize("exercise", exercises_of(exercises), ids=lambda e: e.name)
def test_the_reference_solution_is_correct(exercise):
    assert isinstance(exercise.judge(exercise.solution_answer()), Correct)
    assert ": correct. " in exercise.verdict(exercise.solution_answer())


def verdict(exercise, answer) -> str:
    text = exercise.verdict(answer)
    assert ": correct. " not in text
    return text


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
    assert phrase in verdict(exercises.spread, answer)


def test_spread_that_raises_is_reported_not_raised():
    def broken(states, labels):
        return states.norm(dim=5)

    text = verdict(exercises.spread, broken)
    assert "your code raised IndexError" in text


# --------------------------------------------------------------------------------------------------------------
# Exercise 2: a solve's cost
# --------------------------------------------------------------------------------------------------------------
def test_the_counted_solves_include_rejections_and_given_first_steps():
    solves = exercises._counted_solves()
    assert any(r > 0 and g for _, r, g, _ in solves) and any(r > 0 and not g for _, r, g, _ in solves)
    assert any(g for _, _, g, _ in solves) and any(not g for _, _, g, _ in solves)
    assert all(n == 1 + (0 if g else 1) + 6 * (a + r) for a, r, g, n in solves)


def cost_placeholder(accepted, rejected, first_step_given):
    return ____


@pytest.mark.parametrize(("answer", "phrase"), [
    (lambda a, r, g: 2 + 6 * a, "ignores the rejected steps"),
    (lambda a, r, g: 2 + 6 * (a + r), "skips the trial"),
    (lambda a, r, g: 1 + 6 * (a + r), "spends one more evaluation on a trial"),
    (lambda a, r, g: 2 + 7 * (a + r), "six new evaluations"),
    (lambda a, r, g: 3 + 6 * (a + r), "you predicted"),
    (lambda a, r, g: "14", "return the number of evaluations as an integer"),
])
def test_cost_mistakes_get_their_hint(answer, phrase):
    assert phrase in verdict(exercises.evaluations, answer)


def test_cost_placeholder_is_unanswered():
    assert "not answered yet" in exercises.evaluations.verdict(cost_placeholder)


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
    assert phrase in verdict(exercises.decoder_of_start, answer)


def test_decoder_placeholder_is_unanswered():
    assert "not answered yet" in exercises.decoder_of_start.verdict(decoder_placeholder)
    assert isinstance(exercises.decoder_of_start.judge(lambda w, c, A, b: (w @ A.T, c)), NotYet)
