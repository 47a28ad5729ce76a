"""Small test problems shared by the test files."""

import torch
from torch import nn


class Linear(nn.Module):
    """du/dt = A u, with A a trainable parameter (its exact gradient comes from the matrix exponential)."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a.clone())

    def forward(self, t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return u @ self.a.T


def linear_problem() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A 4x4 matrix A, a batch of three initial states and the weights of a linear loss (float64, seed 0)."""
    g = torch.Generator().manual_seed(0)
    a = 0.6 * torch.randn(4, 4, generator=g, dtype=torch.float64) - 0.3 * torch.eye(4, dtype=torch.float64)
    u0 = torch.randn(3, 4, generator=g, dtype=torch.float64)  # a batch of three initial states
    w = torch.randn(3, 4, generator=g, dtype=torch.float64)
    return a, u0, w
