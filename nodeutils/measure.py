"""Measuring side by side: interleaved timing with per-round ratios, and the memory kept for backward.

Memory is measured as the bytes of distinct tensor storages kept for the backward pass (autograd's
saved tensors plus what an adjoint stores itself), excluding tensors the caller names (the parameters,
which every method keeps). That is what grows with the number of solver steps under discrete backprop;
it is deterministic, so it can be printed in a notebook and compared across runs. Times are not: they
are compared as ratios of candidates timed in the same rounds.
"""

from __future__ import annotations

import statistics
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .checks import check_callable, check_int, describe
from .errors import InputError

__all__ = ["saved_tensor_bytes", "time_interleaved", "Ratio", "ratio", "relative_error", "flat_grad"]


def saved_tensor_bytes(fn: Callable[[], Any], exclude: Sequence[torch.Tensor] = ()) -> tuple[Any, int]:
    """Run ``fn()``; return its result and the bytes of tensor storage it keeps for backward.

    Only tensors still alive when ``fn`` returns are counted (graphs of rejected solver steps, for
    example, are freed before the backward pass and cost nothing there).

    Args:
        fn: the computation to measure, called once without arguments (e.g. a model's forward pass and loss).
        exclude: tensors whose storage is not counted (e.g. ``list(model.parameters())``).

    Returns:
        ``(fn's result, bytes kept)``.

    Raises:
        InputError: ``fn`` is not callable, or ``exclude`` holds something other than tensors.
    """
    check_callable("fn", fn, "a function of no arguments that runs the forward pass, e.g. lambda: loss(model(x))")
    exclude = list(exclude) if isinstance(exclude, (list, tuple)) else exclude
    if not isinstance(exclude, list) or not all(isinstance(t, torch.Tensor) for t in exclude):
        raise InputError("exclude must be a list of tensors, e.g. list(model.parameters())")
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    kept: dict[int, tuple[weakref.ref, int]] = {}

    def pack(x: torch.Tensor) -> torch.Tensor:
        storage = x.untyped_storage()
        if storage.data_ptr() not in skip:
            kept[storage.data_ptr()] = (weakref.ref(x), storage.nbytes())
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        result = fn()
    return result, sum(nbytes for ref, nbytes in kept.values() if ref() is not None)


def time_interleaved(steps: dict[str, Callable[[], Any]], repeats: int = 10, warmup: int = 2,
                     clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Seconds of each call in ``steps``, measured in rounds: every round times each step once.

    Interleaving puts the candidates side by side in time, so a burst of load on a shared machine
    is spread over all of them rather than landing on one; the order rotates from round to round, so
    with ``repeats`` a multiple of ``len(steps)`` every order occurs equally often.

    Args:
        steps: name -> a function of no arguments to time (one training step, one epoch ...).
        repeats: timed rounds.
        warmup: untimed rounds first (caches, lazy initialisation).
        clock: the clock read before and after each call: ``time.perf_counter`` (elapsed time, the default) or
            ``time.process_time`` (this process's CPU time, which leaves out waiting for a shared core).

    Returns:
        Every round's time per name, in rounds order (compare two of them with :func:`ratio`).

    Raises:
        InputError: no steps, a step or clock that is not callable, or a count that is not an integer of at least
            its minimum.
    """
    if not isinstance(steps, dict) or not steps:
        raise InputError("steps must be a dict of at least one name -> function to time, e.g. {'eager': step}")
    for name, step in steps.items():
        check_callable(f"steps[{name!r}]", step, "a function of no arguments")
    repeats = check_int("repeats", repeats, minimum=1, hint="the number of timed rounds, e.g. 10")
    warmup = check_int("warmup", warmup, minimum=0, hint="untimed rounds before timing, e.g. 2")
    check_callable("clock", clock, "a clock such as time.perf_counter or time.process_time")
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            steps[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = clock()
            steps[name]()
            times[name].append(clock() - start)
    return times


@dataclass
class Ratio:
    """Median of per-round time ratios, with the quartiles of those ratios as their spread.

    The spread describes the round ratios themselves (their middle half), not a confidence interval.

    Args:
        median: the median of the round ratios.
        low: their first quartile.
        high: their third quartile.
    """

    median: float
    low: float  # first quartile
    high: float  # third quartile

    def __str__(self) -> str:
        return f"{self.median:.2f}x ({self.low:.2f}x-{self.high:.2f}x)"

    @property
    def clear(self) -> bool:
        """Whether the whole spread lies on one side of 1 (the difference is larger than the noise)."""
        return self.low > 1 or self.high < 1


def ratio(times: Sequence[float], reference: Sequence[float]) -> Ratio:
    """Round-by-round ratio ``times[i] / reference[i]`` of two series from :func:`time_interleaved`.

    Args:
        times: one candidate's times, a round each.
        reference: the reference's times from the same rounds.

    Returns:
        The median ratio and its quartiles.

    Raises:
        InputError: series of different or zero length, a time that is not a number, or a reference time of 0.
    """
    if not isinstance(times, (list, tuple)) or not isinstance(reference, (list, tuple)):
        raise InputError("times and reference must be lists of seconds, e.g. two entries of time_interleaved(...)")
    if len(times) != len(reference) or not times:
        raise InputError(f"need two series of the same nonzero length, from the same time_interleaved rounds; got "
                         f"{len(times)} and {len(reference)}")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 for x in [*times, *reference]):
        raise InputError("every time must be a number of seconds (0 or more)")
    if not all(x > 0 for x in reference):
        raise InputError("a reference time is 0, so no ratio to it exists: time longer calls (or more of them)")
    ratios = sorted(a / b for a, b in zip(times, reference))
    if len(ratios) == 1:
        return Ratio(ratios[0], ratios[0], ratios[0])
    low, median, high = statistics.quantiles(ratios, n=4, method="inclusive")
    return Ratio(median, low, high)


def relative_error(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    """||estimate - reference|| / ||reference|| (0 when both are zero).

    Args:
        estimate: the tensor to judge.
        reference: the tensor taken as exact, shaped like ``estimate``.

    Returns:
        The relative error, a float (||estimate|| itself when ``reference`` is all zeros).

    Raises:
        InputError: either is not a floating-point tensor, or their shapes differ.
    """
    if not isinstance(estimate, torch.Tensor) or not isinstance(reference, torch.Tensor):
        raise InputError(f"estimate and reference must be tensors; got {describe(estimate)} and {describe(reference)}")
    if not (estimate.is_floating_point() and reference.is_floating_point()):
        raise InputError(f"estimate and reference must be floating-point tensors (call .double()); got "
                         f"{estimate.dtype} and {reference.dtype}")
    if estimate.shape != reference.shape:
        raise InputError(f"estimate and reference must have the same shape (a difference would broadcast); got "
                         f"{tuple(estimate.shape)} and {tuple(reference.shape)}")
    denom = float(reference.norm())
    num = float((estimate - reference).norm())
    return num / denom if denom > 0 else num


def flat_grad(tensors: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate gradients into one vector (zeros where a gradient is None).

    Args:
        tensors: gradients, e.g. from ``torch.autograd.grad(..., allow_unused=True)``.
        like: the tensors they are the gradients of, one per gradient, in the same order.

    Returns:
        A 1-D tensor of ``sum(x.numel() for x in like)`` numbers.

    Raises:
        InputError: not one gradient per tensor, or a gradient shaped unlike its tensor.
    """
    if len(tensors) != len(like):
        raise InputError(f"flat_grad needs one gradient (or None) per tensor; got {len(tensors)} for {len(like)}")
    for i, (g, x) in enumerate(zip(tensors, like)):
        if not isinstance(x, torch.Tensor) or (g is not None and (not isinstance(g, torch.Tensor)
                                                                  or g.shape != x.shape)):
            raise InputError(f"gradient {i} must be None or a tensor shaped like its tensor; got {describe(g)} for "
                             f"{describe(x)}")
    return torch.cat([(torch.zeros_like(x) if g is None else g).reshape(-1) for g, x in zip(tensors, like)])
