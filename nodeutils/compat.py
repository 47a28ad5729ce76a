"""What older PyTorch releases name differently: one name here for each, used by the rest of the package."""

from __future__ import annotations

import torch

__all__ = ["is_compiling"]

# True while TorchDynamo traces the caller. PyTorch 2.3 added torch.compiler.is_compiling; before, the same function
# was torch._dynamo.is_compiling. The function itself is bound (not wrapped), so Dynamo still treats the call as the
# constant it knows.
is_compiling = getattr(torch.compiler, "is_compiling", None) or torch._dynamo.is_compiling
