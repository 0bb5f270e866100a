import pytest
import torch

from diffusion_lab.metrics import digit_report
from diffusion_lab.pretrained import RECIPES, load_pretrained
from diffusion_lab.samplers import ddim_sample, last

# measured for the bundled weights: about 82% of 300 samples confident with 20 DDIM steps;
# 64 samples vary by about +-5 points, so 60% leaves room while still failing for a broken model
CONFIDENT_AT_LEAST = 0.6


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
