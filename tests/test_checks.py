"""nodeutils.checks: the argument checks, directly and through the entry points that run them.

Labels and loaders (checks/labels.py) are checked where a batch enters: accuracy(), evaluate_at_tolerance() and
train() either refuse a label tensor or give the value a plain loop computes.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from nodeutils.checks import check_bool, check_int, check_keywords, check_threads
from nodeutils.env import default_threads
from nodeutils.errors import InputError, NodeUtilsError, NodeUtilsWarning
from nodeutils.evaluation import accuracy
from nodeutils.probing import evaluate_at_tolerance
from nodeutils.training import train

N = 24
LABELS = torch.arange(N) % 10


def images(n: int = N, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def loader(labels: torch.Tensor, n: int = N, batch_size: int = 10) -> DataLoader:
    return DataLoader(TensorDataset(images(n), labels), batch_size=batch_size)


def reference_accuracy(model: torch.nn.Module, x: torch.Tensor, classes: list[int]) -> float:
    """One image at a time, compared as Python ints: nothing can broadcast."""
    model.eval()
    with torch.no_grad():
        hits = [int(model(x[i:i + 1]).argmax(dim=1)[0]) == classes[i] for i in range(len(x))]
    return sum(hits) / len(hits)


# ---------------------------------------------------------------------------------------------------------------
# Numbers, flags and thread counts
# ---------------------------------------------------------------------------------------------------------------
def test_numpy_and_tensor_scalars():
    assert check_int("epochs", np.int64(3)) == check_int("epochs", torch.tensor(3)) == 3
    assert check_bool("progress", np.True_) is True and check_bool("progress", torch.tensor(False)) is False
    for value, words in ((np.True_, "not a bool"), (torch.tensor(True), "not a bool"),
                         (torch.tensor(2.0), "like 2"), (np.float64(2.0), "like 2")):
        with pytest.raises(InputError, match=words):
            check_int("epochs", value)


@pytest.mark.parametrize("value, words", [("abc", ["'abc'", "not a number"]), ("0", ["0", "usable"]),
                                          ("-1", ["-1", "usable"]), ("100000", ["100000", "usable"]),
                                          ("2.5", ["'2.5'"]), (True, ["not a number"])])
def test_bad_thread_counts(value, words, monkeypatch):
    with pytest.raises(InputError) as err:
        check_threads(value, "--threads")
    assert all(w in str(err.value) for w in words), str(err.value)
    if isinstance(value, str):
        monkeypatch.setenv("OMP_NUM_THREADS", value)
        with pytest.raises(InputError, match="OMP_NUM_THREADS"):
            default_threads()


def test_more_threads_than_cores_warn():
    with pytest.warns(NodeUtilsWarning, match="more threads than"):
        assert check_threads((os.cpu_count() or 1) + 1, "--threads") == (os.cpu_count() or 1) + 1


# ---------------------------------------------------------------------------------------------------------------
# Labels where a batch enters
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda y: y[:, None], lambda y: torch.nn.functional.one_hot(y, 10),
                                  lambda y: torch.nn.functional.one_hot(y, 10).float(), lambda y: y.int(),
                                  lambda y: y.float(), lambda y: y.to(torch.uint8)])
def test_clear_label_mistakes_are_converted_and_give_the_true_accuracy(model, make):
    expected = reference_accuracy(model, images(), LABELS.tolist())
    warned = make(LABELS).dtype not in (torch.int32, torch.uint8)  # those hold the class numbers: no warning
    for measure, scale in ((accuracy, 1), (lambda m, batches: evaluate_at_tolerance(m, batches, 1e-3).accuracy, 100)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = measure(model, loader(make(LABELS)))
        assert got == pytest.approx(scale * expected) and 0 <= got <= scale
        assert any(issubclass(w.category, NodeUtilsWarning) for w in caught) == warned


@pytest.mark.parametrize("labels, words", [
    (LABELS.float() + 0.5, ["fractional", "long()"]),
    (LABELS + 10, ["from 10 to 19", "10 classes"]),
    (LABELS - 1, ["from -1", "0..9"]),
    (torch.full((N, 10), 0.1), ["not one-hot", "argmax"]),
    (torch.ones(N, 10), ["not one-hot"]),
    (LABELS.bool(), ["torch.bool", "long()"]),
    (LABELS.reshape(N, 1, 1), ["shaped", "1-D"]),
])
def test_ambiguous_labels_are_refused(model, labels, words):
    for call in (lambda: accuracy(model, loader(labels)), lambda: evaluate_at_tolerance(model, loader(labels), 1e-3)):
        with pytest.raises(InputError) as err:
            call()
        assert all(w in str(err.value) for w in words), str(err.value)


def test_train_with_one_hot_labels_trains_on_class_indices():
    onehot = torch.nn.functional.one_hot(LABELS, 10)
    runs = []
    for y in (LABELS, onehot):
        pair = (loader(y), DataLoader(TensorDataset(images(12, seed=1), y[:12]), batch_size=10))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runs.append(train(epochs=1, loaders=pair, progress=False, log=None, sensealg="autograd"))
    assert runs[0].loss == runs[1].loss and runs[0].train_accuracy == runs[1].train_accuracy


# ---------------------------------------------------------------------------------------------------------------
# Loader contents and loader pairs
# ---------------------------------------------------------------------------------------------------------------
class _Dicts(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict:
        return {"image": torch.rand(1, 28, 28), "label": 1}


@pytest.mark.parametrize("data, words", [
    (_Dicts(), ["dicts", "(image, label)"]),
    (TensorDataset(images(4)), ["(images, labels) pairs", "1 items"]),
    (TensorDataset(images(4), LABELS[:4], LABELS[:4]), ["(images, labels) pairs", "3 items"]),
])
def test_loaders_yielding_something_else_than_pairs(model, data, words):
    with pytest.raises(InputError) as err:
        accuracy(model, DataLoader(data, batch_size=2))
    assert all(w in str(err.value) for w in words), str(err.value)
    test = DataLoader(TensorDataset(images(4), LABELS[:4]), batch_size=2)
    with pytest.raises(InputError, match="pairs"):
        train(epochs=1, loaders=(DataLoader(data, batch_size=2), test), progress=False, log=None)


def test_same_or_swapped_loaders():
    a = loader(LABELS)
    with pytest.raises(InputError, match="same dataset"):
        train(epochs=1, loaders=(a, a), progress=False, log=None)
    with pytest.raises(InputError, match="same dataset"):
        train(epochs=1, loaders=(a, DataLoader(a.dataset, batch_size=3)), progress=False, log=None)
    small = DataLoader(TensorDataset(images(60), torch.arange(60) % 10), batch_size=30)
    with pytest.warns(NodeUtilsWarning, match="swapped"):
        train(epochs=1, loaders=(a, small), progress=False, log=None, sensealg="autograd")


# ---------------------------------------------------------------------------------------------------------------
# Property: generated labels
# ---------------------------------------------------------------------------------------------------------------
def _generated_labels(rng: np.random.Generator, n: int) -> tuple[torch.Tensor, list[int] | None]:
    """A label tensor of a random shape and dtype, and the class indices it means (None: ambiguous)."""
    classes = rng.integers(0, 10, n)
    kind = rng.choice(["index", "column", "onehot", "soft", "float", "fraction", "range", "short", "3d"])
    dtype = rng.choice([torch.int64, torch.int32, torch.uint8, torch.float32, torch.float64])
    base = torch.as_tensor(classes)
    if kind == "index":
        return base.to(dtype), classes.tolist()
    if kind == "column":
        return base[:, None].to(dtype), classes.tolist()
    if kind == "onehot":
        return torch.nn.functional.one_hot(base, 10).to(dtype), classes.tolist()
    if kind == "soft":
        return torch.softmax(torch.randn(n, 10), dim=1), None
    if kind == "float":
        return base.double(), classes.tolist()
    if kind == "fraction":
        return base.double() + 0.25, None
    if kind == "range":
        return (base + 10).to(dtype), None
    if kind == "short":
        return base[: n - 1].to(dtype), None
    return base.reshape(n, 1, 1).to(dtype), None


@pytest.mark.parametrize("seed", range(20))
def test_property_accuracy_and_train_refuse_or_are_right(model, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 20))
    x = images(n, seed=seed)
    labels, meant = _generated_labels(rng, n)
    size = int(rng.integers(1, n + 1))
    if meant is None and len(labels) < n:  # "short": the last batch holds one label fewer than images
        ends = list(range(size, n, size)) + [n]
        batches = [(x[a:b], labels[a:b]) for a, b in zip([0, *ends[:-1]], ends)]
    else:
        batches = [(x[a:a + size], labels[a:a + size]) for a in range(0, n, size)]
    data = DataLoader(batches, batch_size=None)  # ready-made batches, handed on as they are
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            got = accuracy(model, data)
        except NodeUtilsError:
            assert meant is None
        else:
            assert meant is not None and 0 <= got <= 1
            assert got == pytest.approx(reference_accuracy(model, x, meant))
        test = DataLoader(TensorDataset(images(4, seed=99), torch.arange(4)), batch_size=4)
        try:
            history = train(epochs=1, loaders=(data, test), progress=False, log=None, sensealg="autograd")
        except NodeUtilsError:
            assert meant is None
        else:
            assert meant is not None
            trained = history.model
            assert 0 <= history.train_accuracy[0] <= 100
            assert history.train_accuracy[0] == pytest.approx(100 * reference_accuracy(trained, x, meant))


def test_check_keywords_names_the_unknown_ones_and_gives_advice_where_there_is_some():
    check_keywords("f", {"a": 1}, ("a", "b"))  # nothing unknown: nothing raised
    with pytest.raises(InputError, match=r"^f does not take c, d: it accepts a, b$"):
        check_keywords("f", {"d": 1, "c": 2, "a": 3}, ("a", "b"))
    with pytest.raises(InputError, match=r"^f does not take c: use a=$"):
        check_keywords("f", ["c"], ("a",), fixes={"c": "use a="}, accepts="it accepts a")
    with pytest.raises(InputError, match=r"^f does not take c: it accepts a$"):
        check_keywords("f", ["c"], ("a",), fixes={"x": "unused"}, accepts="it accepts a")
    with pytest.raises(InputError, match="it accepts no settings"):
        check_keywords("f", ["c"], ())
