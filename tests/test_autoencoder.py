"""Lesson 11: the autoencoder, its training loop and measurements, and latent diffusion glue."""

import math

import pytest
import torch
from torch import nn

from diffusion_lab import exercises as ex
from diffusion_lab.models import (
    Autoencoder,
    AutoencoderStep,
    LatentDiffusion,
    UNet,
    autoencoder_loss,
    encode_dataset,
    latent_denoiser,
    latent_scale,
    reconstruction_psnr,
    train_autoencoder,
)
from diffusion_lab.models import autoencoder as autoencoder_module
from diffusion_lab.samplers import sample
from diffusion_lab.schedules import NoiseSchedule
from diffusion_lab.training import load_checkpoint, save_checkpoint, train

TINY = dict(channels=(8, 16), latent_channels=4)  # 28 -> 14 -> 7, fast enough for tests


def _digits(n: int, gen: torch.Generator) -> torch.Tensor:
    """Smooth random blobs in [-1, 1], shaped like digits (n, 1, 28, 28)."""
    coarse = torch.randn(n, 1, 7, 7, generator=gen)
    return torch.tanh(2 * nn.functional.interpolate(coarse, size=28, mode="bilinear"))


# ----- the autoencoder -----
@pytest.mark.parametrize("batch", [1, 3])
def test_shapes_of_encode_decode_and_forward(batch, gen):
    ae = Autoencoder()
    assert ae.input_shape == (1, 28, 28) and ae.latent_shape == (4, 7, 7)
    x = torch.rand(batch, 1, 28, 28, generator=gen) * 2 - 1
    z = ae.encode(x)
    assert z.shape == (batch, 4, 7, 7)
    assert ae.decode(z).shape == x.shape
    assert ae(x).shape == x.shape


def test_default_size_and_repr():
    ae = Autoencoder()
    assert ae.num_parameters() == sum(p.numel() for p in ae.parameters())
    assert 50_000 <= ae.num_parameters() <= 150_000  # trains in about a minute on a laptop CPU
    assert "channels=(32, 64), latent_channels=4" in repr(ae)
    rgb = Autoencoder(in_channels=3, image_size=32, channels=(8, 16, 16), latent_channels=3)
    assert rgb.latent_shape == (3, 4, 4)
    assert rgb(torch.zeros(2, 3, 32, 32)).shape == (2, 3, 32, 32)


def test_decoded_images_stay_in_range(gen):
    ae = Autoencoder(**TINY)
    nn.init.normal_(ae.decoder[-1].weight, std=10.0)  # provoke huge pre-activations
    x = ae.decode(100 * torch.randn(4, 4, 7, 7, generator=gen))
    assert x.min() >= -1 and x.max() <= 1
    assert x.abs().max() > 0.99  # reached, not squashed to a narrow band


def test_dtype_follows_the_model_and_inputs(gen):
    ae = Autoencoder(**TINY).double()
    x = torch.rand(2, 1, 28, 28, generator=gen, dtype=torch.float64) * 2 - 1
    assert ae.encode(x).dtype == torch.float64 and ae(x).dtype == torch.float64


def test_wrong_shapes_give_clear_errors():
    ae = Autoencoder(**TINY)
    with pytest.raises(ValueError, match=r"encode expects images of shape \(B, 1, 28, 28\)"):
        ae.encode(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"got \(1, 28, 28\)"):
        ae(torch.zeros(1, 28, 28))  # a missing batch dimension
    with pytest.raises(ValueError, match=r"decode expects latents of shape \(B, 4, 7, 7\)"):
        ae.decode(torch.zeros(2, 4, 8, 8))
    with pytest.raises(ValueError, match=r"divisible by 2\*\*3"):
        Autoencoder(image_size=28, channels=(8, 16, 32))
    with pytest.raises(ValueError, match="square"):
        latent_denoiser((4, 7, 8))


def test_config_round_trips_through_a_checkpoint(tmp_path, gen):
    ae = Autoencoder(**TINY)
    path = save_checkpoint(tmp_path / "ae.pt", ae)
    payload = load_checkpoint(path)
    config = {k: v for k, v in payload["config"].items() if k != "class"}
    assert payload["config"]["class"] == "Autoencoder"
    rebuilt = Autoencoder(**config)
    load_checkpoint(path, rebuilt)
    x = torch.rand(2, 1, 28, 28, generator=gen) * 2 - 1
    torch.testing.assert_close(rebuilt(x), ae(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="latent_channels: checkpoint 4 vs model 8"):
        load_checkpoint(path, Autoencoder(channels=(8, 16), latent_channels=8))


# ----- loss and training -----
def test_loss_is_mse_plus_the_latent_penalty(gen):
    ae = Autoencoder(**TINY)
    x = _digits(4, gen)
    z = ae.encode(x)
    mse = nn.functional.mse_loss(ae.decode(z), x)
    torch.testing.assert_close(autoencoder_loss(ae, x, latent_penalty=0.0), mse)
    torch.testing.assert_close(
        autoencoder_loss(ae, x, latent_penalty=0.5), mse + 0.5 * z.pow(2).mean()
    )


def test_training_lowers_the_loss(gen):
    torch.manual_seed(0)
    ae = Autoencoder(**TINY)
    data = _digits(64, gen)
    steps = list(
        train_autoencoder(
            ae, data, num_steps=30, batch_size=16, lr=5e-3, warmup_steps=3, progress=False
        )
    )
    assert [s.step for s in steps] == list(range(1, 31))
    assert all(isinstance(s, AutoencoderStep) and math.isfinite(s.loss) for s in steps)
    first, last = [s.loss for s in steps[:5]], [s.loss for s in steps[-5:]]
    assert sum(last) < 0.7 * sum(first), (first, last)
    assert steps[-1].seconds >= steps[0].seconds > 0


def test_training_is_reproducible_with_a_generator():
    def run():
        torch.manual_seed(0)
        ae = Autoencoder(**TINY)
        data = _digits(32, torch.Generator().manual_seed(5))
        g = torch.Generator().manual_seed(3)
        return [s.loss for s in train_autoencoder(ae, data, num_steps=3, batch_size=8,
                                                  generator=g, progress=False)]  # fmt: skip

    assert run() == run()


def test_training_stops_after_max_minutes(gen, capsys):
    ae = Autoencoder(**TINY)
    steps = list(
        train_autoencoder(
            ae, _digits(8, gen), num_steps=100, batch_size=4, max_minutes=1e-6, progress=False
        )
    )
    assert len(steps) == 1 and steps[0].step == 1
    assert "Stopped after" in capsys.readouterr().out


def test_training_ends_cleanly_on_interrupt(gen, capsys, monkeypatch):
    calls = []

    def loss_then_interrupt(ae, x, *, latent_penalty):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return autoencoder_loss(ae, x, latent_penalty=latent_penalty)

    monkeypatch.setattr(autoencoder_module, "autoencoder_loss", loss_then_interrupt)
    steps = list(
        train_autoencoder(Autoencoder(**TINY), _digits(8, gen), num_steps=10, progress=False)
    )
    assert len(steps) == 2
    assert "Interrupted at step 2" in capsys.readouterr().out


def test_non_finite_loss_raises_with_advice(gen):
    data = _digits(8, gen)
    data[:] = float("nan")
    with pytest.raises(FloatingPointError, match="smaller learning rate"):
        list(train_autoencoder(Autoencoder(**TINY), data, num_steps=3, progress=False))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        list(train_autoencoder(Autoencoder(**TINY), data[:, 0], num_steps=3, progress=False))


# ----- latents and measurements -----
def test_encode_dataset_batches_restores_the_mode_and_returns_cpu(gen):
    ae = Autoencoder(**TINY).train()
    data = _digits(7, gen)
    latents = encode_dataset(ae, data, batch_size=3)
    assert latents.shape == (7, 4, 7, 7) and latents.device.type == "cpu"
    assert not latents.requires_grad and ae.training
    with torch.no_grad():
        torch.testing.assert_close(latents, ae.encode(data))


def test_latent_scale_is_one_over_the_std():
    z = torch.randn(2000, generator=torch.Generator().manual_seed(0))
    z = (z - z.mean()) / z.std()  # exactly std 1
    assert latent_scale(5 * z + 3) == pytest.approx(0.2, rel=1e-5)
    assert latent_scale((5 * z).reshape(10, 4, 5, 10)) == pytest.approx(0.2, rel=1e-5)
    with pytest.raises(ValueError, match="at least two"):
        latent_scale(torch.ones(1))


class _ShiftBy(nn.Module):
    """A fake autoencoder whose reconstruction is off by exactly `shift` everywhere."""

    def __init__(self, shift: float):
        super().__init__()
        self.shift = nn.Parameter(torch.tensor(shift))

    def forward(self, x):
        return x + self.shift


def test_reconstruction_psnr_matches_the_formula(gen):
    data = _digits(5, gen)
    # MSE 0.04 with peak-to-peak range 2: 10 log10(4 / 0.04) = 20 dB
    assert reconstruction_psnr(_ShiftBy(0.2), data, batch_size=2) == pytest.approx(20.0, abs=1e-4)
    assert reconstruction_psnr(_ShiftBy(0.02), data) == pytest.approx(40.0, abs=1e-3)


# ----- latent diffusion -----
def _ldm(scale=0.5):
    denoiser = latent_denoiser(channels=(16,), num_res_blocks=1)
    return LatentDiffusion(Autoencoder(**TINY), denoiser, scale_factor=scale)


def test_latent_diffusion_round_trip_equals_the_reconstruction(gen):
    ldm = _ldm(scale=0.37)
    x = _digits(3, gen)
    z = ldm.to_latent(x)
    assert z.shape == (3, 4, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(z, 0.37 * ldm.autoencoder.encode(x))
        # z * s / s differs from z by float rounding at most
        torch.testing.assert_close(ldm.to_image(z), ldm.autoencoder(x), rtol=1e-5, atol=1e-6)


def test_latent_diffusion_freezes_the_autoencoder_and_saves_the_scale(gen):
    ldm = _ldm().train()
    assert not ldm.autoencoder.training and ldm.denoiser.training
    assert not any(p.requires_grad for p in ldm.autoencoder.parameters())
    assert all(p.requires_grad for p in ldm.denoiser.parameters())
    assert ldm.input_shape == ldm.latent_shape == (4, 7, 7)
    assert ldm.state_dict()["scale_factor"] == 0.5
    zt = torch.randn(2, 4, 7, 7, generator=gen)
    torch.testing.assert_close(ldm(zt, 10), ldm.denoiser(zt, 10))  # forward is the denoiser
    with pytest.raises(ValueError, match=r"denoiser takes inputs \(1, 28, 28\)"):
        LatentDiffusion(Autoencoder(**TINY), UNet(channels=(8,)), scale_factor=1.0)
    with pytest.raises(ValueError, match="positive"):
        LatentDiffusion(Autoencoder(**TINY), latent_denoiser(), scale_factor=0.0)


def test_latent_diffusion_checkpoint_restores_the_scale(tmp_path):
    ldm = _ldm(scale=0.37)
    path = save_checkpoint(tmp_path / "ldm.pt", ldm)
    fresh = _ldm(scale=1.0)
    load_checkpoint(path, fresh)
    assert fresh.scale_factor.item() == pytest.approx(0.37)
    assert load_checkpoint(path)["config"]["autoencoder"]["channels"] == (8, 16)


def test_train_and_sample_in_latent_space(gen):
    """The course's train() and sample() run unchanged on the denoiser, over latents."""
    torch.manual_seed(0)
    ldm = _ldm()
    schedule = NoiseSchedule.linear(num_timesteps=50)
    z = ldm.to_latent(_digits(16, gen))
    z = z / z.abs().max()  # within [-1, 1], so the default range check passes
    steps = list(train(ldm.denoiser, z, schedule, num_steps=2, batch_size=4, progress=False))
    assert [s.step for s in steps] == [1, 2] and all(math.isfinite(s.loss) for s in steps)
    x_T = torch.randn(2, *ldm.latent_shape, generator=gen)
    z0 = sample(ldm.denoiser, schedule, x_T, num_steps=2, clip_x0=False, progress=False)
    assert z0.shape == (2, 4, 7, 7)
    assert ldm.to_image(z0).shape == (2, 1, 28, 28)
    same = sample(ldm, schedule, x_T, num_steps=2, clip_x0=False, progress=False)
    torch.testing.assert_close(same, z0)  # the glue module follows the model contract too


def test_train_on_unit_variance_latents(gen):
    """Scaled to unit variance (Stable Diffusion's scale factor), latents leave [-1, 1]: train
    refuses them by default, as it would pixels out of range; data_range=None takes them."""
    ldm = _ldm()
    z = ldm.to_latent(_digits(16, gen))
    z = z * latent_scale(z)  # std 1: many values lie beyond 1
    assert z.abs().max() > 1
    schedule = NoiseSchedule.linear(num_timesteps=50)
    with pytest.raises(ValueError, match=r"must lie in \[-1, 1\]"):
        list(train(ldm.denoiser, z, schedule, num_steps=1, batch_size=4, progress=False))
    steps = list(train(ldm.denoiser, z, schedule, num_steps=2, batch_size=4, progress=False,
                       data_range=None))  # fmt: skip
    assert [s.step for s in steps] == [1, 2] and all(math.isfinite(s.loss) for s in steps)
    with pytest.raises(ValueError, match="NaN or infinite"):
        bad = z.clone()
        bad[0, 0, 0, 0] = float("nan")
        list(train(ldm.denoiser, bad, schedule, num_steps=1, batch_size=16, progress=False,
                   data_range=None))  # fmt: skip


# ----- exercises of lesson 11 -----
def _solution_fn(name: str):
    namespace = {"torch": torch}
    exec(ex._get(name).solution, namespace)
    return namespace[name]


def _stub(*args):
    raise NotImplementedError


@pytest.mark.parametrize("name", ["latent_scale", "to_latent"])
def test_model_solution_passes_and_stub_is_not_done(name, capsys):
    check = getattr(ex, f"check_{name}")
    assert ex._get(name).check is check and name in ex.list_exercises()
    result = check(_solution_fn(name))
    assert result.passed, result.message
    stub = check(_stub)
    assert not stub.passed and "not done yet" in stub.message
    capsys.readouterr()
    ex.hint(name)
    assert len(capsys.readouterr().out) > 40
    ex.solution(name)
    assert f"def {name}(" in capsys.readouterr().out


def test_latent_scale_solution_as_a_python_float_passes():
    assert ex.check_latent_scale(lambda z: 1 / z.std().item()).passed
    assert ex.check_latent_scale(lambda z: 1 / z.std(correction=0)).passed  # biased std is fine


WRONG = [
    (ex.check_latent_scale, lambda z: z.std(), "1 / std"),
    (ex.check_latent_scale, lambda z: 1 / z.var(), "square root"),
    (ex.check_latent_scale, lambda z: 1 / z.std(dim=(0, 2, 3)), "one scale per channel"),
    (ex.check_latent_scale, lambda z: 1 / z.std(dim=(0, 2, 3), keepdim=True), "per channel"),
    (ex.check_latent_scale, lambda z: z.pow(2).mean().rsqrt(), "subtracts the mean"),
    (ex.check_latent_scale, lambda z: 1 / z.abs().max(), "max(|z|)"),
    (ex.check_latent_scale, lambda z: 1 / z.std(dim=0), "expected shape ()"),
    (ex.check_to_latent, lambda ae, x, s: ae.encode(x) / s, "divided"),
    (ex.check_to_latent, lambda ae, x, s: ae.encode(x), "not scaled"),
    (ex.check_to_latent, lambda ae, x, s: ae.encode(x * s), "after encoding"),
    (ex.check_to_latent, lambda ae, x, s: ae(x) * s, "ae.encode(x) gives the latents"),
    (ex.check_to_latent, lambda ae, x, s: None, "forget `return`"),
]


@pytest.mark.parametrize("check, fn, message", WRONG)
def test_typical_mistakes_get_specific_messages(check, fn, message):
    result = check(fn)
    assert not result.passed
    assert message in result.message, result.message


def test_an_autoencoder_frozen_by_latent_diffusion_can_be_trained_again(gen):
    ldm = _ldm()
    ae = ldm.autoencoder
    assert not any(p.requires_grad for p in ae.parameters())
    steps = train_autoencoder(ae, _digits(8, gen), num_steps=1, batch_size=4, progress=False)
    records = list(steps)
    assert len(records) == 1 and all(p.requires_grad for p in ae.parameters())


def test_to_latent_check_accepts_the_package_helpers():
    def via_encode_dataset(ae, x, scale_factor):
        return encode_dataset(ae, x) * scale_factor

    assert ex.check_to_latent(via_encode_dataset).passed
