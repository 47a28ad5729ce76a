"""Render a PNG of each notebook-04 view into docs/images/ (the pictures shown in README.md).

    python scripts/render_view_images.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from nodeutils import load_mnist, train  # noqa: E402
from nodeutils.plots import plot_confusion, plot_training, show_digits  # noqa: E402
from nodeutils.probing import hidden_trajectories, predict  # noqa: E402
from nodeutils.statistics import confusion_matrix  # noqa: E402
from nodeutils.widgets import MistakeExplorer, ToleranceExplorer, TrajectoryExplorer  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def main() -> None:
    torch.set_num_threads(2)
    OUT.mkdir(parents=True, exist_ok=True)
    train_loader, test_loader = load_mnist(128, 0.9, subset=1500)
    history = train("class", loaders=(train_loader, test_loader), progress=False, log=None)
    model = history.model
    images, truth, predicted = predict(model, test_loader)
    trajectories = hidden_trajectories(model, images, truth)
    figures = {
        "digit_grid": show_digits(images[:24], truth[:24], predicted[:24],
                                  title="Test images: true / predicted digit"),
        "training_curves": plot_training(history),
        "trajectories": TrajectoryExplorer(trajectories).static_figure(time_index=10),
        "tolerance_explorer": ToleranceExplorer(model, test_loader).static_figure(),
        "misclassification_explorer": MistakeExplorer(images, trajectories).static_figure(),
        "confusion_matrix": plot_confusion(confusion_matrix(truth, predicted)),
    }
    for name, figure in figures.items():
        figure.savefig(OUT / f"{name}.png", dpi=80, bbox_inches="tight")
        print(f"wrote docs/images/{name}.png")


if __name__ == "__main__":
    main()
