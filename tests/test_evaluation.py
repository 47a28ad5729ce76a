"""nodeutils.evaluation: the loss, the predictions and the accuracy of a classifier over a loader."""

import math

import pytest
import torch
from helpers import assert_refused
from torch.utils.data import DataLoader, TensorDataset

from nodeutils import evaluation
from nodeutils.errors import InputError
from nodeutils.evaluation import accuracy
from nodeutils.models import create_model


def _empty_loader():
    return DataLoader(TensorDataset(torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long)))


def test_logitcrossentropy_takes_hand_values():
    f64 = torch.float64
    assert evaluation.logitcrossentropy(torch.zeros(1, 2, dtype=f64), torch.tensor([0])).item() == pytest.approx(
        math.log(2), rel=1e-15)  # two equal scores: p = 1/2
    three = torch.tensor([[math.log(3), 0.0, 0.0]], dtype=f64)  # p = 3/5 for class 0, 1/5 for the others
    assert evaluation.logitcrossentropy(three, torch.tensor([0])).item() == pytest.approx(math.log(5 / 3), rel=1e-15)
    both = torch.cat([torch.zeros(1, 3, dtype=f64), three])  # a batch: the mean of -log(1/3) and -log(1/5)
    assert evaluation.logitcrossentropy(both, torch.tensor([2, 1])).item() == pytest.approx(
        (math.log(3) + math.log(5)) / 2, rel=1e-15)


def test_accuracy_takes_any_iterable_of_batches(small_loaders):
    model = create_model(seed=3)
    batches = list(small_loaders[1])
    expected = accuracy(model, small_loaders[1])
    assert accuracy(model, batches) == expected
    assert accuracy(model, iter(batches)) == expected  # read once: a one-pass iterator serves


def test_accuracy_leaves_the_model_mode_as_it_found_it(small_loaders):
    # (what accuracy() counts is checked against a model with known predictions in test_reported_numbers.py)
    model = create_model(seed=3)
    model.eval()
    assert 0 <= accuracy(model, small_loaders[1]) <= 1
    assert model.training is False
    model.train()
    accuracy(model, small_loaders[1])
    assert model.training


BAD_INPUTS = [
    pytest.param(lambda: evaluation.logitcrossentropy(torch.zeros(4, 10), torch.tensor([0, 1, 2, 10])), InputError,
                 ("labels run from 0 to 10, outside the 10 classes",), id="label outside the classes"),
    pytest.param(lambda: evaluation.logitcrossentropy(torch.zeros(2, 10), torch.tensor([0, 1], dtype=torch.int32)),
                 InputError, ("int64 class indices (labels.long())",), id="int32 labels for the loss"),
    pytest.param(lambda: evaluation.logitcrossentropy(torch.zeros(3, 10), torch.zeros(3)), InputError,
                 ("labels N int64 class indices",), id="float labels for the loss"),
    pytest.param(lambda: evaluation.logitcrossentropy(torch.zeros(3, 10), torch.zeros(2, dtype=torch.long)),
                 InputError, ("labels N int64 class indices",), id="labels for the loss of another length"),
    pytest.param(lambda fx: accuracy(fx.model, _empty_loader()), InputError, ("the loader holds no images",),
                 id="accuracy of an empty loader"),
    *(pytest.param(lambda fx, bad=bad: accuracy(fx.model, bad), InputError, ("loader",), id=f"accuracy of {name}")
      for name, bad in (("images", torch.rand(4, 1, 28, 28)), ("a string", "data"), ("a number", 3), ("None", None))),
]


@pytest.mark.parametrize("call, error, fragments", BAD_INPUTS)
def test_bad_input_is_refused_with_the_argument_and_the_fix(call, error, fragments, fx):
    assert_refused(call, error, fragments, fx)
