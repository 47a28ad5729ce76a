"""Inputs a learner may type into the plots, statistics, data helpers, layers and train: each bad one ends in an
InputError (a NodeUtilsError and a ValueError) that names the argument and says what to pass instead; the
plausible ones with a clear meaning are accepted."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from nodeutils.analysis import PCA, binomial_interval  # noqa: E402
from nodeutils.data import onehot  # noqa: E402
from nodeutils.errors import InputError, NodeUtilsError  # noqa: E402
from nodeutils.layers import NeuralODE, NeuralODECompact, StatefulModel, StatefulNeuralODE  # noqa: E402
from nodeutils.plots import bounded, magnitude, plot_trajectories, show_digits  # noqa: E402
from nodeutils.training import train  # noqa: E402


def _refused(call, *fragments):
    """``call()`` raises an InputError (a NodeUtilsError) whose message holds every fragment."""
    with pytest.raises(InputError) as caught:
        call()
    assert isinstance(caught.value, NodeUtilsError)
    for fragment in fragments:
        assert fragment in str(caught.value), (fragment, str(caught.value))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


IMAGES = torch.rand(4, 1, 28, 28)
PATHS, TIMES = torch.rand(5, 3, 2), [0.0, 0.25, 0.5, 0.75, 1.0]

# ---------------------------------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------------------------------
PLOTS_REFUSED = {
    "fewer labels than images": (lambda: show_digits(IMAGES, [1, 2]), "labels", "got 2 for 4 images", "images[:2]"),
    "more labels than images": (lambda: show_digits(IMAGES, [1, 2, 3, 4, 5]), "labels", "labels[:4]"),
    "fewer predictions than images": (lambda: show_digits(IMAGES, [1, 2, 3, 4], [1]), "predictions",
                                      "got 1 for 4 images"),
    "ncols=0": (lambda: show_digits(IMAGES, [1, 2, 3, 4], ncols=0), "ncols must be a positive integer",
                "digits per row"),
    "ncols a float": (lambda: show_digits(IMAGES, [1, 2, 3, 4], ncols=2.5), "ncols must be an integer"),
    "colour images": (lambda: show_digits(torch.rand(4, 3, 28, 28), [1, 2, 3, 4]), "images must be shaped",
                      "(4, 3, 28, 28)", "images[:, :1]"),
    "images of another size": (lambda: show_digits(torch.rand(4, 32, 32), [1, 2, 3, 4]), "images must be shaped",
                               "(4, 32, 32)", "load_mnist"),
    "images not an array": (lambda: show_digits("digits.png", [1]), "images must be a tensor"),
    "labels a string": (lambda: show_digits(IMAGES[:1], "7"), "labels must be one class number per image"),
    "fractional labels": (lambda: show_digits(IMAGES[:2], [1.5, 2]), "labels must hold integer class numbers"),
    "negative magnitude": (lambda: magnitude(-1e-3), "never negative", "abs(value)"),
    "magnitude of a string": (lambda: magnitude("1e-3"), "magnitude needs a number"),
    "negative bounded": (lambda: bounded(-1e-3, 1e-5), "never negative"),
    "time_index past the end": (lambda: plot_trajectories(PATHS, [1, 2, 3], TIMES, time_index=5), "time_index=5",
                                "out of range for 5 times", "from 0 to 4"),
    "time_index before the start": (lambda: plot_trajectories(PATHS, [1, 2, 3], TIMES, time_index=-6),
                                    "time_index=-6", "-1 is the last"),
    "time_index a float": (lambda: plot_trajectories(PATHS, [1, 2, 3], TIMES, time_index=1.5), "time_index",
                           "integer"),
    "trajectory labels short": (lambda: plot_trajectories(PATHS, [1, 2], TIMES), "labels", "got 2 for 3 images"),
    "times short": (lambda: plot_trajectories(PATHS, [1, 2, 3], TIMES[:4]), "times", "4 times for 5 rows"),
    "paths not projected": (lambda: plot_trajectories(torch.rand(5, 3, 20), [1, 2, 3], TIMES), "paths",
                            "(time, image, 2)", "PCA"),
}


@pytest.mark.parametrize("call, fragments", [(c, f) for c, *f in PLOTS_REFUSED.values()], ids=list(PLOTS_REFUSED))
def test_plots_refuse_bad_input(call, fragments):
    _refused(call, *fragments)


@pytest.mark.parametrize("images", [IMAGES, IMAGES[:, 0], IMAGES.reshape(4, 784), IMAGES.numpy()],
                         ids=["(N, 1, 28, 28)", "(N, 28, 28)", "(N, 784)", "numpy"])
def test_show_digits_accepts_each_usual_image_layout(images):
    fig = show_digits(images, torch.tensor([1, 2, 3, 4]), np.array([1, 2, 0, 4]), ncols=np.int64(2))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["true 1 / pred 1", "true 2 / pred 2", "true 3 / pred 0", "true 4 / pred 4"]


def test_show_digits_shows_one_image_and_an_empty_grid():
    assert [ax.get_title() for ax in show_digits(IMAGES[0, 0], [7]).axes if ax.get_title()] == ["label 7"]
    assert not [ax for ax in show_digits(IMAGES[:0], []).axes if ax.get_title()]


@pytest.mark.parametrize("value, text", [(9.2e-7, "~1e-06"), (torch.tensor(2.9e-6), "~1e-06"), (np.float32(0.8),
                                         "~1e+00"), (0, "0"), (float("nan"), "failed"), (float("inf"), "failed")])
def test_magnitude_accepts_numbers_of_every_kind(value, text):
    assert magnitude(value) == text


@pytest.mark.parametrize("index, dot_at", [(0, "t = 0.00"), (-1, "t = 1.00"), (np.int64(2), "t = 0.50"),
                                           (torch.tensor(-5), "t = 0.00")])
def test_plot_trajectories_accepts_every_index_in_range(index, dot_at):
    fig = plot_trajectories(PATHS, torch.tensor([1, 2, 3]), TIMES, time_index=index)
    assert dot_at in fig.axes[0].get_title()


# ---------------------------------------------------------------------------------------------------------------
# analysis
# ---------------------------------------------------------------------------------------------------------------
ANALYSIS_REFUSED = {
    "PCA of points with NaN": (lambda: PCA(torch.tensor([[1.0, float("nan")], [2.0, 3.0], [4.0, 5.0]])), "NaN",
                               "1 of 3 points", "torch.isfinite"),
    "PCA of points with inf": (lambda: PCA(torch.tensor([[1.0, float("inf")], [2.0, 3.0]])), "infinite"),
    "PCA of identical points": (lambda: PCA(torch.full((5, 3), 0.1)), "all identical", "points that differ"),
    "PCA applied to other features": (lambda: PCA(torch.rand(5, 3))(torch.rand(4, 2)), "3 features",
                                      "(..., 3)"),
    "binomial bool successes": (lambda: binomial_interval(True, 10), "successes must be an integer, not a bool",
                                "correct answers"),
    "binomial bool trials": (lambda: binomial_interval(5, True), "trials must be an integer, not a bool"),
    "binomial fractional trials": (lambda: binomial_interval(5, 10.5), "trials must be an integer"),
    "binomial float trials": (lambda: binomial_interval(5, 10.0), "trials must be an integer, like 10"),
    "binomial string confidence": (lambda: binomial_interval(5, 10, "0.95"), "confidence", "string '0.95'",
                                   "without quotes"),
    "binomial confidence 95": (lambda: binomial_interval(5, 10, 95), "confidence must lie strictly between 0 and 1"),
    "binomial confidence 0": (lambda: binomial_interval(5, 10, 0), "confidence must lie strictly between 0 and 1"),
    "binomial more successes than trials": (lambda: binomial_interval(np.int64(11), 10),
                                            "successes must be an integer between 0 and trials=10", "got 11"),
}


@pytest.mark.parametrize("call, fragments", [(c, f) for c, *f in ANALYSIS_REFUSED.values()],
                         ids=list(ANALYSIS_REFUSED))
def test_analysis_refuses_bad_input(call, fragments):
    _refused(call, *fragments)


@pytest.mark.parametrize("successes, trials", [
    (np.int64(130), np.int64(150)), (torch.tensor(130), torch.tensor(150)), (np.int32(130), 150),
    (torch.tensor(130, dtype=torch.int32), 150)])
def test_binomial_interval_takes_numpy_and_tensor_integers_as_integers(successes, trials):
    assert binomial_interval(successes, trials) == binomial_interval(130, 150)
    assert binomial_interval(successes, trials, np.float64(0.99)) == binomial_interval(130, 150, 0.99)


def test_pca_of_points_spread_along_one_line_keeps_one_direction():
    points = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    pca = PCA(points)
    assert pca.explained[0] == pytest.approx(1.0) and pca.explained[1] == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------
DATA_REFUSED = {
    "class 10": (lambda: onehot(torch.tensor([3, 10])), "labels", "from 3 to 10", "10 classes (0..9)"),
    "negative class": (lambda: onehot(torch.tensor([-1, 2])), "from -1 to 2"),
    "float labels": (lambda: onehot(torch.tensor([1.0, 2.0])), "integer class indices", ".long()"),
    "bool labels": (lambda: onehot(torch.tensor([True, False])), "integer class indices"),
    "num_classes=0": (lambda: onehot(torch.tensor([0]), 0), "num_classes must be a positive integer"),
    "labels a string": (lambda: onehot("3"), "labels must be a tensor of class indices"),
}


@pytest.mark.parametrize("call, fragments", [(c, f) for c, *f in DATA_REFUSED.values()], ids=list(DATA_REFUSED))
def test_data_helpers_refuse_bad_input(call, fragments):
    _refused(call, *fragments)


@pytest.mark.parametrize("labels", [torch.tensor([3, 9, 0]), torch.tensor([3, 9, 0], dtype=torch.uint8),
                                    np.array([3, 9, 0]), [3, 9, 0]], ids=["int64", "uint8", "numpy", "list"])
def test_onehot_takes_integer_labels_of_any_kind(labels):
    assert torch.equal(onehot(labels), torch.eye(10)[[3, 9, 0]])


# ---------------------------------------------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------------------------------------------
LAYERS_REFUSED = {
    "NeuralODE(None)": lambda: NeuralODE(None),
    "NeuralODECompact(None)": lambda: NeuralODECompact(None),
    "StatefulNeuralODE(None)": lambda: StatefulNeuralODE(None),
    "StatefulModel(None)": lambda: StatefulModel(None),
    "NeuralODE(a function)": lambda: NeuralODE(torch.tanh),
    "NeuralODE(a class)": lambda: NeuralODE(nn.Linear),
}


@pytest.mark.parametrize("call", LAYERS_REFUSED.values(), ids=list(LAYERS_REFUSED))
def test_layers_refuse_a_network_that_is_not_a_module(call):
    _refused(call, "model must be", "torch.nn.Module", "nn.Sequential(")


# ---------------------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_loaders():
    generator = torch.Generator().manual_seed(0)
    x, y = torch.rand(24, 1, 28, 28, generator=generator), torch.arange(24) % 10
    return (DataLoader(TensorDataset(x[:16], y[:16]), batch_size=8),
            DataLoader(TensorDataset(x[16:], y[16:]), batch_size=8))


def _two_arguments(line, extra):  # noqa: ANN001
    pass


TRAIN_REFUSED = {
    "log without arguments": ({"log": lambda: None}, "log must be a function taking one line of text",
                              "cannot be called with 1 argument"),
    "log with two arguments": ({"log": _two_arguments}, "log must be", "_two_arguments(line, extra)"),
    "log a string": ({"log": "print"}, "log must be a function"),
    "model=": ({"model": nn.Linear(784, 10)}, "train does not take model", "history.model", "layer=", "solver="),
    "optimizer=": ({"optimizer": "sgd"}, "train does not take optimizer", "Adam", "lr="),
    "optimiser=": ({"optimiser": "sgd"}, "train does not take optimiser", "lr="),
    "an unknown keyword": ({"dropout": 0.1}, "train does not take dropout", "loaders", "options"),
}


@pytest.mark.parametrize("kwargs, fragments", [(k, f) for k, *f in TRAIN_REFUSED.values()], ids=list(TRAIN_REFUSED))
def test_train_refuses_bad_arguments_before_training(kwargs, fragments, tiny_loaders, capsys):
    _refused(lambda: train(loaders=tiny_loaders, progress=False, **kwargs), *fragments)
    with pytest.raises(InputError) as caught:
        train(loaders=tiny_loaders, progress=False, **kwargs)
    assert "create_model" not in str(caught.value).split(":")[0]  # train's own words, not another function's
    assert capsys.readouterr().out == ""  # refused before the first epoch


@pytest.mark.parametrize("log", [print, lambda line: None, lambda *lines: None, lambda line, end="\n": None],
                         ids=["print", "one argument", "*args", "a default after one"])
def test_train_accepts_every_log_that_takes_one_line(log, tiny_loaders):
    history = train(loaders=tiny_loaders, epochs=1, progress=False, log=log, sensealg="autograd", rtol=1e-2,
                    atol=1e-2)
    assert history.epochs_done == 1
