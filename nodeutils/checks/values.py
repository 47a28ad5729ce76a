"""Checks of single values: integers, numbers, booleans, choices, callables, modules, indices, folders."""

from __future__ import annotations

import inspect
import math
import numbers
import os
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError, NodeUtilsWarning

__all__ = ["check_int", "check_number", "check_bool", "check_choice", "check_callable", "check_call_signature",
           "check_keywords", "check_module", "check_index", "describe", "check_threads", "check_folder", "MAX_THREADS",
           "user_stacklevel"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_INTERNAL_DIRS = (_PACKAGE_DIR, os.path.dirname(os.path.abspath(torch.__file__)))


def user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside nodeutils and torch.

    Returns:
        The value to pass as ``warnings.warn(..., stacklevel=user_stacklevel())`` (1: the function calling warn).
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_INTERNAL_DIRS):
        frame, level = frame.f_back, level + 1
    return level


def describe(value: Any) -> str:
    """A short description of ``value`` for an error message (tensors by shape and dtype, not contents).

    Args:
        value: any object.

    Returns:
        ``tensor(0.5, dtype=torch.float32)`` for a one-element tensor, ``a tensor of shape (2, 3) (torch.float32)``
        for others; any other value's ``repr``, shortened when over 60 characters.
    """
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

    Args:
        name: the argument's name, for the message.
        value: the value to check.
        minimum: the smallest value allowed (``None``: no lower bound).
        maximum: the largest value allowed (``None``: no upper bound).
        hint: what to pass instead, appended to the message.

    Returns:
        ``value`` as an ``int``.

    Raises:
        InputError: ``value`` is not an integer (a bool, a float with a fractional part ...) or lies outside the bounds.
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

    Args:
        name: the argument's name, for the message.
        value: the value to check.
        positive: whether 0 and negative numbers are refused.
        example: a good value shown in the message, e.g. ``"1e-3"``.
        hint: what to pass instead, appended to the message.

    Returns:
        ``value`` as a ``float``.

    Raises:
        InputError: ``value`` is not a real number, is NaN or infinite, or is not positive when ``positive=True``.
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
    are refused.

    Args:
        name: the argument's name, for the message.
        value: the value to check.

    Returns:
        ``value`` as a Python ``bool``.

    Raises:
        InputError: ``value`` is not a bool.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype == torch.bool:
        return bool(value.item())
    raise InputError(f"{name} must be True or False; got {describe(value)}")


def check_choice(name: str, value: Any, choices: Iterable[str], hint: str = "") -> str:
    """``value`` if it is one of ``choices`` (strings), else an error listing them.

    Args:
        name: what is chosen, for the message (``"unknown solver 'x'"``).
        value: the value to check.
        choices: the allowed strings.
        hint: what to pass instead, appended to the message.

    Returns:
        ``value`` unchanged.

    Raises:
        InputError: ``value`` is not one of ``choices``.
    """
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"unknown {name} {describe(value)}: choose one of {', '.join(choices)}{_fix(hint)}")
    return value


def check_callable(name: str, value: Any, what: str) -> Any:
    """``value`` if it is callable.

    Args:
        name: the argument's name, for the message.
        value: the value to check.
        what: what kind of callable was expected, e.g. ``"a function of no arguments"``.

    Returns:
        ``value`` unchanged.

    Raises:
        InputError: ``value`` is not callable.
    """
    if not callable(value):
        raise InputError(f"{name} must be {what}; got {describe(value)}")
    return value


def check_keywords(function: str, given: Iterable[str], accepted: Sequence[str], *,
                   fixes: Mapping[str, str] | None = None, accepts: str | None = None) -> None:
    """Refuse keyword arguments ``function`` does not take, naming them and what it takes instead.

    Args:
        function: the function's name as the learner called it, e.g. ``"train"``.
        given: the names of the keyword arguments received (e.g. a ``**kwargs`` dict).
        accepted: the names it takes.
        fixes: advice for names a learner is likely to try (``{"optimizer": "train uses Adam ..."}``); each
            unknown name with advice gets it instead of the list of accepted names.
        accepts: the list of what it takes, in words (``None``: ``"it accepts "`` and the names of ``accepted``).

    Raises:
        InputError: a name of ``given`` is not in ``accepted``.
    """
    unknown = sorted(str(name) for name in given if name not in accepted)
    if not unknown:
        return
    advice = [fixes[name] for name in unknown if fixes and name in fixes]
    fix = "; ".join(advice) if advice else (accepts or f"it accepts {', '.join(accepted) or 'no settings'}")
    raise InputError(f"{function} does not take {', '.join(unknown)}: {fix}")


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
    """``value`` if it is a ``torch.nn.Module``.

    Args:
        name: the argument's name, for the message.
        value: the value to check.
        what: which network was expected, e.g. ``"the network f of du/dt = f(u)"``.
        hint: what to pass instead, appended to the message.

    Returns:
        ``value`` unchanged.

    Raises:
        InputError: ``value`` is not an ``nn.Module``.
    """
    if not isinstance(value, torch.nn.Module):
        raise InputError(f"{name} must be {what} (a torch.nn.Module); got {describe(value)}{_fix(hint)}")
    return value


def check_index(name: str, value: Any, length: int, what: str) -> int:
    """``value`` as an index into ``length`` items (negative indices count from the end, as in Python).

    Args:
        name: the argument's name, for the message.
        value: the index to check.
        length: how many items there are.
        what: what the items are, for the message, e.g. ``"images"``.

    Returns:
        ``value`` as an ``int`` (a negative index stays negative).

    Raises:
        InputError: ``value`` is not an integer, or lies outside ``-length .. length - 1``.
    """
    value = check_int(name, value)
    if not -length <= value < length:
        raise InputError(f"{name}={value} is out of range for {length} {what}: pass an index from 0 to {length - 1} "
                         f"(or from -{length} to -1, counting from the end; -1 is the last)")
    return value


MAX_THREADS = 1024


def check_threads(value: Any, source: str = "threads", warn: bool = True) -> int:
    """A thread count for ``torch.set_num_threads``: a positive integer up to :data:`MAX_THREADS`.

    More threads than CPU cores work but slow a small model down many times, so they get a
    :class:`~nodeutils.errors.NodeUtilsWarning`.

    Args:
        value: the count, an integer or a string holding one (as read from an environment variable).
        source: where it came from, for the message (``"--threads"``, ``"OMP_NUM_THREADS"``).
        warn: whether to warn about more threads than CPU cores.

    Returns:
        The count as an ``int``.

    Raises:
        InputError: ``value`` is not an integer from 1 to :data:`MAX_THREADS`.
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
    """A folder path with ``~`` expanded; empty strings and non-paths are refused.

    Args:
        name: the argument's name, for the message.
        value: a string or ``os.PathLike``.

    Returns:
        The folder as a ``pathlib.Path`` (it need not exist).

    Raises:
        InputError: ``value`` is not a string or path, or is empty.
    """
    if not isinstance(value, (str, os.PathLike)):
        raise InputError(f"{name} must be a folder path (a string or pathlib.Path); got {describe(value)}")
    text = os.fspath(value)
    if isinstance(text, bytes) or not text.strip():
        raise InputError(f"{name} is empty: give a folder, e.g. data, or leave it out for the default")
    return Path(text).expanduser()
