import math

import pytest
import torch
from problems import Linear, linear_problem
from torch import nn

from nodeutils.errors import InputError, NonFiniteStateError
from nodeutils.models import create_model
from nodeutils.sensitivity import (
    VJP_CHOICES,
    AutogradAdjoint,
    BacksolveAdjoint,
    GaussAdjoint,
    InterpolatingAdjoint,
    QuadratureAdjoint,
    SolveStats,
    flat_grad,
    gauss_legendre,
    kronrod15_rule,
    make_sensealg,
    odeint,
    relative_error,
)

CONTINUOUS = [BacksolveAdjoint(), BacksolveAdjoint(seminorm=True),
              InterpolatingAdjoint(checkpointing=True), InterpolatingAdjoint(checkpointing=True, checkpoints=[0.4]),
              GaussAdjoint(checkpointing=True, checkpoints=[0.3, 0.9])]
LAMBDA_ADJOINTS = (InterpolatingAdjoint, QuadratureAdjoint, GaussAdjoint)
CONTINUOUS += [cls(autojacvec=v) for cls in LAMBDA_ADJOINTS for v in VJP_CHOICES]
ALL = [AutogradAdjoint()] + CONTINUOUS


@pytest.mark.parametrize("sensealg", ALL, ids=repr)
def test_gradient_of_linear_ode_matches_matrix_exponential(sensealg):
    a, u0, w = linear_problem()
    horizon = 1.5
    a_ref, u_ref = a.clone().requires_grad_(), u0.clone().requires_grad_()
    exact = (w * (u_ref @ torch.linalg.matrix_exp(a_ref * horizon).T)).sum()
    grad_a, grad_u = torch.autograd.grad(exact, (a_ref, u_ref))

    func, y0 = Linear(a), u0.clone().requires_grad_()
    ys = odeint(func, y0, torch.tensor([0.0, horizon], dtype=torch.float64), rtol=1e-10, atol=1e-10,
                sensealg=sensealg)
    (w * ys[-1]).sum().backward()
    assert relative_error(func.a.grad, grad_a) < 1e-6
    assert relative_error(y0.grad, grad_u) < 1e-6


def _tutorial_gradient(sensealg, x, tol=1e-3, dtype=torch.float32):
    model = create_model(sensealg=sensealg, rtol=tol, atol=tol).to(dtype)
    loss = nn.functional.cross_entropy(model(x.to(dtype)), torch.arange(len(x)) % 10)
    loss.backward()
    return flat_grad([p.grad for p in model.parameters()], list(model.parameters()))


@pytest.fixture(scope="module")
def tutorial_reference():
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    return x, _tutorial_gradient(AutogradAdjoint(), x)


@pytest.mark.parametrize("sensealg", CONTINUOUS, ids=repr)
def test_tutorial_model_gradient_agrees_with_discrete_backprop(sensealg, tutorial_reference):
    # Untrained tutorial model, one batch of 16 images. At the tutorial's tolerances the continuous adjoints
    # differ from the discrete gradient by the truncation error of the backward solve, whose absolute
    # tolerance 1e-3 is large beside the parameter gradients: measured 2.3e-2 to 3.2e-2 (max |dg| / max |g|).
    x, reference = tutorial_reference
    gradient = _tutorial_gradient(sensealg, x)
    error = float((gradient - reference).abs().max() / reference.abs().max())
    assert error <= 5e-2, f"max |dg| / max |g| = {error:.2e} at rtol = atol = 1e-3"


@pytest.mark.parametrize("sensealg", [BacksolveAdjoint(), InterpolatingAdjoint(), QuadratureAdjoint(),
                                      GaussAdjoint()], ids=repr)
def test_tutorial_model_gradient_converges_to_discrete_backprop(sensealg):
    # The same comparison at rtol = atol = 1e-8 in float64: both gradients approach the exact one, so their
    # gap falls with the tolerance (measured 2.3e-8 to 6.3e-8).
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    reference = _tutorial_gradient(AutogradAdjoint(), x, 1e-8, torch.float64)
    error = float((_tutorial_gradient(sensealg, x, 1e-8, torch.float64) - reference).abs().max()
                  / reference.abs().max())
    assert error <= 5e-7, f"max |dg| / max |g| = {error:.2e} at rtol = atol = 1e-8 (float64)"


@pytest.mark.parametrize("sensealg", ALL, ids=repr)
def test_gradcheck_on_a_small_nonlinear_problem(sensealg):
    def f(t, u, p):
        return torch.tanh(u @ p["w"].T + p["b"]) * (1 + 0.5 * torch.sin(t))

    g = torch.Generator().manual_seed(2)
    w = (0.5 * torch.randn(2, 2, generator=g, dtype=torch.float64)).requires_grad_()
    b = (0.1 * torch.randn(2, generator=g, dtype=torch.float64)).requires_grad_()
    u0 = torch.randn(1, 2, generator=g, dtype=torch.float64).requires_grad_()
    t = torch.tensor([0.0, 0.6, 1.2], dtype=torch.float64)

    def solve(u0, w, b):
        return odeint(f, u0, t, rtol=1e-11, atol=1e-11, sensealg=sensealg, params={"w": w, "b": b})

    assert torch.autograd.gradcheck(solve, (u0, w, b), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("span", [(0.0, 2.5), (2.5, 0.0), (0.0, 0.7, 1.9, 2.5)], ids=str)
@pytest.mark.parametrize("sensealg", ALL, ids=repr)
def test_time_dependent_dynamics_and_other_spans(sensealg, span):
    def f(t, u, p):
        return p[0] * torch.cos(3 * t) * u - p[1] * u**3

    p = [torch.tensor(0.8, dtype=torch.float64), torch.tensor(0.2, dtype=torch.float64)]
    u0 = torch.tensor([0.5, -1.0], dtype=torch.float64)
    t = torch.tensor(span, dtype=torch.float64)
    grads = []
    for alg in (AutogradAdjoint(), sensealg):
        ps, y0 = [x.clone().requires_grad_() for x in p], u0.clone().requires_grad_()
        ys = odeint(f, y0, t, rtol=1e-10, atol=1e-10, sensealg=alg, params=ps)
        (ys[1:] ** 2).sum().backward()
        grads.append(torch.cat([y0.grad, ps[0].grad.reshape(1), ps[1].grad.reshape(1)]))
    assert relative_error(grads[1], grads[0]) < 1e-6


def test_function_evaluations_are_counted_forward_and_backward():
    a, u0, w = linear_problem()
    for alg in (AutogradAdjoint(), InterpolatingAdjoint(), GaussAdjoint(), BacksolveAdjoint()):
        stats = SolveStats()
        ys = odeint(Linear(a), u0, torch.tensor([0.0, 1.0], dtype=torch.float64), rtol=1e-6, atol=1e-6,
                    sensealg=alg, stats=stats)
        assert stats.nfe_forward > 0 and stats.nfe_backward == 0
        ys.sum().backward()
        if isinstance(alg, AutogradAdjoint):
            assert stats.nfe_backward == 0  # the graph is replayed; f is not evaluated again
        else:
            assert stats.nfe_backward > 0


def test_the_backward_state_size_is_lambda_plus_the_parameter_integral_only_for_the_interpolating_adjoint():
    a, u0, _ = linear_problem()
    f = Linear(a)
    n_params = sum(p.numel() for p in f.parameters())
    sizes = {}
    for alg in (AutogradAdjoint(), InterpolatingAdjoint(), GaussAdjoint(), QuadratureAdjoint()):
        stats = SolveStats()
        odeint(f, u0, torch.tensor([0.0, 1.0], dtype=torch.float64), rtol=1e-6, atol=1e-6, sensealg=alg,
               stats=stats).sum().backward()
        sizes[type(alg).__name__] = stats.backward_state_size
    assert sizes == {"AutogradAdjoint": 0, "InterpolatingAdjoint": u0.numel() + n_params,
                     "GaussAdjoint": u0.numel(), "QuadratureAdjoint": u0.numel()}


def test_checkpointing_stores_less_than_the_dense_solution():
    a, u0, _ = linear_problem()
    stored = {}
    for cls in (InterpolatingAdjoint, GaussAdjoint):
        for checkpointing in (False, True):
            stats = SolveStats()
            odeint(Linear(a), u0, torch.tensor([0.0, 4.0], dtype=torch.float64), rtol=1e-8, atol=1e-8,
                   sensealg=cls(checkpointing=checkpointing), stats=stats).sum().backward()
            stored[checkpointing] = stats.stored_bytes
        assert stored[True] < stored[False] / 10


def test_quadrature_rules_integrate_polynomials_exactly():
    nodes, wk, wg = kronrod15_rule()
    for degree in range(0, 22):
        exact = 0.0 if degree % 2 else 2.0 / (degree + 1)
        assert sum(w * x**degree for w, x in zip(wk, nodes)) == pytest.approx(exact, abs=1e-13)
        if degree <= 13:
            assert sum(w * x**degree for w, x in zip(wg, nodes)) == pytest.approx(exact, abs=1e-13)
    x, w = gauss_legendre(4)
    assert sum(wi * xi**7 for wi, xi in zip(w, x)) == pytest.approx(1 / 8)


def test_unknown_algorithm_and_vjp_names_list_the_choices():
    with pytest.raises(InputError, match="unknown sensitivity algorithm 'forward'.*gauss"):
        make_sensealg("forward")
    with pytest.raises(InputError, match="unknown autojacvec 'enzyme'.*autograd, func, jacobian"):
        GaussAdjoint(autojacvec="enzyme")
    with pytest.raises(InputError, match="unknown autojacvec"):
        make_sensealg("interpolating", vjp="zygote")


def test_adjoint_needs_the_parameters_of_a_plain_callable():
    w = torch.randn(2, 2, requires_grad=True)
    with pytest.raises(InputError, match="needs to know the parameters of f.*params="):
        odeint(lambda t, u: u @ w, torch.ones(2), [0.0, 1.0], sensealg=GaussAdjoint())
    odeint(lambda t, u: u @ w, torch.ones(2), [0.0, 1.0], sensealg=AutogradAdjoint()).sum().backward()
    assert w.grad is not None  # plain backprop sees closed-over tensors


def test_parameters_must_require_grad():
    with pytest.raises(InputError, match="does not require grad.*requires_grad_"):
        odeint(lambda t, u, p: u * p, torch.ones(2), [0.0, 1.0], params=torch.ones(2),
               sensealg=InterpolatingAdjoint())


def test_checkpoint_settings_must_be_consistent():
    with pytest.raises(InputError, match="checkpoints were given but checkpointing=False"):
        InterpolatingAdjoint(checkpoints=[0.5])
    with pytest.raises(InputError, match="outside the open time span"):
        odeint(Linear(torch.eye(2)), torch.ones(2), [0.0, 1.0],
               sensealg=InterpolatingAdjoint(checkpointing=True, checkpoints=[1.5])).sum().backward()


def test_adjoints_need_a_solver_with_dense_output():
    with pytest.raises(InputError, match="adaptive Runge-Kutta solver"):
        odeint(Linear(torch.eye(2)), torch.ones(2), [0.0, 1.0], method="rk4", sensealg=GaussAdjoint())


def test_nan_in_the_backward_solve_names_the_time():
    x = torch.rand(4, 1, 28, 28)
    model = create_model(sensealg=InterpolatingAdjoint())
    loss = model(x).sum() * torch.nan
    with pytest.raises(NonFiniteStateError, match=r"at t=1 during the backward \(adjoint\) solve"):
        loss.backward()


def test_gradient_with_respect_to_time_is_refused():
    with pytest.raises(InputError, match="time points"):
        odeint(Linear(torch.eye(2)), torch.ones(2), torch.tensor([0.0, 1.0], requires_grad=True))


def test_backward_solves_never_read_the_forward_solution_outside_its_span(monkeypatch):
    """Every stage of every backward step lies inside the solved span, so no dense value is extrapolated."""
    from nodeutils import solvers

    seen = []
    original = solvers.DenseSolution.__call__

    def recording(self, t):
        seen.append((float(t), self.span))
        return original(self, t)

    monkeypatch.setattr(solvers.DenseSolution, "__call__", recording)
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    algorithms = (InterpolatingAdjoint(), GaussAdjoint(), QuadratureAdjoint(), InterpolatingAdjoint(checkpointing=True))
    for sensealg in algorithms:
        seen.clear()
        _tutorial_gradient(sensealg, x)
        assert seen, sensealg
        assert all(min(a, b) <= t <= max(a, b) for t, (a, b) in seen), sensealg
        assert abs(min(t for t, _ in seen)) < 1e-12  # the last backward step lands on t0 (to rounding)


def test_dense_solution_refuses_to_extrapolate():
    from nodeutils.solvers import integrate

    _, dense = integrate(lambda t, u: -u, torch.ones(2, dtype=torch.float64),
                         torch.tensor([0.0, 1.0], dtype=torch.float64), rtol=1e-6, atol=1e-6, dense=True)
    lo, hi = dense.span
    assert lo == 0.0 and hi >= 1.0
    assert torch.allclose(dense(0.5), torch.full((2,), math.exp(-0.5), dtype=torch.float64), atol=1e-6)
    with pytest.raises(InputError, match="cannot be evaluated at t=-0.1"):
        dense(-0.1)
    with pytest.raises(InputError, match="extrapolating"):
        dense(hi + 0.5)


@pytest.mark.parametrize("span", [(0.0, 1.0), (1.0, 0.0), (0.0, 0.3, 1.0)])
def test_land_on_times_ends_every_step_on_the_output_times(span):
    from nodeutils.solvers import integrate

    t = torch.tensor(span, dtype=torch.float64)
    steps = []
    integrate(lambda t_, u: -u, torch.ones(1, dtype=torch.float64), t, rtol=1e-3, atol=1e-3,
              on_step=lambda a, b, _: steps.append((a, b)), land_on_times=True)
    ends = [b for _, b in steps]
    assert ends[-1] == span[-1]
    assert all(s in ends for s in span[1:])
    direction = 1.0 if span[-1] > span[0] else -1.0
    assert all((b - span[-1]) * direction <= 0 for b in ends)
