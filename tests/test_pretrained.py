import pytest
import torch

from diffusion_lab.metrics import digit_report, guidance_report
from diffusion_lab.pretrained import RECIPES, load_pretrained
from diffusion_lab.samplers import ddim_sample, last, sample

# measured for the bundled weights: 87% of 300 samples confident with 20 DDIM steps;
# 64 samples vary by about +-5 points, so 60% leaves room while still failing for a broken model
CONFIDENT_AT_LEAST = 0.6
# measured for the bundled weights with these exact calls: 40/40 digits right and 32/32 prompts
# entirely right (benchmarks: 100% and 98% at w = 3 on 500 and 300); the bounds leave room for
# another torch build's numerics while still failing for a broken or untrained model
CLASS_ACCURACY_AT_LEAST = 0.9
TEXT_ALL_AT_LEAST = 0.8


def test_bundled_digit_model_makes_digits_the_classifier_recognises():
    bundle = load_pretrained("digits")
    assert bundle.prediction == RECIPES["digits"]["prediction"]
    assert len(bundle.schedule) == 1000 and not bundle.model.training
    assert bundle.info["num_steps"] > 0 and "hardware" in bundle.info
    x_T = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    images = last(
        ddim_sample(
            bundle.model,
            bundle.schedule,
            x_T,
            num_steps=20,
            prediction=bundle.prediction,
            progress=False,
        )
    )
    report = digit_report(images)
    assert report.confident >= CONFIDENT_AT_LEAST, str(report)
    assert sum(share > 0 for share in report.class_shares) >= 9, str(report)


def test_unknown_pretrained_name_lists_the_available_ones():
    with pytest.raises(ValueError, match="unknown pretrained model 'cats'; available: digits"):
        load_pretrained("cats")


def _guided_samples(bundle, cond, shape):
    """10 steps of DPM-Solver++(2M) with guidance 3 from fixed noise."""
    x_T = torch.randn(len(cond), *shape, generator=torch.Generator().manual_seed(0))
    return sample(
        bundle.model,
        bundle.schedule,
        x_T,
        sampler="dpm_solver",
        num_steps=10,
        prediction=bundle.prediction,
        cond=cond,
        guidance_scale=3.0,
        progress=False,
    )


def test_bundled_class_conditional_model_draws_the_digit_asked_for():
    bundle = load_pretrained("digits_cond")
    assert bundle.model.label_emb.null_label == 10 and bundle.tokenizer is None
    asked = torch.arange(10).repeat_interleave(4)
    report = guidance_report(_guided_samples(bundle, asked, (1, 28, 28)), asked)
    assert report.accuracy >= CLASS_ACCURACY_AT_LEAST, str(report)


def test_bundled_text_model_follows_its_prompts():
    from diffusion_lab.captions import adherence, all_combinations, caption

    bundle = load_pretrained("text_digits")
    combos = all_combinations("seen")[::9]  # 32 prompts spread over the seen combinations
    tokens = bundle.tokenizer.encode([caption(*c) for c in combos])
    digits, colours, sizes, places = zip(*combos)
    images = _guided_samples(bundle, tokens, (3, 32, 32))
    scores = adherence(images, torch.tensor(digits), colours, sizes, places)
    assert scores["colour"] >= 0.9 and scores["place"] >= 0.9, scores
    assert scores["all"] >= TEXT_ALL_AT_LEAST, scores


def test_bundled_super_resolution_model_beats_bicubic_on_held_out_digits():
    from diffusion_lab import load_mnist
    from diffusion_lab.applications import downsample, psnr, upsample
    from diffusion_lab.metrics import load_classifier
    from diffusion_lab.pretrained import HELD_OUT_DIGITS

    bundle = load_pretrained("digits_sr")
    assert type(bundle.model).__name__ == "SuperResolutionUNet" and not bundle.model.training
    x, labels = load_mnist()
    truth, labels = x[-HELD_OUT_DIGITS:][:32], labels[-HELD_OUT_DIGITS:][:32]
    low = downsample(truth, 4)
    x_T = torch.randn(32, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    drawn = sample(bundle.model, bundle.schedule, x_T, sampler="ddim", num_steps=10,
                   prediction=bundle.prediction, cond=low, progress=False)  # fmt: skip
    # measured with the lesson's 50 steps on 100 digits: 21.2 dB against bicubic's 14.5 dB and
    # 94% confidently classified; an untrained or broken model lands near or below bicubic
    assert psnr(drawn, truth).mean() > psnr(upsample(low, 28), truth).mean() + 3
    read = load_classifier()(drawn).argmax(1)
    assert (read == labels).float().mean() >= 0.8


def test_bundled_cat_model_runs_on_the_whole_photo_and_fills_a_hole():
    from diffusion_lab import load_cat
    from diffusion_lab.applications import inpaint, make_mask

    with pytest.raises(ValueError, match="image_size= is for plain U-Nets"):
        load_pretrained("digits_sr", image_size=56)
    bundle = load_pretrained("cat", image_size=64)
    assert bundle.model.input_shape == (3, 64, 64)
    cat = load_cat(64)[None]
    hole = make_mask("box", 64, box=(14, 10, 16, 18))  # the left eye
    filled = last(inpaint(bundle.model, bundle.schedule, cat, hole, num_steps=10,
                          prediction=bundle.prediction, generator=torch.Generator().manual_seed(0),
                          progress=False))  # fmt: skip
    assert torch.equal(filled[hole.expand_as(cat) == 1], cat[hole.expand_as(cat) == 1])
    inside = hole.expand_as(cat) == 0
    error = (filled - cat)[inside].pow(2).mean().sqrt()
    # the model has seen every window of this photo, so it fills the eye back in: measured RMS
    # error 0.13 inside the hole, against 0.36 for the hole filled with the photo's mean colour
    baseline = (cat.mean((2, 3), keepdim=True).expand_as(cat) - cat)[inside].pow(2).mean().sqrt()
    assert error < 0.6 * baseline, (error, baseline)


def test_bundled_sound_model_makes_notes_not_noise():
    from diffusion_lab.beyond import spectral_flatness

    bundle = load_pretrained("sounds")
    assert type(bundle.model).__name__ == "UNet1d" and bundle.model.input_shape == (1, 1024)
    x_T = torch.randn(8, 1, 1024, generator=torch.Generator().manual_seed(0))
    waves = sample(bundle.model, bundle.schedule, x_T, prediction=bundle.prediction,
                   num_steps=20, progress=False)  # fmt: skip
    # measured with these calls: median flatness 0.0039 (the training sounds about
    # 0.0000, white noise 0.56; an untrained model returns noise-like waves)
    assert spectral_flatness(waves.flatten(1)).median() < 0.05
    assert spectral_flatness(x_T.flatten(1)).median() > 0.5  # the check can fail


def test_bundled_clip_model_moves_its_frames_together():
    from diffusion_lab.beyond import channels_to_clips, motion_consistency, moving_digit_clips

    bundle = load_pretrained("clips")
    assert bundle.model.input_shape == (8, 28, 28)  # 8 frames stacked as channels
    g = torch.Generator().manual_seed(0)
    x = sample(bundle.model, bundle.schedule, torch.randn(8, 8, 28, 28, generator=g),
               prediction=bundle.prediction, num_steps=20, progress=False)  # fmt: skip
    made = motion_consistency(channels_to_clips(x))["correlation"]
    real = moving_digit_clips(64, generator=g)
    mixed = real[torch.randperm(64, generator=g).reshape(8, 8), torch.arange(8)]
    shuffled = motion_consistency(mixed)["correlation"]
    # measured with these calls: 0.665 against 0.331 for frames of different real clips
    assert made > shuffled + 0.15, (made, shuffled)


def test_train_pretrained_passes_the_recipe_to_train(monkeypatch):
    """A two-step run of a tiny recipe: its timestep density and precision reach `train`, and
    the weights it would bundle are stored in float16 with the network's configuration."""
    from diffusion_lab import pretrained

    tiny = dict(
        model=dict(in_channels=1, image_size=28, channels=(8, 16), attention=False),
        schedule="cosine", prediction="v", num_steps=2, batch_size=4, lr=1e-3, ema_decay=0.9,
        logit_normal=(0.5, 1.0), mixed_precision="bf16",
    )  # fmt: skip
    monkeypatch.setitem(RECIPES, "tiny", tiny)
    seen, saved, real_train = {}, {}, pretrained.train

    def spy_train(*args, **kwargs):
        seen.update(kwargs)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(pretrained, "train", spy_train)
    monkeypatch.setattr(pretrained, "save_bundled", lambda name, payload, **info: saved.update(
        name=name, payload=payload, info=info))  # fmt: skip
    monkeypatch.setattr(pretrained, "load_pretrained", lambda name: name)
    assert pretrained.train_pretrained("tiny") == "tiny"
    assert seen["logit_normal"] == (0.5, 1.0) and seen["mixed_precision"] == "bf16"
    assert seen["num_steps"] == 2 and seen["batch_size"] == 4 and seen["prediction"] == "v"
    assert saved["name"] == "tiny.pt" and saved["info"]["num_steps"] == 2
    assert saved["info"]["precision"] == "bfloat16 autocast"  # recorded in weights.json
    weights = saved["payload"]["model"]
    assert all(w.dtype == torch.float16 for w in weights.values())
    assert saved["payload"]["config"]["channels"] == [8, 16]
