"""A small 1-D U-Net for waveforms (B, C, L): the image U-Net's layout with Conv1d.

Shape of the network for channels=(32, 64, 128) at length 1024:
    conv_in 1024x32 -> down: 1024x32, 512x64, 256x128 -> middle 256x128
    -> up: 256x128, 512x64, 1024x32 (each level first concatenates the skip saved by its twin
    on the way down) -> conv_out 1024xC
Every residual block receives the timestep embedding (Ho et al. 2020, appendix B); the audio
diffusion models of Kong et al. (2021, DiffWave) and Chen et al. (2021, WaveGrad) work on raw
waveforms in the same way, with larger networks.

Introduced in: notebooks/13_beyond_images.ipynb
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .embeddings import TimeMLP, batch_timesteps


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(groups, channels), channels)


class ResBlock1d(nn.Module):
    """GroupNorm-SiLU-conv twice, with the time embedding added in between, plus a skip path."""

    def __init__(self, in_ch: int, out_ch: int, time_dim: int, groups: int, kernel_size: int):
        super().__init__()
        pad = kernel_size // 2
        self.norm1 = _norm(in_ch, groups)
        self.conv1 = nn.Conv1d(in_ch, out_ch, kernel_size, padding=pad)
        self.time = nn.Linear(time_dim, out_ch)
        self.norm2 = _norm(out_ch, groups)
        self.conv2 = nn.Conv1d(out_ch, out_ch, kernel_size, padding=pad)
        self.skip = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, out, L)
        h = h + self.time(F.silu(emb))[:, :, None]  # add the timestep, per channel
        return self.conv2(F.silu(self.norm2(h))) + self.skip(x)


class UNet1d(nn.Module):
    """A small 1-D U-Net noise predictor: model(xt (B, C, L), t, cond=None) -> (B, C, L).

    Args:
        in_channels: 1 for a mono waveform.
        length: samples per waveform; must be divisible by 2 ** (len(channels) - 1).
        channels: feature channels per resolution level, from full resolution down; each level
            halves the length with a strided convolution.
        time_dim: size of the timestep embedding (default 4 * channels[0], as in `UNet`).
        kernel_size: width of every convolution (odd).
        groups: GroupNorm groups.
    `t` is an integer timestep, a scalar or (B,). The output convolution starts at zero, so an
    untrained model predicts eps = 0.
    Introduced in: notebooks/13_beyond_images.ipynb
    """

    def __init__(
        self,
        in_channels: int = 1,
        *,
        length: int = 1024,
        channels: tuple[int, ...] = (32, 64, 128),
        time_dim: int | None = None,
        kernel_size: int = 5,
        groups: int = 8,
    ):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) < 1 or in_channels < 1:
            raise ValueError(f"in_channels and channels must be positive, got {channels}")
        if length % 2 ** (len(channels) - 1):
            raise ValueError(
                f"length {length} must be divisible by 2**{len(channels) - 1} for "
                f"{len(channels)} levels; use fewer levels or pad the waveforms"
            )
        if kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd (same-length convolutions), got {kernel_size}"
            )
        time_dim = time_dim or 4 * channels[0]
        self.config = dict(
            in_channels=in_channels,
            length=length,
            channels=channels,
            time_dim=time_dim,
            kernel_size=kernel_size,
            groups=groups,
        )
        self.input_shape = (in_channels, length)  # samplers draw x_T as randn(n, *input_shape)
        self.time_mlp = TimeMLP(channels[0], time_dim)
        self.conv_in = nn.Conv1d(in_channels, channels[0], kernel_size, padding=kernel_size // 2)

        def block(i: int, o: int) -> ResBlock1d:
            return ResBlock1d(i, o, time_dim, groups, kernel_size)

        # down path: a residual block per level, remembered for the skip, then halve the length
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        ch = channels[0]
        for level, out_ch in enumerate(channels):
            self.down.append(block(ch, out_ch))
            ch = out_ch
            last = level == len(channels) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv1d(ch, ch, 4, 2, padding=1))
        self.mid = block(ch, ch)
        # up path: concatenate the skip of the same level, a residual block, then upsample
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(len(channels))):
            out_ch = channels[level]
            self.up.append(block(ch + out_ch, out_ch))
            ch = out_ch
            if level == 0:
                self.upsample.append(nn.Identity())
            else:
                ch = channels[level - 1]
                self.upsample.append(nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv1d(out_ch, ch, kernel_size, padding=kernel_size // 2),
                ))  # fmt: skip
        self.norm_out = _norm(ch, groups)
        self.conv_out = nn.Conv1d(ch, in_channels, kernel_size, padding=kernel_size // 2)
        nn.init.zeros_(self.conv_out.weight)  # start by predicting 0: a calm first step
        nn.init.zeros_(self.conv_out.bias)

    def forward(
        self, xt: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        if xt.ndim != 3 or tuple(xt.shape[1:]) != self.input_shape:
            C, L = self.input_shape
            raise ValueError(f"expected xt of shape (B, {C}, {L}), got {tuple(xt.shape)}")
        if cond is not None:
            raise ValueError("UNet1d is unconditional: call it with cond=None")
        t = batch_timesteps(t, xt)  # (B,)
        emb = self.time_mlp(t).to(xt.dtype)  # (B, time_dim)
        h = self.conv_in(xt)  # (B, C0, L)
        skips = []
        for block, down in zip(self.down, self.downsample):
            h = block(h, emb)
            skips.append(h)  # the skip connection of this level
            h = down(h)  # halve L (not at the lowest level)
        h = self.mid(h, emb)
        for block, up in zip(self.up, self.upsample):
            h = block(torch.cat([h, skips.pop()], dim=1), emb)  # (B, 2 C, L) in
            h = up(h)  # double L (not at the top level)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, C, L)

    def num_parameters(self) -> int:
        """Number of parameters, to compare model sizes."""
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())
