"""Headless widget tests: moving a slider in Python must re-render the image."""

import io

import matplotlib.image as mpimg
import pytest
import torch

from diffusion_lab.data import load_cat, load_mnist
from diffusion_lab.forward import q_sample
from diffusion_lab.schedules import NoiseSchedule
from diffusion_lab.viz import grid_array

widgets = pytest.importorskip("diffusion_lab.widgets")


def _decode(png: bytes):
    return mpimg.imread(io.BytesIO(png), format="png")


def test_timestep_explorer_updates_on_slider_move():
    x0 = load_mnist()[0][:8]
    schedule = NoiseSchedule.linear()
    explorer = widgets.TimestepExplorer(x0, schedule, nrow=4, scale=1)
    first = explorer.image.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    assert "t = 0" in explorer.info.value
    explorer.slider.value = 700
    assert explorer.image.value != first
    assert "t = 700" in explorer.info.value
    assert f"{schedule.alpha_bar[700].item():.4f}" in explorer.info.value
    # the picture is exactly x_t with the widget's fixed noise
    expected = grid_array(q_sample(x0, torch.full((8,), 700), schedule, explorer.noise), nrow=4)
    decoded = _decode(explorer.image.value)
    assert abs(decoded * 255 - expected).max() <= 1
    # moving back reproduces the first frame (fixed noise, no RNG drawn)
    explorer.slider.value = 0
    assert explorer.image.value == first


def test_timestep_explorer_with_one_rgb_image_and_given_noise():
    cat = load_cat(32)
    noise = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    explorer = widgets.TimestepExplorer(cat, NoiseSchedule.cosine(), noise=noise, t=999)
    assert _decode(explorer.image.value).shape[2] == 3
    torch.testing.assert_close(
        explorer.xt(999), q_sample(cat[None], 999, NoiseSchedule.cosine(), noise)
    )


def test_timestep_explorer_rejects_bad_input():
    schedule = NoiseSchedule.linear()
    with pytest.raises(ValueError, match=r"must lie in \[-1, 1\]"):
        widgets.TimestepExplorer(torch.full((1, 1, 8, 8), 255.0), schedule)
    with pytest.raises(ValueError, match="timestep out of range"):
        widgets.TimestepExplorer(torch.zeros(1, 1, 8, 8), schedule, t=1000)
    with pytest.raises(ValueError, match="noise has shape"):
        widgets.TimestepExplorer(torch.zeros(1, 1, 8, 8), schedule, noise=torch.zeros(1, 1, 4, 4))


def test_schedule_comparison_updates_on_slider_and_dropdowns():
    x0 = load_mnist()[0][:4]
    comparison = widgets.ScheduleComparison(x0, t=100)
    left, right, curves = (
        comparison.images[0].value,
        comparison.images[1].value,
        comparison.curves.value,
    )
    assert left != right  # linear and cosine differ at t=100
    comparison.slider.value = 600
    assert comparison.images[0].value != left and comparison.curves.value != curves
    assert "linear" in comparison.labels[0].value
    comparison.right.value = "sigmoid"
    assert "sigmoid" in comparison.labels[1].value
    assert comparison.images[1].value == comparison.frame("sigmoid", 600)
    comparison.left.value = "sigmoid"  # the same schedule on both sides gives the same picture
    assert comparison.images[0].value == comparison.images[1].value


def test_schedule_comparison_needs_equal_lengths():
    with pytest.raises(ValueError, match="same T"):
        widgets.ScheduleComparison(
            torch.zeros(1, 1, 8, 8), {"a": NoiseSchedule.linear(10), "b": NoiseSchedule.linear(20)}
        )


def test_frame_slider_swaps_precomputed_frames():
    frames = [torch.full((2, 1, 4, 4), v) for v in (-1.0, 0.0, 1.0)]
    slider = widgets.FrameSlider(frames, ["start", "middle", "end"], scale=1)
    assert slider.image.value == slider.pngs[0] and slider.info.value == "start"
    slider.slider.value = 2
    assert slider.image.value == slider.pngs[2] != slider.pngs[0]
    assert slider.info.value == "end"
    assert _decode(slider.image.value).max() == 1.0
    one_image = widgets.FrameSlider([torch.zeros(3, 4, 4), torch.ones(3, 4, 4)])
    assert one_image.slider.max == 1
    with pytest.raises(ValueError, match="2 frames but 1 labels"):
        widgets.FrameSlider(frames[:2], ["a"])
    with pytest.raises(ValueError, match="same shape"):
        widgets.FrameSlider([torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 5, 5)])


def test_reverse_walkthrough_shows_xt_beside_the_x0_guess_and_names_the_stage():
    from diffusion_lab.samplers import Trajectory, ddpm_sample

    from .fakes import OracleModel

    x0 = load_mnist()[0][:4]
    schedule = NoiseSchedule.cosine(100)
    x_T = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    steps = ddpm_sample(
        OracleModel(x0, schedule), schedule, x_T, generator=torch.Generator(), progress=False
    )
    walk = widgets.ReverseWalkthrough(Trajectory.record(steps, x_T, every=5), nrow=4, scale=1)
    assert walk.slider.max == 20 and "pure noise" in walk.info.value and "t = 99" in walk.info.value
    left_right = _decode(walk.image.value)
    assert left_right.shape[1] == 2 * grid_array(x0, nrow=4).shape[1] + 8  # two grids and a gap
    first = walk.image.value
    walk.slider.value = 20
    assert walk.image.value != first and walk.image.value == walk.frame(20)
    assert "clear image" in walk.info.value and "finished" in walk.info.value
    final = _decode(walk.image.value)[:, : grid_array(x0, nrow=4).shape[1]]
    expected = grid_array(x0, nrow=4) / 255
    assert abs(final - expected).max() < 0.01  # the oracle's run ends on the digits
    with pytest.raises(TypeError, match="give a Trajectory"):
        widgets.ReverseWalkthrough(x0)


def test_guidance_explorer_moves_between_scales_and_classes_headless():
    # 3 scales x 2 classes x 4 samples; each (scale, class) a distinct constant grey
    values = torch.linspace(-1, 1, 6).view(3, 2, 1, 1, 1, 1)
    images = values.expand(3, 2, 4, 1, 4, 4).clone()
    read = torch.tensor([[[0, 0, 1, 1], [1, 1, 1, 1]]] * 3)  # class 0: 2 of 4 read right
    notes = ["variety 30", "variety 25", "variety 20"]
    explorer = widgets.GuidanceExplorer(
        images, [0, 1, 3], read=read, notes=notes, per_row=2, scale=1
    )
    assert explorer.picker.value == -1  # starts on "all classes"
    all_view = grid_array(images[0, :, :2].flatten(0, 1), nrow=2)  # 2 per class on show
    assert _decode(explorer.image.value).shape[:2] == all_view.shape[:2]
    assert "4 of these 4" in explorer.info.value and "w = 0" in explorer.info.value
    assert "variety 30" in explorer.info.value
    explorer.picker.value = 0
    assert "2 of these 4" in explorer.info.value
    explorer.slider.value = 3.0
    assert explorer.image.value == explorer.frame(3.0, 0) and "variety 20" in explorer.info.value
    shown = _decode(explorer.image.value)  # the grid of scale 3, class 0: value 1/3 as grey
    inner = shown[2:6, 2:6]  # first image, inside the padding (grey PNG: 2-D)
    assert abs(inner.mean() - (values[2, 0].item() + 1) / 2) < 0.01
    assert explorer.frame(3.0, 0) is explorer.frame(3.0, 0)  # encoded once, then cached
    with pytest.raises(ValueError, match="S scales, K classes"):
        widgets.GuidanceExplorer(images[0], [0, 1])
    with pytest.raises(ValueError, match="3 groups of images but 2"):
        widgets.GuidanceExplorer(images, [0, 1])
    with pytest.raises(ValueError, match="read must have shape"):
        widgets.GuidanceExplorer(images, [0, 1, 3], read=read[:, :1])
    with pytest.raises(ValueError, match="one note per guidance scale"):
        widgets.GuidanceExplorer(images, [0, 1, 3], notes=notes[:2])


def test_prompt_explorer_draws_caches_and_reports_unknown_words():
    from torch import nn

    from diffusion_lab.models import TextConditionedUNet, UNet
    from diffusion_lab.models.text import TextEncoder, Tokenizer

    torch.manual_seed(0)
    tokenizer = Tokenizer(["a", "red", "blue", "7"], max_length=5)
    unet = UNet(3, image_size=8, channels=(8, 16), context_dim=16)
    for m in unet.modules():  # switch the cross-attention on, so the words matter
        if type(m).__name__ == "CrossAttention":
            nn.init.normal_(m.attn.out_proj.weight, std=0.5)
    nn.init.normal_(unet.conv_out.weight, std=0.1)
    model = TextConditionedUNet(unet, TextEncoder(tokenizer.vocab_size, max_length=5, dim=16))
    explorer = widgets.PromptExplorer(
        model.eval(), NoiseSchedule.cosine(50), tokenizer, prompt="a red 7", n=4, num_steps=3,
        scales=(1.0, 3.0), guidance_scale=3.0, scale=1,
    )  # fmt: skip
    red = explorer.image.value
    assert red and "a red 7" in explorer.info.value and "w = 3" in explorer.info.value
    assert _decode(red).shape[:2] == grid_array(torch.zeros(4, 3, 8, 8), nrow=8).shape[:2]
    explorer.text.value = "a blue 7"  # setting the text draws (Enter in the browser)
    assert explorer.image.value != red  # other words, same noises: other images
    assert len(explorer._cache) == 2
    explorer.text.value = "A  red 7"  # the same prompt: served from the cache
    explorer.generate()
    assert explorer.image.value == red and len(explorer._cache) == 2
    explorer.text.value = "a green 7"
    explorer.generate()
    assert "cannot draw" in explorer.info.value and "green" in explorer.info.value
    assert explorer.image.value == red  # the last good picture stays
    explorer.text.value = "a red 7"
    explorer.guidance.value = 1.0  # moving the slider draws at the new scale
    assert "w = 1" in explorer.info.value and len(explorer._cache) == 3
    explorer.text.value = ""
    assert "empty prompt" in explorer.info.value
    with pytest.raises(ValueError, match="must be one of scales"):
        widgets.PromptExplorer(model, NoiseSchedule.cosine(50), tokenizer, guidance_scale=4.0)


def test_inpainting_explorer_switches_masks_headless():
    originals = torch.full((2, 1, 4, 4), -1.0)
    left = torch.ones(1, 1, 4, 4)
    left[..., :2] = 0  # the left half hidden
    masks = {"left": left, "none": torch.ones(1, 1, 4, 4)}
    completions = {"left": torch.full((2, 3, 1, 4, 4), 1.0), "none": torch.zeros(2, 3, 1, 4, 4)}
    explorer = widgets.InpaintingExplorer(originals, masks, completions, notes={"left": "73%"},
                                          scale=1)  # fmt: skip
    assert explorer.picker.value == "left" and "73%" in explorer.info.value
    shown = _decode(explorer.image.value)  # 2 rows of 1 + 1 + 3 images, RGB
    assert shown.shape[:2] == grid_array(torch.zeros(10, 3, 4, 4), nrow=5).shape[:2]
    given = shown[2:6, 8:12]  # row 1, image 2: what the model was given, hole in red
    assert given[:, :2, 0].min() > 0.99 and given[:, :2, 1].max() < 0.01  # hidden: red
    assert given[:, 2:].max() < 0.01  # known pixels: the original (black)
    assert shown[2:6, 14:18].min() > 0.99  # first completion: white
    explorer.picker.value = "none"
    assert explorer.image.value == explorer.frame("none") and "none" in explorer.info.value
    assert _decode(explorer.image.value)[2:6, 14:18].max() < 0.51  # completion 0 -> mid grey
    with pytest.raises(ValueError, match="one set of completions per mask"):
        widgets.InpaintingExplorer(originals, masks, {"left": completions["left"]})
    with pytest.raises(ValueError, match=r"must be \(N=2, K"):
        widgets.InpaintingExplorer(originals, masks, {k: v[0] for k, v in completions.items()})
