"""Per-epoch training time of nodeutils and its peers, measured side by side in one run.

Every model trains the tutorial's network (same initial weights, the same list of batches, the solve in the
ODE network's dtype (float64, as create_model builds it), Tsit5 at
rtol = atol = 1e-3, Adam 1e-3) on the 1,350 training images of the 1,500-image subset, on one thread.
Epochs are interleaved (one epoch of each model per round, the order rotating between rounds) so that
machine noise hits all alike. Each epoch is divided by the bare torchdiffeq epoch of its own round;
the table reports the median seconds per epoch, the median of those per-round ratios and their spread
(25th to 75th percentile). Time is this process's CPU time by default, which leaves out time spent
waiting for a core on a shared machine; ``--clock wall`` measures elapsed time instead.

    python benchmarks/epoch_time.py [--epochs 30] [--clock cpu|wall]

torchode is optional (``pip install .[bench]``); without it its row says so.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchdiffeq
from torch import nn

import nodeutils  # noqa: F401  (registers method="tsit5" with torchdiffeq)
from nodeutils.data import load_mnist
from nodeutils.evaluation import logitcrossentropy
from nodeutils.measure import ratio, time_interleaved
from nodeutils.models import create_model, ode_dynamics
from nodeutils.sensitivity import AutogradAdjoint, InterpolatingAdjoint

try:
    import torchode
except ImportError:  # optional: pip install .[bench]
    torchode = None

TOL = 1e-3
BARE = "torchdiffeq `odeint`, discrete (bare loop)"
BARE32 = "torchdiffeq `odeint`, discrete, the solve in float32 (the tutorial's Float32)"
TORCHODE = "torchode `AutoDiffAdjoint(Tsit5)`, discrete"
DISCRETE = "nodeutils `AutogradAdjoint()` (discrete)"
DEFAULT = "nodeutils default (`InterpolatingAdjoint`)"
#: (model, peer it is divided by, largest ratio aimed at).
TARGETS = [(DISCRETE, BARE, 1.05), (DISCRETE, TORCHODE, 1.0), (DEFAULT, BARE, 1.5)]


class BareODEFunc(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.net(u)


class BareModel(nn.Module):
    """The tutorial's model written directly against torchdiffeq (or torchode), without nodeutils."""

    def __init__(self, reference: nn.Module, solve: str = "odeint", ode_dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.encoder = nn.Linear(784, 20)
        # the solve runs in the dtype of nodeutils' ODE network unless told otherwise
        self.ode_dtype = ode_dtype or next(reference.ode.model.parameters()).dtype
        self.func = BareODEFunc(ode_dynamics()).to(self.ode_dtype)
        self.decoder = nn.Linear(20, 10)
        with torch.no_grad():  # same initial weights as the nodeutils model
            for mine, theirs in zip(self.parameters(), reference.parameters(), strict=True):
                mine.copy_(theirs)
        self.solve_with = solve
        self.register_buffer("t", torch.tensor([0.0, 1.0], dtype=self.ode_dtype))
        if solve == "torchode":
            term = torchode.ODETerm(self.func)
            self.torchode_solver = torchode.AutoDiffAdjoint(
                torchode.Tsit5(term=term), torchode.IntegralController(atol=TOL, rtol=TOL, term=term))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.encoder(x.flatten(1))).to(self.ode_dtype)
        if self.solve_with == "odeint":
            h = torchdiffeq.odeint(self.func, h, self.t, method="tsit5", rtol=TOL, atol=TOL)[-1]
        elif self.solve_with == "odeint_adjoint":
            h = torchdiffeq.odeint_adjoint(self.func, h, self.t, method="tsit5", rtol=TOL, atol=TOL,
                                           adjoint_params=tuple(self.func.parameters()))[-1]
        else:  # torchode: one step size per image (its solver is batched), discrete backprop
            problem = torchode.InitialValueProblem(y0=h, t_eval=self.t.expand(h.shape[0], 2))
            h = self.torchode_solver.solve(problem).ys[:, -1]
        return self.decoder(h.to(self.decoder.weight.dtype))


def epoch(model: nn.Module, optimiser: torch.optim.Optimizer, batches: list) -> None:
    for x, y in batches:
        loss = logitcrossentropy(model(x), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="timed epochs per model (after one warm-up)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: this process's CPU time (default; time spent waiting for a shared core is left "
                             "out); wall: elapsed time")
    args = parser.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(1)
    train_loader, _ = load_mnist(128, 0.9, subset=1500)
    batches = list(train_loader)  # one fixed list: every model sees the same batches in the same order
    reference = create_model("class", sensealg=AutogradAdjoint())
    builders: dict[str, Callable[[], nn.Module] | None] = {
        BARE: lambda: BareModel(reference),
        BARE32: lambda: BareModel(reference, ode_dtype=torch.float32),
        TORCHODE: (lambda: BareModel(reference, "torchode")) if torchode else None,
        "torchdiffeq `odeint_adjoint` (backsolve)": lambda: BareModel(reference, "odeint_adjoint"),
        DISCRETE: lambda: create_model("class", sensealg=AutogradAdjoint()),
        DEFAULT: lambda: create_model(
            "class", sensealg=InterpolatingAdjoint(autojacvec="autograd")),
    }
    runs = {}
    for name, build in builders.items():
        if build is not None:
            model = build()
            runs[name] = (model, torch.optim.Adam(model.parameters(), 1e-3))
    start = time.perf_counter()
    # one warm-up epoch each, then rounds of one epoch per model, the order rotating between rounds
    steps = {name: (lambda m=model, o=opt: epoch(m, o, batches)) for name, (model, opt) in runs.items()}
    times = time_interleaved(steps, repeats=args.epochs, warmup=1, clock=clock)
    ratios = {name: ratio(times[name], times[BARE]) for name in runs}
    images = sum(len(y) for _, y in batches)
    print(f"per-epoch training time: {args.epochs} interleaved epochs per model, {images} images in batches of 128, "
          f"Tsit5 at rtol = atol = {TOL:g}, 1 thread, {args.clock} time, torch {torch.__version__} "
          f"(run took {time.perf_counter() - start:.0f} s)")
    print()
    print("| model | s/epoch (median) | ratio to bare `odeint` (median) | ratio spread (25-75%) |")
    print("| --- | --- | --- | --- |")
    for name in builders:
        if name not in runs:
            print(f"| {name} | not run: `pip install .[bench]` installs torchode | | |")
            continue
        print(f"| {name} | {statistics.median(times[name]):.4f} | {ratios[name].median:.2f} | "
              f"{ratios[name].low:.2f}-{ratios[name].high:.2f} |")
    print()
    for name, peer, goal in TARGETS:
        if peer not in runs:
            print(f"target {name} <= {goal:.2f}x {peer}: not measured ({peer} not run)")
            continue
        median = ratio(times[name], times[peer]).median  # per round, as above
        print(f"target {name} <= {goal:.2f}x {peer}: {median:.2f}x, {'met' if median <= goal else 'NOT met'}")


if __name__ == "__main__":
    main()
