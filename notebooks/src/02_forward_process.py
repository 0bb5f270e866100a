# %% [markdown]
# # Lesson 2 · The forward process
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{{REPO}}/blob/main/notebooks/{{NAME}}.ipynb)
#
# **What you will learn**
#
# - how one small noising step $x_{t-1} \to x_t$ works, and why it shrinks the image while it adds noise
# - the closed form that jumps from $x_0$ to any $x_t$ at once, and why it is exact
# - how to confirm by simulation that a thousand small steps and one jump give the same distribution
# - why the forward process needs no training, and why that makes training the model cheap
# - how to get $x_0$ back exactly when the noise is known: the idea behind the noise predictor
#
# **What you need first**: Lesson 1 (Gaussian noise; mixing an image with noise so that the
# variance stays 1) and basic PyTorch tensors.
#
# **Time to run** (Restart & Run All, full mode): under 30 s on a 2-core laptop CPU (measured: 13 s);
# GPU: not measured yet (no GPU was available when this lesson was written).

# %%
# On Colab, install the course package; elsewhere `pip install -r requirements.txt` already did
import sys
if "google.colab" in sys.modules:
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/{{REPO}}"], check=True)

# %%
import os
import time
import matplotlib.pyplot as plt
import torch
from diffusion_lab import (NoiseSchedule, eps_to_x0, forward_chain, forward_step, get_device,
                           load_cat, load_mnist, q_sample, seed_everything)
from diffusion_lab.exercises import (check_add_noise, check_alpha_bar_from_betas,
                                     check_forward_step, check_x0_from_noise, hint, solution)
from diffusion_lab.viz import plot_chain, plot_histogram, show_images
from diffusion_lab.widgets import TimestepExplorer
device = get_device()
g = seed_everything(0)
FAST = os.environ.get("DIFFUSION_LAB_FAST") == "1"
print(f"device: {device}, FAST mode: {FAST}")

# %% [markdown]
# ## 1. One small step
#
# The forward process destroys a picture slowly, over $T$ steps ($T = 1000$ here). Each step
# takes the previous image, scales it down a touch and adds a small dose of fresh Gaussian noise:
#
# $$q(x_t \mid x_{t-1}) = \mathcal N\big(\sqrt{1-\beta_t}\,x_{t-1},\ \beta_t I\big),
# \qquad\text{that is}\qquad x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\epsilon_t,
# \quad \epsilon_t \sim \mathcal N(0, I).$$
#
# Here $q(x_t \mid x_{t-1})$ is the distribution of $x_t$ given $x_{t-1}$, and
# $\mathcal N(m, \beta_t I)$ is a Gaussian with mean $m$ and covariance $\beta_t I$ ($I$ is the
# identity matrix): $\beta_t I$ means every pixel gets its own independent noise of variance
# $\beta_t$, the noise dose of step $t$. The DDPM paper (Ho et al., 2020) lets $\beta_t$ grow
# linearly from $0.0001$ to $0.02$. The scale factor $\sqrt{1-\beta_t}$ is Lesson 1's mixing rule:
# if $x_{t-1}$ has variance 1, so does $x_t$, because $(1-\beta_t) + \beta_t = 1$. Without it the
# variance would creep upwards with every step.

# %%
# NBVAL_CHECK_OUTPUT
schedule = NoiseSchedule.linear(num_timesteps=1000)  # Ho et al. (2020): betas from 1e-4 to 0.02
print(schedule)
print(f"beta at the first step: {schedule.betas[0]:.4f}, at the last step: {schedule.betas[-1]:.4f}")

# %% [markdown]
# ### A note on counting: code $t$ versus paper $t$
#
# This lesson follows the convention of Lesson 1's notation table. The maths counts like the
# paper: $x_0$ is the clean image and $x_1, \dots, x_T$ the noisy ones. Python arrays start at 0,
# so the code (like the original DDPM code and the `diffusers` library) stores the first noisy
# level at index `t = 0` and pure noise at `t = T - 1 = 999`: code `t` means *after t + 1 steps*.
# So `schedule.betas[0]` is the paper's $\beta_1$, and `schedule.alpha_bar[0]` is the paper's
# $\bar\alpha_1$, already a hair below 1. The clean image has no code timestep; it is simply `x0`.
# Figure labels such as "t = 9" are code timesteps (here: after 10 steps).

# %%
# NBVAL_CHECK_OUTPUT
print(f"alpha_bar[0]   = {schedule.alpha_bar[0]:.4f}    the paper's t = 1, i.e. 1 - beta_1")
print(f"alpha_bar[999] = {schedule.alpha_bar[999]:.2e}  the paper's t = T = 1000")

# %% [markdown]
# One step barely changes the cat. `forward_step(x_prev, t, schedule, noise)` is the package's
# version of the equation above; we hand it the noise so we can see exactly what goes in.

# %%
cat = load_cat(size=64).to(device)  # (3, 64, 64), values in [-1, 1]
step_noise = torch.randn(cat.shape, generator=g).to(device)
x_first = forward_step(cat, 0, schedule, step_noise)  # code t = 0 is the first step
print(f"largest change of any pixel after one step: {(x_first - cat).abs().max():.4f}")

# %% [markdown]
# Now run the whole chain. `forward_chain` takes the steps one after another, each with fresh
# noise, and yields `(t, xt)` after every step, where `xt` is the image after `t + 1` steps; we
# keep a few of them. Under each panel: the code timestep and the number of steps taken.

# %%
keep = [0, 9, 49, 99, 249, 499, 999]
snapshots = {t: xt for t, xt in forward_chain(cat[None], schedule, generator=g) if t in keep}
labels = ["clean $x_0$\n(0 steps)"] + [f"t = {t}\n({t + 1} step{'s' * (t > 0)})" for t in keep]
plot_chain([cat] + [snapshots[t] for t in keep], labels, arrow="add a little noise per step  →")
plt.show()

# %% [markdown]
# **Exercise 1 (checked).** Write one forward step yourself: given the previous image `x_prev`
# and a noise tensor `noise` of the same shape, and the noise variance `beta_t` (a Python float,
# not a tensor), return $x_t$. Then run the cell: the check tells you what is right or wrong.
# `hint("forward_step")` gives a hint and `solution("forward_step")` shows a model answer.

# %%
def forward_step_mine(x_prev, noise, beta_t):
    # your code here
    raise NotImplementedError

check_forward_step(forward_step_mine)

# %% [markdown]
# ## 2. Jumping straight to step $t$
#
# To get $x_{500}$ we do not have to take 500 steps. Define $\alpha_s = 1 - \beta_s$ and their
# running product $\bar\alpha_t = \prod_{s=1}^{t} \alpha_s$. Then
#
# $$q(x_t \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t) I\big),
# \qquad x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon, \quad
# \epsilon \sim \mathcal N(0, I).$$
#
# Read $\bar\alpha_t$ as the share of the clean image's variance that survives at step $t$, and
# $1-\bar\alpha_t$ as the share taken over by noise. The article packs this formula into a
# function `add_noise(image, noise, alpha_bar_t)`. Section 3 shows why the formula holds.
#
# **Exercise 2 (checked).** Write `add_noise` yourself: `image` and `noise` are tensors of the
# same shape and `alpha_bar_t` is a Python float (not a tensor); return $x_t$ from the formula
# above. `hint("add_noise")` gives a hint and `solution("add_noise")` a model answer.

# %%
def add_noise_mine(image, noise, alpha_bar_t):
    # your code here
    raise NotImplementedError

check_add_noise(add_noise_mine)

# %% [markdown]
# ### The article's version (answer to Exercise 2: solve it first)
#
# Once your check says [Correct], here is the article's `add_noise`, as written (code and
# comment copied from the source article); compare it with yours. It passes the same check:

# %%
import torch

def add_noise(image, noise, alpha_bar_t):
    # alpha_bar_t controls how much original image remains
    noisy_image = (alpha_bar_t ** 0.5) * image + ((1 - alpha_bar_t) ** 0.5) * noise
    return noisy_image

check_add_noise(add_noise)

# %% [markdown]
# Run it on the cat with one fixed noise tensor and a few values of $\bar\alpha_t$. Near 1 the
# photo dominates, near 0 the static does, and in between the cat fades smoothly.

# %%
levels = [0.99, 0.9, 0.7, 0.5, 0.3, 0.1, 0.01]
jumps = [add_noise(cat, step_noise, a) for a in levels]  # same noise, different alpha_bar
plot_chain(jumps, [rf"$\bar\alpha$ = {a}" for a in levels], arrow="the article's add_noise, one jump each")
plt.show()

# %% [markdown]
# ## 3. Why many small steps collapse into one jump
#
# Suppose that after $t-1$ steps $x_{t-1} = \sqrt{\bar\alpha_{t-1}}\,x_0 + \sqrt{1-\bar\alpha_{t-1}}\,\bar\epsilon$
# with $\bar\epsilon \sim \mathcal N(0, I)$. This is true at the start ($\bar\alpha_0 = 1$). Take one more step:
#
# $$x_t = \sqrt{\alpha_t \bar\alpha_{t-1}}\,x_0
# + \underbrace{\sqrt{\alpha_t(1-\bar\alpha_{t-1})}\,\bar\epsilon + \sqrt{1-\alpha_t}\,\epsilon_t}_{\text{two independent Gaussians}}.$$
#
# The signal's coefficients multiply, giving $\sqrt{\bar\alpha_t}$ with $\bar\alpha_t = \alpha_t\bar\alpha_{t-1}$.
# For the noise we use one fact: a sum of independent zero-mean Gaussians is again Gaussian, and
# its variance is the sum of their variances, here $\alpha_t(1-\bar\alpha_{t-1}) + 1 - \alpha_t = 1 - \bar\alpha_t$.
# So $x_t$ has the same form with $t-1$ replaced by $t$, and by induction
# $\bar\alpha_t = \prod_{s \le t}(1-\beta_s)$ at every step. Note what this claims: the one-jump
# $\epsilon$ is not the noise of any single step. It stands in for all of them combined, so the
# two routes agree *in distribution*, not sample by sample.
#
# This derivation counts like the paper, so its $\bar\alpha_0 = 1$ belongs to the clean image and
# is not `alpha_bar[0]`: the code's `alpha_bar[t]` is the paper's $\bar\alpha_{t+1}$ (see the note on
# counting in section 1).
#
# **Exercise 3 (checked).** In code terms: `betas` is a 1-D tensor (`betas[0]` is the first
# step's); return a tensor the same length as `betas` whose entry `t` is
# the product of `(1 - betas[s])` for `s = 0, 1, ..., t`: the signal share left after `t + 1` steps.
# `hint("alpha_bar_from_betas")` and `solution("alpha_bar_from_betas")` are there if you need them.

# %%
def alpha_bar_from_betas_mine(betas):
    # your code here
    raise NotImplementedError

check_alpha_bar_from_betas(alpha_bar_from_betas_mine)

# %% [markdown]
# The schedule stores the same running product. The plot shows how the signal's share of the
# variance drains away while the noise's share fills up; they cross where $\bar\alpha$ falls
# to 0.5. The horizontal axis is the code timestep `t`, so the curve shows `alpha_bar[t]`.

# %%
running_product = torch.cumprod(1 - schedule.betas.double(), dim=0)  # (T,)
torch.testing.assert_close(running_product.float(), schedule.alpha_bar)
t_half = int((schedule.alpha_bar < 0.5).nonzero()[0])
fig, ax = plt.subplots(figsize=(6, 2.5))
ax.plot(schedule.alpha_bar, label=r"signal share $\bar\alpha$")
ax.plot(1 - schedule.alpha_bar, label=r"noise share $1-\bar\alpha$")
ax.axvline(t_half, color="k", ls=":", lw=0.8)
ax.set_xlabel("code timestep t (after t + 1 steps)")
ax.set_title(f"half the variance is noise from t = {t_half} on", fontsize=10)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 4. Checking it numerically: 1000 small steps against one jump
#
# Sample both routes many times and compare. We take a tiny $8\times 8$ cat (192 numbers),
# make thousands of copies, and push every copy through the chain with its own noise. At
# several $t$ the spread over copies should match the closed form: for each pixel, the mean over
# copies should be $\sqrt{\bar\alpha_t}\,x_0$ and the standard deviation $\sqrt{1-\bar\alpha_t}$.
#
# How close is close enough? With $N$ copies a sample mean wanders by about $\sigma/\sqrt N$ and a
# sample standard deviation by about $\sigma/\sqrt{2N}$ (their standard errors), with
# $\sigma = \sqrt{1-\bar\alpha_t}$. Across 192 pixels the worst one lands two to four standard
# errors out by chance alone, so we allow five.

# %%
num_copies = 500 if FAST else 3000
tiny = load_cat(size=8).to(device)  # (3, 8, 8)
copies = tiny.expand(num_copies, -1, -1, -1)  # (N, 3, 8, 8): N copies of the same x_0
check_ts = [9, 99, 299, 999]
start = time.perf_counter()
chain = {t: xt for t, xt in forward_chain(copies, schedule, generator=g) if t in check_ts}
print(f"{num_copies} chains of 1000 small steps: {time.perf_counter() - start:.1f} s")
jump = {t: q_sample(copies, t, schedule, generator=g) for t in check_ts}  # one jump each

# %%
for t in check_ts:
    a = schedule.alpha_bar[t].item()
    mean_err = (chain[t].mean(0) - a**0.5 * tiny).abs().max().item()
    std_err = (chain[t].std(0) - (1 - a) ** 0.5).abs().max().item()
    tol_mean = 5 * (1 - a) ** 0.5 / num_copies**0.5  # 5 standard errors of a mean
    tol_std = 5 * (1 - a) ** 0.5 / (2 * num_copies) ** 0.5  # 5 standard errors of a std
    print(f"t = {t:3d}: worst mean error {mean_err:.4f} (allowed {tol_mean:.4f}), "
          f"worst std error {std_err:.4f} (allowed {tol_std:.4f})")
    assert mean_err < tol_mean and std_err < tol_std

# %% [markdown]
# Means and spreads match. To see the whole distribution, follow one pixel, the one farthest
# from 0 (so its mean has the longest way to travel), and histogram its values over all copies,
# from the chain and from the jump, beside the Gaussian the formula predicts. The last panel is
# a quantile-quantile (Q-Q) plot: sorted chain values against sorted jump values, one colour per
# timestep. Points on the diagonal mean the two distributions agree.

# %%
pixel = tiny.flatten().abs().argmax()  # the number farthest from 0 (a dark pixel)
x0_pixel = tiny.flatten()[pixel].item()
per_t = {t: (chain[t].flatten(1)[:, pixel].cpu(), jump[t].flatten(1)[:, pixel].cpu())
         for t in check_ts}  # t -> (N values from the chain, N values from the jump)

# %%
fig, axes = plt.subplots(1, 5, figsize=(12, 2.4))
z, quantiles = torch.linspace(-3.5, 3.5, 200), torch.linspace(0.005, 0.995, 99)
for ax, (t, (by_chain, by_jump)) in zip(axes, per_t.items()):
    mean, std = schedule.alpha_bar[t].sqrt().item() * x0_pixel, (1 - schedule.alpha_bar[t]).sqrt().item()
    ax.hist(by_chain, bins=40, density=True, alpha=0.6, label="chain")
    ax.hist(by_jump, bins=40, density=True, histtype="step", lw=1.2, label="jump")
    ax.plot(mean + std * z, torch.exp(-z**2 / 2) / (std * (2 * torch.pi) ** 0.5), "k--", lw=1,
            label="formula")
    ax.set_title(f"t = {t}", fontsize=9)
    axes[4].plot(by_chain.quantile(quantiles), by_jump.quantile(quantiles), ".", ms=3, label=f"t = {t}")
axes[0].legend(fontsize=7)
axes[4].axline((0, 0), slope=1, color="k", lw=0.8)
axes[4].set(xlabel="chain quantiles", ylabel="jump quantiles")
axes[4].set_title("Q-Q: chain vs jump", fontsize=9)
axes[4].legend(fontsize=6)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5. Build, then import, then check
#
# The package has its own version of the jump, `q_sample(x0, t, schedule, noise)`. It looks up
# $\bar\alpha_t$ for each image's timestep itself, accepts one $t$ per image, and checks its
# inputs. Given the same images, the same timesteps and the same noise, it must return the same
# numbers as the article's function; `torch.testing.assert_close` fails loudly if it does not.
# The course uses this pattern throughout: write the idea in a few lines, import the tested
# version, and check that the two agree.

# %%
t_batch = torch.tensor([0, 99, 499, 999], device=device)  # one timestep per image
x0_batch = cat.expand(4, -1, -1, -1)  # (4, 3, 64, 64)
eps = torch.randn(x0_batch.shape, generator=g).to(device)
alpha_bar_t = schedule.alpha_bar.to(device)[t_batch].view(-1, 1, 1, 1)  # (4, 1, 1, 1)
from_article = add_noise(x0_batch, eps, alpha_bar_t)
from_package = q_sample(x0_batch, t_batch, schedule, eps)
torch.testing.assert_close(from_article, from_package)
print("the article's add_noise and the package's q_sample agree")

# %%
show_images(torch.cat([from_article, from_package]), nrow=4,
            title="top: the article's add_noise, bottom: q_sample (t = 0, 99, 499, 999)")
plt.show()

# %% [markdown]
# ## 6. Why the forward process needs no learning
#
# Nothing in the forward process is fitted to data. It is fixed before training starts by the
# $T$ numbers $\beta_t$, and it has no trainable parameters. Thanks to the closed form, a
# training step can give every image in a batch its own random $t$ and make its noisy version
# with one multiply-add, without simulating the steps before it. And because we drew the noise
# ourselves, we know exactly what a network should answer when asked "what noise is in here?".
# The timing below shows how much the shortcut saves.

# %%
digits, labels = load_mnist()  # (10000, 1, 28, 28) in [-1, 1]
batch = digits[:64].to(device)
start = time.perf_counter()
for _, x_by_steps in forward_chain(batch, schedule, generator=g):
    pass
chain_ms = 1000 * (time.perf_counter() - start)
start = time.perf_counter()
for _ in range(100):  # one jump is too quick to time alone: average over 100
    x_by_jump = q_sample(batch, 999, schedule, generator=g)
jump_ms = 1000 * (time.perf_counter() - start) / 100
print(f"64 digits to t = 999: {chain_ms:.0f} ms by 1000 steps, {jump_ms:.2f} ms by one jump")

# %% [markdown]
# This is what a training batch looks like: each digit at its own random timestep, drawn the
# way training draws them (`schedule.sample_t`), each made in one jump.

# %%
t_random = schedule.sample_t(8, generator=g)  # (8,) uniform over 0 .. 999
x_train = q_sample(batch[:8], t_random.to(device), schedule, generator=g)
plot_chain(list(x_train), [f"t = {t}" for t in t_random.tolist()],
           arrow="one training batch: a random t per digit")
plt.show()

# %% [markdown]
# ## 7. Undoing the jump when the noise is known
#
# The closed form is a linear equation in $x_0$. If we know $\epsilon$, we can solve it:
#
# $$x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\epsilon}{\sqrt{\bar\alpha_t}}.$$
#
# This recovers the image exactly at every $t$, even from pure noise $x_T$ (code `t = 999`), where
# not a trace of the cat is visible. When we generate images, though, nobody hands us $\epsilon$.
# Lessons 4 and 5 build (4) and train (5) a network that estimates it from $x_t$ and $t$, and
# this same formula (eq. 15 of Ho et al.) turns the estimate into a guess of the clean image.
# With the wrong noise, the formula gives garbage.
#
# **Exercise 4 (checked).** Write the formula above: `xt` and `eps` are tensors of the same shape
# and `alpha_bar_t` is a Python float (not a tensor); return $x_0$. `hint("x0_from_noise")` and
# `solution("x0_from_noise")` are there if you need them.

# %%
def x0_from_noise_mine(xt, eps, alpha_bar_t):
    # your code here
    raise NotImplementedError

check_x0_from_noise(x0_from_noise_mine)

# %% [markdown]
# The package's version is `eps_to_x0(xt, eps_hat, alpha_bar_t)`. Noise the cat all the way, then
# undo it with the true noise and with a wrong guess (fresh noise):

# %%
xt = q_sample(cat[None], 999, schedule, eps[:1])  # (1, 3, 64, 64), the cat is invisible
x0_back = eps_to_x0(xt, eps[:1], schedule.alpha_bar[999])
print(f"largest pixel error with the true noise: {(x0_back - cat).abs().max():.1e}")
wrong_eps = torch.randn(xt.shape, generator=g).to(device)
x0_wrong = eps_to_x0(xt, wrong_eps, schedule.alpha_bar[999])
plot_chain([xt, eps[:1], x0_back, x0_wrong],
           ["$x_T$\n(code t = 999)", r"true $\epsilon$", "$x_0$ from\n" r"true $\epsilon$",
            "$x_0$ from a\n" r"wrong $\epsilon$"])
plt.show()

# %% [markdown]
# ## 8. Pixel histograms drift to $\mathcal N(0, 1)$
#
# Now look at all the pixel values of an image at once. Clean digits have two spikes: most
# pixels are dark background at $-1$, and the strokes sit near $+1$. The cat's values bunch up in the
# middle of the range. As $t$ grows, the image term $\sqrt{\bar\alpha_t}\,x_0$ shrinks towards 0 and the
# noise variance $1-\bar\alpha_t$ grows towards 1, so any starting histogram smears into the
# standard normal (dashed curve; the digits' spike at $-1$ is cut off). At the end, $x_T$ (code
# `t = 999`), $\sqrt{\bar\alpha_T} \approx 0.006$: whatever
# image we started from, the end of the chain looks the same. That is why generation can
# start from plain noise.

# %%
hist_ts = [99, 299, 999]
examples = {"digits": digits[:256].to(device), "cat": cat[None]}
fig, axes = plt.subplots(2, 4, figsize=(10, 4), sharex=True)
for row, (name, x0) in zip(axes, examples.items()):
    plot_histogram(x0, ax=row[0], normal=False)
    row[0].set_title(f"{name}, clean", fontsize=9)
    for ax, t in zip(row[1:], hist_ts):
        plot_histogram(q_sample(x0, t, schedule, generator=g), ax=ax)
        ax.set_title(f"{name}, t = {t}", fontsize=9)
for ax in axes.flat:
    ax.set_ylim(0, 1.5)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 9. Explore: a timestep slider
#
# Below, two sliders over the code timestep `t` (0 to 999) show the cat ($128\times128$) and a
# grid of 64 digits. Each widget fixes its noise when it is built, so moving the slider changes
# only `t`, and the image is recomputed live on `device` with `q_sample`. The line under the picture reads out
# $\bar\alpha_t$; the share of the signal's variance still left ($100\,\bar\alpha_t$ %); and
# the two coefficients of $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$.
# Press play to watch the whole chain. Reading this on GitHub, where sliders do not move?
# The strip just below shows the cat at fixed timesteps (the 64-pixel cat of section 1 with its
# fixed noise: noisy pictures compress badly, and small ones keep this notebook light).

# %%
cat128 = load_cat(size=128)[None].to(device)  # (1, 3, 128, 128)
cat_noise = torch.randn(cat128.shape, generator=g).to(device)  # fixed: only t changes
digit_grid = digits[64:128].to(device)  # (64, 1, 28, 28)
digit_noise = torch.randn(digit_grid.shape, generator=g).to(device)
strip_ts = [0, 50, 100, 200, 300, 500, 700, 999]
strip = [q_sample(cat[None], t, schedule, step_noise[None]) for t in strip_ts]
plot_chain(strip, [f"t={t}\n$\\bar\\alpha$={schedule.alpha_bar[t]:.4f}" for t in strip_ts])
plt.show()

# %%
TimestepExplorer(cat128, schedule, t=250, noise=cat_noise, device=device)

# %%
TimestepExplorer(digit_grid, schedule, t=250, noise=digit_noise, device=device)

# %% [markdown]
# ## Summary
#
# - One forward step scales the image by $\sqrt{1-\beta_t}$ and adds noise of variance $\beta_t$,
#   so the total variance stays at 1.
# - Because the variances of independent Gaussians add, $t$ steps equal one jump:
#   $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ with $\bar\alpha_t = \prod_{s\le t}(1-\beta_s)$.
#   That is the article's `add_noise`, and 3000 simulated chains agree with it within sampling error.
# - The forward process is fixed and has no parameters; any $t$ is one jump away, which makes
#   training cheap.
# - With the true noise, $x_0$ comes back exactly from any $x_t$. A network that predicts the
#   noise is therefore all the reverse process needs (Lessons 4 and 5).
# - As $t \to T$ every image's pixel histogram becomes $\mathcal N(0, 1)$.
#
# ## Going further
#
# 1. Set `beta_end=0.01` in `NoiseSchedule.linear(...)`. Is `alpha_bar[999]` still close to 0?
#    Does the end of the strip in section 9 still look like pure noise?
# 2. Change `num_copies` in section 4 to 750 and 12000. Does the worst mean error shrink like
#    $1/\sqrt N$?
# 3. Write a step without the shrink factor, `x_prev + beta_t ** 0.5 * noise`, and run it 1000
#    times on the copies of section 4 (use `schedule.betas[t]` as `beta_t`). What is the variance
#    of a pixel across copies at the end? Every copy starts from the same $x_0$, so only the added
#    noise varies: why is it $\sum_t \beta_t \approx 10.05$ rather than the $1-\bar\alpha_T \approx 1$
#    of the real forward process?
# 4. Build the widget with `NoiseSchedule.cosine()` in place of the linear `schedule`. At which $t$
#    does the cat disappear now?
# 5. In section 4, check that two *different* pixels of `chain[999]` are uncorrelated across
#    copies (`torch.corrcoef`), as the closed form's $I$ in the covariance says.
