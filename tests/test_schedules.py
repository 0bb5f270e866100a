import math

import pytest
import torch

from diffusion_lab.schedules import (
    NoiseSchedule,
    cosine_alpha_bar,
    get_schedule,
    linear_betas,
    sigmoid_alpha_bar,
)

ALL = [NoiseSchedule.linear, NoiseSchedule.cosine, NoiseSchedule.sigmoid]


def test_linear_schedule_matches_ho_et_al_values():
    schedule = NoiseSchedule.linear()
    assert len(schedule) == 1000
    torch.testing.assert_close(schedule.betas[[0, -1]], torch.tensor([1e-4, 0.02]))
    # alpha_bar_t = prod_{s<=t} (1 - beta_s), computed independently in float64
    betas = [1e-4 + (0.02 - 1e-4) * i / 999 for i in range(1000)]
    expected = math.prod(1 - b for b in betas[:500])
    assert schedule.alpha_bar[499].item() == pytest.approx(expected, rel=1e-5)
    # the well-known end value of DDPM's schedule: alpha_bar_T ~ 4.04e-5
    assert schedule.alpha_bar[-1].item() == pytest.approx(4.0358e-5, rel=1e-3)


def test_cosine_schedule_matches_its_closed_form():
    T, s = 1000, 0.008
    schedule = NoiseSchedule.cosine(T, s=s)

    def f(tau):
        return math.cos((tau + s) / (1 + s) * math.pi / 2) ** 2

    for t in (0, 10, 500, 990):
        assert schedule.alpha_bar[t].item() == pytest.approx(f((t + 1) / T) / f(0), rel=1e-5)
    # the last beta is clipped at 0.999 (Nichol & Dhariwal 2021)
    assert schedule.betas.max().item() == pytest.approx(0.999, abs=1e-6)


def test_sigmoid_schedule_runs_from_one_towards_zero():
    schedule = NoiseSchedule.sigmoid()
    assert 0.99 < schedule.alpha_bar[0] < 1
    assert schedule.alpha_bar[-1] < 1e-3
    # symmetric sigmoid: halfway through, about half the signal variance is left
    assert schedule.alpha_bar[499].item() == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("make", ALL)
def test_views_are_consistent(make):
    schedule = make(200)
    a = schedule.alpha_bar.double()
    assert ((a > 0) & (a <= 1)).all()
    assert (a[1:] <= a[:-1]).all()
    torch.testing.assert_close(torch.cumprod(schedule.alphas.double(), 0), a, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(schedule.alphas, 1 - schedule.betas)
    torch.testing.assert_close(schedule.sigmas, ((1 - a) / a).sqrt().float())
    torch.testing.assert_close(schedule.snr(), (a / (1 - a)).float())
    torch.testing.assert_close(
        schedule.log_snr(), (a / (1 - a)).log().float(), rtol=1e-4, atol=1e-4
    )
    t = torch.tensor([0, 5, 199])
    torch.testing.assert_close(schedule.snr(t), schedule.snr()[t])
    assert schedule.alpha_bar.dtype == torch.float32


def test_float64_builders():
    assert linear_betas().dtype == torch.float64
    assert cosine_alpha_bar(10).shape == (10,)
    assert sigmoid_alpha_bar(10).dtype == torch.float64


@pytest.mark.parametrize("T", [1, 7, 1000])
@pytest.mark.parametrize("spacing", ["trailing", "linspace", "leading"])
def test_timesteps_are_descending_in_range_with_right_length(T, spacing):
    schedule = NoiseSchedule.linear(T, beta_end=0.5 if T < 10 else 0.02)
    # every step count up to T: a float stride once overshot by one value for 61 of 1000 steps
    for num_steps in range(1, T + 1):
        ts = schedule.timesteps(num_steps, spacing)
        assert len(ts) == num_steps
        assert ts.dtype == torch.long
        assert ts.min() >= 0 and ts.max() <= T - 1
        assert (ts[1:] < ts[:-1]).all()


def test_trailing_spacing_starts_at_last_timestep():
    schedule = NoiseSchedule.linear()
    for num_steps in (1, 3, 10, 50, 999):
        assert schedule.timesteps(num_steps)[0].item() == 999
    assert schedule.timesteps(10).tolist() == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    assert schedule.timesteps(1000).tolist() == list(range(999, -1, -1))
    # leading (diffusers' default) does not start at T-1
    assert schedule.timesteps(3, "leading").tolist() == [666, 333, 0]


def test_bad_arguments_raise_clear_errors():
    schedule = NoiseSchedule.linear(10, beta_end=0.2)
    with pytest.raises(ValueError, match=r"num_steps must be an int in \[1, T=10\]"):
        schedule.timesteps(11)
    with pytest.raises(ValueError, match="unknown spacing 'middle'; allowed"):
        schedule.timesteps(5, "middle")
    with pytest.raises(ValueError, match=r"timestep out of range.*\[0, 9\]"):
        schedule.check_t(10)
    with pytest.raises(ValueError, match="out of range"):
        schedule.check_t(torch.tensor([-1, 3]))
    with pytest.raises(TypeError, match="integers"):
        schedule.check_t(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="unknown schedule 'quadratic'; allowed: cosine, linear"):
        get_schedule("quadratic")
    with pytest.raises(ValueError, match="beta_start"):
        NoiseSchedule.linear(beta_start=0.1, beta_end=0.01)
    with pytest.raises(ValueError, match="positive int"):
        NoiseSchedule.cosine(0)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        NoiseSchedule(torch.tensor([0.5, 0.0]))
    with pytest.raises(ValueError, match="must not increase"):
        NoiseSchedule(torch.tensor([0.5, 0.9]))


def test_get_schedule_and_repr():
    schedule = get_schedule("cosine", 50)
    assert len(schedule) == 50 and schedule.name == "cosine"
    assert "NoiseSchedule.cosine(num_timesteps=50)" in repr(schedule)


def test_to_moves_every_tensor_and_sample_t_is_in_range(gen):
    schedule = NoiseSchedule.linear().to("cpu")
    assert schedule.device.type == "cpu"
    assert schedule.to("meta").betas.device.type == "meta"
    t = schedule.sample_t(10_000, generator=gen)
    assert t.min() >= 0 and t.max() <= 999 and t.dtype == torch.long
    # uniform: every decile gets about a tenth
    counts = torch.bincount(t // 100, minlength=10).float() / len(t)
    assert (counts - 0.1).abs().max() < 0.02


def test_logit_normal_timesteps_follow_their_closed_form_cdf():
    schedule = NoiseSchedule.cosine()
    gen = torch.Generator().manual_seed(0)
    for mean, std in ((0.5, 1.0), (-0.3, 0.6)):  # std != 1 checks that std scales z
        t = schedule.sample_t(40_000, generator=gen, logit_normal=(mean, std))
        assert t.dtype == torch.long and t.min() >= 0 and t.max() <= 999
        for frac in (0.2, 0.5, 0.8):  # P(t / T < frac) = Phi((logit(frac) - mean) / std)
            z = (math.log(frac / (1 - frac)) - mean) / std
            expected = torch.special.ndtr(torch.tensor(z)).item()
            assert (t < frac * 1000).float().mean().item() == pytest.approx(expected, abs=0.01)
    uniform = schedule.sample_t(40_000, generator=gen)
    assert (uniform < 500).float().mean().item() == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("bad", [(0.0, 0.0), (0.0, -1.0), (math.inf, 1.0), (0.5,), "wide"])
def test_logit_normal_refuses_bad_parameters(bad):
    with pytest.raises(ValueError, match="logit_normal must be \\(mean, std\\)"):
        NoiseSchedule.cosine().sample_t(4, logit_normal=bad)
