import pytest
import torch

import diffusion_lab.weights as weights
from diffusion_lab.data import load_mnist
from diffusion_lab.metrics import (
    digit_report,
    frechet_distance,
    guidance_report,
    load_classifier,
    real_guidance_report,
    reference_report,
    within_class_distance,
)


def test_frechet_distance_closed_forms():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 3, generator=g, dtype=torch.float64)
    assert abs(frechet_distance(a, a)) < 1e-6
    shift = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    assert frechet_distance(a, a + shift) == pytest.approx(5.25, rel=1e-6)  # |shift|^2
    # 1-D: N(m, v) vs N(2m, 4v) gives m^2 + v + 4v - 2 * 2v = m^2 + v
    x = torch.randn(1000, 1, generator=g, dtype=torch.float64) + 1.0
    mean, var = x.mean().item(), x.var().item()
    assert frechet_distance(x, 2 * x) == pytest.approx(mean**2 + var, rel=1e-6)
    assert frechet_distance(a, 2 * a) == pytest.approx(frechet_distance(2 * a, a), rel=1e-6)
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_distance(a[:1], a)


def test_bundled_classifier_recognises_held_out_digits():
    x, y = load_mnist()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    held_out = order[:1000]  # train_classifier(seed=0) never trained on these
    with torch.no_grad():
        accuracy = (load_classifier()(x[held_out]).argmax(1) == y[held_out]).float().mean()
    assert accuracy > 0.97


def test_report_separates_real_digits_from_noise():
    real = reference_report(500)
    assert real.confident > 0.95
    assert all(0.07 < s < 0.14 for s in real.class_shares)
    noise = digit_report(torch.rand(500, 1, 28, 28, generator=torch.Generator()) * 2 - 1)
    assert noise.frechet > 10 * real.frechet
    blurred = torch.nn.functional.avg_pool2d(load_mnist()[0][:500], 3, 1, 1)
    assert real.frechet < digit_report(blurred).frechet < noise.frechet  # ordered by damage
    assert "Frechet distance" in str(real)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        digit_report(torch.zeros(4, 3, 28, 28))


def test_damaged_weights_are_refused(tmp_path, monkeypatch):
    manifest = weights._manifest()
    (tmp_path / "digit_classifier.pt").write_bytes(b"not the weights")
    (tmp_path / "weights.json").write_text(__import__("json").dumps(manifest))
    monkeypatch.setattr(weights, "ASSETS", tmp_path)
    monkeypatch.setattr(weights, "MANIFEST", tmp_path / "weights.json")
    with pytest.raises(OSError, match="digit_classifier.pt is damaged"):
        weights.load_bundled("digit_classifier.pt")
    with pytest.raises(FileNotFoundError, match="no bundled weights named 'cat.pt'"):
        weights.load_bundled("cat.pt")


def test_paired_and_pairwise_distances_on_known_cases():
    from diffusion_lab.metrics import mean_pairwise_distance, paired_distance

    a = torch.zeros(3, 1, 2, 2)
    b = torch.ones(3, 1, 2, 2)
    assert paired_distance(a, b) == pytest.approx(2.0)  # sqrt(4 pixels * 1)
    assert paired_distance(a, a) == 0
    assert mean_pairwise_distance(a) == 0  # copies: no variety
    pair = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 3.0)])
    assert mean_pairwise_distance(pair) == pytest.approx(6.0)
    trio = torch.tensor([[0.0], [3.0], [5.0]]).view(3, 1, 1, 1)
    assert mean_pairwise_distance(trio) == pytest.approx((3 + 5 + 2) / 3)
    with pytest.raises(ValueError, match="differ in shape"):
        paired_distance(a, b[:2])
    with pytest.raises(ValueError, match="at least 2 images"):
        mean_pairwise_distance(a[:1])


def test_guidance_report_on_real_digits_and_on_wrong_labels():
    x0, labels = load_mnist()
    x0, labels = x0[:300], labels[:300]
    real = guidance_report(x0, labels)
    assert real.accuracy > 0.97 and real.n == 300 and real.read.shape == (300,)
    wrong = guidance_report(x0, (labels + 1) % 10)
    assert wrong.accuracy < 0.03  # asked for the next digit: almost never right
    copies = x0[:1].expand(20, -1, -1, -1)
    copied = guidance_report(copies, torch.zeros(20, dtype=torch.long))
    assert copied.variety == 0 and copied.pixel_variety == 0
    assert "accuracy" in str(real)
    with pytest.raises(ValueError, match="asked must have shape"):
        guidance_report(x0, labels[:5])


def test_real_reference_draws_per_class_and_depends_on_the_seed():
    a, b = real_guidance_report(5, seed=0), real_guidance_report(5, seed=1)
    assert a.n == 50 and torch.bincount(a.read, minlength=10).min() >= 3
    assert a.accuracy > 0.9 and a.frechet != b.frechet
    assert real_guidance_report(5, seed=0).frechet == a.frechet


def test_within_class_distance_averages_classes_and_skips_singletons():
    a = torch.zeros(3, 1, 2, 2)
    b = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])  # distance 2 apart
    images = torch.cat([a, b, torch.ones(1, 1, 2, 2)])
    labels = torch.tensor([0, 0, 0, 1, 1, 2])  # class 2 has one image: skipped
    assert within_class_distance(images, labels) == pytest.approx((0 + 2) / 2)
    with pytest.raises(ValueError, match="2 or more"):
        within_class_distance(images[:1], labels[:1])
