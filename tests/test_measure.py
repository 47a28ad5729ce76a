"""nodeutils.measure: memory kept for the backward pass, interleaved timings and their ratios."""

from collections import Counter

import pytest
import torch
from helpers import assert_refused

from nodeutils.errors import InputError
from nodeutils.measure import Ratio, flat_grad, ratio, relative_error, saved_tensor_bytes, time_interleaved


def test_saved_tensor_bytes_counts_what_backward_keeps():
    w = torch.randn(100, 100, requires_grad=True)
    x = torch.randn(50, 100)
    out, kept = saved_tensor_bytes(lambda: torch.tanh(x @ w).sum(), exclude=[w])
    assert kept == x.numel() * 4 + 50 * 100 * 4  # the input of the matmul and tanh's output
    out.backward()


def test_time_interleaved_rotates_and_ratio_reports_spread():
    order = []
    times = time_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3, warmup=1)
    assert order == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-up, then rounds in rotating order
    assert [len(v) for v in times.values()] == [3, 3]
    r = ratio([2.0, 4.0, 6.0, 8.0, 10.0], [1.0, 2.0, 2.0, 4.0, 2.0])
    assert (r.low, r.median, r.high) == (2.0, 2.0, 3.0) and r.clear
    assert not Ratio(1.0, 0.9, 1.1).clear
    assert str(Ratio(1.0, 0.9, 1.1)) == "1.00x (0.90x-1.10x)"
    with pytest.raises(ValueError):
        ratio([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        time_interleaved({}, 3)


def test_time_interleaved_uses_every_rotation_equally_often_for_a_multiple_of_the_steps():
    order: list[str] = []
    steps = {name: (lambda n=name: order.append(n)) for name in "abc"}
    time_interleaved(steps, repeats=6, warmup=0)
    rounds = Counter("".join(order[i:i + 3]) for i in range(0, len(order), 3))
    assert rounds == Counter({"abc": 2, "bca": 2, "cab": 2})
    assert all(Counter(order[i::3]) == Counter({"a": 2, "b": 2, "c": 2}) for i in range(3))  # each slot, each step


BAD_INPUTS = [
    pytest.param(lambda: flat_grad([torch.ones(3)], [torch.zeros(3), torch.zeros(2)]), InputError,
                 ("one gradient (or None) per tensor",), id="flat_grad with a gradient missing"),
    pytest.param(lambda: flat_grad([torch.ones(3)], [torch.zeros(2, 2)]), InputError,
                 ("gradient 0 must be None or a tensor shaped like its tensor",), id="flat_grad of a mis-shaped one"),
    pytest.param(lambda: relative_error(torch.tensor([1, 2]), torch.tensor([1, 3])), InputError,
                 ("floating-point tensors",), id="relative_error of integers"),
    pytest.param(lambda: relative_error(torch.ones(3), torch.ones(3, 1)), InputError,
                 ("same shape", "(3,) and (3, 1)"), id="relative_error would broadcast"),
]


@pytest.mark.parametrize("call, error, fragments", BAD_INPUTS)
def test_bad_input_is_refused_with_the_argument_and_the_fix(call, error, fragments):
    assert_refused(call, error, fragments)
