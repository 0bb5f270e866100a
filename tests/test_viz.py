import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.axes import Axes

from diffusion_lab.schedules import NoiseSchedule
from diffusion_lab.viz import (
    grid_array,
    make_grid,
    plot_chain,
    plot_histogram,
    plot_points,
    plot_schedules,
    show_images,
)


def test_make_grid_layout_and_values():
    x = torch.stack([torch.full((1, 4, 4), v) for v in (-1.0, 0.0, 1.0)])
    grid = make_grid(x, nrow=2, padding=1)
    assert grid.shape == (1, 2 * 5 + 1, 2 * 5 + 1)
    assert grid[0, 1, 1] == 0 and grid[0, 1, 6] == 0.5 and grid[0, 6, 1] == 1
    assert grid[0, 0, 0] == 1  # padding


def test_grid_array_is_uint8_and_scaled():
    x = torch.rand(5, 3, 8, 8) * 2 - 1
    array = grid_array(x, nrow=5, padding=0, scale=3)
    assert array.dtype == np.uint8 and array.shape == (24, 120, 3)
    assert grid_array(torch.zeros(2, 1, 8, 8), padding=0).shape == (8, 16)


def test_plots_return_axes_and_accept_any_shape():
    assert isinstance(show_images(torch.zeros(3, 28, 28)), Axes)
    assert isinstance(show_images(torch.zeros(10, 1, 28, 28), nrow=5, title="t"), Axes)
    axes = plot_chain([torch.zeros(3, 8, 8)] * 3, ["x_0", "x_1", "x_T"], arrow="add noise")
    assert len(axes) == 3 and axes[2].get_title() == "x_T"
    assert isinstance(plot_histogram(torch.randn(1000)), Axes)
    schedules = {"linear": NoiseSchedule.linear(), "cosine": NoiseSchedule.cosine()}
    ax = plot_schedules(schedules, quantity="log_snr", t=100)
    assert len(ax.get_lines()) == 3  # two curves and the marker
    assert isinstance(plot_points(torch.randn(50, 2)), Axes)
    short = {"T=10": NoiseSchedule.linear(10, beta_end=0.5)}
    line = plot_schedules(short, x="fraction").get_lines()[0]
    assert line.get_xdata()[0] == 0.1 and line.get_xdata()[-1] == 1.0


def test_viz_rejects_bad_shapes():
    with pytest.raises(ValueError, match="C = 1 or 3"):
        show_images(torch.zeros(2, 2, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        plot_points(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="unknown quantity 'snr'"):
        plot_schedules({}, quantity="snr")
    with pytest.raises(ValueError, match="unknown x 'tau'"):
        plot_schedules({}, x="tau")
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        plot_chain([torch.zeros(1, 4, 4)] * 2, ["a"])


def test_loss_plot_collects_and_draws():
    from types import SimpleNamespace

    from diffusion_lab.viz import LossPlot

    plot = LossPlot(every=1000, smooth=5)
    for i in range(12):
        plot.update(SimpleNamespace(step=i + 1, loss=1.0 / (i + 1)))
    assert plot.steps == list(range(1, 13)) and plot.losses[-1] == 1 / 12
    ax = plot.figure().axes[0]
    assert len(ax.get_lines()) == 2  # raw and running mean
    assert ax.get_lines()[1].get_ydata()[0] == sum(1 / (i + 1) for i in range(5)) / 5


def test_points_frame_draws_panels_as_an_image_in_range():
    from diffusion_lab.viz import points_frame

    points = torch.zeros(50, 2)
    one = points_frame([points], dpi=40, size=2.0)
    two = points_frame([points, points + 0.5], titles=["a", "b"], dpi=40, size=2.0)
    assert one.shape == (3, 80, 80) and two.shape == (3, 80, 160)
    assert one.min() >= -1 and one.max() <= 1
    assert (one < 0.9).any()  # something was drawn on the white page
    blank = points_frame([torch.full((5, 2), 10.0)], dpi=40, size=2.0)  # outside the limits
    assert (one < 0.9).sum() > (blank < 0.9).sum()
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        points_frame([torch.zeros(5, 3)])


def test_points_frame_draws_arrows_only_where_asked():
    from diffusion_lab.viz import points_frame

    far = torch.full((1, 2), 10.0)  # no points inside the panel
    where = torch.tensor([[-0.5, 0.0], [0.5, 0.0]])
    plain = points_frame([far, far], dpi=40, size=2.0)
    arrows = points_frame([far, far], arrows=[(where, torch.ones(2, 2)), None], dpi=40, size=2.0)
    left, right = (arrows - plain).abs().sum(0).split(80, dim=1)  # (80, 80) each
    assert left.sum() > 0 and right.sum() == 0  # arrows on the first panel only
    with pytest.raises(ValueError, match="2 panels but 1 entries in arrows"):
        points_frame([far, far], arrows=[None])


def test_show_hole_paints_hidden_pixels_red_and_keeps_the_rest():
    from diffusion_lab.viz import show_hole

    grey = torch.linspace(-1, 1, 16).view(1, 1, 4, 4)
    mask = torch.ones(1, 1, 4, 4)
    mask[..., 0, :] = 0  # the top row hidden
    out = show_hole(grey, mask)
    assert out.shape == (1, 3, 4, 4)
    assert torch.equal(out[0, :, 0], torch.tensor([1.0, -1.0, -1.0])[:, None].expand(3, 4))
    assert torch.equal(out[0, :, 1:], grey[0, 0, 1:].expand(3, 3, 4))


def test_show_sounds_draws_a_waveform_over_a_spectrogram_per_sound():
    from diffusion_lab.beyond import make_sounds
    from diffusion_lab.viz import show_sounds

    waves, kinds = make_sounds(3, generator=torch.Generator().manual_seed(0))
    fig = show_sounds(waves, titles=kinds)
    assert len(fig.axes) == 6 and [ax.get_title() for ax in fig.axes[:3]] == kinds
    spec = fig.axes[3].images[0].get_array()  # the first sound's spectrogram
    assert spec.shape[0] == 65  # n_fft // 2 + 1 frequency rows
    plt.close(fig)
    with pytest.raises(ValueError, match="3 sounds but 1 titles"):
        show_sounds(waves, titles=["x"])
    with pytest.raises(ValueError, match=r"waves must be \(n, 1, L\) or \(n, L\)"):
        show_sounds(torch.zeros(2, 2, 8, 8))
