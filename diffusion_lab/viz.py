"""Pictures: image grids, the x_0 ... x_T chain strip, schedule curves, point clouds.

Every function only draws: it takes tensors on any device (it calls .detach().cpu() itself),
never trains, samples or seeds, and returns the matplotlib Axes so figures compose.

Introduced in: notebooks/01_noise.ipynb
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes

from .data import to_image

__all__ = [
    "LossPlot",
    "grid_array",
    "make_grid",
    "plot_chain",
    "plot_histogram",
    "plot_points",
    "points_frame",
    "plot_schedules",
    "show_hole",
    "show_images",
    "show_sounds",
]


def _as_batch(x: torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(x).detach().cpu().float()
    if x.ndim == 2:  # (H, W)
        x = x[None, None]
    elif x.ndim == 3:  # (C, H, W)
        x = x[None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(
            f"expected images (B, C, H, W) with C = 1 or 3, got shape {tuple(x.shape)}"
        )
    return x


def make_grid(x: torch.Tensor, *, nrow: int = 8, padding: int = 2, pad_value: float = 1.0):
    """Tile images (B, C, H, W) in [-1, 1] into one (C, H', W') image in [0, 1], `nrow` per row."""
    x = to_image(_as_batch(x))
    batch, channels, height, width = x.shape
    ncol = min(nrow, batch)
    nrows = -(-batch // ncol)
    grid = torch.full(
        (channels, nrows * (height + padding) + padding, ncol * (width + padding) + padding),
        pad_value,
    )
    for i in range(batch):
        top = padding + (i // ncol) * (height + padding)
        left = padding + (i % ncol) * (width + padding)
        grid[:, top : top + height, left : left + width] = x[i]
    return grid


def grid_array(x: torch.Tensor, *, nrow: int = 8, padding: int = 2, scale: int = 1) -> np.ndarray:
    """A uint8 (H, W) or (H, W, 3) array of the grid, enlarged `scale` times (for widget PNGs)."""
    grid = make_grid(x, nrow=nrow, padding=padding)
    if scale > 1:
        grid = grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    array = (grid * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    return array[:, :, 0] if array.shape[2] == 1 else array


def show_hole(images: torch.Tensor, mask: torch.Tensor, *, fill=(1.0, -1.0, -1.0)) -> torch.Tensor:
    """The images with their hidden pixels (mask 0) painted in `fill` (red), as RGB (B, 3, H, W).

    `mask` follows `applications.inpaint`: 1 where a pixel is known, 0 where it is hidden.
    Introduced in: notebooks/10_applications.ipynb
    """
    rgb = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
    colour = torch.tensor(fill, dtype=images.dtype, device=images.device)[None, :, None, None]
    mask = mask.to(images)  # same dtype and device as the images
    return mask * rgb + (1 - mask) * colour


def show_images(
    x: torch.Tensor,
    *,
    nrow: int = 8,
    ax: Axes | None = None,
    title: str | None = None,
    padding: int = 2,
    interpolation: str = "nearest",
) -> Axes:
    """Show a batch of images in [-1, 1] as one grid.

    Pixels are drawn as crisp squares (`interpolation="nearest"`): smoothing would blur the
    noise the lessons are about, and makes stored figures larger.
    """
    if ax is None:
        batch = _as_batch(x).shape[0]
        ncol = min(nrow, batch)
        _, ax = plt.subplots(figsize=(min(1.0 * ncol, 10), min(1.0 * -(-batch // ncol), 10)))
    grid = make_grid(x, nrow=nrow, padding=padding).numpy()  # matplotlib wants numpy
    if grid.shape[0] == 1:
        ax.imshow(grid[0], cmap="gray", vmin=0, vmax=1, interpolation=interpolation)
    else:
        ax.imshow(grid.transpose(1, 2, 0), interpolation=interpolation)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_chain(
    images: Sequence[torch.Tensor],
    labels: Sequence[str] | None = None,
    *,
    axes: Sequence[Axes] | None = None,
    arrow: str | None = None,
) -> Sequence[Axes]:
    """Draw a chain x_0 -> ... -> x_T as a strip of images with a label under each.

    `arrow` (for example "add noise ->") is written above the strip.
    """
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if axes is None:
        fig, axes = plt.subplots(1, len(images), figsize=(1.6 * len(images), 2.0))
        axes = np.atleast_1d(axes)
        if arrow:
            fig.suptitle(arrow)
    for i, (ax, img) in enumerate(zip(axes, images)):
        show_images(img, nrow=1, ax=ax, padding=0)
        if labels is not None:  # under the image, growing downwards, so long labels fit
            ax.set_title(labels[i], fontsize=9, y=-0.03, va="top", pad=0)
    return axes


def plot_histogram(
    x: torch.Tensor,
    *,
    ax: Axes | None = None,
    bins: int = 60,
    range_: tuple[float, float] = (-4.0, 4.0),
    normal: bool = True,
    label: str | None = None,
) -> Axes:
    """Histogram of all values in `x` as a density, with the N(0, 1) curve for comparison."""
    ax = ax or plt.subplots(figsize=(4, 3))[1]
    values = torch.as_tensor(x).detach().cpu().float().flatten().numpy()
    ax.hist(values, bins=bins, range=range_, density=True, alpha=0.7, label=label)
    if normal:
        grid = np.linspace(*range_, 200)
        ax.plot(grid, np.exp(-(grid**2) / 2) / np.sqrt(2 * np.pi), "k--", lw=1, label="N(0, 1)")
    ax.set_xlim(*range_)
    return ax


def plot_schedules(
    schedules: Mapping[str, object],
    *,
    quantity: str = "alpha_bar",
    ax: Axes | None = None,
    t: int | None = None,
    x: str = "t",
) -> Axes:
    """Plot one quantity ("alpha_bar", "log_snr" or "betas") of several schedules.

    `x="t"` plots against the timestep; `x="fraction"` against (t + 1) / T, so that schedules
    with different T share one axis. `t`, if given, draws a vertical marker at that timestep.
    """
    allowed = ("alpha_bar", "log_snr", "betas")
    if quantity not in allowed:
        raise ValueError(f"unknown quantity {quantity!r}; allowed: {', '.join(allowed)}")
    if x not in ("t", "fraction"):
        raise ValueError(f"unknown x {x!r}; allowed: 't', 'fraction'")
    ax = ax or plt.subplots(figsize=(4, 3))[1]
    for name, schedule in schedules.items():
        values = schedule.log_snr() if quantity == "log_snr" else getattr(schedule, quantity)
        steps = np.arange(len(values))
        xs = (steps + 1) / len(values) if x == "fraction" else steps
        ax.plot(xs, values.detach().cpu().numpy(), label=name)
    if t is not None:
        ax.axvline(t, color="k", lw=0.8, ls=":")
    ax.set_xlabel("timestep t" if x == "t" else "fraction of the way, (t + 1) / T")
    ax.set_ylabel(
        {
            "alpha_bar": r"$\bar\alpha_t$",
            "log_snr": r"$\log \mathrm{SNR}(t)$",
            "betas": r"$\beta_t$",
        }[quantity]
    )
    ax.legend(fontsize=8)
    return ax


def plot_points(x: torch.Tensor, *, ax: Axes | None = None, **scatter_kwargs) -> Axes:
    """Scatter a 2-D point cloud (N, 2)."""
    x = torch.as_tensor(x).detach().cpu().float()
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"expected points of shape (N, 2), got {tuple(x.shape)}")
    x = x.numpy()
    ax = ax or plt.subplots(figsize=(3, 3))[1]
    scatter_kwargs.setdefault("s", 2)
    ax.scatter(x[:, 0], x[:, 1], **scatter_kwargs)
    ax.set_aspect("equal")
    return ax


def points_frame(
    point_sets: Sequence[torch.Tensor],
    *,
    titles: Sequence[str] | None = None,
    lim: float = 1.2,
    size: float = 2.4,
    dpi: int = 80,
    reference: torch.Tensor | None = None,
    arrows: Sequence[tuple[torch.Tensor, torch.Tensor] | None] | None = None,
) -> torch.Tensor:
    """Draw point clouds (N, 2) side by side and return the picture as an image (3, H, W).

    The result is in [-1, 1] like every image of the course, so a list of them can feed
    `widgets.FrameSlider` (an animation of samples during training). `reference`, optional,
    is drawn in light grey behind every panel (the data). `arrows`, optional, gives each panel
    a vector field to draw under its points: (positions (M, 2), vectors (M, 2)), e.g. from
    `beyond.vector_field_grid`, or None for no arrows on that panel.
    Introduced in: notebooks/12_why_diffusion.ipynb
    """
    if arrows is not None and len(arrows) != len(point_sets):
        raise ValueError(f"{len(point_sets)} panels but {len(arrows)} entries in arrows")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size * len(point_sets), size), dpi=dpi)
    FigureCanvasAgg(fig)
    for i, points in enumerate(point_sets):
        ax = fig.add_subplot(1, len(point_sets), i + 1)
        if reference is not None:
            plot_points(reference, ax=ax, s=1, color="0.85")
        if arrows is not None and arrows[i] is not None:
            where, vectors = (v.detach().float().cpu() for v in arrows[i])
            ax.quiver(where[:, 0], where[:, 1], vectors[:, 0], vectors[:, 1], color="0.45",
                      angles="xy", width=0.004)  # fmt: skip
        plot_points(points, ax=ax, s=1, color=f"C{i}")
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xticks=[], yticks=[])
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]  # (H, W, 3) uint8
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 127.5 - 1


class LossPlot:
    """A loss curve that redraws in place while a notebook trains (one figure, updated).

    Call `update(step_record)` with each record from `train()`; every `every` steps the figure
    is redrawn (raw loss, and its running mean over `smooth` steps). Works headless too: then
    it only collects numbers. `losses` holds every loss seen.
    Introduced in: notebooks/05_training.ipynb
    """

    def __init__(self, *, every: int = 50, smooth: int = 50, title: str = "training loss"):
        self.every, self.smooth, self.title = every, smooth, title
        self.steps: list[int] = []
        self.losses: list[float] = []
        self._handle = None

    def update(self, record) -> None:
        self.steps.append(record.step)
        self.losses.append(record.loss)
        if len(self.losses) % self.every == 0:
            self.show()

    def figure(self):
        """Draw the current curve into a new matplotlib Figure and return it."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 2.6))
        ax = fig.subplots()
        ax.plot(self.steps, self.losses, lw=0.5, alpha=0.4, label="loss per step")
        if len(self.losses) >= self.smooth:
            kernel = np.ones(self.smooth) / self.smooth
            running = np.convolve(self.losses, kernel, mode="valid")
            ax.plot(self.steps[self.smooth - 1 :], running, lw=1.5, label=f"mean of {self.smooth}")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_yscale("log")
        ax.set_title(self.title)
        ax.legend(fontsize=8)
        fig.tight_layout()
        return fig

    def show(self) -> None:
        """Show the curve, replacing the previous picture in the same notebook output."""
        try:
            from IPython.display import display
        except ImportError:  # plain Python: nothing to display
            return
        fig = self.figure()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)


def show_sounds(
    waves: torch.Tensor,
    *,
    titles: Sequence[str] | None = None,
    sample_rate: int = 4000,
    n_fft: int = 128,
) -> plt.Figure:
    """Each sound (n, 1, L) or (n, L) as its waveform (top) over its spectrogram (below).

    The spectrogram is `beyond.spectrogram` in dB, shown from -60 dB to 20 dB: a pure tone is one
    bright line, a chord several, a chirp a slanted line, and noise fills the whole panel.
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    from .beyond import spectrogram

    x = torch.as_tensor(waves).detach().float().cpu()
    x = x.reshape(len(x), -1) if x.ndim == 3 and x.shape[1] == 1 else x
    if x.ndim != 2:
        raise ValueError(f"waves must be (n, 1, L) or (n, L), got {tuple(waves.shape)}")
    if titles is not None and len(titles) != len(x):
        raise ValueError(f"{len(x)} sounds but {len(titles)} titles")
    n, length = x.shape
    fig, axes = plt.subplots(2, n, figsize=(1.8 * n, 3.0), squeeze=False,
                             gridspec_kw=dict(height_ratios=[1, 2]))  # fmt: skip
    seconds = length / sample_rate
    for i in range(n):
        top, bottom = axes[0, i], axes[1, i]
        top.plot(np.arange(length) / sample_rate, x[i].numpy(), lw=0.4)
        top.set(xlim=(0, seconds), ylim=(-1.1, 1.1), xticks=[], yticks=[])
        if titles is not None:
            top.set_title(titles[i], fontsize=9)
        spec = spectrogram(x[i], n_fft=n_fft).numpy()  # (F, frames) in dB
        bottom.imshow(spec, origin="lower", aspect="auto", vmin=-60, vmax=20, cmap="magma",
                      interpolation="nearest", extent=(0, seconds, 0, sample_rate / 2))  # fmt: skip
        bottom.set(xticks=[], yticks=[] if i else [0, sample_rate // 4, sample_rate // 2])
    axes[1, 0].set_ylabel("Hz")
    fig.tight_layout()
    return fig
