# %% [markdown]
# # Lesson 4 · The reverse process and the U-Net
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{{REPO}}/blob/main/notebooks/{{NAME}}.ipynb)
#
# **What you will learn**
#
# - why removing noise is hard: many clean images fit one noisy image, and what the best possible
#   denoiser does about it (it averages them)
# - the reverse step when $x_0$ is known, $q(x_{t-1} \mid x_t, x_0)$: its mean and variance, and
#   why it is Bayes' rule for two Gaussians
# - that an oracle which knows $x_0$, hence the exact noise in any $x_t$, walks the chain back
#   from pure noise exactly, and the article's `generate` running with its missing `remove_noise`
#   filled in
# - the reverse-step mean written with the predicted noise (Ho et al. 2020, eq. 11): why a noise
#   predictor is all we need
# - the U-Net piece by piece: timestep embedding, residual blocks, the way down, self-attention in
#   the middle, the way up with skip connections, with the shapes printed at every stage
#
# **What you need first**: lessons 2 and 3 (the one-jump formula
# $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$, getting $x_0$ back from known
# noise, $\beta_t$ and $\bar\alpha_t$, and the course's way of counting timesteps), and a little
# PyTorch (`nn.Module`, convolutions).
#
# **Time to run** (Restart & Run All, full mode): under 1 minute on a 2-core laptop CPU (measured: 34 s);
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
import torch.nn.functional as F
from diffusion_lab import NoiseSchedule, get_device, load_cat, load_mnist, q_posterior, q_sample, seed_everything
from diffusion_lab.exercises import check_ddpm_mean, check_posterior_mean, check_timestep_embedding, hint, solution
from diffusion_lab.models import SinusoidalEmbedding, UNet
from diffusion_lab.samplers import ddpm_sample, ddpm_step, remove_noise as package_remove_noise
from diffusion_lab.viz import plot_chain
from diffusion_lab.widgets import FrameSlider
device = get_device()
g = seed_everything(0)
FAST = os.environ.get("DIFFUSION_LAB_FAST") == "1"
print(f"device: {device}, FAST mode: {FAST}")

# %% [markdown]
# ## 1. Why removing noise is hard
#
# Section 7 of lesson 2 gave a formula that gets $x_0$ back from $x_t$ exactly, *if* we know the
# noise $\epsilon$. Without it, a noisy image does not point to one clean image: every clean image,
# paired with a suitable noise, could have produced it. Some are just much more plausible than
# others.

# %% [markdown]
# To see this without any neural network, pretend that the 10,000 bundled digits are *all* the
# images in the world, each equally likely. **Bayes' rule** says how plausible a cause is after
# seeing the evidence: posterior $\propto$ likelihood $\times$ prior, that is, how likely the cause
# makes the evidence times how plausible the cause was beforehand. With equal priors, each candidate
# $x_0^{(i)}$ is plausible in proportion to $q(x_t \mid x_0^{(i)})$, the Gaussian of lesson 2.
# The guess with the smallest mean squared error is the average of the candidates under these
# weights, the **ideal denoiser**:
#
# $$\mathbb E[x_0 \mid x_t] = \sum_i w_i\, x_0^{(i)}, \qquad
# w_i = \frac{\exp\!\big(-\lVert x_t - \sqrt{\bar\alpha_t}\,x_0^{(i)}\rVert^2 / (2(1-\bar\alpha_t))\big)}
# {\sum_j \exp\!\big(-\lVert x_t - \sqrt{\bar\alpha_t}\,x_0^{(j)}\rVert^2 / (2(1-\bar\alpha_t))\big)}.$$
#
# The weights are a softmax, and 10,000 distances in 784 dimensions take a few milliseconds.
# (Timesteps follow lesson 1's convention: maths counts like the paper, code `t` means *after
# t + 1 steps*, so `schedule.alpha_bar[t]` is the paper's $\bar\alpha_{t+1}$.)

# %%
digits, labels = load_mnist()  # (10000, 1, 28, 28) in [-1, 1]: our whole "world" of images
schedule = NoiseSchedule.linear()  # T = 1000, betas from 1e-4 to 0.02 (Ho et al. 2020)
world = digits.flatten(1).to(device)  # (10000, 784): one row per candidate x_0

# %%
def ideal_denoiser(xt, t):
    """E[x_0 | x_t] if x_0 is one of the 10k digits, all equally likely; also returns the weights."""
    a = schedule.alpha_bar[t].item()  # code t: the image after t + 1 steps
    dist2 = ((xt.flatten() - a ** 0.5 * world) ** 2).sum(dim=1)  # (10000,) squared distances
    weights = torch.softmax(-dist2 / (2 * (1 - a)), dim=0)  # Bayes' rule, normalised
    return (weights @ world).view(xt.shape), weights

# %% [markdown]
# Take one digit, noise it to several timesteps with the *same* noise, and ask the ideal denoiser
# for its best guess each time. Under each guess we print the **effective number of digits** it
# averages, $n_\text{eff} = 1 / \sum_i w_i^2$: 1 when one weight is 1, and 10,000 when all are equal.

# %%
x0 = digits[0].to(device)  # (1, 28, 28): a 7, our clean image
noise = torch.randn(x0.shape, generator=g).to(device)
ts = [99, 299, 349, 399, 449, 549, 699, 999]  # code timesteps
noisy, guesses, n_eff = [], [], []
for t in ts:
    xt = q_sample(x0[None], t, schedule, noise[None])[0]  # (1, 28, 28)
    guess, w = ideal_denoiser(xt, t)
    noisy.append(xt)
    guesses.append(guess)
    n_eff.append(1 / (w ** 2).sum().item())

# %%
fig, axes = plt.subplots(2, len(ts) + 1, figsize=(10, 2.5))
plot_chain([x0] + noisy, ["clean $x_0$"] + [f"t = {t}\n$\\bar\\alpha$ = {schedule.alpha_bar[t]:.2g}"
                                           for t in ts], axes=axes[0])
plot_chain([digits.mean(0)] + guesses, ["mean of all\n10k digits"] +
           [f"$n_{{eff}}$ = {n:.3g}" if n < 100 else f"$n_{{eff}}$ = {n:,.0f}" for n in n_eff], axes=axes[1])
axes[0, 1].text(-0.15, 0.5, "$x_t$", transform=axes[0, 1].transAxes, ha="right", va="center")
axes[1, 1].text(-0.15, 0.5, "ideal\nguess", transform=axes[1, 1].transAxes, ha="right", va="center")
fig.tight_layout()
plt.show()

# %% [markdown]
# Up to about `t = 350` the noisy 7 is still far closer to its own clean version than to any other
# digit, so the ideal guess is that one digit, perfectly sharp. A little later several digits
# become plausible and the guess is their blend (with this noise, at `t = 549` it even leans
# towards a 4); near the end thousands are, and the guess fades into the average of all digits.
# Here are the most plausible candidates at the first timestep where more than two digits count:

# %%
t_mid = next(t for t, n in zip(ts, n_eff) if n > 2)  # the first t where >2 digits share the weight
_, w = ideal_denoiser(noisy[ts.index(t_mid)], t_mid)
top = w.topk(8)
plot_chain(list(digits[top.indices.cpu()]), [f"w = {v:.3f}" for v in top.values.tolist()],
           arrow=f"the 8 most plausible clean digits for the noisy 7 at t = {t_mid}")
plt.show()

# %% [markdown]
# How does this depend on $t$, and on the digit? Run the ideal denoiser over the whole range of
# timesteps for five digits and plot $n_\text{eff}$ and the error of the guess (root mean square
# over pixels, against the true $x_0$). Each digit gets its own fresh noise, kept fixed across its
# timesteps, so the curve of digit 0 (the same 7) is not exactly what the strip above showed:
# another noise draw moves the point where other digits start to compete.

# %%
grid_ts = list(range(0, 1000, 50 if FAST else 10))
curves = {}
for i in range(5):
    eps = torch.randn(x0.shape, generator=g).to(device)
    ws = [ideal_denoiser(q_sample(digits[i:i + 1].to(device), t, schedule, eps[None])[0], t)
          for t in grid_ts]
    curves[i] = ([1 / (w ** 2).sum().item() for _, w in ws],
                 [(guess - digits[i].to(device)).pow(2).mean().sqrt().item() for guess, _ in ws])

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 2.7))
for i, (neff, rms) in curves.items():
    axes[0].semilogy(grid_ts, neff, label=f"digit {i} (a {labels[i].item()})")
    axes[1].plot(grid_ts, rms)
axes[0].set(xlabel="code timestep t", ylabel="$n_{eff}$ (log scale)")
axes[1].set(xlabel="code timestep t", ylabel="RMS error of the ideal guess")
axes[0].set_title("how many digits the guess averages", fontsize=10)
axes[1].set_title("how far the guess is from the true $x_0$", fontsize=10)
axes[0].legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# Read the curves from left to right. At first each digit is unmistakable: $n_\text{eff}$ is 1 and
# the error 0. Then, roughly between `t = 400` and `t = 650`, both change sharply: other digits
# become plausible, the guess turns into a blend and its error jumps; beyond that it drifts towards
# the average of all digits. The 1 (digit 2, green) starts to share its weight much earlier, around
# `t = 230`: a thin stroke fits many other thin digits.
#
# This is the whole difficulty of the reverse process in two curves. A network trained with a
# squared-error loss (lesson 5) learns to approximate exactly this average, so its guess of $x_0$
# is blurry at high noise: not a flaw, but the best single answer when many answers fit. (Our toy
# world of 10k digits also shows a limit: at low noise the ideal denoiser just returns a digit it
# has seen; a network generalises because it cannot store them all.)

# %% [markdown]
# So we do not jump from $x_T$ to $x_0$ in one go, which would give the blurry average. We take a
# small step towards the current guess, add a little fresh noise, and ask again. Each step narrows
# the set of plausible images, until one remains. The rest of this lesson makes that step precise.

# %% [markdown]
# ## 2. One step back when $x_0$ is known: the posterior
#
# Suppose for a moment that we know $x_0$. Given $x_t$, what was $x_{t-1}$? With both ends pinned,
# the step in between is a Gaussian with a closed form (Ho et al. 2020, eqs. 6-7):
#
# $$q(x_{t-1} \mid x_t, x_0) = \mathcal N\big(x_{t-1};\ \tilde\mu_t(x_t, x_0),\ \tilde\beta_t I\big),$$
#
# $$\tilde\mu_t(x_t, x_0) = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,x_0
# + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t, \qquad
# \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t,$$
#
# with $\alpha_t = 1-\beta_t$. Here $\mathcal N(x; \mu, \Sigma)$ is the Gaussian density with mean
# $\mu$ and covariance $\Sigma$, evaluated at $x$ (lesson 2 wrote $\mathcal N(\mu, \Sigma)$ for the
# distribution itself). The mean is a weighted mix of where we are ($x_t$) and where we are
# going ($x_0$). At $t = 1$ (code `t = 0`), where $\bar\alpha_0 = 1$, the weight of $x_0$ is 1 and
# the variance is 0: the last step lands exactly on $x_0$.

# %% [markdown]
# ### Why: Bayes' rule for two Gaussians
#
# Since the forward process is a chain, $x_t$ depends on $x_0$ only through $x_{t-1}$, and Bayes'
# rule gives $q(x_{t-1} \mid x_t, x_0) \propto q(x_t \mid x_{t-1})\, q(x_{t-1} \mid x_0)$. Per pixel,
# both factors are bells in $x_{t-1}$:
#
# - the **prior** from $x_0$ (lesson 2's jump to step $t-1$): mean $\sqrt{\bar\alpha_{t-1}}\,x_0$,
#   variance $1-\bar\alpha_{t-1}$;
# - the **likelihood** from $x_t$: $q(x_t \mid x_{t-1})$, read as a function of $x_{t-1}$, is a bell
#   centred at $x_t / \sqrt{\alpha_t}$ with variance $\beta_t / \alpha_t$.
#
# A product of two Gaussian bells is a Gaussian bell: the precisions (inverse variances) add, and
# the mean is the precision-weighted average of the two means,
#
# $$\frac{1}{\tilde\beta_t} = \frac{1}{1-\bar\alpha_{t-1}} + \frac{\alpha_t}{\beta_t}, \qquad
# \tilde\mu_t = \tilde\beta_t \left(\frac{\sqrt{\bar\alpha_{t-1}}\,x_0}{1-\bar\alpha_{t-1}}
# + \frac{\sqrt{\alpha_t}\,x_t}{\beta_t}\right).$$
#
# With $\beta_t + \alpha_t(1-\bar\alpha_{t-1}) = 1-\bar\alpha_t$ this simplifies to the formulas above.

# %% [markdown]
# In code, the package's `q_posterior(x0, xt, t, schedule)` takes `xt` at code timestep `t` (after
# `t + 1` steps) and returns the mean and variance of the image one step earlier (after `t` steps).
# So at code `t` (paper step $t+1$) the formula's $\bar\alpha_t$, $\bar\alpha_{t-1}$ and $\beta_t$
# are `schedule.alpha_bar[t]`, `schedule.alpha_bar_prev[t]` and `schedule.betas[t]`; at code
# `t = 0`, `alpha_bar_prev[0]` is the paper's $\bar\alpha_0 = 1$. Before using the package's
# version, write your own.

# %% [markdown]
# **Exercise 1 (checked).** Write the posterior mean $\tilde\mu_t$. `x0` and `xt` are tensors of the
# same shape; `alpha_bar_t` ($\bar\alpha_t$), `alpha_bar_prev` ($\bar\alpha_{t-1}$) and `beta_t`
# ($\beta_t$) are Python floats, not tensors. Return the mean, a tensor shaped like `xt`.
# `hint("posterior_mean")` gives a hint and `solution("posterior_mean")` shows a model answer.

# %%
def posterior_mean_mine(x0, xt, alpha_bar_t, alpha_bar_prev, beta_t):
    # your code here
    raise NotImplementedError

check_posterior_mean(posterior_mean_mine)

# %% [markdown]
# Once the check says [Correct], the next cell compares your function with the package's
# `q_posterior` on four digits at code `t = 499` (it skips the comparison until then).

# %%
t_ex = 499
x0_ex, xt_ex = digits[:4], q_sample(digits[:4], t_ex, schedule, generator=g)
if check_posterior_mean(posterior_mean_mine):  # True only once yours is correct
    floats = [schedule.alpha_bar[t_ex].item(), schedule.alpha_bar_prev[t_ex].item(),
              schedule.betas[t_ex].item()]  # alpha_bar_t, alpha_bar_prev, beta_t
    torch.testing.assert_close(posterior_mean_mine(x0_ex, xt_ex, *floats),
                               q_posterior(x0_ex, xt_ex, t_ex, schedule)[0], rtol=1e-4, atol=1e-5)
    print(f"posterior_mean_mine agrees with the package's q_posterior at code t = {t_ex}")
else:
    print("comparison skipped: posterior_mean_mine is not correct yet")

# %% [markdown]
# Now the package's version on one pixel, whose clean value is 0.6. First the product of the two
# bells on a fine grid of candidate values:

# %%
def gauss(z, mean, var):
    return torch.exp(-(z - mean) ** 2 / (2 * var)) / (2 * torch.pi * var) ** 0.5

z = torch.linspace(-5, 5, 100_001, dtype=torch.float64)  # candidate values one step earlier

# %%
def bayes_on_a_grid(x0, xt, t):
    """Prior from x_0, likelihood from x_t and their product, on the grid z (one pixel, code t > 0)."""
    a_prev, beta = schedule.alpha_bar_prev[t].double(), schedule.betas[t].double()
    prior = gauss(z, a_prev.sqrt() * x0, 1 - a_prev)  # q(x_{t-1} | x_0)
    likelihood = gauss(xt, (1 - beta).sqrt() * z, beta)  # q(x_t | x_{t-1} = z), a function of z
    return [p / torch.trapezoid(p, z) for p in (prior, likelihood, prior * likelihood)]

# %%
x0_pixel, pixel_ts = 0.6, [1, 499]  # two code timesteps: at the very start and in the middle
observed = {t: q_sample(torch.tensor([x0_pixel]), t, schedule, generator=g).item() for t in pixel_ts}
posterior = {}
for t in pixel_ts:
    *_, product = bayes_on_a_grid(x0_pixel, observed[t], t)
    grid_mean = torch.trapezoid(z * product, z)
    grid_var = torch.trapezoid((z - grid_mean) ** 2 * product, z)
    mean, var = q_posterior(torch.tensor([x0_pixel]), torch.tensor([observed[t]]), t, schedule)
    posterior[t] = (mean.item(), var.item())
    print(f"code t = {t}: pixel {observed[t]:+.4f}   grid product: mean {grid_mean:+.5f}, "
          f"std {grid_var.sqrt():.5f}   q_posterior: mean {mean.item():+.5f}, std {var.sqrt().item():.5f}")

# %% [markdown]
# The two agree to the digits shown. As a second, independent check, simulate the forward process
# itself: draw millions of pairs $(x_{t-1}, x_t)$ from the clean pixel, keep only the pairs whose
# $x_t$ landed very close to the observed value, and look at their $x_{t-1}$. That is conditioning
# done by brute force, a **Monte Carlo** estimate (a quantity estimated from many random samples
# rather than computed from a formula).

# %%
n_mc = 200_000 if FAST else 2_000_000
kept = {}
for t in pixel_ts:
    a_prev, beta = schedule.alpha_bar_prev[t].double(), schedule.betas[t].double()
    x_prev = a_prev.sqrt() * x0_pixel + (1 - a_prev).sqrt() * torch.randn(n_mc, generator=g, dtype=torch.float64)
    x_t = (1 - beta).sqrt() * x_prev + beta.sqrt() * torch.randn(n_mc, generator=g, dtype=torch.float64)
    near = (x_t - observed[t]).abs() < 0.01 * (1 - schedule.alpha_bar[t]).sqrt()  # a thin slice
    kept[t] = x_prev[near]
    mean, var = posterior[t]
    print(f"code t = {t}: kept {near.sum():7d} pairs; Monte Carlo mean {kept[t].mean():+.4f} "
          f"(q_posterior {mean:+.4f}), std {kept[t].std():.4f} (q_posterior {var ** 0.5:.4f})")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 2.9))
for ax, t in zip(axes, pixel_ts):
    prior, likelihood, _ = bayes_on_a_grid(x0_pixel, observed[t], t)
    mean, var = posterior[t]
    ax.hist(kept[t], bins=40, range=(mean - 4 * var ** 0.5, mean + 4 * var ** 0.5), density=True,
            color="0.8", label="Monte Carlo")
    now, prev = f"x_{{{t + 1}}}", f"x_{{{t}}}"  # the paper's names of this step's input and output
    ax.plot(z, prior, "--", label=f"prior $q({prev} \\mid x_0)$")
    ax.plot(z, likelihood, ":", lw=2, label=f"likelihood $q({now} \\mid {prev})$")
    ax.plot(z, gauss(z, mean, var), "k", lw=1, label="posterior (q_posterior)")
    spread = max(1 - schedule.alpha_bar_prev[t].item(), schedule.betas[t].item()) ** 0.5
    ax.set_xlim(mean - 3.5 * spread, mean + 3.5 * spread)
    ax.set_title(f"code t = {t}: paper ${now} \\to {prev}$", fontsize=10)
    ax.set(xlabel=f"pixel value of ${prev}$, one step earlier", ylabel="density")
    ax.legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# At the very start of the chain (left) the two bells have similar widths, and the posterior sits
# between them, narrower than either. Already a few steps later the prior is the wider one. In the
# middle (right) it is almost flat, because after 499 steps $x_0$ says little about the pixel, while
# one small step of noise pins $x_{t-1}$ tightly to $x_t$: the posterior is nearly the likelihood,
# nudged a little towards the prior's centre. One reverse step is a small, careful move, which is
# why the chain needs many of them.

# %% [markdown]
# ## 3. An oracle that knows $x_0$ reverses the chain exactly
#
# Now cheat on purpose. Build an **oracle**: a "model" that knows $x_0$ (the clean cat), hence the
# exact noise in any $x_t$. Given $x_t$ and $t$, it solves the one-jump formula for the noise and
# returns $\epsilon = (x_t - \sqrt{\bar\alpha_t}\,x_0)/\sqrt{1-\bar\alpha_t}$.
#
# Every model in the course follows one contract, `model(xt, t, cond=None)`: `xt` is a batch of
# noisy images, `t` a code timestep (an `int`, or one per image as a tensor of shape `(B,)`), and
# the answer has the shape of `xt`. `cond` is for conditioning (lessons 8 and 9); the oracle
# ignores it. `schedule.at` looks up $\bar\alpha$ for either kind of `t` and shapes it to broadcast
# against `xt`.

# %%
def make_oracle(x0):
    """A 'model' that knows x0, so it returns the exact noise hidden in any x_t."""
    def oracle(xt, t, cond=None):
        a = schedule.at(schedule.alpha_bar, t, like=xt)  # alpha_bar for an int t or a (B,) t
        return (xt - a.sqrt() * x0.to(xt.device)) / (1 - a).sqrt()
    return oracle

# %%
cat = load_cat(64).to(device)  # (3, 64, 64) in [-1, 1]
oracle = make_oracle(cat)

# %% [markdown]
# `ddpm_sample(model, schedule, x_T)` runs the reverse chain over all $T$ steps, walking the code
# timesteps `t = 999, 998, ..., 0`. The step at code `t` asks the model for the noise, turns it
# into a guess $\hat x_0$ (lesson 2's formula), takes the posterior mean of section 2 with $\hat x_0$
# in place of $x_0$ and adds fresh noise of variance $\tilde\beta$. Its input has `t + 1` steps of
# noise in it and its output `t`, one fewer, so the step at `t = 0` returns $x_0$. It yields a
# `SamplerStep(i, t, xt, x0_hat)` per step; we keep every tenth. We start from plain noise.

# %%
x_T = torch.randn((1, 3, 64, 64), generator=g).to(device)  # pure noise: no cat in it
start = time.perf_counter()
kept_steps = [s for s in ddpm_sample(oracle, schedule, x_T, generator=g, progress=False)
              if s.t % 10 == 9 or s.t == 0]
print(f"1000 reverse steps in {time.perf_counter() - start:.1f} s; kept {len(kept_steps)}")
print(f"largest pixel error of the final image: {(kept_steps[-1].xt[0] - cat).abs().max():.1e}")

# %%
strip_ts = [999, 699, 499, 349, 249, 149, 49, 0]
by_t = {s.t: s for s in kept_steps}
fig, axes = plt.subplots(2, len(strip_ts), figsize=(10, 3.4))
plot_chain([by_t[t].xt for t in strip_ts], [f"t = {t}\n({t} steps left)" for t in strip_ts],
           axes=axes[0])
plot_chain([by_t[t].x0_hat for t in strip_ts], [r"$\hat x_0$" for t in strip_ts], axes=axes[1])
fig.suptitle(r"the oracle's reverse chain: the new sample (top) and the guess $\hat x_0$ (bottom)")
fig.tight_layout()
plt.show()

# %% [markdown]
# The cat comes back. The guess $\hat x_0$ is the cat from the first step on, because the oracle
# knows it; what the sampler adds is the *path*: each step draws from the posterior of section 2,
# so the chain walks back down through the same noise levels that the forward process climbed.
# The noise left in each sample, $x - \sqrt{\bar\alpha}\,x_0$, has the standard deviation
# $\sqrt{1-\bar\alpha}$ of the matching forward step:

# %%
for t in [999, 499, 249, 49, 0]:
    a = schedule.alpha_bar_prev[t].item()  # the signal share after t steps (1 at t = 0)
    left = by_t[t].xt[0] - a ** 0.5 * cat
    print(f"after the step at t = {t:3d}: noise std {left.std():.4f}, forward process {(1 - a) ** 0.5:.4f}")

# %% [markdown]
# Drag the slider (or press play) to scrub through the kept steps: on the left the new sample, on
# the right the oracle's $\hat x_0$. Every frame was computed in the cell above; the strip shows the
# same frames for readers on GitHub.

# %%
frames = [torch.stack([s.xt[0], s.x0_hat[0]]) for s in kept_steps]  # 101 frames of (2, 3, 64, 64)
frame_labels = [f"step at t = {s.t}: left the new sample ({s.t} steps of noise left), right x0_hat"
                for s in kept_steps]
FrameSlider(frames, frame_labels, nrow=2, description="step", interval=80)

# %% [markdown]
# ## 4. So a network that predicts the noise is all we need
#
# The sampler in section 3 needed only one thing from the model: the noise. Call the model's noise
# guess $\hat\epsilon$. Lesson 2's formula turns it into a guess of $x_0$,
# $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$, which the sampler puts
# into the posterior mean $\tilde\mu_t$ in place of $x_0$. Substitute it, using
# $\sqrt{\bar\alpha_{t-1}}/\sqrt{\bar\alpha_t} = 1/\sqrt{\alpha_t}$:
#
# $$\tilde\mu_t = \frac{\beta_t}{\sqrt{\alpha_t}\,(1-\bar\alpha_t)}\big(x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon\big)
# + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t
# = \frac{\beta_t + \alpha_t(1-\bar\alpha_{t-1})}{\sqrt{\alpha_t}\,(1-\bar\alpha_t)}\,x_t
# - \frac{\beta_t}{\sqrt{\alpha_t}\,\sqrt{1-\bar\alpha_t}}\,\hat\epsilon.$$
#
# The identity $1-\bar\alpha_t = \beta_t + \alpha_t(1-\bar\alpha_{t-1})$ of section 2 (it is just
# $1 - \alpha_t\bar\alpha_{t-1}$ rearranged) makes the weight of $x_t$ equal to $1/\sqrt{\alpha_t}$,
# and $x_0$ has disappeared.

# %% [markdown]
# The paper writes the network as $\epsilon_\theta(x_t, t)$: a function of the noisy image and the
# timestep, with weights $\theta$ (all the numbers that training adjusts), whose output is the noise
# guess $\hat\epsilon$. The result is the reverse-step mean of Ho et al. (2020, eq. 11), and the step:
#
# $$\mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\left(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,
# \epsilon_\theta(x_t, t)\right), \qquad x_{t-1} = \mu_\theta(x_t, t) + \sigma_t z, \quad z \sim \mathcal N(0, I).$$
#
# Read it as two moves: remove a small share $\beta_t/\sqrt{1-\bar\alpha_t}$ of the predicted noise,
# then undo the shrinking by $\sqrt{\alpha_t}$ that the forward step applied. The package uses
# $\sigma_t^2 = \tilde\beta_t$ (Ho et al. found $\beta_t$ works about as well), and $z = 0$ in the last
# step. Everything except $\epsilon_\theta$ is a number from the schedule.

# %% [markdown]
# **Exercise 2 (checked).** Write the reverse-step mean of eq. 11, `ddpm_mean_mine(xt, eps_hat,
# alpha_bar_t, beta_t)` (the same order as in Exercise 1: tensors first, then $\bar\alpha_t$, then
# $\beta_t$). `xt` and `eps_hat` are tensors of the same shape; `alpha_bar_t` ($\bar\alpha_t$) and
# `beta_t` ($\beta_t$) are Python floats, not tensors. Return only the mean $\mu_\theta$ (no noise
# term), a tensor shaped like `xt`. `hint("ddpm_mean")` gives a hint and `solution("ddpm_mean")`
# shows a model answer.

# %%
def ddpm_mean_mine(xt, eps_hat, alpha_bar_t, beta_t):
    # your code here
    raise NotImplementedError

check_ddpm_mean(ddpm_mean_mine)

# %% [markdown]
# Once it is correct, the next cell compares it with the package's `ddpm_step`, which takes the
# long way: the $x_0$ guess, then the posterior mean. `ddpm_step` clips $\hat x_0$ to $[-1, 1]$ by
# default, which changes the answer when the guess is poor (a random one is); we switch that off,
# and pass zero noise to get the mean alone.

# %%
eps_ex = torch.randn(xt_ex.shape, generator=g)  # a random noise guess for xt_ex (code t = 499)
if check_ddpm_mean(ddpm_mean_mine):  # True only once yours is correct
    mean, _ = ddpm_step(xt_ex, eps_ex, t_ex, schedule, noise=torch.zeros_like(xt_ex), clip_x0=False)
    mine = ddpm_mean_mine(xt_ex, eps_ex, schedule.alpha_bar[t_ex].item(), schedule.betas[t_ex].item())
    torch.testing.assert_close(mine, mean, rtol=1e-4, atol=1e-4)
    print(f"ddpm_mean_mine agrees with the package's ddpm_step at code t = {t_ex}")
else:
    print("comparison skipped: ddpm_mean_mine is not correct yet")

# %% [markdown]
# The two routes agree for *any* noise guess, not only a good one: that is the algebra above.
# Here it is checked at four code timesteps with eq. 11 typed in directly (`eq11_mean` is a
# spoiler for Exercise 2, so solve that first).

# %%
def eq11_mean(xt, eps_hat, t):
    beta, a = schedule.betas[t], schedule.alpha_bar[t]
    return (xt - beta / (1 - a).sqrt() * eps_hat) / (1 - beta).sqrt()

# %%
x0_batch = digits[:4].to(device)
for t in [0, 9, 499, 999]:
    eps = torch.randn(x0_batch.shape, generator=g).to(device)
    xt = q_sample(x0_batch, t, schedule, eps)
    eps_hat = eps + 0.3 * torch.randn(eps.shape, generator=g).to(device)  # an imperfect guess
    mean, _ = ddpm_step(xt, eps_hat, t, schedule, noise=torch.zeros_like(xt), clip_x0=False)
    torch.testing.assert_close(eq11_mean(xt, eps_hat, t), mean, rtol=1e-4, atol=1e-4)
print("eq. 11 and the posterior mean with the x_0 guess agree at code t = 0, 9, 499, 999")

# %% [markdown]
# ### The article's `generate`, with `remove_noise` filled in
#
# The article's sampling loop calls `remove_noise(x, predicted_noise, t)` but never defines it.
# It is one step of eq. 11 plus fresh noise (the package's version also clips the $x_0$ guess to
# $[-1, 1]$, so it is eq. 11 exactly whenever that guess already lies in $[-1, 1]$, as it always does
# for the oracle), and it needs the schedule that the model was trained with. The package's
# `remove_noise` takes the schedule as a fourth argument; we wrap it to get the article's
# three-argument signature.

# %%
schedule = NoiseSchedule.linear()  # the schedule the model was trained with (here: the oracle's)

def remove_noise(x, predicted_noise, t):
    """The article's missing step: eq. 11 (x0 guess clipped to [-1, 1]), plus fresh noise."""
    return package_remove_noise(x, predicted_noise, t, schedule)

# %% [markdown]
# Here is the article's `generate`, as written (code and comments copied from "Diffusion Models" by
# Amit Shekhar, Outcome School, the article this course grew from).
# Its comment "from step 999 down to 0" counts in code timesteps, like ours. We give it the oracle
# as the model, and for contrast a model that knows nothing and always predicts zero noise:

# %%
def generate(model):
    x = torch.randn(1, 3, 64, 64)             # start from pure noise
    for t in reversed(range(1000)):           # go from step 999 down to 0
        predicted_noise = model(x, t)         # predict the noise
        x = remove_noise(x, predicted_noise, t)   # subtract a part of it
    return x                                   # final clean image

# %%
start = time.perf_counter()
from_oracle = generate(oracle)
from_zero_model = generate(lambda xt, t, cond=None: torch.zeros_like(xt))  # predicts "no noise"
print(f"two runs of generate in {time.perf_counter() - start:.1f} s")
print(f"oracle: largest pixel error against the cat {(from_oracle[0] - cat.cpu()).abs().max():.1e}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(6, 2.3))
plot_chain([cat, from_oracle, from_zero_model],
           ["the cat", "generate(oracle)", "generate(model that\npredicts zero noise)"], axes=axes)
plt.show()

# %% [markdown]
# The article's loop returns the cat. The model that always predicts zero noise takes every $x_t$
# for a faded clean image, so the static is never taken out, and static is what comes out.

# %% [markdown]
# Be clear about what this shows and what it does not. The loop and `remove_noise` are right, but
# the oracle only works because it was *handed* $x_0$. A real model never sees $x_0$ at sampling
# time; it must guess the noise from $x_t$ and $t$ alone, and section 1 showed what the best such
# guess is: an average over every plausible clean image. Lesson 5 trains a network to make that
# guess on digits, and lesson 6 samples new digits with it, using this same loop. The next section
# builds that network.

# %% [markdown]
# ## 5. The U-Net, piece by piece
#
# The network has to map an image to an image of the same shape (the predicted noise), and it has
# to know the noise level. The standard choice (Ronneberger et al. 2015; adapted for diffusion by
# Ho et al. 2020) is a **U-Net**: a way down that halves the resolution and adds channels, a middle
# at the coarsest resolution, and a way up that doubles the resolution again. Skip connections hand
# each level of the way up the features saved at the same resolution on the way down, and every
# residual block is told the timestep. The course's `UNet` for $28\times 28$ digits:

# %%
torch.manual_seed(0)  # the same initial weights on every run
model = UNet(in_channels=1, image_size=28, channels=(32, 64, 128)).to(device)
x8 = digits[:8].to(device)  # a batch of 8 digits
t8 = schedule.sample_t(8, generator=g).to(device)  # one random code timestep per digit
xt8 = q_sample(x8, t8, schedule, generator=g)  # (8, 1, 28, 28)
print("timesteps:", t8.tolist(), " input:", tuple(xt8.shape))

# %% [markdown]
# ### 5.1 Telling the network the timestep
#
# The single number `t` (a code timestep from 0 to 999) is a poor input for a network: one feature
# with a huge range. Instead it is spread over $d$ features with sines and cosines at $d/2$
# frequencies that fall geometrically from 1 towards $1/10000$ (Vaswani et al. 2017, the
# Transformer's position code):
#
# $$\operatorname{emb}(t) = \big[\sin(\omega_0 t), \dots, \sin(\omega_{d/2-1} t),\ \cos(\omega_0 t), \dots,
# \cos(\omega_{d/2-1} t)\big], \qquad \omega_i = 10000^{-i/(d/2)}, \quad i = 0, \dots, d/2 - 1.$$
#
# The first frequency is 1 and the last a little above $1/10000$.

# %% [markdown]
# **Exercise 3 (checked).** Write the embedding. `t` is an integer tensor of shape `(B,)` (code
# timesteps) and `dim` a Python `int` (even). With `half = dim // 2`, use the frequencies
# `10000 ** (-i / half)` for `i = 0, ..., half - 1`, and return a float tensor of shape
# `(B, dim)`: all `half` sines first, then all `half` cosines (not interleaved).
# `hint("timestep_embedding")` gives a hint and `solution("timestep_embedding")` a model answer.

# %%
def timestep_embedding_mine(t, dim):
    # your code here
    raise NotImplementedError

check_timestep_embedding(timestep_embedding_mine)

# %% [markdown]
# The package's version is the module `SinusoidalEmbedding(dim)`. Once your check says [Correct],
# the next cell compares the two on 28 code timesteps.

# %%
t_check = torch.arange(0, 1000, 37)
if check_timestep_embedding(timestep_embedding_mine):  # True only once yours is correct
    torch.testing.assert_close(timestep_embedding_mine(t_check, 32), SinusoidalEmbedding(32)(t_check),
                               rtol=1e-4, atol=1e-4)
    print("timestep_embedding_mine agrees with the package's SinusoidalEmbedding(32)")
else:
    print("comparison skipped: timestep_embedding_mine is not correct yet")

# %% [markdown]
# Fast sines tell neighbouring timesteps apart; slow ones vary smoothly over the whole range.
# The U-Net uses $d = 32$ (its first channel count). Below: the code of every `t` (and a zoom on the
# first 100), and how similar every code is to the codes of three chosen timesteps (cosine
# similarity). No two timesteps share a code, and neighbours have similar codes, as the printed
# averages show. (The slowest features hardly change over 1000 steps: the constant 10000 comes from
# the Transformer's long texts. The MLP that follows simply learns to rely on the features that do.)

# %%
embed = SinusoidalEmbedding(32)
all_t = torch.arange(1000)
codes = embed(all_t)  # (1000, 32)
unit = codes / codes.norm(dim=1, keepdim=True)
for k in (1, 5, 50):
    print(f"cosine similarity of the codes of t and t + {k:2d}, averaged over t: "
          f"{(unit[:-k] * unit[k:]).sum(dim=1).mean():.3f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 2.8), gridspec_kw={"width_ratios": [3, 1.6, 2.2]})
for ax, stop in zip(axes, (1000, 101)):
    im = ax.imshow(codes[:stop].T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1,
                   interpolation="antialiased" if stop == 1000 else "nearest",
                   extent=(-0.5, stop - 0.5, 31.5, -0.5))
    ax.set_xlabel("code timestep t")
axes[0].set_ylabel("feature (sines, then cosines)")
axes[0].set_title("sinusoidal embedding of t = 0 ... 999, d = 32", fontsize=10)
axes[1].set_title("zoom: t = 0 ... 100", fontsize=10)
fig.colorbar(im, ax=axes[1], fraction=0.08)
for t_ref in (100, 500, 900):
    axes[2].plot(all_t, unit @ unit[t_ref], label=f"t = {t_ref}")
axes[2].set(xlabel="code timestep t", ylabel="cosine similarity")
axes[2].set_title("no two t share a code", fontsize=10)
axes[2].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Inside the U-Net, `time_mlp` passes these 32 features through two linear layers with a SiLU
# between them (the smooth activation $\mathrm{SiLU}(x) = x \cdot \mathrm{sigmoid}(x)$) to get 128
# numbers per image, `emb`, that every residual block receives:

# %%
emb = model.time_mlp(t8)  # SinusoidalEmbedding(32), then Linear(32, 128), SiLU, Linear(128, 128)
print("t:", tuple(t8.shape), "-> emb:", tuple(emb.shape))

# %% [markdown]
# ### 5.2 A residual block, and where the time goes in
#
# A `ResBlock` is normalise → SiLU → $3\times3$ convolution, twice, plus a shortcut that adds the
# block's input to its output (a $1\times1$ convolution when the channel count changes). The
# normalisation is GroupNorm: it splits the channels into 8 groups and rescales each group of each
# image to mean 0 and variance 1, then applies a learned scale and shift per channel. Between
# the two convolutions the time enters: a linear layer turns `emb` into **one number per channel**,
# added to every pixel of that channel's feature map. Each feature map is shifted up or down
# according to the noise level, so the same filters can behave differently at `t = 10` and
# `t = 900`. Here is the block that takes 32 channels to 64 at $14\times14$:

# %%
res_block = model.down[1][0]  # the first ResBlock of level 1 (14 x 14)
feats = torch.randn(8, 32, 14, 14, generator=g).to(device)  # some feature maps
time_shift = res_block.time(F.silu(emb))[:, :, None, None]  # one number per image and channel
out = res_block(feats, emb)
print(f"in {tuple(feats.shape)} + time shift {tuple(time_shift.shape)} -> out {tuple(out.shape)}")
print(res_block)

# %% [markdown]
# To see that the time really is one number per channel, compute the inside of the block (first
# convolution plus time shift) for the same feature maps at `t = 10` and at `t = 900`. The
# difference is the same at every pixel of a channel; only its size changes from channel to channel.

# %%
def inside(t):
    emb_t = model.time_mlp(torch.full((8,), t, device=device))
    shift = res_block.time(F.silu(emb_t))[:, :, None, None]  # one number per image and channel
    return res_block.conv1(F.silu(res_block.norm1(feats))) + shift

with torch.no_grad():
    change = inside(900) - inside(10)  # (8, 64, 14, 14)
print(f"change per channel: from {change.mean(dim=(2, 3)).min():+.3f} to {change.mean(dim=(2, 3)).max():+.3f};"
      f" largest spread over the pixels of one channel: {change.std(dim=(2, 3)).max():.1e}")

# %% [markdown]
# ### 5.3 One batch through the whole network, module by module
#
# The next three cells replicate `UNet.forward` with the model's own modules and print the shape
# after every stage. On the way down, each level runs its residual block, **saves the result** for
# the skip connection, then halves the resolution with a stride-2 convolution (not after the last
# level). `show` prints a stage and records it for the diagram at the end.

# %%
stages = []  # (name, shape) for every stage, in the order the data flows

def show(name, x):
    stages.append((name, tuple(x.shape)))
    print(f"{name:30s} {tuple(x.shape)}")

# %%
with torch.no_grad():
    h = model.conv_in(xt8)
    show("conv_in", h)
    skips = []
    for level, (blocks, down) in enumerate(zip(model.down, model.downsample)):
        for block in blocks:
            h = block(h, emb)
        skips.append(h)  # saved for the way up
        show(f"down {level}: ResBlock (skip saved)", h)
        if level < len(model.down) - 1:  # no downsampling after the last level
            h = down(h)
            show(f"down {level}: downsample", h)

# %% [markdown]
# In the middle, at $7\times7$, comes **self-attention**. Each of the 49 positions becomes a token
# of 128 numbers; every token compares itself with all the others and mixes in their features,
# weighted by how well they match. A $3\times3$ convolution only sees neighbours; attention lets the
# top of a digit talk to its bottom. Its cost grows with the square of the number of positions:
# $49^2 \approx 2{,}400$ pairs here, $784^2 \approx 615{,}000$ at $28\times28$, so it lives only here.

# %%
with torch.no_grad():
    h = model.mid1(h, emb)
    show("middle: ResBlock", h)
    h = model.mid_attn(h)  # 4 heads over 7 * 7 = 49 tokens of 128 numbers
    show("middle: self-attention", h)
    h = model.mid2(h, emb)
    show("middle: ResBlock", h)

# %% [markdown]
# On the way up, each level first **concatenates** the features saved at the same resolution on
# the way down (`torch.cat` along the channels, doubling them), runs a residual block, and then
# doubles the resolution (nearest-neighbour upsampling and a convolution). The way down threw away
# detail that a $7\times7$ map cannot hold; the skips bring it back, and noise prediction must be
# exact to the pixel. A last normalise, SiLU and convolution map to one channel.

# %%
with torch.no_grad():
    for k, (blocks, up) in enumerate(zip(model.up, model.upsample)):
        level = len(model.up) - 1 - k  # the way up visits the levels 2, 1, 0
        h = torch.cat([h, skips.pop()], dim=1)  # the skip of the same resolution
        show(f"up {level}: cat with skip", h)
        for block in blocks:
            h = block(h, emb)
        show(f"up {level}: ResBlock", h)
        if level > 0:  # no upsampling at the top level
            h = up(h)
            show(f"up {level}: upsample", h)
    eps_hat = model.conv_out(F.silu(model.norm_out(h)))
    show("conv_out: predicted noise", eps_hat)
    torch.testing.assert_close(eps_hat, model(xt8, t8))
print("same as model(xt, t); largest output value:", eps_hat.abs().max().item())

# %% [markdown]
# Our replica matches `model(xt, t)`. The output is exactly zero: the last convolution starts with
# zero weights, so an untrained U-Net predicts "no noise", a calm starting point for training
# (lesson 5). Here is the journey as a picture, drawn from the recorded shapes: box height shows
# the resolution, box width the channels, and the dashed arrows the skip connections. The word above
# each box names its module: `Res` a residual block, `down` and `up` the resampling, `cat` the
# concatenation of a skip, `attn` the self-attention.

# %%
kinds = {"attention": "attn", "cat": "cat", "downsample": "down", "upsample": "up",
         "conv_out": "out", "conv_in": "in", "ResBlock": "Res"}  # short names for the boxes
ys = {28: 0.0, 14: -1.3, 7: -2.6}  # one row per resolution
fig, ax = plt.subplots(figsize=(12, 3.8))
for i, (name, (_, c, size, _)) in enumerate(stages):
    y, height, width = ys[size], 0.9 * size / 28 + 0.15, 0.15 + 0.55 * c / 256
    ax.add_patch(plt.Rectangle((i - width / 2, y - height / 2), width, height, alpha=0.7,
                               color="tab:orange" if "attention" in name else "tab:blue"))
    ax.text(i, y + height / 2 + 0.04, next(v for k, v in kinds.items() if k in name),
            ha="center", va="bottom", fontsize=8)
    ax.text(i, y - height / 2 - 0.06, f"{c} ch\n{size}×{size}", ha="center", va="top", fontsize=8)
saved = [i for i, (name, _) in enumerate(stages) if "skip saved" in name]
joined = [i for i, (name, _) in enumerate(stages) if "cat with skip" in name]
for i, j in zip(saved, reversed(joined)):
    size = stages[i][1][2]
    y = ys[size] + (0.9 * size / 28 + 0.15) / 2 + 0.3
    ax.annotate("", (j, y), (i, y), arrowprops=dict(arrowstyle="->", color="0.4", ls="--"))
ax.set(xlim=(-0.7, len(stages) - 0.3), ylim=(-3.4, 1.0))
ax.set_axis_off()
ax.set_title("the U-Net on 28×28 digits: channels (ch) and resolution at every stage "
             "(orange: self-attention, dashed: skip connections)", fontsize=10)
plt.show()

# %% [markdown]
# ### 5.4 The whole model, its size and its speed
#
# `print(model)` lists every module, and the parameters add up by part as follows.

# %%
print(model)

# %%
# NBVAL_CHECK_OUTPUT
for name, part in model.named_children():
    print(f"{name:10s} {sum(p.numel() for p in part.parameters()):>9,d}")
print(f"{'total':10s} {model.num_parameters():>9,d} parameters")

# %% [markdown]
# How big a U-Net can a laptop train? Lesson 5 trains on the CPU for a few minutes, so speed
# matters as much as size. For three channel settings we count the work of one training step per
# image (forward pass, squared-error loss against the true noise, backward pass) in floating-point
# operations with PyTorch's `FlopCounterMode`, which is the same on every machine. Then we time that
# step on a batch of 64 digits and report the best of a few repeats (the one least disturbed by
# other programs) as images per second on `device`.

# %% [markdown]
# A warning about timing on a CPU: PyTorch splits each operation over several threads (one per
# core) and they wait for each other. If another heavy program shares the cores, even a second
# notebook that is training, every step can become many times slower. Close other heavy programs
# before you time anything, and before the training in lesson 5.

# %%
from torch.utils.flop_counter import FlopCounterMode  # counts the operations run inside it

def training_mflops_per_image(net, batch=8):
    tb = schedule.sample_t(batch, generator=g).to(device)
    eps = torch.randn((batch, 1, 28, 28), generator=g).to(device)  # the true noise: the target
    xtb = q_sample(digits[:batch].to(device), tb, schedule, eps)
    with FlopCounterMode(display=False) as counter:
        ((net(xtb, tb) - eps) ** 2).mean().backward()
    return counter.get_total_flops() / batch / 1e6

# %%
def wait_for_gpu():
    if device.type == "cuda":
        torch.cuda.synchronize()  # GPU work runs asynchronously: finish it before reading the clock

def images_per_second(net, repeats, batch=64):
    eps = torch.randn((batch, 1, 28, 28), generator=g).to(device)
    tb = schedule.sample_t(batch, generator=g).to(device)
    xtb = q_sample(digits[:batch].to(device), tb, schedule, eps)
    times = []
    for _ in range(repeats + 1):  # the first run warms up and is not counted
        wait_for_gpu()
        start = time.perf_counter()
        net.zero_grad()
        ((net(xtb, tb) - eps) ** 2).mean().backward()
        wait_for_gpu()
        times.append(time.perf_counter() - start)
    return batch / min(times[1:])

# %%
configs = [(16, 32, 64), (32, 64, 64), (32, 64, 128)]
speed = {}
for channels in configs:
    torch.manual_seed(0)
    net = UNet(channels=channels).to(device)
    speed[channels] = (net.num_parameters(), training_mflops_per_image(net),
                       images_per_second(net, repeats=1 if FAST else 3))
where = f"cpu, {torch.get_num_threads()} threads" if device.type == "cpu" else device.type
print(f"{'channels':15s} {'parameters':>10s} {'MFLOP per image':>16s} {'images/s (' + where + ')':>26s}")
for channels, (n_params, mflops, ips) in speed.items():
    print(f"{str(channels):15s} {n_params:>10,d} {mflops:>16,.0f} {ips:>26.0f}")

# %% [markdown]
# The work does not follow the parameter count. `(32, 64, 64)` has about 40 % of the parameters of
# `(32, 64, 128)` but still two thirds of its work: the 128-channel level holds most of the weights,
# yet it runs on $7\times7$ maps, while the full-resolution level does much of the computing with
# few weights. The measured speeds roughly follow the work, not the parameters. They still wobble
# from run to run on a shared CPU, and a GPU runs all three far faster. Lesson 5 makes the choice.

# %% [markdown]
# ### 5.5 The contract
#
# Whatever is inside, every model in the course is called the same way:
# `model(xt, t, cond=None)` returns a tensor shaped like `xt`. `t` holds code timesteps, either one
# `int` for the whole batch or a tensor of shape `(B,)` with one per image. `cond` is the hook for
# conditioning: a class label in lesson 8, a text embedding in lesson 9. This U-Net is
# unconditional and says so if you pass one.

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    print("one t for all:", tuple(model(xt8, 500).shape), " one t each:", tuple(model(xt8, t8).shape))
    try:
        model(xt8, t8, cond=torch.zeros(8, dtype=torch.long, device=device))
    except ValueError as err:
        print("with cond:", err)

# %% [markdown]
# ## Summary
#
# - One noisy image fits many clean ones. The best single guess of $x_0$ (least squared error) is
#   their average under Bayes' weights: sharp at low noise, a blur at high noise. That is why a
#   network's guess is blurry at high noise, and why sampling takes many small steps.
# - Given $x_0$, one step back is a Gaussian, $q(x_{t-1} \mid x_t, x_0) = \mathcal N(\tilde\mu_t, \tilde\beta_t I)$:
#   the product of the prior from $x_0$ and the likelihood from $x_t$ (Ho et al. 2020, eqs. 6-7).
# - An oracle that knows $x_0$, hence the exact noise in any $x_t$, reverses the chain exactly, from
#   pure noise to the cat. With a predicted noise the step mean is eq. 11, so predicting the noise
#   is all the network has to do; `remove_noise` is that step (with the $x_0$ guess clipped to
#   $[-1, 1]$, which changes nothing for the oracle) plus fresh noise, and the article's `generate`
#   runs as written.
# - The U-Net: a sinusoidal timestep code and an MLP, residual blocks that add the time per
#   channel, a way down, self-attention at $7\times7$, and a way up that concatenates the saved
#   skips. Contract: `model(xt, t, cond=None)` returns a tensor shaped like `xt`.
#
# ## Going further
#
# 1. In section 1, change `digits[0]` to other digits (say `digits[1]` to `digits[9]`) and `schedule`
#    to `NoiseSchedule.cosine()`. At which timestep does $n_\text{eff}$ first exceed 2 now?
# 2. In section 2, set `x0_pixel = -0.9` and `pixel_ts = [49, 999]`. At `t = 999`, how close is
#    the posterior to the likelihood alone? (At `t = 0` the prior has variance 0, so
#    `bayes_on_a_grid` cannot be used: why is the posterior then exactly $x_0$?)
# 3. Give `make_oracle` a slightly wrong image, e.g. `make_oracle(cat.flip(-1))` (a mirrored cat),
#    or add an error to its answer (`+ 0.1 * torch.randn_like(xt)`). What does `generate` return?
# 4. Write your own `remove_noise` from your `ddpm_mean_mine` (it takes Python floats, so pass
#    `schedule.alpha_bar[t].item()` and `schedule.betas[t].item()`), with noise of variance
#    $\beta_t$ (`schedule.betas[t].sqrt() * torch.randn_like(x)`, none at `t = 0`) in place of
#    $\tilde\beta_t$. Does `generate(oracle)` still return the cat, and how large is the error?
# 5. Build `UNet(channels=(32, 64, 128), num_res_blocks=2)` and `UNet(attention=False)`: how do the
#    parameter count and the images per second of section 5.4 change?
# 6. Try `UNet(in_channels=3, image_size=32)` on the cat at 32 pixels (`load_cat(32)[None]`: one
#    image, so add the batch dimension), and `UNet(image_size=30)`. Which fails, and what does the
#    error message ask for?
