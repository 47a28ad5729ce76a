"""Helpers notebook 04 uses to look inside a trained model: solver steps, class spread, linear readouts."""

import pytest
import torch
from torch import nn

from nodeutils import create_model
from nodeutils.analysis import (
    class_spread,
    decoder_margin,
    decoder_scores,
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
        assert steps.evaluations == 2 + 6 * (len(steps.step_sizes) + steps.rejected)  # Tsit5: 6 new stages a step


def test_solver_steps_default_to_the_models_tolerance_and_follow_its_options(images):
    model = create_model("compact")
    assert solver_steps(model, images).tolerance == 1e-3
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
