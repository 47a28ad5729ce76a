"""Vector-Jacobian products lambda^T df/du and lambda^T df/dp, the three ways ``autojacvec`` names."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..checks import check_vjp
from .problem import RHS

__all__ = ["make_vjp", "VJPFn"]

VJPFn = Callable[..., tuple[torch.Tensor | None, list]]


def _zeros_for_none(grads: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, like)]


def make_vjp(kind: str, rhs: RHS) -> VJPFn:
    """Return ``vjp(t, u, lam, leaves, wrt_state, wrt_params) -> (lam^T df/du or None, [lam^T df/dp_i])``.

    Args:
        kind: ``"autograd"``, ``"func"`` or ``"jacobian"``: how the products are computed.
        rhs: f as ``rhs(t, u, leaves)``.

    Returns:
        The product function; ``wrt_state=False`` gives ``None`` for the state, ``wrt_params=False`` ``[]``.

    Raises:
        InputError: an unknown ``kind``.
    """
    kind = check_vjp(kind)

    detached: list = [None, None]  # the latest leaves and their differentiable stand-ins, made once per leaves

    def vjp(t, u, lam, leaves, wrt_state=True, wrt_params=True):
        if kind == "autograd":  # a fresh graph per call, like Zygote's pullback
            with torch.enable_grad():
                u_in = u.detach().requires_grad_(wrt_state)
                if wrt_params:
                    if detached[0] is not leaves:
                        detached[:] = leaves, tuple(p if p.is_leaf and p.requires_grad else p.detach().requires_grad_()
                                                    for p in leaves)
                    ps = detached[1]
                else:
                    ps = tuple(leaves)
                inputs = ((u_in,) if wrt_state else ()) + (ps if wrt_params else ())
                grads = list(torch.autograd.grad(rhs(t, u_in, ps), inputs, lam, allow_unused=True)) if inputs else []
            grads = _zeros_for_none(grads, inputs)
        else:
            fixed = [p.detach() for p in leaves]
            n_state = 1 if wrt_state else 0

            def f(*args):
                u_ = args[0] if wrt_state else u
                ps = tuple(args[n_state:]) if wrt_params else tuple(fixed)
                return rhs(t, u_, ps)

            primals = ([u] if wrt_state else []) + (fixed if wrt_params else [])
            if not primals:
                return None, []
            if kind == "func":  # a functional transform of f(u, p)
                grads = list(torch.func.vjp(f, *primals)[1](lam))
            else:  # materialise the Jacobian, then contract: O(n) times the work of a VJP
                jac = torch.func.jacrev(f, argnums=tuple(range(len(primals))))(*primals)
                grads = [torch.tensordot(lam, j, dims=lam.ndim) for j in jac]
        a_u = grads[0] if wrt_state else None
        return a_u, grads[1:] if wrt_state else grads

    return vjp
