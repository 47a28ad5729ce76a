"""Probing a Neural ODE classifier: its hidden trajectories, predictions, solver steps, other tolerances."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from .checks import (
    check_batch,
    check_int,
    check_labels,
    check_loader,
    check_method,
    check_model,
    check_number,
    check_options,
    check_time_span,
    describe,
)
from .errors import InputError
from .evaluation import model_device, predictions
from .layer_solve import solve_dtype
from .models import encode
from .solve import SolveCounter, integrate

__all__ = [
    "solver_settings",
    "Trajectories",
    "hidden_trajectories",
    "predict",
    "ToleranceResult",
    "evaluate_at_tolerance",
    "tolerance_grid",
    "SolverSteps",
    "solver_steps",
    "decoder_scores",
    "decoder_margin",
]


def _keeps_training_mode(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn(model, ...)`` evaluates the model in eval mode and leaves it in the mode it found it in."""

    @functools.wraps(fn)
    def wrapper(model: nn.Module, *args: Any, **kwargs: Any) -> Any:
        was_training = getattr(model, "training", None)
        try:
            return fn(model, *args, **kwargs)
        finally:
            if isinstance(was_training, bool):
                model.train(was_training)

    return wrapper


@contextlib.contextmanager
def solver_settings(model: nn.Module, **changes: object) -> Iterator[None]:
    """Temporarily change the ODE layer's settings (``tspan``, ``rtol``, ``atol`` ...).

    Args:
        model: a model built by :func:`~nodeutils.models.create_model`.
        **changes: new values for ``tspan``, ``rtol``, ``atol``, ``solver`` or ``options``.

    Yields:
        None. Inside the ``with`` block the model solves with the new settings; on leaving it (also by an
        error) the old ones are restored.

    Raises:
        InputError: not such a model, another setting than those five, or a value the solver cannot use.
    """
    settings = check_model(model).ode.settings
    changes = _checked_settings(settings, changes)
    saved = {name: getattr(settings, name) for name in changes}
    try:
        for name, value in changes.items():
            setattr(settings, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(settings, name, value)


_SETTINGS = ("tspan", "rtol", "atol", "solver", "options")


def _checked_settings(settings: object, changes: dict[str, object]) -> dict[str, object]:
    unknown = sorted(set(changes) - set(_SETTINGS))
    if unknown:
        raise InputError(f"solver_settings cannot change {', '.join(unknown)}: it changes {', '.join(_SETTINGS)}")
    out = dict(changes)
    if "tspan" in out:
        out["tspan"] = tuple(float(x) for x in check_time_span(out["tspan"]).double())
    for name in ("rtol", "atol"):
        if name in out:
            out[name] = check_number(name, out[name], example="1e-3")
    if "solver" in out:
        check_method(out["solver"], need_dense=settings.sensealg.uses_dense_output)
    if "options" in out or "solver" in out:
        out["options"] = check_options(out.get("solver", settings.solver), out.get("options", settings.options))
    return out


@dataclass
class Trajectories:
    """Hidden states u(t) of the ODE for a batch of images: ``states`` is (time, image, 20)."""

    times: torch.Tensor
    states: torch.Tensor
    labels: torch.Tensor
    predictions: torch.Tensor


@_keeps_training_mode
@torch.no_grad()
def hidden_trajectories(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                        n_times: int = 21) -> Trajectories:
    """Solve the model's ODE for ``images`` and keep the state at ``n_times`` equally spaced times.

    Runs the model in eval mode and gives it back in the mode it had.

    Args:
        model: a model built by :func:`~nodeutils.models.create_model`.
        images: a batch of images shaped (N, 1, 28, 28).
        labels: their true classes, one per image.
        n_times: how many times from the start to the end of the model's ``tspan``, at least 2.

    Returns:
        The trajectories on the CPU, with ``times`` (n_times,) float64, ``states`` (n_times, N, 20), ``labels``
        (N,) int64 and the model's ``predictions`` (N,) from the final states.

    Raises:
        InputError: a bad ``n_times``, not such a model, bad images, or labels that are not one class per image.
        SolverError: the solve failed.
    """
    n_times = check_int("n_times", n_times, minimum=2, hint="at least the start and the end, e.g. 21")
    check_model(model)
    if not isinstance(images, torch.Tensor):
        raise InputError(f"images must be a tensor (e.g. from predict(model, loader)); got {type(images).__name__}")
    # labels as accuracy() takes them: (N, 1) and one-hot labels are converted with a warning, others refused
    labels = check_labels(labels, len(images), model.decoder.out_features, "the batch passed to hidden_trajectories")
    model.eval()
    t0, t1 = model.ode.settings.tspan[0], model.ode.settings.tspan[-1]
    times = torch.linspace(t0, t1, n_times, dtype=torch.float64)
    start = encode(model, images)
    with solver_settings(model, tspan=tuple(times.tolist())):
        states = model.ode(start)
    predictions = model.decoder(states[-1]).argmax(dim=1)
    return Trajectories(times, states.cpu(), labels.cpu(), predictions.cpu())


def predict(model: nn.Module, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images, true labels and predicted labels for every item of ``loader``.

    Args:
        model: a model built by :func:`~nodeutils.models.create_model`.
        loader: yields ``(images, labels)`` batches.

    Returns:
        ``(images, truth, predicted)`` concatenated over the batches, the images as the loader gives them
        and the true and predicted labels as int64 tensors shaped (N,).

    Raises:
        InputError: not such a model, a bad loader or batch, or a loader without images.
        SolverError: a solve failed.
    """
    batches = list(predictions(check_model(model), loader))
    if not batches:
        raise InputError("the loader holds no images, so there is nothing to predict: give it at least one image")
    images, truth, predicted = zip(*batches)
    return torch.cat(images), torch.cat(truth), torch.cat(predicted)


@dataclass
class ToleranceResult:
    """How the trained model behaves when its solver runs at another tolerance."""

    tolerance: float
    nfe_per_batch: float
    accuracy: float  # %
    seconds_per_batch: float


@_keeps_training_mode
@torch.no_grad()
def evaluate_at_tolerance(model: nn.Module, loader: DataLoader, tolerance: float) -> ToleranceResult:
    """Evaluate the trained ``model`` on ``loader`` with rtol = atol = ``tolerance``.

    Runs the model in eval mode and gives it back in the mode it had.

    Args:
        model: a model built by :func:`~nodeutils.models.create_model`.
        loader: yields ``(images, labels)`` batches.
        tolerance: rtol and atol of the solve, a positive number.

    Returns:
        The mean forward evaluations of f and seconds per batch, and the accuracy in %.

    Raises:
        InputError: a bad tolerance, model, loader or batch, or a loader without images.
        SolverError: a solve failed at this tolerance.
    """
    tolerance = check_number("tolerance", tolerance, example="1e-3")
    check_model(model)
    model.eval()
    device = model_device(model)
    check_loader(loader)
    nfe, correct, total, seconds = [], 0, 0, 0.0
    with solver_settings(model, rtol=tolerance, atol=tolerance):
        for batch in loader:
            x, y = check_batch(batch)
            start = time.perf_counter()
            logits = model(x.to(device))
            seconds += time.perf_counter() - start
            y = check_labels(y, len(x), logits.shape[1])  # so the comparison below cannot broadcast
            predicted = logits.argmax(dim=1).cpu()
            nfe.append(model.ode.stats.nfe_forward)
            correct += int((predicted == y).sum())
            total += len(y)
    if not nfe:
        raise InputError("the loader holds no images, so there is no accuracy to measure: give it at least one image")
    return ToleranceResult(float(tolerance), sum(nfe) / len(nfe), 100 * correct / total, seconds / len(nfe))


def tolerance_grid(low: float = 1e-6, high: float = 1e-1) -> Sequence[float]:
    """Decades from ``high`` down to ``low``: 1e-1, 1e-2, ..., 1e-6.

    Args:
        low: the smallest tolerance.
        high: the largest tolerance, the first in the list.

    Returns:
        ``high``, ``high / 10``, ... down to ``low``, each rounded to one significant digit.

    Raises:
        InputError: a bound that is not a positive number, or ``low`` above ``high``.
    """
    low, high = check_number("low", low, example="1e-6"), check_number("high", high, example="1e-1")
    if low > high:
        raise InputError(f"low={low:g} is above high={high:g}: swap them")
    out, value = [], high
    while value >= low * (1 - 1e-9):
        out.append(float(f"{value:.0e}"))
        value /= 10
    return out


@dataclass
class SolverSteps:
    """The accepted steps of one forward solve: where each ended, and what the solve cost."""

    tolerance: float
    step_ends: list[float]  # t0, then the end of every accepted step (the last one may lie past the span)
    evaluations: int  # evaluations of f: one at t0 (also the first stage of step 1), one trial to size step 1, 6 a step
    rejected: int

    @property
    def step_sizes(self) -> list[float]:
        """Each accepted step's length in time, in order."""
        return [b - a for a, b in zip(self.step_ends, self.step_ends[1:])]

    @property
    def growth(self) -> list[float]:
        """Each step's size divided by the previous step's."""
        sizes = self.step_sizes
        return [b / a for a, b in zip(sizes, sizes[1:])]


@_keeps_training_mode
@torch.no_grad()
def solver_steps(model: nn.Module, images: torch.Tensor, tolerance: float | None = None) -> SolverSteps:
    """Accepted steps of the model's forward solve for ``images`` at rtol = atol = ``tolerance``.

    Runs the same solve as ``model(images)`` (same solver, span, options, state and dtype, so the same
    steps and evaluation count). Runs the model in eval mode and gives it back in the mode it had.

    Args:
        model: a model built by :func:`~nodeutils.models.create_model`, with an adaptive solver.
        images: a batch of images shaped (N, 1, 28, 28).
        tolerance: rtol and atol of the solve (``None``: the model's own rtol).

    Returns:
        The step ends, the evaluations of f and the rejected steps.

    Raises:
        InputError: not such a model, bad images, a tolerance that is not a positive number, or a fixed-step solver.
        SolverError: the solve failed.
    """
    settings = check_model(model).ode.settings
    tolerance = settings.rtol if tolerance is None else check_number("tolerance", tolerance, example="1e-3")
    model.eval()
    network = model.ode.model
    start = encode(model, images)
    start = start.to(solve_dtype(network, start))  # the dtype the model's own solve runs in
    ends: list[float] = []

    def on_step(t0: float, t1: float, _coefficients: list[torch.Tensor]) -> None:
        if not ends:
            ends.append(t0)
        ends.append(t1)

    counter = SolveCounter()
    span = torch.tensor(settings.tspan, dtype=torch.float64, device=start.device)
    integrate(lambda t, u: network(u), start, span,
              method=settings.solver, rtol=tolerance, atol=tolerance, options=dict(settings.options),
              on_step=on_step, counter=counter)
    return SolverSteps(float(tolerance), ends, counter.nfe, counter.rejected)


@torch.no_grad()
def decoder_scores(model: nn.Module, states: torch.Tensor) -> torch.Tensor:
    """The model's decoder applied to hidden states (e.g. ``trajectories.states[-1]``): class scores on the CPU.

    Args:
        model: a model built by :func:`~nodeutils.models.create_model`.
        states: a tensor of hidden states shaped (..., 20).

    Returns:
        The scores shaped (..., 10), in the decoder's dtype.

    Raises:
        InputError: ``model`` is not such a model, or ``states`` is not a tensor shaped (..., 20).
    """
    model = check_model(model)
    features = model.decoder.in_features
    if not isinstance(states, torch.Tensor) or states.ndim < 1 or states.shape[-1] != features:
        raise InputError(f"states must be a tensor of hidden states shaped (..., {features}), e.g. "
                         f"trajectories.states[-1]; got {describe(states)}")
    reference = next(model.decoder.parameters())
    return model.decoder(states.to(device=reference.device, dtype=reference.dtype)).cpu()


def decoder_margin(model: nn.Module, states: torch.Tensor) -> torch.Tensor:
    """Per state: the decoder's top score minus its runner-up (small means a close call).

    Args:
        model: a model built by :func:`~nodeutils.models.create_model`.
        states: hidden states shaped (N, 20).

    Returns:
        The margins, shaped (N,).

    Raises:
        InputError: ``model`` is not such a model, or ``states`` is not shaped (N, 20).
    """
    if not isinstance(states, torch.Tensor) or states.ndim != 2:
        raise InputError(f"states must be a 2-D tensor (image x state), e.g. trajectories.states[-1]; got "
                         f"{describe(states)}")
    top2 = decoder_scores(model, states).topk(2, dim=1).values
    return top2[:, 0] - top2[:, 1]

