"""Cost of each sensitivity algorithm relative to discrete backprop, and memory/accuracy vs horizon.

Part 1 trains the tutorial model (batch of 128 embedded MNIST images, Tsit5, rtol = atol = 1e-3) and
reports, per algorithm, the median time of a training step, forward/backward function evaluations,
the memory kept for the backward pass and the gradient's relative difference from discrete backprop,
each with its ratio to discrete backprop. Part 2 integrates a contracting system over growing horizons
and reports gradient error (vs a tight-tolerance reference) and memory kept.

    python benchmarks/sensitivity.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nodeutils.data import load_mnist
from nodeutils.errors import SolverError
from nodeutils.evaluation import logitcrossentropy
from nodeutils.formatting import format_table
from nodeutils.measure import flat_grad, relative_error, saved_tensor_bytes, time_interleaved
from nodeutils.models import create_model
from nodeutils.sensitivity import (
    AutogradAdjoint,
    BacksolveAdjoint,
    GaussAdjoint,
    InterpolatingAdjoint,
    QuadratureAdjoint,
    SensitivityAlgorithm,
    SolveStats,
    odeint,
)

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

    Steps are timed in interleaved rounds (one step of every algorithm per round, the order rotating) so that
    machine noise affects all alike; each time is the median over ``repeats`` rounds.
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

    def training_step(model: nn.Module, optimiser: torch.optim.Optimizer) -> None:
        optimiser.zero_grad(set_to_none=True)
        logitcrossentropy(model(x), y).backward()
        optimiser.step()

    times = time_interleaved({name: (lambda m=model, o=optimiser: training_step(m, o))
                              for name, model, optimiser, *_ in setups}, repeats=repeats, warmup=0)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed training steps per algorithm")
    args = parser.parse_args()
    torch.set_num_threads(2)
    x, y = next(iter(load_mnist(128, 0.9, subset=1500)[0]))

    rows = cost_table(COST_ALGORITHMS, x, y, repeats=args.repeats)
    base = rows[0]
    print("Part 1: one training step of the tutorial model (batch 128, rtol = atol = 1e-3)")
    print(format_table(
        ["algorithm", "step ms", "x discrete", "NFE fwd", "NFE bwd", "kept KiB", "x discrete", "grad rel. diff"],
        [[r.name, f"{r.step_ms:.1f}", f"{r.step_ms / base.step_ms:.2f}", r.nfe_forward, r.nfe_backward,
          f"{r.kept_kib:.0f}", f"{r.kept_kib / base.kept_kib:.2f}", f"{r.grad_error:.1e}"] for r in rows]))
    continuous = [r for r in rows[1:] if "jacobian" not in r.name]
    worst = max(continuous, key=lambda r: r.step_ms)
    print(f"slowest continuous adjoint with a VJP: {worst.name}, {worst.step_ms / base.step_ms:.2f} x discrete "
          "(goal <= 2.5)")

    horizons = [1, 4, 16, 64]
    sweep = horizon_sweep(HORIZON_ALGORITHMS, horizons)
    print("\nPart 2: contracting system over growing horizons (float64, rtol = atol = 1e-6)")
    table = []
    for name in HORIZON_ALGORITHMS:
        mine = [r for r in sweep if r.name == name]
        table.append([name] + [f"{r.grad_error:.1e}" for r in mine] + [f"{r.kept_kib:.0f}" for r in mine]
                     + [f"{mine[-1].kept_kib / mine[0].kept_kib:.2f}"])
    print(format_table(["algorithm"] + [f"err T={h}" for h in horizons] + [f"KiB T={h}" for h in horizons]
                       + ["KiB T=64 / T=1"], table))

if __name__ == "__main__":
    main()
