"""The text side of lesson 9: tokenizer, text encoder, tiny CLIP, contrastive loss, training."""

import math

import pytest
import torch

from diffusion_lab.models.text import (
    CLIP,
    CLIPStep,
    ImageEncoder,
    TextEncoder,
    Tokenizer,
    caption_accuracy,
    contrastive_loss,
    retrieval_accuracy,
    train_clip,
)

WORDS = ["red", "blue", "top", "bottom", "square"]  # ids 2..6 after <pad>=0, <bos>=1
CAPTIONS = ["red top", "red bottom", "blue top", "blue bottom"]


@pytest.fixture(autouse=True)
def _one_thread():
    """These models are tiny: a second thread only adds waiting (much more on a busy machine)."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


def _tiny_text(vocab_size=7, seed=0):
    torch.manual_seed(seed)
    return TextEncoder(vocab_size, max_length=4, dim=32, depth=1, num_heads=2)


def _tiny_clip(seed=0):
    torch.manual_seed(seed)
    return CLIP(
        TextEncoder(7, max_length=4, dim=32, depth=1, num_heads=2),
        ImageEncoder(image_size=8, dim=32, channels=(8, 16)),
        embed_dim=32,
    )


def _captioned(n, seed):
    """8x8 images: a red or blue band in the top or bottom half, plus noise; and their captions."""
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(4, (n,), generator=g)
    images = 0.2 * torch.randn(n, 3, 8, 8, generator=g) - 0.5
    colours = torch.tensor([[1.0, -1.0, -1.0], [-1.0, -1.0, 1.0]])  # red, blue
    for i, c in enumerate(which.tolist()):
        rows = slice(0, 4) if c % 2 == 0 else slice(4, 8)  # top or bottom
        images[i, :, rows] += 0.8 * colours[c // 2][:, None, None]
    tokens = Tokenizer(WORDS, max_length=4).encode([CAPTIONS[c] for c in which])
    return images, tokens


# ----- tokenizer -----
def test_encode_layout_bos_first_then_words_then_pads():
    tok = Tokenizer(WORDS, max_length=4)
    assert tok.encode("red top").tolist() == [[1, 2, 4, 0]]
    assert tok.encode(["blue bottom square", "top"]).tolist() == [[1, 3, 5, 6], [1, 4, 0, 0]]
    assert tok.encode("red").dtype == torch.long
    assert tok.vocab_size == len(tok) == 2 + len(WORDS)


def test_null_prompt_is_bos_then_pads():
    tok = Tokenizer(WORDS, max_length=5)
    assert tok.encode("").tolist() == [[1, 0, 0, 0, 0]]
    assert tok.encode("   ").tolist() == [[1, 0, 0, 0, 0]]
    assert tok.decode(tok.encode("")) == [""]


def test_round_trip():
    tok = Tokenizer(WORDS, max_length=6)
    prompts = ["red top", "blue bottom square", "", "square square square square square"]
    assert tok.decode(tok.encode(prompts)) == prompts
    assert tok.decode(tok.encode("red top")[0]) == ["red top"]  # a single row (L,) works too


def test_case_and_whitespace_are_ignored():
    tok = Tokenizer(["Red", "TOP"], max_length=4)
    torch.testing.assert_close(tok.encode("  RED\tTop "), tok.encode("red top"))
    assert tok.decode(tok.encode("RED TOP")) == ["red top"]


def test_unknown_word_names_it_and_lists_the_known_words():
    tok = Tokenizer(WORDS, max_length=4)
    with pytest.raises(ValueError, match="'purple'") as error:
        tok.encode("purple top")
    for word in WORDS:
        assert word in str(error.value)
    with pytest.raises(ValueError, match="'<bos>'"):  # special tokens cannot be typed
        tok.encode("<bos> red")


def test_too_many_words_says_the_limit():
    tok = Tokenizer(WORDS, max_length=4)
    tok.encode("red top square")  # 3 words + <bos> fit exactly
    with pytest.raises(ValueError, match="at most 3"):
        tok.encode("red top square square")


def test_config_recreates_the_tokenizer():
    tok = Tokenizer(WORDS, max_length=7)
    again = Tokenizer(**tok.config)
    assert again.config == tok.config
    torch.testing.assert_close(again.encode(CAPTIONS), tok.encode(CAPTIONS))


@pytest.mark.parametrize(
    "vocabulary, max_length, match",
    [
        (["red", "Red"], 4, "repeats"),
        (["red", "<pad>"], 4, "special"),
        (["red top"], 4, "spaces"),
        (["red"], 1, "max_length"),
    ],
)
def test_bad_tokenizer_arguments_raise(vocabulary, max_length, match):
    with pytest.raises(ValueError, match=match):
        Tokenizer(vocabulary, max_length=max_length)


# ----- text encoder -----
def test_text_encoder_shapes_and_pooling_at_bos():
    encoder = _tiny_text()
    tokens = Tokenizer(WORDS, max_length=4).encode(["red top", "", "blue bottom square"])
    features = encoder(tokens)
    assert features.shape == (3, 4, 32)  # (B, L, D)
    pooled = encoder.pooled(tokens)
    assert pooled.shape == (3, 32)
    torch.testing.assert_close(pooled, features[:, 0])
    assert TextEncoder(**encoder.config).num_parameters() == encoder.num_parameters()


def test_pads_are_ignored():
    encoder = _tiny_text()
    tokens = Tokenizer(WORDS, max_length=4).encode(["red top", "", "blue"])
    real = tokens != 0  # (B, L); the last slot is a pad in every row
    with torch.no_grad():
        before, pooled = encoder(tokens), encoder.pooled(tokens)
        # change what the pads look like: their embedding, and the last slot's position
        encoder.token_embedding.weight[0].normal_(0, 3.0)
        encoder.position_embedding[3].normal_(0, 3.0)
        after = encoder(tokens)
        torch.testing.assert_close(after[real], before[real])
        torch.testing.assert_close(encoder.pooled(tokens), pooled)
        # control: changing a real word's embedding does change the pooled feature
        encoder.token_embedding.weight[2].normal_(0, 1.0)  # "red"
        assert not torch.allclose(encoder.pooled(tokens)[0], pooled[0], atol=1e-4)
        torch.testing.assert_close(encoder.pooled(tokens)[1], pooled[1])  # the null prompt


def test_padding_length_does_not_matter():
    encoder = _tiny_text()
    tokens = Tokenizer(WORDS, max_length=4).encode("red top")  # [bos, red, top, pad]
    with torch.no_grad():
        torch.testing.assert_close(encoder(tokens[:, :3]), encoder(tokens)[:, :3])


@pytest.mark.parametrize(
    "tokens, match",
    [
        (torch.tensor([[1, 7, 0, 0]]), r"\[0, 6\]"),  # 7 is past vocab_size 7
        (torch.tensor([[1, -1, 0, 0]]), r"\[0, 6\]"),
        (torch.tensor([[2, 3, 0, 0]]), "<bos>"),
        (torch.tensor([[1.0, 2.0, 0.0, 0.0]]), "integer"),
        (torch.tensor([1, 2, 0, 0]), r"\(B, L\)"),
        (torch.tensor([[1, 2, 0, 0, 0]]), "max_length"),
    ],
)
def test_bad_tokens_raise(tokens, match):
    with pytest.raises(ValueError, match=match):
        _tiny_text()(tokens)


def test_text_encoder_rejects_heads_that_do_not_divide_dim():
    with pytest.raises(ValueError, match="divisible"):
        TextEncoder(7, dim=30, num_heads=4)


# ----- image encoder and CLIP -----
def test_image_encoder_shapes_and_errors():
    encoder = ImageEncoder(image_size=8, dim=32, channels=(8, 16))
    assert encoder(torch.randn(5, 3, 8, 8)).shape == (5, 32)
    assert ImageEncoder(**encoder.config).num_parameters() == encoder.num_parameters()
    with pytest.raises(ValueError, match=r"\(B, 3, 8, 8\)"):
        encoder(torch.randn(5, 1, 8, 8))


def test_clip_embeddings_are_unit_norm_and_logits_are_scaled_cosines():
    clip = _tiny_clip()
    images = torch.randn(3, 3, 8, 8)
    tokens = Tokenizer(WORDS, max_length=4).encode(CAPTIONS + [""])
    with torch.no_grad():
        image_emb, text_emb = clip.encode_image(images), clip.encode_text(tokens)
        logits = clip(images, tokens)
    assert image_emb.shape == (3, 32) and text_emb.shape == (5, 32)
    torch.testing.assert_close(image_emb.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(text_emb.norm(dim=1), torch.ones(5))
    assert logits.shape == (3, 5)  # (B_img, B_txt)
    torch.testing.assert_close(logits, image_emb @ text_emb.T / 0.07)  # initial temperature 0.07
    with torch.no_grad():
        clip.logit_scale.fill_(10.0)  # exp(10) would be 22026: clipped at 100
        torch.testing.assert_close(clip(images, tokens), 100 * image_emb @ text_emb.T)
    rebuilt = CLIP.from_config(clip.config)
    assert rebuilt.num_parameters() == clip.num_parameters()


# ----- contrastive loss -----
def test_contrastive_loss_by_hand_on_2x2():
    a, b, c, d = 2.0, -1.0, 0.5, 3.0
    logits = torch.tensor([[a, b], [c, d]])

    def ce(right, wrong):  # -log softmax of the right logit against one wrong one
        return -right + math.log(math.exp(right) + math.exp(wrong))

    image_to_text = (ce(a, b) + ce(d, c)) / 2  # rows
    text_to_image = (ce(a, c) + ce(d, b)) / 2  # columns
    expected = torch.tensor((image_to_text + text_to_image) / 2)
    torch.testing.assert_close(contrastive_loss(logits), expected)
    ids = torch.tensor([0, 1])
    torch.testing.assert_close(contrastive_loss(logits, caption_ids=ids), expected)


def test_contrastive_loss_is_symmetric_and_prefers_a_dominant_diagonal():
    logits = torch.randn(6, 6, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(contrastive_loss(logits), contrastive_loss(logits.T))
    torch.testing.assert_close(
        contrastive_loss(logits, caption_ids=torch.arange(6)), contrastive_loss(logits)
    )
    assert contrastive_loss(logits + 5 * torch.eye(6)) < contrastive_loss(logits) - 1.0


def test_caption_ids_reward_matching_every_wording_of_a_caption():
    # texts 1 and 2 are two wordings of one caption (id 1)
    ids = torch.tensor([0, 1, 1, 2])
    same = (ids[:, None] == ids[None]).float()
    both = 50 * same  # images 1 and 2 are as close to either wording
    own = 50 * torch.eye(4)  # each image matches only its own wording
    with_ids = lambda logits: contrastive_loss(logits, caption_ids=ids)  # noqa: E731
    assert with_ids(both) < with_ids(own) - 1.0
    assert contrastive_loss(own) < contrastive_loss(both) - 0.1  # plain targets: the reverse
    # the floor with ids is the entropy of the targets: log 2 in 2 rows of 4, both directions
    torch.testing.assert_close(with_ids(both), torch.tensor(math.log(2) / 2))


def test_caption_ids_of_identical_texts_give_the_plain_loss():
    # identical token rows have equal text embeddings, hence equal logit columns
    g = torch.Generator().manual_seed(0)
    image_emb, text_emb = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    text_emb[3] = text_emb[1]
    logits = image_emb @ text_emb.T  # (5, 5), columns 1 and 3 equal
    ids = torch.tensor([0, 1, 2, 1, 3])
    torch.testing.assert_close(contrastive_loss(logits, caption_ids=ids), contrastive_loss(logits))


def test_swapping_images_of_one_caption_does_not_change_the_loss():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 5, generator=g) * 3  # texts 1 and 3: different wordings, id 1
    ids = torch.tensor([0, 1, 2, 1, 3])
    swapped = logits[[0, 3, 2, 1, 4]]  # images 1 and 3 trade places
    torch.testing.assert_close(
        contrastive_loss(swapped, caption_ids=ids), contrastive_loss(logits, caption_ids=ids)
    )
    # control: without caption ids the swap is punished
    assert abs(contrastive_loss(swapped) - contrastive_loss(logits)) > 1e-3


def test_contrastive_loss_checks_shapes():
    with pytest.raises(ValueError, match="square"):
        contrastive_loss(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        contrastive_loss(torch.zeros(3, 3), caption_ids=torch.zeros(4, dtype=torch.long))


# ----- training and evaluation -----
def test_training_lowers_the_loss_and_learns_to_caption():
    images, tokens = _captioned(128, seed=0)
    test_images, test_tokens = _captioned(64, seed=1)
    candidates = Tokenizer(WORDS, max_length=4).encode(CAPTIONS)
    clip = _tiny_clip()
    steps = list(
        train_clip(
            clip,
            images,
            tokens,
            num_steps=40,
            batch_size=32,
            lr=3e-3,
            warmup_steps=5,
            generator=torch.Generator().manual_seed(0),
        )
    )
    assert [s.step for s in steps] == list(range(1, 41))
    assert all(isinstance(s, CLIPStep) and math.isfinite(s.loss) for s in steps)
    assert clip.training  # the caller switches to eval
    first = sum(s.loss for s in steps[:5]) / 5
    last = sum(s.loss for s in steps[-5:]) / 5
    # 32 pairs over 4 captions: ~8 positives each, so the floor is about log 8 = 2.08
    assert first > 3.0 and last < 2.4, (first, last)
    clip.eval()
    assert caption_accuracy(clip, test_images, test_tokens, candidates) > 0.95  # chance: 0.25
    retrieval = retrieval_accuracy(clip, test_images, test_tokens)
    assert retrieval["image_to_text"] > 0.95 and retrieval["text_to_image"] == 1.0
    untrained = caption_accuracy(_tiny_clip(), test_images, test_tokens, candidates)
    assert untrained < 0.75


def test_caption_accuracy_matches_a_hand_count():
    clip = _tiny_clip(seed=3).eval()
    images, tokens = _captioned(16, seed=2)
    candidates = Tokenizer(WORDS, max_length=4).encode(CAPTIONS + CAPTIONS)  # repeats are merged
    with torch.no_grad():
        scores = clip.encode_image(images) @ clip.encode_text(candidates[:4]).T  # (16, 4)
    best = candidates[:4][scores.argmax(1)]  # (16, L) the chosen caption
    expected = (best == tokens).all(1).float().mean().item()
    assert caption_accuracy(clip, images, tokens, candidates, batch_size=5) == pytest.approx(
        expected
    )
    with pytest.raises(ValueError, match="not among the candidate"):
        caption_accuracy(clip, images, tokens, candidates[:2])


def test_training_is_deterministic_with_a_generator():
    images, tokens = _captioned(32, seed=0)

    def run(seed):
        clip = _tiny_clip()
        generator = torch.Generator().manual_seed(seed)
        kwargs = dict(num_steps=8, batch_size=16, warmup_steps=2, generator=generator)
        losses = [s.loss for s in train_clip(clip, images, tokens, **kwargs)]
        return losses, clip.image_proj.weight.detach().clone()

    losses, weight = run(0)
    losses_again, weight_again = run(0)
    assert losses == losses_again
    torch.testing.assert_close(weight, weight_again, rtol=0, atol=0)
    assert run(1)[0] != losses  # another generator draws other batches


def test_train_clip_checks_its_inputs():
    images, tokens = _captioned(8, seed=0)
    with pytest.raises(ValueError, match="pair them"):
        next(train_clip(_tiny_clip(), images, tokens[:5]))
    with pytest.raises(ValueError, match=r"caption_ids must have shape \(8,\)"):
        next(train_clip(_tiny_clip(), images, tokens, caption_ids=torch.zeros(5, dtype=torch.long)))
