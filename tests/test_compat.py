"""The names nodeutils.compat gives to what older PyTorch releases call differently."""

import torch

from nodeutils.compat import is_compiling


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
