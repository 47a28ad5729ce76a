"""nodeutils: helpers for learning Neural ODEs on MNIST with PyTorch.

Everything a notebook needs is importable from here::

    from nodeutils import load_mnist, create_model, train, odeint, GaussAdjoint

Importing the package registers nodeutils' Tsitouras 5(4) solver with torchdiffeq as ``method="tsit5"``
(:mod:`nodeutils.tsit5`); it changes nothing else.
"""

from __future__ import annotations

import sys as _sys

if _sys.argv[:1] == ["-m"]:  # Python is loading the package to run `python -m nodeutils`: Ctrl-C prints one line
    from .cli import exit_quietly_on_interrupt

    exit_quietly_on_interrupt()

from . import tsit5 as tsit5  # registers method="tsit5" with torchdiffeq
from .data import load_mnist
from .env import pick_device, versioninfo
from .errors import (
    DataError,
    InputError,
    NodeUtilsError,
    NonFiniteStateError,
    SolverError,
    StepLimitError,
    StepSizeUnderflowError,
    TrainingDivergedError,
)
from .evaluation import accuracy
from .layers import (
    NeuralODE,
    NeuralODECompact,
    StatefulModel,
    StatefulNeuralODE,
    compact,
    last_state,
)
from .models import create_model
from .sensitivity import (
    AutogradAdjoint,
    BacksolveAdjoint,
    GaussAdjoint,
    InterpolatingAdjoint,
    QuadratureAdjoint,
    SolveStats,
    make_sensealg,
    odeint,
)
from .training import TrainingHistory, train

__version__ = "0.1.0"

__all__ = [
    "AutogradAdjoint", "BacksolveAdjoint", "DataError", "GaussAdjoint", "InputError", "InterpolatingAdjoint",
    "NeuralODE", "NeuralODECompact", "NodeUtilsError", "NonFiniteStateError", "QuadratureAdjoint", "SolveStats",
    "SolverError", "StatefulModel", "StatefulNeuralODE", "StepLimitError", "StepSizeUnderflowError",
    "TrainingDivergedError", "TrainingHistory", "accuracy", "compact", "create_model", "last_state", "load_mnist",
    "make_sensealg", "odeint", "pick_device", "train", "versioninfo",
]
