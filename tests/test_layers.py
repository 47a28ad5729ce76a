import pytest
import torch
from torch import nn

from nodeutils.errors import InputError
from nodeutils.layers import (
    NeuralODE,
    NeuralODECompact,
    StatefulModel,
    StatefulNeuralODE,
    compact,
    last_state,
    make_ode_layer,
)
from nodeutils.models import ode_dynamics


def _three_layers(**kwargs):
    inner = ode_dynamics()
    layers = []
    for cls in (NeuralODE, NeuralODECompact, StatefulNeuralODE):
        model = ode_dynamics()
        model.load_state_dict(inner.state_dict())
        layers.append(cls(model, **kwargs))
    return layers


@pytest.mark.parametrize("flat_params", [False, True])
def test_three_styles_compute_identical_outputs_and_gradients(flat_params):
    x = torch.randn(5, 20)
    outs, grads = [], []
    for layer in _three_layers(sensealg="interpolating", flat_params=flat_params):
        out = layer(x)
        last_state(out).pow(2).sum().backward()
        outs.append(out.detach())
        grads.append(torch.cat([p.grad.reshape(-1) for p in layer.parameters()]))
    assert outs[0].shape == (2, 5, 20)
    for out, grad in zip(outs[1:], grads[1:]):  # the same computation in three wrappers: bit-identical
        assert torch.equal(out, outs[0])
        assert torch.equal(grad, grads[0])


def test_output_starts_at_the_input_and_last_state_keeps_the_end():
    layer = NeuralODE(ode_dynamics())
    x = torch.randn(3, 20)
    out = layer(x)
    assert torch.equal(out[0], x)
    assert torch.equal(last_state(out), out[-1])


def test_compact_registers_modules_and_keeps_settings_as_attributes():
    def scaled(layer, x):
        return layer.scale * layer.linear(x)

    layer = compact(scaled, linear=nn.Linear(3, 2), scale=2.0)
    assert [n for n, _ in layer.named_parameters()] == ["linear.weight", "linear.bias"]
    x = torch.randn(4, 3)
    assert torch.equal(layer(x), 2.0 * layer.linear(x))
    with pytest.raises(InputError, match="needs a function"):
        compact("not a function")


class CountingTanh(nn.Module):
    """A layer with state: counts how often it was called, in a buffer."""

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        self.calls += 1
        return torch.tanh(x)


def test_stateful_model_keeps_updated_state_outside_the_module():
    model = nn.Sequential(nn.Linear(2, 2), CountingTanh())
    stateful = StatefulModel(model)
    stateful(torch.randn(1, 2))
    stateful(torch.randn(1, 2))
    assert int(stateful.state["1.calls"]) == 2
    assert int(model[1].calls) == 0  # the module's own buffer is untouched: the state lives outside


def test_state_changed_inside_the_rhs_counts_every_function_evaluation():
    layers = {}
    for name in ("class", "stateful"):
        inner = nn.Sequential(nn.Linear(20, 20), CountingTanh())
        layers[name] = make_ode_layer(name, inner, sensealg="autograd")
        layers[name](torch.randn(2, 20))
    nfe = layers["class"].stats.nfe_forward
    assert nfe > 0
    # Class-based: functional_call writes the buffer update into the module, once per evaluation.
    assert int(layers["class"].model[1].calls) == nfe
    # Stateful: the updated state is returned in layer.state; the module's buffer stays at zero.
    assert int(layers["stateful"].state["1.calls"]) == nfe
    assert int(layers["stateful"].model[1].calls) == 0


def test_unknown_layer_name_lists_the_choices():
    with pytest.raises(InputError, match="unknown layer 'lux'.*class, compact, stateful"):
        make_ode_layer("lux", ode_dynamics())


def test_layer_checks_its_settings():
    with pytest.raises(InputError, match="unknown solver"):
        NeuralODE(ode_dynamics(), solver="rk45")
    with pytest.raises(InputError, match="strictly increasing"):
        NeuralODE(ode_dynamics(), tspan=(1.0, 1.0))
    with pytest.raises(InputError, match="rtol"):
        NeuralODE(ode_dynamics(), rtol=-1.0)
    with pytest.raises(InputError, match="unknown sensitivity algorithm"):
        NeuralODE(ode_dynamics(), sensealg="forwarddiff")
