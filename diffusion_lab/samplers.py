"""Sampling: turning noise into data by running the reverse chain with a trained model.

Step functions are pure (their noise is an argument) and return the x_0 estimate beside the
next sample; loops are generators that yield a `SamplerStep` per step, so notebooks can watch
the image appear without hooks.

Samplers, and what a step costs (one model call each):
- `ddpm_sample`: ancestral DDPM over all T steps (Ho et al. 2020);
- `ddim_sample`: DDIM over any number of steps, `eta` 0 (deterministic) to 1 (DDPM-like);
- `dpm_solver_sample`: DPM-Solver++(2M), a second-order multistep solver of the
  probability-flow ODE (Lu et al. 2022);
- `sample(...)`: one call that runs any of them and returns the final images.

Every sampler takes `cond=` (labels or prompt tokens, for a conditional model) and
`guidance_scale=` (classifier-free guidance, diffusers convention: 1 = plain conditional);
with guidance, each step makes one batched call holding the conditional and the
unconditional halves (see `conditioning.guided_output`).

Introduced in: notebooks/04_reverse_process.ipynb (remove_noise), 05_training.ipynb,
06_sampling.ipynb and 07_fast_sampling.ipynb
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from .conditioning import guided_output
from .forward import eps_to_x0, q_posterior, v_to_eps, v_to_x0, x0_to_eps
from .schedules import NoiseSchedule
from .utils import randn

__all__ = [
    "SAMPLERS",
    "SamplerStep",
    "Trajectory",
    "ddpm_sample",
    "ddpm_step",
    "ddim_sample",
    "ddim_step",
    "dpm_solver_sample",
    "dpm_solver_step",
    "last",
    "model_ddim_step",
    "predict_eps_x0",
    "remove_noise",
    "sample",
    "slerp",
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


def _model_t(
    model: nn.Module, xt: torch.Tensor, t: int, cond, guidance_scale: float = 1.0
) -> torch.Tensor:
    t_batch = torch.full((len(xt),), t, device=xt.device, dtype=torch.long)
    if cond is None:
        if guidance_scale != 1.0:
            raise ValueError(f"guidance_scale={guidance_scale} needs a cond to guide towards")
        return model(xt, t_batch)
    return guided_output(model, xt, t_batch, cond, guidance_scale)


@torch.no_grad()
def ddpm_sample(
    model: nn.Module,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    *,
    prediction: str = "eps",
    cond: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
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
        output = _model_t(model, xt, t, cond, guidance_scale)
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
    guidance_scale: float = 1.0,
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
        t_prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        xt, x0_hat = model_ddim_step(
            model, schedule, xt, t, t_prev, eta=eta, prediction=prediction, cond=cond,
            guidance_scale=guidance_scale, clip_x0=clip_x0, generator=generator,
        )  # fmt: skip
        yield SamplerStep(i, t, xt, x0_hat)


def model_ddim_step(
    model: nn.Module,
    schedule: NoiseSchedule,
    xt: torch.Tensor,
    t: int,
    t_prev: int,
    *,
    eta: float = 0.0,
    prediction: str = "eps",
    cond: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
    clip_x0: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Call the model at t and take one `ddim_step` to t_prev (-1: clean data, alpha_bar = 1).

    The loop body shared by `ddim_sample`, `applications.inpaint` and `applications.sdedit`;
    fresh noise (eta > 0) is drawn with `generator`. Returns (x_{t_prev}, x0_hat).
    """
    output = _model_t(model, xt, t, cond, guidance_scale)
    a_t = schedule.alpha_bar[t].to(xt.device)
    a_prev = schedule.alpha_bar[t_prev] if t_prev >= 0 else torch.tensor(1.0)
    eps_hat, _ = predict_eps_x0(output, xt, a_t, prediction)
    noise = None
    if eta > 0:
        noise = randn(xt.shape, generator=generator, device=xt.device, dtype=xt.dtype)
    return ddim_step(xt, eps_hat, a_t, a_prev, eta=eta, noise=noise, clip_x0=clip_x0)


def last(steps: Iterable[SamplerStep]) -> torch.Tensor:
    """Run a sampler to the end and return its final sample."""
    final = collections.deque(steps, maxlen=1)  # consumes the generator, keeps the last step
    if not final:
        raise ValueError("the sampler yielded no steps")
    return final[0].xt


def _half_log_snr(alpha_bar: torch.Tensor) -> torch.Tensor:
    """lambda = log(alpha / sigma) = 0.5 * log(alpha_bar / (1 - alpha_bar)), the ODE's clock."""
    return 0.5 * (torch.log(alpha_bar) - torch.log1p(-alpha_bar))


def dpm_solver_step(
    xt: torch.Tensor,
    x0_hat: torch.Tensor,
    alpha_bar_t: torch.Tensor,
    alpha_bar_next: torch.Tensor,
    *,
    x0_hat_last: torch.Tensor | None = None,
    alpha_bar_last: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One DPM-Solver++(2M) step from alpha_bar_t to alpha_bar_next (Lu et al. 2022, Alg. 2).

    With alpha = sqrt(alpha_bar), sigma = sqrt(1 - alpha_bar), lambda = log(alpha / sigma) and
    h = lambda_next - lambda_t:
        x_next = (sigma_next / sigma_t) x_t - alpha_next (exp(-h) - 1) D
    where D = x0_hat (first order, which is exactly a DDIM step) or, given the previous call's
    estimate x0_hat_last made at alpha_bar_last, the second-order correction
        D = (1 + 1/(2r)) x0_hat - 1/(2r) x0_hat_last,   r = h_last / h.
    A step to alpha_bar_next = 1 (clean data) returns x0_hat itself.

    With `noise`, the stochastic variant SDE-DPM-Solver++(2M) (Lu et al. 2022, Sec. 5):
        x_next = (sigma_next / sigma_t) exp(-h) x_t + alpha_next (1 - exp(-2h)) D
                 + sigma_next sqrt(1 - exp(-2h)) noise,
    whose first-order form is exactly the ancestral DDPM step (DDIM with eta = 1).
    Returns (x_next, x0_hat).
    """
    like = dict(device=xt.device, dtype=torch.float64)
    a_t = torch.as_tensor(alpha_bar_t, **like)
    a_next = torch.as_tensor(alpha_bar_next, **like)
    if not bool((a_next >= a_t).all()):
        raise ValueError("alpha_bar_next must be >= alpha_bar_t: a sampling step removes noise")
    if bool((a_next >= 1).all()):
        return x0_hat, x0_hat
    lam_t, lam_next = _half_log_snr(a_t), _half_log_snr(a_next)
    h = lam_next - lam_t
    D = x0_hat
    if x0_hat_last is not None:
        if alpha_bar_last is None:
            raise ValueError("x0_hat_last needs alpha_bar_last, the level it was estimated at")
        r = (lam_t - _half_log_snr(torch.as_tensor(alpha_bar_last, **like))) / h
        D = x0_hat + (0.5 / r).to(xt.dtype) * (x0_hat - x0_hat_last)
    ratio = ((1 - a_next) / (1 - a_t)).sqrt()
    if noise is None:
        coef = -a_next.sqrt() * torch.expm1(-h)  # -alpha_next (exp(-h) - 1) > 0
        return ratio.to(xt.dtype) * xt + coef.to(xt.dtype) * D, x0_hat
    keep = -torch.expm1(-2 * h)  # 1 - exp(-2h)
    x_next = (ratio * torch.exp(-h)).to(xt.dtype) * xt + (a_next.sqrt() * keep).to(xt.dtype) * D
    return x_next + ((1 - a_next) * keep).sqrt().to(xt.dtype) * noise, x0_hat


@torch.no_grad()
def dpm_solver_sample(
    model: nn.Module,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    *,
    num_steps: int = 20,
    spacing: Literal["trailing", "linspace", "leading"] = "trailing",
    prediction: str = "eps",
    cond: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
    clip_x0: bool = True,
    stochastic: bool = False,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> Iterator[SamplerStep]:
    """DPM-Solver++(2M) (Lu et al. 2022) over `num_steps` model calls, as a generator.

    Deterministic, like DDIM with eta = 0, but second order: each step reuses the previous
    x_0 estimate to correct for the curvature of the path. The first step and the last (to
    clean data) are first order. `clip_x0` clips each x_0 estimate to [-1, 1] (the paper's
    "thresholding" for pixel-space models). `stochastic=True` runs SDE-DPM-Solver++(2M): each
    step also adds fresh noise (drawn with `generator`), like ancestral DDPM with a second-order
    correction.
    Introduced in: notebooks/07_fast_sampling.ipynb
    """
    from tqdm.auto import tqdm

    timesteps = schedule.timesteps(num_steps, spacing).tolist()
    xt, x0_last, a_last = x_T, None, None
    for i, t in enumerate(tqdm(timesteps, disable=not progress, desc="DPM-Solver++(2M)")):
        output = _model_t(model, xt, t, cond, guidance_scale)
        a_t = schedule.alpha_bar[t].to(xt.device)
        _, x0_hat = predict_eps_x0(output, xt, a_t, prediction)
        if clip_x0:
            x0_hat = x0_hat.clamp(-1, 1)
        a_next = schedule.alpha_bar[timesteps[i + 1]] if i + 1 < len(timesteps) else 1.0
        noise = None
        if stochastic and i + 1 < len(timesteps):
            noise = randn(xt.shape, generator=generator, device=xt.device, dtype=xt.dtype)
        xt, _ = dpm_solver_step(
            xt, x0_hat, a_t, a_next, x0_hat_last=x0_last, alpha_bar_last=a_last, noise=noise
        )
        x0_last, a_last = x0_hat, a_t
        yield SamplerStep(i, t, xt, x0_hat)


SAMPLERS = ("ddpm", "ddim", "dpm_solver", "dpm_solver_sde")


def sample(
    model: nn.Module,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    *,
    sampler: str = "ddim",
    num_steps: int | None = None,
    eta: float | None = None,
    prediction: str = "eps",
    cond: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
    clip_x0: bool = True,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Run a sampler to the end and return the final images: the one-call convenience.

    sampler: "ddpm" (ancestral; with num_steps < T it takes ancestral steps on a strided grid,
    which is DDIM with eta = 1, Song et al. 2021, Sec. 4.1), "ddim" (eta = 0 unless given) or
    "dpm_solver" (DPM-Solver++(2M)) or "dpm_solver_sde" (its stochastic form). num_steps defaults
    to T for "ddpm", 50 for "ddim" and 20 for the solvers; each step is one model call.
    """
    common = dict(
        prediction=prediction,
        cond=cond,
        guidance_scale=guidance_scale,
        clip_x0=clip_x0,
        progress=progress,
    )
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; allowed: {', '.join(SAMPLERS)}")
    if sampler == "ddpm":
        if eta not in (None, 1.0):
            raise ValueError(f"ddpm is ancestral (eta = 1); use sampler='ddim' for eta={eta}")
        if num_steps is None or num_steps == len(schedule):
            steps = ddpm_sample(model, schedule, x_T, generator=generator, **common)
        else:
            steps = ddim_sample(
                model, schedule, x_T, num_steps=num_steps, eta=1.0, generator=generator, **common
            )
    elif sampler == "ddim":
        steps = ddim_sample(
            model,
            schedule,
            x_T,
            num_steps=50 if num_steps is None else num_steps,
            eta=0.0 if eta is None else eta,
            generator=generator,
            **common,
        )
    else:
        if eta is not None:
            raise ValueError(f"{sampler} takes no eta; use 'dpm_solver' or 'dpm_solver_sde'")
        steps = dpm_solver_sample(
            model,
            schedule,
            x_T,
            num_steps=20 if num_steps is None else num_steps,
            stochastic=sampler == "dpm_solver_sde",
            generator=generator,
            **common,
        )
    return last(steps)


@dataclass
class Trajectory:
    """Stored frames of a reverse run: what went into the model at each kept step, and its guess.

    `t[k]` is the code timestep of frame k (-1 for the finished images), `xt[k]` the batch the
    model saw there (B, C, H, W) and `x0_hat[k]` its x_0 estimate; the last frame holds the
    final images in both. Made by `Trajectory.record`; shown by `widgets.ReverseWalkthrough`.
    Introduced in: notebooks/06_sampling.ipynb
    """

    t: list[int]
    xt: torch.Tensor  # (K, B, C, H, W)
    x0_hat: torch.Tensor  # (K, B, C, H, W)

    @classmethod
    def record(
        cls, steps: Iterable[SamplerStep], x_T: torch.Tensor, *, every: int = 1
    ) -> Trajectory:
        """Run `steps` (a sampler started from `x_T`) and keep every `every`-th frame, on the CPU.

        The first frame (pure noise) and the finished images are always kept.
        """
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        ts, xts, x0s = [], [], []
        x_in, final = x_T, None
        for step in steps:
            if step.i % every == 0:
                ts.append(step.t)
                xts.append(x_in.detach().cpu())
                x0s.append(step.x0_hat.detach().cpu())
            x_in = final = step.xt
        if final is None:
            raise ValueError("the sampler yielded no steps")
        ts.append(-1)
        xts.append(final.detach().cpu())
        x0s.append(final.detach().cpu())
        return cls(ts, torch.stack(xts), torch.stack(x0s))

    def __len__(self) -> int:
        return len(self.t)

    @property
    def final(self) -> torch.Tensor:
        """The finished images (B, C, H, W)."""
        return self.xt[-1]

    def closeness(self, which: str = "xt") -> torch.Tensor:
        """Per frame, the correlation of x_t (or of x0_hat) with the finished images, batch mean.

        0 means nothing of the final image is visible yet, 1 means it is all there.
        """
        if which not in ("xt", "x0_hat"):
            raise ValueError(f"which must be 'xt' or 'x0_hat', got {which!r}")
        flat_x = getattr(self, which).flatten(2)
        flat_final = self.final.flatten(1)[None]
        x = flat_x - flat_x.mean(-1, keepdim=True)
        y = flat_final - flat_final.mean(-1, keepdim=True)
        corr = (x * y).sum(-1) / (x.norm(dim=-1) * y.norm(dim=-1)).clamp(min=1e-12)
        return corr.mean(-1)

    def stages(self, thresholds=(0.25, 0.6, 0.9), noun: str = "image") -> list[str]:
        """Name each frame by `closeness`: pure noise, faint shape, rough image, clear image.

        A frame is a "faint shape" once its correlation with the finished images passes the
        first threshold, "rough" past the second and "clear" past the third. `noun` names
        what is being drawn ("rough digit").
        """
        names = ("pure noise", "faint shape", f"rough {noun}", f"clear {noun}")
        corr = self.closeness().tolist()
        return [names[sum(c >= th for th in thresholds)] for c in corr]


def slerp(a: torch.Tensor, b: torch.Tensor, w: float | torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between two noises, each taken as one vector: w = 0 gives a.

    Gaussian noise of dimension d lies near a sphere of radius sqrt(d); a straight blend
    (1 - w) a + w b shrinks towards the centre (its norm dips by up to sqrt(2) at w = 0.5),
    which the model never saw during training. slerp stays on the sphere (Shoemake 1985).
    Introduced in: notebooks/07_fast_sampling.ipynb
    """
    if a.shape != b.shape:
        raise ValueError(f"a and b differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")
    w = torch.as_tensor(w, dtype=a.dtype, device=a.device)
    a_flat, b_flat = a.flatten(), b.flatten()
    cos = (a_flat @ b_flat) / (a_flat.norm() * b_flat.norm())
    theta = torch.arccos(cos.clamp(-1, 1))
    if theta.abs() < 1e-4:  # almost parallel: the straight blend is the same to first order
        return (1 - w) * a + w * b
    return (torch.sin((1 - w) * theta) * a + torch.sin(w * theta) * b) / torch.sin(theta)
