"""Quadrature rules on a reference interval: Gauss-Kronrod 7-15 (QUADPACK's qk15) and Gauss-Legendre."""

from __future__ import annotations

import numpy as np

from ..checks import check_int

__all__ = ["kronrod15_rule", "gauss_legendre"]


# Gauss-Kronrod 7-15 nodes on [-1, 1] (non-negative half) and weights (QUADPACK's qk15).
_XGK = [0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
        0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
        0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
        0.207784955007898467600689403773245, 0.0]


_WGK = [0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
        0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
        0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
        0.204432940075298892414161999234649, 0.209482141084727828012999174891714]


_WG = [0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
       0.381830050505118944950369775488975, 0.417959183673469387755102040816327]


def kronrod15_rule() -> tuple[list[float], list[float], list[float]]:
    """Nodes on [-1, 1], Kronrod-15 weights and embedded Gauss-7 weights (0 off the Gauss nodes).

    Returns:
        ``(nodes, kronrod_weights, gauss_weights)``, 15 nodes in increasing order and each rule's weight per node.
    """
    nodes = [-x for x in _XGK[:-1]] + [0.0] + _XGK[:-1][::-1]
    wk = _WGK[:-1] + [_WGK[-1]] + _WGK[:-1][::-1]
    g = [0.0, _WG[0], 0.0, _WG[1], 0.0, _WG[2], 0.0]
    wg = g + [_WG[3]] + g[::-1]
    return nodes, wk, wg


def gauss_legendre(n: int) -> tuple[list[float], list[float]]:
    """n Gauss-Legendre nodes as fractions of [0, 1] and weights summing to 1.

    Args:
        n: the number of nodes, a positive integer.

    Returns:
        ``(fractions, weights)``, two lists of n floats, the fractions in increasing order.
    """
    n = check_int("n", n, minimum=1, hint="the number of Gauss-Legendre nodes, e.g. 4")
    x, w = np.polynomial.legendre.leggauss(n)
    return ((x + 1) / 2).tolist(), (w / 2).tolist()
