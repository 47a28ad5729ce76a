"""nodeutils.data: the embedded MNIST subset, torchvision's files, the loaders, and what they refuse."""

import errno
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_refused, fake_mnist_files, write_idx

from nodeutils import data
from nodeutils.data import load_arrays, load_mnist
from nodeutils.errors import DataError, InputError, NodeUtilsWarning


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


def test_load_mnist_tiny_test_split_warns():
    with pytest.warns(NodeUtilsWarning, match="the test split has only 1 image, so its accuracy moves in steps of 100"):
        load_mnist(subset=5)


def test_load_mnist_subset_beyond_the_embedded_images_names_60000():
    message = assert_refused(lambda: load_mnist(subset=70000), InputError,
                             ["subset=70000 asks for more images than the embedded source has (5,000)",
                              "60,000 training images", "--source torchvision"])
    assert "70,000" not in message


# ---------------------------------------------------------------------------------------------------------------
# The embedded file: missing, corrupt, tampered with
# ---------------------------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------------------------
# torchvision's files
# ---------------------------------------------------------------------------------------------------------------
def test_torchvision_source_reads_the_idx_layout(tmp_path):
    fake_mnist_files(tmp_path, n_train=50, n_test=10)
    train, test = load_mnist(16, 0.8, subset=None, source="torchvision", root=tmp_path, download=False)
    assert len(train.dataset) == 40 and len(test.dataset) == 10
    x, y = test.dataset.tensors
    assert x.shape == (10, 1, 28, 28) and x.max() <= 1.0
    assert y.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]  # torchvision's own order, as in the tutorial


def test_torchvision_source_needs_only_the_training_files(tmp_path):
    fake_mnist_files(tmp_path)  # no t10k files: they are not used
    x, y = load_arrays("torchvision", root=tmp_path, download=False)
    assert x.shape == (60, 1, 28, 28) and y.tolist()[:3] == [0, 1, 2]


def test_torchvision_source_reads_gzipped_files(tmp_path):
    fake_mnist_files(tmp_path, compress=True)
    x, _ = load_arrays("torchvision", root=tmp_path, download=False)
    assert x.shape == (60, 1, 28, 28) and float(x.max()) <= 1.0


def test_full_mnist_offline_explains_what_to_do(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tv_mnist

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", no_network)
    with pytest.raises(DataError, match="could not load the full MNIST.*copy.*source='embedded'"):
        load_mnist(source="torchvision", root=tmp_path, subset=None)


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


def test_home_folder_in_a_path_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DataError) as err:  # ~ is the home folder, not a folder named "~"
        load_arrays("torchvision", root="~/mnist", download=False)
    assert str(tmp_path) in str(err.value) and "~" not in str(err.value)


# ---------------------------------------------------------------------------------------------------------------
# Bad inputs: refused with the argument and the fix
# ---------------------------------------------------------------------------------------------------------------
def _torchvision(fx) -> tuple:
    return load_arrays("torchvision", root=fx.tmp_path, download=False)


def _labels_file_missing(fx):
    (fake_mnist_files(fx.tmp_path) / "train-labels-idx1-ubyte").unlink()
    return _torchvision(fx)


def _wrong_magic_number(fx):
    write_idx(fake_mnist_files(fx.tmp_path) / "train-images-idx3-ubyte", np.zeros((60, 28, 28)), magic=0x0801)
    return _torchvision(fx)


def _truncated(fx):
    path = fake_mnist_files(fx.tmp_path) / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    return _torchvision(fx)


def _read_only_folder(fx):
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    root = fx.tmp_path / "data"  # (pytest makes tmp_path before mkdir is patched)
    fx.monkeypatch.setattr(Path, "mkdir", read_only)
    return load_arrays("torchvision", root=root)


def _folder_that_is_a_file(fx):
    (fx.tmp_path / "data").write_text("")
    return load_arrays("torchvision", root=fx.tmp_path / "data")


BAD_INPUTS = [
    pytest.param(lambda: load_arrays(path=3), InputError, ("path must be the path of an .npz file",),
                 id="load_arrays path of another type"),
    pytest.param(lambda: load_mnist(train_split=1.5), InputError, ("train_split",), id="train_split 1.5"),
    pytest.param(lambda: load_mnist(subset=6000), InputError, ("more images than",), id="subset 6000"),
    pytest.param(lambda: load_mnist(source="kaggle"), InputError, ("unknown MNIST source",), id="unknown source"),
    pytest.param(lambda: load_mnist(subset=2), InputError,
                 ("subset=2 with train_split=0.9 leaves 2 training and 0 test images", "at least 5 images",
                  "500 or more"), id="subset too small for the split"),
    pytest.param(lambda: load_mnist(subset="1500"), InputError, ("subset must be an integer", "'1500'"),
                 id="subset a string"),
    pytest.param(lambda: load_mnist(train_split="0.9"), InputError,
                 ("train_split must lie strictly between 0 and 1", "'0.9'"), id="train_split a string"),
    pytest.param(lambda: load_mnist(root="mnist"), InputError, ("root='mnist' is only used by source='torchvision'",),
                 id="root with the embedded source"),
    pytest.param(_labels_file_missing, DataError,
                 ("train-labels-idx1-ubyte is missing from", lambda fx: str(fx.tmp_path / "MNIST" / "raw"),
                  "source='embedded'"), id="torchvision file missing"),
    pytest.param(_wrong_magic_number, DataError,
                 ("train-images-idx3-ubyte is not an MNIST images file", "0x00000803", "found 0x00000801"),
                 id="torchvision wrong magic number"),
    pytest.param(_truncated, DataError, ("train-images-idx3-ubyte is truncated",), id="torchvision truncated file"),
    pytest.param(_read_only_folder, DataError,
                 ("cannot write the MNIST files into", "Read-only file system", "--data-dir", "root="),
                 id="torchvision read-only folder"),
    pytest.param(_folder_that_is_a_file, DataError, ("is a file, not a folder",), id="torchvision folder a file"),
    *(pytest.param(lambda root=root: load_arrays("torchvision", root=root, download=False), InputError, ("empty",),
                   id=f"torchvision root {root!r}") for root in ("", "  ")),
]


@pytest.mark.parametrize("call, error, fragments", BAD_INPUTS)
def test_bad_input_is_refused_with_the_argument_and_the_fix(call, error, fragments, fx):
    assert_refused(call, error, fragments, fx)


def test_a_numpy_train_split_is_a_number_like_any_other():
    train, test = load_mnist(64, np.float32(0.9), subset=100)
    assert (len(train.dataset), len(test.dataset)) == (90, 10)
