# %% [markdown]
# # Lesson 1 · What noise is
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{{REPO}}/blob/main/notebooks/{{NAME}}.ipynb)
#
# A diffusion model turns random static into a picture. Before we can undo noise we need to
# know it well, so this lesson is all about noise: what it looks like, how to draw it, how to
# blend it into an image, and why the word *diffusion* fits.
#
# **What you will learn**
# - Gaussian noise: what it looks like, how a seeded generator produces it, and its histogram,
#   mean and variance (and how well a sample estimates them).
# - Two ways to mix an image with noise, and why diffusion models use the one that keeps the
#   variance fixed.
# - The ink-in-water picture: heat diffusion on a grid, and the random walk of particles behind it.
# - The two opposite processes on one chain $x_0, \dots, x_T$: adding noise (a fixed recipe) and
#   removing it (the job a neural network is trained for), and how the course numbers the steps.
#
# **What you need first**: Python and a little PyTorch (tensors, `torch.randn`, indexing).
# Mean and variance from school statistics help; nothing else is assumed.
#
# **Time to run** (Restart & Run All, full mode): under 20 s on a 2-core laptop CPU (measured: 7 s);
# GPU: not measured yet (no GPU was available when this lesson was written).

# %%
# On Colab, install the course package; elsewhere `pip install -r requirements.txt` already did
import sys
if "google.colab" in sys.modules:
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/{{REPO}}"], check=True)

# %%
import os

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from diffusion_lab import NoiseSchedule, add_noise, get_device, load_cat, load_mnist, q_sample, seed_everything
from diffusion_lab.exercises import check_gaussian_noise, check_heat_step, check_mix_keep_variance, hint, solution
from diffusion_lab.viz import plot_chain, plot_histogram, show_images
from diffusion_lab.widgets import FrameSlider, TimestepExplorer

device = get_device()
g = seed_everything(0)
FAST = os.environ.get("DIFFUSION_LAB_FAST") == "1"
print(f"device: {device}, FAST mode: {FAST}")

# %% [markdown]
# ## 1. Noise looks like TV static
#
# Tune an old analogue television to a channel with no station and the screen fills with
# flickering snow. That snow is the everyday face of noise: a value at every dot, chosen at
# random, with no shapes, no edges, no memory of any picture.
#
# The noise in diffusion models is **Gaussian**: every pixel is an independent draw from the
# standard normal distribution $\mathcal{N}(0, 1)$, whose density is the bell curve
# $$p(z) = \frac{1}{\sqrt{2\pi}}\, e^{-z^2/2}.$$
# Most values land between $-2$ and $2$; values beyond $\pm 3$ are rare. Below, each pixel
# is one such number (the course shows data in $[-1, 1]$, so larger values clip to black or white).

# %%
static = torch.randn(1, 64, 64, generator=g)      # one grey channel
static_rgb = torch.randn(3, 64, 64, generator=g)  # red, green, blue drawn independently
fig, axes = plt.subplots(1, 3, figsize=(8, 2.2))
show_images(static, ax=axes[0], title="grey static")
show_images(static_rgb, ax=axes[1], title="colour static")
axes[2].plot(static[0, 32].numpy(), lw=0.8)
axes[2].set(title="row 32 of the grey static", xlabel="column", ylabel="pixel value")
plt.tight_layout()
plt.show()

# %% [markdown]
# Read the right panel as a trace across one line of the screen: neighbouring pixels have
# nothing to do with each other, so the curve jumps up and down without any pattern.

# %% [markdown]
# ## 2. Sampling noise with a generator
#
# A computer does not roll dice. It runs a **pseudo-random generator**: a deterministic
# machine that, started from a number called the *seed*, produces a long stream of values that
# behave like random draws. Same seed, same stream, same static. That is what makes the
# notebooks in this course repeatable, so every random function in `diffusion_lab` takes a
# `generator=` argument, and the setup cell made one for us, `g`.
#
# To get noise with another centre and spread, shift and stretch standard noise: if
# $\epsilon \sim \mathcal{N}(0, 1)$ then $\mu + \sigma\epsilon \sim \mathcal{N}(\mu, \sigma^2)$,
# with mean $\mu$, standard deviation $\sigma$ and variance $\sigma^2$.

# %%
# NBVAL_CHECK_OUTPUT
a = torch.randn(1, 32, 32, generator=torch.Generator().manual_seed(42))
b = torch.randn(1, 32, 32, generator=torch.Generator().manual_seed(42))
c = torch.randn(1, 32, 32, generator=torch.Generator().manual_seed(43))
print("seed 42 twice, identical:", torch.equal(a, b))
print("seed 42 vs seed 43, identical:", torch.equal(a, c))

# %%
fig, axes = plt.subplots(1, 3, figsize=(4.5, 1.8))
for ax, x, title in zip(axes, (a, b, c), ("seed 42", "seed 42 again", "seed 43")):
    show_images(x, ax=ax, title=title)
plt.show()

# %% [markdown]
# ### Exercise 1 (checked): noise with a chosen mean and spread
#
# Write `gaussian_noise(shape, mean, std, generator)`: a tensor of the given `shape` whose
# values are Gaussian with mean `mean` and **standard deviation** `std`, drawn from `generator`.
# `shape` is a tuple; `mean` and `std` are Python floats. Run the cell; the check tells you
# what is wrong. `hint("gaussian_noise")` gives a hint and `solution("gaussian_noise")` shows a
# model answer.

# %%
def gaussian_noise(shape, mean, std, generator):
    # your code here
    raise NotImplementedError


check_gaussian_noise(gaussian_noise)

# %% [markdown]
# ## 3. Histogram, mean and variance
#
# A single picture of static says little; the *distribution* of its values says everything.
# For standard noise the mean is $\mathbb{E}[\epsilon] = 0$ and the variance is
# $\mathrm{Var}[\epsilon] = \mathbb{E}[\epsilon^2] - \mathbb{E}[\epsilon]^2 = 1$.
# From $n$ draws $z_1, \dots, z_n$ we can only *estimate* them:
# $$\hat\mu = \frac{1}{n}\sum_i z_i, \qquad \hat\sigma^2 = \frac{1}{n-1}\sum_i (z_i - \hat\mu)^2 .$$
# These estimates wobble around the truth, and the wobble shrinks as the sample grows.

# %%
for n in (10, 1_000, 100_000):
    z = torch.randn(n, generator=g)
    print(f"n = {n:>7,}: mean {z.mean():+.4f} (theory 0),  variance {z.var():.4f} (theory 1)")

# %%
sizes = (100, 10_000, 1_000_000)
fig, axes = plt.subplots(1, 3, figsize=(10, 2.6), sharey=True)
for ax, n in zip(axes, sizes):
    plot_histogram(torch.randn(n, generator=g), ax=ax, bins=50)
    ax.set_title(f"{n:,} draws")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# With a hundred draws the histogram is ragged; with a million it sits on the dashed bell curve.
# How fast do the estimates tighten? Repeat the experiment many times for each $n$ and
# measure the spread of the estimates. Theory says the typical error of $\hat\mu$ is
# $1/\sqrt{n}$ and that of $\hat\sigma^2$ is about $\sqrt{2/n}$: a hundred times more data buys
# one more correct decimal.

# %%
repeats = 50 if FAST else 200
ns = [10, 100, 1_000, 10_000] if FAST else [10, 100, 1_000, 10_000, 100_000]
err_mean, err_var = [], []
for n in ns:
    z = torch.randn(repeats, n, generator=g).to(device)  # `repeats` independent samples of size n
    err_mean.append(z.mean(dim=1).std().item())          # spread of the mean estimates
    err_var.append(z.var(dim=1).std().item())            # spread of the variance estimates
print("n       spread of mean   1/sqrt(n)   spread of var   sqrt(2/n)")
for n, em, ev in zip(ns, err_mean, err_var):
    print(f"{n:<7} {em:14.4f} {n ** -0.5:11.4f} {ev:15.4f} {(2 / n) ** 0.5:11.4f}")

# %%
ns_t = torch.tensor(ns, dtype=torch.float64)
fig, ax = plt.subplots(figsize=(4.5, 3))
ax.loglog(ns, err_mean, "o", label=r"measured, $\hat\mu$")
ax.loglog(ns, err_var, "s", label=r"measured, $\hat\sigma^2$")
ax.loglog(ns, ns_t ** -0.5, "k--", lw=1, label=r"$1/\sqrt{n}$")
ax.loglog(ns, (2 / ns_t) ** 0.5, "k:", lw=1, label=r"$\sqrt{2/n}$")
ax.set(xlabel="sample size n", ylabel="typical error of the estimate")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 4. Mixing an image with noise
#
# Now blend a picture $x$ with noise $\epsilon$ as $a\,x + b\,\epsilon$, with weights $a, b \ge 0$.
# For independent $x$ and $\epsilon$ the variances add with the *squares* of the weights:
# $$\mathrm{Var}[a\,x + b\,\epsilon] = a^2\,\mathrm{Var}[x] + b^2\,\mathrm{Var}[\epsilon].$$
# The obvious blend is a **plain weighted average**, $a = 1 - w$ and $b = w$, with $w \in [0, 1]$
# the share of noise. If picture and noise both have variance 1, it has variance
# $(1-w)^2 + w^2$, only $0.5$ at $w = 0.5$: the middle of the blend is washed out and grey.
# A **variance-keeping mix** chooses the weights so that $a^2 + b^2 = 1$: variance 1 at every
# $w$. Exercise 2 asks you to find them. To see the difference cleanly we first *standardise*
# each picture (subtract its mean, divide by its standard deviation) to variance 1.

# %%
cat = load_cat(size=64)                    # (3, 64, 64), values in [-1, 1]
digits, labels = load_mnist()              # (10000, 1, 28, 28), values in [-1, 1]
digit = digits[:1]                         # the first test digit, a 7
print(f"cat {tuple(cat.shape)}, std {cat.std():.3f}; digit {tuple(digit.shape)}, std {digit.std():.3f}")

# %%
def standardise(x):
    return (x - x.mean()) / x.std()


cat_s, digit_s = standardise(cat), standardise(digit)
cat_noise = torch.randn(cat.shape, generator=g)
digit_noise = torch.randn(digit.shape, generator=g)
print(f"standardised: cat std {cat_s.std():.3f}, digit std {digit_s.std():.3f}")

# %% [markdown]
# The package already has the variance-keeping mix: it is the article's `add_noise(image, noise,
# alpha_bar_t)` (lesson 2), with $\bar\alpha_t = 1 - w$, the share of the blend's variance that
# comes from the image. We use it here, without looking inside yet, and print the standard
# deviation of every blend.

# %%
def plain_mix(x, noise, w):
    return (1 - w) * x + w * noise


def keep_mix(x, noise, w):
    return add_noise(x, noise, 1 - w)  # the variance-keeping mix, alpha_bar_t = 1 - w

# %%
ws = [0.0, 0.25, 0.5, 0.75, 1.0]
print("   w   std plain (theory)   std keep (theory)")
for w in ws:
    plain, keep = plain_mix(cat_s, cat_noise, w), keep_mix(cat_s, cat_noise, w)
    print(f"{w:.2f}   {plain.std():.3f} ({((1 - w) ** 2 + w ** 2) ** 0.5:.3f})"
          f"      {keep.std():.3f} (1.000)")

# %%
rows = [("cat, plain", cat_s, cat_noise, plain_mix), ("cat, keep", cat_s, cat_noise, keep_mix),
        ("digit, plain", digit_s, digit_noise, plain_mix),
        ("digit, keep", digit_s, digit_noise, keep_mix)]
fig, axes = plt.subplots(4, len(ws), figsize=(1.2 * len(ws), 5.6))
for row, (name, x, eps, mix) in zip(axes, rows):
    mixes = [mix(x, eps, w) for w in ws]
    # one display scale for every panel: +-3 standard deviations map to black and white
    plot_chain([m / 3 for m in mixes], [f"std {m.std():.2f}" for m in mixes], axes=row)
    row[0].text(-0.12, 0.5, name, rotation=90, va="center", ha="right", transform=row[0].transAxes)
for ax, w in zip(axes[0], ws):
    ax.text(0.5, 1.08, f"w = {w}", ha="center", transform=ax.transAxes)
plt.tight_layout()
plt.show()

# %% [markdown]
# The plain average dims in the middle (std about $0.71$ at $w = 0.5$) and recovers only at the
# noise end; the variance-keeping mix stays at full strength all the way, with the picture fading
# *into* the static rather than into grey. Diffusion models rely on this: at every noise level
# the network sees inputs of the same scale. (In the rest of the course images stay in
# $[-1, 1]$ without standardising; the cat then has std $0.32$, and the same mix moves the
# variance smoothly from the image's to exactly 1.)

# %% [markdown]
# ### Exercise 2 (checked): find the variance-keeping weights
#
# A small puzzle first, on paper. `image` and `noise` are independent tensors with variance 1,
# and `w` is a Python float in $[0, 1]$. Find two numbers $a, b \ge 0$, depending on `w`, such that
# the blend $a\cdot\text{image} + b\cdot\text{noise}$
# - keeps variance 1 for every `w`, that is $a^2 + b^2 = 1$, and
# - gets exactly the share `w` of its variance from the noise (so `w = 0` gives back the image
#   and `w = 1` pure noise).
#
# Then write `mix_keep_variance(image, noise, w)` returning that blend. `hint("mix_keep_variance")`
# gives a hint and `solution("mix_keep_variance")` a model answer.

# %%
def mix_keep_variance(image, noise, w):
    # your code here
    raise NotImplementedError


check_mix_keep_variance(mix_keep_variance)

# %% [markdown]
# ## 5. Ink in water: where the name *diffusion* comes from
#
# Let a drop of ink fall into still water. Nobody stirs, yet the dark spot slowly widens and
# pales until the whole glass is faintly tinted: the ink has *diffused*. The total amount of ink
# never changes; it only spreads out.
#
# On a line of cells with ink concentration $u_i$, one time step of this spreading (the
# discrete **heat equation**) moves every cell a little toward the average of its two
# neighbours:
# $$u_i \leftarrow u_i + r\,(u_{i-1} + u_{i+1} - 2u_i), \qquad 0 < r \le \tfrac12 .$$
# Equivalently, each new value is a weighted sum $r\,u_{i-1} + (1-2r)\,u_i + r\,u_{i+1}$: a
# convolution with the three-tap kernel $(r,\ 1-2r,\ r)$. Here it is as a convolution, with the
# ends of the line joined into a ring.

# %%
def heat_step_conv(u, rate):
    """One 1-D heat step as a convolution with (rate, 1 - 2 rate, rate), wrapping at the ends."""
    kernel = torch.tensor([[[rate, 1 - 2 * rate, rate]]], dtype=u.dtype, device=u.device)
    padded = F.pad(u[None, None], (1, 1), mode="circular")  # (1, 1, L + 2)
    return F.conv1d(padded, kernel)[0, 0]

# %%
L, rate = 201, 0.25
steps = [10, 50, 100, 400]
u = torch.zeros(L, device=device)
u[L // 2] = 1.0                                   # all the ink starts in the middle cell
heat = {}
for step in range(1, max(steps) + 1):
    u = heat_step_conv(u, rate)
    if step in steps:
        heat[step] = u.cpu()
print(f"total ink after {max(steps)} steps: {u.sum():.6f} (started with 1)")

# %%
offset = torch.arange(L) - L // 2
fig, ax = plt.subplots(figsize=(7, 2.8))
ax.vlines(0, 0, 0.2, color="k", lw=2, label="step 0 (a spike of height 1)")
for step in steps:
    ax.plot(offset, heat[step], label=f"step {step}")
ax.set(xlim=(-60, 60), ylim=(0, 0.2), xlabel="cell (offset from the drop)", ylabel="ink")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The spike becomes a bell curve that gets wider and lower with every step, and its area (the
# total ink) stays 1.

# %% [markdown]
# ### Exercise 3 (checked): the heat step with `torch.roll`
#
# Write `heat_step(u, rate)` for a 1-D tensor `u` and a Python float `rate`, using the first
# form of the rule above, without a convolution. `torch.roll(u, 1)` shifts every value one
# cell to the right (wrapping around), so it hands each cell its left neighbour.
# `hint("heat_step")` gives a hint and `solution("heat_step")` a model answer.

# %%
def heat_step(u, rate):
    # your code here
    raise NotImplementedError


check_heat_step(heat_step)

# %% [markdown]
# ### The same in two dimensions
#
# On an image, each pixel has four neighbours and the kernel becomes a plus sign with weight
# $r$ on each arm and $1 - 4r$ in the centre ($r \le \tfrac14$). Let us drop some ink in the
# shape of a digit and watch it spread.

# %%
def heat_step_2d(u, rate):
    """One 2-D heat step on an (H, W) grid: four neighbours, wrapping at the edges."""
    kernel = torch.tensor([[0, rate, 0], [rate, 1 - 4 * rate, rate], [0, rate, 0]],
                          dtype=u.dtype, device=u.device)
    padded = F.pad(u[None, None], (1, 1, 1, 1), mode="circular")
    return F.conv2d(padded, kernel[None, None])[0, 0]

# %%
ink = torch.zeros(64, 64, device=device)
ink[18:46, 18:46] = (digit[0, 0].to(device) + 1) / 2  # ink 1 where the digit is written
snap_steps, n_steps = [0, 5, 20, 80, 320], 320
frames = [ink.cpu()]                                  # frames[n]: the ink after n steps
for step in range(n_steps):
    ink = heat_step_2d(ink, 0.2)
    frames.append(ink.cpu())

# %%
fig, axes = plt.subplots(1, len(snap_steps), figsize=(1.7 * len(snap_steps), 2.1))
for ax, step in zip(axes, snap_steps):
    ax.imshow(frames[step], cmap="Blues", vmin=0, vmax=0.5)
    ax.set_title(f"step {step}, ink {frames[step].sum():.0f}", fontsize=9)
    ax.set_axis_off()
plt.tight_layout()
plt.show()

# %% [markdown]
# The same spreading as an animation. The ink spreads fast at first and then ever more slowly
# (its width grows like the square root of the number of steps), so the frames below are taken
# at steps spaced evenly in $\sqrt{n}$. We paint each frame as an RGB picture in $[-1, 1]$:
# white water, blue ink (full colour from concentration 0.5 up, as in the strip).

# %%
movie_steps = sorted({round(n_steps * (k / 40) ** 2) for k in range(41)})
water = torch.ones(3, 1, 1)
blue = torch.tensor([-0.9, -0.3, 0.6]).view(3, 1, 1)  # the colour of full-strength ink
movie = [water + (blue - water) * (frames[n] / 0.5).clamp(0, 1) for n in movie_steps]
movie_labels = [f"step {n} of {n_steps}, total ink {frames[n].sum():.0f}" for n in movie_steps]
print(f"{len(movie)} frames of shape {tuple(movie[0].shape)}")

# %% [markdown]
# Press play, or drag the slider; every frame was computed in the cell above.

# %%
FrameSlider(movie, movie_labels, description="frame", interval=120)

# %% [markdown]
# ### Why random particles give the same bell curve
#
# Zoom in on the water and there is no smooth "concentration", only ink particles, each shoved
# left or right at random by the molecules around it, independently of the others. After $n$
# shoves a particle's position is a sum of $n$ independent random numbers. Variances of
# independent terms add, so if each shove has variance $s^2$ the position has variance
# $n s^2$ and spread $\sqrt{n}\,s$; by the central limit theorem its distribution is Gaussian.
# The concentration is just the histogram of where all the particles are. The heat rule does
# the same: read the kernel $(r,\ 1-2r,\ r)$ as the chances of a move of $-1$, $0$ or $+1$ cell;
# that move has mean 0 and variance $r + r = 2r$, so $n$ steps give variance $2rn$. Walkers with
# Gaussian shoves of variance $2r$ should therefore reproduce it.

# %%
n_particles = 5_000 if FAST else 50_000
shoves = torch.randn(max(steps), n_particles, generator=g).to(device) * (2 * rate) ** 0.5
paths = shoves.cumsum(dim=0).cpu()          # paths[n - 1]: every particle after n shoves
for step in steps:
    print(f"after {step:>3} steps: particle spread {paths[step - 1].std():6.3f}, "
          f"theory sqrt(2 r n) = {(2 * rate * step) ** 0.5:6.3f}")

# %%
fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9.5, 2.8), gridspec_kw={"width_ratios": [2, 1]})
for step in steps:
    bars = ax.hist(paths[step - 1], bins=torch.arange(-60.5, 61.5).numpy(), density=True,
                   alpha=0.35, label=f"particles, step {step}")[2]
    ax.plot(offset, heat[step], color=bars[0].get_facecolor()[:3], lw=1.2)
ax.set(xlim=(-60, 60), xlabel="position", ylabel="ink / share of particles")
ax.legend(fontsize=8, title="bars: particles, lines: heat rule", title_fontsize=8)
n_axis = torch.arange(1, max(steps) + 1)
picks = torch.unique(torch.logspace(0, 2.6, 12).long())  # a dozen steps, evenly on a log axis
ax2.loglog(picks, paths.std(dim=1)[picks - 1], "o", ms=4, label="particles")
ax2.loglog(n_axis, (2 * rate * n_axis) ** 0.5, "k--", lw=1, label=r"$\sqrt{2rn}$")
ax2.set(xlabel="steps n", ylabel="spread")
ax2.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# The particle histograms sit on the heat curves, and the spread grows like $\sqrt{n}$: many
# tiny random shoves, added up, *are* diffusion. A diffusion model does the same to pixels.
# Each pixel value is a particle, and every step of the forward process gives it a small
# Gaussian shove. One twist, made precise in lesson 2: each step also shrinks the value a
# little (it is the variance-keeping mix of section 4 with a tiny $w$), so instead of spreading
# forever the pixels settle into $\mathcal{N}(0, 1)$, the static of section 1.

# %% [markdown]
# ## 6. Two opposite processes on one chain
#
# From here on we need names for the steps of a chain, and the maths and the code count them
# differently. This table is the convention for the whole course:
#
# | maths | code | meaning |
# |---|---|---|
# | $x_0$ | `x0` | a clean image, values in $[-1, 1]$ |
# | $t = 1, \dots, T$ | `t` in `range(T)`, that is $0, \dots, T-1$ | the timestep; code `t` is the paper's step $t + 1$ |
# | $x_{t+1}$ | `q_sample(x0, t, schedule)` | the image after $t + 1$ noising steps |
# | $\bar\alpha_{t+1}$ | `schedule.alpha_bar[t]` | the share of the image's variance left after $t + 1$ steps |
# | $T$ | `len(schedule)` | the number of steps (1000 here); $x_T$ is pure noise |
# | $\epsilon$ | `eps`, `noise` | standard Gaussian noise $\mathcal{N}(0, I)$ |
#
# In the **maths** we number like the DDPM paper: $x_t$ is the image after $t$ steps,
# $t = 1, \dots, T$, and $\bar\alpha_0 = 1$. The **code** indexes from 0, like the DDPM code,
# the diffusers library and the article's `torch.randint(0, 1000)`. So the image after 300
# steps is $x_{300}$ on paper and `q_sample(x0, 299, schedule)` in code. Figure labels and
# captions write a code timestep as "t = 299" or say "after 300 steps", and never $x_{299}$ or
# $\bar\alpha_{299}$ for it.

# %% [markdown]
# The **forward process** walks the chain $x_0 \to x_1 \to \dots \to x_T$, adding a little
# noise each step until nothing of the image is left. The **reverse process** walks it back.
# `q_sample(x0, t, schedule, noise)` jumps straight to $x_{t+1}$ with the variance-keeping mix,
# the share of noise growing as the `NoiseSchedule` says; lesson 2 builds it from scratch.
# In the strip below each panel is named $x_n$ (after $n$ steps) and labelled with the code
# timestep `t = n - 1` that computed it.

# %%
schedule = NoiseSchedule.linear().to(device)    # T = 1000 steps, the DDPM paper's schedule
T = len(schedule)
x0 = cat.to(device)
noise = torch.randn(cat.shape, generator=g).to(device)  # one fixed noise image for the chain
steps_done = [50, 150, 300, 500, 750, 1000]   # x_n is the image after n steps (paper numbering)
chain = [x0] + [q_sample(x0, n - 1, schedule, noise) for n in steps_done]  # code t = n - 1
share = [1.0] + [schedule.alpha_bar[n - 1].item() for n in steps_done]     # alpha_bar_n
names = ["$x_0$"] + ["$x_T$" if n == T else f"$x_{{{n}}}$" for n in steps_done]
codes = ["clean"] + [f"t = {n - 1}" for n in steps_done]
chain_labels = [f"{c}\n{100 * s:.2g}% image" if s < 0.995 else f"{c}\n100% image"
                for c, s in zip(codes, share)]

# %%
fig, axes = plt.subplots(1, len(chain), figsize=(1.45 * len(chain), 2.0))
plot_chain(chain, chain_labels, axes=axes)
for ax, name in zip(axes, names):
    ax.text(0.5, 1.06, name, ha="center", transform=ax.transAxes)
fig.suptitle("add noise  →   a fixed formula plus fresh random numbers", fontsize=11)
fig.text(0.5, -0.04, "only a trained network can find the way back   ←  remove noise",
         ha="center", fontsize=11)
plt.show()

# %% [markdown]
# The percentages are $\bar\alpha_n$, the share of the image's variance left after $n$ steps.
# Moving right takes nothing but the formula and new random numbers: no parameters, no
# training. Moving left is another matter, and the strip only makes it look easy because we
# kept the forward frames. Starting from $x_T$ alone, nothing in it says "cat": only
# $\sqrt{\bar\alpha_T}$ of the image's amplitude survives, and the noisy cat is statistically
# indistinguishable from fresh static.

# %%
# NBVAL_CHECK_OUTPUT
abar_T = NoiseSchedule.linear().alpha_bar[-1].item()   # the last entry, t = T - 1, is alpha_bar_T
print(f"alpha_bar_T = {abar_T:.2e}; image amplitude left sqrt(alpha_bar_T) = {abar_T ** 0.5:.4f}")

# %%
fresh = torch.randn(cat.shape, generator=g).to(device)
for name, x in (("x_T of the cat", chain[-1]), ("fresh noise", fresh)):
    corr = torch.corrcoef(torch.stack([x.flatten(), x0.flatten()]))[0, 1]
    print(f"{name:>14}: mean {x.mean():+.3f}, std {x.std():.3f}, "
          f"correlation with the cat {corr:+.3f}")

# %% [markdown]
# So the reverse process has to *invent* the image, a little per step, by knowing what images
# look like. That knowledge is what a neural network learns: given $x_t$ and $t$, predict the
# noise hidden in it, remove a bit, repeat. Lessons 2 to 6 build exactly this: the forward
# process made precise (2), schedules (3), the reverse step and the network (4), training (5)
# and sampling (6).

# %% [markdown]
# As a teaser for lesson 2, drag the slider (or press play) to move the cat along the chain.
# It uses the same image, noise and schedule as the strip above. The slider is the *code*
# timestep: it starts at `t = 299`, which is $x_{300}$ (after 300 steps), the fourth panel of
# the strip. The $\bar\alpha$ it prints is `schedule.alpha_bar[t]`, the paper's $\bar\alpha_{t+1}$.

# %%
TimestepExplorer(cat, schedule, t=299, noise=noise[None], device=device)

# %% [markdown]
# ## Summary
#
# - Gaussian noise is static: every value an independent draw from $\mathcal{N}(0, 1)$. A seeded
#   generator makes it repeatable, and $\mu + \sigma\epsilon$ gives any mean and spread.
# - Sample estimates of the mean and variance wobble by about $1/\sqrt{n}$ and $\sqrt{2/n}$.
# - Mixing with weights $\sqrt{1-w}$ and $\sqrt{w}$ keeps unit variance; a plain weighted
#   average dims the picture in the middle.
# - Diffusion is spreading: the heat rule turns a spike into a widening bell curve, exactly the
#   histogram of particles taking Gaussian random steps, with spread growing like $\sqrt{n}$.
# - A diffusion model runs one chain $x_0 \dots x_T$ both ways: adding noise is a fixed recipe,
#   removing it takes a trained network. Maths counts steps from 1 ($x_t$ after $t$ steps); code
#   counts from 0 (`q_sample(x0, t, schedule)` is $x_{t+1}$).
#
# ## Going further
#
# 1. In section 3, change `repeats` to 20 and then 1000: which points of the error plot move,
#    and why do the measured points scatter less around the lines with more repeats?
# 2. In section 4, replace `cat_s` by the unstandardised `cat` (std 0.32) in the table cell.
#    Where does the variance-keeping mix start and end now, and is it still constant?
# 3. In the 1-D heat simulation, set `rate = 0.6` (above the limit of 1/2). What happens to
#    the curve after a few dozen steps, and what does the kernel $(r, 1-2r, r)$ look like then?
# 4. Replace the Gaussian `shoves` by coin flips of size $\pm\sqrt{2r}$
#    (`(torch.randint(0, 2, ..., generator=g) * 2 - 1) * (2 * rate) ** 0.5`). Do the
#    histograms after 400 steps still match the heat curves? (The central limit theorem says yes.)
# 5. Add a pull toward zero to the walk: `x = (1 - beta) ** 0.5 * x + beta ** 0.5 * eps` with
#    `beta = 0.02`, starting all particles at `x = 3.0`. Plot the histogram after 50, 200 and
#    1000 steps: where does it settle? This is lesson 2's forward step.
# 6. In section 6, change `steps_done` to `[5, 10, 20, 50, 100, 200]` or use `NoiseSchedule.cosine()`:
#    how quickly does the cat disappear at the start of the chain?
