"""The tutorial's classifier: an encoder, a Neural ODE on a 20-dimensional state, and a decoder."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.compiler import is_compiling

from .checks import check_bool, check_choice, check_int, check_keywords, check_model
from .env import pick_device
from .errors import InputError
from .initialisation import INITIALISATIONS, lux_init_
from .layers import LAYERS, LastState, make_ode_layer
from .sensitivity import SensitivityAlgorithm, SolveStats, make_sensealg

__all__ = ["ImageCheck", "create_model", "encode", "ode_dynamics", "ode_stats", "TUTORIAL_SOLVER"]

#: Solver settings of the tutorial: Tsit5 with rtol = atol = 1e-3 over t in [0, 1].
TUTORIAL_SOLVER = {"solver": "tsit5", "tspan": (0.0, 1.0), "rtol": 1e-3, "atol": 1e-3}


class ImageCheck(nn.Module):
    """Check a batch of images and hand it on in the model's dtype and on its device.

    Accepted: floating-point tensors shaped (N, 1, 28, 28) with values in ``value_range`` (``[0, 1]``, as
    :func:`~nodeutils.data.load_mnist` gives). float64 images (NumPy's default) and images on another
    device are converted to the model's dtype and device, as ``encode`` does. Pixel values 0-255, integer
    images, empty batches and models converted to float16/bfloat16 get an error that says what to do.
    Set ``model.check.value_range = None`` to skip the range check (e.g. for normalised images).

    Args:
        shape: the shape of one image.
        value_range: ``(low, high)``, the pixel values allowed, or ``None`` for any.
    """

    def __init__(self, shape: tuple[int, ...] = (1, 28, 28), value_range: tuple[float, float] | None = (0.0, 1.0)
                 ) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.value_range = value_range
        # Follows model.to(dtype/device): the dtype and device the rest of the model expects (not saved in state_dict).
        self.register_buffer("reference", torch.zeros(0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Check a batch of images and convert it to the model's dtype and device.

        Args:
            x: the images, shaped (N, 1, 28, 28), floating-point values in ``value_range``.

        Returns:
            ``x`` in the model's dtype and on its device.

        Raises:
            InputError: ``x`` is not a floating-point tensor of that shape, is empty, has values outside
                ``value_range``, or the model was converted to float16/bfloat16.
        """
        if not isinstance(x, torch.Tensor):
            fix = ": convert it with torch.as_tensor(x, dtype=torch.float32)" if isinstance(x, np.ndarray) else ""
            raise InputError(f"expected a tensor of images shaped (N, {', '.join(map(str, self.shape))}); "
                             f"got {type(x).__name__}{fix}")
        if not x.is_floating_point():
            scale = " / 255" if x.dtype == torch.uint8 else ""
            raise InputError(f"expected floating-point images in [0, 1]; got dtype {x.dtype}: use x.float(){scale}"
                             + (" (pixel values 0-255 scaled to [0, 1])" if scale else ""))
        if tuple(x.shape[1:]) != self.shape:
            hint = " (add the batch dimension with x.unsqueeze(0))" if tuple(x.shape) == self.shape else ""
            hint = hint or (" (add the channel dimension with x.unsqueeze(1))"
                            if tuple(x.shape[1:]) == self.shape[1:] else "")
            raise InputError(f"expected images shaped (N, {', '.join(map(str, self.shape))}); "
                             f"got {tuple(x.shape)}{hint}")
        if x.shape[0] == 0:
            raise InputError("got an empty batch (0 images): pass at least one image, e.g. x[:1] rather than x[:0]")
        dtype = self.reference.dtype
        if dtype in (torch.float16, torch.bfloat16):
            raise InputError(f"the model was converted to {dtype}, which resolves only 2-3 significant digits: the "
                             "ODE solver's error control cannot work in it. Convert it back with model.float() "
                             "(or model.double())")
        if self.value_range is not None and not is_compiling():
            low, high = self.value_range
            lo, hi = (float(v) for v in torch.aminmax(x.detach()))
            if lo < low - 1e-6 or hi > high + 1e-6:  # NaN compares False: the solver reports NaN inputs itself
                fix = ("divide by 255 (pixel values 0-255 -> [0, 1])" if 1.5 < hi <= 255.5 and lo >= -1e-6
                       else "rescale them to [0, 1], e.g. (x - x.min()) / (x.max() - x.min())")
                raise InputError(
                    f"expected images with values in [{low:g}, {high:g}], as load_mnist gives; got values from "
                    f"{lo:.4g} to {hi:.4g}: {fix}, or set model.check.value_range = None to skip this check"
                )
        return x.to(device=self.reference.device, dtype=dtype)


def ode_dynamics() -> nn.Sequential:
    """The network inside the ODE: 20 -> 10 -> 10 -> 20 with tanh after each layer.

    Returns:
        A new ``nn.Sequential`` in the default dtype, with ``nn.Linear``'s weights drawn from torch's global generator.
    """
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
    init: str = "lux",
    ode_dtype: torch.dtype = torch.float64,
    **layer_kwargs: Any,
) -> nn.Sequential:
    """Build the tutorial's model with seeded weights (16,450 parameters).

    Check images -> Flatten -> Linear(784, 20) -> tanh -> Neural ODE over ``tspan`` -> last state ->
    Linear(20, 10). ``layer`` picks the ODE layer style (``"class"``, ``"compact"``, ``"stateful"``);
    ``structured_params=False`` hands the ODE solver one flat parameter vector (the tutorial's
    ComponentArray), ``True`` the parameters in their own shapes (its NamedTuple). ``sensealg``
    defaults to the tutorial's InterpolatingAdjoint with autograd VJPs. ``init="lux"`` draws every
    linear layer's weights as Lux's ``Dense`` does (see :mod:`nodeutils.initialisation`), ``init="torch"``
    keeps PyTorch's ``nn.Linear`` defaults; either way the draws follow ``seed`` and are made on the CPU,
    so every device gets the same initial weights. ``ode_dtype`` is the dtype of the network inside the ODE,
    and so of the solve (the encoder and decoder stay float32): the default float64 keeps float32 rounding out
    of the solver's step-size decisions, so that a seeded run prints the same numbers on every CPU;
    ``torch.float32`` is the tutorial's all-Float32 model.

    Args:
        layer: the ODE layer style: ``"class"``, ``"compact"`` or ``"stateful"``.
        device: where the model lives.
        structured_params: whether the solver gets the parameters in their own shapes rather than one flat vector.
        sensealg: the sensitivity algorithm, an object or a name.
        seed: seeds the initial weights.
        solver: the ODE solver's name.
        rtol: relative tolerance of the solve.
        atol: absolute tolerance of the solve.
        tspan: the start and end times of the ODE.
        init: ``"lux"`` or ``"torch"``: how the initial weights are drawn.
        ode_dtype: ``torch.float64`` or ``torch.float32``: the dtype of the solve.
        **layer_kwargs: ``options`` for the solver.

    Returns:
        The model, an ``nn.Sequential`` mapping images (N, 1, 28, 28) to 10 scores per image.

    Raises:
        InputError: a bad argument, or one create_model does not take.
    """
    layer = check_choice("layer", layer, LAYERS)
    structured_params = check_bool("structured_params", structured_params)
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    init = check_choice("init", init, INITIALISATIONS,
                        hint='"lux" draws the weights as the tutorial\'s Lux model does, "torch" as nn.Linear does')
    if ode_dtype not in (torch.float32, torch.float64):
        raise InputError(f"ode_dtype must be torch.float64 (the default) or torch.float32 (the tutorial's Float32); "
                         f"got {ode_dtype!r}")
    check_keywords("create_model", layer_kwargs, ("options",),
                   accepts="it accepts layer, device, structured_params, sensealg, seed, solver, rtol, atol, tspan, "
                           "init, ode_dtype and options")
    device = pick_device(device)
    sensealg = make_sensealg(sensealg)
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
    if init == "lux":
        lux_init_(model)  # encoder and the three ODE layers with tanh's gain 5/3, the decoder with gain 1
    ode.to(ode_dtype)  # after the draws: the same initial values in either dtype
    return model.to(device)


def encode(model: nn.Sequential, images: torch.Tensor) -> torch.Tensor:
    """Run the layers before the Neural ODE: the state u(0) the ODE starts from.

    Args:
        model: a model built by :func:`create_model`.
        images: images shaped (N, 1, 28, 28) with values in [0, 1], moved to the model's device.

    Returns:
        The encoder's output, shaped (N, 20), in the encoder's dtype (float32 unless the model was converted).

    Raises:
        InputError: ``model`` was not built by :func:`create_model`, or its image check refuses ``images``.
    """
    check_model(model)
    x = images.to(next(model.parameters()).device) if isinstance(images, torch.Tensor) else images
    for name, layer in model.named_children():
        if name == "ode":
            return x
        x = layer(x)
    raise InputError("the model has no layer named 'ode': build it with create_model")


def ode_stats(model: nn.Module) -> SolveStats:
    """Function-evaluation counts of the model's latest ODE solve.

    Args:
        model: a model built by :func:`create_model`.

    Returns:
        ``model.ode.stats``, updated by every forward (and backward) pass.

    Raises:
        InputError: ``model`` was not built by :func:`create_model`.
    """
    return check_model(model).ode.stats
