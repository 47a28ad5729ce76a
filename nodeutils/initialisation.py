"""Initial weights as Lux.jl gives them to a ``Dense`` layer, for PyTorch's ``nn.Linear``.

Lux and PyTorch both draw a dense layer's weights and bias from uniform distributions U(-b, b) whose
width shrinks with the number of inputs (``fan_in``), but not with the same b:

* Lux ``Dense``: weight bound b = gain * sqrt(3 / fan_in), bias bound b = 1 / sqrt(fan_in);
* PyTorch ``nn.Linear``: weight bound b = 1 / sqrt(fan_in), bias bound b = 1 / sqrt(fan_in).

Lux's gain depends on the layer's activation (``Utils.calculate_gain`` in Lux.jl): 5/3 for ``tanh``,
1 for ``identity`` (no activation) and for most others. So a tanh layer's weights start sqrt(3) * 5/3 = 2.9
times wider in Lux than in PyTorch, and a layer without activation sqrt(3) = 1.7 times wider.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .checks import check_number, describe
from .errors import InputError

__all__ = ["LUX_GAINS", "INITIALISATIONS", "lux_bounds", "lux_dense_init_", "lux_init_"]

#: Lux's gain for the activation that follows a dense layer; activations not listed get 1, as in Lux.
LUX_GAINS: dict[type[nn.Module], float] = {nn.Tanh: 5 / 3, nn.ReLU: 2.0, nn.SELU: 3 / 4}

#: The initialisations :func:`~nodeutils.models.create_model` offers.
INITIALISATIONS = ("lux", "torch")


def lux_bounds(fan_in: int, gain: float) -> tuple[float, float]:
    """The half-widths of Lux's uniform distributions for a dense layer.

    Args:
        fan_in: number of inputs of the layer (``in_features``).
        gain: Lux's gain for the layer's activation (see :data:`LUX_GAINS`; 1 without activation).

    Returns:
        ``(weight_bound, bias_bound)``: weights are drawn from U(-weight_bound, weight_bound), biases
        from U(-bias_bound, bias_bound).
    """
    return gain * math.sqrt(3.0 / fan_in), 1.0 / math.sqrt(fan_in)


def lux_dense_init_(layer: nn.Linear, gain: float = 1.0) -> nn.Linear:
    """Redraw the weight and bias of ``layer`` in place as Lux's ``Dense`` draws them.

    The draws come from PyTorch's random generator (seed it with ``torch.manual_seed``), weight first,
    then bias, on the CPU when the layer is on the CPU.

    Args:
        layer: the ``nn.Linear`` to initialise.
        gain: Lux's gain for the activation after the layer: 5/3 for tanh, 1 for none.

    Returns:
        The same layer, for chaining.

    Raises:
        InputError: if ``layer`` is not an ``nn.Linear`` or ``gain`` is not a positive number.
    """
    if not isinstance(layer, nn.Linear):
        raise InputError(f"lux_dense_init_ takes an nn.Linear layer; got {describe(layer)}")
    gain = check_number("gain", gain, example="5/3 (tanh) or 1 (no activation)")
    weight_bound, bias_bound = lux_bounds(layer.in_features, gain)
    with torch.no_grad():
        layer.weight.uniform_(-weight_bound, weight_bound)
        if layer.bias is not None:
            layer.bias.uniform_(-bias_bound, bias_bound)
    return layer


def lux_init_(module: nn.Module) -> nn.Module:
    """Initialise every ``nn.Linear`` inside ``module`` as Lux would, in the order ``module.modules()`` lists them.

    A linear layer's gain comes from the module that follows it in its ``nn.Sequential`` (an ``nn.Tanh`` gives
    5/3); a linear layer that is last in its ``Sequential``, or not inside one, gets gain 1 (no activation).

    Args:
        module: a model or layer holding ``nn.Linear`` layers.

    Returns:
        The same module, for chaining.

    Raises:
        InputError: if ``module`` is not an ``nn.Module``.
    """
    if not isinstance(module, nn.Module):
        raise InputError(f"lux_init_ takes an nn.Module; got {describe(module)}")
    gains: dict[int, float] = {}
    for parent in module.modules():
        if isinstance(parent, nn.Sequential):
            children = list(parent.children())
            for layer, after in zip(children, children[1:]):
                if isinstance(layer, nn.Linear):
                    gains[id(layer)] = LUX_GAINS.get(type(after), 1.0)
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            lux_dense_init_(layer, gains.get(id(layer), 1.0))
    return module
