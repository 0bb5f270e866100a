"""Pretrained models bundled with the course, and the script that trained them.

`load_pretrained("digits")` returns a ready model (EMA weights, eval mode) with its schedule
and prediction type. The weights were trained by

    python -m diffusion_lab.pretrained train digits

which runs the same `train()` loop the lessons use, only longer; `weights.json` beside the
weights records how long that took and on what hardware. Loading checks the file's SHA-256
and uses `torch.load(..., weights_only=True)`.

Introduced in: notebooks/05_training.ipynb
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch
from torch import nn

from .data import load_mnist
from .models import UNet
from .schedules import NoiseSchedule
from .training import EMA, train
from .weights import _manifest, load_bundled, save_bundled

__all__ = ["RECIPES", "Pretrained", "load_pretrained", "train_pretrained"]

# name -> how it was trained; the lessons' own defaults are the same recipe, run shorter
RECIPES = {
    "digits": dict(
        model=dict(in_channels=1, image_size=28, channels=(16, 32, 64), attention=True),
        schedule="cosine",
        prediction="v",
        num_steps=6000,
        batch_size=128,
        lr=2e-3,
        ema_decay=0.999,
    ),
}


@dataclass
class Pretrained:
    """A bundled model with everything needed to sample from it."""

    model: nn.Module
    schedule: NoiseSchedule
    prediction: str
    info: dict  # how it was trained (steps, minutes, hardware)


def _check_name(name: str) -> dict:
    if name not in RECIPES:
        raise ValueError(f"unknown pretrained model {name!r}; available: {', '.join(RECIPES)}")
    return RECIPES[name]


def load_pretrained(name: str = "digits") -> Pretrained:
    """Load bundled weights `name` (checksummed, weights_only) into a model in eval mode."""
    recipe = _check_name(name)
    payload = load_bundled(f"{name}.pt")
    model = UNet(**payload["config"])
    state = {k: v.float() for k, v in payload["model"].items()}  # stored in float16
    model.load_state_dict(state)
    schedule = getattr(NoiseSchedule, payload["schedule"])()
    info = {k: v for k, v in _manifest()[f"{name}.pt"].items() if k != "sha256"}
    assert payload["prediction"] == recipe["prediction"], "weights and recipe disagree"
    return Pretrained(model.eval().requires_grad_(False), schedule, payload["prediction"], info)


def train_pretrained(
    name: str, *, num_steps: int | None = None, seed: int = 0, checkpoint: str | None = None
) -> Pretrained:
    """Train the bundled model `name` with its recipe and write it into the package's assets.

    With `checkpoint`, progress is saved there as it goes and an interrupted run resumes.
    """
    import os
    import platform

    recipe = _check_name(name)
    num_steps = num_steps or recipe["num_steps"]
    torch.manual_seed(seed)
    model = UNet(**recipe["model"])
    ema = EMA(model, recipe["ema_decay"])
    schedule = getattr(NoiseSchedule, recipe["schedule"])()
    x0, _ = load_mnist()
    start = time.perf_counter()
    for _ in train(
        model,
        x0,
        schedule,
        num_steps=num_steps,
        batch_size=recipe["batch_size"],
        lr=recipe["lr"],
        prediction=recipe["prediction"],
        ema=ema,
        generator=torch.Generator().manual_seed(seed),
    ):
        pass
    minutes = (time.perf_counter() - start) / 60
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in model.config.items()}
    payload = {
        "config": config,
        "schedule": recipe["schedule"],
        "prediction": recipe["prediction"],
        "model": {k: v.half() for k, v in ema.model.state_dict().items()},
    }
    hardware = (
        f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    save_bundled(
        f"{name}.pt",
        payload,
        trained_by=f"python -m diffusion_lab.pretrained train {name}",
        num_steps=num_steps,
        batch_size=recipe["batch_size"],
        minutes=round(minutes, 1),
        hardware=hardware,
    )
    return load_pretrained(name)


def main() -> None:
    parser = argparse.ArgumentParser(description="Train a bundled model of the course.")
    parser.add_argument("command", choices=["train"])
    parser.add_argument("name", choices=list(RECIPES))
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's steps")
    parser.add_argument("--checkpoint", default=None, help="save progress here; resume from it")
    args = parser.parse_args()
    result = train_pretrained(args.name, num_steps=args.steps, checkpoint=args.checkpoint)
    print(f"trained {args.name}: {result.info}")


if __name__ == "__main__":
    main()
