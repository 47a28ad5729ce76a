"""How a Neural ODE layer calls its network, and with which tensors.

Three routes are told apart. A direct call ``model(u)`` with the module's own registered parameters;
a direct call after other tensors were put into the module's parameter slots for the call (views of a
flat parameter vector during the forward solve, or the detached copies an adjoint differentiates on
its backward pass); and a call through ``torch.func.functional_call``, which runs the module with the
tensors it is given (a stateful layer's explicit parameters and state). :func:`count_network_calls`
watches the network with a forward pre-hook: it looks for ``functional_call`` on the call stack, and
otherwise compares the tensors in the parameter slots with the module's own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["NetworkCalls", "count_network_calls", "parameters_for_solver", "right_hand_side"]

_FUNCTIONAL_CALL = "_functional_call"  # torch.nn.utils.stateless._functional_call, behind torch.func.functional_call


@dataclass
class NetworkCalls:
    """Calls of the network during one forward pass and the backward pass after it, by route.

    ``own``: a direct call with the module's own parameters; ``slots``: a direct call with other tensors
    put into its parameter slots; ``functional``: a call through ``functional_call``.
    """

    forward_own: int = 0
    forward_slots: int = 0
    forward_functional: int = 0
    backward_own: int = 0
    backward_slots: int = 0
    backward_functional: int = 0


def _through_functional_call() -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == _FUNCTIONAL_CALL and code.co_filename.replace("\\", "/").endswith("nn/utils/stateless.py"):
            return True
        frame = frame.f_back
    return False


def count_network_calls(model: nn.Module, network: nn.Module, x: torch.Tensor) -> NetworkCalls:
    """Run ``model(x).sum().backward()`` and count how ``network`` (a submodule) was called in each pass."""
    if not any(m is network for m in model.modules()):
        raise ValueError("network must be a submodule of model (e.g. model.ode.model)")
    calls = NetworkCalls()
    phase = ["forward"]
    own = dict(network.named_parameters())

    def hook(module: nn.Module, args: tuple) -> None:
        if _through_functional_call():
            kind = "functional"
        else:
            current = dict(module.named_parameters())
            kind = "own" if current.keys() == own.keys() and all(current[n] is p for n, p in own.items()) else "slots"
        name = f"{phase[0]}_{kind}"
        setattr(calls, name, getattr(calls, name) + 1)

    handle = network.register_forward_pre_hook(hook)
    try:
        model.zero_grad(set_to_none=True)
        out = model(x)
        phase[0] = "backward"
        out.sum().backward()
    finally:
        handle.remove()
    return calls


def _ode_layer(layer: nn.Module) -> nn.Module:
    layer = getattr(layer, "ode", layer)  # a model from create_model, or its ODE layer
    if not hasattr(layer, "settings") or not hasattr(layer, "model"):
        raise ValueError(f"expected a Neural ODE layer (or a model from create_model); got {type(layer).__name__}")
    return layer


def parameters_for_solver(layer: nn.Module) -> Any:
    """What the layer hands the ODE solver as its parameters: one flat vector, or a name -> tensor dict."""
    layer = _ode_layer(layer)
    return layer.settings.solver_parameters(layer.model)[0]


def right_hand_side(layer: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``u -> f(u)`` computed the way the layer's forward solve calls its network (for ``explain``).

    Class-based and compact layers call the network through :class:`~nodeutils.layers.BoundNetwork`
    (bound for the call, as during a solve); the stateful layer through
    :class:`~nodeutils.layers.StatefulModel`, with its parameters as a dict.
    """
    from .layers import BoundNetwork, StatefulModel, StatefulNeuralODE

    layer = _ode_layer(layer)
    params, as_dict = layer.settings.solver_parameters(layer.model)
    if isinstance(layer, StatefulNeuralODE):
        stateful, named = StatefulModel(layer.model, state=dict(layer.state)), as_dict(params)
        return lambda u: stateful(u, named)
    bound = BoundNetwork(layer.model, params, as_dict)

    def rhs(u: torch.Tensor) -> torch.Tensor:
        with bound:
            return bound(u, params)

    return rhs
