"""Captioned digits for text-to-image: "a small red 7 in the top left", made in code from MNIST.

Each image is one bundled MNIST digit, resized to a size, painted in a colour and pasted into
a corner of a black 32x32 RGB canvas; its caption names the four attributes. Four digit-colour
pairs (`HELD_OUT`) never appear in training, so a model can be asked for a combination it has
never seen. Because the attributes are drawn, not guessed, `read_attributes` reads them back
from pixels alone and `adherence` scores how well images follow their prompts:

- colour, size and place are read exactly on rendered data (tested: 100%);
- the digit is read by the course classifier after MNIST-style preprocessing (~97-98%, against
  98.8% for the classifier on the original 28x28 digits).

Images are float32 (N, 3, 32, 32) in [-1, 1]: background exactly -1 and
pixel = -1 + 2 * ink * colour, where ink in [0, 1] is the resized MNIST intensity.

Introduced in: notebooks/09_text_to_image.ipynb
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from .data import load_mnist
from .metrics import load_classifier

__all__ = [
    "COLOURS",
    "DIGITS",
    "HELD_OUT",
    "INK_THRESHOLD",
    "PLACES",
    "SIZES",
    "SIZE_THRESHOLD",
    "VOCABULARY",
    "CaptionedDigits",
    "adherence",
    "adherence_of",
    "all_combinations",
    "caption",
    "make_captioned_digits",
    "read_attributes",
    "render",
]

DIGITS = tuple(range(10))
COLOURS = {
    "red": (1.0, 0.0, 0.0),
    "yellow": (1.0, 1.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
}  # RGB in [0, 1]; every colour has a channel at 1, so max over RGB gives the ink back
SIZES = {"small": 14, "large": 22}  # side in pixels of the resized 28x28 MNIST image
PLACES = ("top left", "top right", "bottom left", "bottom right")
HELD_OUT = ((3, "green"), (7, "red"), (5, "blue"), (0, "yellow"))  # never shown in training
VOCABULARY = sorted(
    {"a", "in", "the"}
    | set(SIZES)
    | set(COLOURS)
    | {word for place in PLACES for word in place.split()}
    | {str(d) for d in DIGITS}
)

CANVAS = 32
MARGIN = 1  # gap in pixels between the pasted digit and its corner, before jitter
INK_THRESHOLD = 0.3  # a pixel is ink when its max over RGB, mapped to [0, 1], exceeds this
# Larger side of the ink box (pixels above INK_THRESHOLD), measured on all 10k bundled digits:
# small renders span 6-11 px (mostly 10-11), large ones 11-17 px (mostly 16-17). The threshold
# is the midpoint of the typical extents, 10 and 16; the 3 digits whose large render spans
# <= 13 px are left out of the data set (`_usable_indices`), so size is read exactly.
SIZE_THRESHOLD = 13  # extent <= 13 px reads "small", > 13 px "large"
SOURCES = {"train": range(0, 9000), "eval": range(9000, 10000)}  # MNIST indices per source


def _check_name(value, allowed, what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(map(repr, allowed))}")


def caption(digit: int, colour: str, size: str, place: str) -> str:
    """The prompt for one combination, e.g. "a small red 7 in the top left".

    Introduced in: notebooks/09_text_to_image.ipynb
    """
    _check_name(digit, DIGITS, "digit")
    _check_name(colour, tuple(COLOURS), "colour")
    _check_name(size, tuple(SIZES), "size")
    _check_name(place, PLACES, "place")
    return f"a {size} {colour} {digit} in the {place}"


def all_combinations(
    split: Literal["all", "seen", "held_out"] = "all",
) -> list[tuple[int, str, str, str]]:
    """Every (digit, colour, size, place): 320 in all, 288 seen in training, 32 held out.

    Introduced in: notebooks/09_text_to_image.ipynb
    """
    _check_name(split, ("all", "seen", "held_out"), "split")
    combos = [
        (digit, colour, size, place)
        for digit in DIGITS
        for colour in COLOURS
        for size in SIZES
        for place in PLACES
    ]
    if split == "all":
        return combos
    held_out = set(HELD_OUT)
    return [c for c in combos if ((c[0], c[1]) in held_out) == (split == "held_out")]


def _corner(place: str, side: int) -> tuple[int, int]:
    # (top, left) of a side x side patch MARGIN pixels from the named corner; with a 1-px
    # jitter the patch still fits, and its ink centroid stays >= 2 px inside the quadrant
    near, far = MARGIN, CANVAS - side - MARGIN
    vertical, horizontal = place.split()
    return (near if vertical == "top" else far), (near if horizontal == "left" else far)


def _render_batch(
    digit_images: torch.Tensor,  # (N, 1, 28, 28) in [-1, 1]
    colours: list[str],
    sizes: list[str],
    places: list[str],
    shifts: torch.Tensor,  # (N, 2) long, extra (down, right) offset of each digit
) -> torch.Tensor:
    ink = ((digit_images + 1) / 2).clamp(0, 1)  # (N, 1, 28, 28) in [0, 1]
    canvas = ink.new_zeros(len(ink), 1, CANVAS, CANVAS)  # (N, 1, 32, 32) ink
    for size, side in SIZES.items():
        rows = [i for i, s in enumerate(sizes) if s == size]
        if not rows:
            continue
        # 1. resize every digit of this size at once (antialiased bilinear)
        small = F.interpolate(
            ink[rows], size=(side, side), mode="bilinear", antialias=True, align_corners=False
        ).clamp(0, 1)  # (n, 1, side, side)
        # 2. paste each one at its corner plus jitter
        for patch, i in zip(small, rows):
            top, left = _corner(places[i], side)
            top, left = top + int(shifts[i, 0]), left + int(shifts[i, 1])
            canvas[i, :, top : top + side, left : left + side] = patch
    # 3. paint: pixel = -1 + 2 * ink * colour
    rgb = torch.tensor([COLOURS[c] for c in colours], dtype=ink.dtype, device=ink.device)
    return -1 + 2 * canvas * rgb[:, :, None, None]  # (N, 3, 32, 32)


def render(
    digit_image: torch.Tensor,
    colour: str,
    size: str,
    place: str,
    *,
    jitter: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Paint one MNIST digit (1, 28, 28) in [-1, 1] as a (3, 32, 32) captioned image.

    With `jitter=True` the digit moves by a random -1, 0 or +1 pixel in each direction
    (drawn from `generator`); without it the picture is fixed by its four attributes.
    Introduced in: notebooks/09_text_to_image.ipynb
    """
    if digit_image.shape != (1, 28, 28):
        raise ValueError(f"digit_image must have shape (1, 28, 28), got {tuple(digit_image.shape)}")
    _check_name(colour, tuple(COLOURS), "colour")
    _check_name(size, tuple(SIZES), "size")
    _check_name(place, PLACES, "place")
    shift = torch.zeros(1, 2, dtype=torch.long)
    if jitter:
        shift = torch.randint(-1, 2, (1, 2), generator=generator)
    return _render_batch(digit_image[None], [colour], [size], [place], shift)[0]  # (3, 32, 32)


@dataclass
class CaptionedDigits:
    """A captioned data set: `images[i]` shows `captions[i]`, whose parts are in the lists."""

    images: torch.Tensor  # (N, 3, 32, 32) float32 in [-1, 1]
    captions: list[str]
    digits: torch.Tensor  # (N,) long
    colours: list[str]  # names, keys of COLOURS
    sizes: list[str]  # names, keys of SIZES
    places: list[str]  # names, items of PLACES
    mnist_index: torch.Tensor  # (N,) long, the bundled MNIST image each digit comes from

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        return self.images[i], self.captions[i]


@functools.lru_cache(maxsize=1)
def _usable_indices() -> torch.Tensor:
    # MNIST digits whose size `read_attributes` gets right at both sizes: all but 3 of 10k
    x0, _ = load_mnist()
    ok = torch.ones(len(x0), dtype=torch.bool)
    for size in SIZES:
        n = len(x0)
        images = _render_batch(
            x0, ["red"] * n, [size] * n, ["top left"] * n, torch.zeros(n, 2, dtype=torch.long)
        )
        extent = _ink_extent(_ink_mask(_grey(images)))
        ok &= (extent > SIZE_THRESHOLD) == (size == "large")
    return ok.nonzero().flatten()  # (M,)


def make_captioned_digits(
    n: int,
    *,
    split: Literal["seen", "held_out", "all"] = "seen",
    source: Literal["train", "eval"] = "train",
    jitter: bool = True,
    seed: int = 0,
) -> CaptionedDigits:
    """`n` captioned images, the same for the same seed.

    Each draws a combination uniformly from `all_combinations(split)` and then a random MNIST
    image of that digit: from indices 0-8999 for `source="train"`, 9000-9999 for "eval", so
    evaluation images are never training images. `jitter` moves each digit by up to 1 px.
    Introduced in: notebooks/09_text_to_image.ipynb
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    _check_name(source, tuple(SOURCES), "source")
    combos = all_combinations(split)  # validates split
    generator = torch.Generator().manual_seed(seed)
    x0, labels = load_mnist()
    # 1. a combination per image
    picks = torch.randint(len(combos), (n,), generator=generator).tolist()
    digits, colours, sizes, places = (list(column) for column in zip(*(combos[p] for p in picks)))
    digits = torch.tensor(digits, dtype=torch.long)  # (n,)
    # 2. an MNIST image of that digit, from the source's index range
    pool = _usable_indices()
    span = SOURCES[source]
    pool = pool[(pool >= span.start) & (pool < span.stop)]
    u = torch.rand(n, generator=generator)  # (n,) one uniform draw per image
    mnist_index = torch.empty(n, dtype=torch.long)
    for digit in DIGITS:
        mine = pool[labels[pool] == digit]
        rows = digits == digit
        mnist_index[rows] = mine[(u[rows] * len(mine)).long().clamp(max=len(mine) - 1)]
    # 3. jitter and paint
    shifts = torch.randint(-1, 2, (n, 2), generator=generator) * int(jitter)
    images = _render_batch(x0[mnist_index], colours, sizes, places, shifts)
    captions = [caption(d, c, s, p) for d, c, s, p in zip(digits.tolist(), colours, sizes, places)]
    return CaptionedDigits(images, captions, digits, colours, sizes, places, mnist_index)


# ----- reading attributes back from pixels -----
def _grey(images: torch.Tensor) -> torch.Tensor:
    # ink intensity: max over RGB, mapped to [0, 1] (exactly the ink for rendered images)
    return ((images.clamp(-1, 1) + 1) / 2).amax(dim=1)  # (N, H, W)


def _ink_mask(grey: torch.Tensor) -> torch.Tensor:
    return grey > INK_THRESHOLD  # (N, H, W) bool


def _bounds(any_ink: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # first and last index where a (N, L) bool row is True (garbage for empty rows)
    index = torch.arange(any_ink.shape[1]).expand_as(any_ink)
    first = torch.where(any_ink, index, any_ink.shape[1]).amin(1)
    last = torch.where(any_ink, index, -1).amax(1)
    return first, last  # (N,), (N,)


def _ink_extent(mask: torch.Tensor) -> torch.Tensor:
    # larger side of the ink bounding box, in pixels
    top, bottom = _bounds(mask.any(2))
    left, right = _bounds(mask.any(1))
    return torch.maximum(bottom - top + 1, right - left + 1)  # (N,)


def _mnist_style(grey: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # MNIST preprocessing of one (H, W) ink image: crop the ink box, resize its longer side to
    # 20 px keeping the aspect, paste into 28x28 with the centre of mass at (14, 14)
    rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
    crop = grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # (h, w)
    h, w = crop.shape
    scale = 20 / max(h, w)
    h, w = max(1, round(h * scale)), max(1, round(w * scale))
    crop = F.interpolate(
        crop[None, None], size=(h, w), mode="bilinear", antialias=True, align_corners=False
    )[0, 0].clamp(0, 1)  # (h, w), longer side 20
    mass = crop.sum()
    com_y = (crop.sum(1) * torch.arange(h, dtype=crop.dtype)).sum() / mass
    com_x = (crop.sum(0) * torch.arange(w, dtype=crop.dtype)).sum() / mass
    top = min(max(round(14 - com_y.item()), 0), 28 - h)
    left = min(max(round(14 - com_x.item()), 0), 28 - w)
    out = grey.new_zeros(28, 28)
    out[top : top + h, left : left + w] = crop
    return out * 2 - 1  # (28, 28) in [-1, 1]


@torch.no_grad()
def read_attributes(images: torch.Tensor) -> dict[str, torch.Tensor | list[str]]:
    """Read digit, colour, size and place from the pixels of images (N, 3, 32, 32) in [-1, 1].

    Returns {"digit": (N,) long, "colour", "size", "place": lists of names}. An image with no
    ink reads digit -1 and "none" for the rest, so it matches no caption. Colour is the nearest
    of COLOURS in RGB direction to the ink's mean colour; place is the quadrant of the ink
    centroid; size compares the ink box's larger side with SIZE_THRESHOLD; the digit is the
    course classifier's answer after MNIST-style preprocessing (crop, 20 px, centre of mass).
    Introduced in: notebooks/09_text_to_image.ipynb
    """
    if images.ndim != 4 or tuple(images.shape[1:]) != (3, CANVAS, CANVAS):
        raise ValueError(f"expected images of shape (N, 3, 32, 32), got {tuple(images.shape)}")
    images = images.detach().float().cpu()
    grey = _grey(images)  # (N, 32, 32)
    mask = _ink_mask(grey)  # (N, 32, 32)
    has_ink = mask.flatten(1).any(1)  # (N,)
    weight = grey * mask  # (N, 32, 32) intensity of ink pixels only
    mass = weight.sum((1, 2)).clamp_min(1e-8)  # (N,)

    # colour: intensity-weighted mean RGB of the ink, nearest named colour by direction
    rgb = ((images.clamp(-1, 1) + 1) / 2 * weight[:, None]).sum((2, 3)) / mass[:, None]  # (N, 3)
    palette = F.normalize(torch.tensor(list(COLOURS.values())), dim=1)  # (4, 3)
    colour_index = (F.normalize(rgb, dim=1) @ palette.T).argmax(1)  # (N,)

    # place: quadrant of the intensity-weighted centroid (canvas centre at 15.5)
    coords = torch.arange(CANVAS, dtype=torch.float32)
    centre_y = (weight.sum(2) * coords).sum(1) / mass  # (N,)
    centre_x = (weight.sum(1) * coords).sum(1) / mass  # (N,)

    # size: larger side of the ink bounding box
    extent = _ink_extent(mask)  # (N,)

    # digit: MNIST-style preprocessing, then the classifier
    digits = torch.full((len(images),), -1, dtype=torch.long)
    if has_ink.any():
        batch = torch.stack([_mnist_style(grey[i], mask[i]) for i in has_ink.nonzero().flatten()])
        digits[has_ink] = load_classifier()(batch[:, None]).argmax(1)  # (M, 1, 28, 28) -> (M,)

    names = list(COLOURS)
    colours, sizes, places = [], [], []
    for i in range(len(images)):
        if not has_ink[i]:
            colours.append("none")
            sizes.append("none")
            places.append("none")
            continue
        colours.append(names[colour_index[i]])
        sizes.append("large" if extent[i] > SIZE_THRESHOLD else "small")
        vertical = "top" if centre_y[i] < (CANVAS - 1) / 2 else "bottom"
        horizontal = "left" if centre_x[i] < (CANVAS - 1) / 2 else "right"
        places.append(f"{vertical} {horizontal}")
    return {"digit": digits, "colour": colours, "size": sizes, "place": places}


def adherence(
    images: torch.Tensor,
    digits: torch.Tensor | list[int],
    colours: list[str],
    sizes: list[str],
    places: list[str],
) -> dict[str, float | int]:
    """Share of images whose pixels show each asked-for attribute, and all four at once.

    Returns {"digit", "colour", "size", "place", "all": shares in [0, 1], "n": image count}.
    Introduced in: notebooks/09_text_to_image.ipynb
    """
    wanted = {
        "digit": torch.as_tensor(digits).tolist(),
        "colour": list(colours),
        "size": list(sizes),
        "place": list(places),
    }
    for name, values in wanted.items():
        if len(values) != len(images):
            raise ValueError(f"{len(images)} images but {len(values)} {name} values")
    if len(images) == 0:
        raise ValueError("need at least one image to score")
    read = read_attributes(images)
    read["digit"] = read["digit"].tolist()
    hits = {
        name: torch.tensor([a == b for a, b in zip(read[name], values)])
        for name, values in wanted.items()
    }  # name -> (N,) bool
    every = torch.stack(list(hits.values())).all(0)  # (N,)
    scores = {name: hit.float().mean().item() for name, hit in hits.items()}
    return {**scores, "all": every.float().mean().item(), "n": len(images)}


def adherence_of(images: torch.Tensor, data: CaptionedDigits) -> dict[str, float | int]:
    """`adherence` of images made from the prompts of `data` (e.g. generated from its captions).

    Introduced in: notebooks/09_text_to_image.ipynb
    """
    return adherence(images, data.digits, data.colours, data.sizes, data.places)
