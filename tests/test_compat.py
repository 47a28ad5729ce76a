"""The names nodeutils.compat gives to what older PyTorch releases call differently."""

import pytest
import torch
from torch.utils import _pytree as pytree

from nodeutils.compat import inductor_default_cache_dir, is_compiling, is_leaf_spec


def test_is_compiling_is_false_eagerly_and_true_while_dynamo_traces():
    def f(x):
        return x + 1 if is_compiling() else x - 1

    x = torch.zeros(2)
    assert torch.equal(f(x), x - 1)
    torch._dynamo.reset()
    assert torch.equal(torch.compile(f, backend="eager", fullgraph=True)(x), x + 1)
    torch._dynamo.reset()


def test_is_compiling_is_pytorchs_own_function():
    expected = getattr(torch.compiler, "is_compiling", None) or torch._dynamo.is_compiling
    assert is_compiling is expected


@pytest.mark.parametrize("tree, leaf", [
    (torch.ones(3), True),
    ({"weight": torch.ones(3)}, False),
    ((torch.ones(3),), False),
    ([torch.ones(2), torch.ones(3)], False),
    ({}, False),
])
def test_is_leaf_spec_tells_one_tensor_from_a_container(tree, leaf):
    assert is_leaf_spec(pytree.tree_flatten(tree)[1]) is leaf


def test_inductor_default_cache_dir_is_where_torch_compile_caches_without_the_variable(monkeypatch):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    except ImportError:  # PyTorch 2.1: cache_dir() creates and returns the default folder
        from torch._inductor.codecache import cache_dir

        expected = cache_dir.__wrapped__()
    else:
        expected = default_cache_dir()
    assert inductor_default_cache_dir() == expected
