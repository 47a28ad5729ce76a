"""Static matplotlib views used by the notebooks (each returns its Figure, so tests can inspect it)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = ["show_digits", "show_source", "plot_horizon_sweep", "magnitude"]

MISTAKE_COLOUR = "#c0392b"


def show_digits(
    images: torch.Tensor,
    labels: torch.Tensor | Sequence[int],
    predictions: torch.Tensor | Sequence[int] | None = None,
    *,
    ncols: int = 8,
    title: str = "MNIST digits",
) -> Figure:
    """A grid of digits, each titled with its label (and prediction; mistakes drawn in red)."""
    images = torch.as_tensor(images).detach().cpu().reshape(-1, 28, 28).numpy()
    labels = [int(v) for v in labels]
    preds = None if predictions is None else [int(v) for v in predictions]
    n = len(images)
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


def show_source(obj: object) -> None:
    """Print the source code of a nodeutils function or class (what the notebook is using)."""
    import inspect
    import textwrap

    print(textwrap.dedent(inspect.getsource(obj)).rstrip())


def magnitude(value: float) -> str:
    """An error printed as its order of magnitude (``"~1e-06"``), stable across machines; ``inf`` -> "failed"."""
    if value != value or value == float("inf"):
        return "failed"
    if value == 0:
        return "0"
    return f"~1e{int(np.floor(np.log10(value))):+03d}"


def plot_horizon_sweep(rows: Sequence) -> Figure:
    """Gradient error and memory kept against the integration horizon, one line per algorithm."""
    names = list(dict.fromkeys(r.name for r in rows))
    fig, (ax_err, ax_mem) = plt.subplots(1, 2, figsize=(11, 4))
    for name in names:
        mine = [r for r in rows if r.name == name]
        horizons = [r.horizon for r in mine]
        style = {"linestyle": "--"} if "checkpoint" in name else {}
        errors = [min(r.grad_error, 10.0) for r in mine]
        ax_err.plot(horizons, errors, marker="o", label=name, **style)
        ax_mem.plot(horizons, [r.kept_kib for r in mine], marker="o", label=name, **style)
    ax_err.set(xscale="log", yscale="log", title="Gradient error vs integration horizon",
               xlabel="horizon T (time units)", ylabel="relative gradient error")
    ax_mem.set(xscale="log", yscale="log", title="Memory kept for the backward pass",
               xlabel="horizon T (time units)", ylabel="memory (KiB)")
    ax_err.legend(fontsize=8)
    fig.tight_layout()
    return fig
