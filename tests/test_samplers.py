import pytest
import torch

from diffusion_lab.forward import q_posterior, q_sample
from diffusion_lab.samplers import (
    SamplerStep,
    ddim_sample,
    ddim_step,
    ddpm_sample,
    ddpm_step,
    last,
    predict_eps_x0,
    remove_noise,
)
from diffusion_lab.schedules import NoiseSchedule

from .fakes import OracleModel, ZeroModel

SCHEDULE = NoiseSchedule.linear(50, beta_end=0.3)


def _x0(n=4):
    return torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * 1.8 - 0.9


def test_ddpm_step_matches_equation_11_with_injected_noise():
    g = torch.Generator().manual_seed(1)
    xt, eps_hat, noise = (torch.randn(3, 1, 4, 4, generator=g) for _ in range(3))
    t = 20
    beta, alpha, a_bar = SCHEDULE.betas[t], SCHEDULE.alphas[t], SCHEDULE.alpha_bar[t]
    mean = (xt - beta / (1 - a_bar).sqrt() * eps_hat) / alpha.sqrt()  # Ho et al. eq. 11
    sigma = (SCHEDULE.posterior_variance[t]).sqrt()
    x_prev, x0_hat = ddpm_step(xt, eps_hat, t, SCHEDULE, noise=noise, clip_x0=False)
    torch.testing.assert_close(x_prev, mean + sigma * noise, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(x0_hat, (xt - (1 - a_bar).sqrt() * eps_hat) / a_bar.sqrt())


def test_ddpm_step_clips_x0_and_uses_the_posterior():
    xt, eps_hat = torch.full((1, 1, 2, 2), 3.0), torch.zeros(1, 1, 2, 2)
    x_prev, x0_hat = ddpm_step(xt, eps_hat, 10, SCHEDULE, noise=torch.zeros_like(xt))
    assert x0_hat.max() == 1.0
    torch.testing.assert_close(x_prev, q_posterior(x0_hat, xt, 10, SCHEDULE)[0])
    with pytest.raises(ValueError, match="needs noise"):
        ddpm_step(xt, eps_hat, 10, SCHEDULE, noise=None)


def test_remove_noise_is_one_ddpm_step():
    g = torch.Generator().manual_seed(2)
    xt, eps_hat, noise = (torch.randn(2, 1, 4, 4, generator=g) for _ in range(3))
    expected = ddpm_step(xt, eps_hat, 30, SCHEDULE, noise=noise)[0]
    torch.testing.assert_close(remove_noise(xt, eps_hat, 30, SCHEDULE, noise=noise), expected)
    # at t = 0 there is no noise to add: the result is the clean estimate
    x0_hat = ddpm_step(xt, eps_hat, 0, SCHEDULE, noise=None)[1]
    torch.testing.assert_close(remove_noise(xt, eps_hat, 0, SCHEDULE), x0_hat)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_every_sampler_recovers_x0_with_an_oracle(prediction):
    x0 = _x0()
    model = OracleModel(x0, SCHEDULE, prediction)
    x_T = torch.randn(x0.shape, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(4)
    runs = {
        "ddpm": ddpm_sample(
            model, SCHEDULE, x_T, prediction=prediction, generator=g, progress=False
        ),
        "ddim": ddim_sample(
            model, SCHEDULE, x_T, num_steps=7, prediction=prediction, progress=False
        ),
        "ddim eta=1": ddim_sample(
            model,
            SCHEDULE,
            x_T,
            num_steps=10,
            eta=1.0,
            generator=g,
            prediction=prediction,
            progress=False,
        ),
    }
    for name, steps in runs.items():
        torch.testing.assert_close(last(steps), x0, atol=1e-4, rtol=1e-4, msg=name)


def test_trajectories_have_one_record_per_step():
    x_T = torch.randn(2, 1, 4, 4)
    steps = list(
        ddpm_sample(ZeroModel(), SCHEDULE, x_T, generator=torch.Generator(), progress=False)
    )
    assert len(steps) == 50 and isinstance(steps[0], SamplerStep)
    assert [s.t for s in steps] == list(range(49, -1, -1)) and steps[-1].i == 49
    assert steps[0].xt.shape == steps[0].x0_hat.shape == x_T.shape
    steps = list(ddim_sample(ZeroModel(), SCHEDULE, x_T, num_steps=5, progress=False))
    assert [s.t for s in steps] == [49, 39, 29, 19, 9]


def test_ddim_with_eta_zero_is_deterministic_and_eta_one_matches_ddpm():
    x_T = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(5))
    model = OracleModel(_x0(2) * 0.5, SCHEDULE)
    a = last(ddim_sample(model, SCHEDULE, x_T, num_steps=10, progress=False))
    b = last(ddim_sample(model, SCHEDULE, x_T, num_steps=10, progress=False))
    assert torch.equal(a, b)
    # over all T steps with eta = 1, one DDIM step has DDPM's posterior mean and variance
    g = torch.Generator().manual_seed(6)
    xt, eps_hat, noise = (torch.randn(2, 1, 4, 4, generator=g) * 0.3 for _ in range(3))
    for t in (1, 25, 49):
        ddim, _ = ddim_step(
            xt,
            eps_hat,
            SCHEDULE.alpha_bar[t],
            SCHEDULE.alpha_bar[t - 1],
            eta=1.0,
            noise=noise,
            clip_x0=False,
        )
        ddpm, _ = ddpm_step(xt, eps_hat, t, SCHEDULE, noise=noise, clip_x0=False)
        torch.testing.assert_close(ddim, ddpm, rtol=1e-4, atol=1e-5)


def test_predict_eps_x0_round_trips():
    x0, eps = _x0(), torch.randn(4, 1, 4, 4)
    t = torch.tensor([3, 10, 20, 40])
    xt = q_sample(x0, t, SCHEDULE, eps)
    a = SCHEDULE.at(SCHEDULE.alpha_bar, t, like=xt)
    for prediction, output in (
        ("eps", eps),
        ("x0", x0),
        ("v", a.sqrt() * eps - (1 - a).sqrt() * x0),
    ):
        eps_hat, x0_hat = predict_eps_x0(output, xt, a, prediction)
        torch.testing.assert_close(eps_hat, eps, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(x0_hat, x0, atol=1e-4, rtol=1e-4)


def test_bad_arguments_raise_clear_errors():
    x_T = torch.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match=r"num_steps must be an int in \[1, T=50\]"):
        last(ddim_sample(ZeroModel(), SCHEDULE, x_T, num_steps=51, progress=False))
    with pytest.raises(ValueError, match="eta must be >= 0"):
        last(ddim_sample(ZeroModel(), SCHEDULE, x_T, eta=-0.5, num_steps=5, progress=False))
    with pytest.raises(ValueError, match="unknown prediction 'score'"):
        last(ddpm_sample(ZeroModel(), SCHEDULE, x_T, prediction="score", progress=False))
    with pytest.raises(ValueError, match="yielded no steps"):
        last(iter([]))
