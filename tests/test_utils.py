import io
import random

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

from diffusion_lab.utils import (
    append_dims,
    eval_mode,
    get_device,
    png_bytes,
    randn,
    seed_everything,
)


def test_get_device_returns_a_usable_device():
    device = get_device()
    assert isinstance(device, torch.device)
    assert torch.zeros(1, device=device).device.type == device.type


def test_seed_everything_seeds_all_rngs_and_returns_generator():
    g = seed_everything(7)
    a = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=g).item())
    g = seed_everything(7)
    b = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=g).item())
    assert a == b
    assert isinstance(g, torch.Generator)
    with pytest.raises(TypeError, match="seed must be an int"):
        seed_everything(1.5)


def test_append_dims_broadcasts_and_rejects_too_many_dims():
    a = torch.arange(3.0)
    assert append_dims(a, 4).shape == (3, 1, 1, 1)
    x = torch.ones(3, 2, 5, 5)
    assert (append_dims(a, x.ndim) * x)[2].eq(2).all()
    with pytest.raises(ValueError, match="fewer"):
        append_dims(torch.ones(2, 2), 1)


def test_randn_is_device_independent_given_a_cpu_generator():
    a = randn((4, 3), generator=torch.Generator().manual_seed(0))
    b = torch.randn((4, 3), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b)


def test_eval_mode_restores_previous_mode():
    model = torch.nn.Dropout()
    model.train()
    with eval_mode(model):
        assert not model.training
    assert model.training
    model.eval()
    with eval_mode(model):
        pass
    assert not model.training


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (5, 7, 3)])
def test_png_bytes_round_trips_through_a_real_decoder(shape):
    image = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    decoded = mpimg.imread(io.BytesIO(png_bytes(image)), format="png")
    decoded = np.round(decoded * 255).astype(np.uint8)
    expected = image[:, :, 0] if shape[-1] == 1 else image
    np.testing.assert_array_equal(decoded.reshape(expected.shape), expected)


def test_png_bytes_rejects_bad_input():
    with pytest.raises(TypeError, match="uint8"):
        png_bytes(np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        png_bytes(np.zeros((2, 2, 4), dtype=np.uint8))


def test_warmup_cosine_lr_warms_up_then_decays_to_a_tenth():
    from diffusion_lab.utils import warmup_cosine_lr

    at = [warmup_cosine_lr(s, lr=1.0, warmup_steps=10, num_steps=110) for s in range(120)]
    assert at[0] == pytest.approx(0.1) and at[9] == pytest.approx(1.0)  # linear warm-up
    assert at[10] == pytest.approx(1.0) and at[60] == pytest.approx(0.55)  # half-way: mid-point
    assert at[110] == pytest.approx(0.1) and at[119] == pytest.approx(0.1)  # floor, then flat
    assert all(a >= b for a, b in zip(at[10:], at[11:]))
