"""The tutorial's classifier: an encoder, a Neural ODE on a 20-dimensional state, and a decoder."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .env import pick_device
from .errors import InputError
from .layers import LastState, make_ode_layer
from .sensitivity import InterpolatingAdjoint, SensitivityAlgorithm, SolveStats

__all__ = ["ImageCheck", "create_model", "encode", "count_parameters", "ode_dynamics", "ode_stats", "TUTORIAL_SOLVER"]

#: Solver settings of the tutorial: Tsit5 with rtol = atol = 1e-3 over t in [0, 1].
TUTORIAL_SOLVER = {"solver": "tsit5", "tspan": (0.0, 1.0), "rtol": 1e-3, "atol": 1e-3}


class ImageCheck(nn.Module):
    """Pass a batch of images through unchanged after checking its shape and dtype."""

    def __init__(self, shape: tuple[int, ...] = (1, 28, 28)) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise InputError(f"expected a tensor of images shaped (N, {', '.join(map(str, self.shape))}); "
                             f"got {type(x).__name__}")
        if not x.is_floating_point():
            raise InputError(f"expected floating-point images in [0, 1]; got dtype {x.dtype}: use x.float() / 255")
        if tuple(x.shape[1:]) != self.shape:
            hint = " (add the batch dimension with x.unsqueeze(0))" if tuple(x.shape) == self.shape else ""
            hint = hint or (" (add the channel dimension with x.unsqueeze(1))"
                            if tuple(x.shape[1:]) == self.shape[1:] else "")
            raise InputError(f"expected images shaped (N, {', '.join(map(str, self.shape))}); "
                             f"got {tuple(x.shape)}{hint}")
        return x


def ode_dynamics() -> nn.Sequential:
    """The network inside the ODE: 20 -> 10 -> 10 -> 20 with tanh after each layer."""
    return nn.Sequential(nn.Linear(20, 10), nn.Tanh(), nn.Linear(10, 10), nn.Tanh(), nn.Linear(10, 20), nn.Tanh())


def create_model(
    layer: str = "class",
    *,
    device: str | torch.device = "cpu",
    structured_params: bool = False,
    sensealg: SensitivityAlgorithm | str | None = "default",
    seed: int = 0,
    solver: str = TUTORIAL_SOLVER["solver"],
    rtol: float = TUTORIAL_SOLVER["rtol"],
    atol: float = TUTORIAL_SOLVER["atol"],
    tspan: tuple[float, float] = TUTORIAL_SOLVER["tspan"],
    **layer_kwargs: Any,
) -> nn.Sequential:
    """Build the tutorial's model with seeded weights (16,450 parameters).

    Check images -> Flatten -> Linear(784, 20) -> tanh -> Neural ODE over ``tspan`` -> last state ->
    Linear(20, 10). ``layer`` picks the ODE layer style (``"class"``, ``"compact"``, ``"stateful"``);
    ``structured_params=False`` hands the ODE solver one flat parameter vector (the tutorial's
    ComponentArray), ``True`` the parameters in their own shapes (its NamedTuple). ``sensealg``
    defaults to the tutorial's InterpolatingAdjoint with autograd VJPs.
    """
    if sensealg == "default":
        sensealg = InterpolatingAdjoint(autojacvec="autograd")
    torch.manual_seed(seed)
    encoder = nn.Linear(784, 20)
    ode = make_ode_layer(layer, ode_dynamics(), solver=solver, tspan=tspan, rtol=rtol, atol=atol,
                         sensealg=sensealg, flat_params=not structured_params, **layer_kwargs)
    model = nn.Sequential()
    model.add_module("check", ImageCheck())
    model.add_module("flatten", nn.Flatten())
    model.add_module("encoder", encoder)
    model.add_module("encoder_act", nn.Tanh())
    model.add_module("ode", ode)
    model.add_module("last", LastState())
    model.add_module("decoder", nn.Linear(20, 10))
    return model.to(pick_device(device))


def encode(model: nn.Sequential, images: torch.Tensor) -> torch.Tensor:
    """Run the layers before the Neural ODE: the state u(0) the ODE starts from."""
    x = images.to(next(model.parameters()).device)
    for name, layer in model.named_children():
        if name == "ode":
            return x
        x = layer(x)
    raise InputError("the model has no layer named 'ode': build it with create_model")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def ode_stats(model: nn.Module) -> SolveStats:
    """Function-evaluation counts of the model's latest ODE solve."""
    return model.ode.stats
