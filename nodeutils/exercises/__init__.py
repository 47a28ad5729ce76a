"""Exercises in the notebooks: the learner's own code, checked against a reference, with hints on request.

A notebook's exercise cell holds the placeholder ``____``, which the learner replaces with code; the cell then
hands the answer to its exercise::

    from nodeutils.exercises import ____, notebook01 as exercises

    def euler_step(f, u, h):
        return ____            # your code
    exercises.euler_step.check(euler_step)

``check`` prints one line of plain text, the same on every machine: *not answered yet* while ``____`` is still
there, *correct* with one sentence on what the answer shows, *not yet* with a hint aimed at the mistake, or, when
the learner's code raised an exception, its type, message and the learner's line, with a hint. It never raises for
an error in the learner's code, so the rest of the notebook still runs. ``hint()`` prints the exercise's hints one
at a time; ``solution()`` prints the reference solution as code, without running it.

Each notebook's exercises live in ``nodeutils.exercises.notebookNN``; an :class:`Exercise` couples a title, a
*judge* (a function of the answer returning :class:`Correct` or :class:`NotYet`), hints and the solution's text.
Judges build their inputs from a fixed seed; :meth:`Exercise.check` runs them with the global random state of
``torch``, ``numpy`` and ``random`` saved and restored, so checking an answer changes no later number.
"""

from __future__ import annotations

import ast
import functools
import linecache
import os
import random
import re
import sysconfig
import textwrap
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..checks import check_callable, check_choice, check_int, describe
from ..errors import InputError, NodeUtilsError

__all__ = ["____", "Correct", "Exercise", "NotYet", "exercises_of", "names_placeholder", "same_values", "shape_problem"]

_PLACEHOLDER_NAME = "____"
_MESSAGE_LIMIT = 200  # characters of an exception's message shown in a verdict


class _PlaceholderError(NodeUtilsError, TypeError):
    """The placeholder ``____`` was used as a value: the exercise has not been answered yet."""

    def __init__(self) -> None:
        super().__init__("____ is an exercise's placeholder: replace it with your code")


class _Placeholder:
    """The type of ``____``: it stands for code still to be written and refuses to act as a value.

    Arithmetic, comparisons, calls, indexing, attributes, truth tests and torch functions applied to it raise an
    error saying that ``____`` is to be replaced, so an unanswered exercise cannot produce a number.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return _PLACEHOLDER_NAME

    __str__ = __repr__

    def __reduce__(self) -> str:
        return _PLACEHOLDER_NAME  # pickled and copied as the module's one placeholder

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # protocol look-ups (IPython's display, copy, numpy) find nothing, quietly
            raise AttributeError(name)
        raise _PlaceholderError()

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        raise _PlaceholderError()


def _refuse(self: _Placeholder, *args: Any, **kwargs: Any) -> Any:
    raise _PlaceholderError()


for _name in ("add sub mul matmul truediv floordiv mod pow lshift rshift and xor or divmod".split()):
    setattr(_Placeholder, f"__{_name}__", _refuse)
    setattr(_Placeholder, f"__r{_name}__", _refuse)
for _name in ("neg pos abs invert call getitem setitem iter len bool float int index complex round "
              "lt le gt ge array").split():
    setattr(_Placeholder, f"__{_name}__", _refuse)
del _name

____ = _Placeholder()
"""The placeholder in an exercise cell: replace it with your code."""


# --------------------------------------------------------------------------------------------------------------
# What a judge returns
# --------------------------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------------------------
# Tools for judges
# --------------------------------------------------------------------------------------------------------------
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


def _kind(value: Any) -> str:
    if isinstance(value, (int, float, complex, bool)):
        return f"the number {value!r}"
    return f"a {type(value).__name__}"


def _refuse_placeholder(value: Any) -> None:
    if _holds_placeholder(value):
        raise _PlaceholderError()


def _holds_placeholder(value: Any, depth: int = 0) -> bool:
    if value is ____:
        return True
    if depth < 3 and isinstance(value, (tuple, list)):
        return any(_holds_placeholder(v, depth + 1) for v in value)
    if depth < 3 and isinstance(value, dict):
        return any(_holds_placeholder(v, depth + 1) for v in value.values())
    return False


# --------------------------------------------------------------------------------------------------------------
# Finding the placeholder in the learner's code
# --------------------------------------------------------------------------------------------------------------
_FOREIGN_MODULES = ("builtins", "torch", "numpy", "nodeutils", "typing", "abc", "collections", "functools")


def _code_names_placeholder(code: types.CodeType) -> bool:
    if _PLACEHOLDER_NAME in code.co_names:
        return True
    return any(isinstance(c, types.CodeType) and _code_names_placeholder(c) for c in code.co_consts)


def _global_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _global_names(c)


def _is_foreign(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module.split(".")[0] in _FOREIGN_MODULES


def names_placeholder(answer: Any) -> bool:
    """Whether ``answer`` is ``____``, holds it, or is learner code whose source still names it.

    Functions are searched through their nested code (inner functions, lambdas, comprehensions), defaults,
    closures and the functions and classes of the learner's namespace they refer to; classes through their
    methods, properties, nested classes and class attributes; instances of the learner's classes through their
    class; tuples, lists and dicts through their items. Code from torch, numpy and nodeutils is not searched.

    Args:
        answer: What the learner handed to :meth:`Exercise.check`.

    Returns:
        ``True`` if the placeholder is still there.
    """
    return _search(answer, set(), 0)


def _search(obj: Any, seen: set[int], depth: int) -> bool:
    if obj is ____:
        return True
    if id(obj) in seen or depth > 12:
        return False
    seen.add(id(obj))
    if isinstance(obj, (tuple, list)):
        return any(_search(v, seen, depth + 1) for v in obj)
    if isinstance(obj, dict):
        return any(_search(v, seen, depth + 1) for v in obj.values())
    if isinstance(obj, functools.partial):
        return any(_search(v, seen, depth + 1) for v in (obj.func, obj.args, obj.keywords))
    if isinstance(obj, (types.MethodType, staticmethod, classmethod)):
        return _search(obj.__func__, seen, depth + 1)
    if isinstance(obj, property):
        return any(_search(f, seen, depth + 1) for f in (obj.fget, obj.fset, obj.fdel) if f is not None)
    if isinstance(obj, types.FunctionType):
        return _search_function(obj, seen, depth)
    if isinstance(obj, type):
        if _is_foreign(obj):
            return False
        return any(_search(v, seen, depth + 1) for klass in obj.__mro__ if not _is_foreign(klass)
                   for key, v in vars(klass).items() if not (key.startswith("__") and key.endswith("__")
                                                             and not callable(v)))
    if not _is_foreign(type(obj)) and not isinstance(obj, (str, bytes, int, float, complex, bool, type(None))):
        return _search(type(obj), seen, depth + 1)  # an instance of the learner's own class
    return False


def _search_function(fn: types.FunctionType, seen: set[int], depth: int) -> bool:
    if _is_foreign(fn):
        return False
    code = fn.__code__
    if _code_names_placeholder(code):
        return True
    defaults = (fn.__defaults__ or ()) + tuple((fn.__kwdefaults__ or {}).values())
    cells = [c.cell_contents for c in (fn.__closure__ or ()) if _cell_filled(c)]
    if any(_search(v, seen, depth + 1) for v in (*defaults, *cells)):
        return True
    module = fn.__module__
    for name in dict.fromkeys(_global_names(code)):
        target = fn.__globals__.get(name)
        if target is ____:
            return True  # another name for the placeholder
        if isinstance(target, (types.FunctionType, type)) and getattr(target, "__module__", None) == module:
            if _search(target, seen, depth + 1):  # another function the learner wrote beside the answer
                return True
    return False


def _cell_filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:  # an empty cell: the closure's variable is not assigned yet
        return False
    return True


def _returning_checked(fn: Callable) -> Callable:
    """``fn`` wrapped so that returning the placeholder (or a tuple holding it) counts as unanswered."""

    @functools.wraps(fn)
    def answer(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        _refuse_placeholder(result)
        return result

    return answer


# --------------------------------------------------------------------------------------------------------------
# Reporting an exception from the learner's code
# --------------------------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------------------------
# The exercise
# --------------------------------------------------------------------------------------------------------------
_EXPECTS = ("function", "class", "value")


class Exercise:
    """One exercise of a notebook: a title, a judge, hints and the reference solution.

    Args:
        number: The exercise's number in its notebook (1, 2, ...), shown in every line it prints.
        title: A few words naming the task, e.g. ``"one Euler step as a residual block"``.
        judge: A function of the learner's answer returning :class:`Correct` or :class:`NotYet`. It builds small
            seeded inputs, runs the answer, compares with the reference and recognises typical mistakes. Errors
            raised by the learner's code may simply propagate: :meth:`check` reports them.
        hints: One or more hints, from a gentle nudge to a concrete step (never the whole solution).
        solution: The reference solution as source code; it defines the answer under the name the learner uses.
        name: The attribute name of the exercise in its module, used in the printed advice
            (``exercises.<name>.hint()``); by default the last name the solution defines.
        expects: What :meth:`check` accepts: ``"function"`` (any callable; the default), ``"class"`` (a class
            itself, not an instance) or ``"value"`` (anything, e.g. a tensor).

    Raises:
        InputError: if an argument has the wrong type or value, e.g. ``hints`` given as one string, or a
            solution that is not valid Python or defines no name.
    """

    def __init__(self, *, number: int, title: str, judge: Callable[[Any], Correct | NotYet],
                 hints: tuple[str, ...], solution: str, name: str | None = None, expects: str = "function") -> None:
        self.number = check_int("Exercise(number)", number, minimum=1)
        self.title = _check_text("Exercise(title)", title).strip()
        self.judge = check_callable("Exercise(judge)", judge, "a function of the answer returning Correct or NotYet")
        if isinstance(hints, str):
            raise InputError('Exercise(hints) must be a tuple of strings, not one string: write hints=("...",)')
        if not isinstance(hints, (tuple, list)) or not hints:
            raise InputError(f"Exercise(hints) must be a non-empty tuple of strings; got {describe(hints)}")
        self.hints = tuple(_check_text(f"Exercise(hints[{i}])", h).strip() for i, h in enumerate(hints))
        self.solution_text = textwrap.dedent(_check_text("Exercise(solution)", solution)).strip("\n") + "\n"
        defined = _defined_names(self.solution_text, self.number)
        if name is None:
            name = defined[-1]
        if not isinstance(name, str) or not name.isidentifier():
            raise InputError(f"Exercise(name) must be a Python name such as 'euler_step'; got {describe(name)}")
        self.name = name
        self.expects = check_choice("Exercise(expects)", expects, _EXPECTS)
        self._next_hint = 0

    def __repr__(self) -> str:
        return f"Exercise({self.number}, {self.title!r})"

    @property
    def _prefix(self) -> str:
        return f"Exercise {self.number} · {self.title}"

    # ---- the learner's side ------------------------------------------------------------------------------
    def check(self, answer: Any) -> None:
        """Check the learner's answer and print one line: not answered yet, correct, not yet, or an error.

        Args:
            answer: The learner's function, class or value (the exercise cell's own definition).

        Raises:
            InputError: if the answer is not the kind of thing this exercise checks (e.g. the result of calling
                the function, or its name in quotes, instead of the function itself). Errors in the learner's
                code are reported in the printed line, never raised.
        """
        print(self.verdict(answer))

    def verdict(self, answer: Any) -> str:
        """The line :meth:`check` prints for ``answer``, as a string (the judge runs the same way).

        Args:
            answer: The learner's function, class or value.

        Returns:
            One line of text, the same on every machine.

        Raises:
            InputError: as for :meth:`check`, or if the judge returns something other than Correct or NotYet.
        """
        if names_placeholder(answer):
            return self._unanswered()
        self._check_kind(answer)
        if self.expects == "function" and not isinstance(answer, type):
            answer = _returning_checked(answer)
        try:
            with _isolated_random_state():
                result = self.judge(answer)
        except Exception as error:  # the learner's code raised: report it in a few lines, never a traceback
            if _placeholder_involved(error):
                return self._unanswered()
            return f"{self._prefix}: {_describe_error(error, self.judge)}. {self.hints[0]}"
        if isinstance(result, Correct):
            return f"{self._prefix}: correct. {result.message}"
        if isinstance(result, NotYet):
            if result.error is not None:
                return f"{self._prefix}: {_describe_error(result.error, self.judge)}. {result.message}"
            return f"{self._prefix}: not yet. {result.message}"
        raise InputError(f"the judge of exercise {self.number} returned {describe(result)}; it must return "
                         "Correct(...) or NotYet(...)")

    def hint(self, number: int | None = None) -> None:
        """Print the next hint (the first after the last, in turn), or hint ``number``.

        Args:
            number: Which hint to print (1 for the first); by default the one after the hint printed last.

        Raises:
            InputError: if ``number`` is not one of the hints' numbers.
        """
        if number is None:
            index = self._next_hint
        else:
            index = check_int("hint(number)", number, minimum=1, maximum=len(self.hints),
                              hint=f"exercise {self.number} has {len(self.hints)} hint(s)") - 1
        self._next_hint = (index + 1) % len(self.hints)
        print(f"{self._prefix}, hint {index + 1} of {len(self.hints)}: {self.hints[index]}")

    def solution(self) -> None:
        """Print the reference solution as code (it is not run): a comment line naming the exercise, then the code."""
        print(f"# {self._prefix}: reference solution\n{self.solution_text}", end="")

    # ---- the author's side -------------------------------------------------------------------------------
    def solution_answer(self) -> Any:
        """Run the reference solution and return what it defines under the exercise's name.

        The solution runs in a fresh namespace holding ``torch``, ``nn`` (``torch.nn``), ``F``
        (``torch.nn.functional``) and ``nodeutils``, as a notebook's imports provide them.

        Returns:
            The function, class or value the solution defines as :attr:`name` (by default its last name).

        Raises:
            InputError: if the solution does not define :attr:`name`.
        """
        import nodeutils

        filename = f"<exercise {self.number} solution>"
        linecache.cache[filename] = (len(self.solution_text), None, self.solution_text.splitlines(True), filename)
        namespace: dict[str, Any] = {"__name__": f"exercise_{self.number}_solution", "torch": torch,
                                     "nn": torch.nn, "F": torch.nn.functional, "nodeutils": nodeutils}
        exec(compile(self.solution_text, filename, "exec"), namespace)
        if self.name not in namespace:
            raise InputError(f"the solution of exercise {self.number} does not define {self.name!r}; it defines "
                             f"{', '.join(_defined_names(self.solution_text, self.number))}")
        return namespace[self.name]

    def _unanswered(self) -> str:
        return (f"{self._prefix}: not answered yet. Replace ____ with your code and run the cell again "
                f"(exercises.{self.name}.hint() for a hint).")

    def _check_kind(self, answer: Any) -> None:
        call = f"exercises.{self.name}.check({self.name})"
        if isinstance(answer, str) and self.expects != "value":
            raise InputError(f"check() takes your {self.expects} itself, not its name in quotes: write {call}")
        if self.expects == "function" and not callable(answer):
            raise InputError(f"check() takes your function itself, not the result of calling it; got "
                             f"{describe(answer)}: write {call}")
        if self.expects == "class" and not isinstance(answer, type):
            raise InputError(f"check() takes your class itself, not an instance of it; got {describe(answer)}: "
                             f"write {call}")


def _defined_names(source: str, number: int) -> list[str]:
    """The names a solution's top-level statements define, in order (functions, classes, assignments)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise InputError(f"the solution of exercise {number} is not valid Python: {error.msg} "
                         f"(line {error.lineno})") from None
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.extend(t.id for t in targets if isinstance(t, ast.Name))
    if not names:
        raise InputError(f"the solution of exercise {number} defines no name: it must define the answer, e.g. "
                         "def euler_step(f, u, h): ...")
    return names


def exercises_of(module: types.ModuleType) -> list[Exercise]:
    """The exercises a ``notebookNN`` module defines, in the order of their numbers.

    Args:
        module: A module such as ``nodeutils.exercises.notebook01``.

    Returns:
        Its :class:`Exercise` attributes, sorted by number.
    """
    found = {id(v): v for v in vars(module).values() if isinstance(v, Exercise)}
    return sorted(found.values(), key=lambda e: e.number)
