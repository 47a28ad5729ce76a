"""Looking inside a trained Neural ODE classifier: trajectories, predictions, tolerance effects."""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

from .checks import check_batch, check_int, check_labels, check_number, describe
from .errors import InputError
from .layers import solve_dtype
from .models import check_model, encode
from .solvers import SolveCounter, check_method, check_options, check_time_span, check_tolerances, integrate
from .training import model_device, predictions

__all__ = [
    "Trajectories",
    "hidden_trajectories",
    "PCA",
    "predict",
    "confusion_matrix",
    "ToleranceResult",
    "evaluate_at_tolerance",
    "solver_settings",
    "tolerance_grid",
    "binomial_interval",
    "without_times",
    "same_table",
    "PredictionComparison",
    "compare_predictions",
    "SolverSteps",
    "solver_steps",
    "class_distances",
    "class_spread",
    "affine_fit_r2",
    "exact_mcnemar",
    "decoder_scores",
    "decoder_margin",
    "LinearReadout",
    "fit_linear_readout",
]


@contextlib.contextmanager
def solver_settings(model: nn.Module, **changes: object) -> Iterator[None]:
    """Temporarily change the ODE layer's settings (``tspan``, ``rtol``, ``atol`` ...)."""
    settings = check_model(model).ode.settings
    changes = _checked_settings(settings, changes)
    saved = {name: getattr(settings, name) for name in changes}
    try:
        for name, value in changes.items():
            setattr(settings, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(settings, name, value)


_SETTINGS = ("tspan", "rtol", "atol", "solver", "options")


def _checked_settings(settings: object, changes: dict[str, object]) -> dict[str, object]:
    unknown = sorted(set(changes) - set(_SETTINGS))
    if unknown:
        raise InputError(f"solver_settings cannot change {', '.join(unknown)}: it changes {', '.join(_SETTINGS)}")
    out = dict(changes)
    if "tspan" in out:
        span = out["tspan"]
        try:
            span = span if isinstance(span, torch.Tensor) else torch.as_tensor(span, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            pass  # check_time_span explains
        out["tspan"] = tuple(float(x) for x in check_time_span(span).double())
    for name in ("rtol", "atol"):
        if name in out:
            out[name] = check_number(name, out[name], example="1e-3")
    if "solver" in out:
        check_method(out["solver"], need_dense=settings.sensealg.uses_dense_output)
    if "options" in out or "solver" in out:
        out["options"] = check_options(out.get("solver", settings.solver), out.get("options", settings.options))
    return out


def _check_images_and_labels(images: object, labels: object) -> None:
    if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise InputError(f"images and labels must be tensors (e.g. from predict(model, loader)); got "
                         f"{type(images).__name__} and {type(labels).__name__}")
    if labels.ndim != 1 or len(images) != len(labels):
        raise InputError(f"expected one label per image; got {len(images)} images and labels shaped "
                         f"{tuple(labels.shape)}")


@dataclass
class Trajectories:
    """Hidden states u(t) of the ODE for a batch of images: ``states`` is (time, image, 20)."""

    times: torch.Tensor
    states: torch.Tensor
    labels: torch.Tensor
    predictions: torch.Tensor


@torch.no_grad()
def hidden_trajectories(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                        n_times: int = 21) -> Trajectories:
    """Solve the model's ODE for ``images`` and keep the state at ``n_times`` equally spaced times."""
    n_times = check_int("n_times", n_times, minimum=2, hint="at least the start and the end, e.g. 21")
    check_model(model)
    if not isinstance(images, torch.Tensor):
        raise InputError(f"images must be a tensor (e.g. from predict(model, loader)); got {type(images).__name__}")
    # labels as accuracy() takes them: (N, 1) and one-hot labels are converted with a warning, others refused
    labels = check_labels(labels, len(images), model.decoder.out_features, "the batch passed to hidden_trajectories")
    model.eval()
    t0, t1 = model.ode.settings.tspan[0], model.ode.settings.tspan[-1]
    times = torch.linspace(t0, t1, n_times, dtype=torch.float64)
    start = encode(model, images)
    with solver_settings(model, tspan=tuple(times.tolist())):
        states = model.ode(start)
    predictions = model.decoder(states[-1]).argmax(dim=1)
    return Trajectories(times, states.cpu(), labels.cpu(), predictions.cpu())


class PCA:
    """Principal-component projection to 2-D, fitted on a set of points (e.g. final hidden states)."""

    def __init__(self, points: torch.Tensor, components: int = 2) -> None:
        """Fit the projection.

        Args:
            points: a (points, features) tensor of at least two finite points that are not all the same.
            components: how many principal components to keep.

        Raises:
            InputError: mis-shaped, non-finite or identical points, or more components than features.
        """
        if not isinstance(points, torch.Tensor) or points.ndim != 2 or len(points) < 2:
            got = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
            raise InputError(f"PCA needs a 2-D tensor of at least two points (points x features); got {got}")
        components = check_int("components", components, minimum=1, maximum=points.shape[1])
        points = points.double()
        if not bool(torch.isfinite(points).all()):
            bad = int((~torch.isfinite(points)).any(dim=1).sum())
            raise InputError(f"PCA's points hold NaN or infinite values ({bad} of {len(points)} points): drop those "
                             "points (e.g. points[torch.isfinite(points).all(dim=1)]) or find where they came from")
        if bool((points == points[:1]).all()):  # (their mean may differ from them by a rounding error)
            raise InputError(f"PCA's {len(points)} points are all identical, so they have no direction of spread to "
                             "project on: pass points that differ, e.g. the hidden states of several images")
        self.mean = points.mean(dim=0)
        _, singular, vt = torch.linalg.svd(points - self.mean, full_matrices=False)
        variance = singular**2
        self.components = vt[:components]
        self.explained = (variance[:components] / variance.sum()).tolist()

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        """Project ``points`` (..., features) onto the fitted components: (..., components).

        Raises:
            InputError: ``points`` is not a tensor with as many features as the fitted points.
        """
        if not isinstance(points, torch.Tensor) or points.ndim < 1 or points.shape[-1] != len(self.mean):
            raise InputError(f"PCA was fitted on points with {len(self.mean)} features; got {describe(points)}: "
                             f"pass a tensor shaped (..., {len(self.mean)})")
        return (points.double() - self.mean) @ self.components.T


def predict(model: nn.Module, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images, true labels and predicted labels for every item of ``loader``."""
    batches = list(predictions(check_model(model), loader))
    if not batches:
        raise InputError("the loader holds no images, so there is nothing to predict: give it at least one image")
    images, truth, predicted = zip(*batches)
    return torch.cat(images), torch.cat(truth), torch.cat(predicted)


def confusion_matrix(truth: torch.Tensor, predicted: torch.Tensor, classes: int = 10) -> torch.Tensor:
    """Counts[i, j] = number of images of class i predicted as class j."""
    classes = check_int("classes", classes, minimum=1)
    for name, x in (("truth", truth), ("predicted", predicted)):
        if not isinstance(x, torch.Tensor) or x.ndim != 1 or x.is_floating_point() or x.dtype == torch.bool:
            got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"{name} must be a 1-D tensor of integer labels; got {got}: pass labels, not scores "
                             "(scores.argmax(dim=1))")
        if len(x) and (int(x.min()) < 0 or int(x.max()) >= classes):
            raise InputError(f"{name} holds labels outside 0..{classes - 1} (from {int(x.min())} to "
                             f"{int(x.max())}): pass classes= large enough")
    if truth.shape != predicted.shape:
        raise InputError(f"truth and predicted must have one label per image each; got {len(truth)} and "
                         f"{len(predicted)}")
    return torch.bincount(truth * classes + predicted, minlength=classes * classes).reshape(classes, classes)


@dataclass
class ToleranceResult:
    """How the trained model behaves when its solver runs at another tolerance."""

    tolerance: float
    nfe_per_batch: float
    accuracy: float  # %
    seconds_per_batch: float


@torch.no_grad()
def evaluate_at_tolerance(model: nn.Module, loader: DataLoader, tolerance: float) -> ToleranceResult:
    """Evaluate the trained ``model`` on ``loader`` with rtol = atol = ``tolerance``."""
    tolerance = check_number("tolerance", tolerance, example="1e-3")
    check_tolerances(tolerance, tolerance)
    check_model(model)
    model.eval()
    device = model_device(model)
    if isinstance(loader, (torch.Tensor, str, bytes)) or not isinstance(loader, Iterable):
        raise InputError(f"loader must be a DataLoader of (images, labels) batches, as load_mnist returns; got "
                         f"{describe(loader)}")
    nfe, correct, total, seconds = [], 0, 0, 0.0
    with solver_settings(model, rtol=tolerance, atol=tolerance):
        for batch in loader:
            x, y = check_batch(batch)
            start = time.perf_counter()
            logits = model(x.to(device))
            seconds += time.perf_counter() - start
            y = check_labels(y, len(x), logits.shape[1])  # so the comparison below cannot broadcast
            predicted = logits.argmax(dim=1).cpu()
            nfe.append(model.ode.stats.nfe_forward)
            correct += int((predicted == y).sum())
            total += len(y)
    if not nfe:
        raise InputError("the loader holds no images, so there is no accuracy to measure: give it at least one image")
    return ToleranceResult(float(tolerance), sum(nfe) / len(nfe), 100 * correct / total, seconds / len(nfe))


def tolerance_grid(low: float = 1e-6, high: float = 1e-1) -> Sequence[float]:
    """Decades from ``high`` down to ``low``: 1e-1, 1e-2, ..., 1e-6."""
    low, high = check_number("low", low, example="1e-6"), check_number("high", high, example="1e-1")
    if low > high:
        raise InputError(f"low={low:g} is above high={high:g}: swap them")
    out, value = [], high
    while value >= low * (1 - 1e-9):
        out.append(float(f"{value:.0e}"))
        value /= 10
    return out


def binomial_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion (e.g. an accuracy): ``(low, high)`` as fractions in [0, 1].

    With ``successes`` correct answers out of ``trials``, the interval covers the true rate with about the
    stated ``confidence``; it stays inside [0, 1] even at 0 or ``trials`` successes.
    """
    trials = check_int("trials", trials, minimum=1, hint="the number of answers, e.g. len(test_set)")
    successes = check_int("successes", successes, hint="the number of correct answers, e.g. int(correct.sum())")
    if not 0 <= successes <= trials:
        raise InputError(f"successes must be an integer between 0 and trials={trials}; got {successes}: count the "
                         "correct answers among the trials")
    confidence = check_number("confidence", confidence, positive=False, example="0.95")
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence must lie strictly between 0 and 1, like 0.95; got {confidence!r}")
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def without_times(rows: Sequence[str] | object) -> list[str]:
    """Training-table rows with the (machine-dependent) ``Time ...s`` column removed.

    Accepts a list of rows, a single row, or anything with a ``rows()`` method (a TrainingHistory).
    """
    if hasattr(rows, "rows"):
        rows = rows.rows()
    if isinstance(rows, str):
        rows = [rows]
    return [re.sub(r"\tTime \S+", "", row) for row in rows]


def same_table(a: Sequence[str] | object, b: Sequence[str] | object) -> bool:
    """True when two training tables (or histories) agree in every row apart from the timings."""
    return without_times(a) == without_times(b)


@dataclass
class PredictionComparison:
    """How two models' outputs differ on the same images."""

    images: int
    changed: int  # images whose predicted class differs
    largest_logit_difference: float


def compare_predictions(a: nn.Module, b: nn.Module, *loaders: DataLoader) -> PredictionComparison:
    """Compare two models' logits and predicted classes on every image of ``loaders``."""
    check_model(a)
    check_model(b)
    images = changed = 0
    largest = 0.0
    with torch.no_grad():
        for loader in loaders:
            for x, _ in loader:
                la = a(x.to(next(a.parameters()).device)).cpu()
                lb = b(x.to(next(b.parameters()).device)).cpu()
                images += len(x)
                changed += int((la.argmax(1) != lb.argmax(1)).sum())
                largest = max(largest, float((la - lb).abs().max()))
    return PredictionComparison(images, changed, largest)


@dataclass
class SolverSteps:
    """The accepted steps of one forward solve: where each ended, and what the solve cost."""

    tolerance: float
    step_ends: list[float]  # t0, then the end of every accepted step (the last one may lie past the span)
    evaluations: int  # evaluations of f: one at t0 (also the first stage of step 1), one trial to size step 1, 6 a step
    rejected: int

    @property
    def step_sizes(self) -> list[float]:
        return [b - a for a, b in zip(self.step_ends, self.step_ends[1:])]

    @property
    def growth(self) -> list[float]:
        """Each step's size divided by the previous step's."""
        sizes = self.step_sizes
        return [b / a for a, b in zip(sizes, sizes[1:])]


@torch.no_grad()
def solver_steps(model: nn.Module, images: torch.Tensor, tolerance: float | None = None) -> SolverSteps:
    """Accepted steps of the model's forward solve for ``images`` at rtol = atol = ``tolerance``.

    Runs the same solve as ``model(images)`` (same solver, span, options, state and dtype, so the same
    steps and evaluation count), with ``tolerance`` defaulting to the model's own rtol.
    """
    settings = check_model(model).ode.settings
    tolerance = settings.rtol if tolerance is None else check_number("tolerance", tolerance, example="1e-3")
    check_tolerances(tolerance, tolerance)
    model.eval()
    network = model.ode.model
    start = encode(model, images)
    start = start.to(solve_dtype(network, start))  # the dtype the model's own solve runs in
    ends: list[float] = []

    def on_step(t0: float, t1: float, _coefficients: list[torch.Tensor]) -> None:
        if not ends:
            ends.append(t0)
        ends.append(t1)

    counter = SolveCounter()
    span = torch.tensor(settings.tspan, dtype=torch.float64, device=start.device)
    integrate(lambda t, u: network(u), start, span,
              method=settings.solver, rtol=tolerance, atol=tolerance, options=dict(settings.options),
              on_step=on_step, counter=counter)
    return SolverSteps(float(tolerance), ends, counter.nfe, counter.rejected)


def _check_states_and_labels(states: object, labels: object) -> None:
    if not isinstance(states, torch.Tensor) or states.ndim != 2:
        got = tuple(states.shape) if isinstance(states, torch.Tensor) else type(states).__name__
        raise InputError(f"states must be a 2-D tensor (image x state), e.g. trajectories.states[-1]; got {got}")
    _check_images_and_labels(states, labels)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise InputError(f"labels must be integer class labels; got dtype {labels.dtype}")


def class_distances(states: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """The two distances behind :func:`class_spread`: ``(within, overall)``.

    ``within``: the mean distance of a state from its class's centre, averaged over the classes present;
    ``overall``: the mean distance of a state from the centre of all states. Both in the states' own units.
    """
    _check_states_and_labels(states, labels)
    states, labels = states.double().cpu(), labels.cpu()
    classes = labels.unique()
    within = torch.stack([(states[labels == c] - states[labels == c].mean(0)).norm(dim=1).mean() for c in classes])
    overall = (states - states.mean(0)).norm(dim=1).mean()
    return float(within.mean()), float(overall)


def class_spread(states: torch.Tensor, labels: torch.Tensor) -> float:
    """How tightly each class clusters, in the full state space (no projection).

    The mean distance of a state from its class's centre, averaged over the classes present, divided by
    the mean distance of a state from the centre of all states (see :func:`class_distances`): 0 when every
    class is a single point, about 1 when the classes are mixed through one another. Scale-free, so states
    at different times can be compared.
    """
    within, overall = class_distances(states, labels)
    return within / overall


def affine_fit_r2(inputs: torch.Tensor, outputs: torch.Tensor) -> float:
    """How nearly ``outputs`` is an affine function of ``inputs`` (rows paired): R^2 of the least-squares fit.

    Fits ``outputs ~ inputs @ A.T + b`` in float64 and returns 1 - (residual sum of squares) / (sum of
    squares of ``outputs`` about their mean, over all columns): 1 for an exactly affine map.
    """
    for name, x in (("inputs", inputs), ("outputs", outputs)):
        if not isinstance(x, torch.Tensor) or x.ndim != 2:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"{name} must be a 2-D tensor (point x feature), e.g. trajectories.states[0]; got {got}")
    if len(inputs) != len(outputs):
        raise InputError(f"inputs and outputs must pair up row by row; got {len(inputs)} and {len(outputs)} rows")
    if len(inputs) <= inputs.shape[1] + 1:
        raise InputError(f"an affine fit of {inputs.shape[1]} features needs more than {inputs.shape[1] + 1} points "
                         f"to mean anything; got {len(inputs)}")
    x, y = inputs.double().cpu(), outputs.double().cpu()
    design = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
    residual = y - design @ torch.linalg.lstsq(design, y).solution
    total = ((y - y.mean(0)) ** 2).sum()
    if total == 0:
        raise InputError("outputs are all the same point, so there is no variance to explain")
    return float(1 - (residual ** 2).sum() / total)


def exact_mcnemar(fixed: int, broken: int) -> float:
    """Two-sided exact McNemar test for two classifiers scored on the same items.

    ``fixed``: items only the second classifier gets right; ``broken``: items only the first gets right.
    If both were equally good, each of these ``fixed + broken`` disagreements would go either way with
    probability 1/2; the p-value is the probability of a split at least as uneven as the one seen.
    """
    for name, value in (("fixed", fixed), ("broken", broken)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InputError(f"{name} must be a count (a non-negative int), e.g. int(mask.sum()); got {value!r}")
    n = fixed + broken
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(fixed, broken) + 1)) / 2**n
    return min(1.0, 2 * tail)


@torch.no_grad()
def decoder_scores(model: nn.Module, states: torch.Tensor) -> torch.Tensor:
    """The model's decoder applied to hidden states (e.g. ``trajectories.states[-1]``): class scores on the CPU."""
    model = check_model(model)
    reference = next(model.decoder.parameters())
    return model.decoder(states.to(device=reference.device, dtype=reference.dtype)).cpu()


def decoder_margin(model: nn.Module, states: torch.Tensor) -> torch.Tensor:
    """Per state: the decoder's top score minus its runner-up (small means a close call)."""
    top2 = decoder_scores(model, states).topk(2, dim=1).values
    return top2[:, 0] - top2[:, 1]


@dataclass
class LinearReadout:
    """A linear decoder (scores = states @ weight.T + bias) fitted by :func:`fit_linear_readout`."""

    weight: torch.Tensor
    bias: torch.Tensor
    loss: float  # training cross-entropy, without the penalty
    gradient_norm: float  # of the penalised loss at the returned weights: ~0 at the optimum

    def __call__(self, states: torch.Tensor) -> torch.Tensor:
        return states.double().cpu() @ self.weight.T + self.bias

    def accuracy(self, states: torch.Tensor, labels: torch.Tensor) -> float:
        """Percentage of ``states`` whose highest score is at their label."""
        _check_states_and_labels(states, labels)
        return 100 * float((self(states).argmax(dim=1) == labels.cpu()).double().mean())


def fit_linear_readout(states: torch.Tensor, labels: torch.Tensor, classes: int = 10, penalty: float = 1e-3,
                       iterations: int = 15) -> LinearReadout:
    """The best linear decoder for fixed ``states``: minimises cross-entropy + ``penalty / 2 * ||weight||^2``.

    A convex problem (multinomial logistic regression), solved in float64 by a fixed number of full
    Newton steps from zero weights: no line search or stopping test, so nearby inputs give nearby
    weights. The small penalty keeps the optimum finite when some classes can be separated exactly.
    """
    _check_states_and_labels(states, labels)
    classes = check_int("classes", classes, minimum=2)
    penalty = check_number("penalty", penalty, example="1e-3")
    iterations = check_int("iterations", iterations, minimum=1)
    labels = labels.cpu()
    if int(labels.min()) < 0 or int(labels.max()) >= classes:
        raise InputError(f"labels run from {int(labels.min())} to {int(labels.max())}, outside 0..{classes - 1}: "
                         "pass classes= large enough")
    x = states.double().cpu()
    n, d = x.shape
    a = torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], dim=1)  # the last column carries the bias
    onehot = nn.functional.one_hot(labels, classes).double()
    mask = torch.ones(classes, d + 1, dtype=torch.float64)
    mask[:, -1] = 0  # the bias is not penalised
    theta = torch.zeros(classes, d + 1, dtype=torch.float64)

    def gradient(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = torch.softmax(a @ theta.T, dim=1)
        return p, (p - onehot).T @ a / n + penalty * mask * theta

    for _ in range(iterations):
        p, g = gradient(theta)
        # Hessian of the mean cross-entropy: sum_i (diag(p_i) - p_i p_i^T) (x) a_i a_i^T / n
        weighted = (p[:, :, None] * a[:, None, :]).reshape(n, -1)  # row i: p_i (x) a_i
        hessian = (torch.block_diag(*[(a * p[:, c:c + 1]).T @ a for c in range(classes)])
                   - weighted.T @ weighted) / n
        hessian += torch.diag(penalty * mask.reshape(-1))
        # softmax scores are unchanged by adding one vector to every class: the tiny ridge fixes that direction
        hessian += 1e-12 * torch.eye(len(hessian), dtype=torch.float64)
        theta = theta - torch.linalg.solve(hessian, g.reshape(-1)).view(classes, d + 1)
    _, g = gradient(theta)
    loss = float(nn.functional.cross_entropy(a @ theta.T, labels))
    return LinearReadout(theta[:, :-1].clone(), theta[:, -1].clone(), loss, float(g.norm()))
