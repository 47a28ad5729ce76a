"""nodeutils.probing: predictions, trajectories, solver settings and steps, tolerance sweeps, decoder scores."""

import pytest
import torch
from helpers import assert_refused

from nodeutils import create_model
from nodeutils.errors import InputError, NodeUtilsWarning
from nodeutils.probing import (
    decoder_margin,
    decoder_scores,
    evaluate_at_tolerance,
    hidden_trajectories,
    predict,
    solver_settings,
    solver_steps,
    tolerance_grid,
)

IMAGES = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(1)
    return torch.rand(16, 1, 28, 28)


def test_trajectories_start_at_the_encoding_and_predict_like_the_model(trained):
    _, images, truth, predicted, traj = trained
    assert traj.states.shape == (6, len(truth), 20)
    model = trained[0].model
    with torch.no_grad():  # the encoder written out: flatten, Linear(784, 20), tanh
        encoding = torch.tanh(model.encoder(images.reshape(len(images), -1)))
    assert torch.equal(traj.states[0], encoding)
    assert torch.equal(traj.predictions, predicted)
    assert float(traj.times[0]) == 0.0 and float(traj.times[-1]) == 1.0
    with pytest.raises(InputError, match="n_times"):
        hidden_trajectories(trained[0].model, images, truth, n_times=1)


def test_hidden_trajectories_takes_labels_as_accuracy_does(model):
    """(N, 1) labels are converted with a warning, as accuracy() converts them; soft rows are refused."""
    reference = hidden_trajectories(model, IMAGES, torch.arange(3), n_times=2)
    with pytest.warns(NodeUtilsWarning, match=r"flattened labels shaped \(N, 1\)"):
        column = hidden_trajectories(model, IMAGES, torch.arange(3)[:, None], n_times=2)
    assert column.labels.shape == (3,) and torch.equal(column.labels, reference.labels)
    assert torch.equal(column.states, reference.states)
    assert_refused(lambda: hidden_trajectories(model, IMAGES, torch.full((3, 10), 0.1)), InputError, ["not one-hot"])


def test_tighter_tolerance_needs_more_evaluations(trained, small_loaders):
    loose = evaluate_at_tolerance(trained[0].model, small_loaders[1], 1e-1)
    tight = evaluate_at_tolerance(trained[0].model, small_loaders[1], 1e-6)
    assert tight.nfe_per_batch > loose.nfe_per_batch
    assert trained[0].model.ode.settings.rtol == 1e-3  # restored afterwards


def test_solver_settings_unknown_name_is_refused_not_set(model):
    def change():
        with solver_settings(model, rtl=1e-6):
            pass

    assert_refused(change, InputError, ["solver_settings cannot change rtl", "rtol"])
    assert not hasattr(model.ode.settings, "rtl")


# ---------------------------------------------------------------------------------------------------------------
# Solver steps
# ---------------------------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------------------------
# Decoder scores
# ---------------------------------------------------------------------------------------------------------------
def test_decoder_scores_and_margin_are_the_decoders():
    model = create_model("class")
    with torch.no_grad():  # a decoder whose scores are known: class c scores c times the first state component
        model.decoder.weight.zero_()
        model.decoder.weight[:, 0] = torch.arange(10.0)
        model.decoder.bias.zero_()
    states = torch.zeros(2, 20)
    states[0, 0], states[1, 0] = 1.0, -2.0
    scores = decoder_scores(model, states)
    assert torch.equal(scores, torch.stack([torch.arange(10.0), -2 * torch.arange(10.0)]))
    # top score minus the runner-up: 9 - 8 for the first state, 0 - (-2) for the second
    assert decoder_margin(model, states).tolist() == [1.0, 2.0]


# ---------------------------------------------------------------------------------------------------------------
# Bad inputs: refused with the argument and the fix
# ---------------------------------------------------------------------------------------------------------------
def _empty_loader():
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(0, 1, 28, 28),
                                                                      torch.zeros(0, dtype=torch.long)))


BAD_INPUTS = [
    pytest.param(lambda fx: decoder_margin(fx.model, torch.zeros(5, 4, 20)), InputError,
                 ("states must be a 2-D tensor",), id="decoder_margin of a trajectory"),
    pytest.param(lambda fx: decoder_scores(fx.model, torch.zeros(3, 19)), InputError,
                 ("shaped (..., 20)",), id="decoder_scores of 19 features"),
    pytest.param(lambda fx: decoder_scores(fx.model, [[0.0] * 20]), InputError,
                 ("shaped (..., 20)",), id="decoder_scores of a list"),
    pytest.param(lambda fx: hidden_trajectories(fx.model, IMAGES, torch.arange(3), n_times=2.5), InputError,
                 ("n_times must be an integer",), id="hidden_trajectories fractional n_times"),
    pytest.param(lambda: hidden_trajectories(torch.nn.Linear(784, 10), IMAGES, torch.arange(3)), InputError,
                 ("expected a model built by create_model",), id="hidden_trajectories of a plain module"),
    pytest.param(lambda fx: hidden_trajectories(fx.model, IMAGES, torch.arange(2)), InputError,
                 ("3 images with labels shaped (2,)", "one class index per image"),
                 id="hidden_trajectories label count mismatch"),
    pytest.param(lambda: tolerance_grid(low=0.0), InputError, ("low must be a positive finite number",),
                 id="tolerance_grid low=0"),
    pytest.param(lambda fx: predict(fx.model, _empty_loader()), InputError, ("nothing to predict",),
                 id="predict with an empty loader"),
    pytest.param(lambda fx: solver_steps(create_model("class"), fx.images, -1.0), InputError, ("tolerance",),
                 id="solver_steps negative tolerance"),
]


@pytest.mark.parametrize("call, error, fragments", BAD_INPUTS)
def test_bad_input_is_refused_with_the_argument_and_the_fix(call, error, fragments, fx):
    assert_refused(call, error, fragments, fx)


@pytest.mark.parametrize("training", [True, False])
def test_probing_gives_the_model_back_in_its_mode(model, training):
    images = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    model.train(training)
    hidden_trajectories(model, images, torch.arange(4), n_times=3)
    solver_steps(model, images)
    assert model.training is training
