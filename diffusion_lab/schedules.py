"""Noise schedules: how much of the image is left at each timestep.

A schedule is data (the T values of alpha_bar) plus views derived from it (betas, alphas,
sigmas, SNR). Code timesteps run t = 0 .. T-1, the convention of the DDPM code and of
diffusers: `alpha_bar[0]` belongs to the first noisy level (the paper's x_1) and
`alpha_bar[T-1]` to pure noise (the paper's x_T).

Introduced in: notebooks/03_noise_schedules.ipynb
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch

from .utils import append_dims

__all__ = [
    "SCHEDULES",
    "NoiseSchedule",
    "cosine_alpha_bar",
    "get_schedule",
    "linear_betas",
    "sigmoid_alpha_bar",
]

MAX_BETA = 0.999  # clip of Nichol & Dhariwal (2021), avoids a singular last step


def linear_betas(
    num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
) -> torch.Tensor:
    """Linear beta schedule of Ho et al. (2020), sec. 4. Defaults reproduce the paper. float64."""
    _check_num_timesteps(num_timesteps)
    if not 0 < beta_start <= beta_end < 1:
        raise ValueError(
            f"need 0 < beta_start <= beta_end < 1, got beta_start={beta_start}, beta_end={beta_end}"
        )
    return torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)


def _alpha_bar_from_function(f: Callable[[torch.Tensor], torch.Tensor], num_timesteps: int):
    """Discretise a continuous alpha_bar(tau), tau in [0, 1], into T values via clipped betas.

    beta_t = min(1 - f(tau_{t+1}) / f(tau_t), 0.999), alpha_bar = cumprod(1 - beta), as in
    Nichol & Dhariwal (2021), eq. 17 and the text after it.
    """
    tau = torch.linspace(0, 1, num_timesteps + 1, dtype=torch.float64)
    values = f(tau)
    betas = (1 - values[1:] / values[:-1]).clamp(max=MAX_BETA)
    return torch.cumprod(1 - betas, dim=0)


def cosine_alpha_bar(num_timesteps: int = 1000, s: float = 0.008) -> torch.Tensor:
    """Cosine schedule of Nichol & Dhariwal (2021), eq. 17, as alpha_bar (betas clipped at 0.999).

    alpha_bar(tau) = f(tau) / f(0) with f(tau) = cos(((tau + s) / (1 + s)) * pi / 2) ** 2.
    """
    _check_num_timesteps(num_timesteps)
    if s < 0:
        raise ValueError(f"the cosine offset s must be >= 0, got {s}")

    def f(tau: torch.Tensor) -> torch.Tensor:
        return torch.cos((tau + s) / (1 + s) * math.pi / 2) ** 2

    return _alpha_bar_from_function(f, num_timesteps)


def sigmoid_alpha_bar(
    num_timesteps: int = 1000, start: float = -3.0, end: float = 3.0, tau: float = 1.0
) -> torch.Tensor:
    """Sigmoid schedule of Jabri et al. (2022), "Scalable Adaptive Computation...", Alg. 1.

    alpha_bar(u) is a falling sigmoid over u in [0, 1], rescaled to run from 1 to 0; betas are
    clipped at 0.999 as for the cosine schedule. Defaults are the paper's (start=-3, end=3, tau=1).
    """
    _check_num_timesteps(num_timesteps)
    if not start < end or tau <= 0:
        raise ValueError(f"need start < end and tau > 0, got start={start}, end={end}, tau={tau}")
    v_start = torch.sigmoid(torch.tensor(start / tau, dtype=torch.float64))
    v_end = torch.sigmoid(torch.tensor(end / tau, dtype=torch.float64))

    def f(u: torch.Tensor) -> torch.Tensor:
        return (v_end - torch.sigmoid((u * (end - start) + start) / tau)) / (v_end - v_start)

    return _alpha_bar_from_function(f, num_timesteps)


def _check_num_timesteps(num_timesteps: int) -> None:
    if not isinstance(num_timesteps, int) or isinstance(num_timesteps, bool) or num_timesteps < 1:
        raise ValueError(f"num_timesteps must be a positive int, got {num_timesteps!r}")


class NoiseSchedule:
    """A discrete variance-preserving noise schedule (Ho et al. 2020, sec. 2).

    Source of truth: `alpha_bar` (T,), the share of signal variance left at each timestep.
    Everything else is a derived view: `betas` (noise added per step), `alphas = 1 - betas`,
    `sigmas = sqrt((1 - alpha_bar) / alpha_bar)`, `snr(t)` and `log_snr(t)`.
    Build one with `NoiseSchedule.linear()`, `.cosine()` or `.sigmoid()`.

    Introduced in: notebooks/03_noise_schedules.ipynb
    """

    def __init__(self, alpha_bar: torch.Tensor, *, name: str = "custom"):
        alpha_bar = torch.as_tensor(alpha_bar, dtype=torch.float64)
        if alpha_bar.ndim != 1 or len(alpha_bar) < 1:
            raise ValueError(
                f"alpha_bar must be a 1-D tensor of length T >= 1, got shape "
                f"{tuple(alpha_bar.shape)}"
            )
        if not torch.isfinite(alpha_bar).all() or (alpha_bar <= 0).any() or (alpha_bar > 1).any():
            raise ValueError("alpha_bar values must lie in (0, 1]")
        if (alpha_bar[1:] > alpha_bar[:-1]).any():
            raise ValueError("alpha_bar must not increase with t: noise only ever gets added")
        # derived in float64 from the float64 source, then kept as float32 (lucidrains does this)
        prev = torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])
        betas = 1 - alpha_bar / prev
        self.name = name
        self.alpha_bar = alpha_bar.float()  # (T,)
        self.alpha_bar_prev = prev.float()  # (T,), alpha_bar_{t-1}, with alpha_bar_{-1} = 1
        self.betas = betas.float()  # (T,)
        self.alphas = (1 - betas).float()  # (T,)
        # posterior q(x_{t-1} | x_t, x_0) coefficients (Ho et al. 2020, eq. 7), in float64 first:
        # 1 - alpha_bar loses digits in float32 at small t
        self.posterior_coef_x0 = (prev.sqrt() * betas / (1 - alpha_bar)).float()  # (T,)
        self.posterior_coef_xt = ((1 - betas).sqrt() * (1 - prev) / (1 - alpha_bar)).float()
        self.posterior_variance = (betas * (1 - prev) / (1 - alpha_bar)).float()  # (T,), 0 at t=0

    # ----- constructors: explicit keyword arguments with the papers' defaults -----
    @classmethod
    def linear(
        cls, num_timesteps: int = 1000, *, beta_start: float = 1e-4, beta_end: float = 0.02
    ) -> NoiseSchedule:
        """Linear betas of Ho et al. (2020); defaults reproduce the paper."""
        betas = linear_betas(num_timesteps, beta_start, beta_end)
        return cls(torch.cumprod(1 - betas, dim=0), name="linear")

    @classmethod
    def cosine(cls, num_timesteps: int = 1000, *, s: float = 0.008) -> NoiseSchedule:
        """Cosine alpha_bar of Nichol & Dhariwal (2021), betas clipped at 0.999."""
        return cls(cosine_alpha_bar(num_timesteps, s), name="cosine")

    @classmethod
    def sigmoid(
        cls, num_timesteps: int = 1000, *, start: float = -3.0, end: float = 3.0, tau: float = 1.0
    ) -> NoiseSchedule:
        """Sigmoid alpha_bar of Jabri et al. (2022), betas clipped at 0.999."""
        return cls(sigmoid_alpha_bar(num_timesteps, start, end, tau), name="sigmoid")

    # ----- basic protocol -----
    @property
    def num_timesteps(self) -> int:
        return len(self.alpha_bar)

    def __len__(self) -> int:
        return self.num_timesteps

    def __repr__(self) -> str:
        return (
            f"NoiseSchedule.{self.name}(num_timesteps={self.num_timesteps}): alpha_bar from "
            f"{self.alpha_bar[0].item():.4f} to {self.alpha_bar[-1].item():.2e}, "
            f"device={self.device}"
        )

    @property
    def device(self) -> torch.device:
        return self.alpha_bar.device

    def to(self, device: torch.device | str) -> NoiseSchedule:
        """A copy with every tensor on `device`."""
        new = object.__new__(NoiseSchedule)
        new.name = self.name
        for key, value in vars(self).items():
            setattr(new, key, value.to(device) if isinstance(value, torch.Tensor) else value)
        return new

    # ----- derived views -----
    @property
    def sigmas(self) -> torch.Tensor:
        """Noise-to-signal ratio sigma_t = sqrt((1 - alpha_bar) / alpha_bar), the VE/Karras view."""
        return ((1 - self.alpha_bar) / self.alpha_bar).sqrt()

    def check_t(self, t: torch.Tensor | int) -> torch.Tensor:
        """Return `t` as a LongTensor after checking it is a whole number in [0, T-1]."""
        t = torch.as_tensor(t)
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(
                f"timesteps must be integers in [0, {len(self) - 1}], got dtype {t.dtype}"
            )
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= len(self)):
            raise ValueError(
                f"timestep out of range: got values in [{int(t.min())}, {int(t.max())}], but this "
                f"schedule has T={len(self)}, so t must lie in [0, {len(self) - 1}]"
            )
        return t.long()

    def at(self, values: torch.Tensor, t: torch.Tensor | int, like: torch.Tensor | None = None):
        """Gather `values[t]`; with `like`, move to its device/dtype and broadcast to its shape."""
        t = self.check_t(t)
        out = values.to(t.device)[t]
        if like is None:
            return out
        out = out.to(device=like.device, dtype=like.dtype)
        return append_dims(out, like.ndim) if out.ndim else out

    def snr(self, t: torch.Tensor | int | None = None) -> torch.Tensor:
        """Signal-to-noise ratio alpha_bar / (1 - alpha_bar) (Kingma et al. 2021, eq. 2).

        All T values if `t` is None, else the values at `t`.
        """
        snr = self.alpha_bar / (1 - self.alpha_bar)
        return snr if t is None else self.at(snr, t)

    def log_snr(self, t: torch.Tensor | int | None = None) -> torch.Tensor:
        """Natural log of the SNR, lambda_t = log(alpha_bar) - log(1 - alpha_bar)."""
        log_snr = self.alpha_bar.log() - torch.log1p(-self.alpha_bar)
        return log_snr if t is None else self.at(log_snr, t)

    def timesteps(
        self, num_steps: int, spacing: Literal["trailing", "linspace", "leading"] = "trailing"
    ) -> torch.Tensor:
        """Descending timesteps for a sampler with `num_steps` steps.

        "trailing" (the default) always starts at T-1, as Lin et al. (2024, Table 2) recommend;
        "leading" (diffusers' default) starts at (T // num_steps) * (num_steps - 1), below T-1
        (900 for 10 of 1000 steps); "linspace" runs from T-1 to 0.
        """
        T = len(self)
        if not isinstance(num_steps, int) or not 1 <= num_steps <= T:
            raise ValueError(f"num_steps must be an int in [1, T={T}], got {num_steps!r}")
        if spacing == "trailing":
            # arange with a float step can overshoot by one value (for 61 of 1000, say): cut it
            ts = torch.arange(T, 0, -T / num_steps, dtype=torch.float64)[:num_steps]
            ts = torch.round(ts) - 1
        elif spacing == "linspace":
            ts = torch.round(torch.linspace(T - 1, 0, num_steps, dtype=torch.float64))
        elif spacing == "leading":
            ts = torch.arange(num_steps - 1, -1, -1, dtype=torch.float64) * (T // num_steps)
        else:
            raise ValueError(
                f"unknown spacing {spacing!r}; allowed: 'trailing', 'linspace', 'leading'"
            )
        return ts.long()

    def sample_t(
        self,
        batch_size: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        logit_normal: tuple[float, float] | None = None,
    ) -> torch.Tensor:
        """Timesteps in [0, T-1], one per example (the training distribution).

        Uniform by default (Ho et al. 2020, Algorithm 1). With `logit_normal=(mean, std)`, the
        fraction t/T is drawn as sigmoid(mean + std * z), z ~ N(0, 1): the logit-normal density
        of Esser et al. (2024, SD3, Sec. 3.1), which spends more of training on the middle
        (mean 0) or, with mean > 0, the noisier half of the chain (notebooks/05_training).
        """
        gen_device = generator.device if generator is not None else torch.device("cpu")
        if logit_normal is None:
            t = torch.randint(0, len(self), (batch_size,), generator=generator, device=gen_device)
        else:
            mean, std = _check_logit_normal(logit_normal)
            z = torch.randn(batch_size, generator=generator, device=gen_device)
            t = (torch.sigmoid(mean + std * z) * len(self)).long().clamp_(max=len(self) - 1)
        return t.to(device) if device is not None else t


def _check_logit_normal(logit_normal: tuple[float, float]) -> tuple[float, float]:
    """(mean, std) as floats, or a ValueError saying what a logit-normal density needs."""
    try:
        mean, std = (float(v) for v in logit_normal)
    except (TypeError, ValueError):
        mean, std = math.nan, math.nan
    if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
        raise ValueError(
            f"logit_normal must be (mean, std) with a finite mean and std > 0, got {logit_normal!r}"
        )
    return mean, std


# a registry for dropdowns; code should prefer the classmethods
SCHEDULES: dict[str, Callable[..., NoiseSchedule]] = {
    "linear": NoiseSchedule.linear,
    "cosine": NoiseSchedule.cosine,
    "sigmoid": NoiseSchedule.sigmoid,
}


def get_schedule(name: str, num_timesteps: int = 1000, **kwargs) -> NoiseSchedule:
    """Build a schedule by name ("linear", "cosine" or "sigmoid"), for widgets and scripts."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; allowed: {', '.join(sorted(SCHEDULES))}")
    return SCHEDULES[name](num_timesteps, **kwargs)
