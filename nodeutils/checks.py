"""Argument checks shared by the public functions: one message style for every bad value.

Each check returns the value (converted where the meaning is unambiguous, e.g. a NumPy integer to
``int``) or raises :class:`~nodeutils.errors.InputError` naming the argument, the value received and
what to pass instead. Booleans are never accepted where a number is expected (``True`` is an
``int`` in Python, but ``epochs=True`` is a mistake).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import torch

from .errors import InputError

__all__ = ["check_int", "check_number", "check_bool", "check_choice", "check_callable", "describe"]


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
    """``value`` as an ``int`` within [minimum, maximum]; floats with a fractional part and bools are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            what = f"an integer, like {int(value)} (not the float {value!r})"
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
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be {what}; got {describe(value)}{_fix(hint)}")
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        raise InputError(f"{name} must be {what}; got {value!r}{_fix(hint)}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (or a NumPy bool); strings such as ``"no"`` are refused."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
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
