"""Training loop of the tutorial: Adam on the logit cross-entropy, one printed row per epoch."""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .checks import (
    check_batch,
    check_bool,
    check_call_signature,
    check_int,
    check_keywords,
    check_labels,
    check_loader_pair,
    check_number,
    describe,
)
from .data import load_mnist, warn_if_small_test_set
from .env import pick_device
from .errors import InputError, NodeUtilsWarning, TrainingDivergedError
from .evaluation import accuracy, logitcrossentropy
from .formatting import format_row
from .models import create_model, ode_stats
from .sensitivity import SensitivityAlgorithm, make_sensealg

__all__ = ["train", "TrainingHistory"]


#: Adam learning rates above this are far outside the usual range (1e-4 to 1e-2) and rarely train.
LR_WARNING = 0.1


def _check_loaders(loaders: object) -> tuple[DataLoader, DataLoader]:
    if (not isinstance(loaders, (tuple, list)) or len(loaders) != 2
            or not all(isinstance(x, DataLoader) for x in loaders)):
        raise InputError(f"loaders must be a pair (train_loader, test_loader) of DataLoaders, as load_mnist returns; "
                         f"got {describe(loaders)}")
    for name, loader in zip(("training", "test"), loaders):
        try:
            n = len(loader.dataset)
        except TypeError:  # an iterable dataset without a length: nothing to check up front
            continue
        if n == 0:
            raise InputError(f"the {name} loader is empty (0 images): build it from at least one image, e.g. with "
                             "load_mnist(subset=1500)")
    check_loader_pair(loaders[0], loaders[1])
    return loaders[0], loaders[1]


@dataclass
class TrainingHistory:
    """Per-epoch record returned by :func:`train` (times in seconds, accuracies in %)."""

    epoch_time: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    nfe_forward: list[float] = field(default_factory=list)
    nfe_backward: list[float] = field(default_factory=list)
    model: nn.Module | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    #: ``None`` after a complete run; ``"epoch k/n"`` when Ctrl-C stopped training during epoch k (the lists
    #: then hold the k - 1 finished epochs, and ``model`` the weights as they were when it stopped).
    interrupted: str | None = None

    def _lists(self) -> tuple[list[float], ...]:
        return (self.epoch_time, self.train_accuracy, self.test_accuracy, self.loss, self.nfe_forward,
                self.nfe_backward)

    @property
    def epochs_done(self) -> int:
        """Number of epochs that every list records."""
        return min(len(x) for x in self._lists())

    def truncate(self) -> None:
        """Keep only the epochs every list has (after an interruption between two appends)."""
        n = self.epochs_done
        for x in self._lists():
            del x[n:]

    def require_epochs(self, what: str) -> int:
        """The number of finished epochs; :class:`InputError` when there is none (``what`` needs one).

        Args:
            what: what needs the epochs, for the message (e.g. ``"plot_training"``).

        Returns:
            :attr:`epochs_done`, at least 1.

        Raises:
            InputError: no epoch is finished.
        """
        n = self.epochs_done
        if n == 0:
            why = f" (training was interrupted at {self.interrupted})" if self.interrupted else ""
            raise InputError(f"{what} needs at least one finished epoch, but this history holds none{why}: train for "
                             "at least one epoch (train(...) without interrupting it)")
        return n

    def rows(self) -> list[str]:
        """The rows :func:`train` prints, one per epoch with a time and both accuracies.

        Returns:
            One line of text per epoch.
        """
        n = self.settings.get("epochs", len(self.epoch_time))
        return [format_row(i + 1, n, self.epoch_time[i], self.train_accuracy[i], self.test_accuracy[i])
                for i in range(min(len(self.epoch_time), len(self.train_accuracy), len(self.test_accuracy)))]


def _size(loader: DataLoader) -> int | None:
    try:
        return len(loader.dataset)
    except TypeError:  # an iterable dataset without a length
        return None


#: What ``train`` passes on to :func:`~nodeutils.models.create_model` besides the arguments it names itself.
MODEL_SETTINGS = ("solver", "rtol", "atol", "tspan", "init", "ode_dtype", "options")

_TRAIN_FIXES = {
    "model": "train builds the tutorial's model itself and returns it as history.model; choose its layer style "
             "with layer= and its other settings with " + ", ".join(f"{name}=" for name in MODEL_SETTINGS),
    "optimizer": "train uses Adam, as the tutorial does; set its learning rate with lr=",
    "loss": "train minimises the logit cross-entropy, as the tutorial does",
}
_TRAIN_FIXES["optimiser"] = _TRAIN_FIXES["optimizer"]
_TRAIN_FIXES["loss_fn"] = _TRAIN_FIXES["loss"]


def train(
    layer: str = "class",
    *,
    device: str | torch.device | None = None,
    epochs: int = 9,
    batch_size: int = 128,
    lr: float = 1e-3,
    sensealg: SensitivityAlgorithm | str | None = "default",
    vjp: str | None = None,
    structured_params: bool = False,
    seed: int = 0,
    subset: int | None | str = "auto",
    source: str = "embedded",
    root: str | os.PathLike | None = None,
    loaders: tuple[DataLoader, DataLoader] | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
    **model_kwargs: Any,
) -> TrainingHistory:
    """Train the tutorial model and print one row per epoch; return the :class:`TrainingHistory`.

    ``sensealg`` is an algorithm object or a name (``"interpolating"``, ``"gauss"`` ...) combined
    with ``vjp`` (``"autograd"`` when not given); ``"default"`` is the tutorial's InterpolatingAdjoint.
    ``device=None`` trains where ``NODEUTILS_DEVICE`` says (the CPU when it is unset).
    ``loaders`` replaces the data arguments (``batch_size``, ``subset``, ``source``, ``root``).

    Ctrl-C (or the notebook's interrupt button) stops training: the history returned keeps every
    finished epoch, ``history.interrupted`` says where it stopped, and ``history.model`` holds the
    weights as they were.

    Args:
        layer: the ODE layer style: ``"class"``, ``"compact"`` or ``"stateful"``.
        device: where to train (``None``: as ``NODEUTILS_DEVICE`` says).
        epochs: passes over the training set.
        batch_size: images per batch.
        lr: Adam's learning rate.
        sensealg: the sensitivity algorithm, an object or a name.
        vjp: the VJP choice for a named ``sensealg``.
        structured_params: whether the solver gets the parameters in their own shapes rather than one flat vector.
        seed: seeds the weights, the split and the batch order.
        subset, source, root: passed to :func:`~nodeutils.data.load_mnist`.
        loaders: ``(train_loader, test_loader)`` to use instead of loading MNIST.
        progress: whether to show a progress bar.
        log: called with each epoch's row of text (``None``: print nothing).
        **model_kwargs: create_model's ``solver``, ``rtol``, ``atol``, ``tspan``, ``init``, ``ode_dtype``
            or ``options``.

    Returns:
        The :class:`TrainingHistory`, with the trained model as ``history.model``.

    Raises:
        InputError: a bad argument, before anything is trained; or a bad batch from ``loaders``.
        DataError: the MNIST files are missing or corrupt and cannot be downloaded.
        SolverError: an ODE solve failed during training.
        TrainingDivergedError: the loss became NaN or infinite.
    """
    epochs = check_int("epochs", epochs, minimum=1, hint="the tutorial trains for 9")
    batch_size = check_int("batch_size", batch_size, minimum=1, hint="the tutorial uses 128")
    lr = check_number("lr", lr, example="1e-3")
    if lr > LR_WARNING:
        warnings.warn(f"lr={lr:g} is far above the usual range for Adam (1e-4 to 1e-2): training will probably "
                      "diverge or stall; the tutorial uses 1e-3", NodeUtilsWarning, stacklevel=2)
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    structured_params = check_bool("structured_params", structured_params)
    progress = check_bool("progress", progress)
    if log is not None:
        check_call_signature("log", log, 1, "a function taking one line of text, such as print, or None")
    check_keywords("train", model_kwargs, MODEL_SETTINGS, fixes=_TRAIN_FIXES,
                   accepts="it accepts layer, device, epochs, batch_size, lr, sensealg, vjp, structured_params, seed, "
                           "subset, source, root, loaders, progress, log and create_model's "
                           + ", ".join(MODEL_SETTINGS))
    if loaders is not None:
        given = [f"{name}={value!r}" for name, value, default in (
            ("batch_size", batch_size, 128), ("subset", subset, "auto"), ("source", source, "embedded"),
            ("root", root, None)) if value != default]
        if given:
            raise InputError(f"{', '.join(given)} would be ignored because loaders were given: choose them when "
                             "building the loaders (load_mnist(batch_size, subset=..., source=...)), or drop loaders")
        train_loader, test_loader = _check_loaders(loaders)
    history = TrainingHistory(settings={"layer": layer, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                                        "structured_params": structured_params, "seed": seed})
    bar = None
    try:  # Ctrl-C from here on (setup included) returns the history so far
        dev = pick_device(device)
        sensealg = make_sensealg(sensealg, vjp)
        model = create_model(layer, device=dev, structured_params=structured_params, sensealg=sensealg, seed=seed,
                             **model_kwargs)
        if loaders is None:  # load_mnist warns about a test split too small to mean anything
            train_loader, test_loader = load_mnist(batch_size, 0.9, subset=subset, source=source, root=root,
                                                   seed=seed)
        elif isinstance(getattr(test_loader, "dataset", None), Sized):
            warn_if_small_test_set(len(test_loader.dataset))
        if train_loader.generator is not None:
            train_loader.generator.manual_seed(seed)  # reused loaders give the same batch order for the same seed
        optimiser = torch.optim.Adam(model.parameters(), lr=lr)
        history.model = model
        history.settings = {
            "layer": layer, "device": str(dev), "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "sensealg": repr(model.ode.settings.sensealg), "structured_params": structured_params, "seed": seed,
            "init": model_kwargs.get("init", "lux"),
            "ode_dtype": str(next(model.ode.model.parameters()).dtype).removeprefix("torch."),
            "train_images": _size(train_loader), "test_images": _size(test_loader)}
        bar = tqdm(total=epochs * len(train_loader), desc="training", disable=not progress, leave=False,
                   file=sys.stderr)
        for epoch in range(1, epochs + 1):
            _train_epoch(model, optimiser, train_loader, test_loader, dev, epoch, lr, history, bar)
            if log is not None:
                if progress:
                    bar.clear()
                log(history.rows()[-1])
    except KeyboardInterrupt:
        history.truncate()  # an epoch cut short leaves nothing behind
        done = len(history.epoch_time)
        running = min(done + 1, epochs)  # the epoch under way (the last one if Ctrl-C came while it was printed)
        history.interrupted = f"epoch {running}/{epochs}"
        if log is not None:
            if progress and bar is not None:
                bar.clear()
            where = "while setting up" if bar is None else f"at epoch {running}/{epochs}"
            log(f"interrupted {where} ({done} epoch{'s' * (done != 1)} finished)")
    finally:
        if bar is not None:
            bar.close()
    return history


def _train_epoch(model: nn.Module, optimiser: torch.optim.Optimizer, train_loader: DataLoader,
                 test_loader: DataLoader, dev: torch.device, epoch: int, lr: float, history: TrainingHistory,
                 bar: tqdm) -> None:
    """One epoch of Adam steps, then the accuracies; appends one entry to every list of ``history``."""
    model.train()
    losses, sizes, nfe_f, nfe_b = [], [], [], []
    start = time.perf_counter()
    for step, batch in enumerate(train_loader, 1):
        x, y = check_batch(batch, "the training loader")
        logits = model(x.to(dev, non_blocking=True))
        y = check_labels(y, len(x), logits.shape[1], "the training loader")  # before any number is computed
        loss = logitcrossentropy(logits, y.to(dev, non_blocking=True))
        value = loss.detach().item()
        if not math.isfinite(value):
            raise TrainingDivergedError(
                f"the training loss became {value} at epoch {epoch}, batch {step}: lower the learning rate "
                f"(lr={lr:g}) or check the inputs for NaN")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        stats = ode_stats(model)
        losses.append(value)
        sizes.append(len(y))
        nfe_f.append(stats.nfe_forward)
        nfe_b.append(stats.nfe_backward)
        bar.update(1)
    if not losses:
        raise InputError("the training loader gave no batch: build it from at least one image")
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - start
    train_acc = 100 * accuracy(model, train_loader, dev)
    test_acc = 100 * accuracy(model, test_loader, dev)
    history.epoch_time.append(seconds)
    history.train_accuracy.append(train_acc)
    history.test_accuracy.append(test_acc)
    # The mean over the epoch's images: a partial last batch weighs by its size, not as a full batch.
    history.loss.append(sum(loss * size for loss, size in zip(losses, sizes)) / sum(sizes))
    history.nfe_forward.append(sum(nfe_f) / len(nfe_f))
    history.nfe_backward.append(sum(nfe_b) / len(nfe_b))
