"""Applications of a trained denoiser: inpainting, super-resolution and SDEdit editing.

Inpainting and SDEdit steer an ordinary trained denoiser, unchanged; super-resolution
trains one that also sees the low-resolution image:
- `inpaint`: fill a hole. Each reverse step keeps the known pixels, noised to the step's
  level, and lets the model fill the rest; RePaint's resampling harmonises the two
  (Lugmayr et al. 2022).
- `sdedit`: edit a rough input (a sketch, a blocky image, a painted stroke) by noising it part
  of the way and denoising it back (Meng et al. 2022).
- `SuperResolutionUNet`: a U-Net that sees the upsampled low-resolution image beside x_t,
  trained with the usual loss (Saharia et al. 2022, SR3).

MASK CONVENTION: in a mask, 1 (True) marks a KNOWN pixel, kept from the input, and 0 marks a
pixel the model must fill (RePaint's m). `make_mask` kinds name the part that is HIDDEN.

Introduced in: notebooks/10_applications.ipynb
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .forward import check_images, q_sample
from .models.unet import UNet
from .samplers import SamplerStep, model_ddim_step
from .schedules import NoiseSchedule
from .utils import randn

__all__ = [
    "MASKS",
    "SKETCHES",
    "SuperResolutionUNet",
    "blocky",
    "downsample",
    "draw_strokes",
    "inpaint",
    "make_mask",
    "paint_stroke",
    "psnr",
    "renoise",
    "sdedit",
    "sdedit_timesteps",
    "upsample",
]


# ----- inpainting -----
MASKS = ("left", "right", "top", "bottom", "centre", "box", "pixels")


def make_mask(
    kind: str,
    size: int = 28,
    *,
    hole: int | None = None,
    box: tuple[int, int, int, int] | None = None,
    missing: float = 0.8,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A float mask (1, 1, size, size): 1 = KNOWN pixel, 0 = hidden; `kind` names what is HIDDEN.

    "left", "right", "top", "bottom": that half is hidden. "centre": a centred square hole of
    side `hole` (default size // 2). "box": the rectangle `box=(top, left, height, width)`.
    "pixels": a random share `missing` of the pixels (exactly round(missing * size**2) of
    them), drawn with `generator`.
    Introduced in: notebooks/10_applications.ipynb
    """
    if kind not in MASKS:
        raise ValueError(f"unknown mask kind {kind!r}; allowed: {', '.join(MASKS)}")
    if (hole is not None and kind != "centre") or (box is not None and kind != "box"):
        raise ValueError("hole= is for kind='centre' and box= for kind='box' only")
    mask = torch.ones(1, 1, size, size)
    half = size // 2
    if kind == "left":
        mask[..., :, :half] = 0
    elif kind == "right":
        mask[..., :, size - half :] = 0
    elif kind == "top":
        mask[..., :half, :] = 0
    elif kind == "bottom":
        mask[..., size - half :, :] = 0
    elif kind == "centre":
        hole = half if hole is None else hole
        if not 0 <= hole <= size:
            raise ValueError(f"hole must lie in [0, size={size}], got {hole}")
        start = (size - hole) // 2
        mask[..., start : start + hole, start : start + hole] = 0
    elif kind == "box":
        if box is None or len(box) != 4:
            raise ValueError("kind='box' needs box=(top, left, height, width)")
        top, left, height, width = box
        if min(box) < 0 or top + height > size or left + width > size:
            raise ValueError(f"box {tuple(box)} does not fit in a {size}x{size} image")
        mask[..., top : top + height, left : left + width] = 0
    else:  # pixels
        if not 0 <= missing <= 1:
            raise ValueError(f"missing is a share of pixels in [0, 1], got {missing}")
        hidden = torch.randperm(size * size, generator=generator)[: round(missing * size * size)]
        mask.view(-1)[hidden] = 0
    return mask


def _check_mask(mask: torch.Tensor, x_known: torch.Tensor) -> torch.Tensor:
    """The mask as a float tensor on x_known's device, after checking its values and shape."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if not (mask.dtype == torch.bool or mask.is_floating_point()):
        raise TypeError(f"mask must be bool or float (1 = known, 0 = fill), got {mask.dtype}")
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(
            "mask must hold only 0 and 1 (1 = known pixel, kept; 0 = pixel to fill); "
            "turn a soft mask into a hard one with (mask > 0.5)"
        )
    try:
        fits = torch.broadcast_shapes(mask.shape, x_known.shape) == x_known.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to x_known's shape "
            f"{tuple(x_known.shape)}; use (H, W), (1, 1, H, W) or (B, 1, H, W)"
        )
    return mask.to(device=x_known.device, dtype=x_known.dtype)


def renoise(
    x_prev: torch.Tensor,
    alpha_bar_t: torch.Tensor | float,
    alpha_bar_prev: torch.Tensor | float,
    *,
    noise: torch.Tensor,
) -> torch.Tensor:
    """Jump forward from level alpha_bar_prev to alpha_bar_t <= alpha_bar_prev in one go:

        x_t = sqrt(a_t / a_prev) x_prev + sqrt(1 - a_t / a_prev) noise,
    the forward step of Ho et al. (2020, eq. 2) over a jump of the grid. RePaint's resampling
    (Lugmayr et al. 2022, Algorithm 1, the `u < U` branch). With a_prev = 1 it is q_sample.
    Introduced in: notebooks/10_applications.ipynb
    """
    a_t = torch.as_tensor(alpha_bar_t, device=x_prev.device, dtype=x_prev.dtype)
    a_prev = torch.as_tensor(alpha_bar_prev, device=x_prev.device, dtype=x_prev.dtype)
    if bool((a_t > a_prev).any()):
        raise ValueError("renoise goes forward: alpha_bar_t must be <= alpha_bar_prev")
    ratio = a_t / a_prev  # the alpha_bar of the jump: the share of x_prev's variance kept
    return ratio.sqrt() * x_prev + (1 - ratio).sqrt() * noise


@torch.no_grad()
def inpaint(
    model: nn.Module,
    schedule: NoiseSchedule,
    x_known: torch.Tensor,
    mask: torch.Tensor,
    *,
    num_steps: int = 100,
    resample: int = 1,
    eta: float = 1.0,
    prediction: str = "eps",
    cond: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
    clip_x0: bool = True,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> Iterator[SamplerStep]:
    """Fill the pixels where mask == 0 (RePaint, Lugmayr et al. 2022, eqs. 8-10, Algorithm 1).

    MASK: 1 (True) = KNOWN pixel, kept from x_known; 0 = pixel the model fills. Any shape that
    broadcasts to x_known: (H, W), (1, 1, H, W) or (B, 1, H, W).
    Starting from noise (drawn with `generator`), each step t -> t_prev of the trailing grid:
    1. unknown = a DDIM step of the model (eta = 1, the default, is ancestral as in RePaint);
    2. known = q_sample(x_known, t_prev) with fresh noise; at the last step, x_known itself;
    3. x_prev = mask * known + (1 - mask) * unknown  (eq. 10).
    With `resample` = U > 1, every step but the last goes back to t with `renoise` and is
    redone, U times in all, so the model can harmonise the fill with the known pixels.
    Model calls: num_steps * U - (U - 1). Yields one SamplerStep per grid step, its x0_hat
    being the model's estimate with the known pixels pasted in; the final xt equals x_known
    exactly where mask == 1.
    Introduced in: notebooks/10_applications.ipynb
    """
    from tqdm.auto import tqdm

    check_images(x_known, "x_known")
    mask = _check_mask(mask, x_known)
    if not isinstance(resample, int) or resample < 1:
        raise ValueError(f"resample must be an int >= 1 (1 = no resampling), got {resample!r}")
    timesteps = schedule.timesteps(num_steps).tolist()
    like = dict(generator=generator, device=x_known.device, dtype=x_known.dtype)
    step = dict(eta=eta, prediction=prediction, cond=cond, guidance_scale=guidance_scale,
                clip_x0=clip_x0, generator=generator)  # fmt: skip
    xt = randn(x_known.shape, **like)
    for i, t in enumerate(tqdm(timesteps, disable=not progress, desc="RePaint inpainting")):
        final = i + 1 == len(timesteps)
        t_prev = -1 if final else timesteps[i + 1]  # -1: clean data, alpha_bar = 1
        a_t = schedule.alpha_bar[t].to(xt.device)
        a_prev = torch.tensor(1.0) if final else schedule.alpha_bar[t_prev]
        rounds = 1 if final else resample  # no resampling after the last step
        for u in range(rounds):
            # 1. the unknown part: one model call and one DDIM step t -> t_prev
            unknown, x0_hat = model_ddim_step(model, schedule, xt, t, t_prev, **step)
            # 2. the known part, noised to t_prev; at the last step the clean pixels themselves
            known = x_known if final else q_sample(x_known, t_prev, schedule, generator=generator)
            x_prev = mask * known + (1 - mask) * unknown  # 3. eq. 10
            if u + 1 < rounds:  # RePaint: back to t, x_t ~ q(x_t | x_prev), and redo
                xt = renoise(x_prev, a_t, a_prev, noise=randn(xt.shape, **like))
        xt = x_prev
        yield SamplerStep(i, t, xt, mask * x_known + (1 - mask) * x0_hat)


# ----- SDEdit -----
def sdedit_timesteps(schedule: NoiseSchedule, strength: float, num_steps: int = 50) -> torch.Tensor:
    """The descending grid of an SDEdit run; its first value is t_start (Meng et al. 2022).

    `strength` is the paper's t0 in [0, 1], the share of the forward process applied: the
    input is noised to paper timestep round(strength * T), i.e. code timestep
    t_start = round(strength * T) - 1 (strength 1: t_start = T-1, pure noise). Below half a
    step (strength 0 included) nothing is applied and the grid is empty. `num_steps` is the
    grid size of a full run: a run takes max(1, round(num_steps * strength)) steps, trailing
    spacing over [0, t_start], so strength 1 gives `schedule.timesteps(num_steps)`.
    """
    if not 0 <= strength <= 1:
        raise ValueError(f"strength must lie in [0, 1] (0: keep the input), got {strength}")
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be an int >= 1, got {num_steps!r}")
    t_start = round(strength * len(schedule)) - 1
    if t_start < 0:
        return torch.zeros(0, dtype=torch.long)
    n = min(max(1, round(num_steps * strength)), t_start + 1)  # at most one step per timestep
    # trailing spacing, as NoiseSchedule.timesteps, over t_start + 1 timesteps instead of T
    ts = torch.arange(t_start + 1, 0, -(t_start + 1) / n, dtype=torch.float64)[:n]
    return (torch.round(ts) - 1).long()


@torch.no_grad()
def sdedit(
    model: nn.Module,
    schedule: NoiseSchedule,
    x_input: torch.Tensor,
    *,
    strength: float = 0.5,
    num_steps: int = 50,
    eta: float = 0.0,
    prediction: str = "eps",
    cond: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
    clip_x0: bool = True,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> Iterator[SamplerStep]:
    """Edit `x_input` by noising it to t_start and denoising it back (Meng et al. 2022, Alg. 1).

    1. x_{t_start} = q_sample(x_input, t_start, noise)  (noise drawn with `generator` if None);
    2. DDIM steps on `sdedit_timesteps(schedule, strength, num_steps)` down to clean data.
    Low strength keeps the input's details, high strength its rough layout only (strength 1
    samples from scratch). The paper denoises with the SDE (eta = 1); eta = 0 (the default
    here, as in diffusers' img2img) makes the result a function of `noise`. Strength 0 yields
    one SamplerStep(0, -1, x_input, x_input), so `last(sdedit(...))` is the input itself.
    Introduced in: notebooks/10_applications.ipynb
    """
    from tqdm.auto import tqdm

    check_images(x_input, "x_input")
    timesteps = sdedit_timesteps(schedule, strength, num_steps).tolist()
    if not timesteps:
        yield SamplerStep(0, -1, x_input, x_input)
        return
    step = dict(eta=eta, prediction=prediction, cond=cond, guidance_scale=guidance_scale,
                clip_x0=clip_x0, generator=generator)  # fmt: skip
    xt = q_sample(x_input, timesteps[0], schedule, noise, generator=generator)  # 1.
    for i, t in enumerate(tqdm(timesteps, disable=not progress, desc="SDEdit")):
        # 2. one DDIM step, as in samplers.ddim_sample, on the grid from t_start
        t_prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1  # -1: clean data
        xt, x0_hat = model_ddim_step(model, schedule, xt, t, t_prev, **step)
        yield SamplerStep(i, t, xt, x0_hat)


# ----- super-resolution -----
def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Average `factor` x `factor` blocks: (B, C, H, W) -> (B, C, H / factor, W / factor)."""
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be an int >= 1, got {factor!r}")
    H, W = x.shape[-2:]
    if H % factor or W % factor:
        raise ValueError(f"image size {H}x{W} is not divisible by factor {factor}")
    return F.avg_pool2d(x, factor)


def upsample(
    x: torch.Tensor, size: int, mode: Literal["bicubic", "bilinear", "nearest"] = "bicubic"
) -> torch.Tensor:
    """Resize (B, C, h, w) to (B, C, size, size) by interpolation, clamped to [-1, 1].

    Bicubic overshoots at edges, hence the clamp. align_corners=False (pixels as areas).
    """
    if mode not in ("bicubic", "bilinear", "nearest"):
        raise ValueError(f"unknown mode {mode!r}; allowed: 'bicubic', 'bilinear', 'nearest'")
    corners = None if mode == "nearest" else False
    out = F.interpolate(x, size=(size, size), mode=mode, align_corners=corners)
    return out.clamp(-1, 1)


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image in dB, 10 log10(range^2 / MSE), shape (B,).

    data_range = 2 for images in [-1, 1]. Identical images give inf.
    """
    if a.shape != b.shape:
        raise ValueError(f"a and b differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")
    mse = (a - b).pow(2).flatten(1).mean(1)  # (B,)
    return 10 * torch.log10(data_range**2 / mse)


class SuperResolutionUNet(nn.Module):
    """An SR3-style denoiser (Saharia et al. 2022): model(xt, t, cond=low_res) -> like xt.

    `cond` (B, C, low_res, low_res) is upsampled bicubically to image_size and concatenated
    with x_t on the channel axis; a UNet(2C -> C) predicts the noise. Train it with
    `training.train(model, x0, schedule, cond=downsample(x0, image_size // low_res))`.
    Introduced in: notebooks/10_applications.ipynb
    """

    def __init__(
        self,
        *,
        image_size: int = 28,
        low_res: int = 7,
        in_channels: int = 1,
        channels: tuple[int, ...] = (16, 32, 64),
        num_res_blocks: int = 1,
        attention: bool = True,
        groups: int = 8,
    ):
        super().__init__()
        if not 1 <= low_res <= image_size:
            raise ValueError(f"low_res must lie in [1, image_size={image_size}], got {low_res}")
        channels = tuple(int(c) for c in channels)
        self.config = dict(
            image_size=image_size, low_res=low_res, in_channels=in_channels, channels=channels,
            num_res_blocks=num_res_blocks, attention=attention, groups=groups,
        )  # fmt: skip
        self.input_shape = (in_channels, image_size, image_size)
        self.cond_shape = (in_channels, low_res, low_res)
        self.unet = UNet(
            2 * in_channels, out_channels=in_channels, image_size=image_size, channels=channels,
            num_res_blocks=num_res_blocks, attention=attention, groups=groups,
        )  # fmt: skip

    def forward(
        self, xt: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        if cond is None:
            raise ValueError("SuperResolutionUNet needs cond: the low-resolution images")
        if cond.ndim != 4 or tuple(cond.shape[1:]) != self.cond_shape or len(cond) != len(xt):
            raise ValueError(
                f"cond must be low-resolution images (B={len(xt)}, "
                f"{', '.join(map(str, self.cond_shape))}), got {tuple(cond.shape)}"
            )
        up = upsample(cond, self.config["image_size"])  # (B, C, H, W)
        return self.unet(torch.cat([xt, up.to(xt.dtype)], dim=1), t)  # (B, 2C, H, W) -> like xt

    def num_parameters(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())


# ----- inputs for SDEdit: blocky images, sketches, paint strokes -----
def blocky(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Average `factor` x `factor` blocks and blow them up again: a pixelated image."""
    return upsample(downsample(x, factor), x.shape[-1], mode="nearest")


def _coverage(polylines, H: int, W: int, width: float, like: torch.Tensor) -> torch.Tensor:
    """Ink coverage (H, W) in [0, 1] of polylines in [0, 1] coordinates, antialiased.

    A pixel centre at distance d (in pixels) from the nearest segment gets
    clamp(width / 2 + 0.5 - d, 0, 1): full ink inside the stroke, a one-pixel ramp at its edge.
    """
    rows = torch.arange(H, device=like.device, dtype=like.dtype) + 0.5
    cols = torch.arange(W, device=like.device, dtype=like.dtype) + 0.5
    centres = torch.stack(torch.meshgrid(cols, rows, indexing="xy"), -1).reshape(-1, 1, 2)
    dist = torch.full((H * W,), math.inf, device=like.device, dtype=like.dtype)
    scale = torch.tensor([W, H], device=like.device, dtype=like.dtype)
    for line in polylines:
        points = torch.as_tensor(line, device=like.device, dtype=like.dtype).reshape(-1, 2)
        if len(points) == 0:
            raise ValueError("every stroke needs at least one (x, y) point")
        points = points * scale  # (N, 2) in pixels
        if len(points) == 1:
            points = points.repeat(2, 1)  # a dot: one segment of length 0
        start, seg = points[:-1], points[1:] - points[:-1]  # (S, 2) each
        # projection of each centre on each segment, clamped to the segment: (P, S)
        u = ((centres - start) * seg).sum(-1) / (seg * seg).sum(-1).clamp(min=1e-12)
        nearest = start + u.clamp(0, 1)[..., None] * seg  # (P, S, 2)
        dist = torch.minimum(dist, (centres - nearest).norm(dim=-1).amin(-1))
    return (width / 2 + 0.5 - dist).clamp(0, 1).reshape(H, W)


def draw_strokes(
    strokes: Sequence[Sequence[tuple[float, float]]], size: int = 28, width: float = 2.5
) -> torch.Tensor:
    """Rasterise polylines into a sketch (1, 1, size, size): ink +1 on a -1 background.

    `strokes` is a list of polylines, each a list of (x, y) points in [0, 1] (y downwards);
    `width` is the stroke width in pixels, edges antialiased by distance to the segments.
    Introduced in: notebooks/10_applications.ipynb
    """
    coverage = _coverage(strokes, size, size, width, torch.zeros(()))
    return (2 * coverage - 1)[None, None]


def paint_stroke(
    image: torch.Tensor,
    points: Sequence[tuple[float, float]],
    colour: float | Sequence[float],
    width: float = 3.0,
) -> torch.Tensor:
    """A copy of `image` (C, H, W) or (B, C, H, W) with an opaque polyline painted on it.

    `points` in [0, 1] coordinates (y downwards); `colour` one value in [-1, 1] per channel
    (or one for all). Edge pixels blend with the image, as in `draw_strokes`.
    """
    if image.ndim not in (3, 4):
        raise ValueError(f"image must be (C, H, W) or (B, C, H, W), got {tuple(image.shape)}")
    C, H, W = image.shape[-3:]
    colour = torch.as_tensor(colour, device=image.device, dtype=image.dtype).reshape(-1)
    if len(colour) not in (1, C) or colour.abs().max() > 1:
        raise ValueError(f"colour must be 1 or {C} values in [-1, 1], got {colour.tolist()}")
    alpha = _coverage([points], H, W, width, image)  # (H, W)
    return image * (1 - alpha) + colour[:, None, None] * alpha  # a new tensor


def _digit(*strokes) -> list[list[tuple[float, float]]]:
    """Polylines from pixel coordinates in the 28 x 28 frame to [0, 1] coordinates."""
    return [[(x / 28, y / 28) for x, y in stroke] for stroke in strokes]


def _ellipse(cx, cy, rx, ry, *, slant=0.0, n=24) -> list[tuple[float, float]]:
    """A closed polyline around (cx, cy), leaning right by `slant` pixels at the bottom."""
    angles = [2 * math.pi * k / n for k in range(n + 1)]
    return [(cx + rx * math.cos(a) + slant * math.sin(a), cy + ry * math.sin(a)) for a in angles]


# hand-drawn digits as MNIST draws them: fitting a 20 x 20 box, then moved so that their
# centre of mass is the centre of the 28 x 28 frame (a seven therefore sits low)
SKETCHES = {
    "seven": _digit([(7.5, 9.5), (13, 9), (20.5, 9.5), (17, 16), (13.5, 22), (12, 26)]),
    "four": _digit([(10, 6.5), (8.5, 13), (8, 17), (15, 17), (21, 16.5)], [(17, 7), (16.5, 23.5)]),
    "zero": _digit(_ellipse(14, 14.5, 6, 8.5, slant=1.2)),
}
