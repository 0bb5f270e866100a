"""The forward process: adding noise, one step at a time or in one closed-form jump.

q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)         (Ho et al. 2020, eq. 2)
q(x_t | x_0)     = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)  (Ho et al. 2020, eq. 4)

Introduced in: notebooks/02_forward_process.ipynb
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .schedules import NoiseSchedule
from .utils import append_dims, randn

__all__ = [
    "add_noise",
    "check_images",
    "eps_to_x0",
    "forward_chain",
    "forward_step",
    "q_posterior",
    "q_sample",
    "v_target",
    "v_to_eps",
    "v_to_x0",
    "x0_to_eps",
]

RANGE_TOLERANCE = 1e-3  # float rounding of data stored as uint8 / 127.5 - 1


def check_images(
    x: torch.Tensor, name: str = "x0", *, data_range: float | None = 1.0
) -> torch.Tensor:
    """Raise a clear error unless `x` is a float tensor of data in [-1, 1] (the course's range).

    data_range: the bound on |x| (1 for images); None accepts any finite values, for data that
    is not pixels, such as an autoencoder's latents (notebooks/11_latent_diffusion).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a float tensor in [-1, 1], got dtype {x.dtype}; "
            "convert uint8 pixels with x.float() / 127.5 - 1"
        )
    if x.numel() and data_range is None:
        if not x.isfinite().all():
            raise ValueError(f"{name} holds NaN or infinite values")
    elif x.numel() and data_range != 1.0:
        bound = x.abs().max().item()
        if not bound <= data_range * (1 + RANGE_TOLERANCE):
            raise ValueError(
                f"{name} must lie in [-{data_range:g}, {data_range:g}], got |x| up to {bound:.3g}"
            )
    elif x.numel():
        lo, hi = x.min().item(), x.max().item()
        if lo < -1 - RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
            hint = " (it looks like [0, 255] pixels: use x / 127.5 - 1)" if hi > 2 else ""
            raise ValueError(
                f"{name} must lie in [-1, 1], got values in [{lo:.3g}, {hi:.3g}]{hint}"
            )
    return x


def add_noise(image, noise, alpha_bar_t):
    """The article's forward jump, as written: sqrt(a) image + sqrt(1 - a) noise, a = alpha_bar_t.

    `alpha_bar_t` may be a number, a 0-d tensor, or one value per image (shape (B,)).
    Introduced in: notebooks/02_forward_process.ipynb
    """
    if isinstance(alpha_bar_t, torch.Tensor) and alpha_bar_t.ndim == 1 and image.ndim > 1:
        alpha_bar_t = append_dims(alpha_bar_t.to(image.device, image.dtype), image.ndim)
    # alpha_bar_t controls how much original image remains
    noisy_image = (alpha_bar_t**0.5) * image + ((1 - alpha_bar_t) ** 0.5) * noise
    return noisy_image


def q_sample(
    x0: torch.Tensor,
    t: torch.Tensor | int,
    schedule: NoiseSchedule,
    noise: torch.Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
    data_range: float | None = 1.0,
) -> torch.Tensor:
    """Sample x_t ~ q(x_t | x_0) in one jump (Ho et al. 2020, eq. 4), for a batch of timesteps.

    `t` is an int or a LongTensor (B,) in [0, T-1]; `noise` defaults to fresh N(0, I) drawn with
    `generator`. Pass the same `noise` with different `t` to watch one image fade. x0 must lie
    in [-1, 1] unless `data_range` says otherwise (None: latents, any finite values).
    Introduced in: notebooks/02_forward_process.ipynb
    """
    check_images(x0, "x0", data_range=data_range)
    t = schedule.check_t(t)
    if t.ndim == 1 and len(t) != len(x0):
        raise ValueError(f"t has {len(t)} timesteps but x0 has a batch of {len(x0)}")
    if t.ndim > 1:
        raise ValueError(f"t must be an int or a 1-D tensor (B,), got shape {tuple(t.shape)}")
    if noise is None:
        noise = randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    elif noise.shape != x0.shape:
        raise ValueError(f"noise has shape {tuple(noise.shape)} but x0 has {tuple(x0.shape)}")
    alpha_bar_t = schedule.at(schedule.alpha_bar, t, like=x0)  # (B, 1, 1, 1) or 0-d
    return alpha_bar_t.sqrt() * x0 + (1 - alpha_bar_t).sqrt() * noise


def forward_step(
    x_prev: torch.Tensor,
    t: torch.Tensor | int,
    schedule: NoiseSchedule,
    noise: torch.Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One small forward step x_{t-1} -> x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps (eq. 2).

    At t = 0, `x_prev` is the clean image x_0.
    Introduced in: notebooks/02_forward_process.ipynb
    """
    t = schedule.check_t(t)
    if noise is None:
        noise = randn(x_prev.shape, generator=generator, device=x_prev.device, dtype=x_prev.dtype)
    beta_t = schedule.at(schedule.betas, t, like=x_prev)
    return (1 - beta_t).sqrt() * x_prev + beta_t.sqrt() * noise


def forward_chain(
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    *,
    num_steps: int | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Run the forward chain step by step, yielding (t, x_t) for t = 0, 1, ..., num_steps - 1.

    Each step draws fresh noise, so after t + 1 steps x_t has the same distribution as
    `q_sample(x0, t, schedule)`; lesson 2 checks this numerically.
    """
    check_images(x0, "x0")
    num_steps = len(schedule) if num_steps is None else num_steps
    if not 0 < num_steps <= len(schedule):
        raise ValueError(f"num_steps must lie in [1, T={len(schedule)}], got {num_steps}")
    xt = x0
    for t in range(num_steps):
        xt = forward_step(xt, t, schedule, generator=generator)
        yield t, xt


def q_posterior(
    x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor | int, schedule: NoiseSchedule
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of q(x_{t-1} | x_t, x_0) (Ho et al. 2020, eqs. 6-7).

    mean = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) * x0
           + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * xt
    var  = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)      (0 at t = 0)
    The variance is returned broadcastable against xt. Taught in notebooks/04_reverse_process.ipynb.
    """
    if x0.shape != xt.shape:
        raise ValueError(f"x0 has shape {tuple(x0.shape)} but xt has {tuple(xt.shape)}")
    t = schedule.check_t(t)
    # the coefficients are precomputed in float64 by the schedule (see NoiseSchedule.__init__)
    coef_x0 = schedule.at(schedule.posterior_coef_x0, t, like=xt)
    coef_xt = schedule.at(schedule.posterior_coef_xt, t, like=xt)
    variance = schedule.at(schedule.posterior_variance, t, like=xt)
    return coef_x0 * x0 + coef_xt * xt, variance


# ----- conversions between what a network may predict: eps, x0 or v -----
def _abar(alpha_bar_t: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    alpha_bar_t = torch.as_tensor(alpha_bar_t, device=like.device, dtype=like.dtype)
    return append_dims(alpha_bar_t, like.ndim) if alpha_bar_t.ndim == 1 else alpha_bar_t


def eps_to_x0(xt: torch.Tensor, eps_hat: torch.Tensor, alpha_bar_t) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - alpha_bar) eps_hat) / sqrt(alpha_bar) (Ho et al. 2020, eq. 15)."""
    a = _abar(alpha_bar_t, xt)
    return (xt - (1 - a).sqrt() * eps_hat) / a.sqrt()


def x0_to_eps(xt: torch.Tensor, x0_hat: torch.Tensor, alpha_bar_t) -> torch.Tensor:
    """eps_hat = (x_t - sqrt(alpha_bar) x0_hat) / sqrt(1 - alpha_bar), the inverse of eps_to_x0."""
    a = _abar(alpha_bar_t, xt)
    return (xt - a.sqrt() * x0_hat) / (1 - a).sqrt()


def v_target(x0: torch.Tensor, eps: torch.Tensor, alpha_bar_t) -> torch.Tensor:
    """v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x0 (Salimans & Ho 2022, sec. 4)."""
    a = _abar(alpha_bar_t, x0)
    return a.sqrt() * eps - (1 - a).sqrt() * x0


def v_to_x0(xt: torch.Tensor, v_hat: torch.Tensor, alpha_bar_t) -> torch.Tensor:
    """x0_hat = sqrt(alpha_bar) x_t - sqrt(1 - alpha_bar) v_hat (Salimans & Ho 2022)."""
    a = _abar(alpha_bar_t, xt)
    return a.sqrt() * xt - (1 - a).sqrt() * v_hat


def v_to_eps(xt: torch.Tensor, v_hat: torch.Tensor, alpha_bar_t) -> torch.Tensor:
    """eps_hat = sqrt(1 - alpha_bar) x_t + sqrt(alpha_bar) v_hat (Salimans & Ho 2022)."""
    a = _abar(alpha_bar_t, xt)
    return (1 - a).sqrt() * xt + a.sqrt() * v_hat
