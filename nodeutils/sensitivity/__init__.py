r"""Sensitivity algorithms: how the gradient of a loss flows back through an ODE solve.

For du/dt = f(u, p, t) on [t0, T] and a loss L(u(T)), every *continuous adjoint* solves the adjoint
ODE backward from T:

    lambda(T) = dL/du(T),   d lambda/dt = -lambda^T df/du,   dL/dp = \int_{t0}^{T} lambda^T df/dp dt,

and returns dL/du(t0) = lambda(t0). The algorithms differ in where u(t) comes from on the way back
and how the parameter integral is computed. The alternative is *discrete*: backpropagate through
every operation the solver performed.

==========================  ===============================  ==================================================
SciMLSensitivity (Julia)    nodeutils (PyTorch)              what happens on the backward pass
==========================  ===============================  ==================================================
ReverseDiffAdjoint,         ``AutogradAdjoint()``            torch.autograd replays the recorded solver graph;
ZygoteAdjoint                                                exact gradient of the discrete solution; memory
                                                             grows with the number of steps.
BacksolveAdjoint            ``BacksolveAdjoint(seminorm)``   torchdiffeq.odeint_adjoint: integrates [u, lambda,
                                                             mu] backward, re-computing u by running the ODE in
                                                             reverse. O(1) memory; unstable when the forward
                                                             dynamics contract (u cannot be recovered backward).
InterpolatingAdjoint        ``InterpolatingAdjoint(...)``    integrates [lambda, mu] backward; u(t) comes from
                                                             the stored dense forward solution, or is re-solved
                                                             from checkpoints (``checkpointing=True``).
QuadratureAdjoint           ``QuadratureAdjoint(...)``       integrates lambda alone backward and keeps it; then
                                                             computes dL/dp by adaptive Gauss-Kronrod (7-15)
                                                             quadrature of lambda^T df/dp.
GaussAdjoint                ``GaussAdjoint(...)``            integrates lambda alone backward; on every accepted
                                                             step adds that step's share of dL/dp by Gauss-
                                                             Legendre quadrature. Parameters never enter the ODE
                                                             state: the backward solve integrates lambda alone.
==========================  ===============================  ==================================================

Vector-Jacobian products (``autojacvec``), i.e. how lambda^T df/du and lambda^T df/dp are computed:

================  ===================  ==============================================================
Julia             ``autojacvec=``      PyTorch mechanism
================  ===================  ==============================================================
ZygoteVJP         ``"autograd"``       ``torch.autograd.grad`` on a graph built fresh for each call
ReverseDiffVJP    ``"func"``           ``torch.func.vjp``: a functional transform of f(u, p)
autojacvec=false  ``"jacobian"``       ``torch.func.jacrev`` builds the full Jacobian, then a product;
                                       n times the work of a VJP, included to show why VJPs matter
================  ===================  ==============================================================

One entry point, shaped like ``torchdiffeq.odeint``::

    ys = odeint(func, y0, t, method="tsit5", rtol=1e-3, atol=1e-3,
                sensealg=GaussAdjoint(autojacvec="func"), stats=stats)

``func`` is an ``nn.Module`` called as ``func(t, y)`` (its trainable parameters are used), or a plain
callable ``func(t, y, params)`` together with ``params=`` (a tensor, or any list/tuple/dict nesting
of tensors). ``stats`` (a :class:`SolveStats`) receives forward and backward function-evaluation counts.
Gradients with respect to ``t`` are not computed. The interpolating, quadrature and Gauss adjoints are
once-differentiable (``create_graph=True`` raises); ``BacksolveAdjoint`` is torchdiffeq's, which returns first-order
gradients without a graph under ``create_graph=True``, and whose backward solve reports a step limit as
torchdiffeq's own ``AssertionError``.

The package reads in the order a solve runs: :mod:`~nodeutils.sensitivity.entry` (``odeint`` and
``make_sensealg``), :mod:`~nodeutils.sensitivity.problem` (f, its parameters and the settings as one object),
:mod:`~nodeutils.sensitivity.discrete` (backprop through the solver; torchdiffeq's backsolve),
:mod:`~nodeutils.sensitivity.continuous` (the forward record and the interpolating adjoint),
:mod:`~nodeutils.sensitivity.quadrature` (the quadrature and Gauss adjoints) and
:mod:`~nodeutils.sensitivity.vjp` (the vector-Jacobian products they all use).
"""

from ..checks import VJP_CHOICES
from .continuous import InterpolatingAdjoint
from .discrete import AutogradAdjoint, BacksolveAdjoint
from .entry import DEFAULT_SENSEALG, SENSEALG_NAMES, make_sensealg, odeint
from .problem import SensitivityAlgorithm, SolveStats
from .quadrature import GaussAdjoint, QuadratureAdjoint
from .rules import gauss_legendre, kronrod15_rule
from .vjp import make_vjp

__all__ = [
    "odeint",
    "SolveStats",
    "SensitivityAlgorithm",
    "AutogradAdjoint",
    "BacksolveAdjoint",
    "InterpolatingAdjoint",
    "QuadratureAdjoint",
    "GaussAdjoint",
    "VJP_CHOICES",
    "SENSEALG_NAMES",
    "DEFAULT_SENSEALG",
    "make_sensealg",
    "make_vjp",
    "kronrod15_rule",
    "gauss_legendre",
]
