"""Argument checks shared by the public functions: one message style for every bad value.

Each check returns the value (converted where the meaning is unambiguous, e.g. a NumPy integer to
``int``) or raises :class:`~nodeutils.errors.InputError` naming the argument, the value received and
what to pass instead. Booleans are never accepted where a number is expected (``True`` is an
``int`` in Python, but ``epochs=True`` is a mistake).
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import InputError, NodeUtilsWarning

__all__ = ["check_int", "check_number", "check_bool", "check_choice", "check_callable", "check_call_signature",
           "check_module", "check_index", "check_class_indices", "describe", "check_batch", "check_labels",
           "check_loader_pair", "check_threads", "check_folder", "check_writable_folder"]


_INTERNAL_DIRS = (os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.abspath(torch.__file__)))


def user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside nodeutils and torch."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_INTERNAL_DIRS):
        frame, level = frame.f_back, level + 1
    return level


def describe(value: Any) -> str:
    """A short description of ``value`` for an error message (tensors by shape and dtype, not contents)."""
    if isinstance(value, torch.Tensor):
        if value.numel() == 1:
            return f"tensor({value.item()!r}, dtype={value.dtype})"
        return f"a tensor of shape {tuple(value.shape)} ({value.dtype})"
    text = repr(value)
    return text if len(text) <= 60 else f"{type(value).__name__} {text[:50]}..."


def _fix(hint: str) -> str:
    return f": {hint}" if hint else ""


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None,
              hint: str = "") -> int:
    """``value`` as an ``int`` within [minimum, maximum]; floats with a fractional part and bools are refused.

    NumPy integers and one-element integer tensors count as integers.
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        value = value.item()  # a Python int, float or bool, judged below
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        if isinstance(value, (bool, np.bool_)):
            what = "an integer, not a bool"
        elif isinstance(value, (float, np.floating)) and float(value).is_integer():
            what = f"an integer, like {int(value)} (not the float {float(value)!r})"
        else:
            what = "an integer"
        raise InputError(f"{name} must be {what}; got {describe(value)}{_fix(hint)}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if maximum is None:
            what = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
        elif minimum is None:
            what = f"an integer of at most {maximum}"
        else:
            what = f"an integer from {minimum} to {maximum}"
        raise InputError(f"{name} must be {what}; got {value}{_fix(hint)}")
    return value


def check_number(name: str, value: Any, *, positive: bool = True, example: str = "", hint: str = "") -> float:
    """``value`` as a finite ``float`` (strictly positive unless ``positive=False``).

    Python numbers, NumPy scalars and one-element tensors are accepted; strings, bools and tensors of
    several elements are refused.
    """
    like = f" such as {example}" if example else ""
    what = f"a {'positive ' if positive else ''}finite number{like}"
    if isinstance(value, str):
        raise InputError(f"{name} must be {what}, not the string {value!r}: write it without quotes"
                         f"{', ' + hint if hint else ''}")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise InputError(f"{name} must be {what}; got {describe(value)}: pass one number "
                             f"(per-component tolerances are not supported){', ' + hint if hint else ''}")
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be {what}; got {describe(value)}{_fix(hint)}")
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        raise InputError(f"{name} must be {what}; got {value!r}{_fix(hint)}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (or a NumPy or one-element tensor bool); strings such as ``"no"``
    are refused."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype == torch.bool:
        return bool(value.item())
    raise InputError(f"{name} must be True or False; got {describe(value)}")


def check_choice(name: str, value: Any, choices: Iterable[str], hint: str = "") -> str:
    """``value`` if it is one of ``choices`` (strings), else an error listing them."""
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"unknown {name} {describe(value)}: choose one of {', '.join(choices)}{_fix(hint)}")
    return value


def check_callable(name: str, value: Any, what: str) -> Any:
    """``value`` if it is callable; ``what`` says what kind of callable was expected."""
    if not callable(value):
        raise InputError(f"{name} must be {what}; got {describe(value)}")
    return value


def check_call_signature(name: str, value: Any, n_args: int, what: str) -> Any:
    """``value`` if it is callable with ``n_args`` positional arguments (checked before it is first called).

    Callables whose signature Python cannot read (some built-ins) are accepted as they are.

    Args:
        name: the argument's name, for the message.
        value: the callable to check.
        n_args: how many positional arguments it will be called with.
        what: what kind of callable was expected, e.g. ``"a function taking one line of text, such as print"``.

    Returns:
        ``value`` unchanged.

    Raises:
        InputError: ``value`` is not callable, or cannot take ``n_args`` positional arguments.
    """
    check_callable(name, value, what)
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):  # no signature to read: find out when it is called
        return value
    try:
        signature.bind(*range(n_args))
    except TypeError as err:
        label = getattr(value, "__qualname__", type(value).__name__)
        raise InputError(f"{name} must be {what}; {label}{signature} cannot be called with {n_args} argument"
                         f"{'s' * (n_args != 1)} ({err})") from None
    return value


def check_module(name: str, value: Any, what: str, hint: str = "") -> torch.nn.Module:
    """``value`` if it is a ``torch.nn.Module``; ``what`` says which network was expected.

    Raises:
        InputError: ``value`` is not an ``nn.Module``.
    """
    if not isinstance(value, torch.nn.Module):
        raise InputError(f"{name} must be {what} (a torch.nn.Module); got {describe(value)}{_fix(hint)}")
    return value


def check_index(name: str, value: Any, length: int, what: str) -> int:
    """``value`` as an index into ``length`` items (negative indices count from the end, as in Python).

    Raises:
        InputError: ``value`` is not an integer, or lies outside ``-length .. length - 1``.
    """
    value = check_int(name, value)
    if not -length <= value < length:
        raise InputError(f"{name}={value} is out of range for {length} {what}: pass an index from 0 to {length - 1} "
                         f"(or from -{length} to -1, counting from the end; -1 is the last)")
    return value


def check_class_indices(name: str, value: Any, classes: int) -> torch.Tensor:
    """``value`` as an int64 tensor of class indices ``0 .. classes - 1`` (any shape).

    Integer tensors, NumPy arrays and lists of integers are accepted.

    Raises:
        InputError: the values are not integers, or one lies outside ``0 .. classes - 1``.
    """
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError):
            raise InputError(f"{name} must be a tensor of class indices 0..{classes - 1}; got {describe(value)}") \
                from None
    if value.dtype == torch.bool or value.is_floating_point() or value.is_complex():
        raise InputError(f"{name} must hold integer class indices 0..{classes - 1}; got dtype {value.dtype}: "
                         "convert class numbers with .long()")
    value = value.long()
    if value.numel():
        low, high = (int(v) for v in torch.aminmax(value))
        if low < 0 or high >= classes:
            raise InputError(f"{name} holds values from {low} to {high}, but there are {classes} classes "
                             f"(0..{classes - 1}): pass class indices in that range, or a larger num_classes")
    return value


# --------------------------------------------------------------------------------------------
# Data entering training and evaluation: checked once per batch, where the batch first enters
# --------------------------------------------------------------------------------------------
def check_batch(batch: Any, where: str = "the loader") -> tuple[Any, Any]:
    """``(images, labels)`` from one item of a loader; dicts, single tensors and longer tuples are refused."""
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


def check_loader_pair(train_loader: Any, test_loader: Any) -> None:
    """Refuse the same loader twice; warn when the training set is smaller than the test set (swapped?)."""
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


# --------------------------------------------------------------------------------------------
# Environment and paths
# --------------------------------------------------------------------------------------------
#: More threads than this is refused: PyTorch's thread pools can crash or exhaust memory creating them.
MAX_THREADS = 1024


def check_threads(value: Any, source: str = "threads", warn: bool = True) -> int:
    """A thread count for ``torch.set_num_threads``: a positive integer up to :data:`MAX_THREADS`.

    ``source`` names where it came from (``"--threads"``, ``"OMP_NUM_THREADS"``); strings are parsed.
    More threads than CPU cores work but slow a small model down many times, so they get a warning
    (unless ``warn=False``).
    """
    cores = os.cpu_count() or 1
    fix = f"use a number from 1 to the {cores} CPU core{'s' * (cores != 1)} of this machine (1 is fastest here)"
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            raise InputError(f"{source}={text!r} is not a number of threads: {fix}") from None
    try:
        value = check_int(source, value)
    except InputError:
        raise InputError(f"{source}={describe(value)} is not a number of threads: {fix}") from None
    if value < 1 or value > MAX_THREADS:
        raise InputError(f"{source}={value} is not a usable number of threads: {fix}")
    if warn and value > cores:
        warnings.warn(f"{source}={value} is more threads than the {cores} CPU cores: the threads will take turns, "
                      f"which slows this small model down many times; {fix}", NodeUtilsWarning, stacklevel=3)
    return value


def check_folder(name: str, value: Any) -> Path:
    """A folder path with ``~`` expanded; empty strings and non-paths are refused."""
    if not isinstance(value, (str, os.PathLike)):
        raise InputError(f"{name} must be a folder path (a string or pathlib.Path); got {describe(value)}")
    text = os.fspath(value)
    if isinstance(text, bytes) or not text.strip():
        raise InputError(f"{name} is empty: give a folder, e.g. data, or leave it out for the default")
    return Path(text).expanduser()


def check_writable_folder(path: str | os.PathLike, what: str, fix: str) -> Path:
    """``path`` as a folder that exists (created if missing) and can be written to; else what to do."""
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{what} {folder} is a file, not a folder: {fix}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create {what} {folder} ({err.strerror or err}): {fix}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{what} {folder} is read-only: {fix}")
    return folder
