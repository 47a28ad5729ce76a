import pytest
import torch

from nodeutils import create_model
from nodeutils.inspection import count_network_calls, parameters_for_solver, right_hand_side
from nodeutils.sensitivity import AutogradAdjoint, InterpolatingAdjoint

X = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))


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


def test_count_network_calls_needs_a_submodule():
    model = create_model()
    with pytest.raises(ValueError, match="submodule"):
        count_network_calls(model, torch.nn.Linear(2, 2), X)


def test_parameters_for_solver_and_right_hand_side():
    flat, structured = create_model(structured_params=False), create_model(structured_params=True)
    assert parameters_for_solver(flat).shape == (540,)
    assert {k: tuple(v.shape) for k, v in parameters_for_solver(structured.ode).items()}["0.weight"] == (10, 20)
    u = torch.randn(5, 20, dtype=torch.float64)  # the state in the dtype of create_model's ODE network
    for style in ("class", "compact", "stateful"):
        for model in (create_model(style), create_model(style, structured_params=True)):
            before = [id(p) for p in model.ode.model.parameters()]
            assert torch.equal(right_hand_side(model)(u), model.ode.model(u))
            assert [id(p) for p in model.ode.model.parameters()] == before  # the module keeps its own parameters
    with pytest.raises(ValueError, match="Neural ODE layer"):
        parameters_for_solver(torch.nn.Linear(2, 2))
