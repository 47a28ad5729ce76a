"""What older PyTorch releases name differently: one name here for each, used by the rest of the package."""

from __future__ import annotations

import getpass
import os
import tempfile
from typing import Any

import torch
from torch.utils import _pytree as pytree

__all__ = ["inductor_default_cache_dir", "is_compiling", "is_leaf_spec"]

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


def inductor_default_cache_dir() -> str:
    """The folder torch.compile keeps its kernel cache in when ``TORCHINDUCTOR_CACHE_DIR`` is unset.

    PyTorch names it in ``torch._inductor.runtime.cache_dir_utils``; releases without that module (2.1) use
    ``<temp folder>/torchinductor_<user>``, written inline in ``torch._inductor.codecache.cache_dir``.
    """
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    except ImportError:
        return os.path.join(tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}")
    return default_cache_dir()
