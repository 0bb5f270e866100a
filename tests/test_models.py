import pytest
import torch

from diffusion_lab.models import SinusoidalEmbedding, UNet

CONFIGS = [
    dict(in_channels=1, image_size=28, channels=(8, 16, 32), attention=True),
    dict(in_channels=1, image_size=28, channels=(8, 16), attention=False, num_res_blocks=2),
    dict(in_channels=3, image_size=32, channels=(8, 16, 16, 32), attention=True),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_output_shape_equals_input_shape_for_scalar_and_batched_t(config):
    torch.manual_seed(0)
    model = UNet(**config)
    C, S = config["in_channels"], config["image_size"]
    assert model.input_shape == (C, S, S)
    xt = torch.randn(3, C, S, S)
    assert model(xt, torch.tensor([0, 10, 999])).shape == xt.shape
    assert model(xt, 5).shape == xt.shape
    assert model(xt, torch.tensor(5)).shape == xt.shape
    # the article's one timestep per batch, shape (1,), is the scalar shared by every image
    assert torch.equal(model(xt, torch.tensor([5])), model(xt, torch.tensor([5, 5, 5])))


def test_output_depends_on_t_and_starts_at_zero():
    torch.manual_seed(0)
    model = UNet(channels=(8, 16), attention=False)
    xt = torch.randn(2, 1, 28, 28)
    assert model(xt, 3).abs().max() == 0  # zero-initialised output layer: a calm start
    torch.nn.init.normal_(model.conv_out.weight)
    assert not torch.allclose(model(xt, 3), model(xt, 700))


def test_repr_and_parameter_count_read_well():
    model = UNet(channels=(8, 16), attention=False)
    text = repr(model)
    assert text.splitlines()[1].strip().startswith("in_channels=1, image_size=28, channels=(8, 16)")
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())
    assert model.requires_grad_(False).num_parameters() > 0  # frozen weights still count


def test_bad_arguments_raise_clear_errors():
    model = UNet(channels=(8, 16), attention=False)
    with pytest.raises(ValueError, match="unconditional"):
        model(torch.randn(1, 1, 28, 28), 1, cond=torch.tensor([3]))
    with pytest.raises(ValueError, match=r"expected xt of shape \(B, 1, 28, 28\)"):
        model(torch.randn(1, 3, 28, 28), 1)
    shapes = r"t must be a scalar, \(1,\) or \(B,\) = \(2,\), got \(3,\)"
    with pytest.raises(ValueError, match=shapes):
        model(torch.randn(2, 1, 28, 28), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"got \(2, 1\)"):
        model(torch.randn(2, 1, 28, 28), torch.tensor([[1], [2]]))
    with pytest.raises(ValueError, match="divisible by 2\\*\\*3"):
        UNet(image_size=28, channels=(8, 16, 32, 64))


def test_sinusoidal_embedding_values():
    emb = SinusoidalEmbedding(4)(torch.tensor([0, 1]))
    # frequencies 1 and 1/100 for dim 4: [sin(t), sin(t/100), cos(t), cos(t/100)]
    torch.testing.assert_close(emb[0], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    expected = torch.tensor(
        [
            torch.sin(torch.tensor(1.0)),
            torch.sin(torch.tensor(0.01)),
            torch.cos(torch.tensor(1.0)),
            torch.cos(torch.tensor(0.01)),
        ]
    )
    torch.testing.assert_close(emb[1], expected)
    with pytest.raises(ValueError, match="even"):
        SinusoidalEmbedding(5)
