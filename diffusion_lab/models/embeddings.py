"""Timestep embeddings: how a network is told which noise level it is looking at.

Introduced in: notebooks/04_reverse_process.ipynb
"""

from __future__ import annotations

import math

import torch
from torch import nn


class SinusoidalEmbedding(nn.Module):
    """Sinusoidal features of t (Vaswani et al. 2017, sec. 3.5; used by Ho et al. 2020).

    t (B,) -> (B, dim): sin and cos of t at `dim / 2` frequencies from 1 to 1/max_period.
    """

    def __init__(self, dim: int, max_period: float = 10_000.0):
        super().__init__()
        if dim % 2:
            raise ValueError(f"dim must be even, got {dim}")
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.float()[:, None] * self.freqs[None]  # (B, dim / 2)
        return torch.cat([angles.sin(), angles.cos()], dim=1)  # (B, dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class TimeMLP(nn.Module):
    """Sinusoidal features followed by a two-layer MLP: t (B,) -> (B, out_dim)."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.embed = SinusoidalEmbedding(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.embed(t))
