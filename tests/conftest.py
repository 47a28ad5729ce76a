from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # figures are drawn headlessly, before any test module imports pyplot

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from nodeutils.data import load_mnist  # noqa: E402
from nodeutils.models import create_model  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def small_loaders():
    """300 embedded images (270 train / 30 test): enough to exercise training quickly."""
    return load_mnist(64, 0.9, subset=300)


@pytest.fixture(scope="session")
def trained(small_loaders):
    """A model trained for two epochs on ``small_loaders``, its test predictions and their hidden trajectories.

    ``(history, images, truth, predicted, trajectories)``; trajectories at 6 times.
    """
    from nodeutils.probing import hidden_trajectories, predict
    from nodeutils.training import train

    history = train(epochs=2, loaders=small_loaders, progress=False, log=None)
    images, truth, predicted = predict(history.model, small_loaders[1])
    return history, images, truth, predicted, hidden_trajectories(history.model, images, truth, n_times=6)


@pytest.fixture(scope="module")
def tiny_loaders() -> tuple[DataLoader, DataLoader]:
    """24 random images: 20 to train on (two shuffled batches of 10), 4 to test on."""
    x = torch.rand(24, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.arange(24) % 10
    return (DataLoader(TensorDataset(x[:20], y[:20]), batch_size=10, shuffle=True, generator=torch.Generator()),
            DataLoader(TensorDataset(x[20:], y[20:]), batch_size=10))


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """An untrained tutorial model (seed 0) with discrete backprop, one per test module."""
    return create_model(sensealg="autograd")


@pytest.fixture
def close_figures():
    """Close every matplotlib figure a test opened."""
    yield
    plt.close("all")


class _Fixtures:
    """Fixtures as attributes (``fx.model``, ``fx.tmp_path``), each set up only when a case asks for it."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    def __getattr__(self, name: str) -> Any:
        return self._request.getfixturevalue(name)


@pytest.fixture
def fx(request: pytest.FixtureRequest) -> _Fixtures:
    """The fixtures a case of a ``BAD_INPUTS`` table may need, for ``helpers.assert_refused``."""
    return _Fixtures(request)
