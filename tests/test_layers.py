"""nodeutils.layers: the three Neural ODE layer styles, their state, and how they call their network."""

import pytest
import torch
from helpers import CallCounter, assert_refused, count_network_calls, right_hand_side, solver_parameters
from torch import nn

from nodeutils import create_model
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
from nodeutils.sensitivity import AutogradAdjoint, InterpolatingAdjoint

X = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))


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


@pytest.mark.parametrize("style", [NeuralODE, NeuralODECompact, StatefulNeuralODE], ids=lambda c: c.__name__)
def test_layer_solves_in_its_networks_dtype_and_returns_the_inputs(style):
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh())
    layer = style(network)
    x32 = torch.rand(2, 3)
    out32 = layer(x32)
    assert out32.dtype == torch.float32 and out32.shape == (2, 2, 3)
    out = layer(x32.double())  # a float32 network solves in float32, whatever the input's dtype
    assert out.dtype == torch.float64 and torch.equal(out, out32.double())
    network.double()  # a float64 network solves in float64 and hands back the float32 input's dtype
    out64 = layer(x32)
    assert out64.dtype == torch.float32
    assert torch.equal(out64, layer(x32.double()).float())


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
# How each layer calls its network, and with which tensors
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("structured", [False, True])
def test_call_routes_follow_parameter_structure_and_vjp(structured):
    for vjp in ("autograd", "func"):
        model = create_model("class", sensealg=InterpolatingAdjoint(autojacvec=vjp), structured_params=structured)
        calls = count_network_calls(model, model.ode.model, X)
        nfe_f, nfe_b = model.ode.stats.nfe_forward, model.ode.stats.nfe_backward
        assert calls.forward_functional == calls.backward_functional == 0  # class layers never use functional_call
        # a flat vector's views go into the parameter slots; structured parameters are the module's own tensors
        assert (calls.forward_own, calls.forward_slots) == ((nfe_f, 0) if structured else (0, nfe_f))
        own_backward = structured and vjp == "autograd"  # torch.func differentiates detached copies
        assert (calls.backward_own, calls.backward_slots) == ((nfe_b, 0) if own_backward else (0, nfe_b))
    stateful = create_model("stateful", sensealg=InterpolatingAdjoint(), structured_params=structured)
    calls = count_network_calls(stateful, stateful.ode.model, X)
    nfe_f, nfe_b = stateful.ode.stats.nfe_forward, stateful.ode.stats.nfe_backward
    assert (calls.forward_functional, calls.backward_functional) == (nfe_f, nfe_b)
    assert calls.forward_own == calls.forward_slots == calls.backward_own == calls.backward_slots == 0


def test_discrete_backprop_makes_no_backward_calls():
    model = create_model("class", sensealg=AutogradAdjoint())
    calls = count_network_calls(model, model.ode.model, X)
    assert calls.backward_own == calls.backward_slots == calls.backward_functional == 0
    assert calls.forward_slots == model.ode.stats.nfe_forward > 0


def test_solver_parameters_and_the_bound_network():
    flat, structured = create_model(structured_params=False), create_model(structured_params=True)
    assert solver_parameters(flat).shape == (540,)
    assert {k: tuple(v.shape) for k, v in solver_parameters(structured.ode).items()}["0.weight"] == (10, 20)
    u = torch.randn(5, 20, dtype=torch.float64)  # the state in the dtype of create_model's ODE network
    for style in ("class", "compact", "stateful"):
        for model in (create_model(style), create_model(style, structured_params=True)):
            before = [id(p) for p in model.ode.model.parameters()]
            assert torch.equal(right_hand_side(model)(u), model.ode.model(u))
            assert [id(p) for p in model.ode.model.parameters()] == before  # the module keeps its own parameters


# ---------------------------------------------------------------------------------------------------------------
# Bad inputs: refused with the argument and the fix
# ---------------------------------------------------------------------------------------------------------------
NOT_A_MODULE = ("model must be", "torch.nn.Module", "nn.Sequential(")

BAD_INPUTS = [
    pytest.param(lambda: NeuralODE(None), InputError, NOT_A_MODULE, id="NeuralODE(None)"),
    pytest.param(lambda: NeuralODECompact(None), InputError, NOT_A_MODULE, id="NeuralODECompact(None)"),
    pytest.param(lambda: StatefulNeuralODE(None), InputError, NOT_A_MODULE, id="StatefulNeuralODE(None)"),
    pytest.param(lambda: StatefulModel(None), InputError, NOT_A_MODULE, id="StatefulModel(None)"),
    pytest.param(lambda: NeuralODE(torch.tanh), InputError, NOT_A_MODULE, id="NeuralODE(a function)"),
    pytest.param(lambda: NeuralODE(nn.Linear), InputError, NOT_A_MODULE, id="NeuralODE(a class)"),
    pytest.param(lambda: compact("not a function"), InputError, ("needs a function",), id="compact of a string"),
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
