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
    assert magnitude(2.9e-6) == "~1e-06" and magnitude(math.inf) == "failed" and magnitude(0.0) == "0"
    assert magnitude(9.18e-7) == "~1e-06" and magnitude(1.7e-7) == "~1e-07"  # the nearest power, not the floor
    assert magnitude(0.794) == "~1e+00" and magnitude(0.9993) == "~1e+00" and magnitude(3.3e-6) == "~1e-05"
    table = format_table(["a", "bb"], [[1, 2], [333, 4]]).splitlines()
    assert table[0] == "a    bb" and table[1] == "---  --" and table[3] == "333  4"


def test_backsolve_recovery_diverges_and_saturates_at_long_horizons():
    from nodeutils.benchmarking import backsolve_recovery
    short, long = backsolve_recovery([1, 16])
    assert abs(short.largest_recovered - short.largest_u0) < 1e-3 and short.saturated == 0
    assert long.largest_recovered > 1e10 and long.saturated == 1


def test_leak_removes_saturation_and_backsolve_error_explodes():
    saturating, leaky = (horizon_sweep({"b": BacksolveAdjoint()}, [16], leak=leak)[0] for leak in (0.0, 0.01))
    assert saturating.grad_error < 2 and leaky.grad_error > 1e6


def test_checkpointed_resolve_matches_interpolating_dense_output_and_checkpoints_shrink_it():
    from nodeutils.sensitivity import GaussAdjoint, InterpolatingAdjoint
    rows = horizon_sweep({"i": InterpolatingAdjoint(), "c": GaussAdjoint(checkpointing=True),
                          "c4": GaussAdjoint(checkpointing=True, checkpoints=[4.0, 8.0, 12.0])}, [16])
    assert rows[1].resolved_kib == rows[0].kept_kib and rows[0].resolved_kib == 0
    assert rows[2].resolved_kib < rows[1].resolved_kib and rows[2].kept_kib > rows[1].kept_kib


def test_jacobian_structure_is_block_diagonal_per_image():
    from nodeutils.benchmarking import jacobian_structure
    from nodeutils.models import create_model
    images = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    s = jacobian_structure(create_model(), images)
    assert s.state_shape == (80, 80) and s.nonzero_blocks == 4 and s.blocks == 16 and s.parameter_shape == (80, 540)
    # output k depends on the first two layers (210 + 110 parameters) and on the last layer's row k and bias k (11)
    assert s.parameter_nonzero_entries == 80 * (210 + 110 + 11)


def test_perturbed_gradients_changes_steps_only_inside_the_block():
    from nodeutils.benchmarking import perturbed_gradients
    p = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.SGD([p], lr=1.0)
    p.grad = torch.ones(3)
    with perturbed_gradients(0.5):
        opt.step()
    assert abs(float((p.detach() + 1).norm()) - 0.5 * 3**0.5) < 1e-6
    p.grad = torch.ones(3)
    before = p.detach().clone()
    opt.step()
    assert torch.equal(p.detach(), before - 1)


def test_memory_by_horizon_grows_for_discrete_and_stays_flat_when_checkpointed():
    from nodeutils.benchmarking import memory_by_horizon
    from nodeutils.sensitivity import AutogradAdjoint, InterpolatingAdjoint
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.arange(8)
    rows = memory_by_horizon({"d": AutogradAdjoint(), "c": InterpolatingAdjoint(checkpointing=True)}, [1, 10], x, y)
    d1, c1, d10, c10 = rows
    assert d10.kept_kib > d1.kept_kib and c10.kept_kib == c1.kept_kib and d10.nfe_forward > d1.nfe_forward
