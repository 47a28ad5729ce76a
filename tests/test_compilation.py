import torch
from torch import nn

from nodeutils.compilation import break_category, compare_compiled, explain
from nodeutils.layers import CallCounter, make_ode_layer
from nodeutils.sensitivity import InterpolatingAdjoint


def test_explain_counts_a_break_on_tensor_values():
    def branches(x):
        if x.sum() > 0:  # Python control flow on a tensor's value
            return x * 2
        return x - 1

    row = explain("branches", branches, torch.ones(3))
    assert row.graph_breaks >= 1 and row.graphs >= 2
    assert "if/while on a tensor's value" in row.top_reasons()
    clean = explain("clean", lambda x: torch.tanh(x) * 2, torch.ones(3))
    assert (clean.graphs, clean.graph_breaks, clean.top_reasons(), clean.where()) == (1, 0, "none", "-")


def test_break_categories_are_short_labels():
    assert break_category("Unsupported Tensor.item() call with capture_scalar_outputs=False") == \
        "tensor value read into Python (.item())"
    assert break_category("something new\nwith details") == "something new"


def test_compare_compiled_restores_the_module():
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    original = model[0]
    timing = compare_compiled(model, torch.randn(2, 4), part="0", repeats=2)
    assert model[0] is original
    assert timing.eager_s > 0 and timing.compiled_s > 0 and timing.first_call_s > 0


def test_adjoint_backward_evaluations_reach_module_state_but_not_explicit_state():
    counts = {}
    for style in ("class", "stateful"):
        torch.manual_seed(0)
        network = nn.Sequential(nn.Linear(20, 20), nn.BatchNorm1d(20), nn.Tanh(), CallCounter())
        layer = make_ode_layer(style, network, sensealg=InterpolatingAdjoint())
        layer(torch.randn(16, 20))[-1].pow(2).sum().backward()
        state_calls = layer.state.get("3.calls") if style == "stateful" else None
        counts[style] = (layer.stats.nfe_forward, layer.stats.nfe_backward, int(network[3].calls),
                         int(network[1].num_batches_tracked), state_calls)
    nfe_f, nfe_b, calls, bn, _ = counts["class"]
    assert calls == bn == nfe_f + nfe_b  # every evaluation, forward and backward, moved the module's buffers
    nfe_f, _, calls, bn, state_calls = counts["stateful"]
    assert calls == bn == 0 and int(state_calls) == nfe_f  # explicit state: the forward solve's evaluations only


def test_break_counts_reconcile_with_reasons_and_origins():
    from nodeutils import create_model
    from nodeutils.sensitivity import AutogradAdjoint

    model = create_model(sensealg=AutogradAdjoint(), solver="rk4", options={"step_size": 0.5})
    row = explain("rk4", model, torch.rand(2, 1, 28, 28))
    assert row.graph_breaks >= 1
    assert sum(row.reasons.values()) == sum(row.origins.values()) == row.graph_breaks
    assert row.graphs > row.graph_breaks  # graphs also end where a traced function returns
    shown = [part.rsplit(" x", 1) for part in row.top_reasons().split("; ")]
    assert sum(int(count) for _, count in shown) == row.graph_breaks  # the table lists every reason


def test_explain_row_refuses_counts_that_do_not_add_up():
    from collections import Counter

    import pytest

    from nodeutils.compilation import ExplainRow

    with pytest.raises(ValueError, match="add up"):
        ExplainRow("bad", 3, 2, Counter({"a": 1}), Counter({"b": 2}))


def test_solve_outside_try_removes_only_the_try_block_break():
    import pytest

    from nodeutils import create_model
    from nodeutils.compilation import solve_outside_try
    from nodeutils.sensitivity import AutogradAdjoint

    def model(style):
        return create_model(style, sensealg=AutogradAdjoint(), solver="rk4", options={"step_size": 0.5})

    x = torch.rand(2, 1, 28, 28)
    plain = model("class")
    expected = plain(x)
    with solve_outside_try(plain.ode):
        assert torch.equal(plain(x), expected)  # the same solve
        outside = explain("class outside try", plain, x)
    assert "forward" not in vars(plain.ode)  # the layer's own forward is back
    stateful = explain("stateful", model("stateful"), x)
    assert outside.summary() == stateful.summary()
    assert outside.origins["nodeutils"] == 0
    with pytest.raises(TypeError, match="class-based"):
        with solve_outside_try(model("stateful").ode):
            pass


def test_time_interleaved_rotates_and_ratio_reports_spread():
    from nodeutils.compilation import Ratio, ratio, time_interleaved

    order = []
    times = time_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3, warmup=1)
    assert order == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-up, then rounds in rotating order
    assert [len(v) for v in times.values()] == [3, 3]
    r = ratio([2.0, 4.0, 6.0, 8.0, 10.0], [1.0, 2.0, 2.0, 4.0, 2.0])
    assert (r.low, r.median, r.high) == (2.0, 2.0, 3.0) and r.clear
    assert not Ratio(1.0, 0.9, 1.1).clear
    assert str(Ratio(1.0, 0.9, 1.1)) == "1.00x (0.90x-1.10x)"
    import pytest

    with pytest.raises(ValueError):
        ratio([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        time_interleaved({}, 3)


def test_compare_compiled_reports_an_interleaved_ratio():
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    timing = compare_compiled(model, torch.randn(2, 4), part="0", repeats=3)
    r = timing.compiled_over_eager
    assert r is not None and r.low <= r.median <= r.high


def test_time_interleaved_uses_every_rotation_equally_often_for_a_multiple_of_the_steps():
    from collections import Counter

    from nodeutils.compilation import time_interleaved

    order: list[str] = []
    steps = {name: (lambda n=name: order.append(n)) for name in "abc"}
    time_interleaved(steps, repeats=6, warmup=0)
    rounds = Counter("".join(order[i:i + 3]) for i in range(0, len(order), 3))
    assert rounds == Counter({"abc": 2, "bca": 2, "cab": 2})
    assert all(Counter(order[i::3]) == Counter({"a": 2, "b": 2, "c": 2}) for i in range(3))  # each slot, each step


def test_quiet_compiler_silences_the_compiler_s_loggers_and_warnings_and_restores_them():
    import logging
    import warnings

    from nodeutils.compilation import quiet_compiler

    logger = logging.getLogger("torch.utils.cpp_extension")
    before = logger.level
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_compiler():
            assert logger.getEffectiveLevel() == logging.ERROR
            warnings.warn("from the compiler", UserWarning, stacklevel=1)
        assert caught == []
    assert logger.level == before
