"""What PyTorch's compiler sees: TorchDynamo graph breaks and eager-vs-compiled timings.

Julia's ``@code_warntype`` asks whether the compiler can infer every type inside a layer. PyTorch's
question is whether TorchDynamo can capture the computation as one graph, or has to break it
(fall back to Python) wherever the program branches on a tensor's value or calls something it
cannot trace. :func:`explain` runs ``torch._dynamo.explain`` quietly and summarises the answer.
"""

from __future__ import annotations

import contextlib
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

__all__ = ["ExplainRow", "explain", "break_category", "time_forward_backward", "CompileTiming", "compare_compiled"]


def _separate_compile_cache_per_cpu_capability() -> None:
    """Keep torch.compile's on-disk kernel cache apart for each ``ATEN_CPU_CAPABILITY``.

    Inductor's cache key does not include that setting: C++ kernels cached under AVX2 fail to build
    when reused with ``ATEN_CPU_CAPABILITY=default``. A folder of its own per setting avoids that.
    """
    capability = os.environ.get("ATEN_CPU_CAPABILITY", "").strip()
    if capability and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir

        os.environ["TORCHINDUCTOR_CACHE_DIR"] = f"{default_cache_dir()}_{capability}"


_separate_compile_cache_per_cpu_capability()

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
    """Graphs and graph breaks Dynamo found in one function call."""

    name: str
    graphs: int
    graph_breaks: int
    reasons: Counter = field(default_factory=Counter)
    origins: Counter = field(default_factory=Counter)  # package whose code broke the graph

    def top_reasons(self, n: int = 2) -> str:
        return "; ".join(f"{label} x{count}" for label, count in self.reasons.most_common(n)) or "none"

    def where(self) -> str:
        return ", ".join(f"{origin} {count}" for origin, count in self.origins.most_common()) or "-"


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
    torch._dynamo.reset()
    with _quiet_dynamo():
        report = torch._dynamo.explain(fn)(*args)
    torch._dynamo.reset()
    reasons = Counter(break_category(r.reason) for r in report.break_reasons)
    origins = Counter(_origin(r) for r in report.break_reasons)
    return ExplainRow(name, report.graph_count, report.graph_break_count, reasons, origins)


def _origin(reason: Any) -> str:
    frames = getattr(reason, "user_stack", None) or []
    filename = frames[-1].filename if frames else ""
    for package in ("torchdiffeq", "nodeutils", "torch"):
        if f"{package}/" in filename.replace("\\", "/"):
            return package
    return "user code"


def time_forward_backward(model: torch.nn.Module, x: torch.Tensor, repeats: int = 10) -> float:
    """Median seconds of ``model(x).sum().backward()`` after two warm-up calls."""
    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()

    for _ in range(2):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclass
class CompileTiming:
    eager_s: float
    first_call_s: float  # includes compilation
    compiled_s: float


def compare_compiled(model: torch.nn.Module, x: torch.Tensor, part: str = "ode.model",
                     repeats: int = 10) -> CompileTiming:
    """Time forward+backward eagerly, then with ``torch.compile`` applied to the submodule ``part``."""
    eager = time_forward_backward(model, x, repeats)
    owner_name, _, attr = part.rpartition(".")
    owner = model.get_submodule(owner_name)
    original = getattr(owner, attr)
    torch._dynamo.reset()
    try:
        with _quiet_dynamo():
            setattr(owner, attr, torch.compile(original))
            start = time.perf_counter()
            model(x).sum().backward()
            first = time.perf_counter() - start
            compiled = time_forward_backward(model, x, repeats)
    finally:
        setattr(owner, attr, original)
        torch._dynamo.reset()
    return CompileTiming(eager, first, compiled)
