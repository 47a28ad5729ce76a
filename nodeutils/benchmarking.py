"""Measurements behind notebook 03 and ``benchmarks/sensitivity.py``: cost, accuracy and memory.

Memory is measured as the bytes of distinct tensor storages kept for the backward pass (autograd's
saved tensors plus what an adjoint stores itself), excluding the parameters, which every method keeps.
That is what grows with the number of solver steps under discrete backprop; it is deterministic, so
it can be printed in a notebook and compared across runs.
"""

from __future__ import annotations

import contextlib
import statistics
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from .errors import SolverError
from .layers import solve_dtype
from .models import create_model
from .sensitivity import (
    AutogradAdjoint,
    BacksolveAdjoint,
    GaussAdjoint,
    InterpolatingAdjoint,
    QuadratureAdjoint,
    SensitivityAlgorithm,
    SolveStats,
    flat_grad,
    odeint,
    relative_error,
)
from .training import logitcrossentropy

__all__ = [
    "COST_ALGORITHMS",
    "HORIZON_ALGORITHMS",
    "saved_tensor_bytes",
    "CostRow",
    "cost_table",
    "ContractingDynamics",
    "HorizonRow",
    "horizon_sweep",
    "RecoveryRow",
    "backsolve_recovery",
    "JacobianStructure",
    "jacobian_structure",
    "MemoryRow",
    "memory_by_horizon",
    "perturbed_gradients",
    "linear_ode_gradient_errors",
    "format_table",
]

#: The algorithms compared per training step of the tutorial model (notebook 03, benchmarks/sensitivity.py).
COST_ALGORITHMS: dict[str, SensitivityAlgorithm] = {
    "discrete (autograd)": AutogradAdjoint(),
    "backsolve": BacksolveAdjoint(),
    "backsolve (seminorm)": BacksolveAdjoint(seminorm=True),
    "interpolating / autograd": InterpolatingAdjoint(autojacvec="autograd"),
    "interpolating / func": InterpolatingAdjoint(autojacvec="func"),
    "interpolating / jacobian": InterpolatingAdjoint(autojacvec="jacobian"),
    "interpolating / checkpointed": InterpolatingAdjoint(checkpointing=True),
    "quadrature / autograd": QuadratureAdjoint(autojacvec="autograd"),
    "gauss / autograd": GaussAdjoint(autojacvec="autograd"),
    "gauss / func": GaussAdjoint(autojacvec="func"),
}

#: The algorithms compared over growing integration horizons.
HORIZON_ALGORITHMS: dict[str, SensitivityAlgorithm] = {
    "discrete": AutogradAdjoint(),
    "backsolve": BacksolveAdjoint(),
    "interpolating": InterpolatingAdjoint(),
    "interpolating (checkpointed)": InterpolatingAdjoint(checkpointing=True),
    "gauss": GaussAdjoint(),
    "gauss (checkpointed)": GaussAdjoint(checkpointing=True),
}


def saved_tensor_bytes(fn: Callable[[], Any], exclude: Sequence[torch.Tensor] = ()) -> tuple[Any, int]:
    """Run ``fn()``; return its result and the bytes of tensor storage it keeps for backward.

    Only tensors still alive when ``fn`` returns are counted (graphs of rejected solver steps, for
    example, are freed before the backward pass and cost nothing there).
    """
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


@dataclass
class CostRow:
    """One algorithm's cost for a training step of the tutorial model."""

    name: str
    step_ms: float
    nfe_forward: int
    nfe_backward: int
    kept_kib: float
    grad_error: float  # relative to discrete backprop at the same tolerance


def _model_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    logitcrossentropy(model(x), y).backward()
    return flat_grad([p.grad for p in model.parameters()], list(model.parameters()))


def cost_table(algorithms: dict[str, SensitivityAlgorithm], x: torch.Tensor, y: torch.Tensor, *,
               repeats: int = 7, structured_params: bool = False) -> list[CostRow]:
    """Time per training step, NFE, memory kept and gradient difference from discrete backprop.

    Steps are timed in interleaved rounds (one step of every algorithm per round) so that machine
    noise affects all alike; each time is the median over ``repeats`` rounds.
    """
    reference = _model_gradient(create_model(sensealg=AutogradAdjoint(), structured_params=structured_params), x, y)
    setups = []
    for name, alg in algorithms.items():
        model = create_model(sensealg=alg, structured_params=structured_params)
        params = list(model.parameters())
        error = relative_error(_model_gradient(model, x, y), reference)
        stats: SolveStats = model.ode.stats
        model.zero_grad(set_to_none=True)
        loss, kept = saved_tensor_bytes(lambda m=model: logitcrossentropy(m(x), y), exclude=params)
        loss.backward()
        setups.append((name, model, torch.optim.Adam(params, 1e-3), stats.nfe_forward, stats.nfe_backward, kept, error))
    times: dict[str, list[float]] = {name: [] for name in algorithms}
    for _ in range(repeats):
        for name, model, optimiser, *_ in setups:
            start = time.perf_counter()
            optimiser.zero_grad(set_to_none=True)
            logitcrossentropy(model(x), y).backward()
            optimiser.step()
            times[name].append(time.perf_counter() - start)
    return [CostRow(name, 1e3 * statistics.median(times[name]), nfe_f, nfe_b, kept / 1024, error)
            for name, _, _, nfe_f, nfe_b, kept, error in setups]


class ContractingDynamics(nn.Module):
    """du/dt = -diag(rates) u + tanh(W u + b), with decay rates spread from ``slowest`` to ``fastest``.

    Every trajectory is pulled towards one equilibrium, but on very different time scales: the slow
    directions remember the initial state for long, the fast ones forget it at once. Running the
    system backward in time (as :class:`~nodeutils.sensitivity.BacksolveAdjoint` does to recover
    u(t)) amplifies errors in the fast directions like exp(fastest * horizon), and the coupling W
    carries them into the slow directions the gradient depends on.

    ``leak`` adds ``leak * (W u + b)`` to the right-hand side: the activation then never saturates
    (its slope stays at least ``leak``), which notebook 03 uses to show what saturation does.
    """

    def __init__(self, dim: int = 8, fastest: float = 4.0, slowest: float = 0.1, seed: int = 0,
                 leak: float = 0.0) -> None:
        super().__init__()
        self.leak = float(leak)
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("rates", torch.logspace(torch.log10(torch.tensor(slowest)),
                                                     torch.log10(torch.tensor(fastest)), dim, dtype=torch.float64))
        self.weight = nn.Parameter(0.5 * torch.randn(dim, dim, generator=g, dtype=torch.float64) / dim**0.5)
        self.bias = nn.Parameter(0.1 * torch.randn(dim, generator=g, dtype=torch.float64))

    def forward(self, t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        z = u @ self.weight.T + self.bias
        if self.leak:
            return -self.rates * u + torch.tanh(z) + self.leak * z
        return -self.rates * u + torch.tanh(z)


@dataclass
class HorizonRow:
    """Gradient error and memory kept for one algorithm at one integration horizon."""

    name: str
    horizon: float
    grad_error: float  # inf when the backward pass failed
    kept_kib: float
    note: str = ""
    resolved_kib: float = 0.0  # largest dense forward solution rebuilt from a checkpoint during the backward pass
    nfe_backward: int = 0


@contextlib.contextmanager
def _recording_resolves(alg: SensitivityAlgorithm, sizes: list[int]) -> Iterator[None]:
    """Record the bytes of every dense solution a checkpointed adjoint rebuilds on its backward pass."""
    if not getattr(alg, "checkpointing", False):
        yield
        return
    original = alg.state_on

    def state_on(problem, record, k, counter):  # noqa: ANN001, ANN202 - same signature as the method
        dense = original(problem, record, k, counter)
        sizes.append(dense.nbytes())
        return dense

    alg.state_on = state_on
    try:
        yield
    finally:
        del alg.state_on


def horizon_sweep(algorithms: dict[str, SensitivityAlgorithm], horizons: Sequence[float], *, rtol: float = 1e-6,
                  atol: float = 1e-6, batch: int = 16, dim: int = 8, fastest: float = 4.0,
                  leak: float = 0.0) -> list[HorizonRow]:
    """Gradient error (vs discrete backprop at rtol = atol = 1e-10) and memory kept, for each horizon.

    The system is :class:`ContractingDynamics` (with ``leak``); the loss is a weighted sum of the final
    states. Each row also gives the largest dense solution a checkpointed adjoint rebuilt during its
    backward pass (``resolved_kib``: held on top of ``kept_kib`` while that interval is processed) and
    the backward function evaluations.
    """
    g = torch.Generator().manual_seed(1)
    u0 = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    w = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    rows = []
    for horizon in horizons:
        t = torch.tensor([0.0, float(horizon)], dtype=torch.float64)

        def gradient(alg: SensitivityAlgorithm, tol: tuple[float, float], stats: SolveStats,
                     t: torch.Tensor = t) -> tuple[torch.Tensor, int]:
            func = ContractingDynamics(dim, fastest, leak=leak)
            y0 = u0.clone().requires_grad_()
            ys, kept = saved_tensor_bytes(
                lambda: odeint(func, y0, t, rtol=tol[0], atol=tol[1], sensealg=alg, stats=stats),
                exclude=list(func.parameters()))
            (w * ys[-1]).sum().backward()
            return torch.cat([y0.grad.reshape(-1), func.weight.grad.reshape(-1), func.bias.grad]), kept

        reference, _ = gradient(AutogradAdjoint(), (1e-10, 1e-10), SolveStats())
        for name, alg in algorithms.items():
            stats, resolved = SolveStats(), []
            try:
                with _recording_resolves(alg, resolved):
                    grad, kept = gradient(alg, (rtol, atol), stats)
                error = relative_error(grad, reference)
                note = ""
            except SolverError as err:
                error, kept, note = float("inf"), 0, type(err).__name__
            if error != error:  # NaN gradient
                error, note = float("inf"), "NaN gradient"
            rows.append(HorizonRow(name, float(horizon), error, kept / 1024, note, max(resolved, default=0) / 1024,
                                   stats.nfe_backward))
    return rows


def linear_ode_gradient_errors(algorithms: dict[str, SensitivityAlgorithm], tolerances: Sequence[float], *,
                               horizon: float = 1.5, dim: int = 6, batch: int = 4) -> dict[str, list[float]]:
    """Relative error of dL/dA and dL/du0 (stacked) against the exact matrix-exponential gradient."""
    g = torch.Generator().manual_seed(0)
    a = 0.6 * torch.randn(dim, dim, generator=g, dtype=torch.float64) - 0.3 * torch.eye(dim, dtype=torch.float64)
    u0 = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    w = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    a_ref, u_ref = a.clone().requires_grad_(), u0.clone().requires_grad_()
    exact = (w * (u_ref @ torch.linalg.matrix_exp(a_ref * horizon).T)).sum()
    reference = torch.cat([g_.reshape(-1) for g_ in torch.autograd.grad(exact, (a_ref, u_ref))])

    class Linear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Parameter(a.clone())

        def forward(self, t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
            return u @ self.a.T

    errors: dict[str, list[float]] = {}
    for name, alg in algorithms.items():
        errors[name] = []
        for tol in tolerances:
            func, y0 = Linear(), u0.clone().requires_grad_()
            ys = odeint(func, y0, torch.tensor([0.0, horizon], dtype=torch.float64), rtol=tol, atol=tol,
                        sensealg=alg)
            (w * ys[-1]).sum().backward()
            errors[name].append(relative_error(torch.cat([func.a.grad.reshape(-1), y0.grad.reshape(-1)]), reference))
    return errors


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with aligned columns."""
    cells = [[str(h) for h in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@dataclass
class RecoveryRow:
    """What backsolve's backward re-integration of u gives back at t = 0 for one horizon."""

    horizon: float
    largest_u0: float  # max |u(0)| over the batch: the true initial states
    largest_recovered: float  # max |u(0)| after solving forward to T and back to 0
    saturated: float  # share of tanh inputs at the recovered u(0) whose slope 1 - tanh^2 is below 1e-16


def backsolve_recovery(horizons: Sequence[float], *, rtol: float = 1e-6, atol: float = 1e-6, batch: int = 16,
                       dim: int = 8, fastest: float = 4.0) -> list[RecoveryRow]:
    """Solve :class:`ContractingDynamics` from 0 to T and back again, as backsolve does, and report u(0).

    The initial states are those of :func:`horizon_sweep`. Where the recovered state has grown large,
    ``tanh`` saturates: its slope underflows to zero, so the state's error stops reaching the gradient.
    """
    g = torch.Generator().manual_seed(1)
    u0 = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    func = ContractingDynamics(dim, fastest)
    rows = []
    with torch.no_grad():
        for horizon in horizons:
            there = odeint(func, u0, [0.0, float(horizon)], rtol=rtol, atol=atol)[-1]
            back = odeint(func, there, [float(horizon), 0.0], rtol=rtol, atol=atol)[-1]
            slope = 1 - torch.tanh(back @ func.weight.T + func.bias) ** 2
            rows.append(RecoveryRow(float(horizon), float(u0.abs().max()), float(back.abs().max()),
                                    float((slope < 1e-16).double().mean())))
    return rows


@dataclass
class JacobianStructure:
    """The Jacobians that ``autojacvec="jacobian"`` builds for one batch of the tutorial model."""

    state_shape: tuple[int, int]  # d f(u) / d u, the batched state flattened
    nonzero_blocks: int  # image-by-image blocks (features x features) holding any nonzero entry
    blocks: int  # all image-by-image blocks
    nonzero_entries: int
    parameter_shape: tuple[int, int]  # d f(u) / d theta, theta the dynamics' parameters flattened
    parameter_nonzero_entries: int  # output k depends on every parameter but the last layer's other rows


def jacobian_structure(model: nn.Module, images: torch.Tensor) -> JacobianStructure:
    """Build both Jacobians of the model's dynamics at the encoded ``images`` and describe their structure."""
    from .models import encode  # models imports this module's neighbours; keep the import local

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


@dataclass
class MemoryRow:
    """Memory one training step of the tutorial model keeps between its forward and backward pass."""

    name: str
    horizon: float
    nfe_forward: int
    kept_kib: float


def memory_by_horizon(algorithms: dict[str, SensitivityAlgorithm], horizons: Sequence[float], x: torch.Tensor,
                      y: torch.Tensor, dtype: torch.dtype = torch.float64) -> list[MemoryRow]:
    """Bytes kept for the backward pass by the tutorial model solved over [0, T], for each T and algorithm.

    float64 by default: over long spans a float32 solve's step count can depend on the machine's rounding
    (an accept/reject decision close to the tolerance), float64's does not.
    """
    rows = []
    x = x.to(dtype)
    for horizon in horizons:
        for name, alg in algorithms.items():
            model = create_model(sensealg=alg, tspan=(0.0, float(horizon))).to(dtype)
            params = list(model.parameters())
            loss, kept = saved_tensor_bytes(lambda m=model: logitcrossentropy(m(x), y), exclude=params)
            loss.backward()
            rows.append(MemoryRow(name, float(horizon), model.ode.stats.nfe_forward, kept / 1024))
    return rows


@contextlib.contextmanager
def perturbed_gradients(relative: float, seed: int = 0) -> Iterator[None]:
    """Inside the block, every optimiser step first adds noise of norm ``relative * |grad|`` to each gradient.

    Models a gradient computed another way (another adjoint, another device) that differs from this
    one by ``relative``; the noise is drawn from a seeded CPU generator, so runs repeat exactly.
    """
    generator = torch.Generator().manual_seed(seed)

    def perturb(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                noise = torch.randn(p.grad.shape, generator=generator, dtype=torch.float64)
                scale = relative * float(p.grad.double().norm()) / max(float(noise.norm()), 1e-300)
                p.grad.add_((scale * noise).to(p.grad.dtype).to(p.grad.device))

    handle = register_optimizer_step_pre_hook(perturb)
    try:
        yield
    finally:
        handle.remove()
