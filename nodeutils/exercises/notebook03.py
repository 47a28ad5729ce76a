"""Exercises of notebook 03 (gradients through the solver).

In the notebook::

    from nodeutils.exercises import ____, notebook03 as exercises

    def euler_backprop(f, params, states, h, lam):
        ...
    exercises.euler_backprop.check(euler_backprop)

1. ``euler_backprop``: the backward recursion of Euler's method (discrete backprop written out by hand).
2. ``augmented_rhs``: backsolve's right-hand side d/dt [u, lambda, mu] for a loss with a running term.
3. ``seminorm``: the error norm of backsolve's augmented state without mu.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torchdiffeq
from torch import nn

from . import Correct, Exercise, NotYet, all_close, as_number, same_values, shape_problem, tensors_like

__all__ = ["euler_backprop", "augmented_rhs", "seminorm"]

_F64 = torch.float64


# --------------------------------------------------------------------------------------------------------------
# Small seeded problems
# --------------------------------------------------------------------------------------------------------------
class _Layer(nn.Module):
    """f(u) = tanh(u W^T + b) on ``dim`` features, seeded; called as f(u) or f(t, u)."""

    def __init__(self, dim: int, seed: int, scale: float = 0.8) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(scale * torch.randn(dim, dim, generator=generator, dtype=_F64) / dim**0.5)
        self.bias = nn.Parameter(0.3 * torch.randn(dim, generator=generator, dtype=_F64))

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        u = args[-1]
        return torch.tanh(u @ self.weight.T + self.bias)


class _Contracting(nn.Module):
    """The notebook's contracting system: du/dt = -diag(rates) u + tanh(W u + b), rates from 0.1 to 4."""

    def __init__(self, dim: int = 8, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("rates", torch.logspace(-1, float(torch.log10(torch.tensor(4.0))), dim, dtype=_F64))
        self.weight = nn.Parameter(0.5 * torch.randn(dim, dim, generator=generator, dtype=_F64) / dim**0.5)
        self.bias = nn.Parameter(0.1 * torch.randn(dim, generator=generator, dtype=_F64))

    def forward(self, t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return -self.rates * u + torch.tanh(u @ self.weight.T + self.bias)


def _states(seed: int, batch: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded initial states and loss weights w (L = sum(w * u(T)), so dL/du(T) = w)."""
    generator = torch.Generator().manual_seed(1000 + seed)
    return (torch.randn(batch, dim, generator=generator, dtype=_F64),
            torch.randn(batch, dim, generator=generator, dtype=_F64))


def _products(f: Callable, params: Sequence[torch.Tensor], u: torch.Tensor, lam: torch.Tensor,
              *args: Any) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """f(*args, u), lam^T df/du and lam^T df/dtheta by one reverse pass (the reference VJP)."""
    with torch.enable_grad():
        u = u.detach().requires_grad_()
        du = f(*args, u)
        grads = torch.autograd.grad(du, (u, *params), lam, allow_unused=True)
    return du.detach(), grads[0], [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads[1:])]


def _requires_grad_error(error: RuntimeError) -> NotYet | None:
    if "does not require grad" in str(error):
        return NotYet("torch.autograd.grad needs a graph from u to f's output: inside torch.enable_grad(), make "
                      "u a leaf that requires grad (u = u.detach().requires_grad_()) before calling f.",
                      error=error)
    return None


# --------------------------------------------------------------------------------------------------------------
# Exercise 1: backprop through Euler's steps, by hand
# --------------------------------------------------------------------------------------------------------------
def _euler_states(f: Callable, u0: torch.Tensor, h: float, n_steps: int) -> list[torch.Tensor]:
    states = [u0]
    with torch.no_grad():
        for _ in range(n_steps):
            states.append(states[-1] + h * f(states[-1]))
    return states


def _euler_variant(f: Callable, params: list, states: list, h: float, lam: torch.Tensor, *,
                   mu_with_new_lam: bool = False, at_next: bool = False, lam_h: float | None = None,
                   mu_h: float | None = None, sign: float = 1.0, forward_order: bool = False
                   ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The recursion, or one of its typical mistakes (the keyword arguments), for recognising answers."""
    lam_h = h if lam_h is None else lam_h
    mu_h = h if mu_h is None else mu_h
    mu = [torch.zeros_like(p) for p in params]
    steps = range(len(states) - 1)
    for k in (steps if forward_order else reversed(steps)):
        _, lam_fu, lam_fp = _products(f, params, states[k + 1] if at_next else states[k], lam)
        new = lam + sign * lam_h * lam_fu
        if mu_with_new_lam:
            _, _, lam_fp = _products(f, params, states[k + 1] if at_next else states[k], new)
        mu = [m + sign * mu_h * g for m, g in zip(mu, lam_fp)]
        lam = new
    return lam, mu


def _judge_euler_backprop(answer: Callable) -> Correct | NotYet:
    for seed, n_steps, h in ((1, 6, 0.2), (2, 9, 0.15)):
        f = _Layer(3, seed)
        params = list(f.parameters())
        u0, w = _states(seed, 4, 3)
        states = _euler_states(f, u0, h, n_steps)
        # the reference: loss.backward() through the same steps
        start = u0.clone().requires_grad_()
        u = start
        for _ in range(n_steps):
            u = u + h * f(u)
        grads = torch.autograd.grad((w * u).sum(), (start, *params))
        lam_ref, mu_ref = grads[0], list(grads[1:])
        try:
            result = answer(f, params, [s.clone() for s in states], h, w.clone())
        except RuntimeError as error:
            if (hint := _requires_grad_error(error)) is not None:
                return hint
            raise
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            return NotYet("euler_backprop should return two things, lam and mu: end with `return lam, mu`.")
        lam, mu = result
        if (problem := shape_problem(lam, lam_ref, what="the lam you returned")) is not None:
            return problem
        mu = tensors_like(mu, params, "the mu you returned")
        if isinstance(mu, NotYet):
            return mu
        lam_ok, mu_ok = all_close([lam], [lam_ref]), all_close(mu, mu_ref)
        if lam_ok and mu_ok:
            continue
        if same_values(lam, w):
            return NotYet("The lam you returned is lambda_N = dL/du_N itself: nothing updated it. In each step "
                          "from the last to the first, lam <- lam + h * (lam^T df/du at u_k).")

        mistakes = (
            (dict(mu_with_new_lam=True), "lam is right, but mu used lambda_k, the value after the update. The "
             "parameter gradient of step k pairs lambda_{k+1} (the lam before this step's update) with "
             "df/dtheta at u_k: compute both products from the same lam, then update."),
            (dict(at_next=True), "Your products are taken at u_{k+1}. Step k maps u_k to u_{k+1}, so its Jacobians "
             "are those of f at u_k, the state where the step starts: states[k], not states[k + 1]."),
            (dict(lam_h=1.0), "The lam update is missing the step size: d u_{k+1}/d u_k = I + h df/du, so lam "
             "gains h * (lam^T df/du), not lam^T df/du."),
            (dict(mu_h=1.0), "mu is missing the step size: theta enters step k as h * f(u_k, theta), so that step "
             "adds h * (lam^T df/dtheta)."),
            (dict(sign=-1.0), "Your signs are flipped: going back through u_{k+1} = u_k + h f(u_k) adds "
             "h * (lam^T df/du) to lam (and h * lam^T df/dtheta to mu); the minus sign appears only in the "
             "continuous-time ODE, dlambda/dt = -lambda^T df/du."),
            (dict(forward_order=True), "You walked the steps from the first to the last. Backpropagation starts "
             "from lambda_N at the end: loop over k = N-1, ..., 0 (reversed(range(len(states) - 1)))."),
        )
        for mistake, hint in mistakes:
            lam_wrong, mu_wrong = _euler_variant(f, params, states, h, w, **mistake)
            if all_close([lam], [lam_wrong]) and all_close(mu, mu_wrong):
                return NotYet(hint)
        if lam_ok:
            return NotYet("lam is right, mu is not. Each step k adds h * (lambda_{k+1}^T df/dtheta at u_k) to mu, "
                          "one tensor per parameter (the products after the first from torch.autograd.grad).")
        if mu_ok:
            return NotYet("mu is right, lam is not. Each step multiplies by I + h df/du from the right: "
                          "lam <- lam + h * (lam^T df/du at u_k).")
        return NotYet(f"With {n_steps} steps of h = {h}, neither lam nor mu matches loss.backward() through the "
                      "same steps. For k from N-1 down to 0: take both products at u_k with the current lam, add "
                      "h times the parameter product to mu, then lam <- lam + h * (lam^T df/du).")
    return Correct("Your loop reproduces loss.backward() through the Euler steps: backprop through a solver is this "
                   "backward recursion, and as h -> 0 it becomes the adjoint ODE.")


euler_backprop = Exercise(
    number=1,
    title="backprop through Euler's steps, by hand",
    judge=_judge_euler_backprop,
    hints=(
        "Walk k = N-1, ..., 0. At u_k = states[k], one torch.autograd.grad call with lam as grad_outputs gives "
        "lam^T df/du and lam^T df/dtheta; then mu gains h times the second, and lam gains h times the first.",
        "Inside the loop: with torch.enable_grad(): x = states[k].detach().requires_grad_(); "
        "g_u, *g_p = torch.autograd.grad(f(x), (x, *params), lam); then mu = [m + h * g for m, g in zip(mu, g_p)] "
        "and lam = lam + h * g_u.",
    ),
    solution='''
def euler_backprop(f, params, states, h, lam):
    mu = [torch.zeros_like(p) for p in params]
    for k in reversed(range(len(states) - 1)):
        with torch.enable_grad():
            u = states[k].detach().requires_grad_()
            lam_fu, *lam_fp = torch.autograd.grad(f(u), (u, *params), lam)
        mu = [m + h * g for m, g in zip(mu, lam_fp)]
        lam = lam + h * lam_fu
    return lam, mu
''',
)


# --------------------------------------------------------------------------------------------------------------
# Exercise 2: backsolve's right-hand side for a loss with a running term
# --------------------------------------------------------------------------------------------------------------
def _running_loss(u: torch.Tensor) -> torch.Tensor:
    """l(u) = 0.5 * ||u||^2, summed over the batch."""
    return 0.5 * (u**2).sum()


def _reference_rhs(f: Callable, params: list, t: torch.Tensor, u: torch.Tensor, lam: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    du, lam_fu, lam_fp = _products(f, params, u, lam, t)
    return du, -lam_fu - u, [-g for g in lam_fp]


def _backsolve_with(rhs: Callable, f: nn.Module, u0: torch.Tensor, horizon: float, w: torch.Tensor, tol: float,
                    norm: Callable | None = None, counter: list | None = None
                    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The notebook's backsolve with the augmented right-hand side ``rhs(f, params, t, u, lam)`` (and a norm)."""
    params = [p for p in f.parameters() if p.requires_grad]
    span = torch.tensor([0.0, horizon], dtype=_F64)
    with torch.no_grad():
        u_end = torchdiffeq.odeint(f, u0, span, rtol=tol, atol=tol, method="tsit5")[-1]

    def augmented(t: torch.Tensor, state: tuple) -> tuple:
        if counter is not None:
            counter.append(1)
        du, dlam, dmu = rhs(f, params, t, state[0], state[1])
        return (du, dlam, *dmu)

    options: dict[str, Any] = {"step_t": span}
    if norm is not None:
        options["norm"] = norm
    start = (u_end, w, *[torch.zeros_like(p) for p in params])
    end = torchdiffeq.odeint(augmented, start, span.flip(0), rtol=tol, atol=tol, method="tsit5", options=options)
    return end[1][-1], [m[-1] for m in end[2:]]


def _running_loss_gradient(f: nn.Module, u0: torch.Tensor, horizon: float, w: torch.Tensor, tol: float,
                           running: bool = True) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Discrete backprop of L = sum(w * u(T)) + integral of l(u) dt, the integral solved as a second state."""
    params = list(f.parameters())
    start = u0.clone().requires_grad_()

    def forward(t: torch.Tensor, state: tuple) -> tuple:
        return f(t, state[0]), _running_loss(state[0]).reshape(1)

    ends = torchdiffeq.odeint(forward, (start, torch.zeros(1, dtype=_F64)), torch.tensor([0.0, horizon], dtype=_F64),
                              rtol=tol, atol=tol, method="tsit5")
    loss = (w * ends[0][-1]).sum() + (ends[1][-1].sum() if running else 0.0)
    grads = torch.autograd.grad(loss, (start, *params))
    return grads[0], list(grads[1:])


def _judge_augmented_rhs(answer: Callable) -> Correct | NotYet:
    f = _Layer(3, 7, scale=1.2)
    params = list(f.parameters())
    u, lam = _states(7, 5, 3)
    t = torch.tensor(0.4, dtype=_F64)
    du_ref, dlam_ref, dmu_ref = _reference_rhs(f, params, t, u, lam)
    try:
        result = answer(f, params, t, u.clone(), lam.clone())
    except RuntimeError as error:
        if (hint := _requires_grad_error(error)) is not None:
            return hint
        raise
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        return NotYet("augmented_rhs should return three things: du/dt, dlambda/dt and the list of dmu/dt (one "
                      "tensor per parameter), e.g. `return du, dlam, dmu`.")
    du, dlam, dmu = result
    if (problem := shape_problem(du, du_ref, what="du/dt")) is not None:
        return problem
    if (problem := shape_problem(dlam, dlam_ref, what="dlambda/dt")) is not None:
        return problem
    dmu = tensors_like(dmu, params, "dmu/dt")
    if isinstance(dmu, NotYet):
        return dmu
    if not all_close([du], [du_ref]):
        if all_close([du], [-du_ref]):
            return NotYet("du/dt is -f. u's equation stays the forward ODE, du/dt = f(t, u): the solver runs it "
                          "backward because the time span goes from T to 0, not because of a sign.")
        return NotYet("du/dt should be the dynamics themselves, f(t, u), evaluated at the u you were given.")
    _, lam_fu, lam_fp = _products(f, params, u, lam, t)
    jacobian = torch.func.jacrev(lambda x: f(t, x))(u)  # (batch, dim, batch, dim)
    jac_lam = torch.einsum("bicj,cj->bi", jacobian, lam)  # (df/du) lam: no transpose
    lam_mistakes = (
        (-lam_fu, "dlambda/dt is missing the running loss: with L = ... + integral of l(u) dt, every instant adds "
                  "dl/du = u to the adjoint's rate, so dlambda/dt = -lam^T df/du - u."),
        (-lam_fu + u, "The running-loss term has the wrong sign: like the rest of the adjoint's equation it enters "
                      "with a minus, dlambda/dt = -lam^T df/du - dl/du (and dl/du = u here)."),
        (lam_fu - u, "lam^T df/du has the wrong sign: the adjoint ODE is dlambda/dt = -lam^T df/du - dl/du "
                     "(the minus comes from the Euler recursion's limit)."),
        (lam_fu + u, "Both terms of dlambda/dt have the wrong sign: dlambda/dt = -lam^T df/du - dl/du."),
        (-jac_lam - u, "You multiplied lam by df/du from the left, (df/du) lam. The adjoint needs lam^T df/du, a "
                       "row vector times the Jacobian: torch.autograd.grad(f(t, u), u, lam) computes exactly "
                       "that."),
    )
    if not all_close([dlam], [dlam_ref]):
        for wrong, hint in lam_mistakes:
            if all_close([dlam], [wrong]):
                return NotYet(hint)
        return NotYet("dlambda/dt is not -lam^T df/du - u. Get lam^T df/du from torch.autograd.grad(f(t, u), u, "
                      "lam), with u a leaf that requires grad, and the running loss's gradient dl/du = u.")
    if not all_close(dmu, dmu_ref):
        if all_close(dmu, lam_fp):
            return NotYet("dmu/dt has the wrong sign: mu(t) is the integral from t to T, so dmu/dt = "
                          "-lam^T df/dtheta (one tensor per parameter).")
        return NotYet("dmu/dt should be -lam^T df/dtheta, one tensor per parameter in params' order (the "
                      "running loss does not depend on theta, so it adds nothing here).")
    # the whole backward pass, against discrete backprop of the same loss
    solver = _Layer(3, 11, scale=1.2)
    u0, w = _states(11, 4, 3)
    lam0, mu0 = _backsolve_with(answer, solver, u0, 1.0, w, 1e-10)
    lam_ref, mu_ref = _running_loss_gradient(solver, u0, 1.0, w, 1e-10)
    if not all_close([lam0, *mu0], [lam_ref, *mu_ref], rtol=1e-6):
        return NotYet("Your right-hand side is right at the point tested, but backsolve with it does not "
                      "reproduce discrete backprop: make sure it uses the t, u and lam it is given on every call "
                      "(no state kept between calls).")
    return Correct("Run backward by backsolve, your right-hand side reproduces discrete backprop of "
                   "w^T u(T) + integral of l(u) dt: a running loss only adds -dl/du to the adjoint's equation.")


augmented_rhs = Exercise(
    number=2,
    title="the adjoint's right-hand side, with a running loss",
    judge=_judge_augmented_rhs,
    hints=(
        "Three parts: du/dt = f(t, u) as in the forward solve; dlambda/dt = -lam^T df/du - dl/du with "
        "dl/du = u; dmu/dt = -lam^T df/dtheta. One torch.autograd.grad call gives both products.",
        "with torch.enable_grad(): u = u.detach().requires_grad_(); du = f(t, u); "
        "lam_fu, *lam_fp = torch.autograd.grad(du, (u, *params), lam); then return du.detach(), "
        "-lam_fu - u.detach(), and [-g for g in lam_fp].",
    ),
    solution='''
def augmented_rhs(f, params, t, u, lam):
    with torch.enable_grad():
        u = u.detach().requires_grad_()
        du = f(t, u)
        lam_fu, *lam_fp = torch.autograd.grad(du, (u, *params), lam)
    return du.detach(), -lam_fu - u.detach(), [-g for g in lam_fp]
''',
)


# --------------------------------------------------------------------------------------------------------------
# Exercise 3: a seminorm for backsolve
# --------------------------------------------------------------------------------------------------------------
def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.abs().pow(2).mean().sqrt()


def _plain_rhs(f: Callable, params: list, t: torch.Tensor, u: torch.Tensor, lam: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    du, lam_fu, lam_fp = _products(f, params, u, lam, t)
    return du, -lam_fu, [-g for g in lam_fp]


def _judge_seminorm_value(answer: Callable, state: tuple) -> NotYet | None:
    """A hint when ``answer(state)`` is not max(rms(u), rms(lam)), else None."""
    u, lam = state[0], state[1]
    returned = answer(tuple(x.clone() for x in state))
    if isinstance(returned, (int, float)) and not isinstance(returned, bool):
        return NotYet("seminorm returned a Python number; the solver needs a tensor (it calls .abs() on the "
                      "result): combine the two sizes with torch.max(a, b) instead of max() and float().")
    value = as_number(returned)
    if value is None:
        return NotYet("seminorm should return one number (a 0-dimensional tensor), the size of the state's error: "
                      "the larger of the root-mean-square values of u and lam.")
    expected = float(torch.maximum(_rms(u), _rms(lam)))
    if abs(value - expected) <= 1e-9 * expected:
        return None
    wrong = {
        "mixed": float(max(_rms(x) for x in state)),
        "sum": float(_rms(u) + _rms(lam)),
        "u": float(_rms(u)),
        "lam": float(_rms(lam)),
        "linf": float(max(u.abs().max(), lam.abs().max())),
        "l2": float(max(u.norm(), lam.norm())),
        "all": float(_rms(torch.cat([x.reshape(-1) for x in state]))),
    }
    hints = {
        "mixed": "Your norm still counts mu: the point of the seminorm is that mu's error does not decide the "
                 "step size. Use u and lam only.",
        "all": "Your norm measures the whole state, mu included. Leave mu out: only u and lam.",
        "sum": "You added the two sizes; torchdiffeq's norms take the larger one: torch.max of the two "
               "root-mean-square values.",
        "u": "You measured u only. lam's error matters too: it is the gradient being computed. Take the larger "
             "of the two root-mean-square values.",
        "lam": "You measured lam only. u's error matters too: lam's equation reads u. Take the larger of the two "
               "root-mean-square values.",
        "linf": "You took the largest absolute entry. torchdiffeq's default norm is the root-mean-square, "
                "x.pow(2).mean().sqrt(), so keep it: then the tolerances mean what they meant before.",
        "l2": "You took the Euclidean norm, which grows with the number of entries. Use the root-mean-square, "
              "x.pow(2).mean().sqrt(), as torchdiffeq's default does.",
    }
    for key, wrong_value in wrong.items():
        if abs(value - wrong_value) <= 1e-9 * abs(wrong_value):
            return NotYet(hints[key])
    return NotYet("seminorm should return max(rms(u), rms(lam)), with rms(x) = x.pow(2).mean().sqrt(), and "
                  "ignore mu.")


def _judge_seminorm(answer: Callable) -> Correct | NotYet:
    generator = torch.Generator().manual_seed(3)
    # two states: lam the larger in the first, u the larger in the second, so neither part alone passes
    for u_scale, lam_scale in ((1.0, 3.0), (3.0, 1.0)):
        u = u_scale * torch.randn(6, 4, generator=generator, dtype=_F64)
        lam = lam_scale * torch.randn(6, 4, generator=generator, dtype=_F64)
        mus = [50.0 * torch.randn(4, 4, generator=generator, dtype=_F64),
               50.0 * torch.randn(4, generator=generator, dtype=_F64)]
        verdict = _judge_seminorm_value(answer, (u, lam, *mus))
        if verdict is not None:
            return verdict
    # the effect: backsolve on the contracting system at T = 1, with the default norm and with the seminorm
    f = _Contracting()
    generator = torch.Generator().manual_seed(1)
    u0, w = (torch.randn(16, 8, generator=generator, dtype=_F64) for _ in range(2))
    counts: dict[str, list] = {"default": [], "seminorm": []}
    results = {}
    for name, norm in (("default", None), ("seminorm", answer)):
        results[name] = _backsolve_with(_plain_rhs, f, u0, 1.0, w, 1e-6, norm=norm, counter=counts[name])
    reference = torch.cat([g.reshape(-1) for g in _running_loss_gradient(f, u0, 1.0, w, 1e-10, running=False)[1]])
    errors = {name: float((torch.cat([m.reshape(-1) for m in mu0]) - reference).norm() / reference.norm())
              for name, (_, mu0) in results.items()}
    if errors["seminorm"] > 1e-3:
        return NotYet("With your norm the backward solve's gradient is far from discrete backprop's: the norm must "
                      "measure u and lam, or their errors go unchecked.")
    plain, semi = len(counts["default"]), len(counts["seminorm"])
    return Correct(f"On the contracting system at T = 1, backsolve's backward pass took {semi} evaluations with "
                   f"your seminorm and {plain} with the default norm, for parameter gradients with relative errors "
                   f"of {errors['seminorm']:.3g} and {errors['default']:.3g}: mu's error no longer sets the step "
                   "size, and mu stays accurate because it integrates along the controlled u and lam.")


seminorm = Exercise(
    number=3,
    title="a seminorm for backsolve",
    judge=_judge_seminorm,
    hints=(
        "The root-mean-square of a tensor x is x.pow(2).mean().sqrt(). Compute it for u and for lam, and return the "
        "larger; mu does not appear.",
        "return torch.max(u.pow(2).mean().sqrt(), lam.pow(2).mean().sqrt())",
    ),
    solution='''
def seminorm(state):
    u, lam, *mu = state
    return torch.max(u.pow(2).mean().sqrt(), lam.pow(2).mean().sqrt())
''',
)
