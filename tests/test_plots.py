"""nodeutils.plots: digit grids, training curves, trajectories and confusion matrices, drawn headlessly."""

import re

import numpy as np
import pytest
import torch
from helpers import assert_refused

from nodeutils.errors import InputError
from nodeutils.plots import (
    animate_trajectories,
    plot_confusion,
    plot_tolerance,
    plot_training,
    plot_trajectories,
    show_digits,
)
from nodeutils.statistics import confusion_matrix

pytestmark = pytest.mark.usefixtures("close_figures")

IMAGES = torch.rand(4, 1, 28, 28)
PATHS, TIMES = torch.rand(5, 3, 2), [0.0, 0.25, 0.5, 0.75, 1.0]


def _labelled(fig):
    return all(ax.get_title() and ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes if ax.axison)


def test_digit_grid_marks_mistakes_in_red():
    images = torch.zeros(3, 1, 28, 28)
    fig = show_digits(images, [1, 2, 3], [1, 5, 3], title="grid")
    titles = [ax.get_title() for ax in fig.axes[:3]]
    assert titles == ["true 1 / pred 1", "true 2 / pred 5", "true 3 / pred 3"]
    assert fig.axes[1].title.get_color() != fig.axes[0].title.get_color()
    assert fig._suptitle.get_text() == "grid"


@pytest.mark.parametrize("images", [IMAGES, IMAGES[:, 0], IMAGES.reshape(4, 784), IMAGES.numpy()],
                         ids=["(N, 1, 28, 28)", "(N, 28, 28)", "(N, 784)", "numpy"])
def test_show_digits_accepts_each_usual_image_layout(images):
    fig = show_digits(images, torch.tensor([1, 2, 3, 4]), np.array([1, 2, 0, 4]), ncols=np.int64(2))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["true 1 / pred 1", "true 2 / pred 2", "true 3 / pred 0", "true 4 / pred 4"]


def test_show_digits_shows_one_image_and_an_empty_grid():
    assert [ax.get_title() for ax in show_digits(IMAGES[0, 0], [7]).axes if ax.get_title()] == ["label 7"]
    assert not [ax for ax in show_digits(IMAGES[:0], []).axes if ax.get_title()]


def test_training_curves_show_the_history(trained):
    history = trained[0]
    fig = plot_training(history)
    loss_ax, acc_ax, nfe_ax = fig.axes
    assert list(loss_ax.lines[0].get_ydata()) == history.loss
    assert list(acc_ax.lines[1].get_ydata()) == history.test_accuracy
    assert list(nfe_ax.lines[0].get_ydata()) == history.nfe_forward
    assert _labelled(fig)


@pytest.mark.parametrize("index, dot_at", [(0, "t = 0.00"), (-1, "t = 1.00"), (np.int64(2), "t = 0.50"),
                                           (torch.tensor(-5), "t = 0.00")])
def test_plot_trajectories_accepts_every_index_in_range(index, dot_at):
    fig = plot_trajectories(PATHS, torch.tensor([1, 2, 3]), TIMES, time_index=index)
    assert dot_at in fig.axes[0].get_title()


def test_confusion_plot_names_its_axes():
    fig = plot_confusion(confusion_matrix(torch.tensor([0, 0, 1, 2, 2]), torch.tensor([0, 1, 1, 2, 0])))
    assert fig.axes[0].get_xlabel() == "predicted digit" and fig.axes[0].get_ylabel() == "true digit"


def test_animate_trajectories_draws_one_frame_per_time_and_needs_no_network():
    html = animate_trajectories(PATHS, [1, 2, 3], TIMES, dpi=20, frame_format="png")
    frames = re.findall(r'frames\[(\d+)\] = "data:image/png;base64,', html)
    assert [int(i) for i in frames] == list(range(len(TIMES)))
    assert "https://" not in html and 'class="fa' not in html


BAD_INPUTS = [
    pytest.param(lambda: animate_trajectories(PATHS, [1, 2, 3], TIMES, frame_format="gif"), InputError,
                 ("unknown frame_format 'gif'", "jpeg, png"), id="animation as gif"),
    pytest.param(lambda: animate_trajectories(PATHS, [1, 2], TIMES), InputError,
                 ("labels must hold one class number per image",), id="animation with a label missing"),
    pytest.param(lambda: animate_trajectories(PATHS, [1, 2, 3], TIMES, dpi=5), InputError, ("dpi",),
                 id="animation at 5 dpi"),
    pytest.param(lambda: plot_trajectories(torch.zeros(3, 2, 2), [10, 1], [0.0, 0.5, 1.0]), InputError,
                 ("labels must hold digits 0 to 9", "got 10"), id="label 10"),
    pytest.param(lambda: plot_trajectories(torch.zeros(3, 2, 2), [-1, 1], [0.0, 0.5, 1.0]), InputError,
                 ("labels must hold digits 0 to 9", "got -1"), id="label -1"),
    pytest.param(lambda: plot_trajectories(torch.zeros(3, 2, 2), [0, 1], [0.0, 0.5, 1.0], explained=[0.5]),
                 InputError, ("explained must be the two components'",), id="one explained fraction"),
    pytest.param(lambda: plot_trajectories(torch.zeros(3, 2, 2), [0, 1], 3), InputError,
                 ("times must be one time per row of paths",), id="times as a number"),
    pytest.param(lambda: plot_confusion(torch.zeros(10)), InputError, ("square table of counts",),
                 id="confusion of a vector"),
    pytest.param(lambda: plot_tolerance([1e-3]), InputError, ("non-empty list of ToleranceResult",),
                 id="tolerance plot of numbers"),
    pytest.param(lambda: show_digits(IMAGES, [1, 2]), InputError, ("labels", "got 2 for 4 images", "images[:2]"),
                 id="fewer labels than images"),
    pytest.param(lambda: show_digits(IMAGES, [1, 2, 3, 4, 5]), InputError, ("labels", "labels[:4]"),
                 id="more labels than images"),
    pytest.param(lambda: show_digits(IMAGES, [1, 2, 3, 4], [1]), InputError, ("predictions", "got 1 for 4 images"),
                 id="fewer predictions than images"),
    pytest.param(lambda: show_digits(IMAGES, [1, 2, 3, 4], ncols=0), InputError,
                 ("ncols must be a positive integer", "digits per row"), id="ncols=0"),
    pytest.param(lambda: show_digits(IMAGES, [1, 2, 3, 4], ncols=2.5), InputError, ("ncols must be an integer",),
                 id="ncols a float"),
    pytest.param(lambda: show_digits(torch.rand(4, 3, 28, 28), [1, 2, 3, 4]), InputError,
                 ("images must be shaped", "(4, 3, 28, 28)", "images[:, :1]"), id="colour images"),
    pytest.param(lambda: show_digits(torch.rand(4, 32, 32), [1, 2, 3, 4]), InputError,
                 ("images must be shaped", "(4, 32, 32)", "load_mnist"), id="images of another size"),
    pytest.param(lambda: show_digits("digits.png", [1]), InputError, ("images must be a tensor",),
                 id="images not an array"),
    pytest.param(lambda: show_digits(IMAGES[:1], "7"), InputError, ("labels must be one class number per image",),
                 id="labels a string"),
    pytest.param(lambda: show_digits(IMAGES[:2], [1.5, 2]), InputError, ("labels must hold integer class numbers",),
                 id="fractional labels"),
    pytest.param(lambda: plot_trajectories(PATHS, [1, 2, 3], TIMES, time_index=5), InputError,
                 ("time_index=5", "out of range for 5 times", "from 0 to 4"), id="time_index past the end"),
    pytest.param(lambda: plot_trajectories(PATHS, [1, 2, 3], TIMES, time_index=-6), InputError,
                 ("time_index=-6", "-1 is the last"), id="time_index before the start"),
    pytest.param(lambda: plot_trajectories(PATHS, [1, 2, 3], TIMES, time_index=1.5), InputError,
                 ("time_index", "integer"), id="time_index a float"),
    pytest.param(lambda: plot_trajectories(PATHS, [1, 2], TIMES), InputError, ("labels", "got 2 for 3 images"),
                 id="trajectory labels short"),
    pytest.param(lambda: plot_trajectories(PATHS, [1, 2, 3], TIMES[:4]), InputError, ("times", "4 times for 5 rows"),
                 id="times short"),
    pytest.param(lambda: plot_trajectories(torch.rand(5, 3, 20), [1, 2, 3], TIMES), InputError,
                 ("paths", "(time, image, 2)", "PCA"), id="paths not projected"),
]


@pytest.mark.parametrize("call, error, fragments", BAD_INPUTS)
def test_bad_input_is_refused_with_the_argument_and_the_fix(call, error, fragments):
    assert_refused(call, error, fragments)


def test_confusion_plot_ticks_follow_the_matrix_size():
    fig = plot_confusion(torch.eye(3, dtype=torch.long))
    assert list(fig.axes[0].get_xticks()) == [0, 1, 2] and list(fig.axes[0].get_yticks()) == [0, 1, 2]
