"""Exceptions raised by nodeutils.

Every error says what was wrong and what to do about it. They subclass the built-in exception a
Python user would expect (``ValueError`` for bad arguments, ``RuntimeError`` for a solve that went
wrong), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class NodeUtilsError(Exception):
    """Base class of every nodeutils error."""


class InputError(NodeUtilsError, ValueError):
    """An argument has the wrong shape, type or value."""


class SolverError(NodeUtilsError, RuntimeError):
    """An ODE solve could not be completed."""


class NonFiniteStateError(SolverError):
    """The ODE state or its derivative became NaN or infinite during a solve."""


class StepLimitError(SolverError):
    """The adaptive solver needed more steps than allowed."""


class StepSizeUnderflowError(SolverError):
    """The adaptive solver's step size shrank to nothing."""


class DataError(NodeUtilsError, OSError):
    """A data file is missing or corrupt, or a dataset cannot be downloaded."""


class TrainingDivergedError(NodeUtilsError, RuntimeError):
    """The training loss became NaN or infinite."""


class NodeUtilsWarning(UserWarning):
    """A setting that works but probably does not do what was meant (e.g. a tiny test split)."""
