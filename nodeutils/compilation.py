"""What PyTorch's compiler sees: TorchDynamo's graphs and graph breaks, and a quiet first compile.

Julia's ``@code_warntype`` asks whether the compiler can infer every type inside a layer. PyTorch's
question is whether TorchDynamo can capture the computation as one graph, or has to break it
(fall back to Python) wherever the program branches on a tensor's value or calls something it
cannot trace. :func:`explain` runs ``torch._dynamo.explain`` quietly and summarises the answer;
:func:`quiet_compiler` keeps ``torch.compile``'s log lines out of a notebook. Timing eager against
compiled code is :func:`nodeutils.measure.time_interleaved`'s job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from .checks import check_callable
from .errors import InputError

__all__ = ["ExplainRow", "explain", "break_category", "quiet_compiler"]


def _separate_compile_cache_per_cpu_capability() -> None:
    """Keep torch.compile's on-disk kernel cache apart for each ``ATEN_CPU_CAPABILITY``.

    Inductor's cache key does not include that setting: C++ kernels cached under AVX2 fail to build
    when reused with ``ATEN_CPU_CAPABILITY=default``. A folder of its own per setting avoids that.
    Called by the functions that compile, just before they do (not when the package is imported).
    """
    capability = os.environ.get("ATEN_CPU_CAPABILITY", "").strip()
    if capability and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = f"{_default_cache_dir()}_{capability}"


def _default_cache_dir() -> str:
    """The folder torch.compile keeps its kernel cache in when ``TORCHINDUCTOR_CACHE_DIR`` is unset."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir  # imported when needed: it loads Inductor

    return default_cache_dir()


_CATEGORIES = [
    ("Tensor.item()", "tensor value read into Python (.item())"),
    ("Data-dependent branching", "if/while on a tensor's value"),
    ("generic_jump", "if/while on a tensor's value"),
    ("marked as skipped", "call into code Dynamo skips"),
    ("builtin", "untraceable built-in function"),
    ("step_unsupported", "unsupported Python construct"),
]


def break_category(reason: str) -> str:
    """A short, stable label for a graph-break reason.

    Args:
        reason: the reason text Dynamo recorded for one graph break.

    Returns:
        A label such as ``"if/while on a tensor's value"``, or the reason's first line (up to 60 characters) when
        it fits no known kind.
    """
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

    Args:
        name: what was traced, shown in the row.
        graphs: the number of graphs Dynamo captured.
        graph_breaks: the number of breaks with a recorded reason.
        reasons: break label (:func:`break_category`) -> count.
        origins: package whose code broke the graph (``"torchdiffeq"``, ``"nodeutils"``, ``"torch"``,
            ``"user code"``) -> count.

    Raises:
        ValueError: ``reasons`` or ``origins`` does not add up to ``graph_breaks``.
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
        """Break reasons with counts, most frequent first.

        Args:
            n: how many reasons to show (``None``: all).

        Returns:
            E.g. ``"if/while on a tensor's value x2; tensor value read into Python (.item()) x1"``, or ``"none"``.
        """
        return "; ".join(f"{label} x{count}" for label, count in self.reasons.most_common(n)) or "none"

    def where(self) -> str:
        """Packages whose code broke the graph, with counts (they add up to ``graph_breaks``).

        Returns:
            E.g. ``"torchdiffeq 2, nodeutils 1"``, or ``"-"`` when there are no breaks.
        """
        return ", ".join(f"{origin} {count}" for origin, count in self.origins.most_common()) or "-"

    def summary(self) -> tuple[int, int, tuple, tuple]:
        """Everything the row shows, in a form that compares equal between rows that look the same.

        Returns:
            ``(graphs, graph_breaks, reasons, origins)``, the two counters as sorted tuples of (label, count).
        """
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
    """Trace ``fn(*args)`` with TorchDynamo (nothing is compiled) and count graphs and breaks.

    ``fn`` runs once. Dynamo's caches are reset before and after, so functions compiled earlier compile again on
    their next call.

    Args:
        name: what is traced, shown in the row (e.g. ``"the network f, one evaluation"``).
        fn: the function or module to trace.
        *args: the arguments ``fn`` is called with.

    Returns:
        The row of graphs, breaks and their reasons.
    """
    # tracing writes Inductor's default cache folder into the environment, which a later compile would then keep
    if not isinstance(name, str):
        raise InputError(f"name must be a string labelling the row, like 'the ODE layer'; got {name!r}")
    check_callable("fn", fn, "the function to trace, e.g. model.ode or a lambda: model(x)")
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


def quiet_compiler() -> contextlib.AbstractContextManager[None]:
    """Silence torch.compile's log lines and warnings while it traces and generates code.

    For a first call of a compiled module in a notebook: what the compiler logs (for example that no CUDA runtime
    was found) depends on the machine and would clutter the output. Errors still show.

    Returns:
        A context manager; the loggers' levels and the warning filters are restored when it exits.
    """
    _separate_compile_cache_per_cpu_capability()  # about to compile: one kernel cache per CPU kernel set
    return _quiet_dynamo()
