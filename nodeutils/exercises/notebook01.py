"""Exercises of notebook 01 (MNIST with a Neural ODE).

In the notebook::

    from nodeutils.exercises import ____, notebook01 as exercises

    def euler_step(f, u, h):
        return ____
    exercises.euler_step.check(euler_step)
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable

import torch
import torchdiffeq

from ..checks import describe
from . import Correct, Exercise, NotYet, same_values, shape_problem

__all__ = ["euler_step", "euler_solve", "count_evaluations"]


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


# --------------------------------------------------------------------------------------------------------------
# The vector field of exercises 2 and 3: the tutorial's dynamics, untrained, in float64
# --------------------------------------------------------------------------------------------------------------
_FIELD_SEED = 7
_TOLERANCES = (1e-3, 1e-5, 1e-7)
_BLOCKS = (1, 4, 16, 64)


@functools.lru_cache(maxsize=1)
def _field() -> tuple[torch.nn.Module, torch.Tensor]:
    """The network 20 -> 10 -> 10 -> 20 (tanh) drawn as Lux draws it, and eight starting states, all seeded."""
    from ..initialisation import lux_init_
    from ..models import ode_dynamics

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_FIELD_SEED)
        net = lux_init_(ode_dynamics()).double().requires_grad_(False)
        u0 = torch.tanh(2 * torch.randn(8, 20, dtype=torch.float64))
    return net, u0


def _euler(f: Callable, u0: torch.Tensor, steps: int, h: float) -> torch.Tensor:
    u = u0
    for _ in range(steps):
        u = u + h * f(u)
    return u


def _count(net: torch.nn.Module, u0: torch.Tensor, tol: float | None, method: str = "tsit5", *,
           which: tuple[str, ...] = ("rtol", "atol")) -> int:
    """How many times odeint calls the field, with ``tol`` as the tolerances named in ``which`` (None: defaults)."""
    calls = [0]

    def counted(t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return net(u)

    tolerances = {} if tol is None else dict.fromkeys(which, tol)
    with torch.no_grad():
        torchdiffeq.odeint(counted, u0, torch.tensor([0.0, 1.0], dtype=u0.dtype), method=method, **tolerances)
    return calls[0]


@functools.lru_cache(maxsize=1)
def _accurate() -> torch.Tensor:
    """u(1) of the field to about 1e-12: the reference every approximation is measured against."""
    net, u0 = _field()
    with torch.no_grad():
        return torchdiffeq.odeint(lambda t, u: net(u), u0, torch.tensor([0.0, 1.0], dtype=torch.float64),
                                  method="tsit5", rtol=1e-12, atol=1e-12)[-1]


@functools.lru_cache(maxsize=1)
def _euler_facts() -> tuple[list[float], float, int, int]:
    """Euler's error for each n of _BLOCKS; Tsit5's error and calls at 1e-3; the fewest blocks that do as well.

    The fewest blocks are found by doubling n and then bisecting between the last two powers of 2 (Euler's error
    falls steadily with n on this field, so bisection finds the smallest n).
    """
    net, u0 = _field()
    exact = _accurate()
    with torch.no_grad():
        def error(n: int) -> float:
            return float((_euler(net, u0, n, 1 / n) - exact).abs().max())

        errors = [error(n) for n in _BLOCKS]
        tsit5 = torchdiffeq.odeint(lambda t, u: net(u), u0, torch.tensor([0.0, 1.0], dtype=torch.float64),
                                   method="tsit5", rtol=1e-3, atol=1e-3)[-1]
        tsit5_error = float((tsit5 - exact).abs().max())
        high = 1
        while error(high) > tsit5_error:
            high *= 2
        low = high // 2  # error(low) > tsit5_error, or low == 0
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if error(middle) <= tsit5_error else (middle, high)
    return errors, tsit5_error, _count(net, u0, 1e-3), high


# --------------------------------------------------------------------------------------------------------------
# Exercise 2: n Euler steps, a ResNet of n blocks, converging to the ODE's solution
# --------------------------------------------------------------------------------------------------------------
def _judge_euler_solve(answer: Callable) -> Correct | NotYet:
    """Run ``answer(f, u0, n)`` for several n; compare with n Euler steps of size 1/n; name known mistakes."""
    net, u0 = _field()
    for n in (1, 3, 8):
        f, inputs = _recording(net)
        given = u0.clone()
        result = answer(f, given, n)
        expected = _euler(net, u0, n, 1 / n)
        if isinstance(result, (list, tuple)):
            return NotYet(f"euler_solve(f, u0, n) returned a {type(result).__name__}; return only the state at "
                          "t = 1, the last one, as one tensor shaped like u0.")
        if (problem := shape_problem(result, expected, what="euler_solve(f, u0, n)")) is not None:
            if isinstance(result, torch.Tensor) and tuple(result.shape) == (n + 1, *u0.shape):
                return NotYet("You returned every state of the solve, stacked; return only the last one, u(1).")
            return problem
        if not same_values(given, u0):
            return NotYet("Your code changed u0 in place (an in-place update such as u += ... on the tensor it was "
                          "given, which is u0 itself): the caller's starting state is gone. Write u = u + ... "
                          "instead, which makes a new tensor.")
        if same_values(result, expected):
            continue
        if not inputs:
            return NotYet("Your code never calls f: each step needs the slope f(u) at the current state.")
        with torch.no_grad():
            if same_values(result, _euler(net, u0, n, 1.0)):
                return NotYet("Your steps have size 1, so n of them run to t = n, not t = 1: scale each slope by "
                              "h = 1 / n.")
            if n > 1 and same_values(result, _euler(net, u0, 1, 1 / n)):
                return NotYet("You took one step of size 1 / n, not n of them: repeat the step n times, each from "
                              "the state the previous one reached.")
            if same_values(result, u0 + net(u0)):
                return NotYet("Every step used the slope at u0: evaluate f at the current state, f(u), inside the "
                              "loop, so that each block sees what the previous one produced.")
            for steps in (n - 1, n + 1):
                if steps >= 0 and same_values(result, _euler(net, u0, steps, 1 / n)):
                    return NotYet(f"You took {steps} steps for n = {n}: an off-by-one in the loop. n steps of size "
                                  "1 / n end exactly at t = 1.")
            if same_values(result, _accurate(), rtol=1e-4, atol=1e-6):
                return NotYet("That is an accurate solution of the ODE, not n Euler steps: write the loop of Euler "
                              "steps yourself, u = u + (1 / n) * f(u), n times.")
            if same_values(result, u0):
                return NotYet("Your function returns u0 unchanged: check the step size (1 // n is 0 in Python; write "
                              "1 / n) and that each step's result is kept.")
        return NotYet(f"For n = {n} your result differs from n Euler steps of size 1 / n from u0.")
    errors, tsit5_error, tsit5_calls, blocks = _euler_facts()
    listed = ", ".join(f"{e:.3g}" for e in errors)
    return Correct(f"Against an accurate solve, u(1) is off by {listed} with n = "
                   f"{', '.join(map(str, _BLOCKS))} blocks: four times the blocks, a quarter of the error, because "
                   f"Euler's method is first order. Tsit5 at rtol = atol = 1e-3 is off by {tsit5_error:.3g} "
                   f"(the tolerance bounds each step's error estimate, not the error at t = 1) after {tsit5_calls} "
                   f"calls of f; Euler needs {blocks:,} blocks, {blocks:,} calls of f, to do as well.")


euler_solve = Exercise(
    number=2,
    title="a ResNet that converges to the ODE",
    judge=_judge_euler_solve,
    hints=(
        "Start with u = u0 and repeat n times: take one Euler step of size h = 1 / n from the current u.",
        "Inside a loop `for _ in range(n):` write u = u + (1 / n) * f(u); after the loop, return u.",
    ),
    solution='''
def euler_solve(f, u0, n):
    u = u0
    for _ in range(n):
        u = u + (1 / n) * f(u)
    return u
''',
)


# --------------------------------------------------------------------------------------------------------------
# Exercise 3: the number of calls of f at three tolerances
# --------------------------------------------------------------------------------------------------------------
def _problems() -> list[tuple[torch.nn.Module, torch.Tensor]]:
    """The two problems a count is checked on: the exercise's field, where atol and rtol weigh about the same
    (|u| is about 0.7), and du/dt = u from u(0) = 10, where rtol dominates, so that an answer that sets only atol
    gives other counts there."""
    return [_field(), (torch.nn.Identity(), torch.full((8,), 10.0, dtype=torch.float64))]


@functools.lru_cache(maxsize=1)
def _counts() -> dict[str, tuple[int, ...]]:
    """The counts of a right answer and of typical wrong ones, at each tolerance of _TOLERANCES, on each problem
    of _problems() in turn (the field's three counts first)."""
    def counts(tol_of: Callable[[float], float | None], method: str = "tsit5", **kw: tuple[str, ...]) -> tuple:
        return tuple(_count(net, u0, tol_of(tol), method, **kw) for net, u0 in _problems() for tol in _TOLERANCES)

    tsit5 = counts(lambda tol: tol)
    return {"tsit5": tsit5,
            "dopri5": counts(lambda tol: tol, "dopri5"),
            "defaults": counts(lambda tol: None),
            "rtol only": counts(lambda tol: tol, which=("rtol",)),
            "atol only": counts(lambda tol: tol, which=("atol",)),
            "steps": tuple((n - 2) // 6 for n in tsit5)}


def _judge_count_evaluations(answer: Callable) -> Correct | NotYet:
    """Run ``answer(f, u0, tol)`` at three tolerances on two problems and compare its counts with the solver's."""
    found = []
    for net, u0 in _problems():
        for tol in _TOLERANCES:
            result = answer(lambda t, u, net=net: net(u), u0.clone(), tol)
            if isinstance(result, torch.Tensor) and result.numel() > 1:
                return NotYet("count_evaluations returned a tensor, probably the solution: return the number of "
                              "calls of f, an int (e.g. the length of a list that your wrapper of f appends to).")
            if isinstance(result, bool) or not isinstance(result, numbers.Integral):
                return NotYet(f"count_evaluations returned {describe(result)}; return the number of calls of f as "
                              "an int.")
            found.append(int(result))
    counts = _counts()
    found = tuple(found)
    if found == counts["tsit5"]:
        steps = [(n - 2) // 6 for n in found]
        return Correct(f"{found[0]}, {found[1]} and {found[2]} calls at tol = 1e-3, 1e-5 and 1e-7: 2 + 6 × "
                       f"{steps[0]}, {steps[1]} and {steps[2]} attempted steps. Tsit5's error estimate for a step "
                       "shrinks like h^5, so the steps need to shrink only like tol^(1/5): about 2.5 times the "
                       f"steps per hundredfold tighter tolerance. Here it is {steps[0]} -> {steps[1]} -> "
                       f"{steps[2]}, less than that, because with so few steps the cautious first step and the "
                       "last one, which overshoots t = 1, weigh a lot.")
    if found == counts["dopri5"]:
        return NotYet("Those are the counts of odeint's default method, dopri5: pass method=\"tsit5\".")
    if found == counts["defaults"]:
        return NotYet("Your count does not change with tol: pass rtol=tol and atol=tol to odeint (its defaults "
                      "are rtol=1e-7 and atol=1e-9).")
    for given, other in (("rtol", "atol=1e-9"), ("atol", "rtol=1e-7")):
        if found == counts[f"{given} only"] and found != counts["tsit5"]:
            return NotYet(f"You set only {given}=tol; the other tolerance keeps odeint's default ({other}). Pass "
                          "both, rtol=tol and atol=tol.")
    if found == counts["steps"]:
        return NotYet("Those are the steps, not the calls of f: count every call, by wrapping f in a function that "
                      "records each call and then calls f.")
    if all(a == b + 1 for a, b in zip(found, counts["tsit5"])):
        return NotYet("Your counts are one too high at every tolerance: does your count start at 1, or count a "
                      "call you make yourself?")
    if found[:len(_TOLERANCES)] == counts["tsit5"][:len(_TOLERANCES)]:
        return NotYet("Your counts are right on the exercise's field but not on a second problem, du/dt = u from "
                      "u(0) = 10: check that you pass rtol=tol and atol=tol, method=\"tsit5\", and count every "
                      "call of f.")
    return NotYet(f"At tol = 1e-3 you counted {found[0]} calls; the solver makes a different number. Wrap f in a "
                  "function that counts each call and hand that wrapper to odeint, with t = torch.tensor([0.0, "
                  "1.0]), method=\"tsit5\", rtol=tol and atol=tol.")


count_evaluations = Exercise(
    number=3,
    title="what a tighter tolerance costs",
    judge=_judge_count_evaluations,
    hints=(
        "Define a function counted(t, u) inside yours that adds one to a count and returns f(t, u); solve with "
        "counted instead of f.",
        "torchdiffeq.odeint(counted, u0, torch.tensor([0.0, 1.0]), method=\"tsit5\", rtol=tol, atol=tol), then "
        "return the count.",
    ),
    solution='''
import torchdiffeq


def count_evaluations(f, u0, tol):
    calls = []

    def counted(t, u):
        calls.append(t)
        return f(t, u)

    torchdiffeq.odeint(counted, u0, torch.tensor([0.0, 1.0]), method="tsit5", rtol=tol, atol=tol)
    return len(calls)
''',
)
