from __future__ import annotations

import pytest
import torch

from nodeutils.data import load_mnist


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def small_loaders():
    """300 embedded images (270 train / 30 test): enough to exercise training quickly."""
    return load_mnist(64, 0.9, subset=300)
