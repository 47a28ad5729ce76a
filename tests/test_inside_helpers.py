"""Helpers notebook 04 uses to look inside a trained model: solver steps, class spread, linear readouts."""

import pytest
import torch
from torch import nn

from nodeutils import create_model
from nodeutils.analysis import (
    affine_fit_r2,
    class_distances,
    class_spread,
    decoder_margin,
    decoder_scores,
    exact_mcnemar,
    fit_linear_readout,
    solver_settings,
    solver_steps,
)
from nodeutils.errors import InputError


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(1)
    return torch.rand(16, 1, 28, 28)


def test_solver_steps_are_the_steps_of_the_models_own_solve(images):
    model = create_model("class")
    for tolerance in (1e-1, 1e-3, 1e-6):
        with solver_settings(model, rtol=tolerance, atol=tolerance), torch.no_grad():
            model(images)
        steps = solver_steps(model, images, tolerance)
        assert steps.evaluations == model.ode.stats.nfe_forward
        assert steps.step_ends[0] == 0.0 and steps.step_ends[-1] >= 1.0
        # f(t0) and one trial evaluation to size the first step, then 6 new stages a Tsit5 step (FSAL)
        assert steps.evaluations == 2 + 6 * (len(steps.step_sizes) + steps.rejected)
        with solver_settings(model, options={"first_step": 0.5}):  # a given first step skips the trial only
            given = solver_steps(model, images, tolerance)
        assert given.evaluations == 1 + 6 * (len(given.step_sizes) + given.rejected)


def test_solver_steps_default_to_the_models_tolerance_and_follow_its_options(images):
    model = create_model("compact", init="torch")  # PyTorch's narrower initial weights: a flow smooth enough that
    assert solver_steps(model, images).tolerance == 1e-3  # the step-growth cap binds even at a loose tolerance
    loose = solver_steps(model, images, 1e-1)
    assert max(loose.growth) == pytest.approx(10.0)  # torchdiffeq's default ifactor caps the growth
    default = solver_steps(model, images)
    with solver_settings(model, options={"ifactor": 2.0}):
        capped = solver_steps(model, images)
    assert max(capped.growth) <= 2.0 + 1e-9 and capped.evaluations > default.evaluations


def test_solver_steps_rejects_a_bad_tolerance(images):
    with pytest.raises(InputError, match="tolerance"):
        solver_steps(create_model("class"), images, -1.0)


def test_class_spread_is_zero_for_point_classes_and_scale_free():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    centres = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    assert class_spread(centres[labels], labels) == 0.0
    torch.manual_seed(0)
    states = (centres[labels] + 0.1 * torch.randn(6, 2)).double()
    assert class_spread(states, labels) == pytest.approx(class_spread(7.0 * states + 2.0, labels), rel=1e-9)
    # by hand: mean distance to the class centre over mean distance to the overall centre
    within = torch.stack([(states[labels == c] - states[labels == c].mean(0)).norm(dim=1).mean() for c in range(3)])
    overall = (states - states.mean(0)).norm(dim=1).mean()
    assert class_spread(states, labels) == pytest.approx(float(within.mean() / overall), rel=1e-6)


def test_class_distances_are_the_parts_of_the_spread():
    labels = torch.tensor([0, 0, 1, 1])
    states = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [10.0, 4.0]])
    within, overall = class_distances(states, labels)
    assert within == pytest.approx((1.0 + 2.0) / 2)  # class 0: distance 1 each, class 1: distance 2 each
    centre = states.mean(0)
    assert overall == pytest.approx(float((states - centre).norm(dim=1).mean()))
    assert class_spread(states, labels) == pytest.approx(within / overall)
    assert class_distances(3 * states, labels) == pytest.approx((3 * within, 3 * overall))


def test_affine_fit_r2_is_one_for_an_affine_map_and_small_for_an_unrelated_one():
    torch.manual_seed(0)
    x = torch.randn(300, 4)
    a, b = torch.randn(3, 4), torch.randn(3)
    assert affine_fit_r2(x, x @ a.T + b) == pytest.approx(1.0, abs=1e-6)
    assert affine_fit_r2(x, torch.randn(300, 3)) < 0.05
    # by hand for a noisy map: 1 - residual / total sum of squares
    y = (x @ a.T + b).double() + 0.5 * torch.randn(300, 3, dtype=torch.float64)
    design = torch.cat([x.double(), torch.ones(300, 1, dtype=torch.float64)], 1)
    residual = y - design @ torch.linalg.pinv(design) @ y
    expected = 1 - float((residual ** 2).sum() / ((y - y.mean(0)) ** 2).sum())
    assert affine_fit_r2(x, y) == pytest.approx(expected, rel=1e-9)
    assert 0.5 < expected < 0.99


@pytest.mark.parametrize("inputs, outputs, message", [
    (torch.zeros(10), torch.zeros(10, 2), "2-D tensor"),
    (torch.zeros(10, 2), torch.zeros(9, 2), "row by row"),
    (torch.randn(3, 2), torch.randn(3, 2), "more than 3 points"),
    (torch.randn(10, 2), torch.ones(10, 2), "no variance"),
])
def test_affine_fit_r2_rejects_bad_input(inputs, outputs, message):
    with pytest.raises(InputError, match=message):
        affine_fit_r2(inputs, outputs)


def test_exact_mcnemar_is_the_two_sided_binomial_tail():
    assert exact_mcnemar(8, 1) == pytest.approx(2 * (1 + 9) / 2**9)
    assert exact_mcnemar(1, 8) == exact_mcnemar(8, 1)
    assert exact_mcnemar(0, 0) == 1.0 and exact_mcnemar(3, 3) == 1.0
    assert exact_mcnemar(10, 0) == pytest.approx(2 / 2**10)
    with pytest.raises(InputError, match="count"):
        exact_mcnemar(-1, 2)
    with pytest.raises(InputError, match="count"):
        exact_mcnemar(2.0, 2)


@pytest.mark.parametrize("states, labels, message", [
    (torch.zeros(4, 2), torch.zeros(4), "integer class labels"),
    (torch.zeros(4), torch.zeros(4, dtype=torch.long), "2-D tensor"),
    (torch.zeros(4, 2), torch.zeros(3, dtype=torch.long), "one label per image"),
])
def test_class_spread_rejects_bad_input(states, labels, message):
    with pytest.raises(InputError, match=message):
        class_spread(states, labels)


def test_decoder_scores_and_margin_are_the_decoders(images):
    model = create_model("class")
    states = torch.randn(5, 20)
    scores = decoder_scores(model, states)
    with torch.no_grad():
        assert torch.equal(scores, model.decoder(states))
    top = scores.sort(dim=1, descending=True).values
    assert torch.equal(decoder_margin(model, states), top[:, 0] - top[:, 1])


def test_linear_readout_reaches_the_penalised_optimum():
    torch.manual_seed(0)
    states, labels = torch.randn(200, 5), torch.randint(0, 3, (200,))
    readout = fit_linear_readout(states, labels, classes=3, penalty=1e-2)
    assert readout.gradient_norm < 1e-10
    # the same objective minimised by LBFGS from another start lands on the same weights
    layer = nn.Linear(5, 3).double()
    optimiser = torch.optim.LBFGS(layer.parameters(), max_iter=500, tolerance_grad=1e-12, tolerance_change=0,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(layer(states.double()), labels) + 0.5e-2 * (layer.weight ** 2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    assert torch.allclose(readout.weight, layer.weight.detach(), atol=1e-6)
    # the bias is fixed only up to a common shift of every class (softmax ignores it)
    shift = readout.bias - layer.bias.detach()
    assert torch.allclose(shift, shift.mean().expand(3), atol=1e-6)
    assert readout.loss == pytest.approx(float(nn.functional.cross_entropy(readout(states), labels)), rel=1e-12)


def test_linear_readout_separates_separable_classes():
    torch.manual_seed(0)
    labels = torch.arange(4).repeat(25)
    states = 5.0 * nn.functional.one_hot(labels, 4).float() + 0.3 * torch.randn(100, 4)
    readout = fit_linear_readout(states, labels, classes=4)
    assert readout.accuracy(states, labels) == 100.0 and readout.gradient_norm < 1e-10


@pytest.mark.parametrize("kwargs, message", [
    ({"classes": 2}, "outside 0..1"),
    ({"penalty": -1.0}, "penalty"),
    ({"iterations": 0}, "iterations"),
])
def test_linear_readout_rejects_bad_input(kwargs, message):
    with pytest.raises(InputError, match=message):
        fit_linear_readout(torch.zeros(6, 2), torch.tensor([0, 1, 2, 0, 1, 2]), **kwargs)
