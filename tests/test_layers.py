"""nodeutils.layers: the three Neural ODE layer styles, their state, and how they call their network."""

import numpy as np
import pytest
import torch
from helpers import CallCounter, assert_refused
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
from nodeutils.sensitivity import InterpolatingAdjoint


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


# ---------------------------------------------------------------------------------------------------------------
# State that changes during a solve
# ---------------------------------------------------------------------------------------------------------------
def test_stateful_model_keeps_updated_state_outside_the_module():
    model = nn.Sequential(nn.Linear(2, 2), nn.Tanh(), CallCounter())
    stateful = StatefulModel(model)
    stateful(torch.randn(1, 2))
    stateful(torch.randn(1, 2))
    assert int(stateful.state["2.calls"]) == 2
    assert int(model[2].calls) == 0  # the module's own buffer is untouched: the state lives outside


def test_state_changed_inside_the_rhs_counts_every_function_evaluation():
    layers = {}
    for name in ("class", "stateful"):
        inner = nn.Sequential(nn.Linear(20, 20), nn.Tanh(), CallCounter())
        layers[name] = make_ode_layer(name, inner, sensealg="autograd")
        layers[name](torch.randn(2, 20))
    nfe = layers["class"].stats.nfe_forward
    assert nfe > 0
    # Class-based: functional_call writes the buffer update into the module, once per evaluation.
    assert int(layers["class"].model[2].calls) == nfe
    # Stateful: the updated state is returned in layer.state; the module's buffer stays at zero.
    assert int(layers["stateful"].state["2.calls"]) == nfe
    assert int(layers["stateful"].model[2].calls) == 0


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


# ---------------------------------------------------------------------------------------------------------------
# Bad inputs: refused with the argument and the fix
# ---------------------------------------------------------------------------------------------------------------
NOT_A_MODULE = ("model must be", "torch.nn.Module", "nn.Sequential(")

BAD_INPUTS = [
    pytest.param(lambda: make_ode_layer([], ode_dynamics()), InputError, ("unknown layer []",),
                 id="layer name of another type"),
    pytest.param(lambda: NeuralODE(nn.Linear(20, 20))(torch.ones(2, 20, dtype=torch.long)), InputError,
                 ("the input of the ODE layer must be a floating-point tensor", ".float()"), id="integer input"),
    pytest.param(lambda: NeuralODECompact(nn.Linear(20, 20))(np.zeros((2, 20), np.float32)), InputError,
                 ("the input of the ODE layer must be a tensor", "torch.as_tensor"), id="NumPy input"),
    pytest.param(lambda: StatefulNeuralODE(nn.Linear(20, 20))([1.0] * 20), InputError,
                 ("the input of the ODE layer must be a tensor",), id="list input to the stateful layer"),
    pytest.param(lambda: StatefulModel(nn.Linear(20, 20))(torch.ones(2, 20), {"wieght": torch.zeros(20, 20)}),
                 InputError, ("'wieght'", "bias, weight"), id="misspelt parameter name"),
    pytest.param(lambda: StatefulModel(nn.Linear(2, 2), params=[torch.zeros(2, 2)]), InputError,
                 ("params must be a dict",), id="params as a list"),
    pytest.param(lambda: StatefulModel(nn.Linear(2, 2), state=[1]), InputError,
                 ("state must be a dict of the model's buffers", "it has none"), id="state as a list"),
    pytest.param(lambda: compact(lambda x: x, model=nn.Linear(2, 2)), InputError,
                 ("fn must be a function fn(layer, x)", "cannot be called with 2 arguments"), id="fn of one argument"),
    pytest.param(lambda: last_state(torch.tensor(1.0)), InputError,
                 ("last_state needs the states at the saved times",), id="last_state of a scalar"),
    pytest.param(lambda: make_ode_layer("class", ode_dynamics(), foo=1), InputError,
                 ("make_ode_layer does not take foo", "solver, tspan"), id="unknown layer setting"),
    pytest.param(lambda: NeuralODE(None), InputError, NOT_A_MODULE, id="NeuralODE(None)"),
    pytest.param(lambda: NeuralODECompact(None), InputError, NOT_A_MODULE, id="NeuralODECompact(None)"),
    pytest.param(lambda: StatefulNeuralODE(None), InputError, NOT_A_MODULE, id="StatefulNeuralODE(None)"),
    pytest.param(lambda: StatefulModel(None), InputError, NOT_A_MODULE, id="StatefulModel(None)"),
    pytest.param(lambda: NeuralODE(torch.tanh), InputError, NOT_A_MODULE, id="NeuralODE(a function)"),
    pytest.param(lambda: NeuralODE(nn.Linear), InputError, NOT_A_MODULE, id="NeuralODE(a class)"),
    pytest.param(lambda: compact("not a function"), InputError,
                 ("fn must be a function fn(layer, x)", "got 'not a function'"), id="compact of a string"),
    pytest.param(lambda: make_ode_layer("lux", ode_dynamics()), InputError,
                 ("unknown layer 'lux'", "class, compact, stateful"), id="unknown layer name"),
    pytest.param(lambda: NeuralODE(ode_dynamics(), solver="rk45"), InputError, ("unknown solver",),
                 id="unknown solver"),
    pytest.param(lambda: NeuralODE(ode_dynamics(), tspan=(1.0, 1.0)), InputError, ("strictly increasing",),
                 id="empty time span"),
    pytest.param(lambda: NeuralODE(ode_dynamics(), rtol=-1.0), InputError, ("rtol",), id="negative rtol"),
    pytest.param(lambda: NeuralODE(ode_dynamics(), sensealg="forwarddiff"), InputError,
                 ("unknown sensitivity algorithm",), id="unknown sensitivity algorithm"),
]


@pytest.mark.parametrize("call, error, fragments", BAD_INPUTS)
def test_bad_input_is_refused_with_the_argument_and_the_fix(call, error, fragments):
    assert_refused(call, error, fragments)
