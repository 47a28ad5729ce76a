"""Exercises of notebook 02 (three ways to write the layer).

In the notebook::

    from nodeutils.exercises import ____, notebook02 as exercises

    def unflatten(vector, like):
        return ____
    exercises.unflatten.check(unflatten)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from ..compilation import explain
from ..errors import InputError
from ..sensitivity import InterpolatingAdjoint, SensitivityAlgorithm, odeint
from . import Correct, Exercise, NotYet, same_values, shape_problem

__all__ = ["neural_ode", "unflatten", "step_factor", "reference_step_factor"]


# --------------------------------------------------------------------------------------------------------------
# Exercise 1: the tutorial's class-based layer, the state reassigned inside the right-hand side
# --------------------------------------------------------------------------------------------------------------
_WIDTH, _BATCH = 6, 5


def _bn_problem() -> tuple[nn.Module, torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A seeded network with a BatchNorm, a batch of states, and ``ps`` and ``st`` that differ from its own."""
    generator = torch.Generator().manual_seed(20)
    torch.manual_seed(20)
    model = nn.Sequential(nn.Linear(_WIDTH, _WIDTH), nn.BatchNorm1d(_WIDTH), nn.Tanh())
    x = torch.randn(_BATCH, _WIDTH, generator=generator)
    ps = {name: (1.5 * p.detach() + 0.1).requires_grad_() for name, p in model.named_parameters()}
    st = {name: b.clone() for name, b in model.named_buffers()}
    st["1.running_mean"] += torch.randn(_WIDTH, generator=generator)
    st["1.num_batches_tracked"] += 3
    return model, x, ps, st


def _solve(model: nn.Module, x: torch.Tensor, ps: dict, st: dict, *, own_params: bool = False,
           sensealg: SensitivityAlgorithm | None = None) -> tuple[torch.Tensor, dict]:
    """The reference layer (with ``own_params=True``: the mistake of ignoring ``p``, to recognise it)."""
    own = dict(model.named_parameters())

    def dudt(t: torch.Tensor, u: torch.Tensor, p: dict) -> torch.Tensor:
        nonlocal st
        p = own if own_params else p
        st = {name: value.clone() for name, value in st.items()}
        return functional_call(model, {**p, **st}, (u.view(x.shape),)).reshape(-1)

    y = odeint(dudt, x.reshape(-1), torch.tensor([0.0, 1.0]), params=ps, sensealg=sensealg, method="tsit5",
               rtol=1e-3, atol=1e-3)
    return y.view(-1, *x.shape), st


class _RecordedAdjoint(InterpolatingAdjoint):
    """The interpolating adjoint with torch.func's vector-Jacobian products, counting its backward passes.

    Under torch.func, f is differentiated with respect to the ``p`` the solver hands it and nothing else, so a
    right-hand side that reads the parameters from elsewhere gets a zero gradient (as under Lux's adjoints).
    """

    def __init__(self) -> None:
        super().__init__(autojacvec="func")
        self.backward_passes = 0

    def backward(self, problem: Any, record: dict, grad_ys: torch.Tensor) -> tuple[torch.Tensor, list]:
        self.backward_passes += 1
        return super().backward(problem, record, grad_ys)


def _copy_state(st: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in st.items()}


def _same_state(a: Mapping[str, Any], b: Mapping[str, torch.Tensor]) -> bool:
    if not isinstance(a, Mapping) or set(a) != set(b):
        return False
    return all(isinstance(a[k], torch.Tensor) and a[k].shape == b[k].shape
               and torch.allclose(a[k].detach().double(), b[k].double(), rtol=1e-6, atol=1e-9) for k in b)


def _judge_neural_ode(answer: Callable) -> Correct | NotYet:
    model, x, ps, st = _bn_problem()
    st_given, own_buffers = _copy_state(st), _copy_state(dict(model.named_buffers()))
    try:
        result = answer(model, x, ps, st)
    except RuntimeError as error:
        message = str(error)
        if "mat1 and mat2" in message:
            return NotYet("The network got the solver's flat state: inside dudt, u is one vector for the whole "
                          "batch; give the network u.view(x.shape).", error=error)
        if "size of tensor" in message or "shape" in message:
            return NotYet("The derivative must have the shape of the solver's state, one flat vector: return the "
                          "network's output with .reshape(-1).", error=error)
        raise
    except InputError as error:
        if "shaped like the state" in str(error):
            return NotYet("The derivative must have the shape of the solver's state, one flat vector: return the "
                          "network's output with .reshape(-1).", error=error)
        raise
    except UnboundLocalError as error:
        return NotYet("Assigning to st inside dudt makes st a new local variable of dudt, which is read before it "
                      "has a value: declare nonlocal st as dudt's first line, so the assignment reaches the layer's "
                      "st.", error=error)
    if not isinstance(result, tuple) or len(result) != 2:
        return NotYet("neural_ode should return two things, the solution and the state: return y, st.")
    y, st_out = result
    if not _same_state(dict(model.named_buffers()), own_buffers):
        return NotYet("The network updated its own buffers, so it ran with its own state instead of st: hand "
                      "functional_call the state as well, {**p, **st}.")
    if not _same_state(st, st_given):
        return NotYet("The tensors of the st you were given changed: functional_call lets BatchNorm write its "
                      "update into the very tensors you pass. Pass a copy, e.g. {name: v.clone() for name, v in "
                      "st.items()}, and keep that copy as the new st.")
    expected, st_expected = _solve(model, x, ps, st_given)
    if (problem := shape_problem(y, expected, what="the solution neural_ode returned")) is not None:
        return problem
    if not same_values(y, expected, rtol=1e-5, atol=1e-7):
        if same_values(y, _solve(model, x, ps, st_given, own_params=True)[0], rtol=1e-5, atol=1e-7):
            return NotYet("The solution matches the network's own parameters, not ps: hand functional_call the "
                          "parameters the solver passes to dudt, p.")
        return NotYet("The solution differs from the layer's: in dudt, call functional_call(model, {**p, **copy}, "
                      "(u.view(x.shape),)) with a copy of st, and return the result flattened with .reshape(-1).")
    if _same_state(st_out, st_given):
        return NotYet("The state you return is the one you were given: inside dudt, assign the state that comes "
                      "back (your copy, updated by BatchNorm) to st; nonlocal st makes that assignment reach the "
                      "layer's st.")
    if not _same_state(st_out, st_expected):
        return NotYet("The state you return is not the one after the last evaluation: every call of dudt should "
                      "start from the current st and leave its updated copy in st.")
    gradient_hint = NotYet("The solution is right but its gradient with respect to ps is not: use p as it comes "
                           "(no .detach(), no copies of the parameters).")
    if not y.requires_grad:
        return gradient_hint
    grads = torch.autograd.grad(y[-1].pow(2).sum(), list(ps.values()), allow_unused=True)
    ref = torch.autograd.grad(expected[-1].pow(2).sum(), list(ps.values()))
    if any(g is None or not same_values(g, r, rtol=1e-5, atol=1e-7) for g, r in zip(grads, ref)):
        return gradient_hint
    evaluations = int(st_out["1.num_batches_tracked"] - st_given["1.num_batches_tracked"])
    if (problem := _judge_under_an_adjoint(answer, evaluations)) is not None:
        return problem
    return Correct(f"The state was threaded through all {evaluations} evaluations of the forward solve and came "
                   "back as st', Lux's (x, ps, st) -> (y, st') with a reassigned closure variable (nonlocal in "
                   "Python); under an adjoint the gradient reached ps through p, and backward left st' as it was.")


def _judge_under_an_adjoint(answer: Callable, evaluations: int) -> NotYet | None:
    """Run the answer under the interpolating adjoint (torch.func VJPs): the gradient, and st' after backward."""
    model, x, ps, st = _bn_problem()
    st_given = _copy_state(st)
    adjoint = _RecordedAdjoint()
    try:
        y, st_out = answer(model, x, ps, st, sensealg=adjoint)
    except TypeError as error:
        if "sensealg" not in str(error):
            raise
        return NotYet("Keep the template's parameter sensealg=None and hand it to odeint: the check also runs your "
                      "layer under an adjoint.", error=error)
    after_forward = _copy_state(st_out)
    if not y.requires_grad:
        return NotYet("Under an adjoint the solution has no gradient: use p as it comes (no .detach()).")
    grads = torch.autograd.grad(y[-1].pow(2).sum(), list(ps.values()), allow_unused=True)
    if adjoint.backward_passes == 0:
        return NotYet("Your layer ignored sensealg: hand it to odeint (sensealg=sensealg), as the template does.")
    expected, _ = _solve(model, x, ps, st_given, sensealg=_RecordedAdjoint())
    ref = torch.autograd.grad(expected[-1].pow(2).sum(), list(ps.values()))
    if all(g is None or not bool(g.any()) for g in grads):
        return NotYet("Under an adjoint your gradient with respect to ps is zero: dudt runs the network with "
                      "parameters from outside (ps or the module's own), not p. An adjoint differentiates f with "
                      "respect to the p the solver hands dudt, so f must use that p.")
    if any(g is None or not same_values(g, r, rtol=1e-5, atol=1e-7) for g, r in zip(grads, ref)):
        return NotYet("Under an adjoint your gradient with respect to ps differs from the layer's: in dudt, run the "
                      "network with p as it comes, {**p, **copy}.")
    if not _same_state(st_out, after_forward):
        count = int(st_out["1.num_batches_tracked"] - st_given["1.num_batches_tracked"])
        return NotYet(f"The state you returned changed during backward ({evaluations} updates after the forward "
                      f"solve, {count} after backward): the adjoint evaluates dudt again on its way back, and your "
                      "dudt updates the returned object in place. Reassign st to a new dictionary instead (nonlocal "
                      "st), so that the value you returned stays the forward solve's.")
    return None


neural_ode = Exercise(
    number=1,
    title="the state threaded through the right-hand side",
    judge=_judge_neural_ode,
    hints=(
        "Two steps inside dudt: st becomes a copy of the state (a new dictionary of cloned tensors), then the network "
        "runs through functional_call with the parameters p and that state together, in one dictionary.",
        "nonlocal st first; then st = {name: v.clone() for name, v in st.items()}, and du = "
        "functional_call(model, {**p, **st}, (u.view(x.shape),)).",
    ),
    solution='''
from torch.func import functional_call
from nodeutils import odeint


def neural_ode(model, x, ps, st, sensealg=None):
    def dudt(t, u, p):
        nonlocal st
        st = {name: value.clone() for name, value in st.items()}
        du = functional_call(model, {**p, **st}, (u.view(x.shape),))
        return du.reshape(-1)

    y = odeint(dudt, x.reshape(-1), torch.tensor([0.0, 1.0]), params=ps, sensealg=sensealg,
               method="tsit5", rtol=1e-3, atol=1e-3)
    return y.view(-1, *x.shape), st
''',
)


# --------------------------------------------------------------------------------------------------------------
# Exercise 2: a ComponentArray by hand
# --------------------------------------------------------------------------------------------------------------
def _like() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(21)
    shapes = {"0.weight": (3, 4), "0.bias": (3,), "2.weight": (2, 3), "2.bias": (2,)}
    return {name: torch.randn(shape, generator=generator) for name, shape in shapes.items()}


def _judge_unflatten(answer: Callable) -> Correct | NotYet:
    like = _like()
    vector = torch.cat([t.reshape(-1) for t in like.values()]).requires_grad_()
    sizes = [t.numel() for t in like.values()]
    try:
        result = answer(vector, like)
    except RuntimeError as error:
        if "shape" in str(error) or "size" in str(error) or "view" in str(error):
            return NotYet("A part of the vector did not fit its shape: each name takes as many numbers as its "
                          "tensor has (like[name].numel()), starting where the previous part ended.", error=error)
        raise
    if isinstance(result, (list, tuple)):
        return NotYet("You returned a sequence; return a dictionary name -> part, e.g. dict(zip(like, parts)).")
    if not isinstance(result, Mapping):
        return NotYet(f"unflatten returned a {type(result).__name__}; return a dictionary name -> part.")
    if list(result) != list(like):
        return NotYet(f"The dictionary's names should be like's, in order: {list(like)}; yours are {list(result)}.")
    parts = torch.split(vector.detach(), sizes)
    for (name, target), part in zip(like.items(), parts):
        value = result[name]
        if (problem := shape_problem(value, target, what=f"the part for {name!r}")) is not None:
            return problem
        if not same_values(value, part.view_as(target), rtol=0, atol=0):
            return NotYet(f"The part for {name!r} holds other numbers than its share of the vector: the parts "
                          "follow each other, each starting where the previous one ended (torch.split with the "
                          "sizes of like's tensors does that).")
    if any(result[name].untyped_storage().data_ptr() != vector.untyped_storage().data_ptr() for name in like):
        return NotYet("The numbers are right, but some parts are copies: a ComponentArray's parts are views of "
                      "its one vector. Use .view, .reshape or torch.split, not .clone() or torch.tensor(...).")
    weights = [torch.arange(1.0, t.numel() + 1).view_as(t) for t in like.values()]
    total = sum((result[name] * w).sum() for name, w in zip(like, weights))
    if not total.requires_grad:
        return NotYet("The parts are cut off from the vector's gradient: avoid .detach() and .data, so that a "
                      "gradient with respect to a part lands in the vector.")
    (grad,) = torch.autograd.grad(total, vector)
    if not torch.equal(grad, torch.cat([w.reshape(-1) for w in weights])):
        return NotYet("A gradient with respect to the parts does not land at the right places in the vector: "
                      "check the order and the offsets of the parts.")
    return Correct("Each part is a view of the one vector, so the solver can treat the parameters as one flat "
                   "array while the network reads them by name, and their gradients land in one vector too.")


unflatten = Exercise(
    number=2,
    title="a ComponentArray by hand",
    judge=_judge_unflatten,
    hints=(
        "Cut the vector into consecutive pieces of like[name].numel() numbers each, then give each piece its "
        "tensor's shape.",
        "torch.split(vector, [t.numel() for t in like.values()]) gives the pieces in order; piece.view(t.shape) "
        "shapes each one. Pair them with the names using zip.",
    ),
    solution='''
def unflatten(vector, like):
    pieces = torch.split(vector, [t.numel() for t in like.values()])
    return {name: piece.view(t.shape) for (name, t), piece in zip(like.items(), pieces)}
''',
)


# --------------------------------------------------------------------------------------------------------------
# Exercise 3: a step-size rule without Python branches
# --------------------------------------------------------------------------------------------------------------
SAFETY, IFACTOR, DFACTOR, ORDER = 0.9, 10.0, 0.2, 5  # torchdiffeq's defaults for an order-5 method such as Tsit5


def reference_step_factor(r: torch.Tensor) -> torch.Tensor:
    """torchdiffeq's step-size factor, one error ratio at a time, with its own ``if`` statements.

    Args:
        r: Error ratios (error estimate over tolerance), a floating-point tensor of any shape.

    Returns:
        The factor the next step size is multiplied by, for each ratio, shaped like ``r``.
    """
    from torchdiffeq._impl.misc import _optimal_step_size

    one = torch.ones((), dtype=r.dtype)
    factors = [_optimal_step_size(one, value, torch.tensor(SAFETY, dtype=r.dtype),
                                  torch.tensor(IFACTOR, dtype=r.dtype), torch.tensor(DFACTOR, dtype=r.dtype), ORDER)
               for value in r.reshape(-1)]
    return torch.stack(factors).view_as(r)


_RATIOS = (0.0, 1e-7, 1e-3, 0.05, 0.3, 0.62, 0.8, 0.99, 1.0, 1.2, 2.0, 30.0, 1e4)


def _rule(r: torch.Tensor, *, exponent: float = 1 / ORDER, safety: float = SAFETY, upper: bool = True,
          lower: bool = True, keep_accepted: bool = True, keep_at_one: bool = False) -> torch.Tensor:
    factor = safety / r ** exponent
    if lower:
        kept = r <= 1 if keep_at_one else r < 1
        floor = torch.where(kept, torch.ones_like(r), torch.full_like(r, DFACTOR)) if keep_accepted else DFACTOR
        factor = torch.maximum(factor, torch.as_tensor(floor, dtype=r.dtype))
    return torch.clamp(factor, max=IFACTOR) if upper else factor


def _judge_step_factor(answer: Callable) -> Correct | NotYet:
    r = torch.tensor(_RATIOS, dtype=torch.float64)
    expected = reference_step_factor(r)
    try:
        result = answer(r.clone())
    except RuntimeError as error:
        if "ambiguous" in str(error):
            return NotYet("An `if` on a tensor of many ratios cannot decide for all of them at once: choose per "
                          "ratio with torch.where(condition, a, b), and bound with torch.clamp or torch.maximum.",
                          error=error)
        raise
    if (problem := shape_problem(result, expected, what="step_factor(r)")) is not None:
        return problem
    if not same_values(result, expected, rtol=1e-6, atol=0):
        mistakes = (
            (dict(exponent=1 / 4), "Your factor uses the exponent 1/4; Tsit5 is a method of order 5, so the rule "
                                   "takes r to the power -1/5."),
            (dict(safety=1.0), "The safety factor is missing: the rule aims a little low, 0.9 * r ** (-1/5)."),
            (dict(upper=False), "For small ratios your factor exceeds 10: a step may grow by at most 10 times."),
            (dict(lower=False), "For large ratios your factor drops below 0.2: a step may shrink to no less than "
                                "0.2 of its size, and a step with r < 1 must not shrink at all."),
            (dict(keep_accepted=False), "For ratios a little below 1 your factor is below 1: a step with r < 1 "
                                        "must not shrink, so its factor is at least 1."),
            (dict(keep_at_one=True), "At r = 1 your factor is 1, torchdiffeq's is 0.9: it keeps a step from "
                                     "shrinking only when r < 1 (strictly), although it accepts the step at r = 1."),
        )
        for variant, message in mistakes:
            if same_values(result, _rule(r, **variant), rtol=1e-6, atol=0):
                return NotYet(message)
        wrong = [f"r = {v:g}: yours {a:.4g}, expected {b:.4g}" for v, a, b in zip(_RATIOS, result.tolist(),
                                                                               expected.tolist()) if
                 not torch.isclose(torch.tensor(a), torch.tensor(b), rtol=1e-6)]
        return NotYet(f"Some factors differ from torchdiffeq's ({'; '.join(wrong[:2])}): the factor is "
                      "0.9 * r ** (-1/5), at most 10, at least 0.2, and at least 1 when r < 1.")
    traced = explain("step_factor", getattr(answer, "__wrapped__", answer), r)  # the learner's own function
    if traced.graph_breaks or traced.graphs != 1:
        found = (f"broke the graph {traced.graph_breaks} time(s) ({traced.top_reasons(1)})" if traced.graph_breaks
                 else f"captured {traced.graphs} graphs instead of one")
        return NotYet(f"The factors are right, but TorchDynamo {found}: something in your function decides in "
                      "Python from a tensor's value (an if, .item(), float(), a loop over the ratios). Express every "
                      "choice with torch.where or torch.clamp, on the whole tensor at once.")
    return Correct("The rule traces as one graph: what breaks the solver's graph is not this arithmetic but the "
                   "loop around it, which must decide in Python whether to accept the step and when to stop.")


step_factor = Exercise(
    number=3,
    title="a step-size rule without Python branches",
    judge=_judge_step_factor,
    hints=(
        "Compute 0.9 * r ** (-1/5) for every ratio at once, then bound it: at most 10; at least 1 where r < 1 and "
        "at least 0.2 elsewhere (torch.where picks the lower bound per ratio).",
        "lowest = torch.where(r < 1, 1.0, 0.2); then torch.clamp(torch.maximum(0.9 * r ** (-1 / 5), "
        "torch.as_tensor(lowest)), max=10.0). At r = 0 the power is infinite, and the clamp turns it into 10.",
    ),
    solution='''
def step_factor(r):
    lowest = torch.where(r < 1, torch.ones_like(r), torch.full_like(r, 0.2))  # accepted steps never shrink
    return torch.clamp(torch.maximum(0.9 * r ** (-1 / 5), lowest), max=10.0)
''',
)
