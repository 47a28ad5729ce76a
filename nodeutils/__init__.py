"""nodeutils: helpers for learning Neural ODEs on MNIST with PyTorch.

Everything a notebook needs is importable from here::

    from nodeutils import load_mnist, create_model, train, odeint, GaussAdjoint
"""

from __future__ import annotations

import sys as _sys

if _sys.argv[:1] == ["-m"]:  # being loaded by `python -m nodeutils`: Ctrl-C now prints one line, not a traceback
    from .cli import exit_quietly_on_interrupt

    exit_quietly_on_interrupt()

from . import solvers as solvers  # registers method="tsit5" with torchdiffeq
from .data import load_mnist, onecold, onehot
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
from .layers import (
    NeuralODE,
    NeuralODECompact,
    StatefulModel,
    StatefulNeuralODE,
    compact,
    last_state,
)
from .models import count_parameters, create_model
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
from .solvers import Tsit5Solver
from .training import TrainingHistory, accuracy, train

__version__ = "0.1.0"

__all__ = [
    "AutogradAdjoint", "BacksolveAdjoint", "DataError", "GaussAdjoint", "InputError", "InterpolatingAdjoint",
    "NeuralODE", "NeuralODECompact", "NodeUtilsError", "NonFiniteStateError", "QuadratureAdjoint", "SolveStats",
    "SolverError", "StatefulModel", "StatefulNeuralODE", "StepLimitError", "StepSizeUnderflowError",
    "TrainingDivergedError", "TrainingHistory", "Tsit5Solver", "accuracy", "compact", "count_parameters",
    "create_model", "last_state", "load_mnist", "make_sensealg", "odeint", "onecold", "onehot", "pick_device",
    "train", "versioninfo", "solvers",
]
