"""Training a denoiser: the loss, the loop (a generator), EMA weights and safe checkpoints.

The loss is Ho et al. (2020), Algorithm 1: pick t, noise the image in one jump, ask the
network for the noise (or x_0, or v), and take the mean squared error.

Introduced in: notebooks/05_training.ipynb
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .conditioning import drop_cond, null_cond
from .forward import q_sample, v_target
from .schedules import NoiseSchedule, _check_logit_normal
from .utils import optimizer_step, randn, uses_bf16, warmup_cosine_lr

__all__ = [
    "EMA",
    "PREDICTIONS",
    "TrainStep",
    "diffusion_loss",
    "load_checkpoint",
    "save_checkpoint",
    "train",
]

Prediction = Literal["eps", "x0", "v"]
PREDICTIONS = ("eps", "x0", "v")


def _check_prediction(prediction: str) -> None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"unknown prediction {prediction!r}; allowed: 'eps', 'x0', 'v'")


def diffusion_loss(
    model: nn.Module,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    *,
    prediction: Prediction = "eps",
    cond: torch.Tensor | None = None,
    p_uncond: float = 0.0,
    t: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    reduction: Literal["mean", "none"] = "mean",
    data_range: float | None = 1.0,
) -> torch.Tensor:
    """The denoising loss of Ho et al. (2020), Algorithm 1, for an eps-, x0- or v-predicting model.

    Timesteps are drawn uniformly unless `t` (B,) is given (to measure the loss per timestep);
    `reduction="none"` returns one loss per example, shape (B,). With `cond`, a share `p_uncond`
    of the conditions is replaced by the model's null condition, so the same network also learns
    the unconditional model that classifier-free guidance needs (notebooks/08_conditioning).
    `data_range=None` accepts x0 outside [-1, 1] (latents: notebooks/11_latent_diffusion).
    """
    _check_prediction(prediction)
    if reduction not in ("mean", "none"):
        raise ValueError(f"unknown reduction {reduction!r}; allowed: 'mean', 'none'")
    if t is None:
        t = schedule.sample_t(len(x0), generator=generator, device=x0.device)  # (B,)
    eps = randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    xt = q_sample(x0, t, schedule, eps, data_range=data_range)
    if cond is not None and p_uncond > 0:
        cond = drop_cond(cond, null_cond(model, cond), p_uncond, generator=generator)
    elif cond is None and p_uncond > 0:
        raise ValueError("p_uncond drops conditions, but no cond was given")
    output = model(xt, t) if cond is None else model(xt, t, cond)
    if prediction == "eps":
        target = eps
    elif prediction == "x0":
        target = x0
    else:
        target = v_target(x0, eps, schedule.at(schedule.alpha_bar, t))
    output = output.to(target.dtype)  # a bfloat16 output (autocast) is scored in float32
    per_example = F.mse_loss(output, target, reduction="none").flatten(1).mean(1)  # (B,)
    return per_example if reduction == "none" else per_example.mean()


class EMA:
    """An exponential moving average of a model's weights (used for sampling).

    After each optimiser step, ema = decay * ema + (1 - decay) * weights; the decay warms up as
    min(decay, (1 + n) / (10 + n)) so early averages are not dominated by the random start.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        if not 0 <= decay < 1:
            raise ValueError(f"decay must lie in [0, 1), got {decay}")
        self.decay, self.num_updates = decay, 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.num_updates += 1
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        for ema_p, p in zip(self.model.parameters(), model.parameters()):
            ema_p.lerp_(p.detach(), 1 - decay)
        for ema_b, b in zip(self.model.buffers(), model.buffers()):
            ema_b.copy_(b)

    def state_dict(self) -> dict:
        return {
            "decay": self.decay,
            "num_updates": self.num_updates,
            "model": self.model.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.num_updates = state["decay"], state["num_updates"]
        self.model.load_state_dict(state["model"])


# ----- checkpoints -----
def _model_config(model: nn.Module) -> dict:
    return {"class": type(model).__name__, **getattr(model, "config", {})}


def save_checkpoint(path: str | Path, model: nn.Module, **state) -> Path:
    """Write model weights, its configuration and any extra `state` atomically to `path`.

    The file is written to a temporary name in the same folder and renamed, so an interrupted
    save never leaves a half-written checkpoint. Load it with `load_checkpoint`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": "diffusion_lab/1",
        "config": _model_config(model),
        "model": model.state_dict(),
        **state,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # atomic on POSIX and Windows
    return path


def load_checkpoint(path: str | Path, model: nn.Module | None = None) -> dict:
    """Load a checkpoint with `weights_only=True`; with `model`, check it fits and load weights.

    Raises a clear error for a missing or damaged file, or one made for another architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise OSError(
            f"{path} is not a readable checkpoint (damaged or not one of ours): "
            f"{type(error).__name__}: {str(error)[:200]}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != "diffusion_lab/1":
        raise OSError(f"{path} is not a diffusion_lab checkpoint")
    if model is not None:
        expected, found = _model_config(model), payload["config"]
        found = {k: tuple(v) if isinstance(v, list) else v for k, v in found.items()}
        if expected != found:
            diff = {
                k: (found.get(k), expected.get(k))
                for k in expected.keys() | found.keys()
                if found.get(k) != expected.get(k)
            }
            details = ", ".join(
                f"{k}: checkpoint {a!r} vs model {b!r}" for k, (a, b) in diff.items()
            )
            raise ValueError(f"checkpoint {path.name} was made for another model ({details})")
        model.load_state_dict(payload["model"])
    return payload


# ----- the loop -----
@dataclass
class TrainStep:
    """What `train` yields after each optimiser step."""

    step: int  # optimiser steps done so far (1 after the first)
    loss: float
    t: torch.Tensor  # (B,) the timesteps of this batch, for loss-per-timestep plots
    seconds: float  # wall time since this call to train() started


def train(
    model: nn.Module,
    data: torch.Tensor,
    schedule: NoiseSchedule,
    *,
    num_steps: int,
    batch_size: int = 128,
    lr: float = 2e-3,
    warmup_steps: int = 100,
    prediction: Prediction = "eps",
    cond: torch.Tensor | None = None,
    p_uncond: float = 0.0,
    ema: EMA | None = None,
    max_minutes: float | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 200,
    generator: torch.Generator | None = None,
    progress: bool = True,
    data_range: float | None = 1.0,
    mixed_precision: Literal["no", "bf16", "auto"] = "no",
    logit_normal: tuple[float, float] | None = None,
) -> Iterator[TrainStep]:
    """Train `model` on `data` (N, *D) with Adam and yield a TrainStep after every step.

    For a conditional model pass `cond` (N, ...), one condition per example (labels, or tokens),
    and `p_uncond`, the share of conditions dropped for classifier-free guidance. Data must lie
    in [-1, 1]; `data_range=None` lifts that for latents (notebooks/11_latent_diffusion).

    The notebook owns plotting and stopping (`itertools.islice`, or `break`). Batches are
    drawn with `generator`, whose state goes into the checkpoint, so with `checkpoint=` a rerun
    resumes exactly where the last one stopped. Pressing Stop (KeyboardInterrupt) or reaching
    `max_minutes` saves a checkpoint and ends the loop cleanly; a non-finite loss stops with
    advice and leaves the last good checkpoint in place. Learning rate: linear warm-up over
    `warmup_steps`, then cosine decay to 10% of `lr` at `num_steps`; gradients are clipped at
    norm 1.

    `mixed_precision="bf16"` runs the model's forward pass under `torch.autocast` in bfloat16
    (weights, optimiser and EMA stay float32; the loss is taken in float32); "auto" does so only
    where bfloat16 runs in hardware (`utils.native_bf16`), else float32. On a 2-core CPU with
    AVX512-BF16 it trains the lesson-5 U-Net about 1.4 times faster (notebooks/05_training).
    Timesteps are uniform unless `logit_normal=(mean, std)` (see `NoiseSchedule.sample_t`).
    """
    from tqdm.auto import tqdm

    _check_prediction(prediction)
    if logit_normal is not None:
        _check_logit_normal(logit_normal)  # refuse a bad (mean, std) before training starts
    if data.ndim < 2 or len(data) == 0:
        raise ValueError(f"data must be a non-empty tensor (N, *D), got shape {tuple(data.shape)}")
    if cond is not None and len(cond) != len(data):
        raise ValueError(f"cond has {len(cond)} rows but data has {len(data)}: one per example")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    bf16 = uses_bf16(mixed_precision, device)  # refuses an unknown mode

    def lr_at(step: int) -> float:
        return warmup_cosine_lr(step, lr=lr, warmup_steps=warmup_steps, num_steps=num_steps)

    step = 0
    if checkpoint is not None and Path(checkpoint).is_file():
        state = load_checkpoint(checkpoint, model)
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        step = int(state["step"])
        if ema is not None and "ema" in state:
            ema.load_state_dict(state["ema"])

    def save() -> None:
        if checkpoint is not None:
            extra = {"ema": ema.state_dict()} if ema is not None else {}
            save_checkpoint(
                checkpoint,
                model,
                optimizer=optimizer.state_dict(),
                step=step,
                generator=generator.get_state(),
                prediction=prediction,
                **extra,
            )

    start, failed = time.perf_counter(), False
    bar = tqdm(total=num_steps, initial=step, disable=not progress, desc="training")
    model.train()
    try:
        while step < num_steps:
            index = torch.randint(len(data), (batch_size,), generator=generator)
            x0 = data[index].to(device)
            c = None if cond is None else cond[index].to(device)
            t = schedule.sample_t(
                batch_size, generator=generator, device=device, logit_normal=logit_normal
            )
            # bfloat16 forward pass where asked; a null context otherwise (some torch builds
            # refuse torch.autocast for some devices even when disabled)
            with torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext():
                loss = diffusion_loss(
                    model,
                    x0,
                    schedule,
                    prediction=prediction,
                    cond=c,
                    p_uncond=p_uncond,
                    t=t,
                    generator=generator,
                    data_range=data_range,
                )
            if not torch.isfinite(loss):
                failed = True
                raise FloatingPointError(
                    f"the loss became {loss.item()} at step {step + 1}. Try a smaller learning "
                    f"rate (lr={lr} now), check that the data lie in [-1, 1], or resume from the "
                    "last checkpoint, which was kept."
                )
            optimizer_step(optimizer, loss, model.parameters(), lr=lr_at(step))
            if ema is not None:
                ema.update(model)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            seconds = time.perf_counter() - start
            yield TrainStep(step, loss.item(), t.cpu(), seconds)
            if step % checkpoint_every == 0:
                save()
            if max_minutes is not None and seconds > 60 * max_minutes:
                print(f"Stopped after {max_minutes:g} minutes at step {step}.")
                break
    except KeyboardInterrupt:
        print(f"Interrupted at step {step}; the checkpoint keeps this progress.")
    finally:  # also runs when the notebook stops consuming the generator (break, islice, Stop)
        bar.close()
        if not failed:
            save()
