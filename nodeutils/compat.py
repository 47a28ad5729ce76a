"""What older PyTorch releases name differently: one name here for each, used by the rest of the package."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils import _pytree as pytree

__all__ = ["is_compiling", "is_leaf_spec"]

# True while TorchDynamo traces the caller. PyTorch 2.3 added torch.compiler.is_compiling; before, the same function
# was torch._dynamo.is_compiling. The function itself is bound (not wrapped), so Dynamo still treats the call as the
# constant it knows.
is_compiling = getattr(torch.compiler, "is_compiling", None) or torch._dynamo.is_compiling


def is_leaf_spec(spec: Any) -> bool:
    """True when a pytree spec (from ``tree_flatten``) describes a single leaf, not a container.

    PyTorch 2.1 has no ``TreeSpec.is_leaf()``; there a leaf's spec is a ``LeafSpec``.
    """
    is_leaf = getattr(spec, "is_leaf", None)
    return is_leaf() if is_leaf is not None else isinstance(spec, pytree.LeafSpec)
