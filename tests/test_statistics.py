"""nodeutils.statistics: PCA, class distances and spread, affine fits and linear readouts of hidden states."""

import pytest
import torch
from helpers import assert_refused
from torch import nn

from nodeutils.errors import InputError
from nodeutils.statistics import (
    PCA,
    affine_fit_r2,
    class_distances,
    class_spread,
    confusion_matrix,
    fit_linear_readout,
)


def test_pca_projects_onto_orthonormal_directions():
    points = torch.randn(50, 5, dtype=torch.float64) * torch.tensor([5.0, 1, 1, 1, 0.1], dtype=torch.float64)
    pca = PCA(points)
    assert torch.allclose(pca.components @ pca.components.T, torch.eye(2, dtype=torch.float64), atol=1e-12)
    assert pca.explained[0] > pca.explained[1] > 0 and pca(points).shape == (50, 2)


def test_pca_of_points_spread_along_one_line_keeps_one_direction():
    points = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    pca = PCA(points)
    assert pca.explained[0] == pytest.approx(1.0) and pca.explained[1] == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# Class spread
# ---------------------------------------------------------------------------------------------------------------
# Two classes on a line and a corner: class 0 at distance 1 from its centre (1, 0), class 1 at distance 2 from
# (10, 2); the centre of all four is (5.5, 1).
STATES = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [10.0, 4.0]])
STATE_LABELS = torch.tensor([0, 0, 1, 1])
WITHIN = (1.0 + 2.0) / 2
OVERALL = (31.25**0.5 + 13.25**0.5 + 21.25**0.5 + 29.25**0.5) / 4  # 5.5^2 + 1, 3.5^2 + 1, 4.5^2 + 1, 4.5^2 + 3^2


def test_class_spread_is_zero_for_point_classes_and_scale_free():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    centres = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    assert class_spread(centres[labels], labels) == 0.0
    torch.manual_seed(0)
    states = (centres[labels] + 0.1 * torch.randn(6, 2)).double()
    assert class_spread(states, labels) == pytest.approx(class_spread(7.0 * states + 2.0, labels), rel=1e-9)
    # by hand: mean distance to the class centre over mean distance to the overall centre
    assert class_spread(STATES, STATE_LABELS) == pytest.approx(WITHIN / OVERALL, rel=1e-12)
    assert class_spread(STATES, STATE_LABELS) == pytest.approx(0.311715, abs=1e-6)


def test_class_distances_are_the_parts_of_the_spread():
    within, overall = class_distances(STATES, STATE_LABELS)
    assert within == pytest.approx(WITHIN)  # class 0: distance 1 each, class 1: distance 2 each
    assert overall == pytest.approx(OVERALL, rel=1e-12) and overall == pytest.approx(4.812081, abs=1e-6)
    assert class_distances(3 * STATES, STATE_LABELS) == pytest.approx((3 * within, 3 * overall))


# ---------------------------------------------------------------------------------------------------------------
# Affine fits and linear readouts
# ---------------------------------------------------------------------------------------------------------------
def test_affine_fit_r2_is_one_for_an_affine_map_and_small_for_an_unrelated_one():
    torch.manual_seed(0)
    x = torch.randn(300, 4)
    a, b = torch.randn(3, 4), torch.randn(3)
    assert affine_fit_r2(x, x @ a.T + b) == pytest.approx(1.0, abs=1e-6)
    assert affine_fit_r2(x, torch.randn(300, 3)) < 0.05


def test_affine_fit_r2_matches_a_hand_computed_fit():
    # y1 = x + e with e = (1, -2, 0, 2, -1) orthogonal to 1 and to x: the fit is y1 ~ x, its residual e
    # (sum of squares 10) against a total of 20 about y1's mean 0; y2 = 2x + 3 is fitted exactly (total 40).
    x = torch.tensor([[-2.0], [-1.0], [0.0], [1.0], [2.0]])
    y1 = torch.tensor([-1.0, -3.0, 0.0, 3.0, 1.0])
    y2 = 2 * x[:, 0] + 3
    assert affine_fit_r2(x, y1[:, None]) == pytest.approx(1 - 10 / 20, rel=1e-12)
    assert affine_fit_r2(x, torch.stack([y1, y2], dim=1)) == pytest.approx(1 - 10 / 60, rel=1e-12)  # pooled columns


def test_linear_readout_reaches_the_penalised_optimum():
    torch.manual_seed(0)
    states, labels = torch.randn(200, 5), torch.randint(0, 3, (200,))
    readout = fit_linear_readout(states, labels, classes=3, penalty=1e-2)
    assert readout.gradient_norm < 1e-10
    # the same objective minimised by LBFGS from another start lands on the same weights
    layer = nn.Linear(5, 3).double()
    optimiser = torch.optim.LBFGS(layer.parameters(), max_iter=500, tolerance_grad=1e-12, tolerance_change=0,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(layer(states.double()), labels) + 0.5e-2 * (layer.weight ** 2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    assert torch.allclose(readout.weight, layer.weight.detach(), atol=1e-6)
    # the bias is fixed only up to a common shift of every class (softmax ignores it)
    shift = readout.bias - layer.bias.detach()
    assert torch.allclose(shift, shift.mean().expand(3), atol=1e-6)
    with torch.no_grad():  # the reported loss is the cross-entropy without the penalty, at LBFGS's optimum too
        assert readout.loss == pytest.approx(float(nn.functional.cross_entropy(layer(states.double()), labels)),
                                             rel=1e-9)


def test_linear_readout_separates_separable_classes():
    torch.manual_seed(0)
    labels = torch.arange(4).repeat(25)
    states = 5.0 * nn.functional.one_hot(labels, 4).float() + 0.3 * torch.randn(100, 4)
    readout = fit_linear_readout(states, labels, classes=4)
    assert readout.accuracy(states, labels) == 100.0 and readout.gradient_norm < 1e-10


# ---------------------------------------------------------------------------------------------------------------
# Bad inputs: refused with the argument and the fix
# ---------------------------------------------------------------------------------------------------------------
READOUT_STATES, READOUT_LABELS = torch.zeros(6, 2), torch.tensor([0, 1, 2, 0, 1, 2])

BAD_INPUTS = [
    pytest.param(lambda: confusion_matrix(torch.arange(3), torch.rand(3, 10)), InputError,
                 ("predicted must be a 1-D tensor of integer labels", "argmax"), id="confusion_matrix of scores"),
    pytest.param(lambda: class_spread(torch.zeros(4, 3), torch.tensor([0, 0, 1, 1])), InputError,
                 ("all the same point",), id="class_spread of identical states"),
    pytest.param(lambda: class_distances(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)), InputError,
                 ("has no rows",), id="class_distances of no states"),
    pytest.param(lambda: fit_linear_readout(torch.full((30, 3), float("nan")), torch.arange(30) % 3), InputError,
                 ("states contains NaN or infinite values",), id="readout of NaN states"),
    pytest.param(lambda: affine_fit_r2(torch.full((30, 3), float("nan")), torch.zeros(30, 3)), InputError,
                 ("inputs contains NaN or infinite values",), id="affine fit of NaN inputs"),
    pytest.param(lambda: fit_linear_readout(torch.randn(30, 3), torch.arange(30) % 3)(torch.zeros(2, 4)),
                 InputError, ("must have 3 columns",), id="readout applied to other columns"),
    pytest.param(lambda: PCA(torch.tensor([[1.0, float("nan")], [2.0, 3.0], [4.0, 5.0]])), InputError,
                 ("NaN", "1 of 3 points", "torch.isfinite"), id="PCA of points with NaN"),
    pytest.param(lambda: PCA(torch.tensor([[1.0, float("inf")], [2.0, 3.0]])), InputError, ("infinite",),
                 id="PCA of points with inf"),
    pytest.param(lambda: PCA(torch.full((5, 3), 0.1)), InputError, ("all identical", "points that differ"),
                 id="PCA of identical points"),
    pytest.param(lambda: PCA(torch.rand(5, 3))(torch.rand(4, 2)), InputError, ("3 features", "(..., 3)"),
                 id="PCA applied to other features"),
    pytest.param(lambda: PCA(torch.rand(5, 3), 4), InputError, ("components must be an integer from 1 to 3",),
                 id="PCA with more components than features"),
    pytest.param(lambda: class_spread(torch.zeros(4, 2), torch.zeros(4)), InputError, ("integer class labels",),
                 id="class_spread float labels"),
    pytest.param(lambda: class_spread(torch.zeros(4), torch.zeros(4, dtype=torch.long)), InputError, ("2-D tensor",),
                 id="class_spread 1-D states"),
    pytest.param(lambda: class_spread(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long)), InputError,
                 ("one label per image",), id="class_spread label count"),
    pytest.param(lambda: affine_fit_r2(torch.zeros(10), torch.zeros(10, 2)), InputError, ("2-D tensor",),
                 id="affine_fit_r2 1-D inputs"),
    pytest.param(lambda: affine_fit_r2(torch.zeros(10, 2), torch.zeros(9, 2)), InputError, ("row by row",),
                 id="affine_fit_r2 unpaired rows"),
    pytest.param(lambda: affine_fit_r2(torch.randn(3, 2), torch.randn(3, 2)), InputError, ("more than 3 points",),
                 id="affine_fit_r2 too few points"),
    pytest.param(lambda: affine_fit_r2(torch.randn(10, 2), torch.ones(10, 2)), InputError, ("no variance",),
                 id="affine_fit_r2 constant outputs"),
    pytest.param(lambda: fit_linear_readout(READOUT_STATES, READOUT_LABELS, classes=2), InputError, ("outside 0..1",),
                 id="fit_linear_readout too few classes"),
    pytest.param(lambda: fit_linear_readout(READOUT_STATES, READOUT_LABELS, penalty=-1.0), InputError, ("penalty",),
                 id="fit_linear_readout negative penalty"),
    pytest.param(lambda: fit_linear_readout(READOUT_STATES, READOUT_LABELS, iterations=0), InputError,
                 ("iterations",), id="fit_linear_readout no iterations"),
]


@pytest.mark.parametrize("call, error, fragments", BAD_INPUTS)
def test_bad_input_is_refused_with_the_argument_and_the_fix(call, error, fragments):
    assert_refused(call, error, fragments)


def test_confusion_matrix_counts_pairs():
    truth, predicted = torch.tensor([0, 0, 1, 2, 2]), torch.tensor([0, 1, 1, 2, 0])
    matrix = confusion_matrix(truth, predicted)
    assert matrix[0, 0] == 1 and matrix[0, 1] == 1 and matrix[2, 0] == 1 and matrix.sum() == 5


def test_confusion_matrix_counts_small_integer_labels_without_wrapping():
    labels = torch.tensor([16, 16, 3], dtype=torch.uint8)  # 16 * 17 + 16 does not fit in uint8
    matrix = confusion_matrix(labels, labels, classes=17)
    assert matrix[16, 16] == 2 and matrix[3, 3] == 1 and int(matrix.sum()) == 3


def test_readout_takes_int32_labels_as_int64_ones():
    states = torch.randn(60, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    labels = torch.arange(60) % 3
    assert torch.equal(fit_linear_readout(states, labels.int()).weight, fit_linear_readout(states, labels).weight)
