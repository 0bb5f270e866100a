"""Conditioning: label embeddings, the null condition, label dropout and guidance."""

import pytest
import torch
from torch import nn

from diffusion_lab.conditioning import cfg_combine, drop_cond, guided_output, null_cond
from diffusion_lab.models import UNet
from diffusion_lab.models.embeddings import LabelEmbedding
from diffusion_lab.samplers import SAMPLERS, sample
from diffusion_lab.schedules import NoiseSchedule
from diffusion_lab.training import diffusion_loss, train


class LabelEcho(nn.Module):
    """A fake conditional model: eps = label (the null label 10 gives 0); counts its calls."""

    def __init__(self):
        super().__init__()
        self.calls, self.seen = 0, []
        self.dummy = nn.Parameter(torch.zeros(()))

    def null_cond(self, cond):
        return torch.full_like(cond, 10)

    def forward(self, xt, t, cond=None):
        self.calls += 1
        self.seen.append(cond.clone())
        value = torch.where(cond == 10, 0, cond).float()
        return value.view(-1, *([1] * (xt.ndim - 1))).expand_as(xt) + 0 * self.dummy


def test_cfg_combine_follows_the_diffusers_convention():
    uncond, cond = torch.tensor([1.0, -2.0]), torch.tensor([3.0, 0.5])
    assert torch.equal(cfg_combine(uncond, cond, 1.0), cond)  # 1: plain conditional
    assert torch.equal(cfg_combine(uncond, cond, 0.0), uncond)  # 0: unconditional
    # 3: two more steps along (cond - uncond); the paper's w' = 2 gives (1 + 2) c - 2 u
    assert torch.allclose(cfg_combine(uncond, cond, 3.0), 3 * cond - 2 * uncond)


def test_guided_output_makes_one_batched_call_with_the_null_half_first():
    model, xt = LabelEcho(), torch.zeros(3, 1, 4, 4)
    labels = torch.tensor([1, 2, 3])
    out = guided_output(model, xt, torch.tensor([5, 5, 5]), labels, guidance_scale=2.5)
    assert model.calls == 1
    assert model.seen[0].tolist() == [10, 10, 10, 1, 2, 3]
    # uncond predicts 0, cond predicts the label: guided = 2.5 * label
    assert torch.allclose(out[:, 0, 0, 0], 2.5 * labels.float())
    model = LabelEcho()
    guided_output(model, xt, torch.tensor([5, 5, 5]), labels, guidance_scale=1.0)
    assert model.calls == 1 and model.seen[0].tolist() == [1, 2, 3]  # no null half needed
    model = LabelEcho()
    out = guided_output(model, xt, torch.tensor([5, 5, 5]), labels, guidance_scale=0.0)
    assert model.calls == 1 and model.seen[0].tolist() == [10, 10, 10]  # the null half alone
    assert (out == 0).all()


def test_drop_cond_replaces_only_the_dropped_rows():
    cond, null = torch.arange(1000) % 10, torch.full((1000,), 10)
    dropped = drop_cond(cond, null, 0.2, generator=torch.Generator().manual_seed(0))
    changed = dropped != cond
    assert torch.equal(dropped[changed], null[changed])  # a dropped row is exactly null
    assert torch.equal(dropped[~changed], cond[~changed])  # others untouched
    assert 0.15 < changed.float().mean() < 0.25
    assert torch.equal(drop_cond(cond, null, 0.0), cond)  # never dropped at p = 0
    assert (drop_cond(cond, null, 1.0) == 10).all()
    tokens = torch.randint(2, 9, (50, 6))
    null_tokens = torch.zeros_like(tokens)
    out = drop_cond(tokens, null_tokens, 0.5, generator=torch.Generator().manual_seed(1))
    whole_rows = (out == 0).all(1) | (out == tokens).all(1)
    assert whole_rows.all()  # text: a prompt is dropped whole, never word by word
    with pytest.raises(ValueError, match="probability"):
        drop_cond(cond, null, 1.5)
    with pytest.raises(ValueError, match="shape"):
        drop_cond(cond, null[:5], 0.1)


def test_the_loss_uses_the_null_label_only_when_dropping():
    schedule, x0 = NoiseSchedule.cosine(), torch.zeros(400, 1, 4, 4)
    labels = torch.arange(400) % 10
    model = LabelEcho()
    diffusion_loss(model, x0, schedule, cond=labels)
    assert (model.seen[-1] != 10).all()  # p_uncond = 0: never the null label
    diffusion_loss(model, x0, schedule, cond=labels, p_uncond=0.25, generator=torch.Generator())
    share = (model.seen[-1] == 10).float().mean()
    assert 0.18 < share < 0.32
    with pytest.raises(ValueError, match="no cond"):
        diffusion_loss(model, x0, schedule, p_uncond=0.1)


def test_label_embedding_reserves_the_null_label_and_checks_range():
    emb = LabelEmbedding(10, 8)
    assert emb.null_label == 10
    assert emb(torch.tensor([0, 9, 10])).shape == (3, 8)
    with pytest.raises(ValueError, match=r"\[0, 10\]"):
        emb(torch.tensor([11]))
    with pytest.raises(ValueError, match="integer"):
        emb(torch.tensor([1.0]))


def test_class_conditional_unet_contract():
    torch.manual_seed(0)
    model = UNet(channels=(8, 16), num_classes=10)
    xt = torch.randn(4, 1, 28, 28)
    labels = torch.tensor([0, 3, 9, 10])
    assert model(xt, 5, labels).shape == xt.shape
    assert torch.equal(model.null_cond(labels), torch.full((4,), 10))
    assert null_cond(model, labels).tolist() == [10] * 4
    nn.init.normal_(model.conv_out.weight)  # make the output depend on the inputs
    a, b = model(xt, 5, torch.tensor([1] * 4)), model(xt, 5, torch.tensor([2] * 4))
    assert not torch.allclose(a, b)  # the label changes the prediction
    with pytest.raises(ValueError, match="conditional: pass cond"):
        model(xt, 5)
    with pytest.raises(ValueError, match="rows"):
        model(xt, 5, labels[:2])
    with pytest.raises(ValueError, match="for a class-conditional UNet"):
        null_cond(UNet(channels=(8, 16)), labels)
    with pytest.raises(ValueError, match="not both"):
        UNet(num_classes=10, context_dim=16)


def test_text_conditional_unet_attends_to_the_context():
    torch.manual_seed(0)
    model = UNet(3, image_size=32, channels=(8, 16, 32), context_dim=12)
    xt, context = torch.randn(2, 3, 32, 32), torch.randn(2, 5, 12)
    assert model(xt, torch.tensor([3, 700]), context).shape == xt.shape
    crosses = [m for m in model.modules() if type(m).__name__ == "CrossAttention"]
    assert len(crosses) == 6  # levels 2 and 3 down and up, and the two middle blocks
    for m in crosses:  # a new cross-attention starts switched off...
        assert m.attn.out_proj.weight.abs().sum() == 0
        nn.init.normal_(m.attn.out_proj.weight, std=0.2)  # ...so switch it on to test it
    nn.init.normal_(model.conv_out.weight)
    assert not torch.allclose(model(xt, 3, context), model(xt, 3, torch.randn(2, 5, 12)))
    with pytest.raises(ValueError, match=r"\(B, L, 12\)"):
        model(xt, 3, torch.randn(2, 5, 7))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_passes_cond_and_guidance_through(sampler):
    schedule, model = NoiseSchedule.cosine(100), LabelEcho()
    labels = torch.tensor([1, 2])
    x_T = torch.zeros(2, 1, 2, 2)
    sample(model, schedule, x_T, sampler=sampler, num_steps=5, cond=labels,
           guidance_scale=3.0, progress=False, generator=torch.Generator())  # fmt: skip
    assert model.calls == 5  # one batched call per step, even with guidance
    assert all(seen.tolist() == [10, 10, 1, 2] for seen in model.seen)
    with pytest.raises(ValueError, match="needs a cond"):
        sample(model, schedule, x_T, sampler=sampler, num_steps=5, guidance_scale=3.0)


def test_train_takes_conditions_one_per_example():
    torch.manual_seed(0)
    model, schedule = UNet(channels=(8, 16), num_classes=10), NoiseSchedule.cosine()
    x0, labels = torch.rand(32, 1, 28, 28) * 2 - 1, torch.arange(32) % 10
    steps = list(train(model, x0, schedule, num_steps=3, batch_size=8, cond=labels,
                       p_uncond=0.1, progress=False))  # fmt: skip
    assert len(steps) == 3
    with pytest.raises(ValueError, match="one per example"):
        next(train(model, x0, schedule, num_steps=1, cond=labels[:5], progress=False))


def test_text_conditioned_unet_reads_tokens_through_a_frozen_encoder():
    from diffusion_lab.models import TextConditionedUNet
    from diffusion_lab.models.text import TextEncoder, Tokenizer

    torch.manual_seed(0)
    tokenizer = Tokenizer(["a", "red", "blue", "7"], max_length=5)
    encoder = TextEncoder(tokenizer.vocab_size, max_length=5, dim=16, depth=1)
    unet = UNet(3, image_size=8, channels=(8, 16), context_dim=16)
    model = TextConditionedUNet(unet, encoder)
    tokens = tokenizer.encode(["a red 7", "a blue 7"])
    xt = torch.randn(2, 3, 8, 8)
    assert model(xt, 10, tokens).shape == xt.shape
    assert model.null_cond(tokens).tolist() == tokenizer.encode(["", ""]).tolist()
    assert all(not p.requires_grad for p in model.text_encoder.parameters())
    assert model.num_parameters(trainable_only=True) == unet.num_parameters()
    model.train()
    assert model.unet.training and not model.text_encoder.training  # frozen stays in eval
    with pytest.raises(ValueError, match="prompt tokens"):
        model(xt, 10, torch.randn(2, 5))
    with pytest.raises(ValueError, match="context_dim=32"):
        TextConditionedUNet(UNet(3, image_size=8, channels=(8, 16), context_dim=32), encoder)
    with pytest.raises(ValueError, match="needs cross-attention"):
        TextConditionedUNet(UNet(3, image_size=8, channels=(8, 16)), encoder)
    # guidance with text: the null half is the empty prompt, in one batched call
    seen = []
    original = model.unet.forward
    model.unet.forward = lambda x, t, c: seen.append(len(x)) or original(x, t, c)
    out = guided_output(model, xt, torch.tensor([5, 5]), tokens, guidance_scale=2.0)
    assert out.shape == xt.shape and seen == [4]
