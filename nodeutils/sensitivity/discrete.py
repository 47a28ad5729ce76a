"""The algorithm base class and the two that let autograd do the work: discrete backprop and backsolve."""

from __future__ import annotations

import torch
import torchdiffeq

from ..checks import check_bool
from ..solve import DEFAULT_MAX_NUM_STEPS, SolveCounter, _CheckedRHS, _friendly_solver_errors, integrate
from .problem import Problem, SensitivityAlgorithm

__all__ = ["AutogradAdjoint", "BacksolveAdjoint"]


class AutogradAdjoint(SensitivityAlgorithm):
    """Discrete sensitivities: backpropagate through every operation of the solver.

    The counterpart of SciMLSensitivity's ReverseDiffAdjoint/ZygoteAdjoint and of plain
    ``torchdiffeq.odeint``. Gives the exact gradient of the computed solution; the autograd graph
    (every stage of every step) stays in memory until ``backward``.
    """

    name = "autograd"
    needs_parameters = False  # autograd follows whatever f's output depends on

    def solve(self, problem: Problem, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Run the solver under autograd, which records every step for the backward pass.

        Arguments and result as for :meth:`~nodeutils.sensitivity.problem.SensitivityAlgorithm.solve`.

        Raises:
            InputError: f returns a tensor not shaped like the state, or rtol and atol are below y0's precision.
            SolverError: the solve failed (non-finite state, too many steps, or a step size that shrank to nothing).
        """
        counter = SolveCounter()
        try:
            ys, _ = integrate(problem.closed(), y0, t, method=problem.method, rtol=problem.rtol,
                              atol=problem.atol, options=problem.options, counter=counter, inputs_checked=True)
        finally:
            problem.stats.nfe_forward += counter.nfe
            problem.stats.steps_forward += counter.steps
        return ys


class BacksolveAdjoint(SensitivityAlgorithm):
    """torchdiffeq's ``odeint_adjoint``: re-integrate u backward together with the adjoint.

    ``seminorm=True`` leaves the parameter-gradient part out of the backward step-size control
    (Kidger, Chen & Lyons 2021), which usually saves backward steps.

    Args:
        seminorm: whether the backward step-size control leaves out the parameter-gradient part.

    Raises:
        InputError: ``seminorm`` is not a bool.
    """

    name = "backsolve"

    def __init__(self, seminorm: bool = False) -> None:
        self.seminorm = check_bool("seminorm", seminorm)

    def solve(self, problem: Problem, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Solve forward without a graph; the backward pass re-solves u backward along with the adjoint.

        Arguments and result as for :meth:`~nodeutils.sensitivity.problem.SensitivityAlgorithm.solve`.

        Raises:
            InputError: f returns a tensor not shaped like the state.
            SolverError: the forward solve failed (non-finite values, too many steps, or a vanishing step size).
        """
        stats = problem.stats

        class _Dynamics(torch.nn.Module):
            # odeint_adjoint evaluates f without gradients forward and with gradients backward.
            def forward(self, t_, y_):
                if torch.is_grad_enabled():
                    stats.nfe_backward += 1
                else:
                    stats.nfe_forward += 1
                return problem.rhs(t_, y_, problem.leaves)

        dynamics = _CheckedRHS(_Dynamics(), SolveCounter(), "backsolve adjoint solve")
        # Each backward interval ends exactly on its output time (no step past it): torchdiffeq's default
        # overshoot would carry u(t) beyond the span, where reversed contracting dynamics blow up.
        adjoint_options = {"max_num_steps": problem.options.get("max_num_steps", DEFAULT_MAX_NUM_STEPS),
                           "step_t": t}
        if self.seminorm:
            adjoint_options["norm"] = "seminorm"
        with _friendly_solver_errors(t, problem.rtol, problem.atol, "backsolve adjoint solve"):
            return torchdiffeq.odeint_adjoint(
                dynamics, y0, t, rtol=problem.rtol, atol=problem.atol, method=problem.method,
                options={"max_num_steps": DEFAULT_MAX_NUM_STEPS, **problem.options},
                adjoint_params=problem.leaves, adjoint_options=adjoint_options)
