"""Test problems and measuring tools shared by the test files (imported as ``from helpers import ...``)."""

from __future__ import annotations

import gzip
import importlib.util
import inspect
import math
import re
import struct
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from nodeutils.errors import NodeUtilsError

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------------------
# Bad-input tables
# ---------------------------------------------------------------------------------------------------------------
def assert_refused(call: Callable[..., Any], error: type[Exception], fragments: Iterable[Any], fx: Any = None) -> str:
    """Assert that ``call()`` raises ``error``, one of the package's own errors, whose message holds every fragment.

    A call with one argument without a default gets ``fx`` (the ``fx`` fixture of conftest.py: its attributes are
    fixtures, such as ``fx.model`` or ``fx.tmp_path``); so does a fragment that is a function rather than a string.
    Returns the message.
    """
    required = [p for p in inspect.signature(call).parameters.values() if p.default is inspect.Parameter.empty]
    args = (fx,) if required else ()
    with pytest.raises(error) as caught:
        call(*args)
    assert isinstance(caught.value, NodeUtilsError), type(caught.value)
    message = str(caught.value)
    for fragment in fragments:
        text = fragment(fx) if callable(fragment) else fragment
        assert text in message, (text, message)
    return message


# ---------------------------------------------------------------------------------------------------------------
# Notebook exercises
# ---------------------------------------------------------------------------------------------------------------
def assert_exercises_numbered_and_reachable(module: ModuleType, numbers: Sequence[int] | None = None) -> None:
    """A notebook's exercises are numbered 1, 2, ... in order (or ``numbers``), titled apart, and each is reachable
    as ``module.<its name>``, so the printed advice ``exercises.<name>.hint()`` works."""
    from nodeutils.exercises import exercises_of

    found = exercises_of(module)
    assert [e.number for e in found] == list(numbers or range(1, len(found) + 1))
    assert all(getattr(module, e.name) is e for e in found)
    assert len({e.title for e in found}) == len(found)


def assert_reference_is_correct(exercise: Any) -> None:
    """The exercise's own solution is judged correct, and its verdict says so."""
    from nodeutils.exercises import Correct

    assert isinstance(exercise.judge(exercise.solution_answer()), Correct)
    assert ": correct. " in exercise.verdict(exercise.solution_answer())


def wrong_verdict(exercise: Any, answer: Any) -> str:
    """The verdict on an answer that must not be judged correct."""
    text = exercise.verdict(answer)
    assert ": correct. " not in text
    return text


# ---------------------------------------------------------------------------------------------------------------
# ODE problems
# ---------------------------------------------------------------------------------------------------------------
def oscillator(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """y'' = -y as a system: from (1, 0) the exact solution is (cos t, -sin t)."""
    return torch.stack([y[1], -y[0]])


class Linear(nn.Module):
    """du/dt = A u, with A a trainable parameter (its exact gradient comes from the matrix exponential)."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a.clone())

    def forward(self, t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return u @ self.a.T


def linear_problem() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A 4x4 matrix A, a batch of three initial states and the weights of a linear loss (float64, seed 0)."""
    g = torch.Generator().manual_seed(0)
    a = 0.6 * torch.randn(4, 4, generator=g, dtype=torch.float64) - 0.3 * torch.eye(4, dtype=torch.float64)
    u0 = torch.randn(3, 4, generator=g, dtype=torch.float64)  # a batch of three initial states
    w = torch.randn(3, 4, generator=g, dtype=torch.float64)
    return a, u0, w


def convergence_order(errors: Sequence[float], step_sizes: Sequence[float]) -> float:
    """Least-squares slope of log(error) against log(step size): the empirical order of a method."""
    xs = [math.log(h) for h in step_sizes]
    ys = [math.log(e) for e in errors]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


# ---------------------------------------------------------------------------------------------------------------
# How a layer calls its network
# ---------------------------------------------------------------------------------------------------------------
class CallCounter(nn.Module):
    """Identity layer with state: a ``calls`` buffer incremented at every forward call."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x


@dataclass
class NetworkCalls:
    """Calls of the network during one forward pass and the backward pass after it, by route.

    ``own``: a direct call with the module's own parameters; ``slots``: a direct call with other tensors
    put into its parameter slots; ``functional``: a call through ``torch.func.functional_call``.
    """

    forward_own: int = 0
    forward_slots: int = 0
    forward_functional: int = 0
    backward_own: int = 0
    backward_slots: int = 0
    backward_functional: int = 0


def _through_functional_call() -> bool:
    """Whether torch.nn.utils.stateless._functional_call (behind torch.func.functional_call) is on the call stack."""
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_functional_call" and code.co_filename.replace("\\", "/").endswith("nn/utils/stateless.py"):
            return True
        frame = frame.f_back
    return False


def count_network_calls(model: nn.Module, network: nn.Module, x: torch.Tensor) -> NetworkCalls:
    """Run ``model(x).sum().backward()`` and count how ``network`` (a submodule) was called in each pass.

    A forward pre-hook looks for ``functional_call`` on the call stack, and otherwise compares the tensors in
    the network's parameter slots with its own parameters.
    """
    assert any(m is network for m in model.modules()), "network must be a submodule of model"
    calls = NetworkCalls()
    phase = ["forward"]
    own = dict(network.named_parameters())

    def hook(module: nn.Module, args: tuple) -> None:
        if _through_functional_call():
            kind = "functional"
        else:
            current = dict(module.named_parameters())
            kind = "own" if current.keys() == own.keys() and all(current[n] is p for n, p in own.items()) else "slots"
        name = f"{phase[0]}_{kind}"
        setattr(calls, name, getattr(calls, name) + 1)

    handle = network.register_forward_pre_hook(hook)
    try:
        model.zero_grad(set_to_none=True)
        out = model(x)
        phase[0] = "backward"
        out.sum().backward()
    finally:
        handle.remove()
    return calls


def solver_parameters(layer: nn.Module) -> Any:
    """What a Neural ODE layer (or a model's) hands the solver: one flat vector, or a name -> tensor dict."""
    layer = getattr(layer, "ode", layer)
    return layer.settings.solver_parameters(layer.model)[0]


def right_hand_side(layer: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``u -> f(u)`` computed the way the layer's forward solve calls its network.

    Class-based and compact layers call it through ``BoundNetwork`` (bound for the call, as during a solve);
    the stateful layer through ``StatefulModel``, with its parameters as a dict.
    """
    from nodeutils.layer_solve import BoundNetwork
    from nodeutils.layers import StatefulModel, StatefulNeuralODE

    layer = getattr(layer, "ode", layer)
    params, as_dict = layer.settings.solver_parameters(layer.model)
    if isinstance(layer, StatefulNeuralODE):
        stateful, named = StatefulModel(layer.model, state=dict(layer.state)), as_dict(params)
        return lambda u: stateful(u, named)
    bound = BoundNetwork(layer.model, params, as_dict)

    def rhs(u: torch.Tensor) -> torch.Tensor:
        with bound:
            return bound(u, params)

    return rhs


@dataclass
class JacobianStructure:
    """The Jacobians of a model's dynamics for one batch: d f(u) / d u and d f(u) / d theta."""

    state_shape: tuple[int, int]  # d f(u) / d u, the batched state flattened
    nonzero_blocks: int  # image-by-image blocks (features x features) holding any nonzero entry
    blocks: int  # all image-by-image blocks
    nonzero_entries: int
    parameter_shape: tuple[int, int]  # d f(u) / d theta, theta the dynamics' parameters flattened
    parameter_nonzero_entries: int


def jacobian_structure(model: nn.Module, images: torch.Tensor) -> JacobianStructure:
    """Build both Jacobians of the model's dynamics at the encoded ``images`` and describe their structure."""
    from nodeutils.layer_solve import solve_dtype
    from nodeutils.models import encode

    network = model.ode.model
    with torch.no_grad():
        u = encode(model, images)
        u = u.to(solve_dtype(network, u))
    params = {name: p.detach() for name, p in network.named_parameters()}
    batch, features = u.shape

    def f(state: torch.Tensor, theta: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.func.functional_call(network, theta, (state,))

    d_state, d_params = torch.func.jacrev(f, argnums=(0, 1))(u, params)
    state = d_state.reshape(batch * features, batch * features)
    blocks = d_state.permute(0, 2, 1, 3).reshape(batch, batch, features * features)
    parameter_columns = sum(p.numel() for p in params.values())
    parameter_nonzero = sum(int((d.reshape(batch * features, -1) != 0).sum()) for d in d_params.values())
    return JacobianStructure(tuple(state.shape), int((blocks != 0).any(-1).sum()), batch * batch,
                             int((state != 0).sum()), (batch * features, parameter_columns), parameter_nonzero)


# ---------------------------------------------------------------------------------------------------------------
# Training tables
# ---------------------------------------------------------------------------------------------------------------
#: One row of the training table, as train() prints it.
TABLE_ROW = re.compile(r"^\[(\d+)/(\d+)\]\tTime \d+\.\d{4}s"
                       r"\tTraining Accuracy: \d+\.\d{2}%\tTest Accuracy: \d+\.\d{2}%$")


def without_times(rows: Sequence[str] | str | Any) -> list[str]:
    """Training-table rows with the (machine-dependent) ``Time ...s`` column removed.

    Takes a list of rows, a single row, or anything with a ``rows()`` method (a TrainingHistory).
    """
    if hasattr(rows, "rows"):
        rows = rows.rows()
    if isinstance(rows, str):
        rows = [rows]
    return [re.sub(r"\tTime \S+", "", row) for row in rows]


def same_table(a: Sequence[str] | Any, b: Sequence[str] | Any) -> bool:
    """True when two training tables (or histories) agree in every row apart from the timings."""
    return without_times(a) == without_times(b)


# ---------------------------------------------------------------------------------------------------------------
# Data files
# ---------------------------------------------------------------------------------------------------------------
def write_idx(path: Path, array: np.ndarray, magic: int | None = None, compress: bool = False) -> None:
    """Write ``array`` as an IDX file (MNIST's format): magic number, dimensions, unsigned bytes."""
    magic = (0x0800 | array.ndim) if magic is None else magic
    payload = struct.pack(">i", magic) + b"".join(struct.pack(">i", d) for d in array.shape)
    payload += array.astype(np.uint8).tobytes()
    with (gzip.open if compress else open)(path, "wb") as fh:
        fh.write(payload)


def fake_mnist_files(root: Path, n_train: int = 60, n_test: int = 0, compress: bool = False) -> Path:
    """torchvision's MNIST layout under ``root`` (random pixels, labels 0, 1, ..., 9, 0, ...): the raw folder.

    The test files (t10k) are written only when ``n_test`` is given.
    """
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(2)
    suffix = ".gz" if compress else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        if n:
            write_idx(raw / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28)), compress=compress)
            write_idx(raw / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(n) % 10, compress=compress)
    return raw


# ---------------------------------------------------------------------------------------------------------------
# Requirements and the scripts that write the environment files
# ---------------------------------------------------------------------------------------------------------------
CONDA_NAMES = {"torch": "pytorch-cpu"}  # conda-forge's CPU build of PyTorch


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py``, imported as a module (a fresh copy each call)."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def requirements(lines: Iterable[str]) -> dict[str, str]:
    """Requirement lines (``name>=1.0  # comment``) as lower-case name -> version specifier without spaces."""
    out = {}
    for line in lines:
        name, spec = re.match(r"([A-Za-z0-9_.-]+)(.*)", line.split("#")[0].strip()).groups()
        out[name.lower()] = spec.replace(" ", "")
    return out
