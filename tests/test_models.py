"""nodeutils.models: the tutorial model, its forward pass and the images it takes."""

import pytest
import torch
from helpers import assert_refused, jacobian_structure

from nodeutils.errors import InputError
from nodeutils.models import create_model, ode_stats

IMAGES = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_tutorial_model_has_16450_parameters():
    for layer in ("class", "compact", "stateful"):
        assert sum(p.numel() for p in create_model(layer).parameters()) == 16450


def test_seeded_initialisation_is_reproducible_and_shared_by_all_styles():
    weights = [torch.cat([p.detach().reshape(-1) for p in create_model(layer).parameters()])
               for layer in ("class", "compact", "stateful", "class")]
    for w in weights[1:]:
        assert torch.equal(w, weights[0])
    other = torch.cat([p.detach().reshape(-1) for p in create_model(seed=1).parameters()])
    assert not torch.equal(other, weights[0])


@pytest.mark.parametrize("sensealg", ["autograd", "interpolating", "gauss"])
def test_flat_and_structured_parameters_give_the_same_function_and_gradient(sensealg):
    x = torch.rand(4, 1, 28, 28)
    results = []
    for structured in (False, True):
        model = create_model(structured_params=structured, sensealg=sensealg)
        out = model(x)
        out.sum().backward()
        results.append((out.detach(), torch.cat([p.grad.reshape(-1) for p in model.parameters()])))
    # The same operations on the same numbers (views of one vector, or separate tensors): bit-identical.
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


def test_model_output_is_one_score_per_class():
    assert create_model()(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_dynamics_jacobian_is_block_diagonal_per_image():
    images = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    s = jacobian_structure(create_model(), images)
    assert s.state_shape == (80, 80) and s.nonzero_blocks == 4 and s.blocks == 16 and s.parameter_shape == (80, 540)
    # output k depends on the first two layers (210 + 110 parameters) and on the last layer's row k and bias k (11)
    assert s.parameter_nonzero_entries == 80 * (210 + 110 + 11)


# ---------------------------------------------------------------------------------------------------------------
# Images the model takes
# ---------------------------------------------------------------------------------------------------------------
def test_model_accepts_float64_images_as_float32(model):
    with torch.no_grad():
        assert torch.equal(model(IMAGES.double()), model(IMAGES))


def test_model_in_float64_takes_float32_images():
    double = create_model(sensealg="autograd").double()
    with torch.no_grad():
        assert double(IMAGES).dtype == torch.float64


def test_model_range_check_can_be_switched_off_for_normalised_images():
    normalised = create_model(sensealg="autograd")
    normalised.check.value_range = None
    with torch.no_grad():
        assert normalised((IMAGES - 0.1307) / 0.3081).shape == (3, 10)


# ---------------------------------------------------------------------------------------------------------------
# Bad inputs: refused with the argument and the fix
# ---------------------------------------------------------------------------------------------------------------
BAD_INPUTS = [
    pytest.param(lambda: ode_stats(torch.nn.Linear(2, 2)), InputError, ("expected a model built by create_model",),
                 id="ode_stats of another module"),
    # the forward pass
    pytest.param(lambda: create_model()(torch.rand(1, 28, 28)), InputError, ("got (1, 28, 28)",), id="one image"),
    pytest.param(lambda: create_model()(torch.rand(28, 28)), InputError, ("expected images shaped (N, 1, 28, 28)",),
                 id="a bare 28x28 image"),
    pytest.param(lambda: create_model()(torch.rand(2, 28, 28)), InputError, ("add the channel dimension",),
                 id="no channel dimension"),
    pytest.param(lambda: create_model()(torch.rand(2, 1, 32, 32)), InputError, ("got (2, 1, 32, 32)",),
                 id="images of another size"),
    pytest.param(lambda: create_model()(torch.randint(0, 255, (2, 1, 28, 28), dtype=torch.uint8)), InputError,
                 ("floating-point images",), id="integer images"),
    pytest.param(lambda fx: fx.model((IMAGES * 255).to(torch.uint8)), InputError,
                 ("floating-point images in [0, 1]", "torch.uint8", "x.float() / 255"), id="uint8 images"),
    pytest.param(lambda fx: fx.model(IMAGES * 255), InputError, ("values in [0, 1]", "divide by 255"),
                 id="pixel values 0 to 255"),
    pytest.param(lambda fx: fx.model(IMAGES * 1e30), InputError, ("values in [0, 1]", "e+29", "rescale"),
                 id="huge values"),
    pytest.param(lambda fx: fx.model(IMAGES[:0]), InputError, ("empty batch (0 images)", "x[:1]"), id="empty batch"),
    pytest.param(lambda fx: fx.model(IMAGES.numpy()), InputError, ("got ndarray", "torch.as_tensor"),
                 id="numpy images"),
    pytest.param(lambda: create_model(sensealg="autograd").half()(IMAGES), InputError,
                 ("converted to torch.float16", "model.float()"), id="model in float16"),
    pytest.param(lambda: create_model(sensealg="autograd").bfloat16()(IMAGES), InputError,
                 ("converted to torch.bfloat16", "model.float()"), id="model in bfloat16"),
    # create_model
    pytest.param(lambda: create_model(device="tpu"), InputError, ("unknown device",), id="unknown device"),
    pytest.param(lambda: create_model(dropout=0.1), InputError, ("create_model does not take dropout", "options"),
                 id="unknown keyword"),
    pytest.param(lambda: create_model(seed=1.5), InputError, ("seed must be an integer", "1.5"),
                 id="fractional seed"),
    pytest.param(lambda: create_model(structured_params="yes"), InputError,
                 ("structured_params must be True or False", "'yes'"), id="structured_params a string"),
    pytest.param(lambda: create_model(solver="rk4", sensealg="autograd"), InputError,
                 ("method='rk4' takes fixed steps", "step_size"), id="fixed-step solver without a step size"),
    pytest.param(lambda: create_model("lux"), InputError, ("unknown layer 'lux'", "class, compact, stateful"),
                 id="unknown layer"),
]


@pytest.mark.parametrize("call, error, fragments", BAD_INPUTS)
def test_bad_input_is_refused_with_the_argument_and_the_fix(call, error, fragments, fx):
    assert_refused(call, error, fragments, fx)
