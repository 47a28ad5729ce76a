"""nodeutils: helpers for learning Neural ODEs on MNIST with PyTorch.

Everything a notebook needs is importable from here::

    from nodeutils import load_mnist, create_model, train, odeint, GaussAdjoint

``import nodeutils`` itself loads nothing else and changes nothing (no environment variables, no
signal handlers): the submodules, PyTorch with them, load at the first name looked up here, all at
once, in the order below. ``python -m nodeutils`` relies on that to install its Ctrl-C handler
before PyTorch loads.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Submodule holding each name exported here, in the order they load (``solvers`` first: it registers
#: ``method="tsit5"`` with torchdiffeq).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "solvers": ("Tsit5Solver",),
    "data": ("load_mnist", "onecold", "onehot"),
    "env": ("pick_device", "versioninfo"),
    "errors": ("DataError", "InputError", "NodeUtilsError", "NonFiniteStateError", "SolverError", "StepLimitError",
               "StepSizeUnderflowError", "TrainingDivergedError"),
    "layers": ("NeuralODE", "NeuralODECompact", "StatefulModel", "StatefulNeuralODE", "compact", "last_state"),
    "models": ("count_parameters", "create_model"),
    "sensitivity": ("AutogradAdjoint", "BacksolveAdjoint", "GaussAdjoint", "InterpolatingAdjoint",
                    "QuadratureAdjoint", "SolveStats", "make_sensealg", "odeint"),
    "training": ("TrainingHistory", "accuracy", "train"),
}

__all__ = [
    "AutogradAdjoint", "BacksolveAdjoint", "DataError", "GaussAdjoint", "InputError", "InterpolatingAdjoint",
    "NeuralODE", "NeuralODECompact", "NodeUtilsError", "NonFiniteStateError", "QuadratureAdjoint", "SolveStats",
    "SolverError", "StatefulModel", "StatefulNeuralODE", "StepLimitError", "StepSizeUnderflowError",
    "TrainingDivergedError", "TrainingHistory", "Tsit5Solver", "accuracy", "compact", "count_parameters",
    "create_model", "last_state", "load_mnist", "make_sensealg", "odeint", "onecold", "onehot", "pick_device",
    "train", "versioninfo", "solvers",
]

if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from . import solvers as solvers
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
    from .layers import NeuralODE, NeuralODECompact, StatefulModel, StatefulNeuralODE, compact, last_state
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


def _load() -> None:
    """Import every submodule listed in ``_EXPORTS`` and bind its names here."""
    for module_name, names in _EXPORTS.items():
        module = importlib.import_module(f".{module_name}", __name__)
        for name in names:
            globals()[name] = getattr(module, name)


def __getattr__(name: str) -> Any:
    if name.startswith("__"):  # e.g. __path__ lookups by tools: not a reason to load PyTorch
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _load()
    if name in globals():
        return globals()[name]
    try:  # a submodule not imported yet, e.g. nodeutils.plots
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
