"""Sampling: turning noise into data by running the reverse chain with a trained model.

Step functions are pure (their noise is an argument) and return the x_0 estimate beside the
next sample; loops are generators that yield a `SamplerStep` per step, so notebooks can watch
the image appear without hooks.

Introduced in: notebooks/04_reverse_process.ipynb (remove_noise) and 05_training.ipynb
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from .forward import eps_to_x0, q_posterior, v_to_eps, v_to_x0, x0_to_eps
from .schedules import NoiseSchedule
from .utils import randn

__all__ = [
    "SamplerStep",
    "ddpm_sample",
    "ddpm_step",
    "ddim_sample",
    "ddim_step",
    "last",
    "predict_eps_x0",
    "remove_noise",
]


@dataclass
class SamplerStep:
    """One step of a sampler: the step index, its timestep, the new sample and the x_0 estimate."""

    i: int
    t: int
    xt: torch.Tensor
    x0_hat: torch.Tensor


def predict_eps_x0(
    output: torch.Tensor, xt: torch.Tensor, alpha_bar_t: torch.Tensor, prediction: str = "eps"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn a network's output (eps, x0 or v) into both the noise and the x_0 estimate."""
    if prediction == "eps":
        return output, eps_to_x0(xt, output, alpha_bar_t)
    if prediction == "x0":
        return x0_to_eps(xt, output, alpha_bar_t), output
    if prediction == "v":
        return v_to_eps(xt, output, alpha_bar_t), v_to_x0(xt, output, alpha_bar_t)
    raise ValueError(f"unknown prediction {prediction!r}; allowed: 'eps', 'x0', 'v'")


def ddpm_step(
    xt: torch.Tensor,
    eps_hat: torch.Tensor,
    t: torch.Tensor | int,
    schedule: NoiseSchedule,
    *,
    noise: torch.Tensor | None,
    clip_x0: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One ancestral step x_t -> x_{t-1} (Ho et al. 2020, Algorithm 2 and eq. 11).

    1. estimate x_0 from the predicted noise (eq. 15), clipped to [-1, 1] as in the DDPM code;
    2. take the mean of the posterior q(x_{t-1} | x_t, x_0_hat) (eq. 7), which without
       clipping equals eq. 11: (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_t);
    3. add noise with the posterior variance (0 at t = 0, so the last step adds none).
    Returns (x_{t-1}, x0_hat).
    """
    alpha_bar_t = schedule.at(schedule.alpha_bar, t, like=xt)
    x0_hat = eps_to_x0(xt, eps_hat, alpha_bar_t)  # 1.
    if clip_x0:
        x0_hat = x0_hat.clamp(-1, 1)
    mean, variance = q_posterior(x0_hat, xt, t, schedule)  # 2.
    if noise is None:
        if (variance > 0).any():
            raise ValueError("ddpm_step needs noise for t > 0; pass noise=torch.randn_like(xt)")
        return mean, x0_hat
    return mean + variance.sqrt() * noise, x0_hat  # 3.


def remove_noise(
    xt: torch.Tensor,
    predicted_noise: torch.Tensor,
    t: torch.Tensor | int,
    schedule: NoiseSchedule,
    *,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The article's `remove_noise(x, predicted_noise, t)`, defined: one DDPM step x_t -> x_{t-1}.

    Draws the step's fresh noise with `generator` unless `noise` is given. It is `ddpm_step`
    with its default clipping of the x_0 estimate to [-1, 1]: eq. 11 exactly whenever that
    estimate already lies in [-1, 1] (always, for an oracle or real data).
    Introduced in: notebooks/04_reverse_process.ipynb
    """
    if noise is None and int(torch.as_tensor(t).max()) > 0:
        noise = randn(xt.shape, generator=generator, device=xt.device, dtype=xt.dtype)
    return ddpm_step(xt, predicted_noise, t, schedule, noise=noise)[0]


def _model_t(model: nn.Module, xt: torch.Tensor, t: int, cond) -> torch.Tensor:
    t_batch = torch.full((len(xt),), t, device=xt.device, dtype=torch.long)
    return model(xt, t_batch) if cond is None else model(xt, t_batch, cond)


@torch.no_grad()
def ddpm_sample(
    model: nn.Module,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    *,
    prediction: str = "eps",
    cond: torch.Tensor | None = None,
    clip_x0: bool = True,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> Iterator[SamplerStep]:
    """Ancestral DDPM sampling over all T steps (Ho et al. 2020, Algorithm 2), as a generator.

    Start from `x_T` (pure noise, e.g. `torch.randn(16, 1, 28, 28)`); yields one SamplerStep per
    step, from t = T-1 down to 0. Use `last(...)` to keep only the final images.
    """
    from tqdm.auto import tqdm

    xt = x_T
    timesteps = range(len(schedule) - 1, -1, -1)
    for i, t in enumerate(tqdm(timesteps, disable=not progress, desc="DDPM sampling")):
        output = _model_t(model, xt, t, cond)
        alpha_bar_t = schedule.at(schedule.alpha_bar, t, like=xt)
        eps_hat, _ = predict_eps_x0(output, xt, alpha_bar_t, prediction)
        noise = (
            randn(xt.shape, generator=generator, device=xt.device, dtype=xt.dtype) if t else None
        )
        xt, x0_hat = ddpm_step(xt, eps_hat, t, schedule, noise=noise, clip_x0=clip_x0)
        yield SamplerStep(i, t, xt, x0_hat)


def ddim_step(
    xt: torch.Tensor,
    eps_hat: torch.Tensor,
    alpha_bar_t: torch.Tensor,
    alpha_bar_prev: torch.Tensor,
    *,
    eta: float = 0.0,
    noise: torch.Tensor | None = None,
    clip_x0: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One DDIM step from alpha_bar_t to alpha_bar_prev (Song et al. 2021, eq. 12).

    1. x0_hat = (x_t - sqrt(1 - a_t) eps_hat) / sqrt(a_t), optionally clipped to [-1, 1];
    2. sigma = eta * sqrt((1 - a_prev) / (1 - a_t)) * sqrt(1 - a_t / a_prev)  (eq. 16);
    3. x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps_hat + sigma * noise.
    eta = 0 is deterministic; eta = 1 matches DDPM's posterior variance. Returns (x_prev, x0_hat).
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0 (0 deterministic, 1 DDPM-like), got {eta}")
    a_t = torch.as_tensor(alpha_bar_t, device=xt.device, dtype=xt.dtype)
    a_prev = torch.as_tensor(alpha_bar_prev, device=xt.device, dtype=xt.dtype)
    x0_hat = eps_to_x0(xt, eps_hat, a_t)  # 1.
    if clip_x0:
        x0_hat = x0_hat.clamp(-1, 1)
        eps_hat = x0_to_eps(xt, x0_hat, a_t)  # keep eps consistent with the clipped x0
    sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).clamp(min=0).sqrt()  # 2.
    x_prev = a_prev.sqrt() * x0_hat + (1 - a_prev - sigma**2).clamp(min=0).sqrt() * eps_hat
    if eta > 0:
        if noise is None:
            raise ValueError("ddim_step with eta > 0 needs noise")
        x_prev = x_prev + sigma * noise  # 3.
    return x_prev, x0_hat


@torch.no_grad()
def ddim_sample(
    model: nn.Module,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    *,
    num_steps: int = 50,
    eta: float = 0.0,
    spacing: Literal["trailing", "linspace", "leading"] = "trailing",
    prediction: str = "eps",
    cond: torch.Tensor | None = None,
    clip_x0: bool = True,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> Iterator[SamplerStep]:
    """DDIM sampling (Song et al. 2021) over `num_steps` timesteps (trailing spacing by default).

    Yields one SamplerStep per model call; the last step lands on alpha_bar = 1 (clean data).
    """
    from tqdm.auto import tqdm

    timesteps = schedule.timesteps(num_steps, spacing).tolist()
    xt = x_T
    for i, t in enumerate(tqdm(timesteps, disable=not progress, desc="DDIM sampling")):
        output = _model_t(model, xt, t, cond)
        a_t = schedule.alpha_bar[t].to(xt.device)
        a_prev = schedule.alpha_bar[timesteps[i + 1]] if i + 1 < len(timesteps) else 1.0
        eps_hat, _ = predict_eps_x0(output, xt, a_t, prediction)
        noise = None
        if eta > 0:
            noise = randn(xt.shape, generator=generator, device=xt.device, dtype=xt.dtype)
        xt, x0_hat = ddim_step(
            xt, eps_hat, a_t, torch.as_tensor(a_prev), eta=eta, noise=noise, clip_x0=clip_x0
        )
        yield SamplerStep(i, t, xt, x0_hat)


def last(steps: Iterable[SamplerStep]) -> torch.Tensor:
    """Run a sampler to the end and return its final sample."""
    final = collections.deque(steps, maxlen=1)  # consumes the generator, keeps the last step
    if not final:
        raise ValueError("the sampler yielded no steps")
    return final[0].xt
