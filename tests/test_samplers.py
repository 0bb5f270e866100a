import math

import pytest
import torch

from diffusion_lab.forward import q_posterior, q_sample
from diffusion_lab.samplers import (
    SAMPLERS,
    SamplerStep,
    Trajectory,
    ddim_sample,
    ddim_step,
    ddpm_sample,
    ddpm_step,
    dpm_solver_sample,
    dpm_solver_step,
    last,
    predict_eps_x0,
    remove_noise,
    sample,
    slerp,
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
        "dpm_solver": dpm_solver_sample(
            model, SCHEDULE, x_T, num_steps=6, prediction=prediction, progress=False
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


class GaussianDenoiser(torch.nn.Module):
    """The exact x_0 predictor for data ~ N(0, s^2 I): E[x_0 | x_t] = a s^2 x_t / (a^2 s^2 + sig^2).

    Its probability-flow ODE has a closed-form solution: x_t / sqrt(a^2 s^2 + sig^2) is constant.
    """

    def __init__(self, schedule, s=0.5):
        super().__init__()
        self.schedule, self.s = schedule, s

    def x0(self, xt, alpha_bar):
        a, var = alpha_bar.sqrt(), 1 - alpha_bar
        return a * self.s**2 * xt / (alpha_bar * self.s**2 + var)

    def forward(self, xt, t, cond=None):
        return self.x0(xt, self.schedule.at(self.schedule.alpha_bar, t, like=xt))


def _ode_error(step_fn, n, second_order):
    """Integrate the Gaussian model's ODE from alpha_bar 0.02 to 0.9 in n steps; max error.

    The steps are equal in lambda = log(alpha / sigma), the variable the solver is built on.
    """
    model = GaussianDenoiser(SCHEDULE)
    x = torch.randn(64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    lam = torch.linspace(-0.5 * math.log(49), 0.5 * math.log(9), n + 1, dtype=torch.float64)
    levels = torch.sigmoid(2 * lam)  # alpha_bar from lambda
    std = lambda a: (a * model.s**2 + 1 - a).sqrt()  # noqa: E731
    exact = x * std(levels[-1]) / std(levels[0])
    x0_last = a_last = None
    for a_t, a_next in zip(levels[:-1], levels[1:]):
        x0_hat = model.x0(x, a_t)
        if second_order:
            x, _ = step_fn(x, x0_hat, a_t, a_next, x0_hat_last=x0_last, alpha_bar_last=a_last)
        else:
            x, _ = step_fn(x, x0_hat, a_t, a_next)
        x0_last, a_last = x0_hat, a_t
    return (x - exact).abs().max().item()


def _ddim_from_x0(xt, x0_hat, a_t, a_next):
    eps_hat = (xt - a_t.sqrt() * x0_hat) / (1 - a_t).sqrt()
    return ddim_step(xt, eps_hat, a_t, a_next, clip_x0=False)


def test_dpm_solver_is_second_order_where_ddim_is_first_order():
    ddim = [_ode_error(_ddim_from_x0, n, False) for n in (8, 16, 32)]
    dpm = [_ode_error(dpm_solver_step, n, True) for n in (8, 16, 32)]
    # halving the step size divides the error by ~2 for a first-order method, ~4 for second order
    assert 1.7 < ddim[0] / ddim[1] < 2.3 and 1.7 < ddim[1] / ddim[2] < 2.3, ddim
    assert 3.5 < dpm[0] / dpm[1] < 6 and 3.5 < dpm[1] / dpm[2] < 6, dpm
    assert dpm[0] < ddim[0] / 5


def test_dpm_solver_first_step_is_a_ddim_step_and_last_returns_x0():
    g = torch.Generator().manual_seed(7)
    xt, x0_hat = torch.randn(2, 1, 4, 4, generator=g), torch.rand(2, 1, 4, 4, generator=g)
    a_t, a_next = SCHEDULE.alpha_bar[30], SCHEDULE.alpha_bar[12]
    first, _ = dpm_solver_step(xt, x0_hat, a_t, a_next)
    torch.testing.assert_close(first, _ddim_from_x0(xt, x0_hat, a_t, a_next)[0])
    final, _ = dpm_solver_step(xt, x0_hat, a_t, 1.0, x0_hat_last=xt, alpha_bar_last=0.1)
    assert torch.equal(final, x0_hat)
    with pytest.raises(ValueError, match="alpha_bar_next must be >= alpha_bar_t"):
        dpm_solver_step(xt, x0_hat, a_next, a_t)
    with pytest.raises(ValueError, match="needs alpha_bar_last"):
        dpm_solver_step(xt, x0_hat, a_t, a_next, x0_hat_last=x0_hat)


def test_dpm_solver_sampler_is_deterministic_with_one_record_per_call():
    model = GaussianDenoiser(SCHEDULE)
    x_T = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(8))
    steps = list(
        dpm_solver_sample(model, SCHEDULE, x_T, num_steps=5, prediction="x0", progress=False)
    )
    assert [s.t for s in steps] == [49, 39, 29, 19, 9] and steps[-1].i == 4
    again = last(
        dpm_solver_sample(model, SCHEDULE, x_T, num_steps=5, prediction="x0", progress=False)
    )
    assert torch.equal(steps[-1].xt, again)


def test_sample_runs_each_sampler_and_rejects_bad_arguments():
    x0 = _x0(2)
    model = OracleModel(x0, SCHEDULE)
    x_T = torch.randn(x0.shape, generator=torch.Generator().manual_seed(9))
    for name in SAMPLERS:
        for num_steps in (None, 10):
            out = sample(
                model,
                SCHEDULE,
                x_T,
                sampler=name,
                num_steps=num_steps,
                generator=torch.Generator().manual_seed(0),
                progress=False,
            )
            torch.testing.assert_close(out, x0, atol=1e-4, rtol=1e-4, msg=f"{name} {num_steps}")
    with pytest.raises(
        ValueError,
        match="unknown sampler 'heun'; allowed: ddpm, ddim, dpm_solver, dpm_solver_sde",
    ):
        sample(model, SCHEDULE, x_T, sampler="heun")
    with pytest.raises(ValueError, match="dpm_solver takes no eta"):
        sample(model, SCHEDULE, x_T, sampler="dpm_solver", eta=0.5)
    with pytest.raises(ValueError, match=r"num_steps must be an int in \[1, T=50\]"):
        sample(model, SCHEDULE, x_T, sampler="dpm_solver", num_steps=1000)
    with pytest.raises(ValueError, match="ddpm is ancestral"):
        sample(model, SCHEDULE, x_T, sampler="ddpm", eta=0.0)


def test_trajectory_records_inputs_estimates_and_stages():
    x0 = _x0(3)
    x_T = torch.randn(x0.shape, generator=torch.Generator().manual_seed(10))
    steps = ddpm_sample(
        OracleModel(x0, SCHEDULE), SCHEDULE, x_T, generator=torch.Generator(), progress=False
    )
    traj = Trajectory.record(steps, x_T, every=10)
    assert traj.t == [49, 39, 29, 19, 9, -1] and len(traj) == 6
    assert traj.xt.shape == traj.x0_hat.shape == (6, *x0.shape)
    assert torch.equal(traj.xt[0], x_T)  # the first frame is what the model saw: pure noise
    torch.testing.assert_close(traj.final, x0, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(traj.x0_hat[1], x0, atol=1e-4, rtol=1e-4)  # the oracle's guess
    closeness = traj.closeness()
    assert closeness[0].abs() < 0.5 and closeness[-1] == pytest.approx(1.0)
    assert traj.closeness("x0_hat")[1:].min() > 0.999  # the oracle's guess is right at once
    with pytest.raises(ValueError, match="which must be 'xt' or 'x0_hat'"):
        traj.closeness("eps")
    stages = traj.stages()
    assert stages[-1] == "clear image" and stages[0] in ("pure noise", "faint shape")
    order = ["pure noise", "faint shape", "rough image", "clear image"]
    assert [order.index(s) for s in stages] == sorted(order.index(s) for s in stages)
    with pytest.raises(ValueError, match="every must be >= 1"):
        Trajectory.record(iter([]), x_T, every=0)


def test_slerp_keeps_the_norm_and_hits_the_ends():
    g = torch.Generator().manual_seed(11)
    a, b = torch.randn(1, 1, 28, 28, generator=g), torch.randn(1, 1, 28, 28, generator=g)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5)
    assert torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    mid = slerp(a, b, 0.5)
    assert abs(mid.norm() - (a.norm() + b.norm()) / 2) < 0.05 * a.norm()  # stays on the shell
    assert ((a + b) / 2).norm() < 0.8 * a.norm()  # the straight blend does not
    with pytest.raises(ValueError, match="differ in shape"):
        slerp(a, b[..., :27], 0.5)


def test_stochastic_dpm_solver_first_step_is_the_ancestral_step():
    g = torch.Generator().manual_seed(12)
    xt, x0_hat, noise = (torch.randn(2, 1, 4, 4, generator=g) for _ in range(3))
    a_t, a_next = SCHEDULE.alpha_bar[30], SCHEDULE.alpha_bar[12]
    sde, _ = dpm_solver_step(xt, x0_hat, a_t, a_next, noise=noise)
    eps_hat = (xt - a_t.sqrt() * x0_hat) / (1 - a_t).sqrt()
    ancestral, _ = ddim_step(xt, eps_hat, a_t, a_next, eta=1.0, noise=noise, clip_x0=False)
    torch.testing.assert_close(sde, ancestral, rtol=1e-4, atol=1e-5)
    # with zero noise the SDE step still differs from the ODE step (it shrinks x_t more)
    ode, _ = dpm_solver_step(xt, x0_hat, a_t, a_next)
    assert not torch.allclose(dpm_solver_step(xt, x0_hat, a_t, a_next, noise=0 * noise)[0], ode)
