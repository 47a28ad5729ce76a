import gzip
import struct
import urllib.error

import numpy as np
import pytest
import torch

from nodeutils import data
from nodeutils.data import load_arrays, load_mnist, onecold, onehot
from nodeutils.errors import DataError, InputError


def test_embedded_loaders_give_tutorial_shapes_and_ranges():
    train, test = load_mnist(128, 0.9, subset=1500)
    assert len(train.dataset) == 1350 and len(test.dataset) == 150
    x, y = next(iter(train))
    assert x.shape == (128, 1, 28, 28) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert y.dtype == torch.int64 and set(y.tolist()) <= set(range(10))


def test_embedded_file_holds_500_of_each_digit():
    _, y = load_arrays("embedded")
    assert len(y) == 5000
    assert torch.bincount(y).tolist() == [500] * 10


def test_subset_is_shuffled_across_classes():
    _, y = load_arrays("embedded", subset=1500)
    counts = torch.bincount(y, minlength=10)
    assert (counts > 100).all()  # the file is sorted by class; the first 1,500 must still mix all digits


def test_ci_environment_selects_the_tutorial_subset(monkeypatch):
    monkeypatch.setenv("CI", "true")
    train, test = load_mnist()
    assert len(train.dataset) + len(test.dataset) == 1500
    monkeypatch.setenv("CI", "false")
    train, test = load_mnist()
    assert len(train.dataset) + len(test.dataset) == 5000


def test_train_loader_shuffles_and_test_loader_keeps_order():
    train, test = load_mnist(64, 0.9, subset=640, seed=3)
    first_epoch = torch.cat([y for _, y in train])
    second_epoch = torch.cat([y for _, y in train])
    assert not torch.equal(first_epoch, second_epoch)
    assert torch.equal(torch.cat([y for _, y in test]), torch.cat([y for _, y in test]))
    again, _ = load_mnist(64, 0.9, subset=640, seed=3)
    assert torch.equal(torch.cat([y for _, y in again]), first_epoch)  # same seed, same batch order


def test_onehot_and_onecold_round_trip():
    labels = torch.tensor([0, 3, 9])
    assert onehot(labels).shape == (3, 10)
    assert torch.equal(onecold(onehot(labels)), labels)


def test_bad_arguments_are_explained():
    with pytest.raises(InputError, match="train_split"):
        load_mnist(train_split=1.5)
    with pytest.raises(InputError, match="more images than"):
        load_mnist(subset=6000)
    with pytest.raises(InputError, match="unknown MNIST source"):
        load_mnist(source="kaggle")


def test_missing_embedded_file_says_how_to_rebuild(tmp_path):
    with pytest.raises(DataError, match="missing.*build_embedded_mnist"):
        load_arrays("embedded", path=tmp_path / "mnist_5k.npz")


def test_corrupt_embedded_file_says_how_to_rebuild(tmp_path):
    broken = tmp_path / "mnist_5k.npz"
    broken.write_bytes(data.EMBEDDED_PATH.read_bytes()[:1000])
    with pytest.raises(DataError, match="corrupt.*build_embedded_mnist"):
        load_arrays("embedded", path=broken)


def test_wrong_contents_are_detected(tmp_path):
    odd = tmp_path / "mnist_5k.npz"
    np.savez(odd, images=np.zeros((4, 27, 28), np.uint8), labels=np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="unexpected contents"):
        load_arrays("embedded", path=odd)


def test_checksum_mismatch_is_detected(tmp_path, monkeypatch):
    images, labels = data._read_embedded(data.EMBEDDED_PATH)
    images = images.copy()
    images[0, 0, 0] ^= 1
    tampered = tmp_path / "mnist_5k.npz"
    np.savez_compressed(tampered, images=images, labels=labels)
    monkeypatch.setattr(data, "EMBEDDED_PATH", tampered)
    with pytest.raises(DataError, match="checksum"):
        load_arrays("embedded")


def _write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">i", d) for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(payload)


def _fake_torchvision_mnist(root, n_train=50, n_test=10):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


def test_torchvision_source_reads_the_idx_layout(tmp_path):
    _fake_torchvision_mnist(tmp_path)
    train, test = load_mnist(16, 0.8, subset=None, source="torchvision", root=tmp_path, download=False)
    assert len(train.dataset) == 40 and len(test.dataset) == 10
    x, y = test.dataset.tensors
    assert x.shape == (10, 1, 28, 28) and x.max() <= 1.0
    assert y.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]  # torchvision's own order, as in the tutorial


def test_full_mnist_offline_explains_what_to_do(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tv_mnist

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", no_network)
    with pytest.raises(DataError, match="could not load the full MNIST.*copy.*source='embedded'"):
        load_mnist(source="torchvision", root=tmp_path, subset=None)
