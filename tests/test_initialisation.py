"""Lux's Dense initialisation: bounds per layer, the default of create_model, PyTorch's one argument away."""

import math

import pytest
import torch
from torch import nn

from nodeutils import create_model
from nodeutils.errors import InputError
from nodeutils.initialisation import LUX_GAINS, lux_bounds, lux_dense_init_, lux_init_

# The tutorial's layers: (name in create_model's model, fan_in, Lux's gain for the activation after it).
TUTORIAL_LAYERS = [("encoder", 784, 5 / 3), ("ode.model.0", 20, 5 / 3), ("ode.model.2", 10, 5 / 3),
                   ("ode.model.4", 10, 5 / 3), ("decoder", 20, 1.0)]


def test_lux_bounds_are_the_formula_of_lux_dense():
    # Lux 1.x: kaiming_uniform bound = sqrt(3) * gain / sqrt(fan_in); init_linear_bias bound = 1 / sqrt(fan_in).
    # Worked out by hand: 5/3 * sqrt(3/20) = 5/3 * 0.3872983 = 0.6454972 and 1/sqrt(20) = 0.2236068.
    assert lux_bounds(20, 5 / 3) == pytest.approx((0.6454972, 0.2236068), rel=0, abs=1e-7)
    assert lux_bounds(784, 1.0) == pytest.approx((math.sqrt(3) / 28, 1 / 28))  # sqrt(784) = 28
    assert LUX_GAINS[nn.Tanh] == pytest.approx(5 / 3)


@pytest.mark.parametrize("layer", ["class", "compact", "stateful"])
def test_create_model_draws_every_layer_within_lux_bounds_and_fills_them(layer):
    model = create_model(layer)
    modules = dict(model.named_modules())
    for name, fan_in, gain in TUTORIAL_LAYERS:
        linear = modules[name]
        weight_bound, bias_bound = lux_bounds(fan_in, gain)
        w, b = linear.weight.detach().abs().max().item(), linear.bias.detach().abs().max().item()
        assert w <= weight_bound and b <= bias_bound, name
        # Uniform draws come close to the bound: within 10 % for every layer (at least 10 weights each).
        assert w >= 0.9 * weight_bound, (name, w, weight_bound)
        assert b >= 0.5 * bias_bound, (name, b, bias_bound)  # as few as 10 biases: a looser lower check


def test_lux_weights_are_wider_than_torch_defaults_by_the_gain_ratio():
    lux, torch_default = create_model(init="lux"), create_model(init="torch")
    for (name, fan_in, gain), a, b in zip(TUTORIAL_LAYERS, [m for m in lux.modules() if isinstance(m, nn.Linear)],
                                          [m for m in torch_default.modules() if isinstance(m, nn.Linear)]):
        assert a.in_features == fan_in
        assert b.weight.detach().abs().max().item() <= 1 / math.sqrt(fan_in)  # nn.Linear's bound
        ratio = a.weight.detach().std().item() / b.weight.detach().std().item()
        assert ratio == pytest.approx(gain * math.sqrt(3), rel=0.15 if fan_in > 10 else 0.35), name


def test_the_same_seed_gives_the_same_weights_and_another_seed_others():
    a, b, c = create_model(seed=3), create_model(seed=3), create_model(seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.encoder.weight, c.encoder.weight)


def test_lux_init_is_the_default_and_torch_init_is_nn_linears():
    torch.manual_seed(0)
    reference = [nn.Linear(784, 20), nn.Linear(20, 10), nn.Linear(10, 10), nn.Linear(10, 20), nn.Linear(20, 10)]
    plain = create_model(init="torch")
    linears = [m for m in plain.modules() if isinstance(m, nn.Linear)]
    assert all(torch.equal(r.weight, m.weight) and torch.equal(r.bias, m.bias) for r, m in zip(reference, linears))
    # The Lux draws come after nn.Linear's own, in module order, weight then bias, with tanh's gain but the last.
    for layer, (_, _, gain) in zip(reference, TUTORIAL_LAYERS):
        lux_dense_init_(layer, gain)
    default = create_model()
    linears = [m for m in default.modules() if isinstance(m, nn.Linear)]
    assert all(torch.equal(r.weight, m.weight) and torch.equal(r.bias, m.bias) for r, m in zip(reference, linears))


def test_lux_init_takes_the_gain_from_the_activation_that_follows():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(300, 300), nn.Tanh(), nn.Linear(300, 300), nn.ReLU(), nn.Linear(300, 300))
    lux_init_(net)
    for index, gain in ((0, 5 / 3), (2, 2.0), (4, 1.0)):
        bound = lux_bounds(300, gain)[0]
        assert net[index].weight.abs().max().item() == pytest.approx(bound, rel=0.01)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_weights_follow_the_model_to_another_dtype_unchanged(dtype):
    model = create_model().to(dtype)
    assert model.encoder.weight.dtype == dtype
    assert torch.equal(model.encoder.weight.float(), create_model().encoder.weight)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_weights_are_the_same_on_the_gpu():
    assert torch.equal(create_model(device="cuda").encoder.weight.cpu(), create_model().encoder.weight)


@pytest.mark.parametrize(("call", "phrase"), [
    (lambda: create_model(init="xavier"), "unknown init 'xavier': choose one of lux, torch"),
    (lambda: lux_dense_init_(nn.Conv2d(1, 1, 3)), "takes an nn.Linear layer"),
    (lambda: lux_dense_init_(nn.Linear(2, 2), gain=-1.0), "gain must be a positive finite number"),
    (lambda: lux_dense_init_(nn.Linear(2, 2), gain="5/3"), "not the string '5/3'"),
    (lambda: lux_init_([nn.Linear(2, 2)]), "takes an nn.Module"),
])
def test_bad_arguments_say_what_to_pass(call, phrase):
    with pytest.raises(InputError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_the_ode_network_is_float64_by_default_and_float32_on_request():
    assert create_model().ode.model[0].weight.dtype == torch.float64
    assert create_model().encoder.weight.dtype == torch.float32
    tutorial = create_model(ode_dtype=torch.float32)
    assert all(p.dtype == torch.float32 for p in tutorial.parameters())
    assert all(torch.equal(p.float(), q) for p, q in zip(create_model().parameters(), tutorial.parameters()))
    with pytest.raises(InputError, match="ode_dtype must be torch.float64"):
        create_model(ode_dtype="float32")


def test_float32_step_control_amplifies_rounding_and_float64_does_not():
    # Untrained tutorial model, the first 128 embedded images: a change of 3e-7 in u(0), the size of float32
    # rounding, moves the float32 solve's later steps (its first step's error estimate sits near float32's
    # resolution) and with them the logits by 3e-5 to 5e-4 (four draws); the float64 solve moves them by what the
    # flow itself does, 2e-6 to 6e-6.
    from nodeutils.data import load_arrays

    x, _ = load_arrays("embedded", subset=128)
    moves = {torch.float32: [], torch.float64: []}
    for dtype, found in moves.items():
        model = create_model(ode_dtype=dtype)
        with torch.no_grad():
            u0 = torch.tanh(model.encoder(x.flatten(1)))
            reference = model.decoder(model.ode(u0)[-1])
            for seed in range(4):
                du = 3e-7 * torch.randn(u0.shape, generator=torch.Generator().manual_seed(seed))
                found.append(float((model.decoder(model.ode(u0 + du)[-1]) - reference).abs().max()))
    assert all(a > 5 * b for a, b in zip(moves[torch.float32], moves[torch.float64])), moves
    assert max(moves[torch.float32]) > 1e-4 and max(moves[torch.float64]) < 2e-5, moves
