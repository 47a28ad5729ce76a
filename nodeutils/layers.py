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

from .checks import check_call_signature, check_keywords, check_module, check_state, describe
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

    Raises:
        InputError: ``solution`` is not a tensor with a time dimension.
    """
    if not isinstance(solution, torch.Tensor) or solution.ndim < 1:
        raise InputError(f"last_state needs the states at the saved times, shaped (time, batch, ...), as an ODE layer "
                         f"returns them; got {describe(solution)}")
    return solution[-1]


class LastState(nn.Module):
    """:func:`last_state` as a layer, for use inside ``nn.Sequential``."""

    def forward(self, solution: torch.Tensor) -> torch.Tensor:
        """Keep the final state.

        Args:
            solution: the states at the saved times, shaped (time, batch, ...).

        Returns:
            ``solution[-1]``, shaped (batch, ...).
        """
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
        """Function-evaluation counts of the latest solve (and of its backward pass)."""
        return self.settings.stats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Solve from u(t0) = x, in the network's dtype.

        Args:
            x: the initial state, shaped (batch, features).

        Returns:
            The states at the times of ``tspan`` in ``x``'s dtype, shaped (len(tspan), batch, features).

        Raises:
            InputError: ``x`` does not fit the solve (e.g. an empty batch, or on another device than the network).
            SolverError: the solve failed (non-finite state, too many steps, step size underflow).
        """
        # solved in the network's dtype (float64 in create_model's model), returned in the input's
        return self.settings.solve_network(self.model, x)

    def extra_repr(self) -> str:
        """Extra text for ``print(layer)``.

        Returns:
            The solver settings, e.g. ``solver='tsit5', tspan=(0.0, 1.0), rtol=0.001, atol=0.001, sensealg=...``.
        """
        return repr(self.settings)


class CompactLayer(nn.Module):
    """A layer made by :func:`compact`: ``forward(x)`` calls ``fn(self, x)``.

    Args:
        fn: the layer's forward function, ``fn(layer, x)``.
        values: name -> submodule or setting, set as attributes of the layer.
    """

    def __init__(self, fn: Callable[..., Any], values: dict[str, Any]) -> None:
        super().__init__()
        self._fn = fn
        for name, value in values.items():
            setattr(self, name, value)  # modules are registered as submodules, the rest stay attributes

    def forward(self, x: torch.Tensor) -> Any:
        """Call ``fn(self, x)``.

        Args:
            x: the layer's input.

        Returns:
            What ``fn`` returns.
        """
        return self._fn(self, x)

    @property
    def stats(self) -> SolveStats:
        """Counts of the latest solve, when the layer has ODE ``settings``."""
        return self.settings.stats

    def extra_repr(self) -> str:
        """Extra text for ``print(layer)``.

        Returns:
            ``fn='...'``, the name of the layer's function.
        """
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
        InputError: ``fn`` is not a function of two arguments (the layer and its input).
    """
    check_call_signature("fn", fn, 2, "a function fn(layer, x) of the layer and its input")
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
        InputError: ``model`` is not an ``nn.Module``, or ``params`` / ``state`` is not a dict of the names of its
            parameters / buffers.
    """

    def __init__(self, model: nn.Module, params: dict[str, torch.Tensor] | None = None,
                 state: dict[str, torch.Tensor] | None = None) -> None:
        self.model = check_module("model", model, "the network to call with explicit parameters", _NETWORK_HINT)
        self._parameter_names = {n for n, _ in model.named_parameters()}
        self.params = dict(model.named_parameters()) if params is None else self._checked_params(params)
        buffers = [n for n, _ in model.named_buffers()]
        if state is not None and not (isinstance(state, dict) and state.keys() <= set(buffers)):
            names = ", ".join(buffers) or "it has none"
            raise InputError(f"state must be a dict of the model's buffers by name ({names}); got {describe(state)}")
        self.state = {n: b.clone() for n, b in model.named_buffers()} if state is None else dict(state)

    def _checked_params(self, params: object) -> dict[str, torch.Tensor]:
        """``params`` if it is a dict naming only parameters of the model (a misspelt name would be ignored)."""
        if not isinstance(params, dict):
            raise InputError(f"params must be a dict of parameter name -> tensor, like dict(model.named_parameters())"
                             f"; got {describe(params)}")
        if not params.keys() <= self._parameter_names:
            unknown = sorted(set(params) - self._parameter_names)
            raise InputError(f"params names {', '.join(map(repr, unknown))}, which the model does not have: its "
                             f"parameters are {', '.join(sorted(self._parameter_names))}")
        return dict(params)

    def __call__(self, x: torch.Tensor, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Apply the network to ``x`` with explicit parameters and the current state; keep the updated state.

        Args:
            x: the network's input.
            params: name -> tensor for this call (default: ``self.params``); a parameter it does not name is the
                module's own.

        Returns:
            The network's output.

        Raises:
            InputError: ``params`` is not a dict, or names a parameter the model does not have.
        """
        if params is not None and not (isinstance(params, dict) and params.keys() <= self._parameter_names):
            self._checked_params(params)  # raises, naming what is wrong
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
        """Solve from u(t0) = x, in the network's dtype, and keep the updated buffers in ``self.state``.

        Args:
            x: the initial state, shaped (batch, features).

        Returns:
            The states at the times of ``tspan`` in ``x``'s dtype, shaped (len(tspan), batch, features).

        Raises:
            InputError: ``x`` is not a float tensor, or does not fit the solve (an empty batch, another device).
            SolverError: the solve failed (non-finite state, too many steps, step size underflow).
        """
        check_state(x, name="the input of the ODE layer")
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
    """Build one of the three layer styles by name.

    Args:
        layer: ``"class"``, ``"compact"`` or ``"stateful"`` (the keys of ``LAYERS``).
        model: the network f of du/dt = f(u), an ``nn.Module``.
        **kwargs: the layer's settings (``solver``, ``tspan``, ``sensealg``, ``rtol`` ...), as for
            :class:`NeuralODE`.

    Returns:
        The layer.

    Raises:
        InputError: an unknown ``layer``, or a bad setting.
    """
    if not isinstance(layer, str) or layer not in LAYERS:
        raise InputError(f"unknown layer {layer!r}: choose one of {', '.join(LAYERS)}")
    settings = ("solver", "tspan", "sensealg", "rtol", "atol", "flat_params", "options")
    check_keywords("make_ode_layer", kwargs, settings, accepts=f"the layers' settings are {', '.join(settings)}")
    return LAYERS[layer](model, **kwargs)
