"""What PyTorch's compiler sees: TorchDynamo graph breaks and eager-vs-compiled timings.

Julia's ``@code_warntype`` asks whether the compiler can infer every type inside a layer. PyTorch's
question is whether TorchDynamo can capture the computation as one graph, or has to break it
(fall back to Python) wherever the program branches on a tensor's value or calls something it
cannot trace. :func:`explain` runs ``torch._dynamo.explain`` quietly and summarises the answer.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import statistics
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from .checks import check_writable_folder
from .errors import InputError

__all__ = ["ExplainRow", "explain", "break_category", "time_interleaved", "Ratio", "ratio",
           "CompileTiming", "compare_compiled", "solve_outside_try", "quiet_compiler"]


def _separate_compile_cache_per_cpu_capability() -> None:
    """Keep torch.compile's on-disk kernel cache apart for each ``ATEN_CPU_CAPABILITY``.

    Inductor's cache key does not include that setting: C++ kernels cached under AVX2 fail to build
    when reused with ``ATEN_CPU_CAPABILITY=default``. A folder of its own per setting avoids that.
    Called by the functions that compile, just before they do (not when the package is imported).
    """
    capability = os.environ.get("ATEN_CPU_CAPABILITY", "").strip()
    if capability and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = f"{_default_cache_dir()}_{capability}"


_CACHE_FIX = ("free some space, or point TORCHINDUCTOR_CACHE_DIR at a writable folder, "
              "e.g. TORCHINDUCTOR_CACHE_DIR=/tmp/torchinductor")


def _default_cache_dir() -> str:
    """The folder torch.compile keeps its kernel cache in when ``TORCHINDUCTOR_CACHE_DIR`` is unset."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir  # imported when needed: it loads Inductor

    return default_cache_dir()


def _compile_cache_dir() -> str:
    return os.environ.get("TORCHINDUCTOR_CACHE_DIR") or _default_cache_dir()


def _check_compile_cache() -> None:
    """torch.compile's kernel cache folder must be a writable folder (checked before anything is compiled)."""
    check_writable_folder(_compile_cache_dir(), "torch.compile's kernel cache folder", _CACHE_FIX)


def _disk_error(err: BaseException) -> OSError | None:
    """The OSError of a full or read-only disk somewhere in ``err``'s chain of causes, if any."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT):
            return err
        err = err.__cause__ or err.__context__
    return None


_CATEGORIES = [
    ("Tensor.item()", "tensor value read into Python (.item())"),
    ("Data-dependent branching", "if/while on a tensor's value"),
    ("generic_jump", "if/while on a tensor's value"),
    ("marked as skipped", "call into code Dynamo skips"),
    ("builtin", "untraceable built-in function"),
    ("step_unsupported", "unsupported Python construct"),
]


def break_category(reason: str) -> str:
    """A short, stable label for a graph-break reason."""
    for needle, label in _CATEGORIES:
        if needle in reason:
            return label
    return reason.splitlines()[0][:60]


@dataclass
class ExplainRow:
    """Graphs and graph breaks Dynamo found in one function call.

    ``graph_breaks`` counts the breaks Dynamo recorded a reason for, so that ``reasons`` and ``origins``
    each add up to it. ``graphs`` is at least ``graph_breaks + 1`` (a break ends one graph and starts the
    next), and larger whenever a graph also ends without a recorded break: where a traced function
    returns, and in every function Dynamo enters afresh after a break. (``torch._dynamo.explain``
    reports ``graphs - 1`` as its "graph break count", which counts those ends too.)
    """

    name: str
    graphs: int
    graph_breaks: int
    reasons: Counter = field(default_factory=Counter)
    origins: Counter = field(default_factory=Counter)  # package whose code broke the graph

    def __post_init__(self) -> None:
        if sum(self.reasons.values()) != self.graph_breaks or sum(self.origins.values()) != self.graph_breaks:
            raise ValueError(f"{self.name}: {self.graph_breaks} breaks, but reasons add up to "
                             f"{sum(self.reasons.values())} and origins to {sum(self.origins.values())}")

    def top_reasons(self, n: int | None = None) -> str:
        """Break reasons with counts, most frequent first; all of them unless ``n`` is given."""
        return "; ".join(f"{label} x{count}" for label, count in self.reasons.most_common(n)) or "none"

    def where(self) -> str:
        """Packages whose code broke the graph, with counts (they add up to ``graph_breaks``)."""
        return ", ".join(f"{origin} {count}" for origin, count in self.origins.most_common()) or "-"

    def summary(self) -> tuple[int, int, tuple, tuple]:
        """Everything the row shows, in a form that compares equal between rows that look the same."""
        return self.graphs, self.graph_breaks, tuple(sorted(self.reasons.items())), tuple(sorted(self.origins.items()))


_NOISY_LOGGERS = ("torch", "torch._dynamo", "torch._inductor", "torch.utils.cpp_extension")


@contextlib.contextmanager
def _quiet_dynamo() -> Iterator[None]:
    """Silence the compiler's log lines and warnings (they would clutter notebook output)."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def explain(name: str, fn: Callable[..., Any], *args: Any) -> ExplainRow:
    """Trace ``fn(*args)`` with TorchDynamo (nothing is compiled) and count graphs and breaks."""
    # tracing writes Inductor's default cache folder into the environment, which a later compile would then keep
    _separate_compile_cache_per_cpu_capability()
    torch._dynamo.reset()
    with _quiet_dynamo():
        report = torch._dynamo.explain(fn)(*args)
    torch._dynamo.reset()
    reasons = Counter(break_category(r.reason) for r in report.break_reasons)
    origins = Counter(_origin(r) for r in report.break_reasons)
    return ExplainRow(name, report.graph_count, len(report.break_reasons), reasons, origins)


def _origin(reason: Any) -> str:
    frames = getattr(reason, "user_stack", None) or []
    filename = frames[-1].filename if frames else ""
    for package in ("torchdiffeq", "nodeutils", "torch"):
        if f"{package}/" in filename.replace("\\", "/"):
            return package
    return "user code"


def _forward_backward(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()

    return step


def time_interleaved(steps: dict[str, Callable[[], Any]], repeats: int = 10, warmup: int = 2) -> dict[str, list[float]]:
    """Seconds of each call in ``steps``, measured in rounds: every round times each step once.

    Interleaving puts the candidates side by side in time, so a burst of load on a shared machine
    is spread over all of them rather than landing on one; the order rotates from round to round, so
    with ``repeats`` a multiple of ``len(steps)`` every order occurs equally often. Returns every round's
    time per name (compare them with :func:`ratio`).
    """
    if not steps:
        raise ValueError("time_interleaved needs at least one step to time")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats}")
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            steps[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return times


@dataclass
class Ratio:
    """Median of per-round time ratios, with the quartiles of those ratios as their spread.

    The spread describes the round ratios themselves (their middle half), not a confidence interval.
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


def ratio(times: list[float], reference: list[float]) -> Ratio:
    """Round-by-round ratio ``times[i] / reference[i]`` of two series from :func:`time_interleaved`."""
    if len(times) != len(reference) or not times:
        raise ValueError(f"need two series of the same nonzero length; got {len(times)} and {len(reference)}")
    ratios = sorted(a / b for a, b in zip(times, reference))
    if len(ratios) == 1:
        return Ratio(ratios[0], ratios[0], ratios[0])
    low, median, high = statistics.quantiles(ratios, n=4, method="inclusive")
    return Ratio(median, low, high)


@dataclass
class CompileTiming:
    eager_s: float  # median seconds per forward+backward
    first_call_s: float  # includes compilation
    compiled_s: float  # median seconds per forward+backward
    compiled_over_eager: Ratio | None = None  # per-round ratios, interleaved


def compare_compiled(model: torch.nn.Module, x: torch.Tensor, part: str = "ode.model",
                     repeats: int = 10) -> CompileTiming:
    """Time forward+backward eagerly and with ``torch.compile`` applied to the submodule ``part``, interleaved."""
    _separate_compile_cache_per_cpu_capability()
    _check_compile_cache()
    owner_name, _, attr = part.rpartition(".")
    owner = model.get_submodule(owner_name)
    original = getattr(owner, attr)
    step = _forward_backward(model, x)
    torch._dynamo.reset()
    try:
        with _quiet_dynamo():
            compiled = torch.compile(original)
            setattr(owner, attr, compiled)
            start = time.perf_counter()
            try:
                step()
            except Exception as err:
                cause = _disk_error(err)
                if cause is None:
                    raise
                raise InputError(f"torch.compile could not write its kernels into {_compile_cache_dir()} "
                                 f"({cause.strerror or cause}): {_CACHE_FIX}") from None
            first = time.perf_counter() - start

            def run(module: Any) -> Callable[[], None]:
                def timed() -> None:
                    setattr(owner, attr, module)
                    step()
                return timed

            times = time_interleaved({"eager": run(original), "compiled": run(compiled)}, repeats, warmup=1)
    finally:
        setattr(owner, attr, original)
        torch._dynamo.reset()
    return CompileTiming(statistics.median(times["eager"]), first, statistics.median(times["compiled"]),
                         ratio(times["compiled"], times["eager"]))


@contextlib.contextmanager
def solve_outside_try(layer: torch.nn.Module) -> Iterator[None]:
    """Run a class-based :class:`~nodeutils.layers.NeuralODE` with the same solve, but not inside ``try``/``finally``.

    For :func:`explain` only: it shows what Dynamo makes of the layer when the solve is not inside a
    ``try`` block. The parameters are given back after the solve as usual, but not if it raises.
    """
    from .layers import BoundNetwork, NeuralODE, StatefulNeuralODE, solve_dtype

    if not isinstance(layer, NeuralODE) or isinstance(layer, StatefulNeuralODE):
        raise TypeError(f"solve_outside_try needs a class-based NeuralODE layer; got {type(layer).__name__}")

    def forward(x: torch.Tensor) -> torch.Tensor:
        params, as_dict = layer.settings.solver_parameters(layer.model)
        network = BoundNetwork(layer.model, params, as_dict).bind()

        def dudt(t: torch.Tensor, u: torch.Tensor, p: Any) -> torch.Tensor:
            return network(u, p)

        solution = layer.settings.solve(dudt, x.to(solve_dtype(layer.model, x)), params).to(x.dtype)
        network.unbind()
        return solution

    layer.forward = forward
    try:
        yield
    finally:
        del layer.forward


def quiet_compiler() -> contextlib.AbstractContextManager[None]:
    """Silence torch.compile's log lines and warnings while it traces and generates code.

    For a first call of a compiled module in a notebook: what the compiler logs (for example that no CUDA runtime
    was found) depends on the machine and would clutter the output. Errors still show.

    Returns:
        A context manager; the loggers' levels and the warning filters are restored when it exits.
    """
    _separate_compile_cache_per_cpu_capability()  # about to compile: one kernel cache per CPU kernel set
    return _quiet_dynamo()
