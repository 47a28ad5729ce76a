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

import torch

from nodeutils.benchmarking import COST_ALGORITHMS, HORIZON_ALGORITHMS, cost_table, format_table, horizon_sweep
from nodeutils.data import load_mnist


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
