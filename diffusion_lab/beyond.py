"""Beyond images: the same diffusion recipe on sound, point clouds and video, and two other
views of the same process on 2-D data: scores and flow matching.

Data and measures (the models live in `models.UNet1d` and `models.PointDenoiser`; video clips
are diffused as frames stacked into channels of the image `models.UNet`):
- audio: `make_sounds` (tones, chords, chirps), `spectrogram`, and the measures
  `dominant_frequency`, `spectral_flatness`, `peak_energy_fraction`;
- point clouds: `point_cloud_shapes`, `chamfer_distance`, `shape_fit`;
- video: `moving_digit_clips`, `clips_to_channels`, `channels_to_clips`, `motion_consistency`.

Scores and flows. The DDPM path x_t = sqrt(a) x0 + sqrt(1 - a) eps (a = alpha_bar_t) and the
straight flow-matching path x_s = (1 - s) x0 + s eps, s in [0, 1] (Lipman et al. 2023; Liu et
al. 2023, rectified flow) are the same path up to a rescaling of space and time:

    x_s = x_t / (sqrt(a) + sqrt(1 - a)),   s = sqrt(1 - a) / (sqrt(a) + sqrt(1 - a)),

i.e. s / (1 - s) = sigma_t = sqrt((1 - a) / a), for the same (x0, eps). So one denoiser serves
every view: the noise estimate eps_hat = E[eps | x_t] gives the score of the noised data,
grad log q_t(x_t) = -eps_hat / sqrt(1 - a) (Vincent 2011; Song & Ermon 2019; Song et al.
2021), and the flow-matching velocity E[eps - x0 | x_s] = eps_hat - x0_hat.

Flow time and the course's integer timesteps: flow-matching models here keep the course
contract model(x, t) with integer t in [0, T-1] by reading s on a grid, t = round(s (T - 1)),
T = `num_timesteps` (1000), so `toy.MLPDenoiser` works unchanged.

Introduced in: notebooks/13_beyond_images.ipynb
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .data import load_mnist
from .forward import eps_to_x0
from .samplers import SamplerStep
from .training import TrainStep
from .utils import append_dims, optimizer_step, randn, warmup_cosine_lr

__all__ = [
    "SHAPES",
    "SOUND_KINDS",
    "channels_to_clips",
    "chamfer_distance",
    "clips_to_channels",
    "ddpm_to_flow",
    "dominant_frequency",
    "eps_to_score",
    "eps_to_velocity",
    "euler_sample",
    "euler_step",
    "flow_alpha_bar",
    "flow_matching_loss",
    "flow_time",
    "gaussian_mixture_score",
    "make_sounds",
    "motion_consistency",
    "moving_digit_clips",
    "peak_energy_fraction",
    "playable",
    "point_cloud_shapes",
    "score_to_eps",
    "shape_fit",
    "spectral_flatness",
    "spectrogram",
    "train_flow",
    "vector_field_grid",
    "velocity_to_eps",
]

SOUND_KINDS = ("tone", "chord", "chirp")
SHAPES = ("circle", "square", "triangle")


def _check_n(**sizes: int) -> None:
    for name, value in sizes.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_names(names: tuple[str, ...], allowed: tuple[str, ...], what: str) -> None:
    if not names or any(name not in allowed for name in names):
        raise ValueError(f"{what} must be a non-empty subset of {allowed}, got {names}")


def _rand(*shape: int, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, device=device).cpu()  # data live on the CPU


def _randint(low: int, high: int, *shape: int, generator: torch.Generator | None):
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.randint(low, high, shape, generator=generator, device=device).cpu()


# ----- audio: waveforms (n, 1, length) in [-1, 1] -----
LOW_NOTE, HIGH_NOTE = 57, 76  # MIDI roots A3 (220 Hz) .. E5 (659 Hz)
CHORDS = torch.tensor([[0, 7, 0], [0, 4, 7], [0, 3, 7]])  # fifth, major and minor triads
CHORD_NOTES = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 1, 1]])  # which of the 3 notes sound


def _midi_to_hz(note: torch.Tensor) -> torch.Tensor:
    return 440.0 * 2.0 ** ((note.double() - 69) / 12)  # equal temperament, A4 = 440 Hz


def make_sounds(
    n: int,
    *,
    length: int = 1024,
    sample_rate: int = 4000,
    kinds: tuple[str, ...] = SOUND_KINDS,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, list[str]]:
    """Synthetic sounds: (waves (n, 1, length) in [-1, 1], the kind of each sound).

    tone: one sine on a semitone between A3 and E5; chord: a fifth or a major or minor triad on
    such a root; chirp: a linear sweep from a root up or down by 4 to 12 semitones. Every sound
    has a random phase per note, a peak amplitude in [0.5, 0.9] and a short raised-cosine fade
    in and out (length / 32 samples), so it starts and ends in silence.
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    _check_n(n=n, length=length, sample_rate=sample_rate)
    _check_names(tuple(kinds), SOUND_KINDS, "kinds")
    g = generator
    # 1. draw everything for every sound, so the random stream does not depend on the kinds
    allowed = torch.tensor([SOUND_KINDS.index(k) for k in kinds])
    kind = allowed[_randint(0, len(kinds), n, generator=g)]  # (n,) index into SOUND_KINDS
    root = _randint(LOW_NOTE, HIGH_NOTE + 1, n, generator=g)  # (n,)
    chord = _randint(0, len(CHORDS), n, generator=g)  # (n,)
    sweep = _randint(4, 13, n, generator=g) * (2 * _randint(0, 2, n, generator=g) - 1)
    amplitude = 0.5 + 0.4 * _rand(n, generator=g).double()  # (n,)
    phase = 2 * math.pi * _rand(n, 3, generator=g).double()  # (n, 3)
    # 2. per note: start and end pitch (equal for tones and chords) and whether it sounds
    is_chord = (kind == SOUND_KINDS.index("chord"))[:, None]  # (n, 1)
    is_chirp = (kind == SOUND_KINDS.index("chirp"))[:, None]
    start = root[:, None] + torch.where(is_chord, CHORDS[chord], 0)  # (n, 3) MIDI notes
    end = start + torch.where(is_chirp, sweep[:, None], 0)
    on = torch.where(is_chord, CHORD_NOTES[chord], torch.tensor([1, 0, 0])).double()  # (n, 3)
    # 3. a linear chirp from f0 to f1 over duration D has phase 2 pi (f0 u + (f1 - f0) u^2 / 2D)
    u = torch.arange(length, dtype=torch.float64) / sample_rate  # (L,) seconds
    f0, f1 = _midi_to_hz(start)[..., None], _midi_to_hz(end)[..., None]  # (n, 3, 1)
    duration = length / sample_rate
    angle = 2 * math.pi * (f0 * u + (f1 - f0) * u**2 / (2 * duration)) + phase[..., None]
    wave = (on[..., None] * torch.sin(angle)).sum(1) / on.sum(1, keepdim=True)  # (n, L)
    # 4. fade in and out, then scale to the peak amplitude
    fade = max(1, length // 32)
    ramp = 0.5 - 0.5 * torch.cos(math.pi * torch.arange(fade, dtype=torch.float64) / fade)
    envelope = torch.ones(length, dtype=torch.float64)
    envelope[:fade], envelope[length - fade :] = ramp, ramp.flip(0)
    wave = wave * envelope
    wave = amplitude[:, None] * wave / wave.abs().amax(1, keepdim=True).clamp(min=1e-12)
    return wave.float()[:, None], [SOUND_KINDS[k] for k in kind.tolist()]


def spectrogram(wave: torch.Tensor, *, n_fft: int = 128, hop: int = 32) -> torch.Tensor:
    """Magnitude spectrogram in dB, 20 log10 |STFT|, with a Hann window (floor -100 dB).

    wave (..., L) -> (..., n_fft // 2 + 1, frames): frequency rows (0 to sample_rate / 2), time
    columns, ready for `imshow(origin="lower")`.
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    x = wave.reshape(-1, wave.shape[-1])  # (B, L)
    window = torch.hann_window(n_fft, device=wave.device, dtype=wave.dtype)
    spec = torch.stft(x, n_fft, hop_length=hop, window=window, return_complex=True)
    db = 20 * spec.abs().clamp(min=1e-5).log10()  # (B, F, frames)
    return db.reshape(*wave.shape[:-1], *db.shape[1:])


def _power_spectrum(wave: torch.Tensor) -> torch.Tensor:
    """|FFT|^2 of the Hann-windowed wave, without the DC bin: (..., L) -> (..., L // 2)."""
    window = torch.hann_window(wave.shape[-1], periodic=False, device=wave.device)
    return torch.fft.rfft(wave * window.to(wave.dtype)).abs().square()[..., 1:]


def dominant_frequency(wave: torch.Tensor, sample_rate: int = 4000) -> torch.Tensor:
    """The frequency (Hz) of the strongest FFT bin of each wave: (..., L) -> (...,).

    Resolution: one bin, sample_rate / L Hz (3.9 Hz for 1024 samples at 4 kHz).
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    bins = _power_spectrum(wave).argmax(-1) + 1  # + 1: the DC bin was dropped
    return bins.to(wave.dtype) * sample_rate / wave.shape[-1]


def spectral_flatness(wave: torch.Tensor) -> torch.Tensor:
    """Geometric over arithmetic mean of the power spectrum (Johnston 1988): (..., L) -> (...,).

    Near 0 for a few pure notes, about exp(-0.577) = 0.56 for white noise: a number that says
    "a sound, not noise".
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    power = _power_spectrum(wave) + 1e-12  # the floor keeps log finite in silent bins
    return power.log().mean(-1).exp() / power.mean(-1)


def peak_energy_fraction(wave: torch.Tensor, *, top_k: int = 16) -> torch.Tensor:
    """The share of spectral energy in the `top_k` strongest FFT bins: (..., L) -> (...,).

    Tones and chords are peaky (close to 1); white noise spreads evenly (top_k / (L / 2)).
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    power = _power_spectrum(wave)
    return power.topk(top_k, dim=-1).values.sum(-1) / power.sum(-1).clamp(min=1e-12)


def playable(waves: torch.Tensor, *, sample_rate: int = 4000, rate: int = 8000, gap: float = 0.15):
    """Waves (n, 1, L) or (n, L) in [-1, 1] joined into one track for `IPython.display.Audio`.

    Each wave is resampled from `sample_rate` to `rate` (linear interpolation; some browsers
    refuse very low rates) and followed by `gap` seconds of silence. Returns a 1-D numpy array
    to play at `rate`, e.g. Audio(playable(waves), rate=8000, normalize=False).
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    _check_n(sample_rate=sample_rate, rate=rate)
    if gap < 0:
        raise ValueError(f"gap is seconds of silence between sounds, >= 0; got {gap}")
    x = waves.detach().float().cpu().reshape(len(waves), -1)  # (n, L)
    length = round(x.shape[1] * rate / sample_rate)
    x = F.interpolate(x[:, None], size=length, mode="linear", align_corners=True)[:, 0]
    silence = torch.zeros(len(x), round(gap * rate))
    return torch.cat([x.clamp(-1, 1), silence], dim=1).flatten().numpy()


# ----- point clouds: sets (n, num_points, 2) in [-1, 1] -----
def _outline(shape: str, u: torch.Tensor) -> torch.Tensor:
    """Points at fractions u (...,) of the way round a shape of circumradius 1: (..., 2)."""
    if shape == "circle":
        angle = 2 * math.pi * u
        return torch.stack([angle.cos(), angle.sin()], dim=-1)
    corners = 4 if shape == "square" else 3
    angle = math.pi / 2 + 2 * math.pi * torch.arange(corners + 1, dtype=u.dtype) / corners
    vertex = torch.stack([angle.cos(), angle.sin()], dim=-1)  # (corners + 1, 2), closed
    side = (u * corners).floor().long().clamp(max=corners - 1)  # which side each point is on
    along = (u * corners - side)[..., None]  # how far along that side
    return vertex[side] + along * (vertex[side + 1] - vertex[side])


def point_cloud_shapes(
    n: int,
    *,
    num_points: int = 64,
    shapes: tuple[str, ...] = SHAPES,
    noise: float = 0.02,
    rotate: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Point clouds on outlines: (points (n, num_points, 2) in [-1, 1], labels (n,) into shapes).

    Each cloud picks a shape, a rotation (uniform angle; with `rotate=False` every shape stands
    on a corner, the same random numbers drawn), a circumradius in [0.5, 0.85] and `num_points`
    positions uniformly along the perimeter, then adds Gaussian jitter of std `noise`. The
    order of the points carries no information.
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    _check_n(n=n, num_points=num_points)
    _check_names(tuple(shapes), SHAPES, "shapes")
    g = generator
    labels = _randint(0, len(shapes), n, generator=g)  # (n,)
    u = _rand(n, num_points, generator=g)  # (n, P) positions along the perimeter
    angle = 2 * math.pi * _rand(n, generator=g) * rotate  # (n,); drawn either way
    radius = 0.5 + 0.35 * _rand(n, generator=g)  # (n,)
    jitter = noise * randn((n, num_points, 2), generator=g).cpu()
    points = torch.zeros(n, num_points, 2)
    for k, shape in enumerate(shapes):
        points[labels == k] = _outline(shape, u[labels == k])
    cos, sin = angle.cos()[:, None], angle.sin()[:, None]  # (n, 1) rotation
    px, py = points[..., 0], points[..., 1]  # (n, P) each
    rotated = torch.stack([cos * px - sin * py, sin * px + cos * py], dim=-1)  # (n, P, 2)
    return (radius[:, None, None] * rotated + jitter).clamp(-1, 1), labels


def chamfer_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Symmetric Chamfer distance between point clouds (Fan et al. 2017), one per cloud.

    a (B, N, D), b (B, M, D) -> (B,): the mean distance from each point of a to its nearest
    point of b, and from b to a, averaged. In the units of the points; 0 for identical sets.
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    if a.ndim != 3 or b.ndim != 3 or len(a) != len(b) or a.shape[2] != b.shape[2]:
        raise ValueError(
            f"a and b must be batches of clouds (B, N, D) and (B, M, D), "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    distance = torch.cdist(a, b.to(a.dtype))  # (B, N, M)
    return 0.5 * (distance.min(2).values.mean(1) + distance.min(1).values.mean(1))


def _normalise(points: torch.Tensor) -> torch.Tensor:
    centred = points - points.mean(-2, keepdim=True)  # centroid at the origin
    rms = centred.square().sum(-1).mean(-1)[..., None, None].sqrt()  # RMS radius
    return centred / rms.clamp(min=1e-12)


def shape_fit(
    points: torch.Tensor,
    *,
    shapes: tuple[str, ...] = SHAPES,
    num_angles: int = 30,
    refine_steps: int = 3,
    outline_points: int = 180,
) -> dict:
    """How close each cloud is to an ideal shape: Chamfer distance to the best-fitting outline.

    1. centre each cloud and the ideal outlines and scale them to RMS radius 1 (size is free);
    2. try `num_angles` rotations of each outline over one symmetry period;
    3. refine the position `refine_steps` times, ICP style (Besl & McKay 1992): shift the cloud
       by the mean offset between nearest points; then search the rotations again.
    Returns dict(distance=(B,) the best distance, label=(B,) index into `shapes` of the best
    shape, per_shape=(B, K)). 64-point training clouds score about 0.05 (their random gaps), a
    Gaussian blob about 0.23: compare samples with the data's own score, not with 0.
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    if points.ndim != 3 or points.shape[2] != 2:
        raise ValueError(f"points must be 2-D clouds (B, N, 2), got {tuple(points.shape)}")
    _check_names(tuple(shapes), SHAPES, "shapes")
    x = _normalise(points.detach())  # (B, N, 2), in the dtype of the points
    u = torch.arange(outline_points, dtype=torch.float64) / outline_points
    per_shape = []
    for shape in shapes:
        period = {"circle": 0.0, "square": math.pi / 2, "triangle": 2 * math.pi / 3}[shape]
        angle = torch.arange(num_angles if period else 1, dtype=torch.float64) * period / num_angles
        cos, sin = angle.cos(), angle.sin()
        turn = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
        ideals = (_normalise(_outline(shape, u)) @ turn).to(x)  # (A, P, 2) rotated
        y, which = x, None
        for step in range(refine_steps + 1):
            if which is None or step == refine_steps:  # search the rotations at start and end
                fits = [chamfer_distance(y, i.expand(len(y), -1, -1)) for i in ideals]
                best, which = torch.stack(fits, 1).min(1)  # (B,): the best rotation
            if step == refine_steps:
                break
            ideal = ideals[which]  # (B, P, 2)
            distance = torch.cdist(y, ideal)  # (B, N, P)
            nearest_ideal = ideal.gather(1, distance.argmin(2)[..., None].expand(-1, -1, 2))
            nearest_cloud = y.gather(1, distance.argmin(1)[..., None].expand(-1, -1, 2))
            offset = (y - nearest_ideal).mean(1) + (nearest_cloud - ideal).mean(1)  # (B, 2)
            y = y - 0.5 * offset[:, None]
        per_shape.append(best)
    per_shape = torch.stack(per_shape, dim=1)  # (B, K)
    distance, label = per_shape.min(1)
    return dict(distance=distance, label=label, per_shape=per_shape)


# ----- video: clips (n, frames, 1, size, size) in [-1, 1] -----
def moving_digit_clips(
    n: int,
    *,
    frames: int = 8,
    size: int = 28,
    digit_size: int = 14,
    max_speed: int = 3,
    digits: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Short clips of one digit gliding across a black canvas: (n, frames, 1, size, size).

    An MNIST digit (from `digits` (N, 1, 28, 28), default the bundled test split), shrunk to
    `digit_size`, starts at a random whole-pixel position and moves with a constant whole-pixel
    velocity (each component in [-max_speed, max_speed], never both 0), bouncing off the walls.
    A small Moving MNIST (Srivastava et al. 2015).
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    _check_n(n=n, frames=frames, size=size, digit_size=digit_size)
    span = size - digit_size  # the top-left corner moves in [0, span]
    if not 0 <= max_speed <= span or span < 1:
        raise ValueError(f"need digit_size < size and max_speed <= size - digit_size = {span}")
    digits = load_mnist()[0] if digits is None else digits
    g = generator
    index = _randint(0, len(digits), n, generator=g)
    small = F.interpolate(
        digits[index.to(digits.device)].float(), size=(digit_size, digit_size),
        mode="bilinear", antialias=True, align_corners=False,
    ).clamp(-1, 1)  # fmt: skip
    position = _randint(0, span + 1, n, 2, generator=g)  # (n, 2) as (row, column)
    velocity = _randint(-max_speed, max_speed + 1, n, 2, generator=g)
    velocity[(velocity == 0).all(1), 1] = 1  # every digit moves
    clips = torch.full((n, frames, 1, size, size), -1.0, device=small.device)
    for f in range(frames):
        for i, (row, col) in enumerate(position.tolist()):
            clips[i, f, :, row : row + digit_size, col : col + digit_size] = small[i]
        position = position + velocity
        # 1. bounce: reflect a position that left [0, span] and reverse that velocity component
        out = (position < 0) | (position > span)
        position = torch.where(position < 0, -position, position)
        position = torch.where(position > span, 2 * span - position, position)
        velocity = torch.where(out, -velocity, velocity)
    return clips


def clips_to_channels(clips: torch.Tensor) -> torch.Tensor:
    """Stack the frames as channels, (n, F, C, H, W) -> (n, F * C, H, W), for the image UNet."""
    if clips.ndim != 5:
        raise ValueError(f"clips must be (n, frames, C, H, W), got {tuple(clips.shape)}")
    return clips.flatten(1, 2)


def channels_to_clips(x: torch.Tensor, *, channels: int = 1) -> torch.Tensor:
    """Undo `clips_to_channels`: (n, F * C, H, W) -> (n, F, C, H, W), C = `channels`."""
    if x.ndim != 4 or x.shape[1] % channels:
        raise ValueError(f"x must be (n, frames * {channels}, H, W), got {tuple(x.shape)}")
    return x.unflatten(1, (x.shape[1] // channels, channels))


def motion_consistency(
    clips: torch.Tensor, *, max_shift: int = 4, mass_tolerance: float = 0.1
) -> dict:
    """How rigidly each frame follows from the previous one, on a black (-1) background.

    For each pair of consecutive frames, the previous frame is shifted by every whole-pixel
    (dy, dx) with |dy|, |dx| <= max_shift (padding with -1) and the best Pearson correlation
    with the next frame is kept (1 = pure rigid motion). Ink mass is sum((x + 1) / 2) per
    frame; a clip keeps its mass when every frame is within `mass_tolerance` of the clip mean.
    Returns dict(correlation=float mean over clips and pairs, per_clip=(n,), shifts=(n, F-1, 2)
    the best (dy, dx), mass_constant=float share of clips that keep their mass).
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    if clips.ndim != 5 or clips.shape[1] < 2:
        raise ValueError(f"clips must be (n, frames >= 2, C, H, W), got {tuple(clips.shape)}")
    x = clips.detach().double()
    H, W, m = x.shape[-2], x.shape[-1], max_shift
    before, after = x[:, :-1], x[:, 1:]  # (n, F-1, C, H, W)
    padded = F.pad(before, (m, m, m, m), value=-1.0)
    after = after - after.mean((-3, -2, -1), keepdim=True)
    best = torch.full(after.shape[:2], -math.inf, dtype=x.dtype, device=x.device)
    shifts = torch.zeros(*after.shape[:2], 2, dtype=torch.long, device=x.device)
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            moved = padded[..., m - dy : m - dy + H, m - dx : m - dx + W]  # before, moved
            moved = moved - moved.mean((-3, -2, -1), keepdim=True)
            norms = moved.flatten(2).norm(dim=2) * after.flatten(2).norm(dim=2)
            corr = (moved * after).flatten(2).sum(2) / norms.clamp(min=1e-12)  # (n, F-1)
            better = corr > best
            best = torch.where(better, corr, best)
            shifts[better] = torch.tensor([dy, dx], device=x.device)
    mass = ((x + 1) / 2).sum((-3, -2, -1))  # (n, F)
    mean_mass = mass.mean(1, keepdim=True).clamp(min=1e-12)
    kept = ((mass - mean_mass).abs() / mean_mass <= mass_tolerance).all(1)  # (n,)
    per_clip = best.mean(1)
    return dict(
        correlation=per_clip.mean().item(),
        per_clip=per_clip,
        shifts=shifts,
        mass_constant=kept.double().mean().item(),
    )


# ----- scores and flows (2-D data, but any shape works) -----
def _level(value: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """A number, 0-d or per-sample (B,) value as a tensor broadcastable against `like`."""
    value = torch.as_tensor(value, device=like.device, dtype=like.dtype)
    return append_dims(value, like.ndim) if value.ndim == 1 else value


def _as_float(value: torch.Tensor | float) -> torch.Tensor:
    value = torch.as_tensor(value)  # keeps a tensor's device and float dtype
    return value if value.is_floating_point() else value.double()


def eps_to_score(eps_hat: torch.Tensor, alpha_bar_t: torch.Tensor | float) -> torch.Tensor:
    """The score of the noised data, grad log q_t(x_t) = -eps_hat / sqrt(1 - alpha_bar_t).

    Exact for eps_hat = E[eps | x_t] (Tweedie's formula; Vincent 2011): denoising score
    matching (Song & Ermon 2019) and noise prediction learn the same field up to this scale,
    which is how Song et al. (2021, sec. 3 and app. B) read DDPM as a score-based SDE model.
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    return -eps_hat / (1 - _level(alpha_bar_t, eps_hat)).sqrt()


def score_to_eps(score: torch.Tensor, alpha_bar_t: torch.Tensor | float) -> torch.Tensor:
    """The inverse of `eps_to_score`: eps_hat = -sqrt(1 - alpha_bar_t) * score."""
    return -(1 - _level(alpha_bar_t, score)).sqrt() * score


def gaussian_mixture_score(
    x: torch.Tensor, centres: torch.Tensor, std: float, alpha_bar_t: torch.Tensor | float
) -> torch.Tensor:
    """The exact score grad log q_t(x) of an equal-weight Gaussian mixture noised to alpha_bar_t.

    Data: centres c_k (K, D) with isotropic spread `std` (e.g. `data.gaussian_ring`). Noised by
    the forward process each component stays Gaussian, mean sqrt(a) c_k and variance
    a std^2 + 1 - a, so the score is sum_k w_k(x) (sqrt(a) c_k - x) / variance, with w_k(x) the
    posterior weight of component k. An oracle for `eps_to_score`: eps* = -sqrt(1 - a) score.
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    if x.ndim != 2 or centres.ndim != 2 or x.shape[1] != centres.shape[1]:
        raise ValueError(
            f"x must be (N, D) and centres (K, D), got {tuple(x.shape)} and {tuple(centres.shape)}"
        )
    a = torch.as_tensor(alpha_bar_t, dtype=x.dtype, device=x.device)
    a = a[:, None, None] if a.ndim == 1 else a  # per-sample levels (N,) broadcast over (N, K, D)
    means = a.sqrt() * centres.to(x)  # (K, D), or (N, K, D) per sample
    variance = a * std**2 + 1 - a
    offset = means - x[:, None, :]  # (N, K, D): from x towards each noised centre
    weights = torch.softmax(-offset.square().sum(-1) / (2 * variance.reshape(-1, 1)), dim=1)
    return (weights[..., None] * offset).sum(1) / variance.reshape(-1, 1)


def flow_time(alpha_bar_t: torch.Tensor | float) -> torch.Tensor:
    """The flow time s of a DDPM noise level: s = sqrt(1 - a) / (sqrt(a) + sqrt(1 - a)).

    Then x_t / (sqrt(a) + sqrt(1 - a)) = (1 - s) x0 + s eps: the DDPM point, rescaled, lies
    on the straight flow-matching path (Lipman et al. 2023; Liu et al. 2023).
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    a = _as_float(alpha_bar_t)
    return (1 - a).sqrt() / (a.sqrt() + (1 - a).sqrt())


def flow_alpha_bar(s: torch.Tensor | float) -> torch.Tensor:
    """The inverse of `flow_time`: alpha_bar = (1 - s)^2 / ((1 - s)^2 + s^2)."""
    s = _as_float(s)
    return (1 - s) ** 2 / ((1 - s) ** 2 + s**2)


def ddpm_to_flow(
    xt: torch.Tensor, alpha_bar_t: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Map a DDPM point x_t to the flow path: (x_s = x_t / (sqrt(a) + sqrt(1 - a)), s)."""
    a = _level(alpha_bar_t, xt)
    return xt / (a.sqrt() + (1 - a).sqrt()), flow_time(alpha_bar_t)


def eps_to_velocity(
    xt: torch.Tensor, eps_hat: torch.Tensor, alpha_bar_t: torch.Tensor | float
) -> torch.Tensor:
    """The flow-matching velocity at the flow point of x_t: v = eps_hat - x0_hat.

    The flow point x_s (`ddpm_to_flow`) is built from the same (x0, eps) as x_t, so E[eps | x_s]
    = E[eps | x_t] = eps_hat and E[x0 | x_s] = x0_hat (Ho et al. 2020, eq. 15); the target of
    flow matching, E[eps - x0 | x_s], is their difference.
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    return eps_hat - eps_to_x0(xt, eps_hat, alpha_bar_t)


def velocity_to_eps(xs: torch.Tensor, v_hat: torch.Tensor, s: torch.Tensor | float) -> torch.Tensor:
    """eps_hat = x_s + (1 - s) v_hat on the path x_s = (1 - s) x0 + s eps (x0_hat = x_s - s v)."""
    return xs + (1 - _level(s, xs)) * v_hat


def _flow_t(s: torch.Tensor, num_timesteps: int) -> torch.Tensor:
    """The course's integer timestep for flow time s: round(s (T - 1)), a LongTensor."""
    return (s * (num_timesteps - 1)).round().long()


def flow_matching_loss(
    model: nn.Module,
    x0: torch.Tensor,
    *,
    t: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    num_timesteps: int = 1000,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Conditional flow matching (Lipman et al. 2023, eq. 23, with sigma_min = 0; Liu et al. 2023).

    1. draw t uniformly from {0, ..., T-1} (unless given) and read s = t / (T - 1);
    2. x_s = (1 - s) x0 + s eps, the straight path from data (s = 0) to noise (s = 1);
    3. the model, called as model(x_s, t), regresses the velocity eps - x0 (mean squared error).
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    if t is None:
        gen_device = generator.device if generator is not None else torch.device("cpu")
        t = torch.randint(num_timesteps, (len(x0),), generator=generator, device=gen_device)
    t = t.to(x0.device)
    if noise is None:
        noise = randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    s = _level(t.to(x0.dtype) / (num_timesteps - 1), x0)  # 1.
    xs = (1 - s) * x0 + s * noise  # 2.
    return F.mse_loss(model(xs, t), noise - x0)  # 3.


def train_flow(
    model: nn.Module,
    data: torch.Tensor,
    *,
    num_steps: int,
    batch_size: int = 128,
    lr: float = 2e-3,
    warmup_steps: int = 100,
    num_timesteps: int = 1000,
    max_minutes: float | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[TrainStep]:
    """Train `model` on `data` (N, *D) with `flow_matching_loss`; yield a TrainStep per step.

    The conventions of `training.train`, without checkpoints: Adam, linear warm-up then cosine
    decay (`utils.warmup_cosine_lr`), gradients clipped at norm 1, batches drawn with
    `generator`, and a stop after `max_minutes`. The notebook owns plotting and stopping.
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    _check_n(num_steps=num_steps, batch_size=batch_size)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    start = time.perf_counter()
    for step in range(num_steps):
        index = torch.randint(len(data), (batch_size,), generator=generator)
        t = torch.randint(num_timesteps, (batch_size,), generator=generator)
        loss = flow_matching_loss(
            model, data[index].to(device), t=t, num_timesteps=num_timesteps, generator=generator
        )
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the loss became {loss.item()} at step {step + 1}; try a smaller lr (now {lr})"
            )
        lr_now = warmup_cosine_lr(step, lr=lr, warmup_steps=warmup_steps, num_steps=num_steps)
        optimizer_step(optimizer, loss, model.parameters(), lr=lr_now)
        seconds = time.perf_counter() - start
        yield TrainStep(step + 1, loss.item(), t, seconds)
        if max_minutes is not None and seconds > 60 * max_minutes:
            break


def euler_step(
    xs: torch.Tensor, v_hat: torch.Tensor, s: float, s_next: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Euler step of dx/ds = v from s to s_next < s. Returns (x_next, x0_hat = x_s - s v)."""
    return xs + (s_next - s) * v_hat, xs - s * v_hat


@torch.no_grad()
def euler_sample(
    model: nn.Module,
    x1: torch.Tensor,
    *,
    num_steps: int = 50,
    num_timesteps: int = 1000,
    progress: bool = False,
) -> Iterator[SamplerStep]:
    """Integrate the flow ODE dx/ds = v(x, s) from noise (s = 1) to data (s = 0) with Euler steps.

    `x1` is the starting noise, e.g. torch.randn(n, 2). Steps are uniform in s; the model is
    called as model(x, t) with t = round(s (T - 1)). Yields one SamplerStep per step (its t, the
    new x, and the straight-line guess x0_hat = x - s v); `samplers.last` keeps the final x.
    With straight (rectified) paths a few steps suffice (Liu et al. 2023).
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    from tqdm.auto import tqdm

    _check_n(num_steps=num_steps)
    grid = torch.linspace(1, 0, num_steps + 1, dtype=torch.float64).tolist()
    x = x1
    for i in tqdm(range(num_steps), disable=not progress, desc="Euler (flow)"):
        t = _flow_t(torch.tensor(grid[i]), num_timesteps)
        v_hat = model(x, t.expand(len(x)).to(x.device))
        x, x0_hat = euler_step(x, v_hat, grid[i], grid[i + 1])
        yield SamplerStep(i, int(t), x, x0_hat)


def vector_field_grid(
    fn: Callable[[torch.Tensor], torch.Tensor],
    *,
    lim: float = 1.5,
    n: int = 20,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluate a 2-D vector field on an n x n grid over [-lim, lim]^2, for `plt.quiver`.

    Returns (points (n * n, 2), vectors (n * n, 2)); e.g. fn = lambda x: model(x, 500).
    Introduced in: notebooks/13_beyond_images.ipynb
    """
    _check_n(n=n)
    axis = torch.linspace(-lim, lim, n, device=device)
    grid_x, grid_y = torch.meshgrid(axis, axis, indexing="xy")  # x varies along a row
    points = torch.stack([grid_x.flatten(), grid_y.flatten()], dim=1)  # (n * n, 2)
    with torch.no_grad():
        vectors = fn(points)
    if vectors.shape != points.shape:
        raise ValueError(f"fn must map (N, 2) to (N, 2), got {tuple(vectors.shape)}")
    return points, vectors
