"""Exercises of notebook 04 (inside the trained model).

In the notebook::

    from nodeutils.exercises import ____, notebook04 as exercises

    def spread(states, labels):
        return ____
    exercises.spread.check(spread)

1. ``spread``: the class spread of a set of states (the measure the notebook prints along the trajectories).
2. ``evaluations``: how many evaluations of f a Tsit5 solve costs, from its accepted and rejected steps.
3. ``decoder_of_start``: a linear decoder of u(1) turned into one of u(0) through an affine map u(1) = A u(0) + b.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ..solvers import SolveCounter, integrate
from . import Correct, Exercise, NotYet, same_values, shape_problem

__all__ = ["spread", "evaluations", "decoder_of_start"]


# --------------------------------------------------------------------------------------------------------------
# Exercise 1: the class spread
# --------------------------------------------------------------------------------------------------------------
def _spread_cases() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Seeded states with classes of very different sizes (so that weighting by size shows), some digits absent."""
    cases = []
    for seed, sizes in ((1, {0: 3, 1: 9, 2: 4, 3: 14, 4: 5, 5: 2, 6: 7, 7: 3, 8: 11, 9: 6}),
                        (2, {2: 4, 5: 17, 7: 6})):
        generator = torch.Generator().manual_seed(seed)
        labels = torch.cat([torch.full((n,), digit) for digit, n in sizes.items()])
        labels = labels[torch.randperm(len(labels), generator=generator)]
        centres = 3 * torch.randn(10, 5, generator=generator, dtype=torch.float64)
        widths = 0.3 + 2 * torch.rand(10, generator=generator, dtype=torch.float64)
        noise = torch.randn(len(labels), 5, generator=generator, dtype=torch.float64)
        cases.append((centres[labels] + widths[labels, None] * noise, labels))
    return cases


def _spread_parts(states: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """The reference class spread and the values that typical mistakes give, by name."""
    classes = labels.unique()
    distances = torch.empty(len(states), dtype=torch.float64)
    for c in classes:
        members = labels == c
        distances[members] = (states[members] - states[members].mean(0)).norm(dim=1)
    per_class = torch.stack([distances[labels == c].mean() for c in classes])
    squared = torch.stack([distances[labels == c].pow(2).mean() for c in classes])
    overall = (states - states.mean(0)).norm(dim=1)
    return {
        "reference": float(per_class.mean() / overall.mean()),
        "by_state": float(distances.mean() / overall.mean()),
        "squared": float(squared.mean() / overall.pow(2).mean()),
        "within_only": float(per_class.mean()),
        "inverted": float(overall.mean() / per_class.mean()),
        "overall_only": float(overall.mean()),
    }


def _as_number(value: Any) -> float | None:
    """``value`` as a float if it is a number or a one-element tensor, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach().reshape(()))
    return None


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)


def _judge_spread(answer: Callable) -> Correct | NotYet:
    """Run ``answer(states, labels)`` on two seeded sets (one with absent digits); name a known mistake."""
    for index, (states, labels) in enumerate(_spread_cases()):
        result = answer(states.clone(), labels.clone())
        value = _as_number(result)
        if value is None:
            if isinstance(result, torch.Tensor):
                return NotYet(f"spread(states, labels) returned a tensor of shape {tuple(result.shape)}; the class "
                              "spread is one number: average the distances (.mean()) down to a single value.")
            return NotYet(f"spread(states, labels) returned {type(result).__name__}, not a number: return the "
                          "ratio as a float, e.g. float(within / overall).")
        parts = _spread_parts(states, labels)
        if _close(value, parts["reference"]):
            continue
        if math.isnan(value):
            absent = " (here some digits have no states at all)" if index == 1 else ""
            return NotYet(f"Your result is NaN: the mean over an empty class is NaN{absent}. Loop over the classes "
                          "present, labels.unique(), not over range(10).")
        if _close(value, parts["by_state"]):
            return NotYet("You averaged the distance to the class centre over all states, so large classes weigh "
                          "more. Take the mean within each class first, then average those means over the classes.")
        if _close(value, parts["squared"]):
            return NotYet("You used squared distances. The class spread uses distances: .norm(dim=1) of each "
                          "state's offset from the centre, without squaring.")
        if _close(value, parts["inverted"]):
            return NotYet("Your ratio is upside down: the within-class distance goes on top, the distance to the "
                          "centre of all states below, so tight classes give a small spread.")
        if _close(value, parts["within_only"]):
            return NotYet("You returned the within-class distance alone. Divide it by the mean distance of all "
                          "states from their common centre, so that the spread does not depend on the scale.")
        if _close(value, parts["overall_only"]):
            return NotYet("You returned the mean distance to the centre of all states; it is the denominator. "
                          "The numerator is the mean distance to each state's own class centre, averaged over "
                          "the classes.")
        return NotYet(f"Your spread is {value:.4g}; the class spread of these states is {parts['reference']:.4g}. "
                      "Check each part: per class, the mean distance (.norm(dim=1)) to the class mean; the "
                      "average over classes; divided by the mean distance to the mean of all states.")
    return Correct("The class spread compares how far a state lies from its class centre with how far it lies "
                   "from the centre of everything; being a ratio, it lets states at different times be compared.")


spread = Exercise(
    number=1,
    title="the class spread",
    judge=_judge_spread,
    hints=(
        "Two numbers and a ratio. Within: for each class c, the states states[labels == c], their mean (the class "
        "centre), the mean distance from it. Overall: the mean distance of all states from states.mean(0).",
        "Distances are norms along the feature axis: (x - x.mean(0)).norm(dim=1).mean() for a set x. Average the "
        "per-class values over labels.unique(), then divide by the overall value.",
    ),
    solution='''
def spread(states, labels):
    within = torch.stack([(states[labels == c] - states[labels == c].mean(0)).norm(dim=1).mean()
                          for c in labels.unique()]).mean()
    overall = (states - states.mean(0)).norm(dim=1).mean()
    return float(within / overall)
''',
)


# --------------------------------------------------------------------------------------------------------------
# Exercise 2: a solve's cost from its steps
# --------------------------------------------------------------------------------------------------------------
def _counted_solves() -> list[tuple[int, int, bool, int]]:
    """(accepted, rejected, first step given, evaluations) of real Tsit5 solves of a small seeded ODE."""
    generator = torch.Generator().manual_seed(4)
    weight = 2 * torch.randn(3, 3, generator=generator, dtype=torch.float64)
    bias = torch.randn(3, generator=generator, dtype=torch.float64)
    start = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    span = torch.tensor([0.0, 2.0], dtype=torch.float64)
    solves = []
    for tolerance in (1e-1, 1e-3, 1e-6):
        for options in ({}, {"first_step": 1.0}, {"first_step": 0.01}):
            counter = SolveCounter()
            integrate(lambda t, u: 3 * torch.tanh(u.view(5, 3) @ weight.T + bias).reshape(-1), start.reshape(-1),
                      span, rtol=tolerance, atol=tolerance, options=options, counter=counter)
            solves.append((counter.steps, counter.rejected, bool(options), counter.nfe))
    return solves


def _cost_mistake(answer: Callable) -> str | None:
    """A hint for a known mistake, found by probing the learner's formula one argument at a time."""
    def cost(accepted: int, rejected: int, given: bool) -> float | None:
        return _as_number(answer(accepted, rejected, given))

    base, given = cost(2, 0, False), cost(2, 0, True)
    per_step, per_rejection = cost(3, 0, False), cost(2, 1, False)
    if None in (base, given, per_step, per_rejection):
        return None
    if per_step - base == 7:
        return ("Tsit5 has seven stages, but the last stage of an accepted step is f at its end, which is the first "
                "stage of the next step: each step costs six new evaluations, plus one at t = 0 for the very first "
                "stage.")
    if per_rejection == base:
        return ("Your count ignores the rejected steps. A rejected step evaluates its stages too before it is "
                "thrown away; only the first stage, f at the step's start, is reused when it is retried.")
    if base == 14 and given == 14:
        return ("Right when the solver chooses its first step; but handed one, it skips the trial evaluation that "
                "sizes it.")
    if base == 13 and given == 13:
        return ("Right when the first step is given; when the solver chooses it, it spends one more evaluation on "
                "a trial a short way along to size that step.")
    return None


def _judge_evaluations(answer: Callable) -> Correct | NotYet:
    """Compare ``answer(accepted, rejected, first_step_given)`` with counted solves; name a known mistake."""
    solves = _counted_solves()
    predicted = []
    for accepted, rejected, given, _ in solves:
        result = answer(accepted, rejected, given)
        value = _as_number(result)
        if value is None:
            return NotYet(f"evaluations({accepted}, {rejected}, {given}) returned {type(result).__name__}: return "
                          "the number of evaluations as an integer.")
        predicted.append(value)
    counted = [nfe for *_, nfe in solves]
    if predicted == counted:
        return Correct("A Tsit5 solve costs one evaluation at t = 0, one trial when it chooses its first step, and "
                       "six per attempted step, accepted or not: the count says how many steps were tried, not "
                       "how hard each one was.")
    if (message := _cost_mistake(answer)) is not None:
        return NotYet(message)
    for (accepted, rejected, given, nfe), value in zip(solves, predicted):
        if value != nfe:
            how = "handed its first step" if given else "choosing its first step"
            return NotYet(f"A solve {how} with {accepted} accepted and {rejected} rejected steps cost {nfe} "
                          f"evaluations; you predicted {value:g}. Count the evaluation at t = 0, the trial, and "
                          "the new evaluations of each attempted step.")
    raise AssertionError("unreachable: the predictions differ from the counts")  # pragma: no cover


evaluations = Exercise(
    number=2,
    title="predict a solve's cost",
    judge=_judge_evaluations,
    hints=(
        "Start from the table's two points: 14 for 2 steps and 20 for 3, so each further step costs 6. What is "
        "left over, 2, is spent before the first step: f at t = 0, and a trial that sizes the first step.",
        "A rejected step is attempted like any other, at the same cost in new evaluations, and then thrown away. "
        "A first step handed to the solver needs no trial to size it.",
    ),
    solution='''
def evaluations(accepted, rejected, first_step_given):
    trial = 0 if first_step_given else 1
    return 1 + trial + 6 * (accepted + rejected)
''',
)


# --------------------------------------------------------------------------------------------------------------
# Exercise 3: a decoder of u(0) from a decoder of u(1)
# --------------------------------------------------------------------------------------------------------------
def _decoder_case(seed: int) -> tuple[torch.Tensor, ...]:
    """A seeded decoder (4 classes, 6 features), affine map and batch of starting states."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    bias = torch.randn(4, generator=generator, dtype=torch.float64)
    A = torch.randn(6, 6, generator=generator, dtype=torch.float64)
    b = torch.randn(6, generator=generator, dtype=torch.float64)
    start = torch.randn(8, 6, generator=generator, dtype=torch.float64)
    return weight, bias, A, b, start


def _judge_decoder_of_start(answer: Callable) -> Correct | NotYet:
    """Run ``answer(weight, bias, A, b)`` on seeded inputs; compare the scores it gives u(0); name known mistakes."""
    for seed in (5, 6):
        weight, bias, A, b, start = _decoder_case(seed)
        try:
            result = answer(weight.clone(), bias.clone(), A.clone(), b.clone())
        except RuntimeError as error:
            if "size" in str(error) or "shape" in str(error) or "dimension" in str(error):
                return NotYet("Your code combined tensors whose shapes do not fit. weight is (classes, d) and maps "
                              "a state to scores, so it comes first: weight @ A is (classes, d), weight @ b is "
                              "(classes,); bias already lives among the scores and b does not.", error=error)
            raise
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            return NotYet(f"decoder_of_start returned {type(result).__name__}; return a pair: "
                          "(new_weight, new_bias).")
        new_weight, new_bias = result
        expected_weight, expected_bias = weight @ A, weight @ b + bias
        if isinstance(new_weight, torch.Tensor) and tuple(new_weight.shape) == tuple(expected_bias.shape):
            return NotYet("Your pair looks swapped: return the weight first, then the bias.")
        for value, expected, what in ((new_weight, expected_weight, "new_weight"),
                                      (new_bias, expected_bias, "new_bias")):
            if (problem := shape_problem(value, expected, what=what)) is not None:
                return problem
        weight_right = same_values(new_weight, expected_weight)
        bias_right = same_values(new_bias, expected_bias)
        if weight_right and bias_right:
            continue
        if not weight_right:
            if same_values(new_weight, weight @ A.T):
                return NotYet("Your new weight uses A transposed. Scores of u(1) are weight @ u(1) = weight @ "
                              "(A @ u(0) + b) for a column u(0): the matrix in front of u(0) is weight @ A.")
            if same_values(new_weight, weight):
                return NotYet("Your new weight is the old one: the affine map changes how the scores depend on "
                              "u(0). Substitute u(1) = A u(0) + b into weight @ u(1) + bias.")
            return NotYet("Your new weight is not the matrix in front of u(0) once u(1) = A u(0) + b is substituted "
                          "into weight @ u(1) + bias.")
        if same_values(new_bias, bias):
            return NotYet("The weight is right; the bias misses the shift b, which the decoder sees too: "
                          "weight @ (A u(0) + b) + bias = (weight @ A) u(0) + (weight @ b + bias).")
        if same_values(new_bias, weight @ b):
            return NotYet("The weight is right; your bias is weight @ b but has lost the decoder's own bias: add it.")
        return NotYet("The weight is right; the bias is not the constant left over once u(1) = A u(0) + b is "
                      "substituted into weight @ u(1) + bias.")
    return Correct("Decoding A u(0) + b with (weight, bias) is the same as decoding u(0) with (weight @ A, "
                   "weight @ b + bias): were the flow exactly affine, a linear decoder could read u(0) as well as "
                   "u(1), which is why the two best decoders of the notebook come so close.")


decoder_of_start = Exercise(
    number=3,
    title="a decoder of u(0) from a decoder of u(1)",
    judge=_judge_decoder_of_start,
    hints=(
        "Substitute: the scores of u(1) are weight @ u(1) + bias, and u(1) = A @ u(0) + b (columns). Expand and "
        "collect the term that multiplies u(0) and the term that does not.",
        "Write weight @ (A @ u0 + b) + bias as M @ u0 + m: matrix products are associative, and the terms "
        "without u0 make up m.",
    ),
    solution='''
def decoder_of_start(weight, bias, A, b):
    return weight @ A, weight @ b + bias
''',
)
