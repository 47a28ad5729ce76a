"""Static matplotlib views used by the notebooks (each returns its Figure, so tests can inspect it)."""

from __future__ import annotations

import numbers
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .checks import check_choice, check_index, check_int, describe
from .errors import InputError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .probing import ToleranceResult
    from .training import TrainingHistory

__all__ = [
    "show_digits",
    "plot_training",
    "plot_trajectories",
    "animate_trajectories",
    "plot_confusion",
    "plot_tolerance",
    "CLASS_COLOURS",
]

#: One colour per digit (matplotlib's tab10).
CLASS_COLOURS = plt.get_cmap("tab10").colors

MISTAKE_COLOUR = "#c0392b"


def show_digits(
    images: torch.Tensor,
    labels: torch.Tensor | Sequence[int],
    predictions: torch.Tensor | Sequence[int] | None = None,
    *,
    ncols: int = 8,
    title: str = "MNIST digits",
) -> Figure:
    """A grid of digits, each titled with its label (and prediction; mistakes drawn in red).

    Args:
        images: MNIST images shaped (N, 1, 28, 28), (N, 28, 28) or (N, 784), values in [0, 1].
        labels: one true class per image.
        predictions: one predicted class per image, or ``None`` to show the labels only.
        ncols: digits per row.
        title: the figure's title.

    Returns:
        The matplotlib Figure.

    Raises:
        InputError: the images are not 28 x 28 grey-scale images, the labels (or predictions) are not one per image,
            or ``ncols`` is below 1.
    """
    ncols = check_int("ncols", ncols, minimum=1, hint="the number of digits per row, e.g. 8")
    images = _digit_images(images)
    n = len(images)
    labels = _one_class_per_image("labels", labels, n)
    preds = None if predictions is None else _one_class_per_image("predictions", predictions, n)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 * ncols, 1.35 * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(images[i], cmap="gray_r", vmin=0.0, vmax=1.0)
        if preds is None:
            ax.set_title(f"label {labels[i]}", fontsize=9)
        else:
            wrong = preds[i] != labels[i]
            ax.set_title(f"true {labels[i]} / pred {preds[i]}", fontsize=8,
                         color=MISTAKE_COLOUR if wrong else "black", fontweight="bold" if wrong else "normal")
            if wrong:
                ax.add_patch(plt.Rectangle((-0.5, -0.5), 28, 28, fill=False, edgecolor=MISTAKE_COLOUR, linewidth=3))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _digit_images(images: object) -> np.ndarray:
    """Images shaped (N, 1, 28, 28), (N, 28, 28) or (N, 784) (or one (28, 28) image) as an (N, 28, 28) array."""
    try:
        array = torch.as_tensor(images).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise InputError(f"images must be a tensor of 28 x 28 images; got {describe(images)}") from None
    shape = tuple(array.shape)
    if shape == (28, 28):
        shape = (1, 28, 28)
    if not (len(shape) == 4 and shape[1:] == (1, 28, 28) or len(shape) == 3 and shape[1:] == (28, 28)
            or len(shape) == 2 and shape[1] == 784):
        fix = (": these are colour (RGB) images; show one channel, e.g. images[:, :1], or their mean, "
               "images.mean(dim=1, keepdim=True)" if len(shape) == 4 and shape[1] == 3 and shape[2:] == (28, 28)
               else ": pass MNIST images as load_mnist gives them, e.g. images from next(iter(test_loader))")
        raise InputError(f"images must be shaped (N, 1, 28, 28), (N, 28, 28) or (N, 784); got {tuple(array.shape)}"
                         f"{fix}")
    return array.reshape(-1, 28, 28).float().numpy()


def _one_class_per_image(name: str, values: object, n_images: int) -> list[int]:
    """``values`` (a tensor or sequence of class numbers) as a list of ``n_images`` ints."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().reshape(-1).tolist() if values.ndim <= 1 else values
    if isinstance(values, torch.Tensor) or not isinstance(values, (Sequence, np.ndarray)) or isinstance(values, str):
        raise InputError(f"{name} must be one class number per image (a 1-D tensor or a list); got {describe(values)}")
    if len(values) != n_images:
        fix = (f"pass one for each image, or show only the first {len(values)} images (images[:{len(values)}])"
               if len(values) < n_images else f"pass as many as there are images, e.g. {name}[:{n_images}]")
        raise InputError(f"{name} must hold one class number per image: got {len(values)} for {n_images} images; "
                         f"{fix}")
    out = []
    for value in values:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, float, np.floating)) \
                or not float(value).is_integer():
            raise InputError(f"{name} must hold integer class numbers; got {describe(value)}")
        if not 0 <= int(value) < len(CLASS_COLOURS):
            raise InputError(f"{name} must hold digits 0 to {len(CLASS_COLOURS) - 1}; got {int(value)}")
        out.append(int(value))
    return out


def plot_training(history: TrainingHistory) -> Figure:
    """Loss, training/test accuracy and forward function evaluations per epoch (the finished ones).

    Args:
        history: the :class:`~nodeutils.training.TrainingHistory` that :func:`~nodeutils.training.train` returns.

    Returns:
        The matplotlib Figure, three panels side by side.

    Raises:
        InputError: not a TrainingHistory, or one without a finished epoch.
    """
    from .training import TrainingHistory

    if not isinstance(history, TrainingHistory):
        raise InputError(f"plot_training needs the TrainingHistory that train() returns; got {describe(history)}")
    done = history.require_epochs("plot_training")
    history = TrainingHistory(*(x[:done] for x in (history.epoch_time, history.train_accuracy, history.test_accuracy,
                                                   history.loss, history.nfe_forward, history.nfe_backward)))
    epochs = np.arange(1, len(history.loss) + 1)
    fig, (ax_loss, ax_acc, ax_nfe) = plt.subplots(1, 3, figsize=(13, 3.6))
    ax_loss.plot(epochs, history.loss, marker="o")
    ax_loss.set(title="Training loss", xlabel="epoch", ylabel="mean cross-entropy (nats)")
    ax_acc.plot(epochs, history.train_accuracy, marker="o", label="training set")
    ax_acc.plot(epochs, history.test_accuracy, marker="s", label="test set")
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
    ax_acc.legend()
    ax_nfe.plot(epochs, history.nfe_forward, marker="o", label="forward")
    if any(history.nfe_backward):
        ax_nfe.plot(epochs, history.nfe_backward, marker="s", label="backward")
    ax_nfe.set(title="ODE function evaluations per batch", xlabel="epoch", ylabel="evaluations of f",
               ylim=(0, 1.25 * max(max(history.nfe_forward), max(history.nfe_backward, default=0), 1)))
    ax_nfe.legend()
    for ax in (ax_loss, ax_acc, ax_nfe):
        ax.set_xticks(epochs)
    fig.tight_layout()
    return fig


def _trajectory_inputs(paths: object, labels: object, times: object, explained: object
                       ) -> tuple[np.ndarray, list[int], Sequence[float]]:
    """``paths`` as a (time, image, 2) array, one class per image and one time per row, or an InputError."""
    try:
        paths = torch.as_tensor(paths).detach().cpu().numpy()
    except (TypeError, ValueError, RuntimeError):
        raise InputError(f"paths must be a tensor shaped (time, image, 2); got {describe(paths)}") from None
    if paths.ndim != 3 or paths.shape[2] != 2:
        raise InputError(f"paths must be shaped (time, image, 2); got {tuple(paths.shape)}: project the states "
                         "to 2-D first, e.g. PCA(states[-1])(states)")
    labels = _one_class_per_image("labels", labels, paths.shape[1])
    if isinstance(times, torch.Tensor):
        times = times.detach().cpu().reshape(-1).tolist()
    if isinstance(times, (str, bytes)) or not isinstance(times, (Sequence, np.ndarray)):
        raise InputError(f"times must be one time per row of paths (a list or 1-D tensor); got {describe(times)}")
    if explained is not None and (isinstance(explained, (str, bytes))
                                  or not isinstance(explained, (Sequence, np.ndarray)) or len(explained) != 2):
        raise InputError(f"explained must be the two components' fractions of variance, e.g. pca.explained; got "
                         f"{describe(explained)}")
    if len(times) != len(paths):
        raise InputError(f"times must hold one time per row of paths: got {len(times)} times for {len(paths)} rows")
    return paths, labels, times


def plot_trajectories(paths: torch.Tensor, labels: Sequence[int], times: Sequence[float], time_index: int = -1,
                      *, ax: Axes | None = None, title: str = "Hidden-state trajectories (PCA of the 20-D state)",
                      explained: Sequence[float] | None = None) -> Figure:
    """Paths of projected states (time, image, 2) coloured by class, with a dot at ``times[time_index]``.

    Args:
        paths: projected states shaped (time, image, 2), e.g. ``PCA(...)`` applied to ``Trajectories.states``.
        labels: one class per image.
        times: one time per row of ``paths``.
        time_index: which time gets the dots (negative counts from the end; -1 is the last).
        ax: matplotlib Axes to draw into; a new figure when ``None``.
        title: the plot's title (the time is added below it).
        explained: fractions of variance of the two components, shown in the axis labels.

    Returns:
        The Figure drawn into.

    Raises:
        InputError: mis-shaped ``paths``, a label or time count that does not match, or ``time_index`` out of range.
    """
    paths, labels, times = _trajectory_inputs(paths, labels, times, explained)
    time_index = check_index("time_index", time_index, len(times), "times")
    created = ax is None
    fig = plt.figure(figsize=(6.4, 5.2)) if created else ax.figure
    ax = fig.add_subplot() if created else ax
    colours = [CLASS_COLOURS[c] for c in labels]
    for i, colour in enumerate(colours):
        ax.plot(paths[:, i, 0], paths[:, i, 1], color=colour, alpha=0.35, linewidth=0.9)
        ax.plot(paths[0, i, 0], paths[0, i, 1], marker="x", color=colour, markersize=4, alpha=0.6)
    ax.scatter(paths[time_index, :, 0], paths[time_index, :, 1], c=colours, s=28, edgecolors="black",
               linewidths=0.4, zorder=3)
    for digit in sorted(set(labels)):
        ax.scatter([], [], color=CLASS_COLOURS[digit], label=str(digit))
    pc = [f" ({100 * e:.0f}% of variance)" for e in explained] if explained else ["", ""]
    ax.set(title=f"{title}\nt = {float(times[time_index]):.2f}   (x marks where each path starts)",
           xlabel=f"principal component 1{pc[0]}", ylabel=f"principal component 2{pc[1]}")
    ax.legend(title="digit", fontsize=7, ncols=2, loc="best")
    if created:
        fig.tight_layout()
    return fig


def animate_trajectories(paths: torch.Tensor, labels: Sequence[int], times: Sequence[float], *,
                         explained: Sequence[float] | None = None, dpi: int = 80, interval_ms: int = 250,
                         frame_format: str = "jpeg") -> str:
    """:func:`plot_trajectories` at every time, as frames with a scrubber and play buttons (HTML and JavaScript).

    The frames are drawn by matplotlib's ``Animation.to_jshtml``, so a page without a kernel can move through
    time as a slider does. JPEG frames at 80 dpi keep 21 frames near 1 MB; PNG frames are about three times larger.

    Args:
        paths: projected states shaped (time, image, 2), as for :func:`plot_trajectories`.
        labels: one class per image.
        times: one time per row of ``paths``; one frame each.
        explained: fractions of variance of the two components, shown in the axis labels.
        dpi: the frames' resolution, at least 20.
        interval_ms: milliseconds per frame when playing, at least 1.
        frame_format: ``"jpeg"`` or ``"png"``.

    Returns:
        Self-contained HTML (no network needed), e.g. for ``IPython.display.HTML``.

    Raises:
        InputError: inputs :func:`plot_trajectories` refuses, or a bad ``frame_format``, ``dpi`` or ``interval_ms``.
    """
    from matplotlib import rc_context
    from matplotlib.animation import FuncAnimation

    paths, labels, times = _trajectory_inputs(paths, labels, times, explained)
    frame_format = check_choice("frame_format", frame_format, ("jpeg", "png"))
    dpi = check_int("dpi", dpi, minimum=20)
    interval_ms = check_int("interval_ms", interval_ms, minimum=1)
    with plt.ioff():
        fig = plt.figure(figsize=(6.4, 5.2), dpi=dpi)

        def draw(index: int) -> list:
            fig.clear()
            plot_trajectories(paths, labels, times, index, ax=fig.add_subplot(), explained=explained)
            fig.tight_layout()
            return []

        animation = FuncAnimation(fig, draw, frames=len(times), interval=interval_ms, blit=False)
        try:
            with rc_context({"animation.frame_format": frame_format}):
                html = animation.to_jshtml(default_mode="once")
        finally:
            plt.close(fig)
    return _offline_buttons(html)


# matplotlib's player draws its buttons with Font Awesome icons from a CDN; text symbols need no network.
_BUTTON_SYMBOLS = {
    "fa fa-minus": "&minus;", "fa fa-fast-backward": "|&#x25C0;&#x25C0;", "fa fa-step-backward": "|&#x25C0;",
    "fa fa-play fa-flip-horizontal": "&#x25C0;", "fa fa-pause": "&#x2016;", "fa fa-play": "&#x25B6;",
    "fa fa-step-forward": "&#x25B6;|", "fa fa-fast-forward": "&#x25B6;&#x25B6;|", "fa fa-plus": "+",
}


def _offline_buttons(html: str) -> str:
    """``to_jshtml`` output without its remote stylesheet, each icon replaced by a text symbol."""
    html = re.sub(r'<link rel="stylesheet"\s+href="https://[^"]*font-awesome[^"]*">', "", html)
    for icon, symbol in _BUTTON_SYMBOLS.items():
        html = html.replace(f'<i class="{icon}"></i>', symbol)
    return html


def plot_confusion(matrix: torch.Tensor, *, title: str = "Confusion matrix (test set)") -> Figure:
    """Counts of true class (rows) against predicted class (columns), with the count in each cell.

    Args:
        matrix: counts shaped (10, 10), e.g. ``confusion_matrix(truth, predicted)``.
        title: the figure's title.

    Returns:
        The matplotlib Figure.

    Raises:
        InputError: ``matrix`` is not a square 2-D tensor or array.
    """
    if not isinstance(matrix, (torch.Tensor, np.ndarray)) or matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise InputError(f"matrix must be a square table of counts, e.g. confusion_matrix(truth, predicted); got "
                         f"{describe(matrix)}")
    matrix = torch.as_tensor(matrix).cpu().numpy()
    classes = matrix.shape[0]
    fig, ax = plt.subplots(figsize=(5.6, 5))
    image = ax.imshow(matrix, cmap="Blues")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set(title=title, xlabel="predicted digit", ylabel="true digit", xticks=range(classes), yticks=range(classes))
    fig.colorbar(image, ax=ax, label="number of images")
    fig.tight_layout()
    return fig


def plot_tolerance(results: Sequence[ToleranceResult], current: float | None = None) -> Figure:
    """Forward NFE, accuracy and time per batch against the solver tolerance.

    Args:
        results: :class:`~nodeutils.probing.ToleranceResult` objects, in any order.
        current: the tolerance to circle, if it is among the results.

    Returns:
        The matplotlib Figure, three panels side by side.

    Raises:
        InputError: ``results`` is not a non-empty list of ToleranceResult.
    """
    from .probing import ToleranceResult

    if isinstance(results, (str, bytes)) or not isinstance(results, Sequence) or not results \
            or not all(isinstance(r, ToleranceResult) for r in results):
        raise InputError(f"results must be a non-empty list of ToleranceResult, e.g. [evaluate_at_tolerance(model, "
                         f"loader, tol) for tol in tolerance_grid()]; got {describe(results)}")
    results = sorted(results, key=lambda r: -r.tolerance)
    tol = [r.tolerance for r in results]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = [("nfe_per_batch", "Function evaluations per batch", "evaluations of f"),
              ("accuracy", "Test accuracy", "accuracy (%)"),
              ("seconds_per_batch", "Time per batch", "time (ms)")]
    for ax, (field, title, ylabel) in zip(axes, panels):
        values = [getattr(r, field) * (1e3 if field == "seconds_per_batch" else 1) for r in results]
        ax.plot(tol, values, marker="o")
        if current is not None and current in tol:
            k = tol.index(current)
            ax.plot([tol[k]], [values[k]], marker="o", markersize=12, fillstyle="none", color="crimson")
        ax.set(xscale="log", title=title, xlabel="rtol = atol", ylabel=ylabel)
        ax.invert_xaxis()
    fig.suptitle("The trained model evaluated at other solver tolerances")
    fig.tight_layout()
    return fig


