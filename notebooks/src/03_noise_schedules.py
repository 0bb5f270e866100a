# %% [markdown]
# # Lesson 3 · Noise schedules
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{{REPO}}/blob/main/notebooks/{{NAME}}.ipynb)
#
# **What you will learn**
#
# - what a noise schedule is: $T$ values of $\bar\alpha_t$, or, step by step, $T$ values of $\beta_t$
# - the three schedules in common use: linear (Ho et al. 2020), cosine (Nichol & Dhariwal 2021)
#   and sigmoid (Jabri et al. 2022), and how to build each one yourself
# - the signal-to-noise ratio and its logarithm, the common scale on which to compare schedules
# - how to *measure* how fast a schedule destroys an image, and why the linear one wastes steps
# - what changes when you change the number of steps $T$, and how to fix it
#
# **What you need first**: lesson 2 (the forward process, $\bar\alpha_t$ and the one-jump formula
# $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$).
#
# **Time to run** (Restart & Run All, full mode): under 20 s on a 2-core laptop CPU (measured: 8 s);
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

from diffusion_lab import NoiseSchedule, get_device, load_cat, load_mnist, q_sample, seed_everything
from diffusion_lab.exercises import (check_cosine_alpha_bar, check_first_timestep_below,
                                     check_linear_betas, check_log_snr, hint, solution)
from diffusion_lab.viz import plot_schedules, show_images
from diffusion_lab.widgets import ScheduleComparison

device = get_device()
g = seed_everything(0)
FAST = os.environ.get("DIFFUSION_LAB_FAST") == "1"
print(f"device: {device}, FAST mode: {FAST}")

# %% [markdown]
# ## 1. What a schedule is
#
# In lesson 2 one number per timestep decided everything about $x_t$: $\bar\alpha_t$, the share
# of the image's variance still present. A **noise schedule** is simply that list of $T$ numbers,
# $\bar\alpha_1, \dots, \bar\alpha_T$, falling from almost 1 to almost 0. The same schedule can be
# read step by step: $\beta_t$ is the share of fresh noise mixed in at step $t$, and the two views
# convert into each other,
#
# $$\bar\alpha_t = \prod_{i=1}^{t} (1 - \beta_i), \qquad \beta_t = 1 - \frac{\bar\alpha_t}{\bar\alpha_{t-1}}, \qquad t = 1, \dots, T, \quad \bar\alpha_0 = 1.$$
#
# **Counting, as in lessons 1 and 2:** formulas use the paper's numbering ($x_0$ clean, $x_t$ after
# $t$ steps, $t = 1, \dots, T$); code counts from 0, so `alpha_bar[t]` is the paper's
# $\bar\alpha_{t+1}$ and `t = T-1` is pure noise. The course's `NoiseSchedule` stores $\bar\alpha$ and
# derives everything else from it, including `alpha_bar_prev`, the value one step earlier:
# `alpha_bar_prev[t]` is `alpha_bar[t-1]`, and `alpha_bar_prev[0]` is 1 (as if the code had an
# entry for $t = -1$, the clean image; it is the paper's $\bar\alpha_0 = 1$).

# %%
linear = NoiseSchedule.linear()
print(linear)
print("alpha_bar[:3]      =", linear.alpha_bar[:3])
print("alpha_bar_prev[:3] =", linear.alpha_bar_prev[:3])
print("betas[:3]          =", linear.betas[:3])

# %% [markdown]
# The two views really are the same data: rebuild each one from the other and compare. The
# second line is $\beta_t = 1 - \bar\alpha_t/\bar\alpha_{t-1}$ in code, for all $T$ steps at once.

# %%
alpha_bar_again = torch.cumprod(1 - linear.betas.double(), dim=0)
betas_again = 1 - linear.alpha_bar / linear.alpha_bar_prev
print(f"alpha_bar rebuilt from betas: largest error {(alpha_bar_again - linear.alpha_bar).abs().max():.1e}")
print(f"betas rebuilt from alpha_bar: largest error {(betas_again - linear.betas).abs().max():.1e}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 2.5))
plot_schedules({"linear": linear}, quantity="betas", ax=axes[0])
plot_schedules({"linear": linear}, quantity="alpha_bar", ax=axes[1])
axes[0].set_title("per step: noise added, $\\beta_t$", fontsize=10)
axes[1].set_title("in total: signal left, $\\bar\\alpha_t$", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# Small, steadily growing steps on the left add up to the S-shaped fall on the right. The
# product of many factors just below 1 falls fast once the factors stop being *very* close to 1.

# %% [markdown]
# ## 2. The linear schedule (Ho et al. 2020)
#
# The original DDPM paper chose the simplest possible rule: $T = 1000$ betas evenly spaced from
# $\beta_1 = 10^{-4}$ to $\beta_T = 0.02$ (in code `betas[0]` to `betas[T-1]`). The first steps barely
# touch the image (noise with a standard deviation of $\sqrt{10^{-4}} = 0.01$, about one grey level),
# the last ones replace 2 % of the variance each. The authors picked these values so that every
# step is small, which keeps the reverse step close to a Gaussian (lesson 4), and so that $x_T$ is
# almost exactly pure noise.

# %% [markdown]
# **Exercise 1.** Write `linear_betas(num_timesteps, beta_start, beta_end)`: `num_timesteps`
# values evenly spaced from `beta_start` to `beta_end`, both included. `num_timesteps` is a Python
# `int`, `beta_start` and `beta_end` are Python `float`s; return a 1-D tensor of length
# `num_timesteps` (float64 is best). `hint("linear_betas")` gives a hint; `solution("linear_betas")`
# shows a model answer.

# %%
def linear_betas_mine(num_timesteps, beta_start, beta_end):
    # your code here
    raise NotImplementedError

check_linear_betas(linear_betas_mine)

# %% [markdown]
# ## 3. The cosine schedule (Nichol & Dhariwal 2021)
#
# The improved-DDPM paper defines $\bar\alpha$ directly, as a smooth curve in *continuous* time
# $\tau \in [0, 1]$, and samples it at $\tau = t/T$, so $\bar\alpha_t = \bar\alpha(t/T)$ for the paper's
# $t = 0, \dots, T$:
#
# $$f(\tau) = \cos^2\!\left(\frac{\tau + s}{1 + s}\cdot\frac{\pi}{2}\right), \qquad \bar\alpha(\tau) = \frac{f(\tau)}{f(0)}, \qquad s = 0.008.$$
#
# Dividing by $f(0)$ makes the curve start at exactly 1 ($\bar\alpha_0 = 1$). The small offset $s$
# keeps the first steps from being uselessly tiny. In code, `alpha_bar[t]` for $t = 0, \dots, T-1$
# is the paper's $\bar\alpha_{t+1}$, so it sits at $\tau = (t+1)/T$.

# %% [markdown]
# **Exercise 2.** Write `cosine_alpha_bar(num_timesteps, s)`, returning a tensor of the $T$ values
# `alpha_bar[t]` $= \bar\alpha((t+1)/T)$ for code $t = 0, \dots, T-1$ (the paper's $\bar\alpha_1$ to
# $\bar\alpha_T$). `num_timesteps` is a Python `int` and `s` a Python `float`. `hint("cosine_alpha_bar")`
# gives a hint; `solution("cosine_alpha_bar")` shows a model answer.

# %%
def cosine_alpha_bar_mine(num_timesteps, s):
    # your code here
    raise NotImplementedError

check_cosine_alpha_bar(cosine_alpha_bar_mine)

# %% [markdown]
# **Why clip the betas at 0.999?** At $\tau = 1$ the cosine reaches zero, so $\bar\alpha_T = 0$
# and the last beta, $\beta_T$, is exactly 1: the final step throws the whole image away. That looks
# harmless, but the reverse step (lesson 4) divides by $\sqrt{1-\beta_t}$, which would be a division
# by zero, and the log SNR (section 5) would be $-\infty$. The paper therefore caps every $\beta_t$ at
# 0.999. Here are the last betas before and after the cap:

# %%
T = 1000
tau = torch.linspace(0, 1, T + 1, dtype=torch.float64)  # tau = t/T for the paper's t = 0..T
f = torch.cos((tau + 0.008) / 1.008 * torch.pi / 2) ** 2
betas_raw = 1 - f[1:] / f[:-1]  # the paper's beta_1..beta_T, before the cap
cosine = NoiseSchedule.cosine()
print("raw betas, last 3:    ", betas_raw[-3:].numpy().round(4))
print("clipped betas, last 3:", cosine.betas[-3:].numpy().round(4))

# %% [markdown]
# And the reason for $s$: the paper wants the very first step to move a pixel by a bit less than
# one grey level, $1/127.5$ on the $[-1, 1]$ scale. Without the offset, the first step's noise,
# $\sqrt{\beta_1}$ (in code `betas[0]`), is about four times smaller, so the first few dozen steps
# do almost nothing.

# %%
for s in (0.0, 0.008):
    beta_first = NoiseSchedule.cosine(s=s).betas[0].item()  # the paper's beta_1
    print(f"s = {s}: sqrt(betas[0]) = {beta_first ** 0.5:.4f}   (one grey level = {1 / 127.5:.4f})")

# %%
fig, ax = plt.subplots(figsize=(8, 2.5))
plot_schedules({"cosine, $s$ = 0.008": cosine, "cosine, $s$ = 0": NoiseSchedule.cosine(s=0.0)},
               quantity="betas", ax=ax)
ax.set_yscale("log")
ax.set_title(r"cosine $\beta_t$ (log scale): the offset $s$ lifts the first steps", fontsize=10)
plt.show()

# %% [markdown]
# ## 4. The sigmoid schedule (Jabri et al. 2022)
#
# A third family writes $\bar\alpha(\tau)$ as a falling logistic curve $\sigma(x) = 1/(1+e^{-x})$,
# taken between two points `start` $=b$ and `end` $=e$ and rescaled to run from 1 to 0:
#
# $$\bar\alpha(\tau) = \frac{\sigma(e/\gamma) - \sigma\big((b + \tau(e - b))/\gamma\big)}{\sigma(e/\gamma) - \sigma(b/\gamma)}.$$
#
# The temperature $\gamma$ sets how sharp the drop is; the defaults are $b = -3$, $e = 3$, $\gamma = 1$.
# The code follows the paper's pseudo-code and names this argument `tau=`; in this lesson $\tau$ is
# always time, so the maths writes $\gamma$. Like the cosine schedule, it lives in continuous time
# and its betas are clipped at 0.999. Its appeal is that `start`, `end` and the temperature let you
# move and squeeze the region where most of the information is destroyed.

# %%
sigmoid = NoiseSchedule.sigmoid()
sharper = NoiseSchedule.sigmoid(tau=0.5)  # `tau=` is the temperature gamma, not time
print(sigmoid)
print(sharper)

# %%
fig, ax = plt.subplots(figsize=(8, 2.5))
plot_schedules({r"sigmoid ($\gamma$=1)": sigmoid, r"sigmoid ($\gamma$=0.5)": sharper,
                r"sigmoid ($\gamma$=1, start=0)": NoiseSchedule.sigmoid(start=0.0)},
               quantity="alpha_bar", ax=ax)
ax.set_title("the sigmoid family: temperature and start reshape the fall", fontsize=10)
plt.show()

# %% [markdown]
# ## 5. Signal-to-noise ratio
#
# $x_t$ holds signal with variance $\bar\alpha_t$ (times the image's own variance) and noise with
# variance $1 - \bar\alpha_t$. Their ratio is the **signal-to-noise ratio**
#
# $$\mathrm{SNR}(t) = \frac{\bar\alpha_t}{1 - \bar\alpha_t}, \qquad \lambda_t = \log \mathrm{SNR}(t).$$
#
# The SNR spans many orders of magnitude (about $10^4$ after the first step, about $4 \times 10^{-5}$
# at the end of the linear schedule), so we look at its natural log $\lambda_t$: positive while the
# image dominates, zero when the two are equal ($\bar\alpha_t = 1/2$), negative once noise dominates.
# Kingma et al. (2021) showed that in continuous time the *variational bound* (the likelihood
# objective) depends on the schedule only through the first and last values of $\lambda$. The simple
# noise-prediction loss of lesson 5, with $t$ drawn uniformly, is different: it does depend on the
# shape in between, which decides where the training effort goes.

# %% [markdown]
# **Exercise 3.** Write `log_snr(alpha_bar)`, the natural log of the SNR. `alpha_bar` is a tensor
# (float64) of $\bar\alpha$ values strictly between 0 and 1; return a tensor of the same shape.
# `hint("log_snr")` gives a hint; `solution("log_snr")` shows a model answer.

# %%
def log_snr_mine(alpha_bar):
    # your code here
    raise NotImplementedError

check_log_snr(log_snr_mine)

# %% [markdown]
# The package has both views: `schedule.snr(t)` and `schedule.log_snr(t)` (all $T$ values when
# called without `t`; `t` is a code timestep). Where does each schedule start and end?

# %%
schedules = {"linear": linear, "cosine": cosine, "sigmoid": sigmoid}
for name, schedule in schedules.items():
    first, last = schedule.log_snr(0).item(), schedule.log_snr(T - 1).item()
    print(f"{name:8s} log SNR from {first:+6.2f} (t=0) to {last:+7.2f} (t={T - 1})   (SNR at t=500: "
          f"{schedule.snr(500).item():.3f})")

# %% [markdown]
# ## 6. The three schedules side by side
#
# `plot_schedules` from `diffusion_lab.viz` draws all three (the x axis is the code timestep).
# Notice three things. The cosine and sigmoid betas stay small for longer, then shoot up to the
# 0.999 cap (hence the log scale). In $\bar\alpha$, the linear schedule has lost half of the signal
# by $t \approx 260$ and is flat near 0 for its last few hundred steps; the other two hold on until
# the middle. On the log-SNR panel the cosine curve is nearly straight over most of its range: it
# spends its steps evenly over the noise levels. The linear one crosses the shaded band from
# $\lambda = 5$ to $\lambda = -5$ in its first 700 steps and spends the last 300 below $-5$, where
# the $\bar\alpha$ panel shows almost nothing left. (With default settings, sigmoid and cosine
# nearly agree.)

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 2.8))
titles = (r"noise per step, $\beta_t$ (log scale)", r"signal left, $\bar\alpha_t$",
          r"$\log \mathrm{SNR}$; shaded: $-5$ to $5$")
for ax, quantity, title in zip(axes, ("betas", "alpha_bar", "log_snr"), titles):
    plot_schedules(schedules, quantity=quantity, ax=ax)
    ax.set_title(title, fontsize=10)
axes[0].set_yscale("log")
axes[2].axhline(0, color="grey", lw=0.6)
axes[2].axhspan(-5, 5, color="grey", alpha=0.12)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 7. How fast each schedule destroys information
#
# Curves are abstract; pictures are not. Below, the same cat gets the *same* noise tensor at the
# *same* timesteps under each schedule, so the only thing that differs between rows is
# $\bar\alpha_t$.

# %%
cat = load_cat(48).to(device)  # (3, 48, 48): small, because noisy pictures store badly
cat_noise = torch.randn(cat.shape, generator=g).to(device)
strip_ts = [0, 100, 200, 300, 400, 500, 700, 900]  # code timesteps
strips = {name: [q_sample(cat, t, sched, cat_noise) for t in strip_ts]
          for name, sched in schedules.items()}

# %%
fig, axes = plt.subplots(3, len(strip_ts), figsize=(8, 3.3))
for row, (name, images) in zip(axes, strips.items()):
    for ax, t, image in zip(row, strip_ts, images):
        show_images(image, ax=ax, padding=0)
        ax.set_title(f"t={t}" if name == "linear" else "", fontsize=9)
    row[0].text(-6, 24, name, rotation=90, va="center", ha="right", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# Under the linear schedule the cat is hard to find by $t = 400$, and the last three columns look
# the same. The cosine and sigmoid rows still show a faint cat at $t = 500$.
#
# To put numbers on it, find the first timestep at which $\bar\alpha_t$ falls below a level.

# %% [markdown]
# **Exercise 4.** Write `first_timestep_below(alpha_bar, level)`: the first code timestep `t` with
# `alpha_bar[t] < level`. `alpha_bar` is a tensor of shape `(T,)` (a schedule's `alpha_bar`) and
# `level` a Python `float`; return a Python `int`, not a tensor. `hint("first_timestep_below")` gives
# a hint; `solution("first_timestep_below")` shows a model answer.

# %%
def first_timestep_below_mine(alpha_bar, level):
    # your code here
    raise NotImplementedError

check_first_timestep_below(first_timestep_below_mine)

# %% [markdown]
# The table below uses a shortcut: since $\bar\alpha$ never increases, the number of values
# still at or above the level *is* the first index below it. The last column counts the steps
# spent at almost pure noise, $\bar\alpha_t < 10^{-3}$, where $x_t$ keeps about 3 % of the image's
# amplitude or less ($\sqrt{10^{-3}} \approx 0.032$). Nichol & Dhariwal noticed that a model
# trained with the linear schedule loses little when up to a fifth of its reverse process, the part
# nearest pure noise, is skipped: those steps are "wasted". The cosine schedule was designed to
# spend them where the image still changes.

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'schedule':9s} {'t: a_bar<0.5':>13s} {'t: a_bar<0.01':>14s} {'wasted (a_bar<1e-3)':>20s}")
for name, schedule in schedules.items():
    a = schedule.alpha_bar
    half, one_pct = int((a >= 0.5).sum()), int((a >= 0.01).sum())
    wasted = (a < 1e-3).float().mean().item()
    print(f"{name:9s} {half:13d} {one_pct:14d} {wasted:19.1%}")

# %%
fig, ax = plt.subplots(figsize=(8, 2.8))
plot_schedules(schedules, quantity="alpha_bar", ax=ax)
ax.set_yscale("log")
ax.set_ylim(1e-6, 2)
for level in (0.5, 0.01, 1e-3):
    ax.axhline(level, color="grey", lw=0.6, ls="--")
ax.axhspan(1e-6, 1e-3, color="red", alpha=0.08)
ax.set_title(r"$\bar\alpha_t$ on a log scale; shaded: almost pure noise, $\bar\alpha_t < 10^{-3}$",
             fontsize=10)
plt.show()

# %% [markdown]
# ## 8. A measurable proxy: how much does $x_t$ still tell us about $x_0$?
#
# A simple way to measure information left is the correlation between the pixels of $x_t$ and of
# $x_0$ (over many images). If the pixels of $x_0$ have variance $v$, the noise is independent and
# has variance 1, so $\mathrm{Cov}(x_t, x_0) = \sqrt{\bar\alpha_t}\,v$ and
# $\mathrm{Var}(x_t) = \bar\alpha_t v + 1 - \bar\alpha_t$, giving
#
# $$\rho_t = \frac{\sqrt{\bar\alpha_t}}{\sqrt{\bar\alpha_t + (1 - \bar\alpha_t)/v}}.$$
#
# Digits are mostly black background, so $v$ is well below 1 (printed below): noise drowns them
# sooner than $\bar\alpha$ alone suggests. Let's measure $\rho_t$ on MNIST and compare it with the formula.

# %%
digits, labels = load_mnist()
num_digits = 200 if FAST else 2000
x0 = digits[:num_digits].to(device)  # (N, 1, 28, 28)
v = x0.var().item()
noise = torch.randn(x0.shape, generator=g).to(device)
ts = torch.linspace(0, T - 1, 25 if FAST else 50).round().long()
print(f"{num_digits} digits, pixel variance v = {v:.3f}")

# %%
def corr_with_x0(xt, x0):
    """Pearson correlation between all pixels of x_t and of x_0."""
    return torch.corrcoef(torch.stack([xt.flatten(), x0.flatten()]))[0, 1].item()

measured = {name: [corr_with_x0(q_sample(x0, int(t), sched, noise), x0) for t in ts]
            for name, sched in schedules.items()}
theory = {name: (sched.alpha_bar / (sched.alpha_bar + (1 - sched.alpha_bar) / v)).sqrt()
          for name, sched in schedules.items()}

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
for name, sched in schedules.items():
    line, = axes[0].plot(theory[name], lw=1, label=name)
    axes[0].plot(ts, measured[name], "o", ms=3, color=line.get_color())
    axes[1].plot(sched.log_snr(), theory[name], lw=1, label=name)
    axes[1].plot(sched.log_snr(ts), measured[name], "o", ms=3, color=line.get_color())
axes[0].set(xlabel="timestep t", ylabel=r"corr($x_t$, $x_0$)")
axes[1].set(xlabel=r"$\log \mathrm{SNR}$")
axes[0].set_title("against t", fontsize=10)
axes[1].set_title(r"against $\log \mathrm{SNR}$: one curve", fontsize=10)
axes[1].invert_xaxis()
for ax in axes:
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Dots (measured) sit on the lines (formula). On the left, the linear schedule's correlation has
# all but vanished by $t \approx 700$, while the others decay across the whole range. On the right, plotted
# against log SNR, all three collapse onto *one* curve: how much information is left depends
# only on the noise level. A schedule is just a choice of how to spend the $T$ steps along that
# curve.

# %%
for name in schedules:
    t_gone = int(ts[torch.tensor(measured[name]) < 0.05][0])
    print(f"{name:8s} correlation first below 0.05 at t = {t_gone}")

# %% [markdown]
# ## 9. The effect of $T$
#
# The linear betas are tied to $T = 1000$. Keep the same range $10^{-4} \dots 0.02$ but use only
# $T = 100$ steps, and the total noise added is ten times smaller: the "pure noise" at the end
# still holds much of the image. The fix is to scale the betas by $1000/T$, so each coarse step
# does the work of ten fine ones. The cosine schedule needs no fix: it is defined in continuous
# time $\tau \in [0,1]$, and $T$ only sets how finely that curve is sampled.

# %%
T_small = 100
same_range = NoiseSchedule.linear(num_timesteps=T_small)
scaled = NoiseSchedule.linear(num_timesteps=T_small, beta_start=1e-4 * 1000 / T_small,
                              beta_end=0.02 * 1000 / T_small)
cosine_small = NoiseSchedule.cosine(num_timesteps=T_small)
for name, sched in (("linear T=1000", linear), ("linear T=100, same betas", same_range),
                    ("linear T=100, scaled betas", scaled), ("cosine T=100", cosine_small)):
    print(f"{name:27s} alpha_bar[-1] = {sched.alpha_bar[-1].item():.2e}")

# %% [markdown]
# Sampled at the same fractions of the way, $\tau = t/T$ in the paper's numbering (in code
# `(t + 1) / T`), the two cosine schedules agree to rounding error, while the scaled linear one is
# close but not identical (products of ten small factors are not exactly one factor ten times
# larger). In the figure, the $T = 1000$ reference is the thick grey line behind the others:

# %%
every_tenth = slice(9, None, 10)  # T=1000 timesteps 9, 19, ..., 999 match T=100 steps 0..99
print(f"cosine: largest gap {(cosine_small.alpha_bar - cosine.alpha_bar[every_tenth]).abs().max():.1e}")
print(f"linear: largest gap {(scaled.alpha_bar - linear.alpha_bar[every_tenth]).abs().max():.1e}")

# %%
fig, axes = plt.subplots(1, 4, figsize=(11, 2.6), gridspec_kw={"width_ratios": [2, 2, 1, 1]})
plot_schedules({"T=1000": linear, "T=100 same": same_range, "T=100 scaled": scaled},
               x="fraction", ax=axes[0])
plot_schedules({"T=1000": cosine, "T=100": cosine_small}, x="fraction", ax=axes[1])
for ax, title in zip(axes[:2], ("linear", "cosine")):
    ax.lines[0].set(color="0.7", lw=4, zorder=1)  # the T=1000 reference: thick, grey, behind
    ax.legend(fontsize=8)  # redraw the legend so it shows the new style
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("fraction of the way, (t + 1) / T")
for ax, sched, title in ((axes[2], same_range, "same betas"), (axes[3], scaled, "scaled betas")):
    show_images(q_sample(x0[:4], T_small - 1, sched, noise[:4]), nrow=2, ax=ax)
    ax.set_title(f"linear T=100, t=99\n(last step), {title}", fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# The last two panels show why this matters: a model trained on the unscaled $T = 100$ schedule
# would start sampling from pure noise, which looks nothing like the $x_T$ (code `t = 99`, the last
# step) it saw in training.

# %% [markdown]
# ## 10. Preview: which timesteps a sampler visits
#
# A sampler does not have to visit all $T$ timesteps; lesson 7 takes big strides through them.
# `schedule.timesteps(num_steps)` picks which ones. The course default, *trailing* spacing,
# always starts at $t = T-1$, the pure-noise end, as Lin et al. (2024) recommend. The *leading*
# spacing (the diffusers default) starts at $t = 900$ here, yet the sampler still hands the model
# pure noise, which is not what the model saw at $t = 900$ in training; *linspace* includes both
# ends. (All $t$ here are code timesteps.)

# %%
# NBVAL_CHECK_OUTPUT
for spacing in ("trailing", "leading", "linspace"):
    print(f"{spacing:9s}", cosine.timesteps(10, spacing).tolist())

# %%
fig, ax = plt.subplots(figsize=(8, 2.5))
plot_schedules({"cosine": cosine}, quantity="log_snr", ax=ax)
for spacing, marker in (("trailing", "o"), ("leading", "x")):
    steps = cosine.timesteps(10, spacing)
    ax.plot(steps, cosine.log_snr(steps), marker, label=f"{spacing} (10 steps)")
ax.legend(fontsize=8)
ax.set_title("10 sampling steps on the cosine schedule", fontsize=10)
plt.show()

# %% [markdown]
# ## 11. Compare schedules yourself
#
# The widget below shows two schedules side by side at the same $t$, on the same digits with the
# same noise, with $\bar\alpha$ and log SNR curves underneath. First the inputs, one digit of each
# class 0 to 7, computed here so you can swap in your own (the cat works too):

# %%
pick = [int((labels == k).nonzero()[0]) for k in range(8)]
eight = digits[pick].to(device)  # (8, 1, 28, 28)
eight_noise = torch.randn(eight.shape, generator=g).to(device)
print(eight.shape, "labels:", labels[pick].tolist())

# %% [markdown]
# For readers on GitHub, where widgets do not run, here is a still of the same comparison at
# $t = 300$:

# %%
t_show = 300
fig, axes = plt.subplots(2, 2, figsize=(9, 4.2), gridspec_kw={"height_ratios": [1, 1.6]})
for ax, name in zip(axes[0], ("linear", "cosine")):
    show_images(q_sample(eight, t_show, schedules[name], eight_noise), nrow=4, ax=ax)
    ax.set_title(f"{name}, t={t_show}: $\\bar\\alpha$ = {schedules[name].alpha_bar[t_show]:.4f}",
                 fontsize=9)
for ax, quantity in zip(axes[1], ("alpha_bar", "log_snr")):
    plot_schedules({k: schedules[k] for k in ("linear", "cosine")}, quantity=quantity, ax=ax,
                   t=t_show)
plt.tight_layout()
plt.show()

# %% [markdown]
# What to look for as you move the slider:
#
# - **Same $t$, different picture.** With linear on the left and cosine on the right, find the
#   $t$ where the left digits become unreadable; the right ones are still clear there.
# - **Same log SNR, same picture.** Move $t$ until the two log-SNR readouts match: the two grids
#   then look alike, whatever the schedules. The noise level, not $t$, is what you see.
# - **The tail.** Past $t \approx 700$ the linear grid stops changing; that is the wasted region.

# %%
ScheduleComparison(eight, schedules, noise=eight_noise, t=t_show, device=device)

# %% [markdown]
# ## Summary
#
# - A noise schedule is the list $1 = \bar\alpha_0 > \bar\alpha_1 > \dots > \bar\alpha_T \approx 0$
#   (in code `alpha_bar[0]` to `alpha_bar[T-1]`, the paper's $\bar\alpha_1$ to $\bar\alpha_T$); the
#   betas are the same information per step, $\beta_t = 1 - \bar\alpha_t/\bar\alpha_{t-1}$.
# - Linear betas (Ho et al.) destroy the image early and then spend 17.5 % of the steps on
#   almost pure noise; cosine (Nichol & Dhariwal) and sigmoid (Jabri et al.) spread the
#   destruction over the whole range, with betas clipped at 0.999.
# - Log SNR, $\log(\bar\alpha/(1-\bar\alpha))$, is the common scale: measured information
#   (correlation with $x_0$) depends on it alone, and a schedule only decides how fast $t$ moves
#   along it.
# - Changing $T$ breaks a discrete schedule like linear unless the betas are rescaled by $1000/T$;
#   continuous-time schedules like cosine are unaffected.
#
# ## Going further
#
# 1. Change `s` in `NoiseSchedule.cosine(s=...)` to 0.0, 0.008 and 0.1. How do the first-below-0.5
#    timestep and the first step's noise $\sqrt{\beta_1}$ (`betas[0]`) change?
# 2. Try `NoiseSchedule.sigmoid(start=..., end=..., tau=...)` (`tau` is the temperature $\gamma$) with
#    `start=-3, end=3, tau=0.3` and `start=0`. Which setting has the fewest "wasted" steps by the
#    measure of section 7?
# 3. Set `num_digits` in section 8 to 20 and see how noisy the measured correlation becomes.
#    Then replace the digits by the cat: how does its pixel variance $v$ change the curves?
# 4. Change `T_small` in section 9 to 50, 250 and 500. Up to which $T$ does the unscaled linear
#    schedule still leave more than 1 % of the signal at the end ($\bar\alpha_T > 0.01$)? (Careful:
#    for very small $T$ the scaled `beta_end` exceeds 1.)
# 5. Build your own schedule: pick any decreasing $\bar\alpha$ (for example
#    $1 - \tau^2$, clipped away from 0) and pass it to `NoiseSchedule(alpha_bar)`. Put it into
#    the `schedules` dict and rerun the table and the widget.
