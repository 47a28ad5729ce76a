"""The numbers the notebooks print and plot, each checked against a value computed independently.

Accuracy, loss per epoch, the training step itself, batch order, confusion matrix, PCA, hidden-state
trajectories and the tolerance sweep: every expected value here is computed by hand (a stub model with
known predictions, a hand-written Adam loop, an eigendecomposition, a second solver), never by the
function under test.
"""

import copy
import dataclasses
import sys
from types import SimpleNamespace

import pytest
import torch
import torchdiffeq
from helpers import ROOT
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nodeutils import training
from nodeutils.data import load_arrays, load_mnist
from nodeutils.evaluation import accuracy
from nodeutils.models import create_model
from nodeutils.probing import evaluate_at_tolerance, hidden_trajectories, tolerance_grid
from nodeutils.sensitivity import AutogradAdjoint, GaussAdjoint, SensitivityAlgorithm, SolveStats
from nodeutils.statistics import PCA, confusion_matrix
from nodeutils.training import train

sys.path.insert(0, str(ROOT / "benchmarks"))
import sensitivity as sensitivity_benchmark  # noqa: E402


# ----------------------------------------------------------------------------------------------
# A classifier whose predictions are known in advance
# ----------------------------------------------------------------------------------------------
class KnownPredictions(nn.Module):
    """Predicts the class written in pixel (0, 0, 0) of each image.

    It also looks like a Neural ODE classifier to the tolerance sweep: ``ode.settings`` holds rtol/atol,
    ``ode.stats`` the evaluation count of the latest call (10 per image). At a loose tolerance
    (rtol > 1e-2) it predicts class 0 for every image, so the sweep must really apply its tolerance.
    """

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))  # the prediction loop reads the device from a parameter
        self.ode = SimpleNamespace(settings=SimpleNamespace(rtol=1e-3, atol=1e-3), stats=SolveStats())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        classes = x[:, 0, 0, 0].long()
        if self.ode.settings.rtol > 1e-2:
            classes = torch.zeros_like(classes)
        self.ode.stats = SolveStats(nfe_forward=10 * len(x))
        return nn.functional.one_hot(classes, 10).float()


def _known_loader(batch_size: int = 4) -> DataLoader:
    """10 images, batches of 4, 4 and 2 (a partial last batch); 7 of the 10 predictions are right."""
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    predicted = torch.tensor([0, 1, 2, 9, 4, 5, 1, 7, 8, 0])  # wrong at positions 3, 6 and 9
    images = torch.zeros(10, 1, 28, 28)
    images[:, 0, 0, 0] = predicted.float()
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size)


def test_accuracy_counts_correct_predictions_over_all_images_including_a_partial_batch():
    # 7 right out of 10 (batches 4 + 4 + 2); catches e.g. correct / (total + 1) or a dropped last batch
    assert accuracy(KnownPredictions(), _known_loader()) == 0.7
    assert accuracy(KnownPredictions(), _known_loader(batch_size=3)) == 0.7


def test_tolerance_sweep_reports_accuracy_and_evaluations_per_batch():
    model = KnownPredictions()
    result = evaluate_at_tolerance(model, _known_loader(), 1e-4)
    assert result.tolerance == 1e-4
    assert result.accuracy == 70.0  # 7 of 10, in percent
    assert result.nfe_per_batch == (40 + 40 + 20) / 3  # 10 evaluations per image, batches of 4, 4, 2
    loose = evaluate_at_tolerance(model, _known_loader(), 1e-1)
    assert loose.accuracy == 10.0  # everything predicted as 0: only the image of a 0 is right
    assert model.ode.settings.rtol == 1e-3 and model.ode.settings.atol == 1e-3  # restored afterwards


def test_tolerance_grid_lists_decades():
    assert list(tolerance_grid()) == [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6]
    assert list(tolerance_grid(1e-3, 1e-2)) == [1e-2, 1e-3]


def test_confusion_matrix_matches_a_hand_count():
    g = torch.Generator().manual_seed(3)
    truth = torch.randint(0, 10, (300,), generator=g)
    predicted = torch.where(torch.rand(300, generator=g) < 0.7, truth, torch.randint(0, 10, (300,), generator=g))
    expected = [[0] * 10 for _ in range(10)]
    for t, p in zip(truth.tolist(), predicted.tolist()):
        expected[t][p] += 1
    assert confusion_matrix(truth, predicted).tolist() == expected


# ----------------------------------------------------------------------------------------------
# Training: the loop against a hand-written one
# ----------------------------------------------------------------------------------------------
def _adam_by_hand(params, grads, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    """One step of Adam (Kingma & Ba 2015, Algorithm 1) written out, in place.

    The operations are ordered as in torch.optim.Adam's CPU code, so both round alike and agree bit for bit.
    """
    state["k"] += 1
    k = state["k"]
    for i, (p, g) in enumerate(zip(params, grads)):
        m = state.setdefault(("m", i), torch.zeros_like(p))
        v = state.setdefault(("v", i), torch.zeros_like(p))
        m.lerp_(g, 1 - betas[0])  # m = beta1 m + (1 - beta1) g
        v.mul_(betas[1]).addcmul_(g, g, value=1 - betas[1])  # v = beta2 v + (1 - beta2) g^2
        denominator = (v.sqrt() / (1 - betas[1] ** k) ** 0.5).add_(eps)  # sqrt(v_hat) + eps
        p.addcdiv_(m, denominator, value=-lr / (1 - betas[0] ** k))  # p -= lr m_hat / (sqrt(v_hat) + eps)


def _small_split(n_train: int, n_test: int, batch_size: int):
    x, y = load_arrays("embedded", subset=n_train + n_test)
    train_loader = DataLoader(TensorDataset(x[:n_train], y[:n_train]), batch_size=batch_size)  # fixed order
    test_loader = DataLoader(TensorDataset(x[n_train:], y[n_train:]), batch_size=batch_size)
    return train_loader, test_loader


def _hand_accuracy(model, loader):
    model.eval()
    with torch.no_grad():
        right = sum(int((model(x).argmax(dim=1) == y).sum()) for x, y in loader)
    return 100 * right / len(loader.dataset)


def _hand_epoch(loader):
    """One epoch of the tutorial's training written out: batch losses, evaluation counts, final model."""
    model = create_model(seed=0)
    params = list(model.parameters())
    state, losses, nfe_f, nfe_b = {"k": 0}, [], [], []
    for x, y in loader:
        loss = nn.functional.cross_entropy(model(x), y)
        grads = torch.autograd.grad(loss, params)  # fresh gradients for every batch
        with torch.no_grad():
            _adam_by_hand(params, grads, state)
        losses.append(loss.item())
        nfe_f.append(model.ode.stats.nfe_forward)
        nfe_b.append(model.ode.stats.nfe_backward)
    return model, losses, nfe_f, nfe_b


def test_one_epoch_matches_a_hand_written_adam_loop():
    loaders = _small_split(24, 16, 8)  # three full batches of 8
    history = train(epochs=1, loaders=loaders, progress=False, log=None)
    model, losses, nfe_f, nfe_b = _hand_epoch(loaders[0])
    # Parameters after three Adam steps: bit-identical (a loop that never zeroes its gradients is off by ~1e-3).
    for (name, p), q in zip(history.model.named_parameters(), model.parameters()):
        assert torch.equal(p, q), name
    # The epoch's loss is the mean of the three batch losses (measured: equal to the last bit).
    assert history.loss[0] == pytest.approx(sum(losses) / 3, rel=1e-15, abs=0)
    assert history.loss[0] != pytest.approx(losses[-1], abs=1e-4)  # not the last batch alone
    assert history.nfe_forward == [sum(nfe_f) / 3] and history.nfe_backward == [sum(nfe_b) / 3]
    # Same count of right answers; 100 * right / n may round differently from 100 * (right / n).
    assert history.train_accuracy == pytest.approx([_hand_accuracy(model, loaders[0])], rel=1e-15, abs=0)
    assert history.test_accuracy == pytest.approx([_hand_accuracy(model, loaders[1])], rel=1e-15, abs=0)


def test_epoch_loss_weights_each_image_equally_with_a_partial_last_batch():
    loaders = _small_split(20, 4, 12)  # batches of 12 and 8
    history = train(epochs=1, loaders=loaders, progress=False, log=None)
    _, losses, _, _ = _hand_epoch(loaders[0])
    per_image = (12 * losses[0] + 8 * losses[1]) / 20  # mean cross-entropy over the epoch's 20 images
    assert history.loss[0] == pytest.approx(per_image, rel=1e-15, abs=0)


# ----------------------------------------------------------------------------------------------
# Batch order follows the seed
# ----------------------------------------------------------------------------------------------
# First labels of the first training batch: load_mnist(64, 0.9, subset=640, seed=s), and train(seed=s)
# on the 300-image loaders of conftest.py. Regenerate with next(iter(loader))[1][:12].tolist().
FIRST_LABELS = {0: [2, 1, 5, 8, 3, 2, 5, 3, 2, 7, 9, 3], 1: [8, 6, 6, 4, 7, 7, 7, 4, 9, 6, 9, 6]}
FIRST_LABELS_300 = {0: [6, 0, 9, 7, 4, 1, 6, 7, 3, 5, 0, 9]}


def test_loader_batch_order_follows_the_seed():
    firsts = {}
    for seed in (0, 1, 2):
        loader, _ = load_mnist(64, 0.9, subset=640, seed=seed)
        firsts[seed] = next(iter(loader))[1].tolist()
    assert firsts[0][:12] == FIRST_LABELS[0] and firsts[1][:12] == FIRST_LABELS[1]
    assert len({tuple(v) for v in firsts.values()}) == 3  # three seeds, three batch orders


class _FirstBatchSeenError(Exception):
    pass


def test_training_batch_order_follows_the_training_seed(small_loaders, monkeypatch):
    seen = []

    def record_first_batch(logits, labels):
        seen.append(labels.tolist())
        raise _FirstBatchSeenError

    monkeypatch.setattr(training, "logitcrossentropy", record_first_batch)
    for seed in (0, 1, 0):  # the loaders are reused: each run reseeds them
        with pytest.raises(_FirstBatchSeenError):
            train(epochs=1, seed=seed, loaders=small_loaders, progress=False, log=None)
    assert seen[0][:12] == FIRST_LABELS_300[0]
    assert seen[1] != seen[0] and seen[2] == seen[0]


# ----------------------------------------------------------------------------------------------
# PCA and trajectories
# ----------------------------------------------------------------------------------------------
def test_pca_matches_the_eigenvectors_of_the_centred_covariance():
    g = torch.Generator().manual_seed(4)
    mix = torch.randn(5, 5, generator=g, dtype=torch.float64)
    scales = torch.tensor([4.0, 2.0, 1.0, 0.5, 0.1], dtype=torch.float64)
    offset = torch.tensor([30.0, -12.0, 7.0, 50.0, -3.0], dtype=torch.float64)  # far from the origin
    points = (torch.randn(400, 5, generator=g, dtype=torch.float64) * scales @ mix + offset).float()
    exact = points.double()
    centred = exact - exact.mean(dim=0)
    eigenvalues, eigenvectors = torch.linalg.eigh(centred.T @ centred / (len(points) - 1))  # ascending order
    pca = PCA(points)
    # Measured against the eigendecomposition: explained variance 3e-16, projections 7e-15.
    assert pca.explained == pytest.approx((eigenvalues[[-1, -2]] / eigenvalues.sum()).tolist(), rel=0, abs=2e-15)
    expected = centred @ eigenvectors[:, [-1, -2]]
    projected = pca(points)
    signs = torch.sign((projected * expected).sum(dim=0))  # each direction is defined up to its sign
    assert (projected * signs - expected).abs().max() < 7e-14
    assert pca(points.mean(dim=0, keepdim=True)).abs().max() < 2e-5  # the float32 mean (off by 2e-6) -> origin


@pytest.fixture(scope="module")
def untrained_trajectories():
    model = create_model(seed=0)
    x, y = load_arrays("embedded", subset=32)
    return model, x, y, hidden_trajectories(model, x, y, n_times=6)


def test_trajectories_start_at_the_encoding(untrained_trajectories):
    model, x, _, traj = untrained_trajectories
    with torch.no_grad():
        encoding = torch.tanh(model.encoder(x.reshape(len(x), -1)))
    assert torch.equal(traj.states[0], encoding)


def test_trajectories_follow_the_ode_between_start_and_end(untrained_trajectories):
    model, x, _, traj = untrained_trajectories
    network = copy.deepcopy(model.ode.model).double()
    with torch.no_grad():
        reference = torchdiffeq.odeint(lambda t, u: network(u), traj.states[0].double(), traj.times,
                                       method="dopri5", rtol=1e-10, atol=1e-10)
        model.eval()
        predicted = model(x).argmax(dim=1)
    assert torch.allclose(traj.times, torch.linspace(0, 1, 6, dtype=torch.float64))
    # The untrained model solves at rtol = atol = 1e-3; measured error against dopri5 at 1e-10 over 32 images:
    # largest 2.9e-2, root mean square 1.6e-3 (0 at t = 0): the error control bounds a norm over the whole batch.
    error = (traj.states.double() - reference).abs()
    assert error[0].max() == 0 and error.max() < 5e-2 and error.pow(2).mean().sqrt() < 3e-3
    assert torch.equal(traj.predictions, predicted)


# ----------------------------------------------------------------------------------------------
# Notebook 03's tables: gradient differences, evaluation counts, memory
# ----------------------------------------------------------------------------------------------
class ScaledExact(SensitivityAlgorithm):
    """A stand-in algorithm with a known error: the horizon sweep's own reference solution times ``scale``.

    Scaling the solution by 1 + d scales every gradient of a linear loss by 1 + d, so the relative
    gradient error a table reports must be |d|.
    """

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def solve(self, problem, y0, t):
        tight = dataclasses.replace(problem, rtol=1e-10, atol=1e-10)  # the sweep's own reference accuracy
        return self.scale * AutogradAdjoint().solve(tight, y0, t)


def test_horizon_sweep_reports_the_known_gradient_error():
    rows = sensitivity_benchmark.horizon_sweep({"reference": ScaledExact(), "2% off": ScaledExact(0.98)}, [1.0])
    by = {r.name: r for r in rows}
    assert by["reference"].grad_error == 0.0  # the very computation of the sweep's own reference
    assert by["2% off"].grad_error == pytest.approx(0.02, rel=0, abs=1e-15)  # measured 2e-17


def test_cost_table_counts_memory_and_gradient_differences():
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    y = torch.arange(8)
    algorithms = {"discrete": AutogradAdjoint(), "gauss": GaussAdjoint(),
                  "gauss (checkpointed)": GaussAdjoint(checkpointing=True)}
    rows = {r.name: r for r in sensitivity_benchmark.cost_table(algorithms, x, y, repeats=1)}
    gradients, stats = {}, {}
    for name, alg in algorithms.items():  # the same training step, measured here
        model = create_model(sensealg=alg)
        params = list(model.parameters())
        grads = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), params)
        gradients[name] = torch.cat([g.reshape(-1) for g in grads])
        stats[name] = model.ode.stats
    reference = gradients["discrete"]
    for name, row in rows.items():
        assert (row.nfe_forward, row.nfe_backward) == (stats[name].nfe_forward, stats[name].nfe_backward), name
        expected = float((gradients[name] - reference).norm() / reference.norm())
        # measured 3e-8 relative: the table divides float64 norms, this line float32 ones
        assert row.grad_error == pytest.approx(expected, rel=3e-7, abs=0), name
        assert row.step_ms > 0
    assert rows["discrete"].grad_error == 0.0
    # Memory: the two Gauss variants keep the same autograd tensors around the ODE; they differ only in what
    # the adjoint stores: every step's 5 interpolation coefficients, or the 8 x 20 float64 state at both ends.
    state_bytes = 8 * 20 * 8
    steps = stats["gauss"].steps_forward
    assert stats["gauss"].stored_bytes == steps * 5 * state_bytes
    assert stats["gauss (checkpointed)"].stored_bytes == 2 * state_bytes
    difference = (steps * 5 - 2) * state_bytes / 1024
    assert rows["gauss"].kept_kib - rows["gauss (checkpointed)"].kept_kib == difference
    assert rows["discrete"].kept_kib > rows["gauss"].kept_kib  # the recorded graph of every stage
