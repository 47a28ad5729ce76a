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
