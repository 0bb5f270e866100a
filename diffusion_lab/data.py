"""Data the course trains and draws on, all offline: bundled digits and cat, and 2-D toy sets.

Bundled files live in `diffusion_lab/assets/` with their licence notes and are verified by
SHA-256 when loaded. Images come back as float tensors in [-1, 1]; `to_image` maps back.

Introduced in: notebooks/01_noise.ipynb
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .utils import randn

__all__ = [
    "ASSETS",
    "cat_crops",
    "gaussian_ring",
    "load_cat",
    "load_mnist",
    "swiss_roll",
    "to_image",
    "two_moons",
]

ASSETS = Path(__file__).parent / "assets"

# sha256 of each bundled file; the MNIST files are the canonical ones (md5 9fb629c4... and
# ec29112d... as torchvision expects), the cat is scikit-image's CC0 `chelsea`
CHECKSUMS = {
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
}


def _verified_bytes(path: Path, expected_sha256: str | None) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    raw = path.read_bytes()
    if expected_sha256 is not None:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != expected_sha256:
            raise OSError(
                f"{path.name} is damaged: its SHA-256 is {digest[:12]}..., expected "
                f"{expected_sha256[:12]}.... Reinstall the package (pip install -e .) "
                "or restore the file from the repository."
            )
    return raw


def to_image(x: torch.Tensor) -> torch.Tensor:
    """Map data in [-1, 1] to [0, 1] for display (clamping what a sampler overshoots)."""
    return ((x + 1) / 2).clamp(0, 1)


# ----- MNIST -----
def _parse_idx(raw: bytes, magic: int, name: str) -> np.ndarray:
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise OSError(f"{name}: not an IDX file with magic {magic} (found {found})")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != math.prod(dims):
        raise OSError(f"{name}: header says {dims} but the file holds {data.size} bytes")
    return data.reshape(dims)


@functools.lru_cache(maxsize=4)
def _mnist_arrays(split: str, root: str | None) -> tuple[np.ndarray, np.ndarray]:
    prefix = "t10k" if split == "test" else "train"
    arrays = []
    for kind, magic in (("images-idx3-ubyte", 2051), ("labels-idx1-ubyte", 2049)):
        if root is None:
            name = f"{prefix}-{kind}.gz"
            arrays.append(_parse_idx(_verified_bytes(ASSETS / name, CHECKSUMS[name]), magic, name))
            continue
        candidates = [Path(root) / f"{prefix}-{kind}{ext}" for ext in (".gz", "")]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise FileNotFoundError(
                f"no {prefix}-{kind}[.gz] in {root}; expected the standard MNIST file names"
            )
        arrays.append(_parse_idx(_verified_bytes(path, None), magic, path.name))
    images, labels = arrays
    if len(images) != len(labels):
        raise OSError(f"{len(images)} images but {len(labels)} labels")
    return images, labels


def load_mnist(
    split: str = "test", *, root: str | Path | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Handwritten digits as (images (N, 1, 28, 28) float in [-1, 1], labels (N,) long).

    The default is the bundled MNIST test split (10,000 digits, LeCun, Cortes and Burges,
    CC BY-SA 3.0), verified by checksum. For the 60,000 training digits, download the standard
    files yourself and pass `split="train", root="that/folder"`; nothing is downloaded here.
    """
    if split not in ("test", "train"):
        raise ValueError(f"unknown split {split!r}; allowed: 'test', 'train'")
    if split == "train" and root is None:
        raise ValueError(
            "only the test split (10k digits) is bundled; for split='train' pass root= the folder "
            "holding train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz"
        )
    images, labels = _mnist_arrays(split, None if root is None else str(root))
    x = torch.from_numpy(images.astype(np.float32)).unsqueeze(1) / 127.5 - 1  # (N, 1, 28, 28)
    return x, torch.from_numpy(labels.astype(np.int64))


# ----- the cat -----
@functools.lru_cache(maxsize=1)
def _cat_array() -> np.ndarray:
    import io

    import matplotlib.image as mpimg

    raw = _verified_bytes(ASSETS / "chelsea.png", CHECKSUMS["chelsea.png"])
    return np.asarray(mpimg.imread(io.BytesIO(raw), format="png"))[:, :, :3]  # (300, 451, 3)


def load_cat(size: int = 128) -> torch.Tensor:
    """The course's running example, Chelsea the cat (CC0, Stefan van der Walt), as (3, size, size).

    The photo is centre-cropped to a square and resized with antialiasing; values are in [-1, 1].
    """
    if not isinstance(size, int) or not 8 <= size <= 300:
        raise ValueError(
            f"size must be an int in [8, 300] (the photo is 300 pixels high), got {size!r}"
        )
    img = torch.from_numpy(_cat_array().copy()).permute(2, 0, 1)  # (3, 300, 451) in [0, 1]
    height, width = img.shape[1:]
    left = (width - height) // 2
    img = img[:, :, left : left + height]  # centre square crop
    img = F.interpolate(
        img[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )[0]
    return (img.clamp(0, 1) * 2 - 1).contiguous()


def cat_crops(crop: int = 32, *, size: int = 64, flips: bool = True) -> torch.Tensor:
    """Every crop x crop window of the cat at `size` x `size` (stride 1), and its mirror image.

    A data set made of one photo, (N, 3, crop, crop) in [-1, 1]: N = 2 (size - crop + 1)^2 with
    flips. A model trained on it learns this one cat's fur, eyes and whiskers, enough to fill a
    hole in the photo or repair a painted stroke. Introduced in: notebooks/10_applications.ipynb
    """
    if not isinstance(crop, int) or not 4 <= crop <= size:
        raise ValueError(f"crop must be an int in [4, size={size}], got {crop!r}")
    cat = load_cat(size)
    windows = cat.unfold(1, crop, 1).unfold(2, crop, 1)  # (3, n, n, crop, crop)
    crops = windows.permute(1, 2, 0, 3, 4).reshape(-1, 3, crop, crop)
    if flips:
        crops = torch.cat([crops, crops.flip(-1)])
    return crops.contiguous()


# ----- 2-D toy point clouds -----
def _uniform(n: int, generator: torch.Generator | None) -> torch.Tensor:
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(n, generator=generator, device=gen_device).cpu()


def _check_n(n: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")


def two_moons(
    n: int, *, noise: float = 0.05, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Two interleaved half circles, (n, 2), centred near the origin with a spread of about 1."""
    _check_n(n)
    upper = torch.arange(n) % 2 == 0
    angle = _uniform(n, generator) * math.pi
    x = torch.where(upper, torch.cos(angle), 1 - torch.cos(angle))
    y = torch.where(upper, torch.sin(angle), 0.5 - torch.sin(angle))
    points = torch.stack([x - 0.5, y - 0.25], dim=1)
    return points + noise * randn((n, 2), generator=generator).cpu()


def swiss_roll(
    n: int, *, noise: float = 0.05, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A 2-D swiss roll (a spiral), (n, 2), scaled to lie roughly in [-1, 1]."""
    _check_n(n)
    turn = 1.5 * math.pi * (1 + 2 * _uniform(n, generator))
    points = torch.stack([turn * torch.cos(turn), turn * torch.sin(turn)], dim=1) / (4.5 * math.pi)
    return points + noise * randn((n, 2), generator=generator).cpu()


def gaussian_ring(
    n: int,
    *,
    num_modes: int = 8,
    radius: float = 1.0,
    std: float = 0.05,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A ring of `num_modes` small Gaussians (the classic GAN mode-collapse test), (n, 2)."""
    _check_n(n)
    if num_modes < 1:
        raise ValueError(f"num_modes must be >= 1, got {num_modes}")
    mode = torch.arange(n) % num_modes
    angle = 2 * math.pi * mode / num_modes
    centres = radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return centres + std * randn((n, 2), generator=generator).cpu()
