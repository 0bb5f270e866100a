import pytest
import torch

from diffusion_lab.forward import (
    add_noise,
    check_images,
    eps_to_x0,
    forward_chain,
    forward_step,
    q_posterior,
    q_sample,
    v_target,
    v_to_eps,
    v_to_x0,
    x0_to_eps,
)
from diffusion_lab.schedules import NoiseSchedule, linear_betas


@pytest.fixture(scope="module")
def schedule():
    return NoiseSchedule.linear()


def test_add_noise_is_the_article_formula():
    image, noise = torch.full((1, 1, 2, 2), 0.5), torch.full((1, 1, 2, 2), -1.0)
    out = add_noise(image, noise, 0.64)
    torch.testing.assert_close(out, torch.full((1, 1, 2, 2), 0.8 * 0.5 - 0.6))
    # one alpha_bar per image broadcasts over the pixels
    out = add_noise(image.expand(2, 1, 2, 2), noise.expand(2, 1, 2, 2), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(out[0], image[0])
    torch.testing.assert_close(out[1], noise[0])


def test_q_sample_agrees_with_add_noise(schedule, gen):
    x0 = torch.rand(4, 1, 8, 8, generator=gen) * 2 - 1
    noise = torch.randn(4, 1, 8, 8, generator=gen)
    t = torch.tensor([0, 10, 500, 999])
    expected = add_noise(x0, noise, schedule.alpha_bar[t])
    torch.testing.assert_close(q_sample(x0, t, schedule, noise), expected)
    torch.testing.assert_close(
        q_sample(x0, 500, schedule, noise), add_noise(x0, noise, schedule.alpha_bar[500])
    )


@pytest.mark.parametrize("t", [0, 100, 400, 999])
def test_q_sample_moments_match_closed_form(schedule, gen, t):
    x0 = torch.tensor([-0.8, 0.0, 0.6]).expand(40_000, 3).contiguous()
    xt = q_sample(x0, torch.full((40_000,), t), schedule, generator=gen)
    a = schedule.alpha_bar[t]
    torch.testing.assert_close(xt.mean(0), a.sqrt() * x0[0], atol=0.02, rtol=0)
    torch.testing.assert_close(xt.std(0), (1 - a).sqrt().expand(3), atol=0.02, rtol=0.02)


def test_q_sample_is_reproducible_with_a_generator(schedule):
    x0 = torch.zeros(2, 3)
    a = q_sample(x0, 5, schedule, generator=torch.Generator().manual_seed(3))
    b = q_sample(x0, 5, schedule, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)


def test_many_small_steps_equal_one_jump_in_distribution(gen):
    schedule = NoiseSchedule.linear(100, beta_start=1e-3, beta_end=0.1)
    x0 = torch.tensor([0.9, -0.5]).expand(30_000, 2).contiguous()
    for t, xt in forward_chain(x0, schedule, num_steps=60, generator=gen):
        if t in (0, 9, 59):
            a = schedule.alpha_bar[t]
            torch.testing.assert_close(xt.mean(0), a.sqrt() * x0[0], atol=0.025, rtol=0)
            torch.testing.assert_close(xt.std(0), (1 - a).sqrt().expand(2), atol=0.025, rtol=0)


def test_forward_step_formula_with_injected_noise(schedule):
    x_prev, noise = torch.full((2, 2), 0.5), torch.full((2, 2), 2.0)
    beta = schedule.betas[300]
    expected = (1 - beta).sqrt() * 0.5 + beta.sqrt() * 2.0
    torch.testing.assert_close(forward_step(x_prev, 300, schedule, noise), expected.expand(2, 2))


def _posterior_by_bayes(x0, xt, t, schedule):
    """Independent oracle: multiply the Gaussians q(x_{t-1}|x0) and q(x_t|x_{t-1})."""
    betas = linear_betas()  # float64, the schedule's source
    a_prev = torch.cumprod(1 - betas, 0)[t - 1]
    alpha, beta = 1 - betas[t], betas[t]
    precision = 1 / (1 - a_prev) + alpha / beta
    mean = (a_prev.sqrt() * x0 / (1 - a_prev) + alpha.sqrt() * xt / beta) / precision
    return mean, 1 / precision


@pytest.mark.parametrize("t", [1, 50, 500, 999])
def test_posterior_matches_bayes_rule(schedule, gen, t):
    x0 = torch.rand(3, 5, generator=gen, dtype=torch.float64) * 2 - 1
    xt = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    mean, var = q_posterior(x0.float(), xt.float(), torch.full((3,), t), schedule)
    expected_mean, expected_var = _posterior_by_bayes(x0, xt, t, schedule)
    torch.testing.assert_close(mean.double(), expected_mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(var.double().flatten(), expected_var.expand(3), rtol=1e-4, atol=1e-8)


def test_posterior_at_first_step_is_x0_with_no_variance(schedule):
    x0, xt = torch.full((2, 3), 0.3), torch.randn(2, 3)
    mean, var = q_posterior(x0, xt, torch.zeros(2, dtype=torch.long), schedule)
    torch.testing.assert_close(mean, x0)
    assert (var == 0).all()


def test_conversions_round_trip(schedule, gen):
    x0 = torch.rand(4, 1, 6, 6, generator=gen) * 2 - 1
    eps = torch.randn(4, 1, 6, 6, generator=gen)
    t = torch.tensor([0, 100, 600, 990])
    a = schedule.alpha_bar[t]
    xt = q_sample(x0, t, schedule, eps)
    torch.testing.assert_close(eps_to_x0(xt, eps, a), x0, atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(x0_to_eps(xt, x0, a), eps, atol=1e-4, rtol=1e-4)
    v = v_target(x0, eps, a)
    torch.testing.assert_close(v_to_x0(xt, v, a), x0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v_to_eps(xt, v, a), eps, atol=1e-5, rtol=1e-5)
    # a scalar alpha_bar works too
    torch.testing.assert_close(
        eps_to_x0(xt[:1], eps[:1], 0.5), (xt[:1] - 0.5**0.5 * eps[:1]) / 0.5**0.5
    )


def test_bad_inputs_raise_clear_errors(schedule):
    x0 = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"must lie in \[-1, 1\].*\[0, 255\]"):
        q_sample(x0 + 200, 3, schedule)
    with pytest.raises(ValueError, match=r"got values in \[-1.5, 0.2\]$"):
        check_images(torch.tensor([-1.5, 0.2]))
    check_images(torch.tensor([-1.0005, 1.0005]))  # float rounding of 8-bit data is tolerated
    with pytest.raises(TypeError, match="float tensor"):
        q_sample(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), 3, schedule)
    with pytest.raises(TypeError, match="torch.Tensor"):
        check_images([0.0, 1.0])
    with pytest.raises(ValueError, match=r"timestep out of range.*\[0, 999\]"):
        q_sample(x0, 1000, schedule)
    with pytest.raises(ValueError, match="t has 3 timesteps but x0 has a batch of 2"):
        q_sample(x0, torch.tensor([1, 2, 3]), schedule)
    with pytest.raises(ValueError, match="noise has shape"):
        q_sample(x0, 1, schedule, torch.zeros(2, 1, 4, 5))
    with pytest.raises(ValueError, match="x0 has shape"):
        q_posterior(x0, torch.zeros(2, 1, 4, 5), 1, schedule)
    with pytest.raises(ValueError, match="num_steps"):
        list(forward_chain(x0, schedule, num_steps=1001))


def test_data_range_none_accepts_latents_beyond_one_but_not_nan():
    from diffusion_lab.forward import check_images

    schedule = NoiseSchedule.cosine(num_timesteps=10)
    z = torch.tensor([[3.0, -4.5]])
    with pytest.raises(ValueError, match=r"must lie in \[-1, 1\]"):
        q_sample(z, 5, schedule)
    noise = torch.zeros_like(z)
    a = schedule.alpha_bar[5]
    torch.testing.assert_close(q_sample(z, 5, schedule, noise, data_range=None), a.sqrt() * z)
    assert check_images(z, data_range=5.0) is z
    with pytest.raises(ValueError, match=r"must lie in \[-2, 2\], got \|x\| up to 4.5"):
        check_images(z, data_range=2.0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        check_images(torch.tensor([float("inf")]), data_range=None)
