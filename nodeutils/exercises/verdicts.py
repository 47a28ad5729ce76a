"""What a judge returns (:class:`Correct`, :class:`NotYet`), the tools judges compare with, and how an exception
raised by the learner's code is reported (type, message, the learner's line; never a traceback).
"""


import linecache
import os
import random
import re
import sysconfig
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..checks import describe
from ..errors import InputError
from .placeholder import _PlaceholderError, _refuse_placeholder

__all__ = ["Correct", "NotYet", "same_values", "shape_problem", "as_number", "tensors_like", "all_close"]

_MESSAGE_LIMIT = 200  # characters of an exception's message shown in a verdict

@dataclass(frozen=True)
class Correct:
    """A judge's verdict that the answer is right.

    Args:
        message: One sentence on what the correct answer shows (printed after "correct.").
    """

    message: str

    def __post_init__(self) -> None:
        _check_text("Correct(message)", self.message)


@dataclass(frozen=True)
class NotYet:
    """A judge's verdict that the answer is not right yet, with a hint aimed at the mistake.

    Args:
        message: The hint, printed after "not yet.": what looks wrong and which way to go.
        error: The exception the learner's code raised, when the judge caught it to give a hint for that error;
            the verdict then names the exception and the learner's line, as for an error the judge did not catch.
    """

    message: str
    error: BaseException | None = None

    def __post_init__(self) -> None:
        _check_text("NotYet(message)", self.message)
        if self.error is not None and not isinstance(self.error, BaseException):
            raise InputError(f"NotYet(error=...) must be the exception the learner's code raised; got "
                             f"{describe(self.error)}")


def _check_text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name} must be a non-empty string; got {describe(value)}")
    return value


def shape_problem(value: Any, expected: torch.Tensor, *, what: str) -> NotYet | None:
    """A :class:`NotYet` when ``value`` is not a tensor shaped like ``expected``, else ``None``.

    Judges call it on what the learner's code returned, before comparing values, so that a wrong type or a
    broadcast to another shape gets a hint of its own instead of a comparison that fails or broadcasts.

    Args:
        value: What the learner's code returned.
        expected: The reference result (its shape is what ``value`` must have).
        what: How the hint names the learner's result, e.g. ``"euler_step(f, u, h)"``.

    Returns:
        ``None`` if ``value`` is a tensor of ``expected``'s shape, else a :class:`NotYet` saying what came back.

    Raises:
        InputError: if ``expected`` is not a tensor (a mistake in the judge).
    """
    if not isinstance(expected, torch.Tensor):
        raise InputError(f"shape_problem(expected=...) must be the reference tensor; got {describe(expected)}")
    _refuse_placeholder(value)
    shape = tuple(expected.shape)
    if value is None:
        return NotYet(f"{what} returned None: end the function with `return` and the new value.")
    if not isinstance(value, torch.Tensor):
        return NotYet(f"{what} returned {_kind(value)}, not a tensor of shape {shape}: build the result from "
                      f"the input tensors with torch operations.")
    if tuple(value.shape) != shape:
        return NotYet(f"{what} returned a tensor of shape {tuple(value.shape)}, but the result should have shape "
                      f"{shape}: look for an operation that drops, adds or broadcasts a dimension.")
    return None


def same_values(value: Any, expected: torch.Tensor, *, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """Whether ``value`` is a tensor with ``expected``'s shape and, within tolerance, its values (no broadcasting).

    Args:
        value: What the learner's code returned (anything; a non-tensor is never the same).
        expected: The reference result.
        rtol: Relative tolerance, as in :func:`torch.allclose`.
        atol: Absolute tolerance, as in :func:`torch.allclose`.

    Returns:
        ``True`` if ``value`` and ``expected`` have the same shape and ``torch.allclose`` holds between them.
    """
    _refuse_placeholder(value)
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(expected.shape):
        return False
    value = value.detach().to(device=expected.device, dtype=torch.promote_types(value.dtype, expected.dtype))
    return bool(torch.allclose(value, expected.to(value.dtype), rtol=rtol, atol=atol))


def as_number(value: Any) -> float | None:
    """What the learner returned as one number: a Python int or float, or a tensor of one element.

    Args:
        value: What the learner's code returned.

    Returns:
        The number as a ``float``, or ``None`` for anything else (a bool, a longer tensor, a string ...).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach().reshape(()))
    return None


def tensors_like(value: Any, like: Sequence[torch.Tensor], what: str) -> list[torch.Tensor] | NotYet:
    """``value`` as a list of one tensor per parameter of f, each shaped like it, or a verdict saying what is wrong.

    Args:
        value: What the learner's code returned, e.g. the gradients of f's parameters.
        like: f's parameters, in order.
        what: How the hint names the value, e.g. ``"the mu you returned"``.

    Returns:
        ``value`` as a list, or a :class:`NotYet` naming the wrong kind, count or shape.
    """
    if isinstance(value, torch.Tensor) or not isinstance(value, (list, tuple)):
        return NotYet(f"{what} should be a list with one tensor per parameter ({len(like)} here, shaped "
                      f"{', '.join(str(tuple(p.shape)) for p in like)}); got {type(value).__name__}.")
    if len(value) != len(like):
        return NotYet(f"{what} has {len(value)} entries, but f has {len(like)} parameters: one gradient per "
                      "parameter, in the order of params.")
    for i, (v, p) in enumerate(zip(value, like)):
        if (problem := shape_problem(v, p, what=f"{what}[{i}]")) is not None:
            return problem
    return list(value)


def all_close(values: Sequence[torch.Tensor], expected: Sequence[torch.Tensor], rtol: float = 1e-7) -> bool:
    """Whether every tensor of ``values`` matches its counterpart in ``expected``, relative to that one's largest entry.

    Args:
        values: The learner's tensors, already checked by :func:`tensors_like` or :func:`shape_problem`.
        expected: The reference tensors, as many.
        rtol: The tolerance, relative to the largest magnitude in each expected tensor.

    Returns:
        ``True`` if there are as many of each and each pair agrees by :func:`same_values` at that tolerance.
    """
    return len(values) == len(expected) and all(
        same_values(v, e, rtol=rtol, atol=rtol * float(e.detach().abs().max()) + 1e-14)
        for v, e in zip(values, expected))


def _kind(value: Any) -> str:
    if isinstance(value, (int, float, complex, bool)):
        return f"the number {value!r}"
    return f"a {type(value).__name__}"


def _foreign_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.path.dirname(torch.__file__),
            os.path.dirname(np.__file__), paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"]}
    return tuple(os.path.join(os.path.abspath(d), "") for d in dirs if d)


def _nested_codes(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _nested_codes(c)


def _learner_frame(error: BaseException, judge: Callable) -> tuple[int, str] | None:
    """The line number and stripped source line of the innermost traceback frame from the learner's code.

    Frames of nodeutils (the judges included), torch, numpy and the standard library are not the learner's, nor
    are those of the judge's own code wherever it was defined.
    """
    foreign = _foreign_dirs()
    judge_code = getattr(judge, "__code__", None)
    judges = set(_nested_codes(judge_code)) if isinstance(judge_code, types.CodeType) else set()
    found = None
    tb = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        filename = code.co_filename
        own = (code not in judges and not filename.startswith("<frozen")
               and not os.path.abspath(filename).startswith(foreign))
        if own:
            found = (tb.tb_lineno, linecache.getline(filename, tb.tb_lineno, tb.tb_frame.f_globals).strip())
        tb = tb.tb_next
    return found


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+|0x[0-9a-fA-F]{6,}")
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][^\s'\"\\/:,()]+){2,}[\\/]?")


def _clean(text: str) -> str:
    """One line of ``text`` without memory addresses or file paths, cut to a readable length."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    text = _ADDRESS.sub("", text)
    text = _PATH.sub(lambda m: os.path.basename(m.group(0).rstrip("/\\")) or m.group(0), text)
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT - 3].rstrip() + "..."


def _describe_error(error: BaseException, judge: Callable) -> str:
    message = _clean(str(error))
    where = _learner_frame(error, judge)
    head = f"{type(error).__name__}: {message}" if message else type(error).__name__
    if where is None:
        return f"checking your answer raised {head}"
    line, source = where
    return f"your code raised {head} (line {line}{': ' + _clean(source) if source else ''})"


def _placeholder_involved(error: BaseException) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, _PlaceholderError):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


@contextmanager
def _isolated_random_state() -> Iterator[None]:
    """Seed torch, numpy and random for a judge, and restore the caller's states (and grad mode) afterwards."""
    python_state, numpy_state, grad = random.getstate(), np.random.get_state(), torch.is_grad_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        random.seed(0)
        np.random.seed(0)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
            torch.set_grad_enabled(grad)

