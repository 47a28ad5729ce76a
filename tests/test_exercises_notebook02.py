"""Notebook 02's exercises: the reference passes, the placeholder is unanswered, typical mistakes get their hint."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_exercises_numbered_and_reachable, assert_reference_is_correct, wrong_verdict
from torch.func import functional_call

from nodeutils import odeint
from nodeutils.exercises import NotYet, ____, exercises_of
from nodeutils.exercises import notebook02 as exercises

SPAN = torch.tensor([0.0, 1.0])
TSIT5 = {"method": "tsit5", "rtol": 1e-3, "atol": 1e-3}


def test_every_exercise_is_reachable_by_its_name_and_numbered_in_order():
    assert_exercises_numbered_and_reachable(exercises)


@pytest.mark.parametrize("exercise", exercises_of(exercises), ids=lambda e: e.name)
def test_the_reference_solution_is_correct(exercise):
    assert_reference_is_correct(exercise)


@pytest.mark.parametrize("exercise", exercises_of(exercises), ids=lambda e: e.name)
def test_the_placeholder_is_not_answered_yet(exercise):
    def answer(*args):
        return ____

    assert ": not answered yet. " in exercise.verdict(answer)
    assert ": not answered yet. " in exercise.verdict(____)


# --------------------------------------------------------------------------------------------------------------
# Exercise 1: the state threaded through the right-hand side
# --------------------------------------------------------------------------------------------------------------
def layer_with(body):
    """A layer in the exercise's template whose right-hand side is ``body(model, x, u, p, st) -> (du, new st)``."""

    def neural_ode(model, x, ps, st, sensealg=None):
        def dudt(t, u, p):
            nonlocal st
            du, st = body(model, x, u, p, st)
            return du

        y = odeint(dudt, x.reshape(-1), SPAN, params=ps, sensealg=sensealg, **TSIT5)
        return y.view(-1, *x.shape), st

    return neural_ode


def copied(st):
    return {name: value.clone() for name, value in st.items()}


def no_copy(model, x, u, p, st):  # functional_call writes BatchNorm's update into the caller's tensors
    return functional_call(model, {**p, **st}, (u.view(x.shape),)).reshape(-1), st


def without_state(model, x, u, p, st):  # the network runs with its own buffers
    return functional_call(model, p, (u.view(x.shape),)).reshape(-1), st


def state_not_kept(model, x, u, p, st):
    return functional_call(model, {**p, **copied(st)}, (u.view(x.shape),)).reshape(-1), st


def own_parameters(model, x, u, p, st):
    new = copied(st)
    return functional_call(model, new, (u.view(x.shape),)).reshape(-1), new


def flat_state_to_the_network(model, x, u, p, st):
    new = copied(st)
    return functional_call(model, {**p, **new}, (u,)).reshape(-1), new


def not_flattened(model, x, u, p, st):
    new = copied(st)
    return functional_call(model, {**p, **new}, (u.view(x.shape),)), new


def detached_parameters(model, x, u, p, st):
    new = copied(st)
    return functional_call(model, {**{k: v.detach() for k, v in p.items()}, **new}, (u.view(x.shape),)).reshape(-1), new


def without_nonlocal(model, x, ps, st, sensealg=None):
    def dudt(t, u, p):
        st = copied(st)  # noqa: F823 - the mistake under test
        return functional_call(model, {**p, **st}, (u.view(x.shape),)).reshape(-1)

    y = odeint(dudt, x.reshape(-1), SPAN, params=ps, sensealg=sensealg, **TSIT5)
    return y.view(-1, *x.shape), st


def outer_parameters(model, x, ps, st, sensealg=None):  # right values, and under discrete backprop p is ps
    def dudt(t, u, p):
        nonlocal st
        st = copied(st)
        return functional_call(model, {**ps, **st}, (u.view(x.shape),)).reshape(-1)

    y = odeint(dudt, x.reshape(-1), SPAN, params=ps, sensealg=sensealg, **TSIT5)
    return y.view(-1, *x.shape), st


def state_updated_in_place(model, x, ps, st, sensealg=None):  # no nonlocal: one dictionary, updated by every call
    state = dict(st)

    def dudt(t, u, p):
        new = copied(state)
        du = functional_call(model, {**p, **new}, (u.view(x.shape),)).reshape(-1)
        state.update(new)
        return du

    y = odeint(dudt, x.reshape(-1), SPAN, params=ps, sensealg=sensealg, **TSIT5)
    return y.view(-1, *x.shape), state


def right(model, x, u, p, st):
    new = copied(st)
    return functional_call(model, {**p, **new}, (u.view(x.shape),)).reshape(-1), new


def sensealg_ignored(model, x, ps, st, sensealg=None):
    return layer_with(right)(model, x, ps, st)  # sensealg never reaches odeint


def no_sensealg_parameter(model, x, ps, st):
    return layer_with(right)(model, x, ps, st)


@pytest.mark.parametrize(("answer", "phrase"), [
    (layer_with(no_copy), "Pass a copy"),
    (layer_with(without_state), "ran with its own state instead of st"),
    (layer_with(state_not_kept), "The state you return is the one you were given"),
    (layer_with(own_parameters), "the network's own parameters, not ps"),
    (layer_with(flat_state_to_the_network), "give the network u.view(x.shape)"),
    (layer_with(not_flattened), "return the network's output with .reshape(-1)"),
    (layer_with(detached_parameters), "its gradient with respect to ps is not"),
    (without_nonlocal, "declare nonlocal st"),
    (outer_parameters, "your gradient with respect to ps is zero"),
    (state_updated_in_place, "changed during backward"),
    (sensealg_ignored, "ignored sensealg"),
    (no_sensealg_parameter, "Keep the template's parameter sensealg=None"),
], ids=lambda v: getattr(v, "__name__", None) or str(v)[:20])
def test_neural_ode_mistakes_get_their_hint(answer, phrase):
    assert phrase in wrong_verdict(exercises.neural_ode, answer)


def test_neural_ode_judge_tells_the_given_state_from_the_module_s_own():
    model, _, ps, st = exercises._bn_problem()
    own = dict(model.named_buffers())
    assert not torch.equal(st["1.running_mean"], own["1.running_mean"])
    assert all(p is not q and not torch.equal(p, q) for p, q in zip(ps.values(), model.parameters()))


def test_neural_ode_reference_counts_every_forward_evaluation():
    model, x, ps, st = exercises._bn_problem()
    start = int(st["1.num_batches_tracked"])
    _, st_out = exercises._solve(model, x, ps, st)
    assert int(st_out["1.num_batches_tracked"]) - start > 6  # several Tsit5 steps, each a BatchNorm update
    assert int(st["1.num_batches_tracked"]) == start           # the state handed in is left as it was


# --------------------------------------------------------------------------------------------------------------
# Exercise 2: a ComponentArray by hand
# --------------------------------------------------------------------------------------------------------------
def pieces(vector, like):
    return torch.split(vector, [t.numel() for t in like.values()])


def copies(vector, like):
    return {name: piece.clone().view(t.shape) for (name, t), piece in zip(like.items(), pieces(vector, like))}


def all_from_the_start(vector, like):
    return {name: vector[:t.numel()].view(t.shape) for name, t in like.items()}


def as_a_list(vector, like):
    return [piece.view(t.shape) for piece, t in zip(pieces(vector, like), like.values())]


def detached_views(vector, like):
    return {name: piece.detach().view(t.shape) for (name, t), piece in zip(like.items(), pieces(vector, like))}


def flat_parts(vector, like):
    return dict(zip(like, pieces(vector, like)))


def other_names(vector, like):
    return {f"p{i}": piece.view(t.shape) for i, (piece, t) in enumerate(zip(pieces(vector, like), like.values()))}


@pytest.mark.parametrize(("answer", "phrase"), [
    (copies, "some parts are copies"),
    (all_from_the_start, "each starting where the previous one ended"),
    (as_a_list, "You returned a sequence"),
    (detached_views, "cut off from the vector's gradient"),
    (flat_parts, "returned a tensor of shape"),
    (other_names, "The dictionary's names should be like's"),
], ids=lambda v: getattr(v, "__name__", None) or str(v)[:20])
def test_unflatten_mistakes_get_their_hint(answer, phrase):
    assert phrase in wrong_verdict(exercises.unflatten, answer)


# --------------------------------------------------------------------------------------------------------------
# Exercise 3: a step-size rule without Python branches
# --------------------------------------------------------------------------------------------------------------
def test_the_reference_rule_is_torchdiffeq_s_and_the_solution_s():
    r = torch.tensor(exercises._RATIOS, dtype=torch.float64)
    expected = exercises.reference_step_factor(r)
    assert expected[0] == 10.0 and expected[-1] == 0.2   # r = 0: the largest growth; huge r: the largest cut
    assert (expected[r < 1] >= 1).all()                   # an accepted step never shrinks
    assert torch.allclose(exercises._rule(r), expected, rtol=1e-12, atol=0)
    assert torch.allclose(exercises.step_factor.solution_answer()(r), expected, rtol=1e-12, atol=0)


def with_if(r):
    if r < 1:
        return torch.ones_like(r)
    return 0.9 * r ** (-1 / 5)


def order_four(r):
    return torch.clamp(torch.maximum(0.9 * r ** (-1 / 4), torch.where(r < 1, 1.0, 0.2)), max=10.0)


def no_safety(r):
    return torch.clamp(torch.maximum(r ** (-1 / 5), torch.where(r < 1, 1.0, 0.2)), max=10.0)


def no_upper_bound(r):
    return torch.maximum(0.9 * r ** (-1 / 5), torch.where(r < 1, 1.0, 0.2))


def accepted_steps_shrink(r):
    return torch.clamp(0.9 * r ** (-1 / 5), 0.2, 10.0)


def kept_at_one(r):  # torchdiffeq accepts a step at r = 1 but keeps it from shrinking only for r < 1
    return torch.clamp(torch.maximum(0.9 * r ** (-1 / 5), torch.where(r <= 1, 1.0, 0.2)), max=10.0)


def no_lower_bound(r):
    return torch.clamp(0.9 * r ** (-1 / 5), max=10.0)


def one_ratio_at_a_time(r):  # right numbers, but Python decides each one
    values = []
    for v in r:
        f = 10.0 if v == 0 else min(10.0, max(0.9 * float(v) ** -0.2, 1.0 if v < 1 else 0.2))
        values.append(f)
    return torch.tensor(values, dtype=r.dtype)


@pytest.mark.parametrize(("answer", "phrase"), [
    (with_if, "An `if` on a tensor of many ratios"),
    (order_four, "exponent 1/4"),
    (no_safety, "The safety factor is missing"),
    (no_upper_bound, "at most 10 times"),
    (accepted_steps_shrink, "a step with r < 1 must not shrink"),
    (kept_at_one, "only when r < 1 (strictly)"),
    (no_lower_bound, "no less than 0.2"),
    (one_ratio_at_a_time, "decides in Python"),
], ids=lambda v: getattr(v, "__name__", None) or str(v)[:20])
def test_step_factor_mistakes_get_their_hint(answer, phrase):
    assert phrase in wrong_verdict(exercises.step_factor, answer)


def test_step_factor_judge_returns_a_verdict_for_a_graph_break():
    result = exercises._judge_step_factor(one_ratio_at_a_time)
    assert isinstance(result, NotYet) and "TorchDynamo" in result.message
