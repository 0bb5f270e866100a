"""2-D toys for comparing generative models: a small diffusion MLP, a GAN of the same size, and
the measures that say which one found every mode.

The classic test is a ring of 8 small Gaussians (`data.gaussian_ring`): a GAN trained on it
tends to drop modes (mode collapse), a diffusion model learns all of them. Three numbers make
that measurable: how many modes receive samples and what share of samples lands near one
(`mode_coverage`), and how far the sample set is from the data set (`energy_distance`,
`mmd_rbf`).

The diffusion model follows the course contract `model(xt, t, cond=None) -> like xt` and trains
with `training.train` and samples with `samplers.sample`. Keep toy data inside [-1, 1], as
`q_sample` checks: `gaussian_ring(n, radius=0.75, std=0.05)` fits, the default radius 1 does not.

Introduced in: notebooks/12_why_diffusion.ipynb (also used in notebooks/13_beyond_images.ipynb)
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .models.embeddings import SinusoidalEmbedding, batch_timesteps
from .utils import randn

__all__ = [
    "Discriminator",
    "GANStep",
    "Generator",
    "MLPDenoiser",
    "energy_distance",
    "gan_sample",
    "mmd_rbf",
    "mode_coverage",
    "ring_centres",
    "train_gan",
]


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_points(x: torch.Tensor, dim: int, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != dim:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a tensor of points (B, {dim}), got {shape}")


def _num_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----- the diffusion model -----
class MLPDenoiser(nn.Module):
    """A small MLP noise predictor for points: model(xt (B, dim), t, cond=None) -> (B, dim).

    `t` is an integer timestep, a scalar or (B,), turned into sinusoidal features (Vaswani et
    al. 2017, as in Ho et al. 2020) that are projected and added to every hidden layer.
    `depth` counts the hidden layers (SiLU); the output layer starts at zero, so an untrained
    model predicts eps = 0.
    Introduced in: notebooks/12_why_diffusion.ipynb
    """

    def __init__(self, dim: int = 2, *, hidden: int = 128, depth: int = 3, time_dim: int = 32):
        super().__init__()
        _check_sizes(dim=dim, hidden=hidden, depth=depth, time_dim=time_dim)
        if time_dim % 2:
            raise ValueError(f"time_dim must be even (sin and cos pairs), got {time_dim}")
        self.config = dict(dim=dim, hidden=hidden, depth=depth, time_dim=time_dim)
        self.input_shape = (dim,)  # samplers draw x_T as randn(n, *input_shape)
        self.time_embed = SinusoidalEmbedding(time_dim)
        self.time_proj = nn.Linear(time_dim, depth * hidden)  # one time vector per hidden layer
        self.layers = nn.ModuleList(
            nn.Linear(dim if i == 0 else hidden, hidden) for i in range(depth)
        )
        self.output = nn.Linear(hidden, dim)
        nn.init.zeros_(self.output.weight)  # start by predicting 0: a calm first step
        nn.init.zeros_(self.output.bias)

    def forward(
        self, xt: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        _check_points(xt, self.config["dim"], "xt")
        if cond is not None:
            raise ValueError("MLPDenoiser is unconditional: call it with cond=None")
        t = batch_timesteps(t, xt)  # (B,)
        if t.is_floating_point():
            raise ValueError(f"t must hold integer timesteps in [0, T-1], got dtype {t.dtype}")
        emb = self.time_proj(self.time_embed(t)).to(xt.dtype)  # (B, depth * hidden)
        h = xt  # (B, dim)
        for layer, time_h in zip(self.layers, emb.chunk(len(self.layers), dim=1)):
            h = F.silu(layer(h) + time_h)  # (B, hidden)
        return self.output(h)  # (B, dim)

    def num_parameters(self) -> int:
        """Number of parameters, to compare model sizes."""
        return _num_parameters(self)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())


# ----- the GAN baseline -----
def _mlp(in_dim: int, hidden: int, depth: int, out_dim: int, activation: nn.Module):
    layers = []
    for i in range(depth):
        layers += [nn.Linear(in_dim if i == 0 else hidden, hidden), activation]
    return nn.Sequential(*layers, nn.Linear(hidden, out_dim))


class Generator(nn.Module):
    """A GAN generator (Goodfellow et al. 2014): latent z (B, latent_dim) -> points (B, dim).

    The body matches `MLPDenoiser` (`depth` SiLU hidden layers of `hidden` units), so the two
    models have about the same size. The default latent_dim = dim = 2 gives the GAN as many
    input numbers as a diffusion sampler starts from.
    Introduced in: notebooks/12_why_diffusion.ipynb
    """

    def __init__(self, latent_dim: int = 2, *, dim: int = 2, hidden: int = 128, depth: int = 3):
        super().__init__()
        _check_sizes(latent_dim=latent_dim, dim=dim, hidden=hidden, depth=depth)
        self.config = dict(latent_dim=latent_dim, dim=dim, hidden=hidden, depth=depth)
        self.net = _mlp(latent_dim, hidden, depth, dim, nn.SiLU())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_points(z, self.config["latent_dim"], "z")
        return self.net(z)  # (B, dim)

    def num_parameters(self) -> int:
        """Number of parameters, to compare model sizes."""
        return _num_parameters(self)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())


class Discriminator(nn.Module):
    """A GAN discriminator: points (B, dim) -> logits (B,), high for "real".

    LeakyReLU(0.2) hidden layers, as in DCGAN (Radford et al. 2016).
    Introduced in: notebooks/12_why_diffusion.ipynb
    """

    def __init__(self, dim: int = 2, *, hidden: int = 128, depth: int = 3):
        super().__init__()
        _check_sizes(dim=dim, hidden=hidden, depth=depth)
        self.config = dict(dim=dim, hidden=hidden, depth=depth)
        self.net = _mlp(dim, hidden, depth, 1, nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_points(x, self.config["dim"], "x")
        return self.net(x).squeeze(1)  # (B,)

    def num_parameters(self) -> int:
        """Number of parameters, to compare model sizes."""
        return _num_parameters(self)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())


@dataclass
class GANStep:
    """What `train_gan` yields after each pair of updates (discriminator, then generator)."""

    step: int  # updates done so far (1 after the first)
    d_loss: float  # -log D(x) - log(1 - D(G(z))), log 4 = 1.386 when D cannot tell
    g_loss: float  # -log D(G(z)), the non-saturating generator loss
    seconds: float  # wall time since this call to train_gan() started


def train_gan(
    generator: Generator,
    discriminator: Discriminator,
    data: torch.Tensor,
    *,
    num_steps: int,
    batch_size: int = 128,
    lr: float = 2e-4,
    generator_rng: torch.Generator | None = None,
) -> Iterator[GANStep]:
    """Train a GAN on points `data` (N, dim) and yield a GANStep after every step.

    Each step (Goodfellow et al. 2014, Algorithm 1, with k = 1):
    1. the discriminator takes one Adam step on -log D(x) - log(1 - D(G(z)));
    2. the generator takes one Adam step on the non-saturating loss -log D(G(z)) (sec. 3),
       which keeps its gradient alive while D still wins easily.
    Adam with betas (0.5, 0.999) and lr = 2e-4 follow DCGAN (Radford et al. 2016). Batches and
    latents are drawn with `generator_rng` (named so because `generator` is the model).
    Introduced in: notebooks/12_why_diffusion.ipynb
    """
    dim = generator.config["dim"]
    _check_points(data, dim, "data")
    if len(data) == 0:
        raise ValueError("data must hold at least one point")
    _check_sizes(num_steps=num_steps, batch_size=batch_size)
    rng = generator_rng if generator_rng is not None else torch.Generator().manual_seed(0)
    device = next(generator.parameters()).device
    latent_shape = (batch_size, generator.config["latent_dim"])
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    generator.train()
    discriminator.train()
    start = time.perf_counter()
    for step in range(1, num_steps + 1):
        index = torch.randint(len(data), (batch_size,), generator=rng, device=rng.device)
        real = data[index.to(data.device)].to(device)  # (B, dim)
        z = randn(latent_shape, generator=rng, device=device, dtype=real.dtype)  # (B, latent)
        fake = generator(z)  # (B, dim)
        # 1. discriminator: softplus(-l) = -log sigmoid(l), softplus(l) = -log(1 - sigmoid(l))
        d_loss = (
            F.softplus(-discriminator(real)).mean()
            + F.softplus(discriminator(fake.detach())).mean()
        )
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # 2. generator: maximise log D(G(z)) against the updated discriminator
        g_loss = F.softplus(-discriminator(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if not (torch.isfinite(d_loss) and torch.isfinite(g_loss)):
            raise FloatingPointError(
                f"GAN losses became d={d_loss.item()}, g={g_loss.item()} at step {step}; "
                f"try a smaller learning rate (lr={lr} now)"
            )
        yield GANStep(step, d_loss.item(), g_loss.item(), time.perf_counter() - start)


@torch.no_grad()
def gan_sample(
    generator: Generator, n: int, *, generator_rng: torch.Generator | None = None
) -> torch.Tensor:
    """Draw `n` points (n, dim) from a GAN generator: x = G(z), z ~ N(0, I).

    The latents are drawn with `generator_rng` on its device, then moved to the model's.
    Introduced in: notebooks/12_why_diffusion.ipynb
    """
    _check_sizes(n=n)
    weight = next(generator.parameters())
    z = randn(
        (n, generator.config["latent_dim"]),
        generator=generator_rng,
        device=weight.device,
        dtype=weight.dtype,
    )  # (n, latent_dim)
    return generator(z)  # (n, dim)


# ----- measures on point sets -----
def ring_centres(num_modes: int = 8, *, radius: float = 1.0) -> torch.Tensor:
    """The centres (num_modes, 2) of `data.gaussian_ring`, mode k at angle 2 pi k / num_modes."""
    _check_sizes(num_modes=num_modes)
    angle = 2 * math.pi * torch.arange(num_modes) / num_modes  # (K,)
    return radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)  # (K, 2)


def mode_coverage(
    samples: torch.Tensor, centres: torch.Tensor, *, radius: float, min_share: float = 0.01
) -> dict:
    """How many modes a sample set covers, and how many of its samples are good.

    Each sample is assigned to its nearest centre and counts as high quality when it lies
    within `radius` of it; Srivastava et al. (2017, VEEGAN, sec. 5.1) use three standard
    deviations of the mode (radius = 3 * std). A mode counts as covered when at least
    `min_share` of all samples land on it, so one stray sample does not cover a mode.
    Returns dict(covered=int, shares=(K,) share of samples on each mode, quality=float, the
    share of samples within `radius` of some centre).
    Introduced in: notebooks/12_why_diffusion.ipynb
    """
    if centres.ndim != 2 or len(centres) == 0:
        raise ValueError(f"centres must be a tensor (K, D) with K >= 1, got {tuple(centres.shape)}")
    _check_points(samples, centres.shape[1], "samples")
    if len(samples) == 0:
        raise ValueError("samples must hold at least one point")
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    if not 0 < min_share <= 1:
        raise ValueError(f"min_share must lie in (0, 1], got {min_share}")
    x = samples.detach().double()
    distance = torch.cdist(x, centres.to(x.device, x.dtype))  # (N, K)
    nearest_distance, nearest = distance.min(dim=1)  # (N,), (N,)
    good = nearest_distance <= radius  # (N,) high-quality samples
    counts = torch.bincount(nearest[good], minlength=len(centres))  # (K,)
    shares = counts.float() / len(x)  # (K,)
    return dict(
        covered=int((shares >= min_share).sum()),
        shares=shares.cpu(),
        quality=good.double().mean().item(),
    )


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        raise ValueError(
            "a and b must be non-empty point sets (N, D) and (M, D) with the same D, "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely & Rizzo 2013, eq. 2.1).

    a (N, D) and b (M, D) are samples of X and Y. This is the V-statistic: the within-set means
    run over all N^2 and M^2 pairs (zero diagonal included), so it is the exact energy distance
    of the two empirical distributions: >= 0, and 0 when a and b are the same set.
    Introduced in: notebooks/12_why_diffusion.ipynb
    """
    _check_pair(a, b)
    x = a.detach().double()
    y = b.detach().to(x.device, torch.float64)
    between = torch.cdist(x, y).mean()
    return (2 * between - torch.cdist(x, x).mean() - torch.cdist(y, y).mean()).item()


def mmd_rbf(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    bandwidths: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5, 1.0),
) -> float:
    """Squared maximum mean discrepancy with a sum of RBF kernels (Gretton et al. 2012, eq. 5).

    k(x, y) = sum over bandwidths s of exp(-|x - y|^2 / (2 s^2)); the V-statistic (biased)
    form, so it is >= 0 and 0 for identical sets. The default bandwidths suit data of spread 1.
    Introduced in: notebooks/12_why_diffusion.ipynb
    """
    _check_pair(a, b)
    if not bandwidths or any(not s > 0 for s in bandwidths):
        raise ValueError(
            f"bandwidths must be a non-empty tuple of positive numbers, got {bandwidths}"
        )
    x = a.detach().double()
    y = b.detach().to(x.device, torch.float64)
    scales = torch.tensor(bandwidths, dtype=torch.float64, device=x.device)

    def kernel_mean(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        sq = torch.cdist(u, v).square()[..., None]  # (N, M, 1)
        return torch.exp(-sq / (2 * scales**2)).sum(-1).mean()

    return (kernel_mean(x, x) + kernel_mean(y, y) - 2 * kernel_mean(x, y)).item()
