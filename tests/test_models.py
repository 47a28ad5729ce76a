import pytest
import torch

from nodeutils.errors import InputError
from nodeutils.models import count_parameters, create_model


def test_tutorial_model_has_16450_parameters():
    for layer in ("class", "compact", "stateful"):
        assert count_parameters(create_model(layer)) == 16450


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


@pytest.mark.parametrize("x, match", [
    (torch.rand(1, 28, 28), r"got \(1, 28, 28\)"),
    (torch.rand(28, 28), r"expected images shaped \(N, 1, 28, 28\)"),
    (torch.rand(2, 28, 28), "add the channel dimension"),
    (torch.rand(2, 1, 32, 32), r"got \(2, 1, 32, 32\)"),
    (torch.randint(0, 255, (2, 1, 28, 28), dtype=torch.uint8), "floating-point images"),
])
def test_wrong_images_are_explained(x, match):
    with pytest.raises(InputError, match=match):
        create_model()(x)


def test_unknown_device_is_explained():
    with pytest.raises(InputError, match="unknown device"):
        create_model(device="tpu")
