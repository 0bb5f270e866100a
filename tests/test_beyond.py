"""Tests for diffusion_lab.beyond and the models of lesson 13 (UNet1d, PointDenoiser): synthetic
sounds, point clouds and clips against what they were built to be, the measures against
constructed cases, and the score and flow-matching views against the closed forms of Gaussian
data. One thread, tiny models, a few seconds in all."""

import itertools
import math

import pytest
import torch
from torch import nn

from diffusion_lab.beyond import (
    SHAPES,
    chamfer_distance,
    channels_to_clips,
    clips_to_channels,
    ddpm_to_flow,
    dominant_frequency,
    eps_to_score,
    eps_to_velocity,
    euler_sample,
    euler_step,
    flow_alpha_bar,
    flow_matching_loss,
    flow_time,
    gaussian_mixture_score,
    make_sounds,
    motion_consistency,
    moving_digit_clips,
    peak_energy_fraction,
    playable,
    point_cloud_shapes,
    score_to_eps,
    shape_fit,
    spectral_flatness,
    spectrogram,
    train_flow,
    vector_field_grid,
    velocity_to_eps,
)
from diffusion_lab.data import load_mnist
from diffusion_lab.models import PointDenoiser, UNet, UNet1d
from diffusion_lab.samplers import SamplerStep, ddim_step, last
from diffusion_lab.schedules import NoiseSchedule
from diffusion_lab.toy import MLPDenoiser
from diffusion_lab.training import TrainStep, train

from .fakes import gen_at, seeded

MU, SIGMA = torch.tensor([0.5, -0.3], dtype=torch.float64), 0.4  # Gaussian data N(MU, SIGMA^2 I)


pytestmark = pytest.mark.usefixtures("one_thread")


# ----- audio -----
def test_make_sounds_shapes_range_fades_and_reproducibility():
    waves, kinds = make_sounds(30, generator=gen_at(0))
    assert waves.shape == (30, 1, 1024) and waves.dtype == torch.float32
    assert set(kinds) == {"tone", "chord", "chirp"} and len(kinds) == 30
    peak = waves.abs().amax((1, 2))
    assert (peak >= 0.5 - 1e-6).all() and (peak <= 0.9 + 1e-6).all()  # amplitude in [0.5, 0.9]
    assert waves[..., 0].abs().max() < 1e-6 and waves[..., -1].abs().max() < 0.01  # fades
    again, kinds_again = make_sounds(30, generator=gen_at(0))
    torch.testing.assert_close(waves, again)
    assert kinds == kinds_again
    assert not torch.equal(waves, make_sounds(30, generator=gen_at(1))[0])


def test_tones_sit_on_semitones_and_dominant_frequency_finds_them():
    waves, kinds = make_sounds(20, kinds=("tone",), sample_rate=4000, generator=gen_at(2))
    assert kinds == ["tone"] * 20
    freq = dominant_frequency(waves[:, 0], 4000)
    note = 69 + 12 * torch.log2(freq / 440)  # back to MIDI numbers
    assert (note > 56.5).all() and (note < 76.5).all()  # A3 .. E5
    exact = 440 * 2 ** ((note.round() - 69) / 12)
    assert ((freq - exact).abs() <= 4000 / 1024).all()  # within one FFT bin of a semitone


def test_dominant_frequency_of_a_sine_on_a_bin_is_exact():
    u = torch.arange(1024, dtype=torch.float64) / 4000
    sine = torch.sin(2 * math.pi * 125 * 4000 / 1024 * u)  # exactly bin 125
    assert dominant_frequency(sine, 4000).item() == pytest.approx(125 * 4000 / 1024)


def test_spectrogram_shape_and_its_brightest_row_is_the_tone():
    waves, _ = make_sounds(3, kinds=("tone",), generator=gen_at(3))
    spec = spectrogram(waves, n_fft=128, hop=32)
    assert spec.shape == (3, 1, 65, 33)
    assert spectrogram(waves[0, 0]).shape == (65, 33)
    row = spec[:, 0, :, 16].argmax(-1)  # the middle frame
    freq = dominant_frequency(waves[:, 0], 4000)
    assert ((row * 4000 / 128 - freq).abs() <= 4000 / 128).all()  # within one STFT bin


def test_sounds_are_peaky_and_flat_noise_is_not():
    waves, kinds = make_sounds(60, generator=gen_at(4))
    noise = 0.5 * torch.randn(60, 1024, generator=gen_at(5))
    flat_sound, flat_noise = spectral_flatness(waves[:, 0]), spectral_flatness(noise)
    assert flat_sound.max() < 0.01 and flat_noise.min() > 0.45  # white noise: exp(-0.577)
    peaks, peaks_noise = peak_energy_fraction(waves[:, 0]), peak_energy_fraction(noise)
    notes = torch.tensor([k != "chirp" for k in kinds])
    assert peaks[notes].min() > 0.95 and peaks_noise.max() < 0.2
    assert peaks[~notes].min() > peaks_noise.max()  # chirps spread, but less than noise


def test_sound_arguments_are_checked():
    with pytest.raises(ValueError, match="kinds"):
        make_sounds(2, kinds=("drum",))
    with pytest.raises(ValueError, match="n must be"):
        make_sounds(0)


# ----- the 1-D U-Net -----
def test_unet1d_follows_the_contract_and_starts_at_zero():
    model = seeded(lambda: UNet1d(length=64, channels=(8, 16, 32)))
    assert model.input_shape == (1, 64)
    xt = torch.randn(3, 1, 64, generator=gen_at(0))
    for t in (torch.tensor([0, 10, 999]), 5, torch.tensor(5)):
        assert model(xt, t).shape == xt.shape
    assert model(xt, 3).abs().max() == 0  # zero-initialised output: a calm first step
    nn.init.normal_(model.conv_out.weight, generator=gen_at(1))
    assert not torch.allclose(model(xt, 3), model(xt, 700))
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())
    assert "length=64, channels=(8, 16, 32)" in repr(model)
    assert model.config["time_dim"] == 32  # 4 * channels[0] by default


def test_unet1d_shape_errors_are_clear():
    model = UNet1d(length=64, channels=(8, 16))
    with pytest.raises(ValueError, match=r"expected xt of shape \(B, 1, 64\)"):
        model(torch.randn(2, 1, 60), 1)
    with pytest.raises(ValueError, match=r"expected xt of shape \(B, 1, 64\)"):
        model(torch.randn(2, 64), 1)
    with pytest.raises(ValueError, match="unconditional"):
        model(torch.randn(2, 1, 64), 1, cond=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="t must be a scalar, \\(1,\\) or"):
        model(torch.randn(2, 1, 64), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="divisible by 2\\*\\*2"):
        UNet1d(length=30, channels=(8, 16, 32))
    with pytest.raises(ValueError, match="odd"):
        UNet1d(length=64, kernel_size=4)


def test_unet1d_learns_on_sounds_with_the_course_loop():
    waves, _ = make_sounds(64, length=64, generator=gen_at(6))
    model = seeded(lambda: UNet1d(length=64, channels=(8, 16)))
    records = list(
        train(model, waves, NoiseSchedule.linear(), num_steps=40, batch_size=16,
              warmup_steps=5, progress=False, generator=gen_at(7))
    )  # fmt: skip
    losses = torch.tensor([r.loss for r in records])
    assert losses.isfinite().all() and losses[-10:].mean() < losses[:10].mean()


# ----- point clouds -----
def test_point_clouds_lie_on_their_outlines():
    points, labels = point_cloud_shapes(30, num_points=64, generator=gen_at(0))
    assert points.shape == (30, 64, 2) and labels.shape == (30,) and labels.dtype == torch.long
    assert points.abs().max() <= 1 and set(labels.tolist()) == {0, 1, 2}
    clean, clean_labels = point_cloud_shapes(30, num_points=400, noise=0.0, generator=gen_at(1))
    norm = clean.norm(dim=-1)  # (30, 400) distance from the centre
    circle = clean_labels == SHAPES.index("circle")
    torch.testing.assert_close(norm[circle].amin(1), norm[circle].amax(1))  # one radius
    assert (norm.amax(1) >= 0.5 - 1e-5).all() and (norm.amax(1) <= 0.85 + 1e-5).all()
    fit = shape_fit(clean)
    assert torch.equal(fit["label"], clean_labels) and fit["distance"].max() < 0.04
    again, _ = point_cloud_shapes(30, num_points=64, generator=gen_at(0))
    torch.testing.assert_close(points, again)
    only, only_labels = point_cloud_shapes(4, shapes=("triangle",), generator=gen_at(2))
    assert (only_labels == 0).all()  # labels index the `shapes` asked for
    with pytest.raises(ValueError, match="shapes"):
        point_cloud_shapes(2, shapes=("star",))


def test_upright_clouds_share_the_random_stream_and_keep_a_corner_on_top():
    rotated, labels = point_cloud_shapes(20, num_points=400, noise=0.0, generator=gen_at(3))
    upright, same_labels = point_cloud_shapes(
        20, num_points=400, noise=0.0, rotate=False, generator=gen_at(3)
    )
    assert torch.equal(labels, same_labels)  # only the angle differs
    torch.testing.assert_close(rotated.norm(dim=-1), upright.norm(dim=-1))  # a rotation
    top = upright[..., 1].amax(1)  # highest point of each cloud
    corner = upright.norm(dim=-1).amax(1)  # the circumradius: a corner (or the circle) is on top
    torch.testing.assert_close(top, corner, atol=0.03, rtol=0)


def test_chamfer_distance_values():
    a = torch.tensor([[[0.0, 0.0]]])
    b = torch.tensor([[[1.0, 0.0], [3.0, 0.0]]])
    # a -> b: 1; b -> a: (1 + 3) / 2 = 2; averaged: 1.5
    torch.testing.assert_close(chamfer_distance(a, b), torch.tensor([1.5]))
    torch.testing.assert_close(chamfer_distance(b, a), torch.tensor([1.5]))
    x = torch.randn(4, 10, 2, generator=gen_at(0))
    torch.testing.assert_close(chamfer_distance(x, x), torch.zeros(4))
    torch.testing.assert_close(chamfer_distance(x, x[:, torch.randperm(10, generator=gen_at(1))]),
                               torch.zeros(4))  # fmt: skip
    with pytest.raises(ValueError, match="batches of clouds"):
        chamfer_distance(x[0], x[0])


def test_shape_fit_names_the_shapes_and_scores_data_above_blobs():
    points, labels = point_cloud_shapes(60, generator=gen_at(3))
    fit = shape_fit(points)
    assert (fit["label"] == labels).double().mean() >= 0.95
    blobs = shape_fit(0.3 * torch.randn(60, 64, 2, generator=gen_at(4)))
    assert fit["distance"].max() < blobs["distance"].min()
    assert fit["per_shape"].shape == (60, 3)
    # the fit ignores order, position and size
    moved = 0.5 * points[:, torch.randperm(64, generator=gen_at(5))] + torch.tensor([0.2, -0.1])
    torch.testing.assert_close(shape_fit(moved)["distance"], fit["distance"])


def test_point_denoiser_is_permutation_equivariant_and_follows_the_contract():
    model = seeded(lambda: PointDenoiser(num_points=16, width=32, depth=2))
    assert model.input_shape == (16, 2)
    xt = torch.randn(3, 16, 2, generator=gen_at(0))
    assert model(xt, 5).abs().max() == 0  # zero-initialised output
    nn.init.normal_(model.point_out.weight, generator=gen_at(1))
    out = model(xt, torch.tensor([1, 500, 999]))
    assert out.shape == xt.shape
    perm = torch.randperm(16, generator=gen_at(2))
    torch.testing.assert_close(model(xt[:, perm], torch.tensor([1, 500, 999])), out[:, perm])
    # the set summary matters: moving one point changes the prediction for the others
    nudged = xt.clone()
    nudged[:, 0] += 1.0
    assert not torch.allclose(model(nudged, 5)[:, 1:], model(xt, 5)[:, 1:])
    assert model(torch.randn(2, 40, 2), 5).shape == (2, 40, 2)  # any number of points
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())
    assert "num_points=16, dim=2, width=32, depth=2" in repr(model)
    with pytest.raises(ValueError, match=r"expected xt of shape \(B, num_points, 2\)"):
        model(torch.randn(3, 32), 5)
    with pytest.raises(ValueError, match="unconditional"):
        model(xt, 5, cond=torch.zeros(3))


# ----- video -----
@pytest.fixture(scope="module")
def digits():
    return load_mnist()[0][:50]


def test_moving_digit_clips_move_rigidly_and_keep_their_ink(digits):
    clips = moving_digit_clips(12, frames=8, digits=digits, generator=gen_at(0))
    assert clips.shape == (12, 8, 1, 28, 28) and clips.min() >= -1 and clips.max() <= 1
    assert (clips[..., 0, 0] == -1).float().mean() > 0.5  # a black canvas
    report = motion_consistency(clips)
    assert report["correlation"] > 0.999 and report["mass_constant"] == 1.0
    steps = report["shifts"].abs()
    assert steps.max() <= 3 and (steps.sum((1, 2)) > 0).all()  # every digit moves, <= 3 px
    torch.testing.assert_close(clips, moving_digit_clips(12, digits=digits, generator=gen_at(0)))
    assert moving_digit_clips(2, generator=gen_at(1)).shape == (2, 8, 1, 28, 28)  # bundled MNIST


def test_motion_consistency_finds_a_known_shift_and_rejects_mixed_or_fading_clips(digits):
    frame = torch.full((1, 28, 28), -1.0)
    frame[:, 8:22, 8:22] = digits[0, :, ::2, ::2]
    shifted = torch.full_like(frame, -1.0)
    shifted[:, 9:23, 10:24] = frame[:, 8:22, 8:22]  # moved by (dy, dx) = (1, 2)
    report = motion_consistency(torch.stack([frame, shifted])[None])
    assert report["shifts"][0, 0].tolist() == [1, 2] and report["correlation"] > 0.999
    clips = moving_digit_clips(10, digits=digits, generator=gen_at(2))
    mixed = clips.clone()
    mixed[:, 1::2] = clips.roll(1, dims=0)[:, 1::2]  # every other frame from another clip
    assert motion_consistency(mixed)["correlation"] < 0.6
    fading = (clips + 1) * torch.linspace(1, 0.3, 8)[None, :, None, None, None] - 1
    assert motion_consistency(fading)["mass_constant"] == 0.0
    with pytest.raises(ValueError, match="frames >= 2"):
        motion_consistency(clips[:, :1])


def test_clips_become_channels_of_the_image_unet_and_back(digits):
    clips = moving_digit_clips(2, frames=8, digits=digits, generator=gen_at(3))
    stacked = clips_to_channels(clips)
    assert stacked.shape == (2, 8, 28, 28)
    torch.testing.assert_close(channels_to_clips(stacked), clips)
    model = UNet(in_channels=8, image_size=28, channels=(8, 16, 32), attention=False)
    assert model(stacked, 10).shape == stacked.shape
    rgb = torch.randn(2, 4, 3, 8, 8)
    torch.testing.assert_close(channels_to_clips(clips_to_channels(rgb), channels=3), rgb)


# ----- scores and flows: closed forms for Gaussian data x0 ~ N(MU, SIGMA^2 I) -----
def _eps_oracle(xt, a):
    """E[eps | x_t] for Gaussian data: x_t ~ N(sqrt(a) MU, (a SIGMA^2 + 1 - a) I)."""
    return (1 - a).sqrt() * (xt - a.sqrt() * MU) / (a * SIGMA**2 + 1 - a)


def _velocity_oracle(x, s):
    """E[eps - x0 | x_s] on the path x_s = (1 - s) x0 + s eps, for Gaussian data."""
    var = (1 - s) ** 2 * SIGMA**2 + s**2  # Var x_s per coordinate
    centred = x - (1 - s) * MU
    return s * centred / var - (MU + (1 - s) * SIGMA**2 * centred / var)


class FlowOracle(nn.Module):
    """The exact velocity field, called like a course model with integer t = round(s (T-1))."""

    def forward(self, x, t, cond=None):
        s = t.double()[:, None] / 999
        return _velocity_oracle(x.double(), s).to(x.dtype)


def test_eps_to_score_is_the_exact_score_of_noised_gaussian_data():
    a = torch.tensor([0.9, 0.5, 0.1, 0.02], dtype=torch.float64)  # per-sample alpha_bar (B,)
    xt = torch.randn(4, 2, generator=gen_at(0), dtype=torch.float64).requires_grad_()
    marginal = torch.distributions.Normal(
        a.sqrt()[:, None] * MU, (a * SIGMA**2 + 1 - a).sqrt()[:, None]
    )
    (score,) = torch.autograd.grad(marginal.log_prob(xt).sum(), xt)  # grad log q_t(x_t)
    eps = _eps_oracle(xt.detach(), a[:, None])
    torch.testing.assert_close(eps_to_score(eps, a), score)
    torch.testing.assert_close(score_to_eps(score, a), eps)
    torch.testing.assert_close(eps_to_score(eps[:1], 0.9), score[:1])  # a plain number works


def test_the_ddpm_path_is_the_flow_path_rescaled():
    schedule = NoiseSchedule.linear()
    a = schedule.alpha_bar[torch.tensor([0, 100, 500, 999])].double()
    x0 = torch.randn(4, 2, generator=gen_at(1), dtype=torch.float64)
    eps = torch.randn(4, 2, generator=gen_at(2), dtype=torch.float64)
    xt = a.sqrt()[:, None] * x0 + (1 - a).sqrt()[:, None] * eps
    xs, s = ddpm_to_flow(xt, a)
    torch.testing.assert_close(xs, (1 - s)[:, None] * x0 + s[:, None] * eps)
    torch.testing.assert_close(s / (1 - s), ((1 - a) / a).sqrt())  # s / (1 - s) = sigma_t
    torch.testing.assert_close(flow_alpha_bar(flow_time(a)), a)
    assert flow_time(1.0).item() == 0 and flow_time(0.0).item() == 1


def test_eps_to_velocity_matches_the_exact_flow_velocity():
    a = torch.tensor([0.95, 0.6, 0.2, 0.01], dtype=torch.float64)
    xt = torch.randn(4, 2, generator=gen_at(3), dtype=torch.float64)
    v = eps_to_velocity(xt, _eps_oracle(xt, a[:, None]), a)
    xs, s = ddpm_to_flow(xt, a)
    torch.testing.assert_close(v, _velocity_oracle(xs, s[:, None]))
    # and back: the velocity at x_s gives the same noise estimate
    torch.testing.assert_close(velocity_to_eps(xs, v, s), _eps_oracle(xt, a[:, None]))


def test_flow_matching_loss_regresses_eps_minus_x0():
    x0 = torch.randn(6, 2, generator=gen_at(4))
    noise = torch.randn(6, 2, generator=gen_at(5))
    t = torch.tensor([1, 100, 300, 500, 800, 999])
    s = t[:, None] / 999

    class KnowsX0(nn.Module):  # v = (x_s - x0) / s, exact for every s > 0
        def forward(self, xs, t, cond=None):
            return (xs - x0) / (t[:, None] / 999)

    assert flow_matching_loss(KnowsX0(), x0, t=t, noise=noise).item() < 1e-10
    zero = lambda xs, t: torch.zeros_like(xs)  # noqa: E731
    torch.testing.assert_close(
        flow_matching_loss(zero, x0, t=t, noise=noise), (noise - x0).square().mean()
    )
    seen = {}

    def spy(xs, t):
        seen["xs"], seen["t"] = xs, t
        return torch.zeros_like(xs)

    flow_matching_loss(spy, x0, t=t, noise=noise)
    torch.testing.assert_close(seen["xs"], (1 - s) * x0 + s * noise)
    assert torch.equal(seen["t"], t)
    drawn = flow_matching_loss(spy, x0, generator=gen_at(6))
    assert seen["t"].dtype == torch.long and 0 <= seen["t"].min() and seen["t"].max() <= 999
    assert drawn.isfinite()


def test_euler_with_the_exact_field_maps_noise_onto_gaussian_data():
    x1 = torch.randn(4000, 2, generator=gen_at(7))
    steps = list(euler_sample(FlowOracle(), x1, num_steps=200))
    assert len(steps) == 200 and isinstance(steps[0], SamplerStep)
    assert steps[0].t == 999 and steps[-1].t == 5  # t of each model call: s = 1 .. 1/200
    x0 = last(iter(steps)).double()
    # the exact flow is affine: x_s = (1 - s) MU + sqrt((1 - s)^2 SIGMA^2 + s^2) x1
    torch.testing.assert_close(x0, MU + SIGMA * x1.double(), atol=0.02, rtol=0)  # Euler: O(h)
    torch.testing.assert_close(x0.mean(0), MU, atol=0.03, rtol=0)
    torch.testing.assert_close(x0.std(0), torch.full((2,), SIGMA, dtype=torch.float64), atol=0.02,
                               rtol=0)  # fmt: skip


def test_euler_step_is_the_straight_line_update():
    xs, v = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5, -1.0]])
    x_next, x0_hat = euler_step(xs, v, 0.8, 0.6)
    torch.testing.assert_close(x_next, xs - 0.2 * v)
    torch.testing.assert_close(x0_hat, xs - 0.8 * v)


def test_train_flow_yields_records_and_learns_a_gaussian():
    data = (MU + SIGMA * torch.randn(2000, 2, generator=gen_at(8), dtype=torch.float64)).float()
    model = seeded(lambda: MLPDenoiser(hidden=64, depth=2))
    records = list(
        train_flow(model, data, num_steps=300, batch_size=128, warmup_steps=20,
                   generator=gen_at(9))
    )  # fmt: skip
    assert len(records) == 300 and isinstance(records[0], TrainStep) and records[-1].step == 300
    assert records[0].t.dtype == torch.long and records[0].t.shape == (128,)
    losses = torch.tensor([r.loss for r in records])
    assert losses[-50:].mean() < losses[:50].mean()
    with torch.no_grad():
        x0 = last(euler_sample(model, torch.randn(1000, 2, generator=gen_at(10)), num_steps=20))
    torch.testing.assert_close(x0.double().mean(0), MU, atol=0.1, rtol=0)
    assert (x0.double().std(0) - SIGMA).abs().max() < 0.15


def test_vector_field_grid_layout():
    points, vectors = vector_field_grid(lambda x: -x, lim=1.0, n=5)
    assert points.shape == (25, 2)
    torch.testing.assert_close(points[0], torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(points[1], torch.tensor([-0.5, -1.0]))  # x varies fastest
    torch.testing.assert_close(vectors, -points)
    corners = {tuple(p) for p in points.tolist()}
    assert all(c in corners for c in itertools.product((-1.0, 1.0), repeat=2))
    with pytest.raises(ValueError, match=r"map \(N, 2\) to \(N, 2\)"):
        vector_field_grid(lambda x: x[:, :1])


def test_gaussian_mixture_score_is_the_gradient_of_the_noised_mixture_log_density():
    centres = torch.tensor([[0.75, 0.0], [0.0, 0.75], [-0.5, -0.5]], dtype=torch.float64)
    x = torch.randn(5, 2, generator=gen_at(20), dtype=torch.float64).requires_grad_()
    a = torch.tensor([0.999, 0.9, 0.5, 0.1, 0.01], dtype=torch.float64)  # per-sample levels
    variance = (a * 0.05**2 + 1 - a)[:, None]  # (5, 1)
    square = (x[:, None] - a.sqrt()[:, None, None] * centres).square().sum(-1)  # (5, 3)
    log_density = torch.logsumexp(-square / (2 * variance), dim=1).sum()  # up to a constant
    (score,) = torch.autograd.grad(log_density, x)
    torch.testing.assert_close(gaussian_mixture_score(x.detach(), centres, 0.05, a), score)
    one = gaussian_mixture_score(x.detach()[:2], centres, 0.05, 0.5)  # a plain number works
    assert one.shape == (2, 2) and torch.isfinite(one).all()
    with pytest.raises(ValueError, match=r"x must be \(N, D\) and centres \(K, D\)"):
        gaussian_mixture_score(torch.zeros(5, 3), centres, 0.05, 0.5)


def test_a_ddim_step_is_an_euler_step_on_the_flow_path():
    schedule = NoiseSchedule.cosine()
    a_t, a_prev = schedule.alpha_bar[700].double(), schedule.alpha_bar[400].double()
    xt = torch.randn(6, 2, generator=gen_at(21), dtype=torch.float64)
    eps = torch.randn(6, 2, generator=gen_at(22), dtype=torch.float64)  # any noise estimate
    x_prev, _ = ddim_step(xt, eps, a_t, a_prev, clip_x0=False)
    xs, s = ddpm_to_flow(xt, a_t)
    xs_next, _ = euler_step(xs, eps_to_velocity(xt, eps, a_t), s.item(), flow_time(a_prev).item())
    torch.testing.assert_close(ddpm_to_flow(x_prev, a_prev)[0], xs_next)


def test_playable_resamples_keeps_the_pitch_and_adds_gaps():
    waves, _ = make_sounds(2, kinds=("tone",), generator=gen_at(23))
    track = playable(waves, sample_rate=4000, rate=8000, gap=0.1)
    assert track.shape == (2 * (2048 + 800),) and track.dtype.name == "float32"
    first = torch.from_numpy(track[:2048])
    assert dominant_frequency(first, 8000).item() == pytest.approx(
        dominant_frequency(waves[0, 0], 4000).item(), abs=4
    )
    assert (track[2048:2848] == 0).all() and abs(track).max() <= 1
    with pytest.raises(ValueError, match="gap is seconds of silence"):
        playable(waves, gap=-0.1)
