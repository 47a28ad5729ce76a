"""Exercises of notebook 01 (MNIST with a Neural ODE).

In the notebook::

    from nodeutils.exercises import ____, notebook01 as exercises

    def euler_step(f, u, h):
        return ____
    exercises.euler_step.check(euler_step)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import Correct, Exercise, NotYet, same_values, shape_problem

__all__ = ["euler_step"]


# --------------------------------------------------------------------------------------------------------------
# Exercise 1: one Euler step as a residual block
# --------------------------------------------------------------------------------------------------------------
def _layer(seed: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """A small seeded layer on 3 features, f(u) = tanh(u W^T + b): the vector field of the exercise."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(3, 3, generator=generator, dtype=torch.float64)
    bias = torch.randn(3, generator=generator, dtype=torch.float64)
    return lambda u: torch.tanh(u @ weight.T + bias)


def _recording(f: Callable) -> tuple[Callable, list]:
    """``f`` wrapped to record each input it is called with, and the list it records into."""
    inputs: list = []

    def recorded(u: torch.Tensor) -> torch.Tensor:
        inputs.append(u.detach().clone() if isinstance(u, torch.Tensor) else u)
        return f(u)

    return recorded, inputs


def _judge_euler_step(answer: Callable) -> Correct | NotYet:
    """Run ``answer(f, u, h)`` on two seeded batches and two step sizes; name the mistake when it is a known one."""
    for seed, h in ((1, 0.25), (2, 0.5)):
        layer = _layer(seed)
        f, inputs = _recording(layer)
        u = torch.randn(4, 3, generator=torch.Generator().manual_seed(100 + seed), dtype=torch.float64)
        slope = layer(u)
        try:
            result = answer(f, u.clone(), h)
        except TypeError as error:
            if "function" in str(error):
                return NotYet("f is a function: call it at the current state, f(u), and use the slope it returns.",
                              error=error)
            raise
        except RuntimeError as error:
            if "shape" in str(error) or "size" in str(error):
                return NotYet(f"Your code reshaped a tensor before combining it: f takes and returns tensors shaped "
                              f"like u, {tuple(u.shape)} (batch, features), and the Euler step needs no reshaping.",
                              error=error)
            raise
        expected = u + h * slope
        if (problem := shape_problem(result, expected, what="euler_step(f, u, h)")) is not None:
            return problem
        if same_values(result, expected):
            continue
        if same_values(result, u - h * slope):
            return NotYet("Your step goes against the slope: it subtracts h * f(u). Euler's method moves along "
                          "f, so add the increment to u.")
        if same_values(result, u + slope):
            return NotYet("Your step has size 1 whatever h is: it adds f(u) itself. Scale the slope by the step "
                          "size h first.")
        if same_values(result, h * slope):
            return NotYet("You returned only the increment h * f(u) and forgot the skip connection: the new "
                          "state is the old state u plus that increment.")
        if same_values(result, slope):
            return NotYet("You returned the slope f(u), not a new state: scale it by h and add it to u.")
        if same_values(result, u):
            return NotYet("Your step does not move: it returns u unchanged. Add h times the slope f(u).")
        if not inputs:
            return NotYet("Your code never calls f: the slope at the current state is f(u).")
        if any(not same_values(x, u) for x in inputs):
            return NotYet("You evaluated f somewhere other than the current state u. The (explicit) Euler step "
                          "uses only the slope where the step starts, f(u).")
        return NotYet(f"With h = {h}, your result differs from the state after one Euler step, u + h * f(u).")
    return Correct("One Euler step, u + h * f(u), is exactly a residual block: the input passes through "
                   "unchanged (the skip connection) and the layer f adds its output, scaled by h.")


euler_step = Exercise(
    number=1,
    title="one Euler step as a residual block",
    judge=_judge_euler_step,
    hints=(
        "Euler's method follows the slope for one step: new state = old state + step size × slope at the old "
        "state.",
        "The slope at the current state u is f(u); multiply it by h and add the result to u.",
    ),
    solution='''
def euler_step(f, u, h):
    return u + h * f(u)
''',
)
