"""Scoring a classifier: the tutorial's loss, and its predictions and accuracy over a loader."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader

from .checks import check_batch, check_labels, check_loader, describe
from .env import pick_device
from .errors import InputError

__all__ = ["accuracy", "predictions", "logitcrossentropy", "model_device"]


def logitcrossentropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of raw scores (the tutorial's ``CrossEntropyLoss(; logits=Val(true))``).

    Args:
        logits: raw class scores shaped (N, classes).
        labels: class indices, an int64 tensor shaped (N,).

    Returns:
        The loss in nats, a differentiable scalar tensor.

    Raises:
        InputError: ``logits`` is not (N, classes), or ``labels`` is not N integer class indices.
    """
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or not isinstance(labels, torch.Tensor) \
            or labels.shape != logits.shape[:1] or labels.dtype != torch.long:
        raise InputError(f"logits must be (N, classes) scores and labels N int64 class indices (labels.long()); got "
                         f"{describe(logits)} and {describe(labels)}")
    if len(labels):
        low, high = (int(v) for v in torch.aminmax(labels))  # one reduction, as check_labels reads the range
        if low < 0 or high >= logits.shape[1]:
            raise InputError(f"labels run from {low} to {high}, outside the {logits.shape[1]} classes of the logits")
    return nn.functional.cross_entropy(logits, labels)


def model_device(model: nn.Module, device: str | torch.device | None = None) -> torch.device:
    """The device of ``model``'s weights; a ``device`` given as well must be that one.

    Args:
        model: an ``nn.Module`` with at least one parameter.
        device: the device the caller expects (``"cpu"``, ``"cuda"``, ``"auto"`` ...), or ``None``.

    Returns:
        The device of the model's first parameter.

    Raises:
        InputError: not an ``nn.Module``, a model without weights, or a ``device`` that is unknown, unavailable
            or not the model's.
    """
    if not isinstance(model, nn.Module):
        raise InputError(f"expected a model (an nn.Module, e.g. from create_model or history.model); got "
                         f"{describe(model)}")
    try:
        own = next(model.parameters()).device
    except StopIteration:
        raise InputError(f"the model {type(model).__name__} has no weights, so there is nothing to evaluate: "
                         "build it with create_model()") from None
    if device is not None:
        wanted = pick_device(device)
        if (wanted.type, wanted.index or 0) != (own.type, own.index or 0):
            raise InputError(f"device={str(device)!r} was given, but the model's weights are on {own}: drop device= "
                             f"(the model's own device is used), or move the model with model.to({str(wanted)!r})")
    return own


def _check_logits(logits: object, n_images: int) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or len(logits) != n_images:
        got = describe(logits) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise InputError(f"the model must return one row of class scores per image, shaped ({n_images}, classes); "
                         f"got {got}")
    return logits


def predictions(model: nn.Module, loader: DataLoader,
                device: str | torch.device | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(images, labels, predicted labels)`` per batch, in eval mode and without gradients.

    Each batch is checked as it arrives: labels become a 1-D int64 tensor of class indices (see
    :func:`~nodeutils.checks.check_labels`), so a comparison with the predictions cannot broadcast.
    The model's training mode is restored afterwards.

    Args:
        model: the classifier.
        loader: an iterable of ``(images, labels)`` batches.
        device: where to evaluate; it must be the model's device (default: the model's).

    Yields:
        ``(images, labels, predicted)`` per batch, with the images as the loader gives them, the checked labels, and
        the predicted labels (int64, on the CPU).

    Raises:
        InputError: a bad model, device, loader or batch, or a model that does not return (N, classes) scores.
    """
    device = model_device(model, device)
    check_loader(loader)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in loader:
                x, y = check_batch(batch)
                logits = _check_logits(model(x.to(device)), len(x))
                y = check_labels(y, len(x), logits.shape[1])
                yield x, y, logits.argmax(dim=1).cpu()
    finally:
        model.train(was_training)


def accuracy(model: nn.Module, loader: DataLoader, device: str | torch.device | None = None) -> float:
    """Fraction of correctly classified images (model in eval mode; no gradients).

    Args:
        model: the classifier.
        loader: yields ``(images, labels)`` batches.
        device: where to evaluate; it must be the model's device (default: the model's).

    Returns:
        The accuracy as a fraction in [0, 1].

    Raises:
        InputError: a model that is not an ``nn.Module``, a device other than the model's, bad batches, or a
            loader without images.
    """
    correct = total = 0
    for _, y, predicted in predictions(model, loader, device):
        correct += int((predicted == y.cpu()).sum())
        total += len(y)
    if total == 0:
        raise InputError("the loader holds no images, so there is no accuracy to measure: give it a dataset of at "
                         "least one image (load_mnist's loaders always have some)")
    return correct / total
