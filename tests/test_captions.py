"""Captioned digits: combinations, reproducible rendering, and an exact pixel reader."""

import pytest
import torch
import torch.nn.functional as F

from diffusion_lab.captions import (
    COLOURS,
    DIGITS,
    HELD_OUT,
    PLACES,
    SIZES,
    VOCABULARY,
    _usable_indices,
    adherence,
    adherence_of,
    all_combinations,
    caption,
    make_captioned_digits,
    read_attributes,
    render,
)
from diffusion_lab.data import load_mnist


@pytest.fixture(scope="module")
def data():
    # every combination, evaluation digits (MNIST 9000-9999), with jitter
    return make_captioned_digits(320, split="all", source="eval", seed=5)


@pytest.fixture(scope="module")
def seven():
    x0, labels = load_mnist()
    return x0[(labels == 7).nonzero()[0, 0]]  # (1, 28, 28)


def _recolour(images, colour):
    ink = ((images + 1) / 2).amax(dim=1, keepdim=True)  # (N, 1, 32, 32)
    return -1 + 2 * ink * torch.tensor(COLOURS[colour])[:, None, None]  # (N, 3, 32, 32)


# ----- combinations and captions -----
def test_combination_counts_and_held_out_pairs():
    every, seen, held = (all_combinations(s) for s in ("all", "seen", "held_out"))
    assert (len(every), len(seen), len(held)) == (320, 288, 32)
    assert len(set(every)) == 320 and set(seen) | set(held) == set(every)
    assert all((d, c) not in HELD_OUT for d, c, _, _ in seen)
    assert {(d, c) for d, c, _, _ in held} == set(HELD_OUT)


def test_caption_text_and_vocabulary():
    assert caption(7, "red", "small", "top left") == "a small red 7 in the top left"
    words = {w for combo in all_combinations() for w in caption(*combo).split()}
    assert words == set(VOCABULARY)
    assert VOCABULARY == sorted(VOCABULARY) and len(VOCABULARY) == 3 + 2 + 4 + 4 + 10


# ----- the data set -----
def test_same_seed_same_tensors_other_seed_differs():
    a, b = make_captioned_digits(40, seed=0), make_captioned_digits(40, seed=0)
    assert torch.equal(a.images, b.images) and a.captions == b.captions
    c = make_captioned_digits(40, seed=1)
    assert not torch.equal(a.images, c.images) and a.captions != c.captions


def test_images_follow_the_format(data):
    assert len(data) == 320 and data.images.shape == (320, 3, 32, 32)
    assert data.images.dtype == torch.float32 and data.digits.dtype == torch.long
    assert data.images.min() == -1 and data.images.max() <= 1
    # pixel = -1 + 2 * ink * colour: off channels are exactly -1, on channels all equal the ink
    colour = torch.tensor([COLOURS[c] for c in data.colours])[:, :, None, None]  # (N, 3, 1, 1)
    ink = ((data.images + 1) / 2).amax(dim=1, keepdim=True)  # (N, 1, 32, 32)
    torch.testing.assert_close(data.images, -1 + 2 * ink * colour)
    assert ((ink == 0).float().mean() > 0.5).item()  # mostly exact background
    image, text = data[3]
    assert image.shape == (3, 32, 32) and text == data.captions[3]


def test_parts_agree_with_captions_and_mnist_labels(data):
    _, labels = load_mnist()
    assert torch.equal(labels[data.mnist_index], data.digits)
    for d, c, s, p, text in zip(
        data.digits.tolist(), data.colours, data.sizes, data.places, data.captions
    ):
        assert text == caption(d, c, s, p)


@pytest.mark.parametrize("split", ["seen", "held_out"])
def test_splits_and_sources(split):
    train = make_captioned_digits(200, split=split, source="train", seed=2)
    evaluation = make_captioned_digits(200, split=split, source="eval", seed=2)
    assert train.mnist_index.max() < 9000 and evaluation.mnist_index.min() >= 9000
    pairs = {(d, c) for d, c in zip(train.digits.tolist(), train.colours)}
    assert (pairs <= set(HELD_OUT)) if split == "held_out" else not pairs & set(HELD_OUT)


def test_render_matches_the_data_set_without_jitter():
    data = make_captioned_digits(12, split="all", jitter=False, seed=3)
    x0, _ = load_mnist()
    for i in range(len(data)):
        image = render(x0[data.mnist_index[i]], data.colours[i], data.sizes[i], data.places[i])
        assert torch.equal(image, data.images[i])


def test_render_pastes_the_resized_digit_in_the_named_colour(seven):
    image = render(seven, "yellow", "small", "top left")  # (3, 32, 32)
    ink = F.interpolate(
        (seven[None] + 1) / 2, size=(14, 14), mode="bilinear", antialias=True, align_corners=False
    )[0].clamp(0, 1)  # (1, 14, 14)
    expected = -torch.ones(3, 32, 32)
    expected[:2, 1:15, 1:15] = -1 + 2 * ink  # red and green on, 1 px from the corner
    torch.testing.assert_close(image, expected)


def test_almost_every_mnist_digit_is_usable():
    # the size threshold separates the two sizes for all but a few odd digits (3 of 10k)
    assert len(_usable_indices()) >= 9990


def test_corners_are_translations_and_jitter_moves_at_most_one_pixel(seven):
    top_left = render(seven, "green", "large", "top left")
    bottom_right = render(seven, "green", "large", "bottom right")
    gap = 32 - 2 * 1 - SIZES["large"]  # far corner minus near corner, margin 1 px
    assert torch.equal(torch.roll(top_left, shifts=(gap, gap), dims=(1, 2)), bottom_right)
    jittered = render(
        seven, "green", "large", "top left", jitter=True, generator=torch.Generator().manual_seed(0)
    )
    again = render(
        seven, "green", "large", "top left", jitter=True, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(jittered, again) and not torch.equal(jittered, top_left)
    shifted = [torch.roll(top_left, (dy, dx), (1, 2)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    assert any(torch.equal(jittered, s) for s in shifted)


# ----- reading attributes back -----
def test_captions_match_images(data):
    read = read_attributes(data.images)
    assert read["colour"] == data.colours
    assert read["size"] == data.sizes
    assert read["place"] == data.places
    digit_accuracy = (read["digit"] == data.digits).float().mean().item()
    assert digit_accuracy >= 0.95, digit_accuracy
    score = adherence_of(data.images, data)
    assert score["colour"] == score["size"] == score["place"] == 1.0 and score["n"] == 320
    assert score["all"] == pytest.approx(digit_accuracy)


def test_held_out_pairs_are_read_too():
    data = make_captioned_digits(96, split="held_out", source="eval", seed=4)
    score = adherence_of(data.images, data)
    assert score["colour"] == score["size"] == score["place"] == 1.0
    assert score["digit"] >= 0.95, score


def test_recoloured_image_reads_as_its_new_colour(data):
    red = data.images[[i for i, c in enumerate(data.colours) if c == "red"][:10]]
    for colour in COLOURS:
        assert read_attributes(_recolour(red, colour))["colour"] == [colour] * len(red)
    blue = _recolour(red, "blue")
    n = len(red)
    digits = read_attributes(red)["digit"]
    sizes, places = read_attributes(red)["size"], read_attributes(red)["place"]
    assert adherence(blue, digits, ["blue"] * n, sizes, places)["all"] == 1.0
    wrong = adherence(blue, digits, ["red"] * n, sizes, places)
    assert wrong["colour"] == 0.0 and wrong["all"] == 0.0 and wrong["size"] == 1.0


def test_blank_image_matches_nothing():
    blank = -torch.ones(2, 3, 32, 32)
    read = read_attributes(blank)
    assert read["digit"].tolist() == [-1, -1] and read["colour"] == ["none", "none"]
    score = adherence(blank, [1, 8], ["red", "blue"], ["small", "large"], ["top left"] * 2)
    assert score == {"digit": 0.0, "colour": 0.0, "size": 0.0, "place": 0.0, "all": 0.0, "n": 2}


@pytest.mark.parametrize("size", list(SIZES))
def test_moving_a_digit_changes_only_its_place(seven, size):
    images = torch.stack([render(seven, "yellow", size, place) for place in PLACES])
    read = read_attributes(images)
    assert read["place"] == list(PLACES)
    assert read["size"] == [size] * 4 and read["colour"] == ["yellow"] * 4
    moved = adherence(images, [7] * 4, ["yellow"] * 4, [size] * 4, ["top left"] * 4)
    assert moved["place"] == 0.25 and moved["colour"] == 1.0


def test_reading_survives_faint_noise(data):
    noise = torch.randn(data.images.shape, generator=torch.Generator().manual_seed(0))
    noisy = data.images[:100] + 0.05 * noise[:100]  # as a sampler might leave, beyond [-1, 1]
    read = read_attributes(noisy)
    assert read["colour"] == data.colours[:100] and read["place"] == data.places[:100]


# ----- errors -----
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: render(x, "purple", "small", "top left"), "'red', 'yellow', 'green', 'blue'"),
        (lambda x: render(x, "red", "medium", "top left"), "'small', 'large'"),
        (lambda x: render(x, "red", "small", "centre"), "'top left', 'top right'"),
        (lambda x: render(x[0], "red", "small", "top left"), r"\(1, 28, 28\)"),
        (lambda x: caption(10, "red", "small", "top left"), "0, 1, 2"),
        (lambda x: all_combinations("train"), "'all', 'seen', 'held_out'"),
        (lambda x: make_captioned_digits(5, source="test"), "'train', 'eval'"),
        (lambda x: make_captioned_digits(5, split="unseen"), "'held_out'"),
        (lambda x: make_captioned_digits(0), "positive int"),
        (lambda x: read_attributes(torch.zeros(2, 1, 28, 28)), r"\(N, 3, 32, 32\)"),
        (
            lambda x: adherence(
                -torch.ones(2, 3, 32, 32), [1], ["red"] * 2, ["small"] * 2, ["top left"] * 2
            ),
            "2 images but 1 digit",
        ),
    ],
)
def test_bad_arguments_say_what_is_allowed(seven, call, message):
    with pytest.raises(ValueError, match=message):
        call(seven)


def test_constants():
    assert DIGITS == tuple(range(10)) and len(PLACES) == 4
    assert all(max(rgb) == 1.0 for rgb in COLOURS.values())  # so max over RGB is the ink
