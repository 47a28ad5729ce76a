"""Training speed with 1 and 2 intra-op threads, on an idle machine and with competing CPU-bound processes.

Runs ``python -m nodeutils train --threads N`` side by side in one run and prints the median epoch time
of each setting and the ratio 2 threads / 1 thread. A "load" is one or more busy-looping Python
processes started here and stopped afterwards. ``--cores 0,1`` pins everything to those cores (to
mimic a 2-core laptop or a Colab/Binder VM on a larger machine).

    .venv/bin/python benchmarks/threads.py                      # every core of this machine
    .venv/bin/python benchmarks/threads.py --cores 0,1 --load 0 1 2
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

ROW = re.compile(r"^\[(\d+)/\d+\]\tTime (\d+\.\d+)s\t(.*)$")


def _pin(cores: list[int] | None):  # noqa: ANN202 - a preexec_fn
    return None if cores is None else (lambda: os.sched_setaffinity(0, cores))


def train(threads: int, subset: int, epochs: int, cores: list[int] | None) -> tuple[list[float], list[str], float]:
    """Epoch times, the table without times, and the wall time of one CLI run."""
    cmd = [sys.executable, "-m", "nodeutils", "train", "--subset", str(subset), "--epochs", str(epochs),
           "--threads", str(threads), "--no-progress"]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, preexec_fn=_pin(cores), check=True)
    wall = time.perf_counter() - start
    rows = [ROW.match(line) for line in done.stdout.splitlines()]
    rows = [m for m in rows if m]
    return [float(m.group(2)) for m in rows], [m.group(3) for m in rows], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--cores", default=None, help="comma-separated CPU numbers to pin every process to")
    parser.add_argument("--load", type=int, nargs="+", default=[0, 1], help="numbers of competing processes")
    args = parser.parse_args()
    cores = None if args.cores is None else [int(c) for c in args.cores.split(",")]
    print(f"# {os.cpu_count()} CPUs, pinned to {cores or 'all'}; load average {os.getloadavg()[0]:.2f} at start; "
          f"subset={args.subset}, epochs={args.epochs}; epoch time = median of epochs 2..{args.epochs}")
    print("competing processes | 1 thread: s/epoch (wall s) | 2 threads: s/epoch (wall s) | 2 threads / 1 thread "
          "| same table")
    for n_load in args.load:
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=_pin(cores))
                   for _ in range(n_load)]
        try:
            time.sleep(0.5 if burners else 0.0)
            results = {threads: train(threads, args.subset, args.epochs, cores) for threads in (1, 2)}
        finally:
            for burner in burners:
                burner.terminate()
                burner.wait()
        median = {k: statistics.median(v[0][1:] or v[0]) for k, v in results.items()}
        same = results[1][1] == results[2][1]
        print(f"{n_load} | {median[1]:.3f} ({results[1][2]:.1f}) | {median[2]:.3f} ({results[2][2]:.1f}) | "
              f"{median[2] / median[1]:.2f}x | {'yes' if same else 'no'}")
        if not same:
            for threads in (1, 2):
                print(f"#   {threads} thread(s): {results[threads][1][-1]}")


if __name__ == "__main__":
    main()
