"""Latent diffusion, the idea behind Stable Diffusion: diffuse in a small latent space.

Rombach et al. (2022) split image generation in two. First an autoencoder learns to squeeze an
image into a small latent z and back (perceptual compression); then a diffusion model learns the
distribution of the latents (semantic compression). The diffusion loss is unchanged, it only
sees z instead of x (Rombach et al. 2022, eq. 2):

    L_LDM = E_{z = scale * encode(x), eps ~ N(0, I), t} || eps - eps_theta(z_t, t) ||^2

Here: 28x28 grey digits -> latents 4x7x7 (196 numbers for 784 pixels: 4x fewer), with
    encoder: 28x28x32 -> 14x14x64 -> 7x7x4    decoder: the mirror image, tanh at the end.

Stable Diffusion's autoencoder is a KL-regularised VAE (Kingma & Welling 2014): the encoder
outputs a mean and a variance, z is sampled from them, and a KL term with a tiny weight (1e-6)
keeps the latents near N(0, I). The latents still come out with a std of about 5.5, so SD
multiplies them by a fixed "scale factor" 0.18215 = 1 / std, measured once on training images,
so that the diffusion model sees data of unit variance, like the noise it is mixed with. We keep
the autoencoder plain (deterministic) and keep the two ideas that matter for diffusion: a small
`latent_penalty` on mean(z**2) (the KL's pull towards 0, see `autoencoder_loss`) and the scale
factor (`latent_scale`).

Introduced in: notebooks/11_latent_diffusion.ipynb
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import eval_mode, optimizer_step, warmup_cosine_lr
from .unet import UNet

__all__ = [
    "AutoencoderStep",
    "Autoencoder",
    "LatentDiffusion",
    "autoencoder_loss",
    "encode_dataset",
    "latent_denoiser",
    "latent_scale",
    "reconstruction_psnr",
    "train_autoencoder",
]


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class ResidualConv(nn.Module):
    """x + conv(SiLU(GroupNorm(x))): one 3x3 convolution on a residual path (no time input)."""

    def __init__(self, channels: int, groups: int = 8):
        super().__init__()
        self.norm, self.conv = _norm(channels, groups), nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(F.silu(self.norm(x)))


class Autoencoder(nn.Module):
    """A small convolutional autoencoder: images (B, 1, 28, 28) <-> latents (B, 4, 7, 7).

    encode(x) -> z, decode(z) -> x_hat in (-1, 1) (tanh), forward(x) = decode(encode(x)).
    Each of the len(channels) levels halves the side with a stride-2 convolution, so
    image_size must be divisible by 2 ** len(channels). The autoencoder is plain (no sampling,
    no KL term); Stable Diffusion's is a KL-regularised VAE, see the module docstring.
    Introduced in: notebooks/11_latent_diffusion.ipynb
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        image_size: int = 28,
        channels: tuple[int, ...] = (32, 64),
        latent_channels: int = 4,
        groups: int = 8,
    ):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels:
            raise ValueError("channels needs at least one level, e.g. (32, 64)")
        if image_size % 2 ** len(channels):
            raise ValueError(
                f"image_size {image_size} must be divisible by 2**{len(channels)} for "
                f"{len(channels)} downsamplings; use fewer levels or pad the images"
            )
        self.config = dict(
            in_channels=in_channels,
            image_size=image_size,
            channels=channels,
            latent_channels=latent_channels,
            groups=groups,
        )
        side = image_size // 2 ** len(channels)
        self.input_shape = (in_channels, image_size, image_size)
        self.latent_shape = (latent_channels, side, side)

        # encoder: at each level a residual conv, then a stride-2 conv to the next level
        # (the last one goes straight to the latent channels)
        enc = [nn.Conv2d(in_channels, channels[0], 3, padding=1)]  # (B, C0, H, W)
        for level, ch in enumerate(channels):
            enc.append(ResidualConv(ch, groups))
            if level + 1 < len(channels):
                enc.append(nn.Conv2d(ch, channels[level + 1], 3, stride=2, padding=1))
        enc += [_norm(channels[-1], groups), nn.SiLU()]
        enc.append(nn.Conv2d(channels[-1], latent_channels, 3, stride=2, padding=1))
        self.encoder = nn.Sequential(*enc)  # (B, latent_channels, side, side)

        # decoder, the mirror image: convolve, double the side (nearest), residual conv, per level
        dec = [nn.Conv2d(latent_channels, channels[-1], 3, padding=1), nn.Upsample(scale_factor=2)]
        for level in reversed(range(len(channels))):
            dec.append(ResidualConv(channels[level], groups))
            if level > 0:
                dec.append(nn.Conv2d(channels[level], channels[level - 1], 3, padding=1))
                dec.append(nn.Upsample(scale_factor=2))
        dec += [_norm(channels[0], groups), nn.SiLU()]
        dec.append(nn.Conv2d(channels[0], in_channels, 3, padding=1))
        self.decoder = nn.Sequential(*dec)

    def _check(self, x: torch.Tensor, shape: tuple[int, ...], name: str, method: str) -> None:
        if x.ndim != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(
                f"{method} expects {name} of shape (B, {', '.join(map(str, shape))}), "
                f"got {tuple(x.shape)}"
            )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [-1, 1] -> latents (B, *latent_shape), unscaled."""
        self._check(x, self.input_shape, "images", "encode")
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (B, *latent_shape) -> images (B, C, H, W) in (-1, 1)."""
        self._check(z, self.latent_shape, "latents", "decode")
        return torch.tanh(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction decode(encode(x))."""
        return self.decode(self.encode(x))

    def num_parameters(self) -> int:
        """Number of parameters (frozen ones too)."""
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())


# ----- training -----
def autoencoder_loss(
    ae: Autoencoder, x: torch.Tensor, *, latent_penalty: float = 1e-3
) -> torch.Tensor:
    """Reconstruction MSE plus `latent_penalty` * mean(z**2): the first-stage loss of latent
    diffusion, without the perceptual and adversarial terms of Rombach et al. (2022).

    The penalty is the KL term of a VAE whose posterior variance is fixed (Kingma & Welling
    2014: KL(N(mu, I) || N(0, I)) = ||mu||^2 / 2 + const), with a small weight as in Stable
    Diffusion. The MSE alone says nothing about the size of z, so latents may drift as training
    goes on; 1e-3 pulls them gently towards 0 and costs no reconstruction quality (after 120
    steps on MNIST: latent std 0.60 instead of 0.87, the same PSNR, 24.3 dB; the penalty is
    about 2% of the loss). `latent_scale` then rescales them to unit variance either way.
    """
    z = ae.encode(x)  # (B, *latent_shape)
    loss = F.mse_loss(ae.decode(z), x)
    if latent_penalty:
        loss = loss + latent_penalty * z.pow(2).mean()
    return loss


@dataclass
class AutoencoderStep:
    """What `train_autoencoder` yields after each optimiser step."""

    step: int  # optimiser steps done so far (1 after the first)
    loss: float
    seconds: float  # wall time since this call to train_autoencoder() started


def train_autoencoder(
    ae: Autoencoder,
    data: torch.Tensor,
    *,
    num_steps: int,
    batch_size: int = 128,
    lr: float = 2e-3,
    warmup_steps: int = 20,
    latent_penalty: float = 1e-3,
    max_minutes: float | None = None,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> Iterator[AutoencoderStep]:
    """Train `ae` on images `data` (N, C, H, W) in [-1, 1] with Adam; yield after every step.

    Batches are drawn with `generator` (default: a fresh one seeded with 0) and moved to the
    model's device. Learning rate: linear warm-up over `warmup_steps`, then cosine decay to 10%
    of `lr` (utils.warmup_cosine_lr); gradients are clipped at norm 1, as in training.train.
    Reaching `max_minutes` or pressing Stop (KeyboardInterrupt) ends the loop cleanly.
    The model is left in train mode; use `eval_mode` (encode_dataset does) afterwards.
    Introduced in: notebooks/11_latent_diffusion.ipynb
    """
    from tqdm.auto import tqdm

    if data.ndim != 4 or len(data) == 0:
        raise ValueError(f"data must be images (N, C, H, W) with N > 0, got {tuple(data.shape)}")
    if num_steps < 1 or batch_size < 1:
        raise ValueError(f"need num_steps >= 1 and batch_size >= 1, got {num_steps}, {batch_size}")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    device = next(ae.parameters()).device
    ae.requires_grad_(True)  # trainable again, even after a LatentDiffusion froze it
    optimizer = torch.optim.Adam(ae.parameters(), lr=lr)
    bar = tqdm(total=num_steps, disable=not progress, desc="autoencoder")
    start, step = time.perf_counter(), 0
    ae.train()
    try:
        while step < num_steps:
            # 1. a random batch, moved to the model's device
            index = torch.randint(len(data), (batch_size,), generator=generator)
            x = data[index.to(data.device)].to(device)  # (B, C, H, W)
            # 2. reconstruct it and measure the loss
            loss = autoencoder_loss(ae, x, latent_penalty=latent_penalty)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"the loss became {loss.item()} at step {step + 1}. Try a smaller learning "
                    f"rate (lr={lr} now) and check that the images lie in [-1, 1]."
                )
            # 3. one Adam step at this step's learning rate
            lr_now = warmup_cosine_lr(step, lr=lr, warmup_steps=warmup_steps, num_steps=num_steps)
            optimizer_step(optimizer, loss, ae.parameters(), lr=lr_now)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            seconds = time.perf_counter() - start
            yield AutoencoderStep(step, loss.item(), seconds)
            if max_minutes is not None and seconds > 60 * max_minutes:
                print(f"Stopped after {max_minutes:g} minutes at step {step}.")
                break
    except KeyboardInterrupt:
        print(f"Interrupted at step {step}; the autoencoder keeps what it has learned so far.")
    finally:
        bar.close()


# ----- latents and measurements -----
@torch.no_grad()
def encode_dataset(ae: Autoencoder, data: torch.Tensor, *, batch_size: int = 500) -> torch.Tensor:
    """Encode images (N, C, H, W) in batches, in eval mode and without gradients.

    Returns unscaled latents (N, *latent_shape) on the CPU; the model's mode is restored.
    Introduced in: notebooks/11_latent_diffusion.ipynb
    """
    device = next(ae.parameters()).device
    with eval_mode(ae):
        chunks = [
            ae.encode(data[i : i + batch_size].to(device)).cpu()
            for i in range(0, len(data), batch_size)
        ]
    return torch.cat(chunks)  # (N, *latent_shape)


def latent_scale(latents: torch.Tensor) -> float:
    """The scale factor 1 / std of all latent values, so scale * z has unit variance.

    Rombach et al. (2022) estimate the std of their KL-regularised latents on the first batch
    and divide by it; Stable Diffusion fixed the result as its scale factor 0.18215 and
    multiplies every latent by it before diffusion (and divides before decoding).
    Introduced in: notebooks/11_latent_diffusion.ipynb
    """
    if latents.numel() < 2:
        raise ValueError("need at least two latent values to measure a standard deviation")
    return 1.0 / latents.detach().float().std().item()


@torch.no_grad()
def reconstruction_psnr(ae: Autoencoder, data: torch.Tensor, *, batch_size: int = 500) -> float:
    """Mean PSNR in dB of the reconstructions of `data` (N, C, H, W) in [-1, 1].

    PSNR = 10 log10(peak^2 / MSE) per image, with peak = 2, the range of [-1, 1]; 20 dB is a
    root-mean-square error of 0.2 (a tenth of the range), 30 dB one of 0.063. Eval mode, no
    gradients; the model's mode is restored.
    Introduced in: notebooks/11_latent_diffusion.ipynb
    """
    device = next(ae.parameters()).device
    psnr = []
    with eval_mode(ae):
        for i in range(0, len(data), batch_size):
            x = data[i : i + batch_size].to(device)  # (b, C, H, W)
            mse = (ae(x) - x).pow(2).flatten(1).mean(1).clamp_min(1e-10)  # (b,)
            psnr.append((10 * torch.log10(4.0 / mse)).cpu())
    return torch.cat(psnr).mean().item()


# ----- the diffusion side -----
def latent_denoiser(
    latent_shape: tuple[int, int, int] = (4, 7, 7),
    *,
    channels: tuple[int, ...] = (64,),
    num_res_blocks: int = 2,
    attention: bool = True,
) -> UNet:
    """The course's UNet, sized for latents (C, S, S): the eps-predictor of the LDM.

    A 7x7 latent cannot be halved evenly, so the default has a single level (no downsampling):
    two residual blocks on the way down, the middle with self-attention over all 49 positions,
    two on the way up. It takes latents of shape (B, *latent_shape) and follows the model
    contract model(zt, t, cond=None).
    Introduced in: notebooks/11_latent_diffusion.ipynb
    """
    C, H, W = latent_shape
    if H != W:
        raise ValueError(f"the UNet needs square latents, got {tuple(latent_shape)}")
    return UNet(
        in_channels=C,
        image_size=H,
        channels=channels,
        num_res_blocks=num_res_blocks,
        attention=attention,
    )


class LatentDiffusion(nn.Module):
    """The three parts of a latent diffusion model (Rombach et al. 2022), side by side.

    - `autoencoder`: trained first, then frozen (no gradients, always in eval mode);
    - `scale_factor`: 1 / std of the training latents (`latent_scale`), kept as a buffer so it
      is saved with the weights;
    - `denoiser`: any model with the contract denoiser(zt, t, cond=None), trained with the usual
      diffusion loss on the scaled latents `to_latent(x)` (eq. 2).
    Sampling: draw noise of shape (B, *latent_shape), run a sampler on `denoiser` with
    clip_x0=False (latents are not confined to [-1, 1]), then `to_image`.
    Introduced in: notebooks/11_latent_diffusion.ipynb
    """

    def __init__(self, autoencoder: Autoencoder, denoiser: nn.Module, *, scale_factor: float):
        super().__init__()
        if not math.isfinite(scale_factor) or scale_factor <= 0:
            raise ValueError(f"scale_factor must be a positive number, got {scale_factor}")
        latent_shape = tuple(autoencoder.latent_shape)
        denoiser_shape = getattr(denoiser, "input_shape", latent_shape)
        if tuple(denoiser_shape) != latent_shape:
            raise ValueError(
                f"the denoiser takes inputs {tuple(denoiser_shape)} but the autoencoder's "
                f"latents are {latent_shape}; build it with latent_denoiser({latent_shape})"
            )
        self.autoencoder = autoencoder.requires_grad_(False).eval()
        self.denoiser = denoiser
        self.register_buffer("scale_factor", torch.tensor(float(scale_factor)))
        self.latent_shape = self.input_shape = latent_shape  # the denoiser's inputs
        self.config = {
            "autoencoder": dict(getattr(autoencoder, "config", {})),
            "denoiser": dict(getattr(denoiser, "config", {})),
        }

    def train(self, mode: bool = True) -> LatentDiffusion:
        super().train(mode)
        self.autoencoder.eval()  # frozen: always in eval mode
        return self

    @torch.no_grad()
    def to_latent(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) -> scaled latents scale_factor * encode(x), (B, *latent_shape)."""
        return self.autoencoder.encode(x) * self.scale_factor

    @torch.no_grad()
    def to_image(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled latents (B, *latent_shape) -> images decode(z / scale_factor) in (-1, 1)."""
        return self.autoencoder.decode(z / self.scale_factor)

    def forward(
        self, zt: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The denoiser on noisy latents: the same contract, so train() and samplers accept it."""
        return self.denoiser(zt, t) if cond is None else self.denoiser(zt, t, cond)
