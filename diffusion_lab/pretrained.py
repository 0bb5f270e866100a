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
from .models import TextConditionedUNet, UNet
from .models.text import CLIP, ImageEncoder, TextEncoder, Tokenizer, train_clip
from .schedules import NoiseSchedule
from .training import EMA, load_checkpoint, train
from .utils import uses_bf16
from .weights import _manifest, load_bundled, save_bundled

__all__ = ["HELD_OUT_DIGITS", "RECIPES", "Pretrained", "load_pretrained", "train_pretrained"]

# name -> how it was trained; the lessons' own defaults are the same recipe, run shorter
RECIPES = {
    "digits": dict(
        model=dict(in_channels=1, image_size=28, channels=(16, 32, 64), attention=True),
        schedule="cosine",
        prediction="v",
        num_steps=20000,
        batch_size=128,
        lr=2e-3,
        ema_decay=0.999,
        logit_normal=(0.5, 1.0),  # lesson 5's timesteps and bfloat16, 22 times its images
        mixed_precision="auto",
    ),
    # the same network, told which digit to draw (label 10 = no label), with 10% of the labels
    # dropped in training so that classifier-free guidance works; the earlier recipe (uniform
    # timesteps, float32)
    "digits_cond": dict(
        model=dict(
            in_channels=1, image_size=28, channels=(16, 32, 64), attention=True, num_classes=10
        ),
        schedule="cosine",
        prediction="v",
        num_steps=4000,
        batch_size=128,
        lr=2e-3,
        ema_decay=0.999,
        cond="labels",
        p_uncond=0.1,
    ),
    # text to image (lesson 9): a CLIP-style pair trained contrastively on the captioned digits,
    # then a U-Net with cross-attention to the frozen text encoder's token features
    "text_digits": dict(
        model=dict(
            in_channels=3, image_size=32, channels=(16, 32, 64), attention=False, context_dim=64
        ),
        text_encoder=dict(dim=64, depth=2, num_heads=4),
        image_encoder=dict(channels=(16, 32, 64)),
        clip=dict(num_steps=600, batch_size=128, lr=2e-3),
        num_images=30_000,
        schedule="cosine",
        prediction="v",
        num_steps=12_000,
        batch_size=64,
        lr=2e-3,
        ema_decay=0.999,
        cond="captions",
        p_uncond=0.1,
    ),
    # lesson 10: one photo's worth of cat. A U-Net trained on every 32x32 window of the cat at
    # 64x64 (and their mirror images); it is fully convolutional, so it also runs on the whole
    # 64x64 photo (load_pretrained("cat", image_size=64)) to fill holes and repair strokes
    "cat": dict(
        model=dict(in_channels=3, image_size=32, channels=(16, 32, 64), attention=True),
        data="cat_crops",
        schedule="cosine",
        prediction="v",
        num_steps=4000,
        batch_size=64,
        lr=2e-3,
        ema_decay=0.999,
    ),
    # lesson 10: super-resolution 7x7 -> 28x28. The low-resolution digit, upsampled, enters as
    # a second input channel. Trained on the first 9,000 bundled digits; the last 1,000
    # (HELD_OUT_DIGITS) are kept for measuring it
    "digits_sr": dict(
        model=dict(image_size=28, low_res=7, in_channels=1, channels=(16, 32, 64), attention=True),
        model_class="SuperResolutionUNet",
        data="digits_low_res",
        schedule="cosine",
        prediction="v",
        num_steps=4000,
        batch_size=128,
        lr=2e-3,
        ema_decay=0.999,
    ),
    # lesson 13: short synthetic sounds (tones, chords, chirps; 1024 samples at 4 kHz) with a
    # 1-D U-Net. The lesson trains the same network for a minute; this one trained much longer
    "sounds": dict(
        model=dict(in_channels=1, length=1024, channels=(16, 32, 64)),
        model_class="UNet1d",
        data="sounds",
        num_examples=8000,
        schedule="cosine",
        prediction="v",
        num_steps=2000,
        batch_size=32,
        lr=2e-3,
        ema_decay=0.999,
    ),
    # lesson 13: 8-frame clips of a digit gliding across the canvas, frames stacked as the
    # channels of the image U-Net (video as one tensor). This small network learns the motion
    # better than the digits: its samples move together but stay speckled (lesson 13 measures it)
    "clips": dict(
        model=dict(in_channels=8, image_size=28, channels=(16, 32, 64), attention=True),
        data="moving_digits",
        frames=8,
        num_examples=30_000,
        schedule="cosine",
        prediction="v",
        num_steps=8000,
        batch_size=64,
        lr=2e-3,
        ema_decay=0.999,
    ),
}

HELD_OUT_DIGITS = 1000  # digits_sr never saw the last 1,000 bundled digits


@dataclass
class Pretrained:
    """A bundled model with everything needed to sample from it."""

    model: nn.Module
    schedule: NoiseSchedule
    prediction: str
    info: dict  # how it was trained (steps, minutes, hardware)
    tokenizer: object | None = None  # for text models: turns prompts into `cond` tokens


def _check_name(name: str) -> dict:
    if name not in RECIPES:
        raise ValueError(f"unknown pretrained model {name!r}; available: {', '.join(RECIPES)}")
    return RECIPES[name]


def _model_class(name: str) -> type[nn.Module]:
    if name == "SuperResolutionUNet":
        from .applications import SuperResolutionUNet

        return SuperResolutionUNet
    if name == "UNet1d":
        from .models import UNet1d

        return UNet1d
    if name != "UNet":
        raise ValueError(f"unknown model class {name!r} in a weights file")
    return UNet


def load_pretrained(name: str = "digits", *, image_size: int | None = None) -> Pretrained:
    """Load bundled weights `name` (checksummed, weights_only) into a model in eval mode.

    image_size: build the network for another input size than it was trained on. A plain U-Net
    is convolutional, so its weights fit any size divisible by 4 (the "cat" model, trained on
    32x32 windows, runs on the whole 64x64 photo).
    """
    recipe = _check_name(name)
    payload = load_bundled(f"{name}.pt")
    if image_size is not None:
        if payload.get("class", "UNet") != "UNet" or "tokenizer" in payload:
            raise ValueError(f"image_size= is for plain U-Nets; {name!r} is not one")
        payload["config"] = {**payload["config"], "image_size": image_size}
    tokenizer = None
    if "tokenizer" in payload:
        tokenizer = Tokenizer(**payload["tokenizer"])
        model = TextConditionedUNet(
            UNet(**payload["config"]["unet"]), TextEncoder(**payload["config"]["text_encoder"])
        )
    else:
        model = _model_class(payload.get("class", "UNet"))(**payload["config"])
    state = {k: v.float() for k, v in payload["model"].items()}  # stored in float16
    model.load_state_dict(state)
    schedule = getattr(NoiseSchedule, payload["schedule"])()
    info = {k: v for k, v in _manifest()[f"{name}.pt"].items() if k != "sha256"}
    assert payload["prediction"] == recipe["prediction"], "weights and recipe disagree"
    model = model.eval().requires_grad_(False)
    return Pretrained(model, schedule, payload["prediction"], info, tokenizer)


def _train_text_encoder(recipe: dict, images, tokens, vocab_size: int, seed: int, path):
    """Train the CLIP pair on the captioned digits and return its (frozen) text encoder.

    With `path` (beside a checkpoint), the trained encoder is saved there and reused on resume,
    so a resumed U-Net run keeps reading exactly the same token features.
    """
    from pathlib import Path

    text_encoder = TextEncoder(vocab_size, **recipe["text_encoder"])
    if path is not None and Path(path).is_file():
        text_encoder.load_state_dict(torch.load(path, weights_only=True))
        return text_encoder
    torch.manual_seed(seed)
    clip = CLIP(text_encoder, ImageEncoder(**recipe["image_encoder"]))
    for _ in train_clip(
        clip, images, tokens, **recipe["clip"], generator=torch.Generator().manual_seed(seed)
    ):
        pass
    if path is not None:
        torch.save(text_encoder.state_dict(), path)
    return text_encoder


def _training_data(recipe: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(x0, cond) for a recipe without text: digits (with labels if conditional), the cat,
    sounds or clips (lesson 13; drawn with seed 0, whatever the training seed)."""
    if recipe.get("data") in ("sounds", "moving_digits"):
        from .beyond import clips_to_channels, make_sounds, moving_digit_clips

        g = torch.Generator().manual_seed(0)
        if recipe["data"] == "sounds":
            return make_sounds(recipe["num_examples"], generator=g)[0], None
        clips = moving_digit_clips(recipe["num_examples"], frames=recipe["frames"], generator=g)
        return clips_to_channels(clips), None
    if recipe.get("data") == "cat_crops":
        from .data import cat_crops

        return cat_crops(), None
    x0, labels = load_mnist()
    if recipe.get("data") == "digits_low_res":
        from .applications import downsample

        x0 = x0[:-HELD_OUT_DIGITS]
        return x0, downsample(x0, x0.shape[-1] // recipe["model"]["low_res"])
    return x0, labels if recipe.get("cond") == "labels" else None


def train_pretrained(
    name: str,
    *,
    num_steps: int | None = None,
    seed: int = 0,
    checkpoint: str | None = None,
    device: str = "cpu",
) -> Pretrained:
    """Train the bundled model `name` with its recipe and write it into the package's assets.

    With `checkpoint`, progress is saved there as it goes and an interrupted run resumes.
    `device` is where to train ("cuda" on a GPU machine); the weights are stored for the CPU.
    """
    import os
    import platform

    recipe = _check_name(name)
    num_steps = num_steps or recipe["num_steps"]
    start = time.perf_counter()
    extra, tokenizer = {}, None
    if recipe.get("cond") == "captions":
        from .captions import VOCABULARY, make_captioned_digits

        data = make_captioned_digits(recipe["num_images"], split="seen", source="train", seed=seed)
        tokenizer = Tokenizer(VOCABULARY)
        x0, cond = data.images, tokenizer.encode(data.captions)
        side = None if checkpoint is None else f"{checkpoint}.text_encoder.pt"
        text_encoder = _train_text_encoder(recipe, x0, cond, tokenizer.vocab_size, seed, side)
        torch.manual_seed(seed)
        model = TextConditionedUNet(UNet(**recipe["model"]), text_encoder)
        extra["tokenizer"] = tokenizer.config
    else:
        torch.manual_seed(seed)
        model = _model_class(recipe.get("model_class", "UNet"))(**recipe["model"])
        x0, cond = _training_data(recipe)
    if "cond" in recipe:
        conditional = dict(cond=cond, p_uncond=recipe["p_uncond"])
    else:  # unconditional, or conditioned on an image that is never dropped (super-resolution)
        conditional = {} if cond is None else dict(cond=cond)
    model = model.to(device)
    ema = EMA(model, recipe["ema_decay"])
    schedule = getattr(NoiseSchedule, recipe["schedule"])()
    resumed = 0
    if checkpoint is not None and os.path.isfile(checkpoint):
        resumed = int(load_checkpoint(checkpoint)["step"])
    mixed_precision = recipe.get("mixed_precision", "no")
    bf16 = uses_bf16(mixed_precision, device)  # recorded in weights.json
    for _ in train(
        model,
        x0,
        schedule,
        num_steps=num_steps,
        batch_size=recipe["batch_size"],
        lr=recipe["lr"],
        prediction=recipe["prediction"],
        ema=ema,
        checkpoint=checkpoint,
        logit_normal=recipe.get("logit_normal"),  # timestep density (lesson 5); None: uniform
        mixed_precision=mixed_precision,
        generator=torch.Generator().manual_seed(seed),
        **conditional,
    ):
        pass
    minutes = (time.perf_counter() - start) / 60
    payload = {
        "config": _plain(model.config),
        **extra,
        "schedule": recipe["schedule"],
        "prediction": recipe["prediction"],
        "class": type(model).__name__,
        "model": {k: v.half().cpu() for k, v in ema.model.state_dict().items()},
    }
    hardware = (
        f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    if torch.device(device).type == "cuda":
        hardware = f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    save_bundled(
        f"{name}.pt",
        payload,
        trained_by=f"python -m diffusion_lab.pretrained train {name}",
        num_steps=num_steps,
        batch_size=recipe["batch_size"],
        minutes=round(minutes, 1),
        hardware=hardware,
        precision="bfloat16 autocast" if bf16 else "float32",
        **({"resumed_from_step": resumed} if resumed else {}),
    )
    return load_pretrained(name)


def _plain(config):
    """A config with tuples turned into lists, as stored in the weights file."""
    if isinstance(config, dict):
        return {k: _plain(v) for k, v in config.items()}
    return list(config) if isinstance(config, tuple) else config


def main() -> None:
    parser = argparse.ArgumentParser(description="Train a bundled model of the course.")
    parser.add_argument("command", choices=["train"])
    parser.add_argument("name", choices=list(RECIPES))
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's steps")
    parser.add_argument("--checkpoint", default=None, help="save progress here; resume from it")
    parser.add_argument("--device", default="cpu", help='where to train, e.g. "cuda"')
    args = parser.parse_args()
    result = train_pretrained(
        args.name, num_steps=args.steps, checkpoint=args.checkpoint, device=args.device
    )
    print(f"trained {args.name}: {result.info}")


if __name__ == "__main__":
    main()
