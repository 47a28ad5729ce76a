"""How a Neural ODE layer runs its solve: the settings, the parameters handed to the solver, the bound network.

:class:`ODESettings` holds a layer's solver settings and runs its solve (:meth:`ODESettings.solve_network` is the
forward pass of the class-based and compact layers); :class:`BoundNetwork` calls the network with whatever
parameters the solver passes, cheaply when they are the network's own; :func:`solve_dtype` is the dtype a layer
solves in (its network's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.compiler import is_compiling
from torch.func import functional_call

from .checks import check_bool, check_method, check_options, check_state, check_time_span, check_tolerances
from .sensitivity import SensitivityAlgorithm, SolveStats, make_sensealg, odeint

__all__ = ["ODESettings", "BoundNetwork", "solve_dtype"]


def solve_dtype(network: nn.Module, x: torch.Tensor) -> torch.dtype:
    """The dtype a Neural ODE layer solves in: its network's (first floating-point parameter or buffer), else x's.

    Args:
        network: the network inside the ODE.
        x: the layer's input.

    Returns:
        ``torch.float64`` for :func:`~nodeutils.models.create_model`'s default network, ``x.dtype`` for a network
        without floating-point tensors.
    """
    for tensor in network.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    for tensor in network.buffers():
        if tensor.is_floating_point():
            return tensor.dtype
    return x.dtype


class ODESettings:
    """Solver settings shared by the three layer styles, and the solve they run.

    ``flat_params=True`` hands the solver one flat parameter vector (like a ComponentArray);
    otherwise a dict of the parameters in their own shapes (like a NamedTuple). ``stats`` holds the
    function-evaluation counts of the latest solve (and of its backward pass).

    Args:
        solver, tspan, sensealg, rtol, atol, flat_params, options: as for :class:`~nodeutils.layers.NeuralODE`.

    Raises:
        InputError: a bad setting (solver, time span, tolerance, algorithm, options).
    """

    def __init__(self, solver: str = "tsit5", tspan: Sequence[float] = (0.0, 1.0),
                 sensealg: SensitivityAlgorithm | str | None = None, rtol: float = 1e-3, atol: float = 1e-3,
                 flat_params: bool = False, options: dict | None = None) -> None:
        check_tolerances(rtol, atol)
        self.solver = solver
        self.tspan = tuple(float(x) for x in check_time_span(tspan).double())  # a list is read in float64
        self.sensealg = make_sensealg(sensealg)
        check_method(solver, need_dense=self.sensealg.uses_dense_output)
        self.rtol, self.atol = float(rtol), float(atol)
        self.flat_params = check_bool("flat_params", flat_params)
        self.options = check_options(solver, options)
        self.stats = SolveStats()  # counts of the latest solve (and of its backward pass)

    def solver_parameters(self, model: nn.Module) -> tuple[Any, Callable[[Any], dict[str, torch.Tensor]]]:
        """The parameters handed to the solver, and the function turning them back into a name -> tensor dict.

        Args:
            model: the network whose trainable parameters (``requires_grad``) are handed to the solver.

        Returns:
            ``(params, as_dict)``: ``params`` is a name -> parameter dict, or with ``flat_params`` one vector of
            them all concatenated; ``as_dict`` maps such a value back to a name -> tensor dict (views of a vector).
        """
        named = {n: p for n, p in model.named_parameters() if p.requires_grad}
        if not self.flat_params:
            return named, lambda p: p
        names, shapes, sizes = list(named), [p.shape for p in named.values()], [p.numel() for p in named.values()]
        flat = torch.cat([p.reshape(-1) for p in named.values()]) if named else torch.zeros(0)

        def unflatten(vector: torch.Tensor) -> dict[str, torch.Tensor]:
            return {n: v.view(s) for n, v, s in zip(names, torch.split(vector, sizes), shapes)}

        return flat, unflatten

    def solve_network(self, network: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Solve du/dt = network(u) from u(t0) = x: the forward pass of the class-based and compact layers.

        The solver gets the network's parameters (flat or by name); while it runs, the network is bound to them
        (:class:`BoundNetwork`). The solve runs in the network's dtype and the states come back in x's.

        Args:
            network: the network f of du/dt = f(u).
            x: the initial state u(t0), shaped (batch, features).

        Returns:
            The states at the times of ``tspan``, shaped (len(tspan), batch, features).

        Raises:
            InputError: ``x`` is not a float tensor, or does not fit the solve (an empty batch, another device).
            SolverError: the solve failed (non-finite state, too many steps, step size underflow).
        """
        check_state(x, name="the input of the ODE layer")
        params, as_dict = self.solver_parameters(network)
        with BoundNetwork(network, params, as_dict) as bound:

            def dudt(t: torch.Tensor, u: torch.Tensor, p: Any) -> torch.Tensor:
                return bound(u, p)  # the state keeps its (batch, features) shape: no reshaping per call

            return self.solve(dudt, x.to(solve_dtype(network, x)), params).to(x.dtype)

    def solve(self, rhs: Callable, y0: torch.Tensor, params: Any) -> torch.Tensor:
        """Solve du/dt = rhs(t, u, params) from y0 with these settings; the counts go to ``stats``.

        Args:
            rhs: the right-hand side, called as ``rhs(t, u, params)``.
            y0: the initial state, a float32 or float64 tensor.
            params: the parameters passed to ``rhs`` (those gradients flow to), as from :meth:`solver_parameters`.

        Returns:
            The states at the times of ``tspan``, shaped ``(2, *y0.shape)`` for a start and an end time.

        Raises:
            InputError: ``y0``, ``rhs`` or ``params`` do not fit (see :func:`~nodeutils.sensitivity.odeint`).
            SolverError: the solve failed (non-finite state, too many steps, step size underflow).
        """
        self.stats = SolveStats()
        t = torch.tensor(self.tspan, dtype=torch.float64, device=y0.device)
        return odeint(rhs, y0, t, method=self.solver, rtol=self.rtol, atol=self.atol, sensealg=self.sensealg,
                      options=self.options, params=params, stats=self.stats)

    def __repr__(self) -> str:
        return (f"solver={self.solver!r}, tspan={self.tspan}, rtol={self.rtol:g}, atol={self.atol:g}, "
                f"sensealg={self.sensealg!r}")


class BoundNetwork:
    """Calls ``model(u)`` with the parameters the solver passes in ``p``.

    While ``p`` holds the very tensors the solve was started with, the network is called directly
    (they are the module's own parameters, or views of the flat vector put into the module between
    :meth:`bind` and :meth:`unbind`). Any other ``p`` (the detached copies an adjoint differentiates on
    the backward pass) is put into the module's parameter slots for the one call and taken out again,
    which is what ``torch.func.functional_call`` does, without its per-call set-up; the views of a flat
    ``p`` are made once per ``p``, not once per call. Under ``torch.compile`` ``functional_call`` itself
    is used. Same numbers, less overhead.

    Use it as a context manager: ``with BoundNetwork(model, params, as_dict) as bound: ... bound(u, p) ...``.

    Args:
        model: the network.
        params: the parameters the solve starts with, from :meth:`ODESettings.solver_parameters`.
        as_dict: turns such parameters into a name -> tensor dict, from the same call.
    """

    def __init__(self, model: nn.Module, params: Any, as_dict: Callable[[Any], dict[str, torch.Tensor]]) -> None:
        self.model, self.params, self.as_dict = model, params, as_dict
        self.tensors = as_dict(params)
        own = dict(model.named_parameters())
        self.needs_swap = any(own.get(n) is not v for n, v in self.tensors.items())
        self.active = not self.needs_swap
        self._saved: list[tuple[nn.Module, str, Any]] = []
        self._slots: dict[str, tuple[dict, str]] | None = None  # name -> (owner._parameters, attribute)
        self._views: tuple[Any, ...] | None = None  # (p, grad mode, requires_grad, version, as_dict(p)) of the latest p

    def bind(self) -> BoundNetwork:
        """Put the solver's parameter tensors into the module (when they are not its own already).

        Returns:
            This object, for ``with``.
        """
        if self.needs_swap:
            for name, value in self.tensors.items():
                owner_name, _, attr = name.rpartition(".")
                owner = self.model.get_submodule(owner_name)
                self._saved.append((owner, attr, owner._parameters[attr]))
                owner._parameters[attr] = value
            self.active = True
        return self

    def unbind(self) -> None:
        """Give the module its own parameters back."""
        for owner, attr, old in reversed(self._saved):
            owner._parameters[attr] = old
        self._saved.clear()
        self.active = not self.needs_swap

    def __enter__(self) -> BoundNetwork:
        return self.bind()

    def __exit__(self, *exc: object) -> None:
        self.unbind()

    def _is_bound(self, p: Any) -> bool:
        if p is self.params:
            return True
        if isinstance(p, dict) and isinstance(self.params, dict) and p.keys() == self.params.keys():
            return all(p[k] is v for k, v in self.params.items())
        return False

    def __call__(self, u: torch.Tensor, p: Any) -> torch.Tensor:
        """Evaluate the network at ``u`` with the parameters ``p``.

        Args:
            u: the state, as the network takes it.
            p: the parameters the solver passes, in the form of :meth:`ODESettings.solver_parameters`.

        Returns:
            ``model(u)`` computed with ``p``.
        """
        if self.active and self._is_bound(p):
            return self.model(u)
        if is_compiling():
            return functional_call(self.model, self.as_dict(p), (u,), tie_weights=False)
        tensors = self._tensors_of(p)
        slots = self._parameter_slots()
        if not tensors.keys() <= slots.keys():  # not only parameters of the module: the general route
            return functional_call(self.model, tensors, (u,), tie_weights=False)
        saved = []
        try:
            for name, value in tensors.items():
                table, attr = slots[name]
                saved.append((table, attr, table[attr]))
                table[attr] = value
            return self.model(u)
        finally:
            for table, attr, old in reversed(saved):
                table[attr] = old

    def _parameter_slots(self) -> dict[str, tuple[dict, str]]:
        if self._slots is None:
            self._slots = {}
            for name, _ in self.model.named_parameters(remove_duplicate=False):
                owner_name, _, attr = name.rpartition(".")
                self._slots[name] = (self.model.get_submodule(owner_name)._parameters, attr)
        return self._slots

    def _tensors_of(self, p: Any) -> dict[str, torch.Tensor]:
        """``as_dict(p)``; for a plain tensor ``p``, the same views again while p and the grad mode are unchanged."""
        if not isinstance(p, torch.Tensor) or torch._C._functorch.is_functorch_wrapped_tensor(p):
            return self.as_dict(p)
        key = (p, torch.is_grad_enabled(), p.requires_grad, p._version)
        cached = self._views
        if cached is None or cached[0] is not p or cached[1:4] != key[1:]:
            cached = self._views = (*key, self.as_dict(p))
        return cached[4]
