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

from .embeddings import LabelEmbedding, TimeMLP, batch_timesteps


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(groups, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the time embedding added in between, plus a skip path;
    then, in a text-conditional U-Net (`context_dim`), cross-attention to the prompt."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        time_dim: int,
        groups: int = 8,
        context_dim: int | None = None,
        out_channels: int | None = None,
    ):
        super().__init__()
        self.norm1, self.conv1 = _norm(in_ch, groups), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time = nn.Linear(time_dim, out_ch)
        self.norm2, self.conv2 = _norm(out_ch, groups), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()
        self.cross = (
            None if context_dim is None else CrossAttention(out_ch, context_dim, groups=groups)
        )

    def forward(
        self, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, out, H, W)
        h = h + self.time(F.silu(emb))[:, :, None, None]  # add the timestep, per channel
        h = self.conv2(F.silu(self.norm2(h))) + self.skip(x)
        return h if self.cross is None else self.cross(h, context)


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


class CrossAttention(nn.Module):
    """Pixels attend to the prompt's token features (Rombach et al. 2022, eq. 3), with a residual.

    Queries come from the feature map (B, H*W, C); keys and values from `context` (B, L, D).
    The output projection starts at zero, so a new block first leaves the U-Net unchanged.
    Introduced in: notebooks/09_text_to_image.ipynb
    """

    def __init__(self, channels: int, context_dim: int, num_heads: int = 4, groups: int = 8):
        super().__init__()
        self.norm = _norm(channels, groups)
        self.attn = nn.MultiheadAttention(
            channels, num_heads, kdim=context_dim, vdim=context_dim, batch_first=True
        )
        nn.init.zeros_(self.attn.out_proj.weight)
        nn.init.zeros_(self.attn.out_proj.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q = self.norm(x).flatten(2).transpose(1, 2)  # (B, H*W, C): one query per pixel
        h, _ = self.attn(q, context, context, need_weights=False)  # (B, H*W, C)
        return x + h.transpose(1, 2).reshape(B, C, H, W)


class UNet(nn.Module):
    """A small U-Net noise predictor: model(xt, t, cond=None) -> tensor of xt's shape.

    Args:
        in_channels: 1 for grey digits, 3 for RGB.
        out_channels: channels of the output; defaults to in_channels. Set it when the input
            carries extra condition channels (super-resolution: notebooks/10_applications).
        image_size: side of the square input; must be divisible by 2 ** (len(channels) - 1).
        channels: feature channels per resolution level, from full resolution down.
        num_res_blocks: residual blocks per level, on the way down and again on the way up.
        attention: add self-attention in the middle, at the lowest resolution.
        groups: GroupNorm groups.
        num_classes: class-conditional: `cond` is a label (B,) in [0, num_classes], where
            num_classes itself means "no label"; its embedding is added to the time embedding.
        context_dim: text-conditional: `cond` is token features (B, L, context_dim), which
            every residual block below full resolution (and the middle) attends to.
    Without either, the model is unconditional and refuses a non-None cond.
    Introduced in: notebooks/04_reverse_process.ipynb (conditioning: 08 and 09)
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
        num_classes: int | None = None,
        context_dim: int | None = None,
        out_channels: int | None = None,
    ):
        super().__init__()
        if num_classes is not None and context_dim is not None:
            raise ValueError("choose one kind of condition: num_classes or context_dim, not both")
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
        if num_classes is not None:
            self.config["num_classes"] = num_classes
        if context_dim is not None:
            self.config["context_dim"] = context_dim
        if out_channels is not None:
            self.config["out_channels"] = out_channels
        self.input_shape = (in_channels, image_size, image_size)
        time_dim = 4 * channels[0]
        self.time_mlp = TimeMLP(channels[0], time_dim)
        self.label_emb = None if num_classes is None else LabelEmbedding(num_classes, time_dim)
        self.context_dim = context_dim
        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)

        # down path: at each level, residual blocks, then remember the result for the skip
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        ch = channels[0]
        for level, out_ch in enumerate(channels):
            ctx = context_dim if level > 0 else None  # no cross-attention at full resolution
            self.down.append(nn.ModuleList(
                ResBlock(ch if i == 0 else out_ch, out_ch, time_dim, groups, ctx)
                for i in range(num_res_blocks)
            ))  # fmt: skip
            ch = out_ch
            last = level == len(channels) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(ch, ch, 3, 2, padding=1))

        # middle, at the lowest resolution: where attention is affordable
        self.mid1 = ResBlock(ch, ch, time_dim, groups, context_dim)
        self.mid_attn = SelfAttention(ch, groups=groups) if attention else nn.Identity()
        self.mid2 = ResBlock(ch, ch, time_dim, groups, context_dim)

        # up path: concatenate the skip of the same level, residual blocks, then upsample
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for level, out_ch in reversed(list(enumerate(channels))):
            ctx = context_dim if level > 0 else None
            self.up.append(nn.ModuleList(
                ResBlock(ch + out_ch if i == 0 else out_ch, out_ch, time_dim, groups, ctx)
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
        self.conv_out = nn.Conv2d(ch, out_channels or in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # start by predicting 0: a calm first step
        nn.init.zeros_(self.conv_out.bias)

    def forward(
        self, xt: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        if xt.ndim != 4 or tuple(xt.shape[1:]) != self.input_shape:
            raise ValueError(
                f"expected xt of shape (B, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(xt.shape)}"
            )
        t = batch_timesteps(t, xt)  # (B,): a scalar t is shared by the whole batch
        emb = self.time_mlp(t)  # (B, time_dim)
        context = self._check_cond(cond, len(xt))
        if self.label_emb is not None:
            emb = emb + self.label_emb(cond)  # the class enters like the timestep does
        h = self.conv_in(xt)  # (B, C0, H, W)
        skips = []
        for blocks, down in zip(self.down, self.downsample):
            for block in blocks:
                h = block(h, emb, context)
            skips.append(h)  # the skip connection of this level
            h = down(h)  # halve H and W (not at the lowest level)
        h = self.mid2(self.mid_attn(self.mid1(h, emb, context)), emb, context)
        for blocks, up in zip(self.up, self.upsample):
            h = torch.cat([h, skips.pop()], dim=1)  # (B, 2 C, H, W)
            for block in blocks:
                h = block(h, emb, context)
            h = up(h)  # double H and W (not at the top level)
        return self.conv_out(F.silu(self.norm_out(h)))

    def _check_cond(self, cond: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if self.label_emb is None and self.context_dim is None:
            if cond is not None:
                raise ValueError("this UNet is unconditional: call it with cond=None")
            return None
        if cond is None:
            raise ValueError(
                "this UNet is conditional: pass cond (use model.null_cond(...) for no condition)"
            )
        if len(cond) != batch:
            raise ValueError(f"cond has {len(cond)} rows for a batch of {batch}")
        if self.context_dim is None:
            return None  # labels: checked by the LabelEmbedding
        if cond.ndim != 3 or cond.shape[2] != self.context_dim or not cond.is_floating_point():
            raise ValueError(
                f"cond must be float token features (B, L, {self.context_dim}), "
                f"got {cond.dtype} {tuple(cond.shape)}"
            )
        return cond

    def null_cond(self, cond: torch.Tensor) -> torch.Tensor:
        """The "no label" input shaped like `cond` (class-conditional models only)."""
        if self.label_emb is None:
            raise ValueError("null_cond() is for a class-conditional UNet (num_classes=...)")
        return torch.full_like(cond, self.label_emb.null_label)

    def num_parameters(self) -> int:
        """Number of parameters (frozen ones too, as in a loaded pretrained model)."""
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())


class TextConditionedUNet(nn.Module):
    """A U-Net that reads a prompt, as in Stable Diffusion: model(xt, t, tokens) -> like xt.

    The text encoder (frozen: trained beforehand, contrastively) turns tokens (B, L) into one
    feature vector per token (B, L, D); the U-Net's cross-attention blocks read them
    (Rombach et al. 2022, sec. 3.3). `null_cond` is the empty prompt, [bos, pad, pad, ...],
    which classifier-free guidance trains with and samples against.
    Introduced in: notebooks/09_text_to_image.ipynb
    """

    def __init__(self, unet: UNet, text_encoder: nn.Module, *, bos_token: int = 1):
        super().__init__()
        if unet.context_dim is None:
            raise ValueError("the UNet needs cross-attention: build it with context_dim=...")
        text_dim = text_encoder.config["dim"]
        if text_dim != unet.context_dim:
            raise ValueError(
                f"the text encoder gives {text_dim}-d token features but the UNet's "
                f"cross-attention expects context_dim={unet.context_dim}"
            )
        self.unet, self.text_encoder, self.bos_token = unet, text_encoder, bos_token
        self.text_encoder.requires_grad_(False).eval()
        self.config = {"unet": dict(unet.config), "text_encoder": dict(text_encoder.config)}
        self.input_shape = unet.input_shape

    def train(self, mode: bool = True) -> TextConditionedUNet:
        super().train(mode)
        self.text_encoder.eval()  # frozen: always in eval mode
        return self

    def forward(self, xt: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor) -> torch.Tensor:
        if cond is None or cond.dtype != torch.long or cond.ndim != 2:
            raise ValueError(
                "cond must be prompt tokens (B, L) of dtype long, from Tokenizer.encode(...)"
            )
        with torch.no_grad():
            context = self.text_encoder(cond)  # (B, L, D): one feature vector per token
        return self.unet(xt, t, context)

    def null_cond(self, cond: torch.Tensor) -> torch.Tensor:
        """The empty prompt's tokens, shaped like `cond`: [bos, pad, pad, ...]."""
        null = torch.zeros_like(cond)
        null[:, 0] = self.bos_token
        return null

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
