"""Deterministic fake models for sampler and training tests (STYLE.md 4.10)."""

import torch
from torch import nn

from diffusion_lab.schedules import NoiseSchedule


class OracleModel(nn.Module):
    """Knows the clean data x0, so it returns exactly the eps (or x0, or v) hidden in x_t."""

    def __init__(self, x0: torch.Tensor, schedule: NoiseSchedule, prediction: str = "eps"):
        super().__init__()
        self.x0, self.schedule, self.prediction = x0, schedule, prediction
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, xt, t, cond=None):
        a = self.schedule.at(self.schedule.alpha_bar, t, like=xt)
        eps = (xt - a.sqrt() * self.x0) / (1 - a).sqrt()
        if self.prediction == "eps":
            return eps + 0 * self.dummy
        if self.prediction == "x0":
            return self.x0 + 0 * self.dummy
        return a.sqrt() * eps - (1 - a).sqrt() * self.x0 + 0 * self.dummy


class ZeroModel(nn.Module):
    """Predicts eps = 0 everywhere."""

    def forward(self, xt, t, cond=None):
        return torch.zeros_like(xt)


def gen_at(seed: int) -> torch.Generator:
    """A fresh CPU generator at `seed`."""
    return torch.Generator().manual_seed(seed)


def seeded(make, seed: int = 0):
    """Build a model with seeded initial weights without touching the global RNG stream."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return make()
