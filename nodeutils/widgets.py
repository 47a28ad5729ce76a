"""Interactive explorers (ipywidgets) with static matplotlib fallbacks.

Each explorer keeps its data and a figure; moving a control recomputes what the figure shows and
redraws it in an ``Output`` widget. Where there is no widget front end (a notebook executed by
plain Python, a script, the terminal IPython shell), :func:`show` displays the explorer's static
figure instead. A kernel run without a front end (nbval, nbconvert) looks like an interactive one:
set the environment variable ``NODEUTILS_STATIC_VIEWS=1`` there (``=0`` forces widgets).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from IPython.display import clear_output, display
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader

from .checks import check_int, check_loader, check_model, check_number
from .errors import InputError
from .plots import animate_trajectories, plot_tolerance, plot_trajectories
from .probing import ToleranceResult, Trajectories, evaluate_at_tolerance, tolerance_grid
from .statistics import PCA

__all__ = ["static_views", "widget_frontend", "show", "TrajectoryExplorer", "ToleranceExplorer", "MistakeExplorer"]


def widget_frontend() -> bool:
    """Whether a widget can be displayed here, i.e. this code runs in a Jupyter kernel.

    A kernel driven without a front end (nbconvert, nbval) cannot be told apart from an interactive
    one: set ``NODEUTILS_STATIC_VIEWS=1`` there.

    Returns:
        True inside a Jupyter kernel (JupyterLab, Notebook, VS Code, Colab); False in a plain Python process,
        a script and the terminal IPython shell, which can only print a widget's text form.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    shell = get_ipython()
    if shell is None:
        return False
    return "google.colab" in sys.modules or getattr(shell, "kernel", None) is not None


def static_views() -> bool:
    """Whether explorers should render as static figures.

    Returns:
        True when ``NODEUTILS_STATIC_VIEWS`` is ``1`` (or ``true``, ``yes``), False when it is ``0`` (or ``false``,
        ``no``); unset or empty, True exactly where :func:`widget_frontend` finds no Jupyter kernel.

    Raises:
        InputError: ``NODEUTILS_STATIC_VIEWS`` has another value.
    """
    value = os.environ.get("NODEUTILS_STATIC_VIEWS", "").strip().lower()
    if value in {"1", "true", "yes"}:
        return True
    if value in {"0", "false", "no"}:
        return False
    if value:
        raise InputError(f"NODEUTILS_STATIC_VIEWS={value!r} is not understood: set it to 1 (static figures), "
                         "0 (widgets) or leave it unset (widgets in Jupyter, figures elsewhere)")
    return not widget_frontend()


def show(explorer: TrajectoryExplorer | ToleranceExplorer | MistakeExplorer) -> None:
    """Display the explorer's widget in Jupyter, or its static figure where widgets cannot be shown.

    Args:
        explorer: a :class:`TrajectoryExplorer`, :class:`ToleranceExplorer` or :class:`MistakeExplorer`.

    Raises:
        InputError: ``explorer`` is none of these, or ``NODEUTILS_STATIC_VIEWS`` is not understood.
    """
    if not isinstance(explorer, _Explorer):
        raise InputError(f"show() takes a TrajectoryExplorer, ToleranceExplorer or MistakeExplorer; got "
                         f"{type(explorer).__name__}: for a matplotlib figure use plt.show()")
    if static_views():
        explorer.static_figure()
        plt.show()
    else:
        display(explorer.widget)


def _check_trajectories(trajectories: object) -> None:
    if not isinstance(trajectories, Trajectories):
        raise InputError(f"expected the Trajectories returned by hidden_trajectories(model, images, labels); got "
                         f"{type(trajectories).__name__}")


def _check_digits(digits: object) -> tuple[int, ...]:
    if isinstance(digits, (str, bytes)) or not isinstance(digits, (Sequence, set, frozenset, range)):
        raise InputError(f"digits must be a list of digits 0-9, like [3, 8]; got {digits!r}")
    out = tuple(sorted({check_int("each digit", d, minimum=0, maximum=9) for d in digits}))
    return out


class _Explorer:
    """Shared plumbing: a figure redrawn into an Output widget whenever a control changes."""

    controls: list[widgets.Widget]

    def __init__(self) -> None:
        self.output = widgets.Output()
        self.figure: Figure | None = None
        self.redraws = 0

    @property
    def widget(self) -> widgets.VBox:
        """Controls above the figure; the figure is drawn when the widget is first asked for."""
        if self.figure is None:
            self.update()
        return widgets.VBox([widgets.HBox(self.controls), self.output])

    def update(self) -> None:
        raise NotImplementedError

    def _draw(self, make_figure: Callable[[], Figure]) -> None:
        if self.figure is not None:
            plt.close(self.figure)
        with plt.ioff():
            self.figure = make_figure()
        self.redraws += 1
        with self.output:
            clear_output(wait=True)
            display(self.figure)


class TrajectoryExplorer(_Explorer):
    """Hidden-state paths projected to 2-D for the chosen digits; a time slider moves every point along its path.

    The projection (PCA) is fitted once on the final states of all images, so the picture does not
    jump when the choice of digits changes.

    Args:
        trajectories: what :func:`~nodeutils.probing.hidden_trajectories` returns.
        digits: the digits shown at first.

    Raises:
        InputError: not such trajectories, digits other than 0-9, or final states that are all identical.
    """

    def __init__(self, trajectories: Trajectories, digits: Sequence[int] = tuple(range(10))) -> None:
        _check_trajectories(trajectories)
        digits = _check_digits(digits)
        super().__init__()
        self.trajectories = trajectories
        self.pca = PCA(trajectories.states[-1])
        self.paths = self.pca(trajectories.states)  # (time, image, 2)
        last = len(trajectories.times) - 1
        self.slider = widgets.IntSlider(value=last, min=0, max=last, description="time step", continuous_update=True)
        self.digits = widgets.SelectMultiple(options=list(range(10)), value=tuple(digits), rows=4,
                                             description="digits")
        for control in (self.slider, self.digits):
            control.observe(lambda change: self.update(), names="value")
        self.controls = [self.slider, self.digits]

    @property
    def shown(self) -> torch.Tensor:
        """Indices of the images whose true digit is among the chosen ones."""
        chosen = torch.tensor(sorted(self.digits.value), dtype=self.trajectories.labels.dtype)
        return torch.nonzero(torch.isin(self.trajectories.labels, chosen)).flatten()

    @property
    def current_points(self) -> torch.Tensor:
        """The projected states of the shown images at the slider's time (image, 2)."""
        return self.paths[self.slider.value, self.shown]

    def static_figure(self, time_index: int | None = None) -> Figure:
        """The figure the widget shows, for the chosen digits.

        Args:
            time_index: which time gets the dots (``None``: the slider's).

        Returns:
            The matplotlib Figure.

        Raises:
            InputError: ``time_index`` is out of range.
        """
        index = self.slider.value if time_index is None else time_index
        shown = self.shown
        return plot_trajectories(self.paths[:, shown], self.trajectories.labels[shown],
                                 self.trajectories.times.tolist(), index, explained=self.pca.explained)

    def update(self) -> None:
        """Redraw the figure for the controls' current values."""
        self._draw(self.static_figure)

    def animation_html(self, *, dpi: int = 80, interval_ms: int = 250, frame_format: str = "jpeg") -> str:
        """The time slider without a kernel: every time step pre-rendered as a frame, with a scrubber (HTML+JS).

        Args:
            dpi: the frames' resolution, at least 20.
            interval_ms: milliseconds per frame when playing, at least 1.
            frame_format: ``"jpeg"`` or ``"png"``.

        Returns:
            The shown digits' paths as :func:`~nodeutils.plots.animate_trajectories` animates them.

        Raises:
            InputError: a bad ``frame_format``, ``dpi`` or ``interval_ms``.
        """
        shown = self.shown
        return animate_trajectories(self.paths[:, shown], self.trajectories.labels[shown],
                                    self.trajectories.times.tolist(), explained=self.pca.explained, dpi=dpi,
                                    interval_ms=interval_ms, frame_format=frame_format)


class ToleranceExplorer(_Explorer):
    """Re-evaluate the trained model at rtol = atol from 1e-1 to 1e-6; results are cached per tolerance.

    Args:
        model: a trained model built by :func:`~nodeutils.models.create_model`.
        loader: the images to evaluate on, read once per tolerance: a DataLoader (e.g. the test loader) or a list
            of (images, labels) batches, not a one-pass iterator.
        tolerances: the slider's tolerances (``None``: :func:`~nodeutils.probing.tolerance_grid`).
        initial: the tolerance selected first (the nearest of ``tolerances``); it is evaluated at once.

    Raises:
        InputError: a bad model, loader or tolerance, or what :func:`~nodeutils.probing.evaluate_at_tolerance`
            raises for the first evaluation.
        SolverError: the first evaluation's solve failed.
    """

    def __init__(self, model: nn.Module, loader: DataLoader, tolerances: Sequence[float] | None = None,
                 initial: float = 1e-3) -> None:
        check_model(model)
        check_loader(loader, read_again=True)  # every tolerance evaluates it
        if tolerances is not None:
            if isinstance(tolerances, (str, bytes)) or not isinstance(tolerances, Sequence) or not tolerances:
                raise InputError(f"tolerances must be a non-empty list such as [1e-1, 1e-3, 1e-6], or None for "
                                 f"1e-1 ... 1e-6; got {tolerances!r}")
            tolerances = [check_number(f"tolerances[{i}]", t, example="1e-3") for i, t in enumerate(tolerances)]
        initial = check_number("initial", initial, example="1e-3")
        super().__init__()
        self.model, self.loader = model, loader
        self.tolerances = list(tolerances) if tolerances is not None else list(tolerance_grid())
        self.cache: dict[float, ToleranceResult] = {}
        self.evaluations = 0
        self.slider = widgets.SelectionSlider(options=[(f"{t:.0e}", t) for t in self.tolerances],
                                        value=min(self.tolerances, key=lambda t: abs(t - initial)),
                                        description="rtol = atol", continuous_update=False)
        self.label = widgets.HTML()
        self.slider.observe(lambda change: self.update(), names="value")
        self.controls = [self.slider, self.label]
        self._describe(self.result(self.slider.value))

    def result(self, tolerance: float) -> ToleranceResult:
        """The evaluation at ``tolerance``, computed on the first visit only.

        Args:
            tolerance: rtol = atol.

        Returns:
            The result, as :func:`~nodeutils.probing.evaluate_at_tolerance` returns it.

        Raises:
            InputError: as for :func:`~nodeutils.probing.evaluate_at_tolerance`.
            SolverError: a solve failed at this tolerance.
        """
        if tolerance not in self.cache:
            self.cache[tolerance] = evaluate_at_tolerance(self.model, self.loader, tolerance)
            self.evaluations += 1
        return self.cache[tolerance]

    def static_figure(self) -> Figure:
        """Every tolerance's results in one figure (evaluating those not visited yet).

        Returns:
            The matplotlib Figure.
        """
        return plot_tolerance([self.result(t) for t in self.tolerances], current=self.slider.value)

    def _describe(self, r: ToleranceResult) -> None:
        self.label.value = (f"<b>{r.nfe_per_batch:.1f}</b> evaluations of f per batch, "
                            f"accuracy <b>{r.accuracy:.2f}%</b>, {1e3 * r.seconds_per_batch:.1f} ms per batch")

    def update(self) -> None:
        """Evaluate the slider's tolerance if it is new; redraw the figure with every result so far."""
        self._describe(self.result(self.slider.value))
        self._draw(lambda: plot_tolerance(list(self.cache.values()), current=self.slider.value))


class MistakeExplorer(_Explorer):
    """Pick a true and a predicted class; see the images the model confused and their trajectories.

    The choice starts at the most frequent confusion.

    Args:
        images: the images the trajectories were computed for, in the same order (each 28 x 28 pixels).
        trajectories: what :func:`~nodeutils.probing.hidden_trajectories` returns for them.
        max_images: the most images shown for one pair of classes.

    Raises:
        InputError: not such trajectories, images that do not match them, a ``max_images`` below 1, or final
            states that are all identical.
    """

    def __init__(self, images: torch.Tensor, trajectories: Trajectories, max_images: int = 16) -> None:
        _check_trajectories(trajectories)
        if not isinstance(images, torch.Tensor) or len(images) != len(trajectories.labels):
            got = f"{len(images)} images" if isinstance(images, torch.Tensor) else type(images).__name__
            raise InputError(f"images must be the tensor of the {len(trajectories.labels)} images the trajectories "
                             f"were computed for; got {got}")
        if images.ndim < 2 or images[0].numel() != 28 * 28:
            raise InputError(f"images must be MNIST images, 28 x 28 pixels each (e.g. (N, 1, 28, 28)); got shape "
                             f"{tuple(images.shape)}")
        max_images = check_int("max_images", max_images, minimum=1, hint="e.g. 16")
        super().__init__()
        self.images, self.trajectories, self.max_images = images, trajectories, max_images
        self.pca = PCA(trajectories.states[-1])
        self.paths = self.pca(trajectories.states)
        truth, predicted = trajectories.labels, trajectories.predictions
        pairs = sorted({(int(t), int(p)) for t, p in zip(truth, predicted) if t != p},
                       key=lambda tp: -int(((truth == tp[0]) & (predicted == tp[1])).sum()))
        first = pairs[0] if pairs else (0, 0)
        self.true_class = widgets.Dropdown(options=list(range(10)), value=first[0], description="true digit")
        self.predicted_class = widgets.Dropdown(options=list(range(10)), value=first[1], description="predicted")
        for control in (self.true_class, self.predicted_class):
            control.observe(lambda change: self.update(), names="value")
        self.controls = [self.true_class, self.predicted_class]

    @property
    def selected(self) -> torch.Tensor:
        """Indices of the images with the chosen true and predicted class (at most ``max_images``)."""
        mask = (self.trajectories.labels == self.true_class.value) & \
               (self.trajectories.predictions == self.predicted_class.value)
        return torch.nonzero(mask).flatten()[: self.max_images]

    def static_figure(self, indices: torch.Tensor | None = None) -> Figure:
        """The figure the widget shows: the images and, beside them, their paths over all paths in grey.

        Args:
            indices: which images to show (``None``: :attr:`selected`).

        Returns:
            The matplotlib Figure (a one-line note when no image is chosen).

        Raises:
            InputError: ``indices`` is not a 1-D integer tensor of image numbers in range.
        """
        if indices is not None:
            n_images = len(self.images)
            if not isinstance(indices, torch.Tensor) or indices.ndim != 1 or indices.is_floating_point() \
                    or (len(indices) and not (0 <= int(indices.min()) and int(indices.max()) < n_images)):
                raise InputError(f"indices must be a 1-D tensor of image numbers from 0 to {n_images - 1}, e.g. "
                                 f"explorer.selected; got {indices!r}")
        chosen = self.selected if indices is None else indices
        t, p = self.true_class.value, self.predicted_class.value
        if len(chosen) == 0:
            fig, ax = plt.subplots(figsize=(6, 1.2))
            ax.set_axis_off()
            ax.set_title(f"No test image of a {t} was predicted as {p}")
            return fig
        fig = plt.figure(figsize=(12, 4.6))
        grid = fig.add_gridspec(1, 2, width_ratios=[1.1, 1])
        left = fig.add_subfigure(grid[0])
        right = fig.add_subplot(grid[1])
        n = len(chosen)
        cols = min(4, n)
        rows = (n + cols - 1) // cols
        axes = left.subplots(rows, cols, squeeze=False)
        for k, ax in enumerate(axes.flat):
            ax.set_axis_off()
            if k < n:
                i = int(chosen[k])
                ax.imshow(self.images[i].reshape(28, 28).numpy(), cmap="gray_r", vmin=0, vmax=1)
                ax.set_title(f"#{i}: {t} -> {int(self.trajectories.predictions[i])}", fontsize=8)
        left.suptitle(f"Test images of a {t} predicted as {p} ({n} shown)")
        background = self.paths.numpy()
        for i in range(background.shape[1]):
            right.plot(background[:, i, 0], background[:, i, 1], color="0.85", linewidth=0.5, zorder=1)
        plot_trajectories(self.paths[:, chosen], [t] * n, self.trajectories.times.tolist(), -1, ax=right,
                          title="Their paths (grey: all test images)", explained=self.pca.explained)
        return fig

    def update(self) -> None:
        """Redraw the figure for the chosen pair of classes."""
        self._draw(self.static_figure)

