# %% [markdown]
# # Lesson 12 · Why diffusion and not GANs: a measured comparison
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{{REPO}}/blob/main/notebooks/{{NAME}}.ipynb)
#
# **What you will learn**
#
# - what a GAN is: a generator and a discriminator playing against each other
# - how to put numbers on "covers the data's variety": modes covered, share of good samples, and
#   the energy distance between two point clouds
# - a fair race: a GAN and a diffusion model of similar size, trained for the same time on the same
#   2-D data, over several seeds, measured
# - what the measurements say, including where the GAN does well
#
# **What you need first**: lesson 5 (`train`, the diffusion loss) and lesson 7 (`sample`).
#
# **Time to run** (Restart & Run All, full mode): about 3 minutes on a 2-core laptop
# CPU (measured: 166 s); GPU: not measured yet (no GPU was available when this lesson was
# written).

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
from diffusion_lab import gaussian_ring, get_device, seed_everything, two_moons
from diffusion_lab.exercises import check_count_modes, check_energy_distance, check_generator_loss, hint, solution
from diffusion_lab.samplers import sample
from diffusion_lab.schedules import NoiseSchedule
from diffusion_lab.toy import (Discriminator, Generator, MLPDenoiser, energy_distance, gan_sample,
                               mode_coverage, ring_centres, train_gan)
from diffusion_lab.training import train
from diffusion_lab.viz import plot_points, points_frame
from diffusion_lab.widgets import FrameSlider
device = get_device()
g = seed_everything(0)
FAST = os.environ.get("DIFFUSION_LAB_FAST") == "1"
print(f"device: {device}, FAST mode: {FAST}")

# %% [markdown]
# ## 1. Two test sets with known answers
#
# Before diffusion models, the best image generators were GANs (generative adversarial networks,
# Goodfellow et al. 2014). They are fast to sample, one network call per image, but they have a
# reputation: training is unstable, and a GAN may learn only part of the data ("mode collapse").
# Reputations are cheap; let us measure. We use 2-D points, where we can see everything:
#
# - a **ring of 8 small Gaussians**, the classic mode-collapse test: 8 separate clusters, each with
#   an eighth of the data. A perfect model puts an eighth of its samples on each.
# - **two moons**: two curved, interleaved bands, a shape with no clusters to count.

# %%
ring = gaussian_ring(4000, radius=0.75, std=0.05, generator=g)
moons = 0.6 * two_moons(4000, noise=0.05, generator=g)  # scaled into [-1, 1], like our images
datasets = {"ring": ring, "moons": moons}
fig, axes = plt.subplots(1, 2, figsize=(6, 3))
for ax, (name, points) in zip(axes, datasets.items()):
    plot_points(points, ax=ax, s=1)
    ax.set(title=name, xlim=(-1.2, 1.2), ylim=(-1.2, 1.2))
plt.show()

# %% [markdown]
# ## 2. Measuring "covers the data"
#
# For the ring, two numbers. A sample is **good** if it lies within 3 standard deviations (0.15)
# of its nearest centre; **quality** is the share of good samples. A mode is **covered** when at
# least 1% of all samples are good samples of that mode (a few strays do not count).
#
# **Exercise 1 (checked).** Write `count_modes(samples, centres, radius, min_share)`: return the
# number of covered modes. `hint("count_modes")`, `solution("count_modes")`.

# %%
def count_modes_mine(samples, centres, radius, min_share):
    # your code here
    raise NotImplementedError

check_count_modes(count_modes_mine)

# %% [markdown]
# Counting modes says nothing about **how much** each mode gets, and the moons have no modes. A
# distance between the whole sample cloud and the data cloud covers both. The **energy distance**
# (Székely and Rizzo) compares mean distances between and within the two sets $A$ and $B$:
#
# $$\mathcal E(A, B) = 2\,\mathbb E\lVert a - b\rVert - \mathbb E\lVert a - a'\rVert - \mathbb E\lVert b - b'\rVert .$$
#
# It is 0 when the two clouds have the same distribution, and grows as they differ, in position,
# spread or balance between parts.
#
# **Exercise 2 (checked).** Write `energy_distance(a, b)` for point sets (N, 2) and (M, 2), with
# every pair included (each point with itself too). `hint("energy_distance")`,
# `solution("energy_distance")`.

# %%
def energy_distance_mine(a, b):
    # your code here
    raise NotImplementedError

check_energy_distance(energy_distance_mine)

# %% [markdown]
# The measures on the data itself, and on two bad "models": everything piled on one mode, and
# the right modes with wrong shares (half of all samples on one mode). A perfect model, drawing
# each sample's mode at random, is the score to beat: its energy distance is not 0, since 2000
# samples never match the distribution exactly.

# %%
centres = ring_centres(8, radius=0.75)
perfect = lambda n, gen: centres[torch.randint(8, (n,), generator=gen)] + 0.05 * torch.randn(n, 2, generator=gen)
one_mode = centres[0] + 0.05 * torch.randn(2000, 2, generator=g)
lopsided = torch.cat([perfect(1000, g), centres[0] + 0.05 * torch.randn(1000, 2, generator=g)])
for name, points in {"perfect model": perfect(2000, g), "one mode": one_mode, "lopsided": lopsided}.items():
    c = mode_coverage(points, centres, radius=0.15)
    print(f"{name:13} modes {c['covered']}/8  quality {c['quality']:.2f}  "
          f"energy distance {energy_distance(points, ring):.4f}")

# %% [markdown]
# The lopsided set covers all 8 modes with high quality; only the energy distance sees that its
# shares are wrong. We will report all three.

# %% [markdown]
# ## 3. A GAN in one cell of maths
#
# A GAN trains two networks against each other. The **generator** $G$ turns a random $z$ into a
# sample $G(z)$. The **discriminator** $D$ outputs the probability that its input is real data.
# $D$ learns to tell real from generated, by minimising
# $-\log D(x) - \log\bigl(1 - D(G(z))\bigr)$; $G$ learns to fool it, by minimising
# $-\log D(G(z))$ (the "non-saturating" form; the original $\log(1 - D(G(z)))$ gives almost no
# gradient while $D$ wins easily, which is early on). They take turns, one step each.
#
# If both players were perfect, the game would end with $G$ matching the data exactly: for a fixed
# $G$ the best discriminator is $D^*(x) = p_\text{data}(x) / (p_\text{data}(x) + p_G(x))$, and only
# $p_G = p_\text{data}$ leaves $G$ nothing to gain. The trouble is the road there. Against a fixed
# $D^*$, the non-saturating loss behaves like $\mathrm{KL}(p_G \,\|\, p_\text{data})$ minus a
# Jensen-Shannon term (Arjovsky and Bottou 2017): a "reverse" KL, which punishes samples where
# there is no data but barely punishes missing a mode. And the two players take turns, so the game
# can circle instead of settling. The diffusion loss, by contrast, bounds
# $-\log p_\theta(x)$ for every training point (lesson 5): it is the "forward" KL direction, in
# which a model that gives a mode no probability pays for every point of it.
#
# **Exercise 3 (checked).** Write `generator_loss(fake_logits)`: the non-saturating loss from the
# discriminator's logits $\ell$ on a batch of fakes ($D = \sigma(\ell)$).
# `hint("generator_loss")`, `solution("generator_loss")`.

# %%
def generator_loss_mine(fake_logits):
    # your code here
    raise NotImplementedError

check_generator_loss(generator_loss_mine)

# %% [markdown]
# The two contestants: an MLP noise predictor (3 hidden layers of 128, with the timestep added to
# each), and a GAN whose generator and discriminator have the same body. The generator draws from
# a 2-D Gaussian $z$, as the diffusion model starts from 2-D noise; since $G$ is continuous, it
# cannot cut that one blob into 8 separate clusters, so thin bridges of points between clusters
# are built into this design and are not by themselves a sign of collapse.

# %%
print(f"diffusion MLP {MLPDenoiser().num_parameters():,} weights; GAN generator "
      f"{Generator().num_parameters():,} and discriminator {Discriminator().num_parameters():,}")

# %% [markdown]
# ## 4. The race: same data, same time, several seeds
#
# Each model gets the same wall-clock budget per run; snapshot time is not charged to either. The
# diffusion model uses the course's `train` (cosine schedule, predicting $\epsilon$, Adam at a
# constant 2e-3, no EMA) and samples with 50 DDIM steps; the GAN uses Adam with the DCGAN settings,
# at a learning rate of 1e-3, which learns this toy faster than DCGAN's 2e-4. Neither was tuned
# further. Every run records its losses and, ten times along the way, a snapshot of 2000 samples.
# The steps done in the budget depend on the machine's load, so they are printed with the runs.

# %%
budget = 1.5 if FAST else 12.0  # seconds of training per run
seeds = [0, 1] if FAST else [0, 1, 2]
schedule = NoiseSchedule.cosine(1000)

def snapshot_times():
    return [budget * (k + 1) / 10 for k in range(10)]

def run_diffusion(data, seed):
    torch.manual_seed(seed)
    model, losses, snaps, due = MLPDenoiser().to(device), [], [], snapshot_times()
    noise = torch.randn(2000, 2, generator=torch.Generator().manual_seed(100 + seed)).to(device)
    sampling = 0.0  # seconds spent on snapshots, not charged to the training budget
    for r in train(model, data, schedule, num_steps=10**6, batch_size=256, lr=2e-3, warmup_steps=50,
                   prediction="eps", progress=False, generator=torch.Generator().manual_seed(seed)):
        losses.append(r.loss)
        if r.seconds - sampling >= due[0]:
            due.pop(0)
            start = time.perf_counter()
            snaps.append(sample(model.eval(), schedule, noise, sampler="ddim", num_steps=50, progress=False).cpu())
            sampling += time.perf_counter() - start
            model.train()
            if not due:
                break
    return dict(losses=losses, snaps=snaps)

# %%
def run_gan(data, seed):
    torch.manual_seed(seed)
    G, D, snaps, due = Generator().to(device), Discriminator().to(device), [], snapshot_times()
    d_losses, g_losses, sampling = [], [], 0.0
    for r in train_gan(G, D, data.to(device), num_steps=10**6, batch_size=256, lr=1e-3,
                       generator_rng=torch.Generator(device).manual_seed(seed)):
        d_losses.append(r.d_loss)
        g_losses.append(r.g_loss)
        if r.seconds - sampling >= due[0]:
            due.pop(0)
            start = time.perf_counter()
            snaps.append(gan_sample(G, 2000, generator_rng=torch.Generator(device).manual_seed(100 + seed)).cpu())
            sampling += time.perf_counter() - start
            if not due:
                break
    return dict(losses=d_losses, g_losses=g_losses, snaps=snaps)

# %%
runs = {(name, model, seed): run(points, seed)
        for name, points in datasets.items()
        for model, run in (("diffusion", run_diffusion), ("GAN", run_gan))
        for seed in seeds}
for (name, model, seed), r in runs.items():
    print(f"{name:5} {model:9} seed {seed}: {len(r['losses']):5d} training steps in {budget:g} s")

# %% [markdown]
# ## 5. The results
#
# The final snapshot of every run, measured against a fresh 4000-point draw of each distribution
# (not the training points). For the ring: modes covered, quality and energy distance; for the
# moons: energy distance. The references are 2000 samples of a perfect model, five draws.

# %%
fresh = {"ring": gaussian_ring(4000, radius=0.75, std=0.05, generator=torch.Generator().manual_seed(10)),
         "moons": 0.6 * two_moons(4000, noise=0.05, generator=torch.Generator().manual_seed(11))}
for (name, model, seed), r in runs.items():
    cover = mode_coverage(r["snaps"][-1], centres, radius=0.15) if name == "ring" else None
    modes = f"modes {cover['covered']}/8  quality {cover['quality']:.2f}" if cover else " " * 26
    print(f"{name:5} {model:9} seed {seed}: {modes}  energy distance {energy_distance(r['snaps'][-1], fresh[name]):.4f}")
refs = {"ring": [perfect(2000, torch.Generator().manual_seed(20 + k)) for k in range(5)],
        "moons": [0.6 * two_moons(2000, noise=0.05, generator=torch.Generator().manual_seed(30 + k)) for k in range(5)]}
for name, draws in refs.items():
    values = [energy_distance(d, fresh[name]) for d in draws]
    print(f"reference, perfect model on the {name}: energy distance {min(values):.4f} to {max(values):.4f}")

# %%
fig, axes = plt.subplots(2, 2 * len(seeds), figsize=(2.2 * 2 * len(seeds), 4.6))
for row, name in enumerate(datasets):
    for col, (model, seed) in enumerate((m, s) for m in ("diffusion", "GAN") for s in seeds):
        ax = axes[row, col]
        plot_points(datasets[name], ax=ax, s=1, color="0.85")
        plot_points(runs[name, model, seed]["snaps"][-1], ax=ax, s=1, color="C0" if model == "GAN" else "C1")
        ax.set(xlim=(-1.2, 1.2), ylim=(-1.2, 1.2), xticks=[], yticks=[], title=f"{model}, seed {seed}")
fig.tight_layout()
plt.show()

# %% [markdown]
# In the run stored here (12 s per run, 3 seeds), on the ring the diffusion model covered all 8
# modes in every run; the GAN covered 8, 7 and 7, and starves or joins some clusters. Where the
# GAN's points land they are sharper: its quality (the share of points close to a centre) is
# 0.86-0.91 against 0.83-0.86 for diffusion, so "quality" alone would crown the GAN. The energy
# distance, which also sees missing modes and wrong proportions, has a median of 0.013 for
# diffusion (0.011-0.027) against 0.064 for the GAN (0.017-0.067); a perfect model scores
# 0.0002-0.0005. On the moons the result turns: the GAN's bands are thinner and closer to the data
# in every seed (0.0016-0.0021 against 0.0045-0.0091). Three seeds are few, so read the ranges,
# not single runs.
#
# `benchmarks/beyond.py` repeats the race with 5 seeds (same CPU, one thread) and adds a second
# budget: 3000 steps for each model, so that the diffusion model's learning rate decays to zero
# by the end. On the ring, diffusion covered all 8 modes in all 10 of its runs, each mode holding
# 4.7% to 17% of the samples (a perfect model puts 12.5% on each); the GAN covered all 8 in 3 of
# its 10 runs, and its weakest mode never held more than 1.1%. Median energy distance: 0.0021
# (3000 steps) and 0.018 (12 s) for diffusion, against 0.061 and 0.051 for the GAN. On the moons
# the GAN was closer again (0.0022 and 0.0017 against 0.0038 and 0.0062). With DCGAN's slower
# learning rate, 2e-4, the GAN covered all 8 modes in all 5 seeds, but with lopsided shares
# (median energy distance 0.058). Sampling 2000 points took 1.9 ms for the GAN (one call) and
# 146 ms for diffusion (50 DDIM steps).

# %% [markdown]
# ## 6. Training, seen over time
#
# Losses first. The diffusion loss is an average of independent denoising errors: it falls and
# settles, and the same recipe gives nearly the same curve for every seed. It tells you that
# training works, though not how good the samples are at a given moment (the next plot). The GAN's
# two losses measure a game, not progress: after the first steps they drift to a different level
# for each seed.

# %%
smooth = lambda xs, k=50: torch.tensor(xs).unfold(0, k, k).mean(1) if len(xs) >= k else torch.tensor(xs)
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
for seed in seeds:
    axes[0].plot(smooth(runs["ring", "diffusion", seed]["losses"]), label=f"seed {seed}")
    axes[1].plot(smooth(runs["ring", "GAN", seed]["losses"]), color=f"C{seed}", label=f"D, seed {seed}")
    axes[1].plot(smooth(runs["ring", "GAN", seed]["g_losses"]), color=f"C{seed}", ls="--")
axes[0].set(title="diffusion loss (ring)", xlabel="step / 50", yscale="log")
axes[1].set(title="GAN losses (ring): D solid, G dashed", xlabel="step / 50")
axes[0].legend(fontsize=8); axes[1].legend(fontsize=8)
plt.show()

# %% [markdown]
# The same question for the samples: the energy distance of every snapshot, for every run on the
# ring, against training time.

# %%
fig, ax = plt.subplots(figsize=(7, 3.2))
for (name, model, seed), r in runs.items():
    if name == "ring":
        ax.plot(snapshot_times(), [energy_distance(x, fresh["ring"]) for x in r["snaps"]], "o-", ms=3,
                color="C0" if model == "GAN" else "C1", label=f"{model}, seed {seed}")
ax.set(xlabel="seconds of training", ylabel="energy distance", yscale="log", title="ring: samples over training")
ax.legend(fontsize=7, ncol=2)
plt.show()

# %% [markdown]
# This is the clearest difference in the race. The GAN was at its best after 1-2 seconds (energy
# distance about 0.005-0.012) and then got worse in every seed, ending about 2 to 6 times further
# from the data: its generator kept moving mass between clusters instead of settling. The
# diffusion model's distance falls over the first seconds and then jumps between about 0.004 and
# 0.035 from snapshot to snapshot: with a constant learning rate and no EMA (choices made to keep
# the race simple) its weights keep moving too, but they do not drift away. An EMA of the weights
# (lesson 5) would smooth the curve: try it.

# %% [markdown]
# And the samples themselves during training, for seed 0 on the ring: the slider steps through the
# ten snapshots, the GAN on the left, diffusion on the right, the data in grey behind.

# %%
frames = [points_frame([gan, diff], titles=["GAN", "diffusion"], reference=ring)
          for gan, diff in zip(runs["ring", "GAN", 0]["snaps"], runs["ring", "diffusion", 0]["snaps"])]
FrameSlider(frames, [f"after {t:.1f} s of training" for t in snapshot_times()], scale=1, description="snapshot")

# %% [markdown]
# Drag the slider and compare how the two clouds change: does each improve steadily, or move
# around? Watch in particular whether a mode that the GAN misses at the end was ever covered.

# %% [markdown]
# ## Summary
#
# - A GAN trains a generator to fool a discriminator; nothing in that game rewards covering all the
#   data, and its losses do not track sample quality. A diffusion model's loss is an average over
#   every training example, so every mode pulls on it, and its curve is the same from seed to seed.
# - To compare generators, count what can be counted (modes covered, share of good samples) and
#   add a distance between distributions (energy distance), which also sees wrong proportions.
# - Measured here, same time, 3 seeds: on the ring diffusion covered all 8 modes every time and
#   ended closer to the data (median energy distance 0.013 against 0.064); the GAN drew sharper
#   points but dropped modes in 2 seeds, and got worse the longer it trained. On the two moons the
#   GAN was closer in every seed. The GAN samples in one network call; the diffusion model needs 50
#   here, which is the price of its stability.
#
# ## Going further
#
# 1. Train the GAN with DCGAN's learning rate, 2e-4, and with a budget 5 times larger: does
#    collapse appear, or go away?
# 2. Make the ring harder: 25 modes on a 5×5 grid (the other classic test). Which model loses
#    modes first?
# 3. Score each GAN snapshot with the energy distance and plot it over training: does the GAN's
#    quality improve steadily, like the diffusion model's?
