"""Work per right-hand-side evaluation pinned: nodeutils adds (almost) nothing to what the solver itself does.

Counted, not timed: torch operations (every call that reaches PyTorch's dispatcher, forward and backward),
calls of the dynamics network and Python calls made inside nodeutils, on the tutorial model in float32
with a fixed batch. Each count is taken at two tolerances; the difference divided by the difference in
function evaluations is the work *per evaluation*, free of whatever runs once per solve (input checks,
set-up). That per-evaluation work is compared with the same model written directly against torchdiffeq
(``benchmarks/epoch_time.py``'s bare loop), so a change in PyTorch's own operator counts moves both sides.

If one of these fails after a change, the change made every evaluation do more work: find what it added
to the hot path, or, if the work is needed, raise the budget below and say why in the commit.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import pytest
import torch
import torchdiffeq
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import nodeutils
from nodeutils.models import create_model
from nodeutils.sensitivity import AutogradAdjoint

TOLERANCES = (1e-3, 1e-6)  # two solves of the same batch with different numbers of evaluations
#: Extra torch operations per evaluation of nodeutils' discrete path over the bare torchdiffeq loop (both solving
#: in the network's float64): the finiteness check of every accepted step (six operations per six-evaluation
#: step). Measured 1.0; 4.7 when the layer flattened the state to a vector and viewed it as (batch, 20) at every call.
DISCRETE_EXTRA_OPS_PER_EVALUATION = 1.5
#: Torch operations per backward evaluation of the default InterpolatingAdjoint beyond the bare loop's
#: operations per evaluation (forward and backward): reading u(t) from the dense solution, the fresh
#: graph of each VJP and the adjoint state's bookkeeping. Measured 11.4 on the tutorial model (float64 solve) with
#: torch 2.14.1 (19.9 in float32, whose backward steps differ; releases decompose a few operations differently);
#: 26.7 when every evaluation went through functional_call and negated its two parts separately.
DEFAULT_EXTRA_OPS_PER_BACKWARD_EVALUATION = 13.0
#: Python calls inside nodeutils per backward evaluation of the default path (right-hand side, u(t), the
#: VJP, the network's binding). Measured 14.2.
DEFAULT_PYTHON_CALLS_PER_BACKWARD_EVALUATION = 14.5

PACKAGE_DIR = str(Path(nodeutils.__file__).resolve().parent)


class _OpCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


class _BareFunc(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.net(u)


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(16, 1, 28, 28, generator=generator), torch.arange(16) % 10


def _network_calls(model: nn.Module) -> list[int]:
    calls = [0]
    model.ode.model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def _nodeutils_step(sensealg, tol: float) -> dict[str, float]:
    """One training step (forward and backward) of the tutorial model: its counts."""
    x, y = _batch()
    model = create_model("class", sensealg=sensealg, rtol=tol, atol=tol)
    network_calls = _network_calls(model)
    python_calls = [0]

    def profile(frame, event, arg):  # noqa: ANN001, ANN202
        if event == "call" and frame.f_code.co_filename.startswith(PACKAGE_DIR):
            python_calls[0] += 1

    with _OpCounter() as counter:
        loss = nn.functional.cross_entropy(model(x), y)
        forward_ops = sum(counter.ops.values())
        sys.setprofile(profile)
        try:
            loss.backward()
        finally:
            sys.setprofile(None)
    stats = model.ode.stats
    return {"forward_ops": forward_ops, "backward_ops": sum(counter.ops.values()) - forward_ops,
            "ops": sum(counter.ops.values()), "nfe": stats.nfe_forward + stats.nfe_backward,
            "nfe_forward": stats.nfe_forward, "nfe_backward": stats.nfe_backward,
            "network_calls": network_calls[0], "backward_python_calls": python_calls[0]}


def _bare_step(tol: float) -> dict[str, float]:
    """The same step written directly against torchdiffeq (same weights): its counts."""
    x, y = _batch()
    reference = create_model("class", sensealg=AutogradAdjoint(), rtol=tol, atol=tol)
    func = _BareFunc(reference.ode.model)
    nfe = [0]
    func.register_forward_hook(lambda *_: nfe.__setitem__(0, nfe[0] + 1))
    t = torch.tensor([0.0, 1.0])
    with _OpCounter() as counter:
        h = torch.tanh(reference.encoder(x.flatten(1))).double()  # solved in the network's float64, as ours
        h = torchdiffeq.odeint(func, h, t, method="tsit5", rtol=tol, atol=tol)[-1].float()
        nn.functional.cross_entropy(reference.decoder(h), y).backward()
    return {"ops": sum(counter.ops.values()), "nfe": nfe[0]}


def _per_evaluation(runs: list[dict], key: str, nfe_key: str = "nfe") -> float:
    (a, b) = runs
    assert b[nfe_key] > a[nfe_key], "the two tolerances must give different numbers of evaluations"
    return (b[key] - a[key]) / (b[nfe_key] - a[nfe_key])


@pytest.fixture(scope="module")
def bare_ops_per_evaluation() -> float:
    return _per_evaluation([_bare_step(tol) for tol in TOLERANCES], "ops")


def test_discrete_path_does_no_more_work_per_evaluation_than_bare_torchdiffeq(bare_ops_per_evaluation):
    runs = [_nodeutils_step(AutogradAdjoint(), tol) for tol in TOLERANCES]
    for run in runs:  # one network call per right-hand-side evaluation, nothing re-run
        assert run["network_calls"] == run["nfe"] == run["nfe_forward"]
    extra = _per_evaluation(runs, "ops") - bare_ops_per_evaluation
    assert extra <= DISCRETE_EXTRA_OPS_PER_EVALUATION, (
        f"nodeutils' discrete path runs {extra:.1f} torch operations per evaluation more than bare torchdiffeq "
        f"(budget {DISCRETE_EXTRA_OPS_PER_EVALUATION})")


def test_default_adjoint_does_no_more_work_per_backward_evaluation(bare_ops_per_evaluation):
    runs = [_nodeutils_step("default", tol) for tol in TOLERANCES]
    for run in runs:  # each evaluation, forward or backward, calls the network exactly once
        assert run["network_calls"] == run["nfe"]
    ops = _per_evaluation(runs, "backward_ops", "nfe_backward")
    extra = ops - bare_ops_per_evaluation
    assert extra <= DEFAULT_EXTRA_OPS_PER_BACKWARD_EVALUATION, (
        f"the default adjoint runs {ops:.1f} torch operations per backward evaluation, {extra:.1f} more than "
        f"bare torchdiffeq per evaluation (budget {DEFAULT_EXTRA_OPS_PER_BACKWARD_EVALUATION})")
    calls = _per_evaluation(runs, "backward_python_calls", "nfe_backward")
    assert calls <= DEFAULT_PYTHON_CALLS_PER_BACKWARD_EVALUATION, (
        f"the default adjoint makes {calls:.1f} Python calls inside nodeutils per backward evaluation "
        f"(budget {DEFAULT_PYTHON_CALLS_PER_BACKWARD_EVALUATION})")


def test_default_adjoint_backward_does_not_rebind_parameters_per_evaluation(monkeypatch):
    """functional_call re-binds every parameter on every call; the backward pass binds them itself."""
    import torch.func

    import nodeutils.layers as layers

    calls = [0]
    original = torch.func.functional_call

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(layers, "functional_call", counting)
    run = _nodeutils_step("default", 1e-3)
    assert run["nfe_backward"] > 0
    assert calls[0] == 0


if __name__ == "__main__":  # print the measured values behind the budgets above
    bare = _per_evaluation([_bare_step(tol) for tol in TOLERANCES], "ops")
    discrete = [_nodeutils_step(AutogradAdjoint(), tol) for tol in TOLERANCES]
    default = [_nodeutils_step("default", tol) for tol in TOLERANCES]
    print(f"bare torchdiffeq: {bare:.2f} ops per evaluation")
    print(f"discrete: {_per_evaluation(discrete, 'ops') - bare:.2f} extra ops per evaluation")
    print(f"default: {_per_evaluation(default, 'backward_ops', 'nfe_backward') - bare:.2f} extra ops per backward "
          f"evaluation, {_per_evaluation(default, 'backward_python_calls', 'nfe_backward'):.2f} nodeutils Python "
          "calls per backward evaluation")
