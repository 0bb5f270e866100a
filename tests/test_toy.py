"""Tests for diffusion_lab.toy: measures on constructed point sets, the model contract, and
short diffusion and GAN runs on the ring of 8 Gaussians (one thread, a few seconds)."""

import math

import pytest
import torch

from diffusion_lab.data import gaussian_ring
from diffusion_lab.samplers import sample
from diffusion_lab.schedules import NoiseSchedule
from diffusion_lab.toy import (
    Discriminator,
    GANStep,
    Generator,
    MLPDenoiser,
    energy_distance,
    gan_sample,
    mmd_rbf,
    mode_coverage,
    ring_centres,
    train_gan,
)
from diffusion_lab.training import train

from .fakes import gen_at, seeded

RADIUS, STD = 0.75, 0.05  # a ring that stays inside [-1, 1], as q_sample requires
CENTRES = ring_centres(8, radius=RADIUS)


pytestmark = pytest.mark.usefixtures("one_thread")


def _ring(n: int, seed: int) -> torch.Tensor:
    return gaussian_ring(n, num_modes=8, radius=RADIUS, std=STD, generator=gen_at(seed))


# ----- ring_centres and mode_coverage -----
def test_ring_centres_are_the_centres_of_gaussian_ring():
    points = gaussian_ring(16, num_modes=8, radius=RADIUS, std=0.0, generator=gen_at(0))
    torch.testing.assert_close(points, CENTRES.repeat(2, 1))
    torch.testing.assert_close(CENTRES.norm(dim=1), torch.full((8,), RADIUS))


def test_samples_from_the_ring_cover_every_mode():
    report = mode_coverage(_ring(1600, seed=0), CENTRES, radius=3 * STD)
    assert report["covered"] == 8
    # within 3 std in 2-D: P(chi2_2 <= 9) = 1 - exp(-4.5) = 0.989, and modes take equal turns
    assert report["quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    torch.testing.assert_close(report["shares"], torch.full((8,), 0.989 / 8), atol=0.005, rtol=0)


def test_samples_at_one_centre_cover_exactly_one_mode():
    samples = CENTRES[3] + 0.01 * torch.randn(500, 2, generator=gen_at(0))
    report = mode_coverage(samples, CENTRES, radius=3 * STD)
    assert report["covered"] == 1
    assert report["shares"][3] == 1.0 and report["shares"].sum() == 1.0
    assert report["quality"] == 1.0


def test_mode_coverage_counts_shares_and_far_samples():
    # 90 samples on mode 0, 5 on mode 1, 5 at the origin (far from every mode)
    samples = torch.cat([CENTRES[0].repeat(90, 1), CENTRES[1].repeat(5, 1), torch.zeros(5, 2)])
    report = mode_coverage(samples, CENTRES, radius=0.1, min_share=0.05)
    torch.testing.assert_close(report["shares"], torch.tensor([0.9, 0.05] + [0.0] * 6))
    assert report["quality"] == pytest.approx(0.95)
    assert report["covered"] == 2
    assert mode_coverage(samples, CENTRES, radius=0.1, min_share=0.06)["covered"] == 1
    # a radius that reaches the origin makes the far samples good too
    assert mode_coverage(samples, CENTRES, radius=0.8)["quality"] == 1.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(radius=0.0), "radius"),
        (dict(radius=0.1, min_share=0.0), "min_share"),
        (dict(radius=0.1, min_share=1.5), "min_share"),
    ],
)
def test_mode_coverage_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mode_coverage(_ring(16, seed=0), CENTRES, **kwargs)


def test_mode_coverage_rejects_points_of_another_dimension():
    with pytest.raises(ValueError, match=r"samples must be a tensor of points \(B, 2\)"):
        mode_coverage(torch.zeros(4, 3), CENTRES, radius=0.1)


# ----- energy distance and MMD -----
def test_energy_distance_of_two_points_is_twice_their_distance():
    a, b = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]])
    assert energy_distance(a, b) == pytest.approx(10.0)  # 2 |a - b| - 0 - 0


def test_energy_distance_is_zero_for_identical_sets_and_grows_with_a_shift():
    a = _ring(400, seed=0)
    assert abs(energy_distance(a, a)) < 1e-12  # the V-statistic is exact for identical sets
    shift = torch.tensor([1.0, 0.0])
    distances = [energy_distance(a, a + s * shift) for s in (0.05, 0.2, 0.5, 1.0)]
    assert distances[0] > 1e-4
    assert all(x < y for x, y in zip(distances, distances[1:]))
    assert energy_distance(a, a + 0.2 * shift) == pytest.approx(energy_distance(a + 0.2 * shift, a))


def test_energy_distance_separates_ring_from_noise():
    a, b = _ring(500, seed=0), _ring(500, seed=1)
    noise = torch.randn(500, 2, generator=gen_at(2))
    assert energy_distance(a, b) < 0.1 * energy_distance(a, noise)


def test_mmd_matches_the_closed_form_for_two_points():
    a, b = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.3, 0.4]])
    expected = 2 - 2 * math.exp(-(0.5**2) / (2 * 0.2**2))  # k(a,a) + k(b,b) - 2 k(a,b)
    assert mmd_rbf(a, b, bandwidths=(0.2,)) == pytest.approx(expected)


def test_mmd_is_zero_for_identical_sets_and_grows_with_a_shift():
    a = _ring(300, seed=0)
    assert abs(mmd_rbf(a, a)) < 1e-12
    shift = torch.tensor([0.0, 1.0])
    values = [mmd_rbf(a, a + s * shift) for s in (0.02, 0.1, 0.3)]
    assert values[0] > 1e-4 and all(x < y for x, y in zip(values, values[1:]))


def test_distances_reject_mismatched_sets():
    with pytest.raises(ValueError, match="same D"):
        energy_distance(torch.zeros(4, 2), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="bandwidths"):
        mmd_rbf(torch.zeros(4, 2), torch.ones(4, 2), bandwidths=(0.1, -1.0))


# ----- the models -----
def test_mlp_denoiser_follows_the_contract():
    model = seeded(MLPDenoiser)
    torch.nn.init.normal_(model.output.weight, std=0.1)  # leave the zero start: see t matter
    xt = torch.randn(5, 2, generator=gen_at(0))
    batched = model(xt, torch.full((5,), 7))
    assert batched.shape == xt.shape
    torch.testing.assert_close(model(xt, 7), batched)  # a scalar t is broadcast
    torch.testing.assert_close(model(xt, torch.tensor(7)), batched)
    assert not torch.allclose(model(xt, 700), batched)  # t matters
    per_row = torch.cat([model(xt[i : i + 1], torch.tensor([i * 100])) for i in range(5)])
    torch.testing.assert_close(model(xt, torch.arange(5) * 100), per_row)


def test_mlp_denoiser_starts_at_zero_and_follows_dtype():
    model = seeded(lambda: MLPDenoiser(3, hidden=16, depth=2, time_dim=8)).double()
    xt = torch.randn(4, 3, dtype=torch.float64, generator=gen_at(0))
    out = model(xt, torch.tensor([0, 1, 2, 999]))
    assert out.dtype == torch.float64 and out.shape == (4, 3)
    assert out.abs().max() == 0  # zero-initialised output layer
    assert model.input_shape == (3,)
    assert model.config == dict(dim=3, hidden=16, depth=2, time_dim=8)
    assert "hidden=16" in repr(model)


def test_default_sizes_match_between_diffusion_and_gan():
    denoiser, generator, critic = MLPDenoiser(), Generator(), Discriminator()
    body = 2 * 128 + 128 + 2 * (128 * 128 + 128)  # input layer + 2 hidden layers
    assert denoiser.num_parameters() == body + (32 * 384 + 384) + (128 * 2 + 2)
    assert generator.num_parameters() == body + (128 * 2 + 2)
    assert critic.num_parameters() == body + (128 + 1)
    assert 1.0 < denoiser.num_parameters() / generator.num_parameters() < 1.5


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m(torch.zeros(4, 2), 0, cond=torch.zeros(4)), "unconditional"),
        (lambda m: m(torch.zeros(4, 3), 0), r"xt must be a tensor of points \(B, 2\)"),
        (lambda m: m(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long)), r"\(B,\) = \(4,\)"),
        (lambda m: m(torch.zeros(4, 2), torch.zeros(4)), "integer timesteps"),
    ],
)
def test_mlp_denoiser_rejects_bad_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call(MLPDenoiser())


def test_models_reject_bad_sizes():
    with pytest.raises(ValueError, match="time_dim must be even"):
        MLPDenoiser(time_dim=5)
    with pytest.raises(ValueError, match="depth must be a positive int"):
        Generator(depth=0)
    with pytest.raises(ValueError, match="hidden must be a positive int"):
        Discriminator(hidden=-1)


# ----- short diffusion training on the ring -----
@pytest.fixture(scope="module")
def trained_denoiser():
    model = seeded(MLPDenoiser)
    schedule = NoiseSchedule.linear(1000)
    steps = train(
        model,
        _ring(4000, seed=0),
        schedule,
        num_steps=200,
        warmup_steps=20,
        progress=False,
        generator=gen_at(0),
    )
    losses = [s.loss for s in steps]
    return model, schedule, losses


def test_short_diffusion_training_lowers_the_loss(trained_denoiser):
    _, _, losses = trained_denoiser
    assert len(losses) == 200 and all(math.isfinite(x) for x in losses)
    first, final = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert final < 0.4 * first  # measured: 0.90 -> 0.18


def test_sampling_the_trained_denoiser_moves_noise_onto_the_modes(trained_denoiser):
    model, schedule, _ = trained_denoiser
    x_T = torch.randn(2000, 2, generator=gen_at(2))
    x0 = sample(model.eval(), schedule, x_T, sampler="ddim", num_steps=20, progress=False)
    before = mode_coverage(x_T, CENTRES, radius=3 * STD)
    after = mode_coverage(x0, CENTRES, radius=3 * STD)
    # measured after 200 steps: quality 0.065 -> 0.13, covered 2 -> 8, energy 0.12 -> 0.036
    assert after["quality"] > 1.5 * before["quality"]
    assert after["covered"] == 8
    reference = _ring(2000, seed=1)
    assert energy_distance(x0, reference) < 0.5 * energy_distance(x_T, reference)


def test_diffusion_training_and_sampling_are_deterministic():
    def run():
        model = seeded(lambda: MLPDenoiser(hidden=32, depth=2))
        schedule = NoiseSchedule.linear(100, beta_end=0.2)
        steps = train(
            model,
            _ring(256, 0),
            schedule,
            num_steps=10,
            batch_size=32,
            progress=False,
            generator=gen_at(5),
        )
        losses = [s.loss for s in steps]
        x_T = torch.randn(64, 2, generator=gen_at(6))
        x0 = sample(
            model, schedule, x_T, sampler="ddpm", num_steps=10, generator=gen_at(7), progress=False
        )
        return losses, x0

    (losses_a, x_a), (losses_b, x_b) = run(), run()
    assert losses_a == losses_b
    torch.testing.assert_close(x_a, x_b, rtol=0, atol=0)


# ----- the GAN baseline -----
def test_short_gan_training_yields_finite_records():
    generator, critic = seeded(Generator, 0), seeded(Discriminator, 1)
    records = list(
        train_gan(
            generator, critic, _ring(1000, 0), num_steps=50, batch_size=64, generator_rng=gen_at(3)
        )
    )
    assert [r.step for r in records] == list(range(1, 51))
    assert all(isinstance(r, GANStep) for r in records)
    assert all(math.isfinite(r.d_loss) and math.isfinite(r.g_loss) for r in records)
    assert all(r.d_loss > 0 and r.g_loss > 0 for r in records)  # both are -log of a probability
    assert records[0].seconds <= records[-1].seconds
    # at the start D cannot tell real from fake: both its terms are near log 2
    assert records[0].d_loss == pytest.approx(2 * math.log(2), abs=0.2)
    points = gan_sample(generator, 10, generator_rng=gen_at(4))
    assert points.shape == (10, 2) and not points.requires_grad


def test_gan_training_and_sampling_are_deterministic():
    def run(seed):
        generator, critic = seeded(Generator, 0), seeded(Discriminator, 1)
        records = train_gan(
            generator,
            critic,
            _ring(500, 0),
            num_steps=20,
            batch_size=32,
            generator_rng=gen_at(seed),
        )
        losses = [(r.d_loss, r.g_loss) for r in records]
        return losses, gan_sample(generator, 16, generator_rng=gen_at(9))

    (losses_a, x_a), (losses_b, x_b), (losses_c, _) = run(3), run(3), run(4)
    assert losses_a == losses_b
    torch.testing.assert_close(x_a, x_b, rtol=0, atol=0)
    assert losses_a != losses_c  # another rng draws other batches


def test_train_gan_rejects_bad_data():
    with pytest.raises(ValueError, match=r"data must be a tensor of points \(B, 2\)"):
        next(train_gan(Generator(), Discriminator(), torch.zeros(10, 3), num_steps=1))
    with pytest.raises(ValueError, match="num_steps must be a positive int"):
        next(train_gan(Generator(), Discriminator(), torch.zeros(10, 2), num_steps=0))
