"""benchmarks/sensitivity.py: the horizon sweep behind notebook 03's tables (backsolve failing, memory growing)."""

import sys

from helpers import ROOT

from nodeutils.sensitivity import AutogradAdjoint, BacksolveAdjoint, GaussAdjoint, InterpolatingAdjoint

sys.path.insert(0, str(ROOT / "benchmarks"))
import sensitivity as sensitivity_benchmark  # noqa: E402


def test_horizon_sweep_shows_backsolve_failing_and_memory_growing():
    rows = sensitivity_benchmark.horizon_sweep({"discrete": AutogradAdjoint(), "backsolve": BacksolveAdjoint(),
                                                "gauss": GaussAdjoint(checkpointing=True)}, [1, 16])
    by = {(r.name, r.horizon): r for r in rows}
    assert by["backsolve", 16.0].grad_error > 100 * by["backsolve", 1.0].grad_error
    assert by["gauss", 16.0].grad_error < 1e-4
    assert by["discrete", 16.0].kept_kib > 2 * by["discrete", 1.0].kept_kib
    assert by["gauss", 16.0].kept_kib == by["gauss", 1.0].kept_kib


def test_leak_removes_saturation_and_backsolve_error_explodes():
    saturating, leaky = (sensitivity_benchmark.horizon_sweep({"b": BacksolveAdjoint()}, [16], leak=leak)[0]
                         for leak in (0.0, 0.01))
    assert saturating.grad_error < 2 and leaky.grad_error > 1e6


def test_checkpointed_resolve_matches_interpolating_dense_output_and_checkpoints_shrink_it():
    rows = sensitivity_benchmark.horizon_sweep(
        {"i": InterpolatingAdjoint(), "c": GaussAdjoint(checkpointing=True),
         "c4": GaussAdjoint(checkpointing=True, checkpoints=[4.0, 8.0, 12.0])}, [16])
    assert rows[1].resolved_kib == rows[0].kept_kib and rows[0].resolved_kib == 0
    assert rows[2].resolved_kib < rows[1].resolved_kib and rows[2].kept_kib > rows[1].kept_kib
