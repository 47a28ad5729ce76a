"""Exercises of notebook 04 (inside the trained model).

In the notebook::

    from nodeutils.exercises import ____, notebook04 as exercises

    def spread(states, labels):
        return ____
    exercises.spread.check(spread)

1. ``spread``: the class spread of a set of states (the measure the notebook prints along the trajectories).
2. ``first_step``: the step a Tsit5 solve starts with (Hairer, Norsett and Wanner's rule), from f, u(0) and the
   tolerances.
3. ``decoder_of_start``: a linear decoder of u(1) turned into one of u(0) through an affine map u(1) = A u(0) + b.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..solve import SolveCounter, integrate
from . import Correct, Exercise, NotYet, as_number, same_values, shape_problem

__all__ = ["spread", "first_step", "decoder_of_start"]


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


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)


#: The value a typical mistake gives (a key of _spread_parts) and the hint it gets, in the order they are checked.
_SPREAD_MISTAKES = (
    ("by_state", "You averaged the distance to the class centre over all states, so large classes weigh more. Take "
                 "the mean within each class first, then average those means over the classes."),
    ("squared", "You used squared distances. The class spread uses distances: .norm(dim=1) of each state's offset "
                "from the centre, without squaring."),
    ("inverted", "Your ratio is upside down: the within-class distance goes on top, the distance to the centre of "
                 "all states below, so tight classes give a small spread."),
    ("within_only", "You returned the within-class distance alone. Divide it by the mean distance of all states "
                    "from their common centre, so that the spread does not depend on the scale."),
    ("overall_only", "You returned the mean distance to the centre of all states; it is the denominator. The "
                     "numerator is the mean distance to each state's own class centre, averaged over the classes."),
)


def _judge_spread(answer: Callable) -> Correct | NotYet:
    """Run ``answer(states, labels)`` on two seeded sets (one with absent digits); name a known mistake."""
    for index, (states, labels) in enumerate(_spread_cases()):
        result = answer(states.clone(), labels.clone())
        value = as_number(result)
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
        for part, hint in _SPREAD_MISTAKES:
            if _close(value, parts[part]):
                return NotYet(hint)
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
# Exercise 2: the solver's first step
# --------------------------------------------------------------------------------------------------------------
_FIRST_STEP_TOLERANCES = ((1e2, 1e2), (1e-1, 1e-1), (1e-3, 1e-3), (1e-3, 1e-6), (1e-6, 1e-2))  # (rtol, atol)


def _first_step_problem() -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    """A small seeded ODE, f(u) = 3 tanh(W u + c) for five states of three numbers, and its start (flat)."""
    generator = torch.Generator().manual_seed(4)
    weight = 2 * torch.randn(3, 3, generator=generator, dtype=torch.float64)
    bias = torch.randn(3, generator=generator, dtype=torch.float64)
    start = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    return (lambda u: 3 * torch.tanh(u.view(5, 3) @ weight.T + bias).reshape(-1)), start.reshape(-1)


def _solved_first_steps() -> list[tuple[float, float, float]]:
    """(rtol, atol, length of the first step) of real Tsit5 solves of the seeded ODE over t in [0, 2]."""
    f, start = _first_step_problem()
    steps = []
    for rtol, atol in _FIRST_STEP_TOLERANCES:
        ends: list[tuple[float, float]] = []
        integrate(lambda t, u: f(u), start, torch.tensor([0.0, 2.0], dtype=torch.float64), rtol=rtol, atol=atol,
                  on_step=lambda t0, t1, _coefficients, ends=ends: ends.append((t0, t1)), counter=SolveCounter())
        steps.append((rtol, atol, ends[0][1] - ends[0][0]))
    return steps


def _first_step_variants(f: Callable, u0: torch.Tensor, rtol: float, atol: float) -> dict[str, float]:
    """The rule's first step and what typical mistakes give instead, by name."""
    scale = atol + rtol * u0.abs()

    def rms(x: torch.Tensor, s: torch.Tensor | float = scale) -> float:
        return float((x / s).pow(2).mean().sqrt())

    f0 = f(u0)
    d0, d1 = rms(u0), rms(f0)
    h0 = 0.01 * d0 / d1
    f1 = f(u0 + h0 * f0)
    d2 = rms(f1 - f0) / h0
    h1 = (0.01 / max(d1, d2)) ** (1 / 5)
    plain = 1.0  # no scale: the plain root mean square
    p0, p1 = rms(u0, plain), rms(f0, plain)
    ph0 = 0.01 * p0 / p1
    ph1 = (0.01 / max(p1, rms(f(u0 + ph0 * f0) - f0, plain) / ph0)) ** (1 / 5)
    l2 = float((u0 / scale).norm()), float((f0 / scale).norm())
    l2h0 = 0.01 * l2[0] / l2[1]
    l2h1 = (0.01 / max(l2[1], float(((f(u0 + l2h0 * f0) - f0) / scale).norm()) / l2h0)) ** (1 / 5)
    return {
        "reference": min(100 * h0, h1),
        "tolerance_free": 100 * h0,
        "h1_only": h1,
        "larger": max(100 * h0, h1),
        "quarter": min(100 * h0, (0.01 / max(d1, d2)) ** (1 / 4)),
        "sixth": min(100 * h0, (0.01 / max(d1, d2)) ** (1 / 6)),
        "not_divided": min(100 * h0, (0.01 / max(d1, d2 * h0)) ** (1 / 5)),
        "no_scale": min(100 * ph0, ph1),
        "l2": min(100 * l2h0, l2h1),
    }


_FIRST_STEP_HINTS = {
    "tolerance_free": "That is the guess that ignores the tolerance, 100 h0 = d0 / d1. The rule takes the smaller of "
                      "it and h1, the guess from the trial step, which shrinks as the tolerance tightens.",
    "h1_only": "That is h1, the guess from the trial step. The rule caps it: the first step is min(100 * h0, h1), "
               "and at a loose tolerance the cap is what decides.",
    "larger": "You took the larger of the two guesses; the rule takes the smaller, min(100 * h0, h1).",
    "quarter": "Your exponent is 1/4. Tsit5's error estimate shrinks as h**5, so h1 = "
               "(0.01 / max(d1, d2)) ** (1 / 5).",
    "sixth": "Your exponent is 1/6. Tsit5's error estimate shrinks as h**5, so h1 = "
               "(0.01 / max(d1, d2)) ** (1 / 5).",
    "not_divided": "d2 is a rate: divide the norm of f(u0 + h0 f(u0)) - f(u0) by h0, the length of the trial step.",
    "no_scale": "Your norms are not in the solver's units: divide each vector by s = atol + rtol * u0.abs() before "
                "taking the root mean square.",
    "l2": "Your norm sums the squares; the solver's is a root mean square: (x / s).pow(2).mean().sqrt().",
}


def _judge_first_step(answer: Callable) -> Correct | NotYet:
    """Compare ``answer(f, u0, rtol, atol)`` with the first steps of real solves; name a known mistake."""
    f, start = _first_step_problem()
    results = []
    for rtol, atol, solved in _solved_first_steps():
        result = answer(f, start.clone(), rtol, atol)
        value = as_number(result)
        if value is None:
            return NotYet(f"first_step(f, u0, {rtol:g}, {atol:g}) returned {type(result).__name__}: return the step "
                          "length as a number, e.g. float(min(100 * h0, h1)).")
        results.append((rtol, atol, solved, value))
    if all(math.isclose(value, solved, rel_tol=1e-6) for *_, solved, value in results):
        return Correct("The first step is the smaller of a guess that ignores the tolerance when rtol = atol "
                       "(d0 / d1, the time to move by the state's own size at its starting speed) and one that "
                       "shrinks as the tolerance's fifth root; it costs two evaluations, f(u0) and the trial.")
    for name, hint in _FIRST_STEP_HINTS.items():
        if all(math.isclose(value, _first_step_variants(f, start, rtol, atol)[name], rel_tol=1e-6)
               for rtol, atol, _, value in results):
            return NotYet(hint)
    rtol, atol, solved, value = next(r for r in results if not math.isclose(r[3], r[2], rel_tol=1e-6))
    return NotYet(f"At rtol = {rtol:g}, atol = {atol:g} the solver's first step was {solved:.4g}; yours is "
                  f"{value:.4g}. Check each part: the scale s, the two norms d0 and d1, the trial step h0, the rate "
                  "d2, then min(100 * h0, h1).")


first_step = Exercise(
    number=2,
    title="the solver's first step",
    judge=_judge_first_step,
    hints=(
        "Start with the norm: norm = lambda x: (x / s).pow(2).mean().sqrt() with s = atol + rtol * u0.abs(). "
        "Then f0 = f(u0), d0 = norm(u0), d1 = norm(f0), h0 = 0.01 * d0 / d1.",
        "The trial: f1 = f(u0 + h0 * f0), d2 = norm(f1 - f0) / h0. The second guess uses the larger of d1 and d2, "
        "to the power 1/5; then take the smaller of the two guesses.",
    ),
    solution='''
def first_step(f, u0, rtol, atol):
    scale = atol + rtol * u0.abs()

    def norm(x):
        return float((x / scale).pow(2).mean().sqrt())

    f0 = f(u0)
    h0 = 0.01 * norm(u0) / norm(f0)
    d2 = norm(f(u0 + h0 * f0) - f0) / h0
    h1 = (0.01 / max(norm(f0), d2)) ** (1 / 5)
    return min(100 * h0, h1)
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
                   "u(1). The trained flow is only nearly affine, and the two best decoders come that close.")


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
