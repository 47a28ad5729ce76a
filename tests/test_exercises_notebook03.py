"""Notebook 03's exercises: reference solutions pass, placeholders are unanswered, typical mistakes get their hint."""

from __future__ import annotations

import re

import pytest
import torch

from nodeutils.exercises import ____, notebook03


def _answer(text: str):
    """A learner's answer defined from source text (the notebook's imports available)."""
    namespace = {"torch": torch, "____": ____}
    exec(text, namespace)
    return namespace[next(k for k in namespace if k not in ("torch", "____", "__builtins__"))]


EULER_BODY = """
def euler_backprop(f, params, states, h, lam):
    mu = [torch.zeros_like(p) for p in params]
    for k in {order}:
        with torch.enable_grad():
            u = states[{at}].detach().requires_grad_()
            lam_fu, *lam_fp = torch.autograd.grad(f(u), (u, *params), lam)
        {update}
    return lam, mu
"""
RIGHT_UPDATE = "mu = [m + h * g for m, g in zip(mu, lam_fp)]; lam = lam + h * lam_fu"


def _euler(order="reversed(range(len(states) - 1))", at="k", update=RIGHT_UPDATE):
    return _answer(EULER_BODY.format(order=order, at=at, update=update))


RHS_BODY = """
def augmented_rhs(f, params, t, u, lam):
    with torch.enable_grad():
        u = u.detach().requires_grad_()
        du = f(t, u)
        lam_fu, *lam_fp = torch.autograd.grad(du, (u, *params), lam)
    u = u.detach()
    return {du}, {dlam}, {dmu}
"""


def _rhs(du="du.detach()", dlam="-lam_fu - u", dmu="[-g for g in lam_fp]"):
    return _answer(RHS_BODY.format(du=du, dlam=dlam, dmu=dmu))


@pytest.mark.parametrize("exercise", [notebook03.euler_backprop, notebook03.augmented_rhs, notebook03.seminorm])
def test_the_reference_solution_is_correct(exercise):
    assert ": correct." in exercise.verdict(exercise.solution_answer())


def test_the_right_answers_written_another_way_are_correct():
    assert ": correct." in notebook03.euler_backprop.verdict(_euler())
    assert ": correct." in notebook03.augmented_rhs.verdict(_rhs(dlam="-(lam_fu + u)"))
    seminorm = _answer("def seminorm(state):\n"
                       "    return torch.stack([x.pow(2).mean().sqrt() for x in state[:2]]).max()\n")
    assert ": correct." in notebook03.seminorm.verdict(seminorm)


def test_placeholders_are_not_answered():
    euler = _answer("def euler_backprop(f, params, states, h, lam):\n    ____\n    return lam, []\n")
    rhs = _answer("def augmented_rhs(f, params, t, u, lam):\n    ____\n")
    seminorm = _answer("def seminorm(state):\n    u, lam, *mu = state\n    return ____\n")
    for exercise, answer in ((notebook03.euler_backprop, euler), (notebook03.augmented_rhs, rhs),
                             (notebook03.seminorm, seminorm)):
        assert ": not answered yet." in exercise.verdict(answer)


@pytest.mark.parametrize(("answer", "phrase"), [
    (_euler(at="k + 1"), "states[k], not states[k + 1]"),
    (_euler(order="range(len(states) - 1)"), "from the first to the last"),
    (_euler(update="mu = [m + g for m, g in zip(mu, lam_fp)]; lam = lam + h * lam_fu"), "mu is missing the step"),
    (_euler(update="mu = [m + h * g for m, g in zip(mu, lam_fp)]; lam = lam + lam_fu"), "missing the step size"),
    (_euler(update="mu = [m - h * g for m, g in zip(mu, lam_fp)]; lam = lam - h * lam_fu"), "signs are flipped"),
    (_euler(update="pass"), "nothing updated it"),
    (_answer("def euler_backprop(f, params, states, h, lam):\n    for u in states[-2::-1]:\n"
             "        lam_fu, *lam_fp = torch.autograd.grad(f(u), (u, *params), lam)\n    return lam, []\n"),
     "requires_grad_()"),
])
def test_euler_mistakes_get_their_hint(answer, phrase):
    verdict = notebook03.euler_backprop.verdict(answer)
    assert phrase in verdict and ": correct." not in verdict, verdict


def test_euler_mu_from_the_updated_lambda_gets_its_hint():
    answer = _answer("""
def euler_backprop(f, params, states, h, lam):
    mu = [torch.zeros_like(p) for p in params]
    for k in reversed(range(len(states) - 1)):
        with torch.enable_grad():
            u = states[k].detach().requires_grad_()
            lam_fu = torch.autograd.grad(f(u), u, lam)[0]
            lam = lam + h * lam_fu
            lam_fp = torch.autograd.grad(f(u), params, lam)
        mu = [m + h * g for m, g in zip(mu, lam_fp)]
    return lam, mu
""")
    verdict = notebook03.euler_backprop.verdict(answer)
    assert "used lambda_k, the value after the update" in verdict, verdict


@pytest.mark.parametrize(("answer", "phrase"), [
    (_rhs(dlam="-lam_fu"), "missing the running loss"),
    (_rhs(dlam="-lam_fu + u"), "running-loss term has the wrong sign"),
    (_rhs(dlam="lam_fu - u"), "lam^T df/du has the wrong sign"),
    (_rhs(dlam="lam_fu + u"), "Both terms"),
    (_rhs(dmu="lam_fp"), "dmu/dt has the wrong sign"),
    (_rhs(du="-du.detach()"), "du/dt is -f"),
    (_rhs(dmu="-lam_fp[0]"), "one tensor per parameter"),
    (_answer("def augmented_rhs(f, params, t, u, lam):\n"
             "    J = torch.func.jacrev(lambda x: f(t, x))(u)\n"
             "    lam_fp = torch.autograd.grad(f(t, u.requires_grad_()), params, lam)\n"
             "    return f(t, u).detach(), -torch.einsum('bicj,cj->bi', J, lam) - u.detach(), "
             "[-g for g in lam_fp]\n"), "from the left"),
])
def test_rhs_mistakes_get_their_hint(answer, phrase):
    verdict = notebook03.augmented_rhs.verdict(answer)
    assert phrase in verdict and ": correct." not in verdict, verdict


@pytest.mark.parametrize(("body", "phrase"), [
    ("max(x.pow(2).mean().sqrt() for x in state)", "still counts mu"),
    ("u.pow(2).mean().sqrt() + lam.pow(2).mean().sqrt()", "You added the two sizes"),
    ("u.pow(2).mean().sqrt()", "You measured u only"),
    ("torch.max(u.abs().max(), lam.abs().max())", "largest absolute entry"),
    ("torch.max(u.norm(), lam.norm())", "Euclidean norm"),
    ("(u, lam)", "one number"),
    ("max(float(u.pow(2).mean().sqrt()), float(lam.pow(2).mean().sqrt()))", "returned a Python number"),
])
def test_seminorm_mistakes_get_their_hint(body, phrase):
    answer = _answer(f"def seminorm(state):\n    u, lam, *mu = state\n    return {body}\n")
    verdict = notebook03.seminorm.verdict(answer)
    assert phrase in verdict and ": correct." not in verdict, verdict


def test_the_seminorm_saves_backward_evaluations():
    verdict = notebook03.seminorm.verdict(notebook03.seminorm.solution_answer())
    found = re.search(r"took (\d+) evaluations with your seminorm and (\d+) with the default norm", verdict)
    assert found, verdict
    semi, plain = int(found.group(1)), int(found.group(2))
    assert semi < plain, verdict


def test_a_lambda_only_norm_is_not_accepted():
    answer = _answer("def seminorm(state):\n    u, lam, *mu = state\n    return lam.pow(2).mean().sqrt()\n")
    verdict = notebook03.seminorm.verdict(answer)
    assert "You measured lam only" in verdict and ": correct." not in verdict, verdict
