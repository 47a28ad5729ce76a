"""Statistics of hidden states: a PCA, how tightly classes cluster, how affine a map is, a linear readout."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .checks import check_int, check_number, check_states, check_states_and_labels, describe
from .errors import InputError

__all__ = ["PCA", "class_distances", "class_spread", "affine_fit_r2", "LinearReadout", "fit_linear_readout",
           "confusion_matrix"]


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
        """Project ``points`` onto the fitted components.

        Args:
            points: a tensor shaped (..., features), with the fitted points' number of features.

        Returns:
            The projections, float64, shaped (..., components).

        Raises:
            InputError: ``points`` is not a tensor with as many features as the fitted points.
        """
        if not isinstance(points, torch.Tensor) or points.ndim < 1 or points.shape[-1] != len(self.mean):
            raise InputError(f"PCA was fitted on points with {len(self.mean)} features; got {describe(points)}: "
                             f"pass a tensor shaped (..., {len(self.mean)})")
        return (points.double() - self.mean) @ self.components.T


def class_distances(states: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """The two distances behind :func:`class_spread`: ``(within, overall)``.

    ``within``: the mean distance of a state from its class's centre, averaged over the classes present;
    ``overall``: the mean distance of a state from the centre of all states. Both in the states' own units.

    Args:
        states: a 2-D (image x state) tensor, e.g. ``trajectories.states[-1]``.
        labels: one integer class label per row of ``states``.

    Returns:
        ``(within, overall)``, two floats.

    Raises:
        InputError: ``states`` is not 2-D, or ``labels`` is not one integer label per row.
    """
    check_states_and_labels(states, labels)
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

    Args:
        states: a 2-D (image x state) tensor.
        labels: one integer class label per row of ``states``.

    Returns:
        ``within / overall``, a float.

    Raises:
        InputError: ``states`` is not 2-D, or ``labels`` is not one integer label per row.
    """
    within, overall = class_distances(states, labels)
    if overall == 0:
        raise InputError("the states are all the same point, so there is no spread to compare: pass states that differ")
    return within / overall


def affine_fit_r2(inputs: torch.Tensor, outputs: torch.Tensor) -> float:
    """How nearly ``outputs`` is an affine function of ``inputs`` (rows paired): R^2 of the least-squares fit.

    Fits ``outputs ~ inputs @ A.T + b`` in float64 and returns 1 - (residual sum of squares) / (sum of
    squares of ``outputs`` about their mean, over all columns): 1 for an exactly affine map.

    Args:
        inputs: a 2-D (point x feature) tensor.
        outputs: a 2-D (point x feature) tensor with as many rows.

    Returns:
        R^2, a float of at most 1.

    Raises:
        InputError: tensors that are not 2-D or differ in rows, no more rows than features + 1, or outputs
            that are all the same point.
    """
    for name, x in (("inputs", inputs), ("outputs", outputs)):
        if not isinstance(x, torch.Tensor) or x.ndim != 2:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"{name} must be a 2-D tensor (point x feature), e.g. trajectories.states[0]; got {got}")
    if len(inputs) != len(outputs):
        raise InputError(f"inputs and outputs must pair up row by row; got {len(inputs)} and {len(outputs)} rows")
    check_states("inputs", inputs)
    check_states("outputs", outputs)
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


@dataclass
class LinearReadout:
    """A linear decoder (scores = states @ weight.T + bias) fitted by :func:`fit_linear_readout`."""

    weight: torch.Tensor
    bias: torch.Tensor
    loss: float  # training cross-entropy, without the penalty
    gradient_norm: float  # of the penalised loss at the returned weights: ~0 at the optimum

    def __call__(self, states: torch.Tensor) -> torch.Tensor:
        """Class scores of ``states``.

        Args:
            states: a 2-D (image x state) tensor with the fitted number of columns.

        Returns:
            The scores, float64 on the CPU, shaped (images, classes).

        Raises:
            InputError: ``states`` is not a 2-D tensor of finite numbers with the fitted number of columns.
        """
        check_states("states", states, self.weight.shape[1])
        return states.double().cpu() @ self.weight.T + self.bias

    def accuracy(self, states: torch.Tensor, labels: torch.Tensor) -> float:
        """Percentage of ``states`` whose highest score is at their label.

        Args:
            states: a 2-D (image x state) tensor.
            labels: one integer class label per row of ``states``.

        Returns:
            The accuracy in %.

        Raises:
            InputError: ``states`` is not 2-D, or ``labels`` is not one integer label per row.
        """
        check_states_and_labels(states, labels)
        return 100 * float((self(states).argmax(dim=1) == labels.cpu()).double().mean())


def fit_linear_readout(states: torch.Tensor, labels: torch.Tensor, classes: int = 10, penalty: float = 1e-3,
                       iterations: int = 15) -> LinearReadout:
    """The best linear decoder for fixed ``states``: minimises cross-entropy + ``penalty / 2 * ||weight||^2``.

    A convex problem (multinomial logistic regression), solved in float64 by a fixed number of full
    Newton steps from zero weights: no line search or stopping test, so nearby inputs give nearby
    weights. The small penalty keeps the optimum finite when some classes can be separated exactly.

    Args:
        states: a 2-D (image x state) tensor, e.g. ``trajectories.states[-1]``.
        labels: one integer class label per row, from 0 to ``classes - 1``.
        classes: the number of classes, at least 2.
        penalty: the weight of the L2 penalty on ``weight`` (the bias is not penalised), a positive number.
        iterations: the number of Newton steps, at least 1.

    Returns:
        The readout, with ``weight`` (classes, states' columns) and ``bias`` (classes,), float64 on the CPU, with
        the training ``loss`` and the final ``gradient_norm``.

    Raises:
        InputError: bad states or labels, labels outside ``0 .. classes - 1``, or a bad count or penalty.
    """
    check_states_and_labels(states, labels)
    classes = check_int("classes", classes, minimum=2)
    penalty = check_number("penalty", penalty, example="1e-3")
    iterations = check_int("iterations", iterations, minimum=1)
    labels = labels.cpu().long()
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


def confusion_matrix(truth: torch.Tensor, predicted: torch.Tensor, classes: int = 10) -> torch.Tensor:
    """Counts[i, j] = number of images of class i predicted as class j.

    Args:
        truth: the true labels, a 1-D integer tensor.
        predicted: the predicted labels, a 1-D integer tensor of the same length.
        classes: the number of classes.

    Returns:
        An int64 tensor shaped (classes, classes).

    Raises:
        InputError: labels that are not 1-D integer tensors of one length, or lie outside ``0 .. classes - 1``.
    """
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
    index = truth.long() * classes + predicted.long()  # in int64: small integer dtypes would wrap
    return torch.bincount(index, minlength=classes * classes).reshape(classes, classes)
