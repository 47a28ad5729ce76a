"""Checks of what enters training and evaluation, made once per batch where the batch first enters."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from ..errors import InputError, NodeUtilsWarning
from .values import describe, user_stacklevel

__all__ = ["check_batch", "check_labels", "check_loader", "check_loader_pair", "check_model",
           "check_images_and_labels", "check_states_and_labels", "check_states"]


def check_batch(batch: Any, where: str = "the loader") -> tuple[Any, Any]:
    """``(images, labels)`` from one item of a loader; dicts, single tensors and longer tuples are refused.

    Args:
        batch: one item the loader yielded.
        where: the loader's name, for the message.

    Returns:
        ``(images, labels)``; ``images`` is a tensor, ``labels`` is not checked yet (see :func:`check_labels`).

    Raises:
        InputError: ``batch`` is not a pair, or its images are not a tensor.
    """
    if isinstance(batch, dict):
        raise InputError(f"{where} yields dicts (keys {sorted(map(str, batch))[:4]}), but (images, labels) pairs are "
                         "expected: have the dataset's __getitem__ return (image, label), e.g. TensorDataset(x, y)")
    if isinstance(batch, torch.Tensor) or not isinstance(batch, (tuple, list)) or len(batch) != 2:
        got = describe(batch) if isinstance(batch, torch.Tensor) else (
            f"a {type(batch).__name__} of {len(batch)} items" if isinstance(batch, (tuple, list))
            else type(batch).__name__)
        raise InputError(f"{where} must yield (images, labels) pairs; got {got}: build the dataset from images and "
                         "labels, e.g. TensorDataset(x, y), or use load_mnist()")
    images, labels = batch
    if not isinstance(images, torch.Tensor):
        raise InputError(f"{where} yields images of type {type(images).__name__}, not tensors: convert them with "
                         "torch.as_tensor(x, dtype=torch.float32)")
    return images, labels


def check_labels(labels: Any, n_images: int, classes: int, where: str = "the loader") -> torch.Tensor:
    """Labels as a 1-D int64 tensor of class indices 0..classes-1, one per image.

    Clear mistakes are converted with a warning: labels shaped (N, 1) are flattened, one-hot rows
    become class indices, integer-valued floats become integers. Anything else (soft or multi-hot
    rows, fractional or out-of-range values, a wrong count) is refused: a comparison of predictions
    with such labels would broadcast into a meaningless number.

    Args:
        labels: the labels of one batch.
        n_images: the number of images in the batch.
        classes: the number of classes.
        where: the loader's name, for the message.

    Returns:
        The labels as an int64 tensor shaped ``(n_images,)``.

    Raises:
        InputError: ``labels`` is not a tensor, has a bool or complex dtype, or is one of the refused cases above.
    """
    if not isinstance(labels, torch.Tensor):
        raise InputError(f"{where} yields labels of type {type(labels).__name__}, not a tensor: convert them with "
                         "torch.as_tensor(labels, dtype=torch.long)")
    fixes = []
    if labels.dtype == torch.bool or labels.is_complex():
        raise InputError(f"{where} yields labels of dtype {labels.dtype}; expected integer class indices "
                         f"0..{classes - 1} (int64): convert them with labels.long() if they are class numbers")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
        fixes.append("flattened labels shaped (N, 1) with labels.squeeze(1)")
    elif labels.ndim == 2 and labels.shape[1] == classes and len(labels) == n_images:
        one_hot = bool(((labels == 0) | (labels == 1)).all()) and bool((labels.sum(dim=1) == 1).all())
        if not one_hot:
            raise InputError(f"{where} yields labels shaped {tuple(labels.shape)} whose rows are not one-hot (exactly "
                             "one 1, the rest 0): soft or multi-label targets are not supported. Pass class indices "
                             "shaped (N,), e.g. labels.argmax(dim=1)")
        labels = labels.argmax(dim=1)
        fixes.append("read one-hot labels as class indices with labels.argmax(dim=1)")
    if labels.ndim != 1 or len(labels) != n_images:
        raise InputError(f"{where} yields {n_images} images with labels shaped {tuple(labels.shape)}; expected one "
                         f"class index per image, shaped ({n_images},): pass labels as a 1-D tensor of integers "
                         f"0..{classes - 1}")
    if labels.is_floating_point():
        if not bool((labels == labels.round()).all()):
            raise InputError(f"{where} yields labels of dtype {labels.dtype} with fractional values: expected "
                             f"integer class indices 0..{classes - 1}; convert class numbers with labels.long()")
        fixes.append(f"converted {labels.dtype} labels to integers with labels.long()")
    labels = labels.long()  # int32, uint8 ... hold the same class numbers
    if len(labels):
        low, high = (int(v) for v in torch.aminmax(labels))
        if low < 0 or high >= classes:
            raise InputError(f"{where} yields labels from {low} to {high}, but the model has {classes} classes "
                             f"(0..{classes - 1}): pass class indices in that range (e.g. labels - 1 for labels "
                             f"counted from 1)")
    if fixes:
        warnings.warn(f"{where}: {'; '.join(fixes)}. Pass labels as a 1-D int64 tensor of class indices to avoid "
                      "this warning", NodeUtilsWarning, stacklevel=user_stacklevel())
    return labels


def check_loader(loader: object, *, read_again: bool = False) -> Iterable:
    """``loader`` if it can be iterated for ``(images, labels)`` batches (a DataLoader, a list of batches ...).

    Args:
        loader: the loader to check (the callers check each batch as it arrives, with :func:`check_batch`).
        read_again: whether the caller iterates it more than once, which a one-pass iterator (a generator)
            cannot serve.

    Returns:
        ``loader`` unchanged.

    Raises:
        InputError: a tensor, a string or anything not iterable; with ``read_again``, an iterator.
    """
    if isinstance(loader, (torch.Tensor, str, bytes)) or not isinstance(loader, Iterable):
        raise InputError(f"loader must be a DataLoader (or another iterable of (images, labels) batches), as "
                         f"load_mnist returns; got {describe(loader)}")
    if read_again and isinstance(loader, Iterator):
        raise InputError(f"loader is read more than once here, but a {type(loader).__name__} can be read only "
                         "once: pass a DataLoader, or a list of (images, labels) batches (list(batches))")
    return loader


def check_loader_pair(train_loader: Any, test_loader: Any) -> None:
    """Refuse the same loader twice; warn when the training set is smaller than the test set (swapped?).

    Args:
        train_loader: the training loader.
        test_loader: the test loader.

    Raises:
        InputError: both are the same loader, or their ``dataset`` is the same object.
    """
    if train_loader is test_loader or (getattr(train_loader, "dataset", None) is not None
                                       and train_loader.dataset is getattr(test_loader, "dataset", None)):
        raise InputError("the training and test loaders hold the same dataset, so the test accuracy would be a "
                         "training accuracy: pass loaders=(train_loader, test_loader) built from separate images, "
                         "as load_mnist returns")
    try:
        n_train, n_test = len(train_loader.dataset), len(test_loader.dataset)
    except TypeError:
        return
    if n_train < n_test:
        warnings.warn(f"the training loader holds fewer images ({n_train}) than the test loader ({n_test}): were they "
                      "swapped? loaders=(train_loader, test_loader) takes the training loader first",
                      NodeUtilsWarning, stacklevel=user_stacklevel())


def check_model(model: object) -> nn.Module:
    """``model`` if it has the ODE layer named ``ode`` that :func:`~nodeutils.models.create_model` builds.

    Args:
        model: the model to check.

    Returns:
        ``model`` unchanged.

    Raises:
        InputError: ``model`` is not an ``nn.Module`` with an attribute ``ode`` that has solver ``settings``.
    """
    if not isinstance(model, nn.Module) or not hasattr(model, "ode") or not hasattr(model.ode, "settings"):
        raise InputError(f"expected a model built by create_model (with an ODE layer named 'ode'); got "
                         f"{type(model).__name__}: build one with create_model() or pass history.model after train()")
    return model


def check_images_and_labels(images: object, labels: object) -> None:
    """Refuse anything but an image tensor and a 1-D label tensor of the same length.

    Args:
        images: the images, shaped (N, ...).
        labels: their labels, shaped (N,).

    Raises:
        InputError: either is not a tensor, or ``labels`` is not 1-D with one label per image.
    """
    if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise InputError(f"images and labels must be tensors (e.g. from predict(model, loader)); got "
                         f"{type(images).__name__} and {type(labels).__name__}")
    if labels.ndim != 1 or len(images) != len(labels):
        raise InputError(f"expected one label per image; got {len(images)} images and labels shaped "
                         f"{tuple(labels.shape)}")


def check_states_and_labels(states: object, labels: object) -> None:
    """Refuse anything but a 2-D (image x state) tensor and one integer label per row.

    Args:
        states: the states, shaped (N, state size).
        labels: their labels, shaped (N,).

    Raises:
        InputError: ``states`` is not a 2-D tensor, or ``labels`` is not a 1-D integer tensor of N labels.
    """
    if not isinstance(states, torch.Tensor) or states.ndim != 2:
        got = tuple(states.shape) if isinstance(states, torch.Tensor) else type(states).__name__
        raise InputError(f"states must be a 2-D tensor (image x state), e.g. trajectories.states[-1]; got {got}")
    check_images_and_labels(states, labels)
    check_states("states", states)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise InputError(f"labels must be integer class labels; got dtype {labels.dtype}")


def check_states(name: str, states: object, features: int | None = None) -> torch.Tensor:
    """``states`` if it is a 2-D (point x feature) tensor of finite real numbers with at least one row.

    Args:
        name: the argument's name, for the message.
        states: the tensor to check.
        features: the number of columns it must have (``None``: any).

    Returns:
        ``states`` unchanged.

    Raises:
        InputError: not a 2-D real tensor, no rows, another number of columns, or NaN/infinite values.
    """
    if not isinstance(states, torch.Tensor) or states.ndim != 2 or states.is_complex() or states.dtype == torch.bool:
        got = describe(states) if isinstance(states, torch.Tensor) else type(states).__name__
        raise InputError(f"{name} must be a 2-D tensor (point x feature) of real numbers, e.g. "
                         f"trajectories.states[-1]; got {got}")
    if len(states) == 0:
        raise InputError(f"{name} has no rows (shape {tuple(states.shape)}): pass at least one point")
    if features is not None and states.shape[1] != features:
        raise InputError(f"{name} must have {features} columns (one per feature); got shape {tuple(states.shape)}")
    if not bool(torch.isfinite(states).all()):
        raise InputError(f"{name} contains NaN or infinite values: drop those rows, or check where they came from")
    return states

