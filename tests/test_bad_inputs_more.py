"""Bad inputs, second round: labels, loaders, gradients, threads, devices, paths, options, partial histories.

Each case asserts the exception type and the key words of its message; the property test at the end
checks that accuracy() and train() either refuse a label tensor or return the loop-computed value.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from nodeutils import (
    GaussAdjoint,
    InputError,
    InterpolatingAdjoint,
    NeuralODE,
    NeuralODECompact,
    NodeUtilsError,
    QuadratureAdjoint,
    StatefulNeuralODE,
    create_model,
    odeint,
)
from nodeutils.analysis import evaluate_at_tolerance
from nodeutils.checks import check_bool, check_int, check_threads
from nodeutils.data import load_arrays
from nodeutils.env import default_threads, pick_device
from nodeutils.errors import DataError, NodeUtilsWarning
from nodeutils.plots import plot_training
from nodeutils.training import accuracy, train

N = 24


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


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return create_model(seed=0)


LABELS = torch.arange(N) % 10


# --- labels where a batch enters ----------------------------------------------------------------
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


# --- loader contents ----------------------------------------------------------------------------
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


@pytest.mark.parametrize("bad", [images(4), "data", 3, None])
def test_accuracy_of_something_that_is_not_a_loader(model, bad):
    with pytest.raises(InputError, match="loader"):
        accuracy(model, bad)


# --- second backward and higher-order gradients through the continuous adjoints ------------------
class _F(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.lin(y))


ADJOINTS = [InterpolatingAdjoint(), QuadratureAdjoint(), GaussAdjoint(), InterpolatingAdjoint(checkpointing=True)]


@pytest.mark.parametrize("sensealg", ADJOINTS, ids=repr)
def test_second_backward_raises_like_pytorch(sensealg):
    f = _F()
    loss = odeint(f, torch.ones(3, 2), torch.tensor([0.0, 1.0]), sensealg=sensealg, rtol=1e-6, atol=1e-6)[-1].sum()
    loss.backward(retain_graph=True)
    once = f.lin.weight.grad.clone()
    loss.backward()  # allowed: the graph was retained
    assert torch.allclose(f.lin.weight.grad, 2 * once)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


@pytest.mark.parametrize("sensealg", ADJOINTS, ids=repr)
def test_forward_record_released_after_backward(sensealg):
    out = odeint(_F(), torch.ones(3, 2), torch.tensor([0.0, 1.0]), sensealg=sensealg, rtol=1e-6, atol=1e-6)
    node = out.grad_fn
    assert not any(isinstance(v, torch.Tensor) for v in node.record.values())  # tensors only in saved_tensors
    out[-1].sum().backward()
    with pytest.raises(RuntimeError, match="freed|second time"):
        node.saved_tensors  # noqa: B018 - the access is the test


@pytest.mark.parametrize("sensealg", ADJOINTS[:3], ids=repr)
def test_higher_order_gradients_get_our_message(sensealg):
    f = _F()
    out = odeint(f, torch.ones(3, 2), torch.tensor([0.0, 1.0]), sensealg=sensealg, rtol=1e-6, atol=1e-6)
    with pytest.raises(InputError, match="higher-order gradients.*AutogradAdjoint"):
        torch.autograd.grad(out[-1].sum(), f.lin.weight, create_graph=True)


# --- threads -----------------------------------------------------------------------------------
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


def _cli(*args: str, env: dict | None = None, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nodeutils", "train", "--epochs", "1", "--subset", "100",
                           "--no-progress", *args], stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args, env", [(["--threads", "100000"], None), ([], {"OMP_NUM_THREADS": "abc"}),
                                       ([], {"OMP_NUM_THREADS": "0"})])
def test_cli_thread_errors_are_one_line(args, env):
    done = _cli(*args, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "error:" in done.stderr and "threads" in done.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_cli_on_a_full_disk():
    with open("/dev/full", "w") as full:
        done = _cli(stdout=full)
    assert done.returncode == 1 and "Traceback" not in done.stderr and "No space left" in done.stderr


# --- Ctrl-C during the first train() setup -----------------------------------------------------
def test_ctrl_c_during_setup_returns_a_history(monkeypatch):
    import nodeutils.training as training

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "create_model", interrupted)
    lines = []
    history = train(epochs=2, progress=False, log=lines.append)
    assert history.interrupted == "epoch 1/2" and history.epochs_done == 0 and history.model is None
    assert lines == ["interrupted while setting up (0 epochs finished)"]
    with pytest.raises(InputError, match="no.*finished epoch|none.*interrupted at epoch 1/2"):
        plot_training(history)


# --- devices -----------------------------------------------------------------------------------
@pytest.mark.parametrize("device, words", [(torch.device("meta"), ["unknown device", "meta"]),
                                           ("cpu:3", ["one CPU"]), (torch.device("cpu", 2), ["one CPU"]),
                                           ("gpu", ["unknown device"])])
def test_devices_checked_alike(device, words):
    with pytest.raises(InputError) as err:
        pick_device(device)
    assert all(w in str(err.value) for w in words), str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_cuda_device_object_without_gpu(model):
    for device in (torch.device("cuda"), torch.device("cuda", 1)):
        with pytest.raises(InputError, match="no CUDA GPU"):
            pick_device(device)
        with pytest.raises(InputError, match="no CUDA GPU"):
            accuracy(model, loader(LABELS), device=device)


def test_device_names_normalised(model):
    assert pick_device(" CPU") == pick_device(torch.device("cpu", 0)) == torch.device("cpu")
    assert 0 <= accuracy(model, loader(LABELS), device=torch.device("cpu")) <= 1
    with pytest.raises(InputError, match="unknown device"):
        accuracy(model, loader(LABELS), device="tpu")


# --- odeint misuse and option values -----------------------------------------------------------
class _NoTime(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.lin(y)


Y0, T = torch.ones(2), torch.tensor([0.0, 1.0])


@pytest.mark.parametrize("kwargs, words", [
    (dict(func=_NoTime()), ["forward(t, y)", "forward takes (y"]),
    (dict(func=_F(), params={"w": torch.ones(2, requires_grad=True)}), ["drop params="]),
    (dict(func=_F(), y0=Y0.double()), ["torch.float64", "torch.float32", "to("]),
    (dict(method="euler", options={"step_size": 5.0}), ["longer than the time span"]),
    (dict(method="euler", options={"step_size": 1e-12}), ["steps over the span", "larger step size"]),
    (dict(options={"safety": 5.0}), ["safety", "between 0 and 1"]),
    (dict(options={"ifactor": 0.5}), ["ifactor", "above 1"]),
    (dict(options={"norm": "max"}), ["norm", "function"]),
    (dict(options={"dtype": torch.int64}), ["dtype", "float32 or torch.float64"]),
    (dict(options={"jump_t": "0.5"}), ["jump_t", "1-D list"]),
    (dict(options={"jump_t": [[0.5]]}), ["jump_t"]),
    (dict(method="euler", options={"grid_constructor": [0.0, 0.5, 1.0]}), ["grid_constructor", "function"]),
    (dict(options={"min_step": -1.0}), ["min_step"]),
])
def test_odeint_misuse(kwargs, words):
    call = {"func": _F(), "y0": Y0, "t": T, **kwargs}
    with pytest.raises(InputError) as err:
        odeint(call.pop("func"), call.pop("y0"), call.pop("t"), **call)
    assert all(w in str(err.value) for w in words), str(err.value)


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


# --- paths -------------------------------------------------------------------------------------
def test_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DataError) as err:  # ~ is the home folder, not a folder named "~"
        load_arrays("torchvision", root="~/mnist", download=False)
    assert str(tmp_path) in str(err.value) and "~" not in str(err.value)
    for empty in ("", "  "):
        with pytest.raises(InputError, match="empty"):
            load_arrays("torchvision", root=empty, download=False)
    done = _cli("--source", "torchvision", "--data-dir", "")
    assert done.returncode == 2 and "empty" in done.stderr and "Traceback" not in done.stderr


def test_compile_cache_folder_that_is_a_file_or_read_only(tmp_path, monkeypatch):
    from nodeutils.compilation import _check_compile_cache

    a_file = tmp_path / "cache"
    a_file.write_text("")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(a_file))
    with pytest.raises(InputError, match="is a file.*TORCHINDUCTOR_CACHE_DIR"):
        _check_compile_cache()
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o500)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(read_only))
    if os.access(read_only, os.W_OK):  # root ignores permissions
        pytest.skip("running as root: a read-only folder is writable")
    with pytest.raises(InputError, match="read-only"):
        _check_compile_cache()


# --- NumPy and tensor scalars ------------------------------------------------------------------
def test_numpy_and_tensor_scalars():
    assert check_int("epochs", np.int64(3)) == check_int("epochs", torch.tensor(3)) == 3
    assert check_bool("progress", np.True_) is True and check_bool("progress", torch.tensor(False)) is False
    for value, words in ((np.True_, "not a bool"), (torch.tensor(True), "not a bool"),
                         (torch.tensor(2.0), "like 2"), (np.float64(2.0), "like 2")):
        with pytest.raises(InputError, match=words):
            check_int("epochs", value)
    history = train(epochs=np.int64(1), batch_size=torch.tensor(10), seed=np.int64(0), progress=np.False_, log=None,
                    loaders=None, subset=100, sensealg="autograd")
    assert history.settings["epochs"] == 1 and history.settings["batch_size"] == 10


# --- data files --------------------------------------------------------------------------------
def test_idx_file_of_another_image_size(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    n = 3
    header = (0x00000803).to_bytes(4, "big") + b"".join(v.to_bytes(4, "big") for v in (n, 32, 32))
    (raw / "train-images-idx3-ubyte").write_bytes(header + bytes(n * 32 * 32))
    (raw / "train-labels-idx1-ubyte").write_bytes((0x00000801).to_bytes(4, "big") + n.to_bytes(4, "big") + bytes(n))
    with pytest.raises(DataError) as err:
        load_arrays("torchvision", root=tmp_path, download=False)
    assert "well-formed" in str(err.value) and "32x32" in str(err.value) and "truncated" not in str(err.value)


# --- property: generated labels -----------------------------------------------------------------
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
