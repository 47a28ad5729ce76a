"""Plots and widget explorers, driven headlessly: set a control, check the data behind the figure."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from nodeutils import widgets  # noqa: E402
from nodeutils.analysis import (  # noqa: E402
    PCA,
    confusion_matrix,
    evaluate_at_tolerance,
    hidden_trajectories,
    predict,
)
from nodeutils.errors import InputError  # noqa: E402
from nodeutils.plots import plot_confusion, plot_training, show_digits  # noqa: E402
from nodeutils.training import train  # noqa: E402


@pytest.fixture(scope="module")
def trained(small_loaders):
    history = train(epochs=2, loaders=small_loaders, progress=False, log=None)
    images, truth, predicted = predict(history.model, small_loaders[1])
    return history, images, truth, predicted, hidden_trajectories(history.model, images, truth, n_times=6)


def _labelled(fig):
    return all(ax.get_title() and ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes if ax.axison)


def test_digit_grid_marks_mistakes_in_red():
    images = torch.zeros(3, 1, 28, 28)
    fig = show_digits(images, [1, 2, 3], [1, 5, 3], title="grid")
    titles = [ax.get_title() for ax in fig.axes[:3]]
    assert titles == ["true 1 / pred 1", "true 2 / pred 5", "true 3 / pred 3"]
    assert fig.axes[1].title.get_color() != fig.axes[0].title.get_color()
    assert fig._suptitle.get_text() == "grid"


def test_training_curves_show_the_history(trained):
    history = trained[0]
    fig = plot_training(history)
    loss_ax, acc_ax, nfe_ax = fig.axes
    assert list(loss_ax.lines[0].get_ydata()) == history.loss
    assert list(acc_ax.lines[1].get_ydata()) == history.test_accuracy
    assert list(nfe_ax.lines[0].get_ydata()) == history.nfe_forward
    assert _labelled(fig)


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


def test_pca_projects_onto_orthonormal_directions():
    points = torch.randn(50, 5, dtype=torch.float64) * torch.tensor([5.0, 1, 1, 1, 0.1], dtype=torch.float64)
    pca = PCA(points)
    assert torch.allclose(pca.components @ pca.components.T, torch.eye(2, dtype=torch.float64), atol=1e-12)
    assert pca.explained[0] > pca.explained[1] > 0 and pca(points).shape == (50, 2)


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
    import base64
    import re

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


def test_tighter_tolerance_needs_more_evaluations(trained, small_loaders):
    loose = evaluate_at_tolerance(trained[0].model, small_loaders[1], 1e-1)
    tight = evaluate_at_tolerance(trained[0].model, small_loaders[1], 1e-6)
    assert tight.nfe_per_batch > loose.nfe_per_batch
    assert trained[0].model.ode.settings.rtol == 1e-3  # restored afterwards


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


def test_confusion_matrix_counts_pairs():
    truth, predicted = torch.tensor([0, 0, 1, 2, 2]), torch.tensor([0, 1, 1, 2, 0])
    matrix = confusion_matrix(truth, predicted)
    assert matrix[0, 0] == 1 and matrix[0, 1] == 1 and matrix[2, 0] == 1 and matrix.sum() == 5
    fig = plot_confusion(matrix)
    assert fig.axes[0].get_xlabel() == "predicted digit" and fig.axes[0].get_ylabel() == "true digit"


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
