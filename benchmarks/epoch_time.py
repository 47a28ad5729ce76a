"""Per-epoch training time: nodeutils vs a bare torchdiffeq loop, measured side by side.

Both train the tutorial's model (same weights, same batches, Tsit5 at rtol = atol = 1e-3, Adam 1e-3)
on the 1,500-image subset. Epochs alternate between the two so that machine noise hits both alike;
the median epoch time of each is reported with the ratio.

    python benchmarks/epoch_time.py [--epochs 15] [--sensealg autograd]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchdiffeq
from torch import nn

import nodeutils  # noqa: F401  (registers method="tsit5" with torchdiffeq)
from nodeutils.data import load_mnist
from nodeutils.models import create_model
from nodeutils.training import logitcrossentropy


class BareODEFunc(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.net(u)


class BareModel(nn.Module):
    """The tutorial's model written directly against torchdiffeq, without nodeutils."""

    def __init__(self, reference: nn.Sequential) -> None:
        super().__init__()
        self.encoder = nn.Linear(784, 20)
        self.func = BareODEFunc(nn.Sequential(nn.Linear(20, 10), nn.Tanh(), nn.Linear(10, 10), nn.Tanh(),
                                              nn.Linear(10, 20), nn.Tanh()))
        self.decoder = nn.Linear(20, 10)
        with torch.no_grad():  # same initial weights as the nodeutils model
            for mine, theirs in zip(self.parameters(), reference.parameters()):
                mine.copy_(theirs)
        self.register_buffer("t", torch.tensor([0.0, 1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.encoder(x.flatten(1)))
        h = torchdiffeq.odeint(self.func, h, self.t, method="tsit5", rtol=1e-3, atol=1e-3)[-1]
        return self.decoder(h)


def epoch(model: nn.Module, optimiser: torch.optim.Optimizer, loader) -> float:
    start = time.perf_counter()
    for x, y in loader:
        loss = logitcrossentropy(model(x), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--sensealg", default="autograd",
                        help="nodeutils gradient method; 'autograd' is the like-for-like comparison")
    args = parser.parse_args()
    torch.set_num_threads(2)
    train_loader, _ = load_mnist(128, 0.9, subset=1500)
    ours = create_model("class", sensealg=args.sensealg)
    bare = BareModel(ours)
    runs = {"nodeutils": (ours, torch.optim.Adam(ours.parameters(), 1e-3)),
            "bare torchdiffeq": (bare, torch.optim.Adam(bare.parameters(), 1e-3))}
    for model, opt in runs.values():  # warm-up epoch, not timed
        epoch(model, opt, train_loader)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.epochs):
        for name, (model, opt) in runs.items():
            times[name].append(epoch(model, opt, train_loader))
    med = {name: statistics.median(v) for name, v in times.items()}
    print(f"per-epoch training time, median of {args.epochs} alternating epochs, 1,350 images, 2 threads")
    print(f"  nodeutils (sensealg={args.sensealg}): {med['nodeutils']:.4f} s")
    print(f"  bare torchdiffeq.odeint:        {med['bare torchdiffeq']:.4f} s")
    print(f"  ratio nodeutils / bare: {med['nodeutils'] / med['bare torchdiffeq']:.2f} (goal <= 1.10)")


if __name__ == "__main__":
    main()
