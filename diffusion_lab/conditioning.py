"""Conditioning and classifier-free guidance: one convention, written once.

A conditional model follows the course contract `model(xt, t, cond)` and also offers
`model.null_cond(cond)`: the "no condition" input of the same shape (the null label for class
labels, the empty prompt for text). Training replaces a random share `p_uncond` of the
conditions with it (`drop_cond`), so the one network learns both p(x | c) and p(x).
Sampling then mixes the two predictions (`cfg_combine`), in one batched call
(`guided_output`). Ho & Salimans (2022), "Classifier-Free Diffusion Guidance".

Introduced in: notebooks/08_conditioning.ipynb
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["cfg_combine", "drop_cond", "guided_output", "null_cond"]


def null_cond(model: nn.Module, cond: torch.Tensor) -> torch.Tensor:
    """The model's "no condition" input shaped like `cond`; a clear error if it has none."""
    make = getattr(model, "null_cond", None)
    if make is None:
        raise ValueError(
            f"{type(model).__name__} has no null_cond(): it was not built as a conditional model "
            "(for digits use UNet(num_classes=10); for text, TextConditionedUNet)"
        )
    return make(cond)


def drop_cond(
    cond: torch.Tensor,
    null: torch.Tensor,
    p_uncond: float,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Replace each example's condition by `null` with probability `p_uncond` (training only).

    cond and null: (B, ...) of the same shape. Returns a new tensor; `cond` is not changed.
    """
    if not 0.0 <= p_uncond <= 1.0:
        raise ValueError(f"p_uncond is a probability in [0, 1], got {p_uncond}")
    if null.shape != cond.shape:
        raise ValueError(f"null {tuple(null.shape)} must have cond's shape {tuple(cond.shape)}")
    if p_uncond == 0:
        return cond.clone()
    drop = torch.rand(len(cond), generator=generator).to(cond.device) < p_uncond  # (B,)
    return torch.where(drop.view(-1, *([1] * (cond.ndim - 1))), null, cond)


def cfg_combine(
    eps_uncond: torch.Tensor, eps_cond: torch.Tensor, guidance_scale: float
) -> torch.Tensor:
    """Classifier-free guidance: eps_uncond + w * (eps_cond - eps_uncond) (Ho & Salimans, eq. 6).

    diffusers convention: w = 1 is the plain conditional model, w = 0 the unconditional one,
    w > 1 pushes past the conditional prediction, away from the unconditional one. The paper
    (and smalldiffusion) write (1 + w') eps_cond - w' eps_uncond instead, so their w' = w - 1.
    The same mix applies to x0 or v outputs: each is linear in eps for a fixed x_t.
    """
    return eps_uncond + guidance_scale * (eps_cond - eps_uncond)


def guided_output(
    model: nn.Module,
    xt: torch.Tensor,
    t: torch.Tensor,
    cond: torch.Tensor,
    guidance_scale: float = 1.0,
) -> torch.Tensor:
    """The model's guided prediction at (xt, t): one batched call for both halves.

    guidance_scale = 1 needs no unconditional half, and 0 no conditional half: one plain call.
    """
    if guidance_scale == 1.0:
        return model(xt, t, cond)
    if guidance_scale == 0.0:  # the unconditional model alone
        return model(xt, t, null_cond(model, cond))
    both = model(
        torch.cat([xt, xt]), torch.cat([t, t]), torch.cat([null_cond(model, cond), cond])
    )  # (2B, *D): the unconditional half first
    eps_uncond, eps_cond = both.chunk(2)
    return cfg_combine(eps_uncond, eps_cond, guidance_scale)
