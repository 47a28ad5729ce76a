"""nodeutils.layer_solve: how a layer runs its solve: the dtype, the parameters handed to the solver, and the
network bound to them (which tensors each call of the network sees)."""

import pytest
import torch
from helpers import count_network_calls, right_hand_side, solver_parameters

from nodeutils import create_model
from nodeutils.layers import NeuralODE, NeuralODECompact, StatefulNeuralODE
from nodeutils.sensitivity import AutogradAdjoint, InterpolatingAdjoint

X = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))


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
