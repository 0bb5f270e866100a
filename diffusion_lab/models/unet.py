"""A small U-Net for 28x28 grey digits (and 32x32 RGB), sized for a laptop CPU.

Shape of the network for channels=(32, 64, 128) at 28x28:
    conv_in 28x28x32 -> down: 28x28x32, 14x14x64, 7x7x128 -> middle 7x7x128 (+ attention)
    -> up: 7x7x128, 14x14x64, 28x28x32 (each level first concatenates the skip saved by its
    twin on the way down) -> conv_out 28x28xC
Every residual block receives the timestep embedding (Ho et al. 2020, appendix B).

Introduced in: notebooks/04_reverse_process.ipynb
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .embeddings import TimeMLP


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(groups, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the time embedding added in between, plus a skip path."""

    def __init__(self, in_ch: int, out_ch: int, time_dim: int, groups: int = 8):
        super().__init__()
        self.norm1, self.conv1 = _norm(in_ch, groups), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time = nn.Linear(time_dim, out_ch)
        self.norm2, self.conv2 = _norm(out_ch, groups), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, out, H, W)
        h = h + self.time(F.silu(emb))[:, :, None, None]  # add the timestep, per channel
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention over the pixels of a (small) feature map, with a residual."""

    def __init__(self, channels: int, num_heads: int = 4, groups: int = 8):
        super().__init__()
        self.norm = _norm(channels, groups)
        self.attn = nn.MultiheadAttention(channels, num_heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        h = self.norm(x).flatten(2).transpose(1, 2)  # (B, H*W, C): one token per pixel
        h, _ = self.attn(h, h, h, need_weights=False)
        return x + h.transpose(1, 2).reshape(B, C, H, W)


class UNet(nn.Module):
    """A small U-Net noise predictor: model(xt, t, cond=None) -> tensor of xt's shape.

    Args:
        in_channels: 1 for grey digits, 3 for RGB.
        image_size: side of the square input; must be divisible by 2 ** (len(channels) - 1).
        channels: feature channels per resolution level, from full resolution down.
        num_res_blocks: residual blocks per level, on the way down and again on the way up.
        attention: add self-attention in the middle, at the lowest resolution.
        groups: GroupNorm groups.
    `cond` is accepted for the shared contract; this unconditional model refuses a non-None cond.
    Introduced in: notebooks/04_reverse_process.ipynb
    """

    def __init__(
        self,
        in_channels: int = 1,
        *,
        image_size: int = 28,
        channels: tuple[int, ...] = (32, 64, 128),
        num_res_blocks: int = 1,
        attention: bool = True,
        groups: int = 8,
    ):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if image_size % 2 ** (len(channels) - 1):
            raise ValueError(
                f"image_size {image_size} must be divisible by 2**{len(channels) - 1} for "
                f"{len(channels)} levels; use fewer levels or pad the images"
            )
        self.config = dict(
            in_channels=in_channels,
            image_size=image_size,
            channels=channels,
            num_res_blocks=num_res_blocks,
            attention=attention,
            groups=groups,
        )
        self.input_shape = (in_channels, image_size, image_size)
        time_dim = 4 * channels[0]
        self.time_mlp = TimeMLP(channels[0], time_dim)
        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)

        # down path: at each level, residual blocks, then remember the result for the skip
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        ch = channels[0]
        for level, out_ch in enumerate(channels):
            self.down.append(nn.ModuleList(
                ResBlock(ch if i == 0 else out_ch, out_ch, time_dim, groups)
                for i in range(num_res_blocks)
            ))  # fmt: skip
            ch = out_ch
            last = level == len(channels) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(ch, ch, 3, 2, padding=1))

        # middle, at the lowest resolution: where attention is affordable
        self.mid1 = ResBlock(ch, ch, time_dim, groups)
        self.mid_attn = SelfAttention(ch, groups=groups) if attention else nn.Identity()
        self.mid2 = ResBlock(ch, ch, time_dim, groups)

        # up path: concatenate the skip of the same level, residual blocks, then upsample
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for level, out_ch in reversed(list(enumerate(channels))):
            self.up.append(nn.ModuleList(
                ResBlock(ch + out_ch if i == 0 else out_ch, out_ch, time_dim, groups)
                for i in range(num_res_blocks)
            ))  # fmt: skip
            ch = out_ch
            self.upsample.append(
                nn.Identity()
                if level == 0
                else nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(ch, channels[level - 1], 3, padding=1),
                )
            )
            ch = channels[level - 1] if level else ch
        self.norm_out = _norm(ch, groups)
        self.conv_out = nn.Conv2d(ch, in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # start by predicting 0: a calm first step
        nn.init.zeros_(self.conv_out.bias)

    def forward(
        self, xt: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        if cond is not None:
            raise ValueError("this UNet is unconditional: call it with cond=None")
        if xt.ndim != 4 or tuple(xt.shape[1:]) != self.input_shape:
            raise ValueError(
                f"expected xt of shape (B, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(xt.shape)}"
            )
        t = torch.as_tensor(t, device=xt.device)
        if t.ndim == 0:
            t = t.expand(len(xt))  # a scalar t is shared by the whole batch
        emb = self.time_mlp(t)  # (B, time_dim)
        h = self.conv_in(xt)  # (B, C0, H, W)
        skips = []
        for blocks, down in zip(self.down, self.downsample):
            for block in blocks:
                h = block(h, emb)
            skips.append(h)  # the skip connection of this level
            h = down(h)  # halve H and W (not at the lowest level)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for blocks, up in zip(self.up, self.upsample):
            h = torch.cat([h, skips.pop()], dim=1)  # (B, 2 C, H, W)
            for block in blocks:
                h = block(h, emb)
            h = up(h)  # double H and W (not at the top level)
        return self.conv_out(F.silu(self.norm_out(h)))

    def num_parameters(self) -> int:
        """Number of parameters (frozen ones too, as in a loaded pretrained model)."""
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())
