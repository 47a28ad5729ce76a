"""nodeutils.widgets: the explorers, driven headlessly: set a control, check the data behind the figure."""

import base64
import re

import pytest
import torch
from helpers import assert_refused

from nodeutils import widgets
from nodeutils.errors import InputError
from nodeutils.probing import Trajectories

pytestmark = pytest.mark.usefixtures("close_figures")


@pytest.fixture(scope="module")
def trajectories():
    """Random trajectories of 12 images at 4 times, every prediction one class off."""
    g = torch.Generator().manual_seed(3)
    labels = torch.arange(12) % 10
    return Trajectories(torch.linspace(0, 1, 4, dtype=torch.float64), torch.randn(4, 12, 20, generator=g), labels,
                        (labels + 1) % 10)


def test_trajectory_slider_moves_every_point(trained):
    explorer = widgets.TrajectoryExplorer(trained[4])
    assert explorer.figure is None and explorer.widget is not None and explorer.redraws == 1  # drawn on demand
    before = explorer.redraws
    explorer.slider.value = 2
    scatter = explorer.figure.axes[0].collections[0]
    assert explorer.redraws == before + 1
    assert torch.allclose(torch.as_tensor(scatter.get_offsets().data), explorer.paths[2])
    assert "t = 0.40" in explorer.figure.axes[0].get_title()


def test_trajectory_animation_has_one_distinct_frame_per_time_step(trained):
    explorer = widgets.TrajectoryExplorer(trained[4])
    html = explorer.animation_html(dpi=30)
    frames = re.findall(r'frames\[(\d+)\] = "data:image/jpeg;base64,([^"]+)"', html)
    assert [int(i) for i, _ in frames] == list(range(len(trained[4].times)))
    decoded = [base64.b64decode(data) for _, data in frames]
    assert all(d.startswith(b"\xff\xd8") for d in decoded)  # JPEG
    assert len(set(decoded)) == len(decoded)  # the points move: no two frames alike
    assert 'type="range"' in html  # the scrubber
    assert "https://" not in html and 'class="fa' not in html  # no icon font from a CDN: works offline
    with pytest.raises(InputError, match="frame_format"):
        explorer.animation_html(frame_format="gif")


def test_trajectory_explorer_shows_only_the_chosen_digits(trained):
    traj = trained[4]
    explorer = widgets.TrajectoryExplorer(traj)
    explorer.digits.value = (3, 8)
    shown = explorer.shown
    assert len(shown) == int(((traj.labels == 3) | (traj.labels == 8)).sum()) > 0
    offsets = torch.as_tensor(explorer.figure.axes[0].collections[0].get_offsets().data)
    assert torch.allclose(offsets, explorer.paths[-1, shown])
    assert len(explorer.figure.axes[0].get_legend().get_texts()) == 2  # one legend entry per chosen digit


def test_tolerance_explorer_caches_each_tolerance(trained, small_loaders):
    explorer = widgets.ToleranceExplorer(trained[0].model, small_loaders[1], tolerances=[1e-1, 1e-3, 1e-6])
    assert explorer.evaluations == 1 and list(explorer.cache) == [1e-3]
    explorer.slider.value = 1e-6
    assert explorer.evaluations == 2 and "evaluations of f per batch" in explorer.label.value
    explorer.slider.value = 1e-3  # a revisit is served from the cache
    assert explorer.evaluations == 2
    nfe_line = explorer.figure.axes[0].lines[0]
    assert sorted(nfe_line.get_xdata()) == [1e-6, 1e-3]
    assert explorer.cache[1e-6].nfe_per_batch > explorer.cache[1e-3].nfe_per_batch


def test_tolerance_explorer_reads_a_list_of_batches_as_it_reads_the_loader(trained, tiny_loaders):
    model = trained[0].model
    from_loader = widgets.ToleranceExplorer(model, tiny_loaders[1], tolerances=[1e-1, 1e-3])
    from_list = widgets.ToleranceExplorer(model, list(tiny_loaders[1]), tolerances=[1e-1, 1e-3])
    for explorer in (from_loader, from_list):
        explorer.slider.value = 1e-1  # a second reading of the batches
    for tolerance in (1e-1, 1e-3):
        a, b = from_loader.cache[tolerance], from_list.cache[tolerance]
        assert (a.accuracy, a.nfe_per_batch) == (b.accuracy, b.nfe_per_batch)


def test_mistake_explorer_selects_matching_images(trained):
    _, images, truth, predicted, traj = trained
    explorer = widgets.MistakeExplorer(images, traj)
    for t, p in {(int(a), int(b)) for a, b in zip(truth, predicted) if a != b}:
        explorer.true_class.value, explorer.predicted_class.value = t, p
        chosen = explorer.selected
        assert len(chosen) > 0 and (truth[chosen] == t).all() and (predicted[chosen] == p).all()
        shown = [ax for ax in explorer.figure.get_axes() if ax.images]
        assert len(shown) == len(chosen)
    explorer.true_class.value, explorer.predicted_class.value = 0, 0
    assert len(explorer.selected) == 0 or (truth[explorer.selected] == 0).all()


# ---------------------------------------------------------------------------------------------------------------
# show(): a widget where a front end draws it, a static figure elsewhere
# ---------------------------------------------------------------------------------------------------------------
def test_show_falls_back_to_a_static_figure(trained, monkeypatch):
    shown = []
    explorer = widgets.TrajectoryExplorer(trained[4])
    monkeypatch.setattr(widgets, "display", lambda obj: shown.append(obj))
    monkeypatch.setattr(widgets.plt, "show", lambda: shown.append("static figure"))
    monkeypatch.setenv("NODEUTILS_STATIC_VIEWS", "1")
    widgets.show(explorer)
    monkeypatch.setenv("NODEUTILS_STATIC_VIEWS", "0")
    widgets.show(explorer)
    assert shown[0] == "static figure" and shown[-1].__class__.__name__ == "VBox"


def test_show_without_a_widget_front_end_draws_the_static_figure(trajectories, monkeypatch):
    shown = []
    monkeypatch.delenv("NODEUTILS_STATIC_VIEWS", raising=False)
    monkeypatch.setattr(widgets, "display", lambda obj: shown.append("widget"))
    monkeypatch.setattr(widgets.plt, "show", lambda: shown.append("static figure"))
    widgets.show(widgets.TrajectoryExplorer(trajectories))  # pytest is a plain Python process: no front end
    assert shown == ["static figure"]


def test_show_environment_variable_zero_forces_the_widget(trajectories, monkeypatch):
    shown = []
    monkeypatch.setenv("NODEUTILS_STATIC_VIEWS", "0")
    monkeypatch.setattr(widgets, "display", lambda obj: shown.append(type(obj).__name__))
    widgets.show(widgets.TrajectoryExplorer(trajectories))
    assert shown[-1] == "VBox"  # (the figure before it is drawn into the widget's Output area)


def _show_with_static_views(fx, value):
    fx.monkeypatch.setenv("NODEUTILS_STATIC_VIEWS", value)
    return widgets.show(widgets.TrajectoryExplorer(fx.trajectories))


BAD_INPUTS = [
    pytest.param(lambda fx: widgets.MistakeExplorer(torch.rand(len(fx.trajectories.labels), 3, 28, 28),
                                                    fx.trajectories), InputError,
                 ("images must be MNIST images, 28 x 28 pixels each",), id="colour images"),
    pytest.param(lambda fx: widgets.MistakeExplorer(torch.rand(12, 1, 28, 28), fx.trajectories).static_figure(
        torch.tensor([50])), InputError, ("indices must be a 1-D tensor of image numbers from 0 to 11",),
        id="mistake figure of an image out of range"),
    pytest.param(lambda fx: _show_with_static_views(fx, "maybe"), InputError,
                 ("NODEUTILS_STATIC_VIEWS='maybe' is not understood", "1 (static figures)"),
                 id="show with an unknown environment value"),
    pytest.param(lambda: widgets.show(42), InputError, ("show() takes a TrajectoryExplorer", "plt.show()"),
                 id="show of something else"),
    pytest.param(lambda fx: widgets.TrajectoryExplorer(fx.trajectories, digits=[3, 11]), InputError,
                 ("each digit must be an integer from 0 to 9", "11"), id="digit out of range"),
    pytest.param(lambda fx: widgets.ToleranceExplorer(fx.model, fx.tiny_loaders[1], tolerances=[]), InputError,
                 ("tolerances must be a non-empty list",), id="empty tolerance list"),
    pytest.param(lambda fx: widgets.ToleranceExplorer(fx.model, iter(fx.tiny_loaders[1])), InputError,
                 ("can be read only once", "list(batches)"), id="tolerance explorer of a one-pass iterator"),
    pytest.param(lambda fx: widgets.ToleranceExplorer(fx.model, torch.rand(4, 1, 28, 28)), InputError,
                 ("loader must be a DataLoader", "got a"), id="tolerance explorer of images"),
    pytest.param(lambda fx: widgets.MistakeExplorer(torch.rand(12, 1, 28, 28), fx.trajectories, max_images=0),
                 InputError, ("max_images must be a positive integer",), id="zero images"),
]


@pytest.mark.parametrize("call, error, fragments", BAD_INPUTS)
def test_bad_input_is_refused_with_the_argument_and_the_fix(call, error, fragments, fx):
    assert_refused(call, error, fragments, fx)
