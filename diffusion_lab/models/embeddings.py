"""Timestep embeddings: how a network is told which noise level it is looking at.

Introduced in: notebooks/04_reverse_process.ipynb
"""

from __future__ import annotations

import math

import torch
from torch import nn


def batch_timesteps(t: torch.Tensor | int, xt: torch.Tensor) -> torch.Tensor:
    """`t` as a (B,) tensor on xt's device: a scalar or a single (1,) timestep (the article's
    `torch.randint(0, T, (1,))`) is shared by the batch of B = len(xt)."""
    t = torch.as_tensor(t, device=xt.device)
    if t.shape in ((), (1,)):
        t = t.reshape(()).expand(len(xt))  # one t shared by the whole batch
    if t.shape != (len(xt),):
        raise ValueError(f"t must be a scalar, (1,) or (B,) = ({len(xt)},), got {tuple(t.shape)}")
    return t


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


class LabelEmbedding(nn.Module):
    """A learned vector per class label, plus one reserved for "no label" (the null label).

    labels (B,) long in [0, num_classes] -> (B, dim); index `num_classes` is the null label
    that classifier-free guidance trains with (Ho & Salimans 2022) and samples against.
    Introduced in: notebooks/08_conditioning.ipynb
    """

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes + 1, dim)

    @property
    def null_label(self) -> int:
        return self.num_classes

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        if labels.dtype not in (torch.int64, torch.int32) or labels.ndim != 1:
            raise ValueError(
                "labels must be a 1-D integer tensor (B,), "
                f"got {labels.dtype} {tuple(labels.shape)}"
            )
        if len(labels) and (labels.min() < 0 or labels.max() > self.num_classes):
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}] ({self.num_classes} = no label), "
                f"got values from {int(labels.min())} to {int(labels.max())}"
            )
        return self.embed(labels)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, null_label={self.null_label}"
