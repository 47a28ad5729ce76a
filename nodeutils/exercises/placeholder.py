"""The placeholder ``____`` of an exercise cell, and how an answer is searched for it.

An answer still holding ``____`` (in its body, a nested function, a default, a closure, a returned value) is
*not answered yet*, never wrong.
"""


import functools
import types
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import NodeUtilsError

__all__ = ["____", "names_placeholder"]

_PLACEHOLDER_NAME = "____"


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

