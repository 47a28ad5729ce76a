"""Neural ODE layers in three styles, mirroring the tutorial's three Lux definitions.

``NeuralODE`` (class-based)
    An ``nn.Module`` that owns the inner network, like Lux's wrapper layer: its parameters *are*
    the inner network's. The tutorial flattens the state to a vector for the solver (``vec``) and
    reshapes it for the network at every call; torchdiffeq solves for a tensor of any shape, so here
    the state keeps its (batch, features) shape and the solver measures errors over all its entries alike.
``compact`` + ``NeuralODECompact`` (function-defined)
    Lux's ``@compact`` writes a layer as a function of ``(x, p)`` whose submodules are declared inline.
    Python has no macros, so :func:`compact` takes the function and the submodules as keyword
    arguments and returns a ready ``nn.Module``. Differences from Lux: submodules are registered
    eagerly (there is no separate ``setup``), values that are not modules become plain attributes
    (not part of the state), and the function receives the layer itself rather than ``p``.
``StatefulNeuralODE`` (explicit parameters and state)
    Lux layers are pure: ``layer(x, ps, st) -> (y, st')``. ``StatefulLuxLayer`` bundles ``ps`` and
    ``st`` so a closure can call ``model(u, p)`` while the state is updated in place, without boxing.
    PyTorch's counterpart is :class:`StatefulModel`: explicit parameter and buffer dictionaries
    applied with ``torch.func.functional_call``, with updated buffers written back to ``.state``.
    In PyTorch the module normally holds both; here they are passed in, as in Lux.

All three compute the same function for the same weights (tested).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from .checks import check_module
from .errors import InputError
from .layer_solve import ODESettings, solve_dtype
from .sensitivity import SensitivityAlgorithm, SolveStats

__all__ = [
    "NeuralODE",
    "NeuralODECompact",
    "StatefulNeuralODE",
    "StatefulModel",
    "CompactLayer",
    "compact",
    "last_state",
    "LastState",
    "LAYERS",
    "make_ode_layer",
]


_NETWORK = "the network f of du/dt = f(u)"
_NETWORK_HINT = "e.g. nn.Sequential(nn.Linear(20, 20), nn.Tanh()), or ode_dynamics() from nodeutils.models"


def last_state(solution: torch.Tensor) -> torch.Tensor:
    """Keep the final saved state of a solution shaped (time, batch, ...) (``diffeqsol_to_array``).

    Args:
        solution: the states at the saved times, shaped (time, batch, ...).

    Returns:
        ``solution[-1]``, shaped (batch, ...).
    """
    return solution[-1]


class LastState(nn.Module):
    """:func:`last_state` as a layer, for use inside ``nn.Sequential``."""

    def forward(self, solution: torch.Tensor) -> torch.Tensor:
        return last_state(solution)


class NeuralODE(nn.Module):
    """Class-based Neural ODE layer: solve du/dt = model(u) over ``tspan`` from u(t0) = x.

    Returns the states at the two ends of ``tspan`` stacked along a new first dimension; use
    :func:`last_state` to keep the final one. ``sensealg`` chooses how gradients are computed.

    Args:
        model: the network f of du/dt = f(u), an ``nn.Module``.
        solver: the ODE solver's name.
        tspan: the start and end times.
        sensealg: the sensitivity algorithm, an object or a name (``None``: backprop through the solver).
        rtol: relative tolerance of the solve.
        atol: absolute tolerance of the solve.
        flat_params: whether the solver gets the parameters as one flat vector rather than a dict.
        options: solver options, as torchdiffeq takes them.

    Raises:
        InputError: ``model`` is not an ``nn.Module``, or a bad solver setting.
    """

    def __init__(self, model: nn.Module, solver: str = "tsit5", tspan: Sequence[float] = (0.0, 1.0), *,
                 sensealg: SensitivityAlgorithm | str | None = None, rtol: float = 1e-3, atol: float = 1e-3,
                 flat_params: bool = False, options: dict | None = None) -> None:
        super().__init__()
        self.model = check_module("model", model, _NETWORK, _NETWORK_HINT)
        self.settings = ODESettings(solver, tspan, sensealg, rtol, atol, flat_params, options)

    @property
    def stats(self) -> SolveStats:
        return self.settings.stats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # solved in the network's dtype (float64 in create_model's model), returned in the input's
        return self.settings.solve_network(self.model, x)

    def extra_repr(self) -> str:
        return repr(self.settings)


class CompactLayer(nn.Module):
    """A layer made by :func:`compact`: ``forward(x)`` calls ``fn(self, x)``."""

    def __init__(self, fn: Callable[..., Any], values: dict[str, Any]) -> None:
        super().__init__()
        self._fn = fn
        for name, value in values.items():
            setattr(self, name, value)  # modules are registered as submodules, the rest stay attributes

    def forward(self, x: torch.Tensor) -> Any:
        return self._fn(self, x)

    @property
    def stats(self) -> SolveStats:
        """Counts of the latest solve, when the layer has ODE ``settings``."""
        return self.settings.stats

    def extra_repr(self) -> str:
        return f"fn={getattr(self._fn, '__qualname__', self._fn)!r}"


def compact(fn: Callable[..., Any], **values: Any) -> CompactLayer:
    """Make a layer from a function ``fn(layer, x)`` and its named submodules/settings.

    The PyTorch stand-in for Lux's ``@compact(; model, ...) do x, p ... end``. Inside ``fn``, the
    submodules and settings are attributes of ``layer`` (``layer.model``, ``layer.tspan`` ...).

    Args:
        fn: the layer's forward function, ``fn(layer, x)``.
        **values: submodules and settings, set as attributes of the layer.

    Returns:
        The layer, an ``nn.Module``.

    Raises:
        InputError: ``fn`` is not callable.
    """
    if not callable(fn):
        raise InputError(f"compact() needs a function fn(layer, x); got {type(fn).__name__}")
    return CompactLayer(fn, values)


def NeuralODECompact(model: nn.Module, solver: str = "tsit5", tspan: Sequence[float] = (0.0, 1.0), *,
                     sensealg: SensitivityAlgorithm | str | None = None, rtol: float = 1e-3, atol: float = 1e-3,
                     flat_params: bool = False, options: dict | None = None) -> CompactLayer:
    """The Neural ODE written as a compact, function-defined layer (same maths as :class:`NeuralODE`).

    Args:
        model: the network f of du/dt = f(u), an ``nn.Module``.
        solver, tspan, sensealg, rtol, atol, flat_params, options: as for :class:`NeuralODE`.

    Returns:
        The layer, a :class:`CompactLayer`.

    Raises:
        InputError: ``model`` is not an ``nn.Module``, or a bad solver setting.
    """

    def neural_ode(layer: CompactLayer, x: torch.Tensor) -> torch.Tensor:
        # the solver's parameters are those of layer.model: the counterpart of Lux's `p.model`
        return layer.settings.solve_network(layer.model, x)

    check_module("model", model, _NETWORK, _NETWORK_HINT)
    settings = ODESettings(solver, tspan, sensealg, rtol, atol, flat_params, options)
    return compact(neural_ode, model=model, settings=settings)


class StatefulModel:
    """A model with explicit parameters and state, callable as ``model(x, params)``.

    The counterpart of Lux's ``StatefulLuxLayer``: holds ``params`` (a name -> tensor dict) and
    ``state`` (buffers, e.g. running statistics or counters), applies the network with
    ``torch.func.functional_call``, and keeps any buffer the call updated in ``self.state``.

    Args:
        model: the network, an ``nn.Module``.
        params: its parameters by name (default: its own).
        state: its buffers by name (default: copies of its own).

    Raises:
        InputError: ``model`` is not an ``nn.Module``.
    """

    def __init__(self, model: nn.Module, params: dict[str, torch.Tensor] | None = None,
                 state: dict[str, torch.Tensor] | None = None) -> None:
        self.model = check_module("model", model, "the network to call with explicit parameters", _NETWORK_HINT)
        self.params = dict(model.named_parameters()) if params is None else dict(params)
        self.state = {n: b.clone() for n, b in model.named_buffers()} if state is None else dict(state)

    def __call__(self, x: torch.Tensor, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        state = {n: b.clone() for n, b in self.state.items()}
        out = functional_call(self.model, {**(self.params if params is None else params), **state}, (x,),
                              tie_weights=False)
        self.state = state  # buffers updated in place during the call (e.g. BatchNorm's running mean)
        return out


class StatefulNeuralODE(NeuralODE):
    """Neural ODE whose right-hand side is a :class:`StatefulModel` (explicit parameters and state).

    After each call, ``self.state`` holds the inner network's buffers as updated by every
    right-hand-side evaluation of the solve (Lux returns them as ``st``). The state is a snapshot
    kept by the layer: it is not copied back into the module's own buffers.

    Args:
        model: the network f of du/dt = f(u), an ``nn.Module`` (its buffers are the state).
        solver, tspan, sensealg, rtol, atol, flat_params, options: as for :class:`NeuralODE`.

    Raises:
        InputError: ``model`` is not an ``nn.Module``, or a bad solver setting.
    """

    def __init__(self, model: nn.Module, solver: str = "tsit5", tspan: Sequence[float] = (0.0, 1.0), *,
                 sensealg: SensitivityAlgorithm | str | None = None, rtol: float = 1e-3, atol: float = 1e-3,
                 flat_params: bool = False, options: dict | None = None) -> None:
        check_module("model", model, _NETWORK, _NETWORK_HINT)
        super().__init__(model, solver, tspan, sensealg=sensealg, rtol=rtol, atol=atol, flat_params=flat_params,
                         options=options)
        self.state = {n: b.clone() for n, b in model.named_buffers()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        params, as_dict = self.settings.solver_parameters(self.model)
        state = {name: value.to(x.device) for name, value in self.state.items()}  # follows the input's device
        stateful = StatefulModel(self.model, state=state)

        def dudt(t: torch.Tensor, u: torch.Tensor, p: Any) -> torch.Tensor:
            return stateful(u, as_dict(p))

        solution = self.settings.solve(dudt, x.to(solve_dtype(self.model, x)), params)
        self.state = stateful.state
        return solution.to(x.dtype)


LAYERS: dict[str, Callable[..., nn.Module]] = {
    "class": NeuralODE,
    "compact": NeuralODECompact,
    "stateful": StatefulNeuralODE,
}


def make_ode_layer(layer: str, model: nn.Module, **kwargs: Any) -> nn.Module:
    """Build one of the three layer styles by name: ``"class"``, ``"compact"`` or ``"stateful"``."""
    if layer not in LAYERS:
        raise InputError(f"unknown layer {layer!r}: choose one of {', '.join(LAYERS)}")
    return LAYERS[layer](model, **kwargs)
