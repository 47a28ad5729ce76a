"""Helpers the notebooks use to state their statistics and compare training tables."""

import math

import pytest

from nodeutils.analysis import binomial_interval, same_table, without_times
from nodeutils.errors import InputError
from nodeutils.training import TrainingHistory, format_row


def test_wilson_interval_matches_a_hand_computed_value():
    # 130 of 150: p = 0.8667, z = 1.95996; Wilson bounds computed by hand from the closed form.
    low, high = binomial_interval(130, 150)
    z = 1.959963984540054
    p, n = 130 / 150, 150
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert low == pytest.approx(centre - half, abs=1e-12) and high == pytest.approx(centre + half, abs=1e-12)
    assert low == pytest.approx(0.8028, abs=1e-3) and high == pytest.approx(0.9125, abs=1e-3)


def test_wilson_interval_stays_in_range_and_narrows_with_more_trials():
    assert binomial_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert binomial_interval(10, 10)[1] == pytest.approx(1.0, abs=1e-12)
    assert 0.0 <= binomial_interval(0, 10)[0] and binomial_interval(10, 10)[1] <= 1.0
    narrow, wide = binomial_interval(800, 1000), binomial_interval(8, 10)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    assert binomial_interval(130, 150, 0.99)[0] < binomial_interval(130, 150, 0.95)[0]


@pytest.mark.parametrize("args, message", [
    ((5, 0), "trials must be a positive integer"),
    ((11, 10), "successes must be an integer between 0 and trials=10"),
    ((-1, 10), "successes must be an integer between 0 and trials=10"),
    ((5, 10, 1.5), "confidence must lie strictly between 0 and 1"),
])
def test_wilson_interval_rejects_bad_input(args, message):
    with pytest.raises(InputError, match=message):
        binomial_interval(*args)


def test_tables_compare_without_their_timings():
    a = [format_row(1, 2, 0.1234, 60.15, 57.33), format_row(2, 2, 0.2, 72.44, 71.33)]
    b = [format_row(1, 2, 9.8765, 60.15, 57.33), format_row(2, 2, 0.3, 72.44, 71.33)]
    c = [format_row(1, 2, 0.1234, 60.15, 57.33), format_row(2, 2, 0.2, 72.44, 70.67)]
    assert without_times(a[0]) == ["[1/2]\tTraining Accuracy: 60.15%\tTest Accuracy: 57.33%"]
    assert same_table(a, b) and not same_table(a, c) and not same_table(a, a[:1])
    history = TrainingHistory(epoch_time=[5.0, 6.0], train_accuracy=[60.15, 72.44], test_accuracy=[57.33, 71.33],
                              settings={"epochs": 2})
    assert same_table(history, a)


def test_bounded_prints_rounding_level_errors_as_their_bound():
    from nodeutils.plots import bounded

    assert bounded(0.0, 1e-5) == "0"
    assert bounded(3.2e-7, 1e-5) == "< 1e-05"
    assert bounded(9.99e-6, 1e-5) == "< 1e-05"
    assert bounded(2.5e-3, 1e-5) == "~1e-03"  # above the bound: its order of magnitude


def test_default_threads_reads_omp_num_threads(monkeypatch):
    import pytest

    from nodeutils.env import default_threads
    from nodeutils.errors import InputError

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert default_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "two")
    with pytest.raises(InputError, match="OMP_NUM_THREADS='two'"):
        default_threads()


def test_compare_predictions_counts_changed_classes_and_logit_gap():
    import torch

    from nodeutils.analysis import compare_predictions
    from nodeutils.models import create_model
    a, b = create_model(seed=0), create_model(seed=0)
    images = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    loader = [(images, torch.zeros(16, dtype=torch.long))]
    same = compare_predictions(a, b, loader)
    assert same.images == 16 and same.changed == 0 and same.largest_logit_difference == 0
    with torch.no_grad():
        b[-1].bias += torch.arange(10.0) * 100
    moved = compare_predictions(a, b, loader)
    assert moved.changed > 0 and moved.largest_logit_difference > 100
