"""One ODE problem as the sensitivity algorithms see it (f(t, u, leaves), its parameter leaves, the settings), and
the interface every algorithm implements (:class:`SensitivityAlgorithm`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.func import functional_call
from torch.utils import _pytree as pytree

from ..errors import InputError

__all__ = ["Leaves", "RHS", "SolveStats", "Problem", "SensitivityAlgorithm", "build_problem", "flatten_tensors",
           "unflatten_like"]

Leaves = tuple[torch.Tensor, ...]
RHS = Callable[[torch.Tensor, torch.Tensor, Leaves], torch.Tensor]


@dataclass
class SolveStats:
    """Work done by one solve and its backward pass (filled in as they run).

    ``nfe_backward`` counts every evaluation of f on the backward pass: adjoint right-hand sides,
    quadrature nodes, and forward re-solves from checkpoints. ``stored_bytes`` is what the algorithm
    itself stores: the forward dense solution or checkpoints, kept between the passes, and for the quadrature
    adjoint also the backward solve's dense solutions of lambda, made during the backward pass.
    ``backward_state_size`` is how many numbers the backward solve of nodeutils' own continuous adjoints
    integrates: lambda and the running parameter integral for the interpolating adjoint, lambda alone for the
    quadrature and Gauss adjoints (0 when no such solve ran: discrete backprop, backsolve).
    """

    nfe_forward: int = 0
    nfe_backward: int = 0
    steps_forward: int = 0
    steps_backward: int = 0
    stored_bytes: int = 0
    backward_state_size: int = 0


class _ModuleRHS:
    """f(t, u, leaves) for an nn.Module: a direct call when the leaves are its own parameters."""

    def __init__(self, module: torch.nn.Module, names: list[str], own: Leaves) -> None:
        self.module, self.names, self.own = module, names, own

    def __call__(self, t: torch.Tensor, u: torch.Tensor, leaves: Leaves) -> torch.Tensor:
        if len(leaves) == len(self.own) and all(a is b for a, b in zip(leaves, self.own)):
            return self.module(t, u)
        return functional_call(self.module, dict(zip(self.names, leaves)), (t, u), tie_weights=False)


@dataclass
class Problem:
    """f(t, u, leaves) with its parameter leaves, the solver settings and the counts to fill in."""

    rhs: RHS
    leaves: Leaves
    method: str
    rtol: float
    atol: float
    options: dict
    stats: SolveStats

    def closed(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """f(t, u) with the problem's own parameters.

        Returns:
            A function ``(t, u) -> du/dt`` that calls ``rhs(t, u, leaves)``.
        """
        return lambda t, u: self.rhs(t, u, self.leaves)


class SensitivityAlgorithm:
    """Base class: a way to compute gradients through :func:`odeint`."""

    name: str = ""  # short name, as used by make_sensealg and the CLI
    uses_dense_output = False  # whether the solver must provide dense output (an adaptive Runge-Kutta method)
    needs_parameters = True  # whether f's parameters must be known (and require grad) to differentiate the solve

    def solve(self, problem: Problem, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Solve ``problem`` from ``y0`` at the times ``t``, so that gradients flow back this algorithm's way.

        Args:
            problem: f, its parameter leaves and the solver settings.
            y0: the initial state.
            t: the output times (a checked, strictly monotone 1-D tensor).

        Returns:
            The states at ``t``, shape ``(len(t), *y0.shape)``.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


def build_problem(func: torch.nn.Module | Callable, params: Any, method: str, rtol: float, atol: float,
                  options: dict, stats: SolveStats, sensealg: Any) -> Problem:
    """The problem odeint hands to ``sensealg``: an nn.Module's trainable parameters, or ``params`` flattened.

    Args:
        func: an nn.Module called as ``func(t, y)``, or a callable ``func(t, y[, params])``.
        params: ``None`` (a module's own parameters, or none), or a tensor or nesting of tensors.
        method: the solver's name.
        rtol: relative tolerance.
        atol: absolute tolerance.
        options: solver options (already checked).
        stats: the counts to fill in.
        sensealg: the algorithm that will solve it (whether it needs the parameters as leaves).

    Returns:
        The problem.

    ``func`` is already checked by :func:`~nodeutils.checks.check_func` (``odeint`` calls it first).

    Raises:
        InputError: params that are not floating-point tensors, or params that the algorithm cannot differentiate
            (missing, or not requiring grad).
    """
    if isinstance(func, torch.nn.Module) and params is None:
        named = [(n, p) for n, p in func.named_parameters() if p.requires_grad]
        names = [n for n, _ in named]
        leaves = tuple(p for _, p in named)
        return Problem(_ModuleRHS(func, names, leaves), leaves, method, rtol, atol, options, stats)
    if params is None:
        if sensealg.needs_parameters:
            raise InputError(
                f"{type(sensealg).__name__} needs to know the parameters of f, but func is a plain callable "
                "without params=: pass odeint(f, y0, t, params=...) with f(t, y, params), or make f an nn.Module"
            )
        return Problem(lambda t, u, leaves: func(t, u), (), method, rtol, atol, options, stats)
    flat, spec = pytree.tree_flatten(params)
    for i, leaf in enumerate(flat):
        if not isinstance(leaf, torch.Tensor) or not leaf.is_floating_point():
            raise InputError(f"params leaf {i} must be a floating-point tensor; got {type(leaf).__name__}")
        if torch.is_grad_enabled() and not leaf.requires_grad and sensealg.needs_parameters:
            raise InputError(
                f"params leaf {i} (shape {tuple(leaf.shape)}) does not require grad, so "
                f"{type(sensealg).__name__} cannot compute its gradient: call .requires_grad_() on it, or leave "
                "it out of params and close over it in f"
            )

    if spec.is_leaf():  # params is one tensor: hand it over as it is

        def rhs(t, u, leaves):
            return func(t, u, leaves[0])
    else:

        def rhs(t, u, leaves):
            return func(t, u, pytree.tree_unflatten(list(leaves), spec))

    return Problem(rhs, tuple(flat), method, rtol, atol, options, stats)


def flatten_tensors(tensors: Sequence[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """The tensors' numbers as one vector of ``dtype`` (an empty one for no tensors).

    Args:
        tensors: the tensors to concatenate, each read in row-major order.
        dtype: the vector's dtype.

    Returns:
        A 1-D tensor of ``sum(x.numel() for x in tensors)`` numbers.
    """
    if not tensors:
        return torch.zeros(0, dtype=dtype)
    return torch.cat([x.reshape(-1).to(dtype) for x in tensors])


def unflatten_like(vector: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Inverse of :func:`flatten_tensors`: ``vector`` cut into tensors shaped (and typed) like ``like``.

    Args:
        vector: a 1-D tensor of at least ``sum(x.numel() for x in like)`` numbers.
        like: the tensors whose shapes and dtypes the pieces take, in order.

    Returns:
        One tensor per entry of ``like``.
    """
    out, i = [], 0
    for x in like:
        out.append(vector[i:i + x.numel()].view_as(x).to(x.dtype))
        i += x.numel()
    return out
