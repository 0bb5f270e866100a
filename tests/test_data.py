import gzip
import shutil

import pytest
import torch

import diffusion_lab.data as data
from diffusion_lab.data import gaussian_ring, load_cat, load_mnist, swiss_roll, to_image, two_moons

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # published counts


def test_bundled_mnist_is_the_real_test_split():
    x, y = load_mnist()
    assert x.shape == (10_000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (10_000,) and y.dtype == torch.long
    assert x.min() == -1 and x.max() == 1
    assert torch.bincount(y).tolist() == MNIST_TEST_COUNTS
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first labels
    # returned tensors are fresh copies: editing them does not change the next load
    x[0] = 0
    assert load_mnist()[0][0].min() == -1


def test_cat_is_rgb_square_in_range():
    for size in (28, 64, 128):
        cat = load_cat(size)
        assert cat.shape == (3, size, size)
        assert cat.min() >= -1 and cat.max() <= 1
    cat = load_cat(64)
    assert cat.std() > 0.2  # a real photo, not a blank
    assert not torch.allclose(cat[0], cat[2])  # colour, not grey
    with pytest.raises(ValueError, match="size must be an int"):
        load_cat(1000)


def test_damaged_file_is_refused_with_a_clear_message(tmp_path, monkeypatch):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "chelsea.png"):
        shutil.copy(data.ASSETS / name, tmp_path / name)
    raw = bytearray((tmp_path / "chelsea.png").read_bytes())
    raw[1000] ^= 0xFF
    (tmp_path / "chelsea.png").write_bytes(bytes(raw))
    monkeypatch.setattr(data, "ASSETS", tmp_path)
    data._cat_array.cache_clear()
    try:
        with pytest.raises(OSError, match="chelsea.png is damaged"):
            load_cat(32)
    finally:
        data._cat_array.cache_clear()


def test_full_mnist_from_a_user_folder(tmp_path):
    # a stand-in "training split" made from the bundled files, under the standard names
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        raw = gzip.decompress((data.ASSETS / f"t10k-{kind}.gz").read_bytes())
        (tmp_path / f"train-{kind}").write_bytes(raw)  # uncompressed works too
    x, y = load_mnist("train", root=tmp_path)
    assert x.shape == (10_000, 1, 28, 28) and len(y) == 10_000
    with pytest.raises(ValueError, match="only the test split"):
        load_mnist("train")
    with pytest.raises(ValueError, match="unknown split 'val'"):
        load_mnist("val")
    with pytest.raises(FileNotFoundError, match="train-images"):
        load_mnist("train", root=tmp_path / "nowhere")


def test_bad_idx_file_is_refused(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01" + bytes(8))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + bytes(8))
    with pytest.raises(OSError, match="magic 2051"):
        load_mnist("train", root=tmp_path)


def test_to_image_maps_range():
    torch.testing.assert_close(
        to_image(torch.tensor([-1.0, 0.0, 1.0, 3.0])), torch.tensor([0.0, 0.5, 1.0, 1.0])
    )


@pytest.mark.parametrize("make", [two_moons, swiss_roll, gaussian_ring])
def test_toy_sets_shape_and_reproducibility(make):
    a = make(500, generator=torch.Generator().manual_seed(0))
    b = make(500, generator=torch.Generator().manual_seed(0))
    assert a.shape == (500, 2)
    torch.testing.assert_close(a, b)
    assert a.abs().max() < 3
    with pytest.raises(ValueError, match="positive int"):
        make(0)


def test_gaussian_ring_has_its_modes():
    points = gaussian_ring(800, num_modes=8, radius=2.0, std=0.01, generator=torch.Generator())
    angles = torch.atan2(points[:, 1], points[:, 0])
    modes = torch.round(angles / (2 * torch.pi / 8)) % 8
    assert torch.bincount(modes.long(), minlength=8).tolist() == [100] * 8
    torch.testing.assert_close(points.norm(dim=1).mean(), torch.tensor(2.0), atol=0.01, rtol=0)


def test_two_moons_has_two_halves():
    points = two_moons(1000, noise=0.0, generator=torch.Generator().manual_seed(1))
    upper, lower = points[0::2], points[1::2]
    assert upper[:, 1].mean() > lower[:, 1].mean() + 0.3


def test_cat_crops_are_every_window_of_the_small_cat_and_their_mirrors():
    from diffusion_lab.data import cat_crops

    crops = cat_crops(32, size=64)
    cat = load_cat(64)
    assert crops.shape == (2 * 33 * 33, 3, 32, 32)
    assert torch.equal(crops[0], cat[:, :32, :32])
    assert torch.equal(crops[33 + 2], cat[:, 1:33, 2:34])  # row 1, column 2
    assert torch.equal(crops[33 * 33], cat[:, :32, :32].flip(-1))
    assert len(cat_crops(32, size=64, flips=False)) == 33 * 33
    with pytest.raises(ValueError, match="crop must be an int in"):
        cat_crops(80, size=64)
