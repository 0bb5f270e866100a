"""A denoiser for point clouds: sets of points, whose order means nothing.

A point cloud (B, N, D) is a set, so a denoiser must be permutation equivariant: shuffling the
input points shuffles the predicted noise the same way. A per-point MLP has that property but
sees one point at a time; DeepSets (Zaheer et al. 2017, Theorem 7) adds a set-level feature,
here the mean over the points, fed back to every point, so each point knows the whole shape.
Point-cloud diffusion in this spirit: Luo & Hu (2021), Zhou et al. (2021, PVD).

Introduced in: notebooks/13_beyond_images.ipynb
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .embeddings import TimeMLP, batch_timesteps


class SetBlock(nn.Module):
    """One residual DeepSets layer: each point reads itself, the set's mean and the timestep."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.point = nn.Linear(width, width)
        self.pooled = nn.Linear(width, width)
        self.out = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        u = self.norm(h)  # (B, N, W)
        pooled = u.mean(dim=1, keepdim=True)  # (B, 1, W): the same summary for every point
        u = F.silu(self.point(u) + self.pooled(pooled) + emb[:, None])  # (B, N, W)
        return h + self.out(u)


class PointDenoiser(nn.Module):
    """A permutation-equivariant noise predictor for point clouds (DeepSets style).

    model(xt (B, num_points, dim), t, cond=None) -> (B, num_points, dim). Each point is lifted to
    `width` features, then `depth` residual `SetBlock`s mix in the mean over the points and the
    timestep embedding, and a zero-initialised linear layer maps back to `dim` coordinates.
    Nothing depends on the order of the points, and the same weights accept any number of
    points; `num_points` only fixes `input_shape`, which samplers use to draw x_T.
    Introduced in: notebooks/13_beyond_images.ipynb
    """

    def __init__(self, num_points: int = 64, dim: int = 2, *, width: int = 128, depth: int = 4):
        super().__init__()
        for name, value in dict(num_points=num_points, dim=dim, width=width, depth=depth).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.config = dict(num_points=num_points, dim=dim, width=width, depth=depth)
        self.input_shape = (num_points, dim)
        self.time_mlp = TimeMLP(width, width)
        self.point_in = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(SetBlock(width) for _ in range(depth))
        self.norm_out = nn.LayerNorm(width)
        self.point_out = nn.Linear(width, dim)
        nn.init.zeros_(self.point_out.weight)  # start by predicting 0: a calm first step
        nn.init.zeros_(self.point_out.bias)

    def forward(
        self, xt: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        dim = self.config["dim"]
        if xt.ndim != 3 or xt.shape[2] != dim or xt.shape[1] == 0:
            raise ValueError(
                f"expected xt of shape (B, num_points, {dim}), e.g. (B, "
                f"{self.config['num_points']}, {dim}), got {tuple(xt.shape)}"
            )
        if cond is not None:
            raise ValueError("PointDenoiser is unconditional: call it with cond=None")
        t = batch_timesteps(t, xt)  # (B,)
        emb = self.time_mlp(t).to(xt.dtype)  # (B, W)
        h = self.point_in(xt)  # (B, N, W): every point on its own
        for block in self.blocks:
            h = block(h, emb)  # (B, N, W): every point, knowing the set
        return self.point_out(F.silu(self.norm_out(h)))  # (B, N, dim)

    def num_parameters(self) -> int:
        """Number of parameters, to compare model sizes."""
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())
