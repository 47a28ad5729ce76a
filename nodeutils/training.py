"""Training loop of the tutorial: Adam on the logit cross-entropy, one printed row per epoch."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .data import load_mnist
from .env import pick_device
from .errors import InputError, TrainingDivergedError
from .models import create_model, ode_stats
from .sensitivity import SensitivityAlgorithm, make_sensealg

__all__ = ["accuracy", "predictions", "train", "TrainingHistory", "format_row", "logitcrossentropy"]


def logitcrossentropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of raw scores (the tutorial's ``CrossEntropyLoss(; logits=Val(true))``)."""
    return nn.functional.cross_entropy(logits, labels)


def predictions(model: nn.Module, loader: DataLoader,
                device: str | torch.device | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(images, labels, predicted labels)`` per batch, in eval mode and without gradients."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x, y in loader:
                yield x, y, model(x.to(device)).argmax(dim=1).cpu()
    finally:
        model.train(was_training)


def accuracy(model: nn.Module, loader: DataLoader, device: str | torch.device | None = None) -> float:
    """Fraction of correctly classified images (model in eval mode; no gradients)."""
    correct = total = 0
    for _, y, predicted in predictions(model, loader, device):
        correct += int((predicted == y).sum())
        total += len(y)
    return correct / total


@dataclass
class TrainingHistory:
    """Per-epoch record returned by :func:`train` (times in seconds, accuracies in %)."""

    epoch_time: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    nfe_forward: list[float] = field(default_factory=list)
    nfe_backward: list[float] = field(default_factory=list)
    model: nn.Module | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[str]:
        n = self.settings.get("epochs", len(self.epoch_time))
        return [format_row(i + 1, n, self.epoch_time[i], self.train_accuracy[i], self.test_accuracy[i])
                for i in range(len(self.epoch_time))]


def format_row(epoch: int, epochs: int, seconds: float, train_acc: float, test_acc: float) -> str:
    """``[k/n]\\tTime 0.0612s\\tTraining Accuracy: 84.81%\\tTest Accuracy: 84.00%``."""
    return (f"[{epoch}/{epochs}]\tTime {seconds:.4f}s\tTraining Accuracy: {train_acc:.2f}%"
            f"\tTest Accuracy: {test_acc:.2f}%")


def train(
    layer: str = "class",
    *,
    device: str | torch.device | None = None,
    epochs: int = 9,
    batch_size: int = 128,
    lr: float = 1e-3,
    sensealg: SensitivityAlgorithm | str | None = "default",
    vjp: str = "autograd",
    structured_params: bool = False,
    seed: int = 0,
    subset: int | None | str = "auto",
    source: str = "embedded",
    loaders: tuple[DataLoader, DataLoader] | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
    **model_kwargs: Any,
) -> TrainingHistory:
    """Train the tutorial model and print one row per epoch; return the :class:`TrainingHistory`.

    ``sensealg`` is an algorithm object or a name (``"interpolating"``, ``"gauss"`` ...) combined
    with ``vjp``; ``"default"`` is the tutorial's InterpolatingAdjoint with autograd VJPs.
    ``device=None`` trains where ``NODEUTILS_DEVICE`` says (the CPU when it is unset).
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise InputError(f"epochs must be a positive integer; got {epochs!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise InputError(f"lr must be a positive number such as 1e-3; got {lr!r}")
    dev = pick_device(device)
    if isinstance(sensealg, str) and sensealg != "default":
        sensealg = make_sensealg(sensealg, vjp)
    model = create_model(layer, device=dev, structured_params=structured_params, sensealg=sensealg, seed=seed,
                         **model_kwargs)
    train_loader, test_loader = loaders or load_mnist(batch_size, 0.9, subset=subset, source=source, seed=seed)
    if train_loader.generator is not None:
        train_loader.generator.manual_seed(seed)  # reused loaders give the same batch order for the same seed
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    history = TrainingHistory(model=model, settings={
        "layer": layer, "device": str(dev), "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "sensealg": repr(model.ode.settings.sensealg),
        "structured_params": structured_params, "seed": seed,
        "train_images": len(train_loader.dataset), "test_images": len(test_loader.dataset)})
    bar = tqdm(total=epochs * len(train_loader), desc="training", disable=not progress, leave=False,
               file=sys.stderr)
    for epoch in range(1, epochs + 1):
        model.train()
        losses, nfe_f, nfe_b = [], [], []
        start = time.perf_counter()
        for step, (x, y) in enumerate(train_loader, 1):
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            loss = logitcrossentropy(model(x), y)
            value = loss.detach().item()
            if not math.isfinite(value):
                raise TrainingDivergedError(
                    f"the training loss became {value} at epoch {epoch}, batch {step}: lower the learning rate "
                    f"(lr={lr:g}) or check the inputs for NaN")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            stats = ode_stats(model)
            losses.append(value)
            nfe_f.append(stats.nfe_forward)
            nfe_b.append(stats.nfe_backward)
            bar.update(1)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - start
        history.epoch_time.append(seconds)
        history.train_accuracy.append(100 * accuracy(model, train_loader, dev))
        history.test_accuracy.append(100 * accuracy(model, test_loader, dev))
        history.loss.append(sum(losses) / len(losses))
        history.nfe_forward.append(sum(nfe_f) / len(nfe_f))
        history.nfe_backward.append(sum(nfe_b) / len(nfe_b))
        if log is not None:
            if progress:
                bar.clear()
            log(format_row(epoch, epochs, seconds, history.train_accuracy[-1], history.test_accuracy[-1]))
    bar.close()
    return history
