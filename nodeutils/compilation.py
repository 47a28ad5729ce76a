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

_CACHE_FIX = ("free some space, or point TORCHINDUCTOR_CACHE_DIR at a writable folder (before importing nodeutils), "
              "e.g. TORCHINDUCTOR_CACHE_DIR=/tmp/torchinductor")


def _compile_cache_dir() -> str:
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    return os.environ.get("TORCHINDUCTOR_CACHE_DIR") or cache_dir()


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
    _check_compile_cache()
    eager = time_forward_backward(model, x, repeats)
    owner_name, _, attr = part.rpartition(".")
    owner = model.get_submodule(owner_name)
    original = getattr(owner, attr)
    torch._dynamo.reset()
    try:
        with _quiet_dynamo():
            setattr(owner, attr, torch.compile(original))
            start = time.perf_counter()
            try:
                model(x).sum().backward()
            except Exception as err:
                cause = _disk_error(err)
                if cause is None:
                    raise
                raise InputError(f"torch.compile could not write its kernels into {_compile_cache_dir()} "
                                 f"({cause.strerror or cause}): {_CACHE_FIX}") from None
            first = time.perf_counter() - start
            compiled = time_forward_backward(model, x, repeats)
    finally:
        setattr(owner, attr, original)
        torch._dynamo.reset()
    return CompileTiming(eager, first, compiled)
