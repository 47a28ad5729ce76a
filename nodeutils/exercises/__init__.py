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
import linecache
import textwrap
import types
from collections.abc import Callable
from typing import Any

import torch

from ..checks import check_callable, check_choice, check_int, describe
from ..errors import InputError
from .placeholder import ____, _returning_checked, names_placeholder
from .verdicts import (
    Correct,
    NotYet,
    _check_text,
    _describe_error,
    _isolated_random_state,
    _placeholder_involved,
    all_close,
    as_number,
    same_values,
    shape_problem,
    tensors_like,
)

__all__ = ["____", "Correct", "Exercise", "NotYet", "all_close", "as_number", "exercises_of", "names_placeholder",
           "same_values", "shape_problem", "tensors_like"]


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
