import math

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from nodeutils.benchmarking import (  # noqa: E402
    HorizonRow,
    format_table,
    horizon_sweep,
    saved_tensor_bytes,
)
from nodeutils.plots import magnitude, plot_horizon_sweep  # noqa: E402
from nodeutils.sensitivity import AutogradAdjoint, BacksolveAdjoint, GaussAdjoint  # noqa: E402


def test_saved_tensor_bytes_counts_what_backward_keeps():
    w = torch.randn(100, 100, requires_grad=True)
    x = torch.randn(50, 100)
    out, kept = saved_tensor_bytes(lambda: torch.tanh(x @ w).sum(), exclude=[w])
    assert kept == x.numel() * 4 + 50 * 100 * 4  # the input of the matmul and tanh's output
    out.backward()


def test_horizon_sweep_shows_backsolve_failing_and_memory_growing():
    rows = horizon_sweep({"discrete": AutogradAdjoint(), "backsolve": BacksolveAdjoint(),
                          "gauss": GaussAdjoint(checkpointing=True)}, [1, 16])
    by = {(r.name, r.horizon): r for r in rows}
    assert by["backsolve", 16.0].grad_error > 100 * by["backsolve", 1.0].grad_error
    assert by["gauss", 16.0].grad_error < 1e-4
    assert by["discrete", 16.0].kept_kib > 2 * by["discrete", 1.0].kept_kib
    assert by["gauss", 16.0].kept_kib == by["gauss", 1.0].kept_kib


def test_plot_horizon_sweep_draws_one_line_per_algorithm():
    rows = [HorizonRow(n, h, e, m) for n in ("a", "b") for h, e, m in ((1, 1e-6, 10), (4, math.inf, 20))]
    fig = plot_horizon_sweep(rows)
    err_ax, mem_ax = fig.axes
    assert len(err_ax.lines) == len(mem_ax.lines) == 2
    assert list(mem_ax.lines[0].get_ydata()) == [10, 20]
    assert err_ax.get_xlabel() and err_ax.get_ylabel() and err_ax.get_title()


def test_magnitude_and_table_formatting():
    assert magnitude(3.2e-6) == "~1e-06" and magnitude(math.inf) == "failed" and magnitude(0.0) == "0"
    table = format_table(["a", "bb"], [[1, 2], [333, 4]]).splitlines()
    assert table[0] == "a    bb" and table[1] == "---  --" and table[3] == "333  4"
