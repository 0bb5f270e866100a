import math

import pytest
import torch
from torch import nn

from diffusion_lab.applications import (
    MASKS,
    SKETCHES,
    SuperResolutionUNet,
    blocky,
    downsample,
    draw_strokes,
    inpaint,
    make_mask,
    paint_stroke,
    psnr,
    renoise,
    sdedit,
    sdedit_timesteps,
    upsample,
)
from diffusion_lab.forward import q_sample
from diffusion_lab.samplers import SamplerStep, ddim_sample, last, sample
from diffusion_lab.schedules import NoiseSchedule
from diffusion_lab.training import load_checkpoint, save_checkpoint, train

from .fakes import OracleModel

SCHEDULE = NoiseSchedule.linear(50, beta_end=0.3)


def _x0(n=2, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=g) * 1.8 - 0.9


class WobblyModel(nn.Module):
    """A deterministic stand-in for a trained network: its output depends on xt and t."""

    def forward(self, xt, t, cond=None):
        t = torch.as_tensor(t, dtype=xt.dtype).reshape(-1, 1, 1, 1)
        return 0.5 * xt + 0.3 * torch.sin(0.1 * t + xt)


class Counting(nn.Module):
    """Wraps a model and counts its calls (and keeps the inputs it saw)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls, self.inputs = model, 0, []

    def forward(self, xt, t, cond=None):
        self.calls += 1
        self.inputs.append((xt.clone(), torch.as_tensor(t).clone()))
        return self.model(xt, t, cond)


class TargetModel(nn.Module):
    """Always predicts x0 = target, whatever it is shown."""

    def __init__(self, target):
        super().__init__()
        self.target = target

    def forward(self, xt, t, cond=None):
        return self.target.expand_as(xt)


# ----- masks -----
def test_make_mask_kinds_name_the_hidden_part():
    assert set(MASKS) == {"left", "right", "top", "bottom", "centre", "box", "pixels"}
    left = make_mask("left", 8)
    assert left.shape == (1, 1, 8, 8) and left.dtype == torch.float32
    assert (left[..., :4] == 0).all() and (left[..., 4:] == 1).all()
    assert torch.equal(make_mask("right", 8), left.flip(-1))
    assert torch.equal(make_mask("top", 8), left.transpose(-1, -2))
    assert torch.equal(make_mask("bottom", 8), left.transpose(-1, -2).flip(-2))
    centre = make_mask("centre", 8, hole=2)
    assert (centre == 0).sum() == 4 and (centre[0, 0, 3:5, 3:5] == 0).all()
    assert (make_mask("centre", 28) == 0).sum() == 14 * 14
    box = make_mask("box", 8, box=(1, 2, 3, 4))
    assert (box == 0).sum() == 12 and (box[0, 0, 1:4, 2:6] == 0).all()
    pixels = make_mask("pixels", 10, missing=0.8, generator=torch.Generator().manual_seed(0))
    assert (pixels == 0).sum() == 80
    again = make_mask("pixels", 10, missing=0.8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(pixels, again)


def test_make_mask_rejects_unknown_kinds_and_bad_boxes():
    with pytest.raises(ValueError, match="allowed: left, right, top, bottom, centre, box, pixels"):
        make_mask("middle")
    with pytest.raises(ValueError, match="needs box"):
        make_mask("box", 8)
    with pytest.raises(ValueError, match="does not fit"):
        make_mask("box", 8, box=(6, 0, 4, 2))
    with pytest.raises(ValueError, match="hole= is for kind='centre'"):
        make_mask("left", 8, hole=3)
    with pytest.raises(ValueError, match="share of pixels"):
        make_mask("pixels", 8, missing=1.5)


# ----- inpainting -----
@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("resample", [1, 3])
def test_inpaint_keeps_the_known_pixels_exactly(prediction, resample):
    x_known = _x0()
    masks = [
        make_mask("centre", 8, hole=4),  # (1, 1, H, W) float
        make_mask("left", 8)[0, 0].bool(),  # (H, W) bool
        torch.stack([make_mask("top", 8)[0], make_mask("right", 8)[0]]),  # (B, 1, H, W)
    ]
    for mask in masks:
        steps = inpaint(
            WobblyModel(),
            SCHEDULE,
            x_known,
            mask,
            num_steps=5,
            resample=resample,
            prediction=prediction,
            generator=torch.Generator().manual_seed(1),
            progress=False,
        )
        final = last(steps)
        known = mask.expand_as(x_known).bool()
        torch.testing.assert_close(final[known], x_known[known], rtol=0, atol=0)
        assert not torch.allclose(final[~known], x_known[~known])  # the model filled the rest


def test_inpaint_with_everything_known_returns_x_known():
    x_known = _x0()
    final = last(
        inpaint(WobblyModel(), SCHEDULE, x_known, torch.ones(8, 8), num_steps=4, progress=False)
    )
    torch.testing.assert_close(final, x_known, rtol=0, atol=0)


def test_inpaint_with_nothing_known_is_ddim_sampling():
    x0 = _x0(seed=2)
    model = OracleModel(x0, SCHEDULE)
    steps = list(
        inpaint(
            model,
            SCHEDULE,
            _x0(seed=3),  # ignored: no pixel is known
            torch.zeros(8, 8),
            num_steps=6,
            eta=0.0,
            generator=torch.Generator().manual_seed(4),
            progress=False,
        )
    )
    x_T = torch.randn(x0.shape, generator=torch.Generator().manual_seed(4))
    plain = list(ddim_sample(model, SCHEDULE, x_T, num_steps=6, progress=False))
    assert [s.t for s in steps] == [s.t for s in plain]
    for ours, theirs in zip(steps, plain):
        torch.testing.assert_close(ours.xt, theirs.xt, rtol=0, atol=0)
    torch.testing.assert_close(steps[-1].xt, x0, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("resample", [1, 2])
def test_inpaint_with_an_oracle_fills_the_hole_with_its_x0(resample):
    x0 = _x0(seed=5)
    final = last(
        inpaint(
            OracleModel(x0, SCHEDULE, "v"),
            SCHEDULE,
            x0,
            make_mask("centre", 8, hole=4),
            num_steps=5,
            resample=resample,
            prediction="v",
            generator=torch.Generator().manual_seed(6),
            progress=False,
        )
    )
    torch.testing.assert_close(final, x0, rtol=1e-4, atol=1e-4)


def test_inpaint_counts_model_calls_with_resampling():
    model = Counting(WobblyModel())
    mask = make_mask("bottom", 8)
    steps = list(inpaint(model, SCHEDULE, _x0(), mask, num_steps=5, resample=3, progress=False))
    assert model.calls == 5 * 3 - (3 - 1)  # no resampling after the last step
    assert len(steps) == 5 and all(isinstance(s, SamplerStep) for s in steps)
    assert [s.t for s in steps] == SCHEDULE.timesteps(5).tolist()
    assert [int(t[0]) for _, t in model.inputs] == [49, 49, 49, 39, 39, 39, 29, 29, 29] + [
        19,
        19,
        19,
        9,
    ]


def test_renoise_is_the_forward_jump_of_q_sample():
    g = torch.Generator().manual_seed(7)
    x0, noise = _x0(), torch.randn(2, 1, 8, 8, generator=g)
    # from clean data (alpha_bar = 1) it is q_sample itself
    a_t = SCHEDULE.alpha_bar[30]
    torch.testing.assert_close(
        renoise(x0, a_t, 1.0, noise=noise), q_sample(x0, 30, SCHEDULE, noise)
    )
    # between two levels: keep sqrt(a_t / a_prev) of x_prev and add the missing variance, so
    # q(x_prev | x0) followed by the jump is q(x_t | x0): (a_t / a_prev)(1 - a_prev) + c^2 = 1 - a_t
    a_prev = SCHEDULE.alpha_bar[10]
    keep = renoise(torch.ones(1), a_t, a_prev, noise=torch.zeros(1))
    c = renoise(torch.zeros(1), a_t, a_prev, noise=torch.ones(1))
    torch.testing.assert_close(keep**2, (a_t / a_prev).reshape(1))
    torch.testing.assert_close((a_t / a_prev) * (1 - a_prev) + c**2, (1 - a_t).reshape(1))
    # and in distribution, over many draws
    x = torch.full((20000, 1), 0.5)
    jumped = renoise(
        q_sample(x, 10, SCHEDULE, generator=g),
        a_t,
        a_prev,
        noise=torch.randn(20000, 1, generator=g),
    )
    assert abs(jumped.mean() - 0.5 * a_t.sqrt()) < 0.03
    assert abs(jumped.var() - (1 - a_t)) < 0.04
    with pytest.raises(ValueError, match="goes forward"):
        renoise(x0, a_prev, a_t, noise=noise)  # levels swapped: that would remove noise


def test_inpaint_rejects_bad_masks_and_settings():
    x_known = _x0(n=3)

    def run(mask, **kw):
        return list(
            inpaint(WobblyModel(), SCHEDULE, x_known, mask, num_steps=2, progress=False, **kw)
        )

    with pytest.raises(ValueError, match="only 0 and 1"):
        run(torch.full((8, 8), 0.5))
    with pytest.raises(TypeError, match="bool or float"):
        run(torch.ones(8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="does not broadcast"):
        run(torch.ones(3, 3))
    with pytest.raises(ValueError, match="does not broadcast"):
        run(torch.ones(2, 1, 8, 8))  # batch 2 for 3 images
    with pytest.raises(ValueError, match="resample must be an int >= 1"):
        run(torch.ones(8, 8), resample=0)


# ----- SDEdit -----
def test_sdedit_with_strength_zero_returns_the_input():
    x_input = _x0()
    model = Counting(WobblyModel())
    steps = list(sdedit(model, SCHEDULE, x_input, strength=0.0, progress=False))
    assert len(steps) == 1 and steps[0].t == -1 and steps[0].xt is x_input
    assert model.calls == 0
    assert last(sdedit(model, SCHEDULE, x_input, strength=0.0, progress=False)) is x_input


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_sdedit_with_an_x0_oracle_ends_at_the_target(eta):
    target = _x0(seed=8)
    final = last(
        sdedit(
            TargetModel(target),
            SCHEDULE,
            _x0(seed=9),
            strength=0.6,
            num_steps=10,
            eta=eta,
            prediction="x0",
            generator=torch.Generator().manual_seed(10),
            progress=False,
        )
    )
    torch.testing.assert_close(final, target, rtol=1e-5, atol=1e-5)


def test_sdedit_grid_starts_at_t_start_and_noises_the_input_there():
    T = len(SCHEDULE)
    for strength in (0.02, 0.3, 0.5, 0.62, 1.0):
        grid = sdedit_timesteps(SCHEDULE, strength, num_steps=10)
        assert int(grid[0]) == round(strength * T) - 1
        assert len(grid) == min(max(1, round(10 * strength)), round(strength * T))
        assert (grid[:-1] > grid[1:]).all() and int(grid[-1]) >= 0
    torch.testing.assert_close(sdedit_timesteps(SCHEDULE, 1.0, 7), SCHEDULE.timesteps(7))
    assert len(sdedit_timesteps(SCHEDULE, 0.0)) == len(sdedit_timesteps(SCHEDULE, 0.009)) == 0
    # the run: the first model input is q_sample(x_input, t_start, noise)
    x_input, noise = _x0(), torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(11))
    model = Counting(WobblyModel())
    steps = list(
        sdedit(model, SCHEDULE, x_input, strength=0.5, num_steps=8, noise=noise, progress=False)
    )
    grid = sdedit_timesteps(SCHEDULE, 0.5, 8).tolist()
    assert [s.t for s in steps] == grid and grid[0] == 24 and model.calls == len(grid) == 4
    xt, t = model.inputs[0]
    torch.testing.assert_close(xt, q_sample(x_input, 24, SCHEDULE, noise))
    assert (t == 24).all()


@pytest.mark.parametrize("strength", [-0.1, 1.5])
def test_sdedit_rejects_strength_outside_0_1(strength):
    with pytest.raises(ValueError, match=r"strength must lie in \[0, 1\]"):
        list(sdedit(WobblyModel(), SCHEDULE, _x0(), strength=strength, progress=False))


# ----- super-resolution -----
def test_downsample_and_upsample():
    x = _x0(size=8)
    low = downsample(x, 4)
    assert low.shape == (2, 1, 2, 2)
    torch.testing.assert_close(low[0, 0, 0, 0], x[0, 0, :4, :4].mean())
    with pytest.raises(ValueError, match="not divisible by factor 3"):
        downsample(x, 3)
    for mode in ("bicubic", "bilinear", "nearest"):
        up = upsample(low, 8, mode=mode)
        assert up.shape == x.shape and up.abs().max() <= 1
        constant = upsample(torch.full((1, 1, 2, 2), 0.3), 8, mode=mode)
        torch.testing.assert_close(constant, torch.full((1, 1, 8, 8), 0.3))
    torch.testing.assert_close(blocky(x, 4), low.repeat_interleave(4, -1).repeat_interleave(4, -2))
    assert upsample(torch.tensor([[[[-1.0, 1.0], [1.0, -1.0]]]]), 8).abs().max() <= 1  # clamped
    with pytest.raises(ValueError, match="allowed: 'bicubic'"):
        upsample(low, 8, mode="area")


def test_psnr_closed_form():
    a = _x0()
    b = a + torch.tensor([0.1, 0.2]).reshape(2, 1, 1, 1)
    expected = torch.tensor([10 * math.log10(4 / 0.01), 10 * math.log10(4 / 0.04)])
    torch.testing.assert_close(psnr(a, b), expected)
    assert psnr(a, a).isinf().all()


def _tiny_sr(**kw):
    config = dict(image_size=8, low_res=2, channels=(8, 16), attention=False)
    return SuperResolutionUNet(**{**config, **kw})


def test_super_resolution_unet_shapes_errors_and_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = _tiny_sr()
    nn.init.normal_(model.unet.conv_out.weight, std=0.1)  # zero-initialised: make it say something
    xt, low = torch.randn(3, 1, 8, 8), torch.rand(3, 1, 2, 2) * 2 - 1
    out = model(xt, torch.tensor([1, 5, 9]), cond=low)
    assert out.shape == xt.shape and model.input_shape == (1, 8, 8)
    assert model.num_parameters() == sum(p.numel() for p in model.parameters()) > 0
    with pytest.raises(ValueError, match="needs cond"):
        model(xt, 1)
    with pytest.raises(ValueError, match=r"cond must be low-resolution images \(B=3, 1, 2, 2\)"):
        model(xt, 1, cond=torch.zeros(3, 1, 4, 4))
    path = save_checkpoint(tmp_path / "sr.pt", model)
    loaded = SuperResolutionUNet(**model.config)  # the config holds every constructor argument
    assert load_checkpoint(path, loaded)["config"]["class"] == "SuperResolutionUNet"
    torch.testing.assert_close(loaded(xt, torch.tensor([1, 5, 9]), cond=low), out)
    with pytest.raises(ValueError, match="another model"):
        load_checkpoint(path, _tiny_sr(low_res=4))


def test_super_resolution_unet_trains_and_samples():
    torch.manual_seed(0)
    model, x0 = _tiny_sr(), _x0(n=8)
    records = list(
        train(
            model,
            x0,
            SCHEDULE,
            cond=downsample(x0, 4),
            num_steps=2,
            batch_size=4,
            generator=torch.Generator().manual_seed(0),
            progress=False,
        )
    )
    assert len(records) == 2 and all(math.isfinite(r.loss) for r in records)
    low = downsample(x0[:2], 4)
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    images = sample(model.eval(), SCHEDULE, x_T, cond=low, num_steps=2, progress=False)
    assert images.shape == (2, 1, 8, 8) and images.isfinite().all()


# ----- SDEdit inputs -----
def test_draw_strokes_puts_ink_on_the_stroke_only():
    image = draw_strokes([[(0.2, 0.5), (0.8, 0.5)]], size=28, width=2.5)
    assert image.shape == (1, 1, 28, 28) and image.min() >= -1 and image.max() <= 1
    assert (image[0, 0, 13:15, 8:20] == 1).all()  # pixel centres 0.5 px from the line
    assert (image[0, 0, :11] == -1).all() and (image[0, 0, 17:] == -1).all()
    assert ((image > -1) & (image < 1)).any()  # antialiased edges
    dot = draw_strokes([[(0.5, 0.5)]], size=28, width=3.0)
    assert (dot[0, 0, 13:15, 13:15] == 1).all() and (dot > -1).sum() < 20


def test_paint_stroke_changes_a_copy_near_the_stroke_only():
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(12)) * 2 - 1
    before = image.clone()
    painted = paint_stroke(image, [(0.1, 0.5), (0.9, 0.5)], (1.0, -1.0, 0.5), width=3.0)
    assert torch.equal(image, before)  # the original is untouched
    colour = torch.tensor([1.0, -1.0, 0.5]).reshape(3, 1)
    torch.testing.assert_close(painted[:, 7:9, 3:13], colour.unsqueeze(-1).expand(3, 2, 10))
    far = torch.ones(16, dtype=torch.bool)
    far[5:11] = False  # rows whose centres lie within width / 2 + 0.5 = 2 px of y = 8
    torch.testing.assert_close(painted[:, far], image[:, far], rtol=0, atol=0)
    batch = paint_stroke(image[None].repeat(2, 1, 1, 1), [(0.1, 0.5), (0.9, 0.5)], 0.0)
    assert batch.shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="colour must be 1 or 3 values"):
        paint_stroke(image, [(0.1, 0.5)], (1.0, 0.0))


def test_sketches_are_centred_mnist_style_digits():
    assert set(SKETCHES) == {"seven", "four", "zero"}
    centres = torch.arange(28.0) + 0.5
    for name, strokes in SKETCHES.items():
        ink = (draw_strokes(strokes)[0, 0] + 1) / 2  # (28, 28) in [0, 1]
        for axis in (0, 1):  # axis 0: columns (x), axis 1: rows (y)
            profile = ink.sum(axis)  # ink per column or per row
            inked = profile.nonzero().flatten()
            assert inked.max() - inked.min() < 21, name  # fits a 20 x 20 box (+ soft edges)
            mass_centre = (profile * centres).sum() / profile.sum()
            assert abs(mass_centre - 14) < 1.5, name  # centred by mass, as in MNIST
        assert 60 < ink.sum() < 150, name  # as much ink as an MNIST digit
