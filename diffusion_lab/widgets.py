"""Interactive explorers for the notebooks, built on core ipywidgets (works in 7.7 and 8).

Each widget renders PNG bytes into a core `widgets.Image`, so it works on Colab (ipywidgets
7.7.1) and in current JupyterLab (8.x). Each also works headless: setting `.slider.value`
in Python re-renders `.image.value`, which the tests check. Noise is fixed when a widget is
built (from its own generator), so moving the slider changes only t.

Nothing in the package imports this module; it is the only module that imports ipywidgets.
Introduced in: notebooks/02_forward_process.ipynb
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .forward import check_images, q_sample
from .samplers import Trajectory, sample
from .schedules import SCHEDULES, NoiseSchedule
from .utils import png_bytes, randn
from .viz import grid_array, plot_schedules, show_hole

__all__ = [
    "FrameSlider",
    "GuidanceExplorer",
    "InpaintingExplorer",
    "PromptExplorer",
    "ReverseWalkthrough",
    "ScheduleComparison",
    "TimestepExplorer",
]


def _prepare(x0: torch.Tensor, device, noise, generator) -> tuple[torch.Tensor, torch.Tensor]:
    if x0.ndim == 3:
        x0 = x0[None]
        noise = noise[None] if noise is not None and noise.ndim == 3 else noise
    if x0.ndim != 4:
        raise ValueError(
            f"expected images (B, C, H, W) or one image (C, H, W), got {tuple(x0.shape)}"
        )
    check_images(x0, "images")
    device = torch.device(device) if device is not None else x0.device
    if noise is None:
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        noise = randn(x0.shape, generator=generator)
    elif noise.shape != x0.shape:
        raise ValueError(
            f"noise has shape {tuple(noise.shape)} but the images have {tuple(x0.shape)}"
        )
    return x0.to(device), noise.to(device)


def _image(value: bytes = b"") -> widgets.Image:
    """A PNG image shown at its own size (a VBox would otherwise stretch it to the page width)."""
    return widgets.Image(value=value, format="png", layout=widgets.Layout(align_self="flex-start"))


def _default_scale(x0: torch.Tensor) -> int:
    return max(1, 256 // (x0.shape[-1] * min(8, len(x0))))


class TimestepExplorer(widgets.VBox):
    """A slider over t (with a play button) showing x_t = q_sample(x_0, t) with fixed noise.

    Beside the picture: t, alpha_bar_t, and the signal and noise coefficients
    sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t). x_t is computed live on `device`.
    Introduced in: notebooks/02_forward_process.ipynb
    """

    def __init__(
        self,
        x0: torch.Tensor,
        schedule: NoiseSchedule,
        *,
        t: int = 0,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        nrow: int = 8,
        scale: int | None = None,
    ):
        self.x0, self.noise = _prepare(x0, device, noise, generator)
        self.schedule = schedule.to(self.x0.device)
        self.nrow, self.scale = nrow, scale or _default_scale(self.x0)
        T = len(schedule)
        self.slider = widgets.IntSlider(
            value=int(schedule.check_t(t)),
            min=0,
            max=T - 1,
            description="t",
            continuous_update=True,
        )
        self.play = widgets.Play(
            value=self.slider.value,
            min=0,
            max=T - 1,
            step=max(1, T // 50),
            interval=100,
            description="play",
        )
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.image = _image()
        self.info = widgets.HTML()
        self.slider.observe(self._on_change, names="value")
        super().__init__([widgets.HBox([self.play, self.slider]), self.image, self.info])
        self._on_change()

    def xt(self, t: int) -> torch.Tensor:
        """x_t for the widget's images and fixed noise (on the widget's device)."""
        t_batch = torch.full((len(self.x0),), int(t), dtype=torch.long, device=self.x0.device)
        return q_sample(self.x0, t_batch, self.schedule, self.noise)

    def frame(self, t: int) -> bytes:
        """The PNG shown at timestep t."""
        return png_bytes(grid_array(self.xt(t), nrow=self.nrow, scale=self.scale))

    def _on_change(self, change=None) -> None:
        t = self.slider.value
        self.image.value = self.frame(t)
        alpha_bar = self.schedule.alpha_bar[t].item()
        self.info.value = (
            f"<b>t = {t}</b> (code timestep: the image after {t + 1} of {len(self.schedule)} "
            f"steps) &nbsp;|&nbsp; &alpha;&#772; = {alpha_bar:.4f} (share of signal variance "
            f"left: {100 * alpha_bar:.1f}%) &nbsp;|&nbsp; x = {alpha_bar**0.5:.3f}&middot;x"
            f"<sub>0</sub> + {(1 - alpha_bar) ** 0.5:.3f}&middot;&epsilon;"
        )


class ScheduleComparison(widgets.VBox):
    """Two schedules side by side at the same t (same images, same noise), with their curves.

    `schedules` maps names to NoiseSchedules of equal length (default: linear, cosine and
    sigmoid with T = 1000); two dropdowns pick the left and right one.
    Introduced in: notebooks/03_noise_schedules.ipynb
    """

    def __init__(
        self,
        x0: torch.Tensor,
        schedules: Mapping[str, NoiseSchedule] | None = None,
        *,
        t: int = 250,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        nrow: int = 4,
        scale: int | None = None,
    ):
        if schedules is None:
            schedules = {name: make() for name, make in SCHEDULES.items()}
        if len(schedules) < 2:
            raise ValueError("give at least two schedules to compare")
        lengths = {len(s) for s in schedules.values()}
        if len(lengths) != 1:
            raise ValueError(f"all schedules must have the same T to share a slider, got {lengths}")
        T = lengths.pop()
        self.x0, self.noise = _prepare(x0, device, noise, generator)
        self.schedules = {name: s.to(self.x0.device) for name, s in schedules.items()}
        self.nrow, self.scale = nrow, scale or _default_scale(self.x0[:nrow])
        names = list(self.schedules)
        self.left = widgets.Dropdown(options=names, value=names[0], description="left")
        self.right = widgets.Dropdown(options=names, value=names[1], description="right")
        self.slider = widgets.IntSlider(
            value=t, min=0, max=T - 1, description="t", continuous_update=True
        )
        self.images = [_image(), _image()]
        self.labels = [widgets.HTML(), widgets.HTML()]
        self.curves = _image()
        self._figure = Figure(figsize=(7.5, 2.4), dpi=80)
        self._canvas = FigureCanvasAgg(self._figure)
        self._pair: tuple[str, str] | None = None
        for control in (self.left, self.right, self.slider):
            control.observe(self._on_change, names="value")
        panels = [widgets.VBox([lab, img]) for lab, img in zip(self.labels, self.images)]
        super().__init__(
            [widgets.HBox([self.left, self.right]), self.slider, widgets.HBox(panels), self.curves]
        )
        self._on_change()

    def frame(self, name: str, t: int) -> bytes:
        """The PNG of x_t under schedule `name`."""
        schedule = self.schedules[name]
        t_batch = torch.full((len(self.x0),), int(t), dtype=torch.long, device=self.x0.device)
        xt = q_sample(self.x0, t_batch, schedule, self.noise)
        return png_bytes(grid_array(xt, nrow=self.nrow, scale=self.scale))

    def _draw_curves(self) -> None:
        """Redraw both curve panels for the chosen pair (only when a dropdown changes).

        The t marker is blitted onto a cached background, so moving the slider stays fast.
        """
        chosen = {n: self.schedules[n] for n in dict.fromkeys([self.left.value, self.right.value])}
        self._figure.clear()
        axes = self._figure.subplots(1, 2)
        for ax, quantity in zip(axes, ("alpha_bar", "log_snr")):
            plot_schedules(chosen, quantity=quantity, ax=ax)
        self._markers = [ax.axvline(0, color="k", lw=0.8, ls=":", animated=True) for ax in axes]
        self._figure.tight_layout()
        self._canvas.draw()
        self._background = self._canvas.copy_from_bbox(self._figure.bbox)
        self._pair = (self.left.value, self.right.value)

    def _curves_png(self, t: int) -> bytes:
        if self._pair != (self.left.value, self.right.value):
            self._draw_curves()
        self._canvas.restore_region(self._background)
        for marker in self._markers:
            marker.set_xdata([t, t])
            marker.axes.draw_artist(marker)
        rgba = np.asarray(self._canvas.buffer_rgba())
        return png_bytes(np.ascontiguousarray(rgba[:, :, :3]))

    def _on_change(self, change=None) -> None:
        t = self.slider.value
        for image, label, name in zip(
            self.images, self.labels, (self.left.value, self.right.value)
        ):
            image.value = self.frame(name, t)
            schedule = self.schedules[name]
            label.value = (
                f"<b>{name}</b>: &alpha;&#772;<sub>t</sub> = "
                f"{schedule.alpha_bar[t].item():.4f}, log SNR = "
                f"{schedule.log_snr(t).item():+.2f}"
            )
        self.curves.value = self._curves_png(t)


class _PngSlider(widgets.VBox):
    """A play button and a slider over PNG frames encoded up front, with one caption each."""

    def __init__(self, pngs: list[bytes], labels: list[str], *, description: str, interval: int):
        self.pngs, self.labels = pngs, labels
        last = len(pngs) - 1
        self.slider = widgets.IntSlider(value=0, min=0, max=last, description=description)
        self.play = widgets.Play(
            value=0, min=0, max=last, step=1, interval=interval, description="play"
        )
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.image = _image(pngs[0])
        self.info = widgets.HTML(labels[0])
        self.slider.observe(self._on_change, names="value")
        super().__init__([widgets.HBox([self.play, self.slider]), self.image, self.info])

    def frame(self, k: int) -> bytes:
        """The PNG shown for frame k."""
        return self.pngs[k]

    def _on_change(self, change=None) -> None:
        self.image.value = self.pngs[self.slider.value]
        self.info.value = self.labels[self.slider.value]


class FrameSlider(_PngSlider):
    """A slider (with a play button) over precomputed frames: an animation you can scrub.

    `frames` is a sequence of image batches (B, C, H, W) or single images (C, H, W), all the
    same shape, in [-1, 1]; `labels` (optional) is one caption per frame. Every frame is
    encoded once, up front, so moving the slider only swaps PNG bytes.
    Introduced in: notebooks/01_noise.ipynb
    """

    def __init__(
        self,
        frames,
        labels=None,
        *,
        nrow: int = 8,
        scale: int | None = None,
        description: str = "frame",
        interval: int = 150,
    ):
        frames = [f[None] if f.ndim == 3 else f for f in frames]
        if not frames:
            raise ValueError("give at least one frame")
        if labels is not None and len(labels) != len(frames):
            raise ValueError(f"{len(frames)} frames but {len(labels)} labels")
        if len({tuple(f.shape) for f in frames}) != 1:
            raise ValueError("all frames must have the same shape")
        scale = scale or _default_scale(frames[0])
        pngs = [png_bytes(grid_array(f, nrow=nrow, scale=scale)) for f in frames]
        labels = list(labels) if labels is not None else [""] * len(frames)
        super().__init__(pngs, labels, description=description, interval=interval)


class ReverseWalkthrough(_PngSlider):
    """Scrub through a stored reverse run: x_t on the left, the model's x_0 estimate on the right.

    `trajectory` comes from `Trajectory.record(sampler(...), x_T, every=...)`. Each frame is
    named by how much of the finished images x_t already shows (`Trajectory.stages`: pure
    noise, faint shape, rough image, clear image; `noun="digit"` says "rough digit"). All
    frames are encoded once, up front.
    Introduced in: notebooks/06_sampling.ipynb
    """

    def __init__(
        self,
        trajectory: Trajectory,
        *,
        nrow: int = 4,
        scale: int | None = None,
        thresholds=(0.25, 0.6, 0.9),
        noun: str = "image",
        interval: int = 120,
    ):
        if not isinstance(trajectory, Trajectory):
            raise TypeError("give a Trajectory (from Trajectory.record(...))")
        self.trajectory = trajectory
        first = trajectory.xt[0]
        scale = scale or max(1, 128 // (first.shape[-1] * min(nrow, len(first))))
        self.stages = trajectory.stages(thresholds, noun)
        self.closeness = trajectory.closeness().tolist()
        pngs = [self._render(k, nrow, scale) for k in range(len(trajectory))]
        labels = [self._caption(k) for k in range(len(trajectory))]
        super().__init__(pngs, labels, description="frame", interval=interval)

    def _render(self, k: int, nrow: int, scale: int) -> bytes:
        left = grid_array(self.trajectory.xt[k], nrow=nrow, scale=scale)
        right = grid_array(self.trajectory.x0_hat[k], nrow=nrow, scale=scale)
        gap = np.full((left.shape[0], 8 * scale) + left.shape[2:], 255, dtype=np.uint8)
        return png_bytes(np.concatenate([left, gap, right], axis=1))

    def _caption(self, k: int) -> str:
        t = self.trajectory.t[k]
        where = "finished: x<sub>0</sub>" if t < 0 else f"t = {t}"
        return (
            f"<b>{self.stages[k]}</b> &nbsp;|&nbsp; {where} &nbsp;|&nbsp; left: the sample "
            f"x<sub>t</sub>, right: the model's guess of x<sub>0</sub> from it &nbsp;|&nbsp; "
            f"correlation with the finished images: {self.closeness[k]:.2f}"
        )


class GuidanceExplorer(widgets.VBox):
    """A guidance-scale slider and a class picker over samples computed beforehand.

    `images` (S, K, N, C, H, W): N samples for each of K classes at each of S guidance scales
    (`scales`, S floats), best made from the same starting noise at every scale so the slider
    changes only the guidance. `read` (S, K, N), optional: the class a classifier reads in each
    sample, for a caption of how many of the samples shown came out as asked. `notes`, optional:
    one line per scale for the caption (the measured variety, say). The picker shows one class
    (all N samples) or "all" (the first `per_row` samples of every class, one row each). A
    picture is encoded the first time it is shown and then kept, so moving back is instant.
    Introduced in: notebooks/08_conditioning.ipynb
    """

    def __init__(
        self,
        images: torch.Tensor,
        scales,
        *,
        read: torch.Tensor | None = None,
        notes=None,
        class_names=None,
        per_row: int = 8,
        scale: int = 3,
    ):
        if images.ndim != 6:
            raise ValueError(
                "images must be (S scales, K classes, N samples, C, H, W), "
                f"got {tuple(images.shape)}"
            )
        scales = [float(w) for w in scales]
        S, K, N = images.shape[:3]
        if len(scales) != S:
            raise ValueError(f"{S} groups of images but {len(scales)} guidance scales")
        if read is not None and tuple(read.shape) != (S, K, N):
            raise ValueError(f"read must have shape {(S, K, N)}, got {tuple(read.shape)}")
        if notes is not None and len(notes) != S:
            raise ValueError(f"give one note per guidance scale: {S} scales, {len(notes)} notes")
        self.notes = notes
        check_images(images.flatten(0, 2), "images")
        self.images, self.scales, self.read = images.cpu(), scales, read
        self.class_names = [str(k) for k in range(K)] if class_names is None else class_names
        self.per_row, self.scale, self._cache = per_row, scale, {}
        self.slider = widgets.SelectionSlider(
            options=[(f"{w:g}", w) for w in scales], value=scales[0], description="guidance w",
            continuous_update=True,
        )  # fmt: skip
        self.picker = widgets.ToggleButtons(
            options=[("all", -1)] + [(name, k) for k, name in enumerate(self.class_names)],
            value=-1,
            description="class",
            style={"button_width": "42px"},
        )
        self.image = _image()
        self.info = widgets.HTML()
        self.slider.observe(self._on_change, names="value")
        self.picker.observe(self._on_change, names="value")
        super().__init__([self.slider, self.picker, self.image, self.info])
        self._on_change()

    def frame(self, w: float, k: int = -1) -> bytes:
        """The PNG for guidance scale `w` and class `k` (-1: every class, one row each)."""
        i = self.scales.index(float(w))
        if (i, k) not in self._cache:
            if k < 0:
                grid = self.images[i, :, : self.per_row].flatten(0, 1)
                nrow = min(self.per_row, self.images.shape[2])
            else:
                grid, nrow = self.images[i, k], self.per_row
            self._cache[i, k] = png_bytes(grid_array(grid, nrow=nrow, scale=self.scale))
        return self._cache[i, k]

    def _on_change(self, change=None) -> None:
        w, k = self.slider.value, self.picker.value
        self.image.value = self.frame(w, k)
        i = self.scales.index(w)
        caption = f"guidance scale w = {w:g}"
        if self.read is not None:
            asked = torch.arange(self.read.shape[1])[:, None]
            hits = self.read[i] == asked  # (K, N)
            hits = hits[:, : self.per_row] if k < 0 else hits[k]  # the samples on show
            caption += (
                f" &nbsp;|&nbsp; the classifier reads {int(hits.sum())} of these {hits.numel()} "
                "as the class asked for"
            )
        if self.notes is not None:
            caption += f" &nbsp;|&nbsp; {self.notes[i]}"
        self.info.value = caption


class InpaintingExplorer(widgets.VBox):
    """Pick which part of the images is hidden; see the model's completions, computed beforehand.

    `originals` (N, C, H, W): the images. `masks`: {name: mask} with masks (1 or N, 1, H, W),
    1 where a pixel is known (as in `applications.inpaint`). `completions` {name: (N, K, C, H,
    W)}: K completions of each image for that mask. Each row of the picture shows the original,
    what the model was given (the hidden part in red) and the K completions. `notes`, optional:
    {name: a line for the caption} (a measured figure, say). Pictures are encoded once, on
    first view. Introduced in: notebooks/10_applications.ipynb
    """

    def __init__(self, originals: torch.Tensor, masks: Mapping, completions: Mapping, *,
                 notes: Mapping | None = None, scale: int = 3):  # fmt: skip
        if originals.ndim != 4:
            raise ValueError(f"originals must be (N, C, H, W), got {tuple(originals.shape)}")
        if set(masks) != set(completions) or not masks:
            raise ValueError(
                f"give one set of completions per mask: masks {sorted(masks)}, completions "
                f"{sorted(completions)}"
            )
        N, C, H, W = originals.shape
        for name, images in completions.items():
            if images.ndim != 5 or tuple(images.shape[:1] + images.shape[2:]) != (N, C, H, W):
                raise ValueError(
                    f"completions[{name!r}] must be (N={N}, K, {C}, {H}, {W}), got "
                    f"{tuple(images.shape)}"
                )
            check_images(images.flatten(0, 1), f"completions[{name!r}]")
        check_images(originals, "originals")
        self.originals, self.masks, self.completions = originals.cpu(), masks, completions
        self.notes, self.scale, self._cache = notes or {}, scale, {}
        self.picker = widgets.ToggleButtons(options=list(masks), value=next(iter(masks)),
                                            description="hide")  # fmt: skip
        self.image = _image()
        self.info = widgets.HTML()
        self.picker.observe(self._on_change, names="value")
        super().__init__([self.picker, self.image, self.info])
        self._on_change()

    def frame(self, name: str) -> bytes:
        """The PNG for mask `name`: per row, the original, the input with its hole, completions."""
        if name not in self._cache:
            mask = self.masks[name].cpu().expand(len(self.originals), 1, -1, -1)
            given = show_hole(self.originals, mask)
            rgb = [x.expand(-1, 3, -1, -1) for x in (self.originals, given)]
            done = self.completions[name].cpu()
            done = done.expand(-1, -1, 3, -1, -1)  # grey -> RGB; RGB unchanged
            rows = torch.cat([rgb[0][:, None], rgb[1][:, None], done], dim=1)  # (N, 2 + K, ...)
            grid = grid_array(rows.flatten(0, 1), nrow=rows.shape[1], scale=self.scale)
            self._cache[name] = png_bytes(grid)
        return self._cache[name]

    def _on_change(self, change=None) -> None:
        name = self.picker.value
        self.image.value = self.frame(name)
        K = self.completions[name].shape[1]
        caption = (
            f"hidden: <b>{html.escape(str(name))}</b> &nbsp;|&nbsp; each row: the original, what "
            f"the model was given (hidden pixels in red), {K} completions"
        )
        if name in self.notes:
            caption += f" &nbsp;|&nbsp; {self.notes[name]}"
        self.info.value = caption


class PromptExplorer(widgets.VBox):
    """Type a prompt, press the button, see a grid of images from a text-to-image model.

    `model` follows the course contract with prompt tokens as `cond`; `tokenizer.encode` turns
    text into tokens (an unknown word is reported under the picture, with the known words).
    Every prompt starts from the same `n` noises (drawn once from `seed`), so two prompts differ
    only by their words. Results are kept per (prompt, guidance scale): asking again is instant.
    Pressing Enter in the box or moving the guidance slider draws too. Headless use: set
    `.text.value` or `.guidance.value` (each draws), or call `.generate()`.
    Introduced in: notebooks/09_text_to_image.ipynb
    """

    def __init__(
        self,
        model,
        schedule: NoiseSchedule,
        tokenizer,
        *,
        prompt: str = "",
        n: int = 8,
        scales=(1.0, 2.0, 3.0, 5.0),
        guidance_scale: float = 3.0,
        prediction: str = "eps",
        sampler: str = "dpm_solver_sde",
        num_steps: int = 20,
        nrow: int = 8,
        scale: int = 3,
        seed: int = 0,
    ):
        device = next(model.parameters()).device
        shape = getattr(model, "input_shape", None)
        if shape is None:
            raise ValueError("model needs an input_shape (C, H, W), as the course's U-Nets have")
        self.model, self.schedule, self.tokenizer = model, schedule, tokenizer
        self.options = dict(prediction=prediction, sampler=sampler, num_steps=num_steps)
        self.nrow, self.scale, self.seed, self._cache = nrow, scale, seed, {}
        scales = [float(w) for w in scales]
        if float(guidance_scale) not in scales:
            raise ValueError(f"guidance_scale {guidance_scale} must be one of scales {scales}")
        self.x_T = randn((n, *shape), generator=torch.Generator().manual_seed(seed)).to(device)
        self.text = widgets.Text(value=prompt, description="prompt", continuous_update=False)
        self.guidance = widgets.SelectionSlider(
            options=[(f"{w:g}", w) for w in scales],
            value=float(guidance_scale),
            description="guidance w",
        )
        self.button = widgets.Button(description="generate", button_style="primary")
        self.button.on_click(lambda _: self.generate())
        self.text.observe(lambda _: self.generate(), names="value")  # Enter in the text box
        self.guidance.observe(lambda _: self.generate(), names="value")
        self.image = _image()
        self.info = widgets.HTML()
        controls = widgets.HBox([self.text, self.button])
        super().__init__([controls, self.guidance, self.image, self.info])
        if prompt:
            self.generate()

    def images(self, prompt: str, guidance_scale: float) -> torch.Tensor:
        """The n images for `prompt` at `guidance_scale` (computed once, then cached)."""
        key = (" ".join(prompt.lower().split()), float(guidance_scale))
        if key not in self._cache:
            tokens = self.tokenizer.encode([key[0]] * len(self.x_T)).to(self.x_T.device)
            self._cache[key] = sample(
                self.model, self.schedule, self.x_T, cond=tokens, guidance_scale=key[1],
                generator=torch.Generator(self.x_T.device).manual_seed(self.seed + 1),
                progress=False, **self.options,
            ).cpu()  # fmt: skip
        return self._cache[key]

    def generate(self) -> None:
        """Draw the images for the current prompt and guidance scale."""
        prompt, w = self.text.value, self.guidance.value
        self.info.value = f"drawing <b>{html.escape(prompt)}</b> ..."
        try:
            images = self.images(prompt, w)
        except ValueError as error:  # an unknown word, or a prompt too long
            self.info.value = (
                f"<b>cannot draw this prompt</b>: {html.escape(str(error))} (the picture above "
                "is the last prompt that worked)"
            )
            return
        self.image.value = png_bytes(grid_array(images, nrow=self.nrow, scale=self.scale))
        shown = html.escape(prompt) if prompt.strip() else "(empty prompt: no condition)"
        self.info.value = f"<b>{shown}</b> &nbsp;|&nbsp; guidance w = {w:g}"
