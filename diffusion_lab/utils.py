"""Small helpers every lesson uses: devices, seeds, broadcasting, PNG bytes.

Introduced in: notebooks/01_noise.ipynb
"""

from __future__ import annotations

import contextlib
import functools
import math
import random
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "append_dims",
    "warmup_cosine_lr",
    "eval_mode",
    "get_device",
    "native_bf16",
    "optimizer_step",
    "png_bytes",
    "randn",
    "seed_everything",
    "uses_bf16",
]


def get_device() -> torch.device:
    """The fastest device here: CUDA, then Apple MPS, then CPU. For notebooks and scripts only.

    The library itself never picks a device: every function follows the device of its inputs.
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def native_bf16(device: torch.device | str) -> bool:
    """True where bfloat16 arithmetic runs in hardware on `device`: an NVIDIA GPU from Ampere on
    (A100, RTX 30xx, H100; not a T4), or a Linux CPU with AVX512-BF16 or AMX (/proc/cpuinfo).
    Elsewhere bfloat16 may be emulated and slower than float32, so `train(...,
    mixed_precision="auto")` keeps float32 there. Introduced in: notebooks/05_training.ipynb
    """
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        if torch.version.hip is None:  # NVIDIA: bfloat16 units from Ampere (compute capability 8)
            return torch.cuda.get_device_capability(device)[0] >= 8
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.backends.mkldnn.is_available() and bool(
            _cpu_flags() & {"avx512_bf16", "amx_bf16"}
        )
    return False


def uses_bf16(mixed_precision: str, device: torch.device | str) -> bool:
    """Whether `train(..., mixed_precision=...)` runs bfloat16 autocast on `device`: always for
    "bf16", never for "no", and for "auto" only where `native_bf16(device)`; `train_pretrained`
    records the answer in weights.json. Mixed precision is taught in notebooks/05_training.ipynb
    """
    if mixed_precision not in ("no", "bf16", "auto"):
        raise ValueError(
            f"unknown mixed_precision {mixed_precision!r}; allowed: 'no', 'bf16', 'auto'"
        )
    return mixed_precision == "bf16" or (mixed_precision == "auto" and native_bf16(device))


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a fresh CPU `torch.Generator` seeded with `seed`.

    Call it once in a notebook's setup cell. Pass the generator to the functions you want
    reproducible (`generator=g`); the library never seeds anything itself.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def append_dims(a: torch.Tensor, target_ndim: int) -> torch.Tensor:
    """Append trailing size-1 dims to `a` until it has `target_ndim` dims (for broadcasting).

    A per-sample value of shape (B,) becomes (B, 1, 1, 1) next to images of shape (B, C, H, W).
    """
    missing = target_ndim - a.ndim
    if missing < 0:
        raise ValueError(
            f"append_dims: input has {a.ndim} dims but target_ndim is {target_ndim}, which is fewer"
        )
    return a[(...,) + (None,) * missing]


def randn(
    shape: tuple[int, ...] | torch.Size,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal noise, drawn on the generator's device and then moved to `device`.

    Drawing on the generator's device (a CPU generator by default) means the same seed gives
    the same picture on a laptop and on a GPU.
    """
    gen_device = generator.device if generator is not None else torch.device("cpu")
    noise = torch.randn(tuple(shape), generator=generator, device=gen_device, dtype=dtype)
    return noise.to(device) if device is not None else noise


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Put `model` in eval mode inside a `with` block and restore its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def png_bytes(image: np.ndarray, *, compress_level: int = 1) -> bytes:
    """Encode a uint8 array (H, W), (H, W, 1) or (H, W, 3) as PNG bytes, with no dependency.

    Used by the widgets: a PNG in a core `widgets.Image` works in ipywidgets 7 and 8.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"png_bytes expects a uint8 array, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        color_type, channels = 0, 1  # greyscale
    elif image.ndim == 3 and image.shape[2] == 3:
        color_type, channels = 2, 3  # RGB
    else:
        raise ValueError(
            f"png_bytes expects shape (H, W), (H, W, 1) or (H, W, 3), got {image.shape}"
        )
    height, width = image.shape[:2]
    # each row starts with filter byte 0 (no filter)
    rows = np.zeros((height, 1 + width * channels), dtype=np.uint8)
    rows[:, 1:] = image.reshape(height, width * channels)

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), compress_level))
        + chunk(b"IEND", b"")
    )


def warmup_cosine_lr(step: int, *, lr: float, warmup_steps: int, num_steps: int) -> float:
    """Learning rate at optimiser step `step` (0-based): linear warm-up over `warmup_steps`,
    then cosine decay to 10% of `lr` at `num_steps`. Used by every training loop of the course.
    """
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, num_steps - warmup_steps))
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def optimizer_step(
    optimizer: torch.optim.Optimizer, loss: torch.Tensor, parameters, *, lr: float,
    max_norm: float = 1.0,
) -> None:  # fmt: skip
    """One optimiser step at learning rate `lr`: backpropagate `loss`, clip the gradients of
    `parameters` to total norm `max_norm`, and step. The shared end of every training loop."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, max_norm)
    optimizer.step()
