"""The course's own measure of digit quality, so samples get a number, not just a look.

A small CNN classifier, trained on the bundled digits by `python -m diffusion_lab.metrics
train` and bundled with the package, gives three figures for a batch of generated digits:
- Frechet distance (Heusel et al. 2017, the idea behind FID) between the samples' and the real
  digits' features (the classifier's 128-d penultimate layer): lower is better;
- the share of samples the classifier calls some digit with probability >= 0.9;
- the class histogram: are all ten digits there, in similar shares?
`reference_report()` gives the same figures for real digits, to print beside every result.

Introduced in: notebooks/05_training.ipynb
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .data import load_mnist
from .forward import check_images

__all__ = [
    "DigitClassifier",
    "DigitReport",
    "GuidanceReport",
    "guidance_report",
    "real_guidance_report",
    "within_class_distance",
    "digit_report",
    "frechet_distance",
    "load_classifier",
    "mean_pairwise_distance",
    "paired_distance",
    "reference_report",
]

CONFIDENT = 0.9
WEIGHTS = "digit_classifier.pt"


class DigitClassifier(nn.Module):
    """A small CNN for 28x28 digits in [-1, 1]; `features(x)` is its 128-d penultimate layer."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 7x7
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
        )  # fmt: skip
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (B, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))  # (B, 10) logits


@functools.lru_cache(maxsize=1)
def load_classifier() -> DigitClassifier:
    """The bundled, checksummed classifier, in eval mode on the CPU (cached)."""
    from .weights import load_bundled

    model = DigitClassifier()
    model.load_state_dict(load_bundled(WEIGHTS)["model"])
    return model.eval().requires_grad_(False)


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D) (Heusel et al. 2017).

    d^2 = |mu_a - mu_b|^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)), computed in float64 with the
    symmetric form Tr((C_a^(1/2) C_b C_a^(1/2))^(1/2)) for stability.
    """
    a, b = features_a.double(), features_b.double()
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(
            f"need two feature sets (N, D) with N >= 2, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    mu_a, mu_b = a.mean(0), b.mean(0)
    dim = a.shape[1]
    cov_a, cov_b = torch.cov(a.T).reshape(dim, dim), torch.cov(b.T).reshape(dim, dim)
    eigvals, eigvecs = torch.linalg.eigh(cov_a)
    sqrt_a = eigvecs @ torch.diag(eigvals.clamp(min=0).sqrt()) @ eigvecs.T
    middle = sqrt_a @ cov_b @ sqrt_a
    try:
        cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    except torch.linalg.LinAlgError as error:
        raise ValueError(
            "the Frechet distance could not be computed: the feature covariances are degenerate "
            "(for example, every image is the same or the images are not finite)"
        ) from error
    return float((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


@dataclass
class DigitReport:
    """Quality figures for a batch of digits (see the module docstring)."""

    n: int
    frechet: float
    confident: float  # share with max probability >= 0.9
    class_shares: list[float]  # share of samples assigned to each digit 0-9

    def __str__(self) -> str:
        shares = " ".join(f"{s:.2f}" for s in self.class_shares)
        return (
            f"n={self.n}  Frechet distance {self.frechet:7.2f}  confident "
            f"{100 * self.confident:5.1f}%  digits 0-9: {shares}"
        )


@torch.no_grad()
def _features_and_probs(images: torch.Tensor, batch_size: int = 500):
    classifier = load_classifier()
    features, probs = [], []
    for chunk in images.detach().cpu().float().split(batch_size):
        f = classifier.features(chunk)
        features.append(f)
        probs.append(F.softmax(classifier.head(f), dim=1))
    return torch.cat(features), torch.cat(probs)


@functools.lru_cache(maxsize=1)
def _real_features() -> torch.Tensor:
    return _features_and_probs(load_mnist()[0])[0]


def digit_report(images: torch.Tensor) -> DigitReport:
    """Measure generated digits (N, 1, 28, 28) in [-1, 1] against all 10k real digits."""
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f"expected digits of shape (N, 1, 28, 28), got {tuple(images.shape)}")
    check_images(images.clamp(-1.001, 1.001) if images.isfinite().all() else images, "images")
    features, probs = _features_and_probs(images.clamp(-1, 1))
    confident = (probs.max(1).values >= CONFIDENT).float().mean().item()
    shares = torch.bincount(probs.argmax(1), minlength=10).float() / len(images)
    return DigitReport(
        len(images),
        frechet_distance(features, _real_features()),
        confident,
        [round(s, 4) for s in shares.tolist()],
    )


def paired_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean Euclidean distance between a[i] and b[i] (two batches of the same shape).

    0 when the two runs made the same images. Introduced in: notebooks/06_sampling.ipynb
    """
    if a.shape != b.shape:
        raise ValueError(f"a and b differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")
    return (a - b).flatten(1).norm(dim=1).mean().item()


def mean_pairwise_distance(images: torch.Tensor) -> float:
    """Mean Euclidean distance between two different images of a batch: a measure of variety.

    0 for copies of one image. Introduced in: notebooks/06_sampling.ipynb
    """
    if len(images) < 2:
        raise ValueError(f"need at least 2 images, got {len(images)}")
    flat = images.detach().flatten(1).double().cpu()
    distances = torch.cdist(flat, flat)
    return (distances.sum() / (len(flat) * (len(flat) - 1))).item()


def within_class_distance(images: torch.Tensor, labels: torch.Tensor) -> float:
    """Variety within classes: `mean_pairwise_distance` per class, averaged over the classes.

    `images` may be images or any per-example features (N, ...).

    Classes with fewer than 2 images are skipped. Introduced in: notebooks/08_conditioning.ipynb
    """
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    per_class = [
        mean_pairwise_distance(images[labels == k])
        for k in labels.unique().tolist()
        if (labels == k).sum() >= 2
    ]
    if not per_class:
        raise ValueError("need at least one class with 2 or more images")
    return sum(per_class) / len(per_class)


@dataclass
class GuidanceReport:
    """How well class-conditional samples obey their labels, and how varied and real they look."""

    n: int
    accuracy: float  # share the classifier reads as the digit asked for
    confident: float  # share read as some digit with probability >= 0.9
    variety: float  # within_class_distance of the classifier features, by the digit read
    pixel_variety: float  # the same in pixels
    frechet: float  # Frechet distance to all 10k real digits, as in digit_report
    read: torch.Tensor  # (N,) the digit the classifier reads

    def __str__(self) -> str:
        return (
            f"n={self.n}  accuracy {100 * self.accuracy:5.1f}%  variety {self.variety:5.2f} "
            f"(pixels {self.pixel_variety:5.2f})  Frechet distance {self.frechet:6.1f}"
        )


def guidance_report(images: torch.Tensor, asked: torch.Tensor) -> GuidanceReport:
    """Measure digits (N, 1, 28, 28) drawn for the labels `asked` (N,).

    accuracy: read as the digit asked for. variety: the mean distance between two samples that
    the classifier reads as the same digit, in its 128 features and in pixels. frechet: the
    Frechet distance to the real digits, which depends on N (compare equal sizes; see
    `real_guidance_report`). For real digits (asked = their labels) this gives the reference.
    Introduced in: notebooks/08_conditioning.ipynb
    """
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f"expected digits of shape (N, 1, 28, 28), got {tuple(images.shape)}")
    if asked.shape != (len(images),):
        raise ValueError(f"asked must have shape ({len(images)},), got {tuple(asked.shape)}")
    images = images.detach().cpu().clamp(-1, 1)
    features, probs = _features_and_probs(images)
    read = probs.argmax(1)
    return GuidanceReport(
        len(images),
        (read == asked.cpu()).float().mean().item(),
        (probs.max(1).values >= CONFIDENT).float().mean().item(),
        within_class_distance(features, read),
        within_class_distance(images, read),
        frechet_distance(features, _real_features()),
        read,
    )


def real_guidance_report(per_class: int, seed: int = 0) -> GuidanceReport:
    """`guidance_report` of `per_class` real digits of each class, drawn with `seed`.

    The reference for N = 10 * per_class samples: the Frechet distance of a finite sample is
    biased upwards, so compare samples with real digits of the same size, over a few seeds.
    Introduced in: notebooks/08_conditioning.ipynb
    """
    x0, labels = load_mnist()
    generator = torch.Generator().manual_seed(seed)
    picks = []
    for k in range(10):
        of_k = torch.nonzero(labels == k).flatten()  # every real digit k
        picks.append(of_k[torch.randperm(len(of_k), generator=generator)[:per_class]])
    index = torch.cat(picks)
    return guidance_report(x0[index], labels[index])


@functools.lru_cache(maxsize=8)
def reference_report(n: int = 1000, seed: int = 0) -> DigitReport:
    """The same figures for `n` real digits drawn at random: what a perfect model would score."""
    x0 = load_mnist()[0]
    index = torch.randperm(len(x0), generator=torch.Generator().manual_seed(seed))[:n]
    return digit_report(x0[index])


def train_classifier(*, epochs: int = 8, seed: int = 0, held_out: int = 1000) -> dict:
    """Train the course classifier on the bundled digits (all but `held_out`) and bundle it."""
    from .weights import save_bundled

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x, y = load_mnist()
    order = torch.randperm(len(x), generator=generator)
    train_idx, test_idx = order[held_out:], order[:held_out]
    model, start = DigitClassifier(), time.perf_counter()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * (len(train_idx) // 128)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    for _ in range(steps):
        batch = train_idx[torch.randint(len(train_idx), (128,), generator=generator)]
        images = x[batch]
        shift = torch.randint(-2, 3, (2,), generator=generator).tolist()  # small translations
        images = torch.roll(images, shifts=shift, dims=(2, 3))
        loss = F.cross_entropy(model(images), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x[test_idx]).argmax(1) == y[test_idx]).float().mean().item()
    seconds = time.perf_counter() - start
    save_bundled(
        WEIGHTS,
        {"model": model.state_dict()},
        trained_by="python -m diffusion_lab.metrics train",
        seconds=round(seconds),
        held_out_accuracy=round(accuracy, 4),
        hardware=_hardware(),
    )
    load_classifier.cache_clear()
    return {"held_out_accuracy": accuracy, "seconds": seconds}


def _hardware() -> str:
    import os
    import platform

    return (
        f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["train"]:
        sys.exit("usage: python -m diffusion_lab.metrics train")
    print(train_classifier())
