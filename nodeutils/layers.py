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
from torch.compiler import is_compiling
from torch.func import functional_call

from .checks import check_bool, check_module
from .errors import InputError
from .sensitivity import SensitivityAlgorithm, SolveStats, make_sensealg, odeint
from .solvers import check_method, check_options, check_time_span, check_tolerances

__all__ = [
    "NeuralODE",
    "NeuralODECompact",
    "StatefulNeuralODE",
    "StatefulModel",
    "CompactLayer",
    "BoundNetwork",
    "ODESettings",
    "compact",
    "last_state",
    "LastState",
    "LAYERS",
    "make_ode_layer",
    "CallCounter",
    "solve_dtype",
]


_NETWORK = "the network f of du/dt = f(u)"
_NETWORK_HINT = "e.g. nn.Sequential(nn.Linear(20, 20), nn.Tanh()), or ode_dynamics() from nodeutils.models"


def solve_dtype(network: nn.Module, x: torch.Tensor) -> torch.dtype:
    """The dtype a Neural ODE layer solves in: its network's (first floating-point parameter or buffer), else x's.

    Args:
        network: the network inside the ODE.
        x: the layer's input.

    Returns:
        ``torch.float64`` for :func:`~nodeutils.models.create_model`'s default network, ``x.dtype`` for a network
        without floating-point tensors.
    """
    for tensor in network.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    for tensor in network.buffers():
        if tensor.is_floating_point():
            return tensor.dtype
    return x.dtype


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


class ODESettings:
    """Solver settings shared by the three layer styles, and the solve they run.

    ``flat_params=True`` hands the solver one flat parameter vector (like a ComponentArray);
    otherwise a dict of the parameters in their own shapes (like a NamedTuple).
    """

    def __init__(self, solver: str = "tsit5", tspan: Sequence[float] = (0.0, 1.0),
                 sensealg: SensitivityAlgorithm | str | None = None, rtol: float = 1e-3, atol: float = 1e-3,
                 flat_params: bool = False, options: dict | None = None) -> None:
        check_tolerances(rtol, atol)
        self.solver = solver
        try:  # float64 from the start, so (0.0, 0.1) stays exactly 0.1
            span = tspan if isinstance(tspan, torch.Tensor) else torch.as_tensor(tspan, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            span = tspan  # not numbers: check_time_span says what is wrong
        self.tspan = tuple(float(x) for x in check_time_span(span).double())
        self.sensealg = make_sensealg(sensealg)
        check_method(solver, need_dense=self.sensealg.uses_dense_output)
        self.rtol, self.atol = float(rtol), float(atol)
        self.flat_params = check_bool("flat_params", flat_params)
        self.options = check_options(solver, options)
        self.stats = SolveStats()  # counts of the latest solve (and of its backward pass)

    def solver_parameters(self, model: nn.Module) -> tuple[Any, Callable[[Any], dict[str, torch.Tensor]]]:
        """The parameters handed to the solver, and the function turning them back into a name -> tensor dict."""
        named = {n: p for n, p in model.named_parameters() if p.requires_grad}
        if not self.flat_params:
            return named, lambda p: p
        names, shapes, sizes = list(named), [p.shape for p in named.values()], [p.numel() for p in named.values()]
        flat = torch.cat([p.reshape(-1) for p in named.values()]) if named else torch.zeros(0)

        def unflatten(vector: torch.Tensor) -> dict[str, torch.Tensor]:
            return {n: v.view(s) for n, v, s in zip(names, torch.split(vector, sizes), shapes)}

        return flat, unflatten

    def solve(self, rhs: Callable, y0: torch.Tensor, params: Any) -> torch.Tensor:
        """Solve du/dt = rhs(t, u, params) from y0 and return the states at both ends of ``tspan``."""
        self.stats = SolveStats()
        t = torch.tensor(self.tspan, dtype=torch.float64, device=y0.device)
        return odeint(rhs, y0, t, method=self.solver, rtol=self.rtol, atol=self.atol, sensealg=self.sensealg,
                      options=self.options, params=params, stats=self.stats)

    def __repr__(self) -> str:
        return (f"solver={self.solver!r}, tspan={self.tspan}, rtol={self.rtol:g}, atol={self.atol:g}, "
                f"sensealg={self.sensealg!r}")


class BoundNetwork:
    """Calls ``model(u)`` with the parameters the solver passes in ``p``.

    While ``p`` holds the very tensors the solve was started with, the network is called directly
    (they are the module's own parameters, or views of the flat vector put into the module between
    :meth:`bind` and :meth:`unbind`). Any other ``p`` (the detached copies an adjoint differentiates on
    the backward pass) is put into the module's parameter slots for the one call and taken out again,
    which is what ``torch.func.functional_call`` does, without its per-call set-up; the views of a flat
    ``p`` are made once per ``p``, not once per call. Under ``torch.compile`` ``functional_call`` itself
    is used. Same numbers, less overhead.
    """

    def __init__(self, model: nn.Module, params: Any, as_dict: Callable[[Any], dict[str, torch.Tensor]]) -> None:
        self.model, self.params, self.as_dict = model, params, as_dict
        self.tensors = as_dict(params)
        own = dict(model.named_parameters())
        self.needs_swap = any(own.get(n) is not v for n, v in self.tensors.items())
        self.active = not self.needs_swap
        self._saved: list[tuple[nn.Module, str, Any]] = []
        self._slots: dict[str, tuple[dict, str]] | None = None  # name -> (owner._parameters, attribute)
        self._views: tuple[Any, ...] | None = None  # (p, grad mode, requires_grad, version, as_dict(p)) of the latest p

    def bind(self) -> BoundNetwork:
        """Put the solver's parameter tensors into the module (when they are not its own already)."""
        if self.needs_swap:
            for name, value in self.tensors.items():
                owner_name, _, attr = name.rpartition(".")
                owner = self.model.get_submodule(owner_name)
                self._saved.append((owner, attr, owner._parameters[attr]))
                owner._parameters[attr] = value
            self.active = True
        return self

    def unbind(self) -> None:
        """Give the module its own parameters back."""
        for owner, attr, old in reversed(self._saved):
            owner._parameters[attr] = old
        self._saved.clear()
        self.active = not self.needs_swap

    def __enter__(self) -> BoundNetwork:
        return self.bind()

    def __exit__(self, *exc: object) -> None:
        self.unbind()

    def _is_bound(self, p: Any) -> bool:
        if p is self.params:
            return True
        if isinstance(p, dict) and isinstance(self.params, dict) and p.keys() == self.params.keys():
            return all(p[k] is v for k, v in self.params.items())
        return False

    def __call__(self, u: torch.Tensor, p: Any) -> torch.Tensor:
        if self.active and self._is_bound(p):
            return self.model(u)
        if is_compiling():
            return functional_call(self.model, self.as_dict(p), (u,), tie_weights=False)
        tensors = self._tensors_of(p)
        slots = self._parameter_slots()
        if not tensors.keys() <= slots.keys():  # not only parameters of the module: the general route
            return functional_call(self.model, tensors, (u,), tie_weights=False)
        saved = []
        try:
            for name, value in tensors.items():
                table, attr = slots[name]
                saved.append((table, attr, table[attr]))
                table[attr] = value
            return self.model(u)
        finally:
            for table, attr, old in reversed(saved):
                table[attr] = old

    def _parameter_slots(self) -> dict[str, tuple[dict, str]]:
        if self._slots is None:
            self._slots = {}
            for name, _ in self.model.named_parameters(remove_duplicate=False):
                owner_name, _, attr = name.rpartition(".")
                self._slots[name] = (self.model.get_submodule(owner_name)._parameters, attr)
        return self._slots

    def _tensors_of(self, p: Any) -> dict[str, torch.Tensor]:
        """``as_dict(p)``; for a plain tensor ``p``, the same views again while p and the grad mode are unchanged."""
        if not isinstance(p, torch.Tensor) or torch._C._functorch.is_functorch_wrapped_tensor(p):
            return self.as_dict(p)
        key = (p, torch.is_grad_enabled(), p.requires_grad, p._version)
        cached = self._views
        if cached is None or cached[0] is not p or cached[1:4] != key[1:]:
            cached = self._views = (*key, self.as_dict(p))
        return cached[4]


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
        params, as_dict = self.settings.solver_parameters(self.model)
        with BoundNetwork(self.model, params, as_dict) as network:

            def dudt(t: torch.Tensor, u: torch.Tensor, p: Any) -> torch.Tensor:
                return network(u, p)  # the state keeps its (batch, features) shape: no reshaping per call

            # solved in the network's dtype (float64 in create_model's model), returned in the input's
            return self.settings.solve(dudt, x.to(solve_dtype(self.model, x)), params).to(x.dtype)

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
        params, as_dict = layer.settings.solver_parameters(layer.model)
        with BoundNetwork(layer.model, params, as_dict) as network:

            def dudt(t: torch.Tensor, u: torch.Tensor, p: Any) -> torch.Tensor:
                return network(u, p)  # p holds the parameters of layer.model: the counterpart of Lux's `p.model`

            return layer.settings.solve(dudt, x.to(solve_dtype(layer.model, x)), params).to(x.dtype)

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


class CallCounter(nn.Module):
    """Identity layer with state: a ``calls`` buffer incremented at every forward call.

    Put it inside an ODE right-hand side to see where each layer style keeps state that changes
    during a solve (notebook 02).
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x
