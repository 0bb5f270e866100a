# %% [markdown]
# # Lesson 6 · Sampling: from pure noise to a digit, step by step
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{{REPO}}/blob/main/notebooks/{{NAME}}.ipynb)
#
# **What you will learn**
#
# - the article's `generate(model)` running on a trained model, with its missing `remove_noise`
#   filled in, and why our model's output needs one conversion first
# - what happens along the 1000 reverse steps: when a shape appears, when the digit is decided,
#   and what the model "sees" at each stage (its current guess of the clean image)
# - how to scrub through a stored reverse run with the walkthrough widget
# - where the variety of the samples comes from: the starting noise, and the fresh noise added at
#   every step
# - how good the samples are, measured with the course's digit classifier beside real digits
#
# **What you need first**: lessons 4 and 5 (the reverse step, `remove_noise`, $v$-prediction and
# the bundled digit model).
#
# **Time to run** (Restart & Run All, full mode): about 4 minutes on a 2-core laptop CPU (measured:
# 243 s); GPU: not
# measured yet (no GPU was available when this lesson was written). No training happens here: the
# time is all sampling, 1000 model calls per batch.

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
from diffusion_lab import NoiseSchedule, get_device, load_mnist, seed_everything
from diffusion_lab.exercises import (check_eps_from_v, check_mean_pairwise_distance, check_reverse_loop,
                                     hint, solution)
from diffusion_lab.metrics import (digit_report, load_classifier, mean_pairwise_distance, paired_distance,
                                   reference_report)
from diffusion_lab.pretrained import load_pretrained
from diffusion_lab.samplers import Trajectory, ddpm_sample, predict_eps_x0, remove_noise, sample
from diffusion_lab.viz import plot_chain, show_images
from diffusion_lab.widgets import ReverseWalkthrough
device = get_device()
g = seed_everything(0)
FAST = os.environ.get("DIFFUSION_LAB_FAST") == "1"
print(f"device: {device}, FAST mode: {FAST}")

# %% [markdown]
# ## 1. The article's `generate`, on a trained model
#
# Lesson 5 ended with the bundled digit model, trained by the package's own script. It comes with
# the schedule it was trained on and says what it predicts. (Its training ran in two parts; the
# minutes printed are the second part, resumed at step 6,800. The whole run took about an hour and
# a half.)

# %%
bundled = load_pretrained("digits")
net, schedule = bundled.model.to(device), bundled.schedule.to(device)
print(f"predicts: {bundled.prediction!r}; trained {bundled.info['num_steps']} steps "
      f"({bundled.info['minutes']} min on {bundled.info['hardware']})")
print(f"{net.num_parameters():,} parameters, T = {len(schedule)} timesteps")

# %% [markdown]
# The article's `generate` expects a model that returns the **noise** $\epsilon$. Ours returns
# $v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1-\bar\alpha_t}\,x_0$ (lesson 5). Both the noise and
# the clean image hide in $x_t$ and $v$ together; eliminating $x_0$ from the pair
#
# $$x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon, \qquad
# v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1-\bar\alpha_t}\,x_0$$
#
# gives the noise back. **Exercise 1 (checked).** Write `eps_from_v(xt, v, alpha_bar_t)`: `xt` and
# `v` are tensors of the same shape, `alpha_bar_t` a Python float; return $\epsilon$. (Multiply the
# first equation by $\sqrt{1-\bar\alpha_t}$ and the second by $\sqrt{\bar\alpha_t}$, and add.)
# `hint("eps_from_v")` gives a hint and `solution("eps_from_v")` a model answer.

# %%
def eps_from_v_mine(xt, v, alpha_bar_t):
    # your code here
    raise NotImplementedError

check_eps_from_v(eps_from_v_mine)

# %% [markdown]
# The package has this conversion (with the other two targets) in `predict_eps_x0`. With it we
# wrap the network so that it speaks the article's language, `model(x, t)` with a plain integer
# `t`, returning the noise, and give `remove_noise` (lesson 4) the schedule it needs:

# %%
cpu_schedule = schedule.to("cpu")  # the article's loop keeps x on the CPU

@torch.no_grad()
def model(x, t):
    """The bundled network as the article calls it: noise prediction for an integer timestep t."""
    x = x.to(device)
    v = net(x, torch.full((len(x),), t, device=device))
    return predict_eps_x0(v, x, schedule.alpha_bar[t], "v")[0].cpu()

def remove_noise_article(x, predicted_noise, t):
    return remove_noise(x, predicted_noise, t, cpu_schedule, generator=g)

# %% [markdown]
# Here is the article's `generate` (code and comments copied from "Diffusion Models" by Amit
# Shekhar, Outcome School, the article this course grew from) with two changes, both marked: its
# first line draws a 3-channel 64×64 image, and our model draws 1-channel 28×28 digits; and it calls
# our wrapped `remove_noise_article`.

# %%
def generate(model):
    x = torch.randn(1, 1, 28, 28)             # start from pure noise  (CHANGED: was 1, 3, 64, 64)
    for t in reversed(range(1000)):           # go from step 999 down to 0
        predicted_noise = model(x, t)         # predict the noise
        x = remove_noise_article(x, predicted_noise, t)   # subtract a part of it  (CHANGED: name)
    return x                                   # final clean image

# %%
torch.manual_seed(0)  # the article's code draws x_T from PyTorch's global generator
start = time.perf_counter()
digits_made = [generate(model) for _ in range(1 if FAST else 4)]
print(f"{len(digits_made)} digits, 1000 steps each, in {time.perf_counter() - start:.1f} s")

# %%
fig, axes = plt.subplots(1, len(digits_made), figsize=(1.3 * len(digits_made), 1.7), squeeze=False)
plot_chain([d[0] for d in digits_made], [f"generate #{i + 1}" for i in range(len(digits_made))], axes=axes[0])
plt.show()

# %% [markdown]
# The article's five lines, plus one step it left out, turn static into handwriting. Each call
# starts from different noise and ends on a different digit. The rest of this lesson opens up that
# loop: what happens in it, step by step.

# %% [markdown]
# ## 2. The loop, written out
#
# Each pass of the loop does three things at paper step $t$ (in the maths, as in lesson 1, $t$ runs
# from $T$ down to 1; the code's timestep is $t-1$, from 999 down to 0):
#
# 1. ask the network for the noise: $\hat\epsilon = \epsilon_\theta(x_t, t)$;
# 2. estimate the clean image, $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$,
#    clipped to $[-1, 1]$;
# 3. step to the mean of $q(x_{t-1}\mid x_t, \hat x_0)$ (lesson 4) and add fresh noise with the
#    posterior's standard deviation $\tilde\beta_t^{1/2}$ (none at the last step, $t = 1$).
#
# **Exercise 2 (checked).** Write the loop yourself. `model(x, t)` takes a batch and a tensor of
# timesteps (B,) and returns the noise; `schedule` is a `NoiseSchedule` with `len(schedule)`
# steps; `x_T` is the starting noise; `noises[t]` is the fresh noise to use for the step that leaves
# timestep `t` (given, so the answer is exact). Use `remove_noise(x, eps_hat, t, schedule,
# noise=noises[t])` for each step, and return the final `x`. The check runs it on a small fake model.

# %%
def reverse_loop_mine(model, schedule, x_T, noises):
    # your code here
    raise NotImplementedError

check_reverse_loop(reverse_loop_mine)

# %% [markdown]
# The package's `ddpm_sample` is that loop as a **generator**: it yields a record for every step
# (the timestep, the new $x_{t-1}$ and the estimate $\hat x_0$), so we can watch without changing
# the loop. `Trajectory.record` runs it and keeps every `every`-th step: the batch the model saw
# and its guess, on the CPU, ready for plots and the widget. Here are 16 digits made together:

# %%
n_walk = 4 if FAST else 16
x_T = torch.randn(n_walk, 1, 28, 28, generator=g).to(device)
steps = ddpm_sample(net, schedule, x_T, prediction="v", generator=torch.Generator(device).manual_seed(1),
                    progress=False)
trajectory = Trajectory.record(steps, x_T, every=10)
print(f"{len(trajectory)} frames kept, each {tuple(trajectory.xt.shape[1:])}; "
      f"code timesteps {trajectory.t[:3]} ... {trajectory.t[-3:]} (-1: finished)")

# %% [markdown]
# The article tells the story in four pictures: pure noise, a faint shape, a rough image, a clear
# image. To put those words on our frames we need a measure of how much of the finished digit a
# frame already shows: `Trajectory.closeness` takes the correlation between each frame and the
# finished images (0: no trace, 1: identical). The frames get their names from that number, at the
# thresholds 0.25, 0.6 and 0.9 (a convention of this course, not a law). Here is one digit at four
# moments, as in the article's story (all timesteps in code numbering):

# %%
stages = trajectory.stages(noun="digit")
moments = [trajectory.t.index(t) for t in (999, 499, 299)] + [len(trajectory) - 1]
names = ["$x_T$ (t = 999)", "t = 499", "t = 299", "finished $x_0$"]
fig, axes = plt.subplots(1, 4, figsize=(6, 2.1))
plot_chain([trajectory.xt[k][0] for k in moments],
           [f"{name}\n{stages[k]}" for name, k in zip(names, moments)], axes=axes, arrow="remove noise ->")
plt.show()

# %% [markdown]
# At code $t = 499$, halfway through the steps, the cosine schedule has kept about half of the
# signal variance ($\bar\alpha \approx 0.49$), and the digit shows through a heavy grain; at
# $t = 299$ ($\bar\alpha \approx 0.79$) it is a rough digit with some grain left to clean up. The
# sample passes through the same noise levels as the forward process of lesson 2, in reverse.

# %% [markdown]
# ## 3. The walkthrough: $x_t$ beside the model's guess
#
# The widget below plays the stored run. On the left is $x_t$, the batch the model was given at
# that step; on the right is its estimate $\hat x_0$ of the finished image. Press play, or drag the
# slider. Under the picture: the stage, the code timestep and the correlation with the finished
# digits. (In a notebook viewer without a kernel the widget is not shown; the figures below carry
# the same information.)

# %%
walkthrough = ReverseWalkthrough(trajectory, nrow=8, noun="digit")
walkthrough

# %% [markdown]
# Both sides can be measured with the same yardstick. This plot shows, for every stored frame, how
# close $x_t$ and $\hat x_0$ are to the finished digits, with the stage names along the top:

# %%
ts = trajectory.t  # code timesteps of the frames; -1 marks the finished images
near = {"xt": trajectory.closeness("xt"), "x0_hat": trajectory.closeness("x0_hat")}
for t in (999, 799, 599, 399, 199):
    k = ts.index(t)
    print(f"t = {t}: correlation with the finished digits: x_t {near['xt'][k]:.2f}, "
          f"guess {near['x0_hat'][k]:.2f}")

# %%
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(ts, near["xt"], label="$x_t$ (what the model sees)")
ax.plot(ts, near["x0_hat"], label="$\\hat x_0$ (its guess)")
for k in range(1, len(stages)):
    if stages[k] != stages[k - 1]:
        ax.axvline(ts[k], color="grey", lw=0.8, ls=":")
        ax.text(ts[k], 1.06, stages[k], fontsize=8, ha="center", va="bottom")
ax.set_xlim(1000, -10)
ax.set_ylim(-0.05, 1.15)
ax.set_xlabel("code timestep t (sampling runs left to right)")
ax.set_ylabel("correlation with final")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# The guess runs far ahead of the sample. By the time a faint shape shows in $x_t$, the model's
# $\hat x_0$ already correlates strongly with the finished digit: the big decisions are taken early,
# at high noise, and the remaining hundreds of steps mostly refine and sharpen. That is the first
# hint that 1000 steps may be more than we need (lesson 7).

# %% [markdown]
# ## 4. When is the digit decided?
#
# Correlation counts pixels; a classifier asks the question that matters: *which digit is it?* The
# course's digit classifier (lesson 5) reads each frame's guess $\hat x_0$. For every frame we count
# the share of the samples whose guess is already classified as the digit they end up as:

# %%
classifier = load_classifier()
with torch.no_grad():
    guess_classes = torch.stack([classifier(frame).argmax(1) for frame in trajectory.x0_hat])  # (K, B)
final_class = guess_classes[-1]
decided = (guess_classes == final_class).float().mean(1)  # share agreeing with the end, per frame
last_change = max(k for k in range(len(ts)) if decided[k] < 1)  # the last frame with a dissenter
print(f"final digits: {final_class.tolist()}")
print(f"from t = {ts[last_change + 1]} on, every guess is read as its final digit")

# %%
fig, ax = plt.subplots(figsize=(7, 2.6))
ax.plot(ts, decided, drawstyle="steps-post")
ax.set_xlim(1000, -10)
ax.set_ylim(0, 1.05)
ax.set_xlabel("code timestep t")
ax.set_ylabel("share already decided")
ax.set_title(f"the classifier reads the model's guess as the final digit ({n_walk} samples)", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# Early on (down to $t = 939$ in this run) the guess is a blurry average of all digits, and the
# classifier reads none of the 16 guesses as its final digit. Then the samples commit, with some
# back and forth: half of them for good by $t \approx 770$, 15 of 16 by $t \approx 650$; after that
# at most one still wavers, and every one agrees from $t = 289$ on. At $t = 599$, $x_t$ correlates
# only 0.37 with the finished digit, yet 15 of 16 guesses already read as their final digit: most
# classes are settled long before $x_t$ shows anything a person would call a digit. Here is what the
# model "sees" and guesses for four samples at chosen steps:

# %%
pick = [trajectory.t.index(t) for t in (899, 699, 499, 299, 99)]
fig, axes = plt.subplots(4, 2 * len(pick), figsize=(10, 6.2))
for row, i in enumerate(range(4)):  # the first four samples
    images, labels = [], []
    for k in pick:
        images += [trajectory.xt[k][i], trajectory.x0_hat[k][i]]
        labels += [f"input, t = {trajectory.t[k]}", f"guess: '{guess_classes[k][i].item()}'"]
    plot_chain(images, labels, axes=axes[row])
fig.tight_layout()
plt.show()

# %% [markdown]
# Read each pair from left to right: the guess starts as a soft blob, becomes a blurry but
# recognisable digit while $x_t$ is still static, and sharpens as the noise goes. The quoted number
# is the classifier's reading of the guess: in the bottom row, a "6" at $t = 899$ that becomes a "0".

# %% [markdown]
# ## 5. Where does the variety come from?
#
# A sampler is a function of its random inputs: the starting noise $x_T$ and the 999 fresh noises
# added along the way. With both fixed (seeded generators), sampling repeats exactly. Which of the
# two decides the digit? We sample a row of 8 digits three times:
#
# - **run 1**: 8 starts, and fresh noise from a generator seeded with 5;
# - **new starts**: 8 *other* starts, the *same* fresh noise (seed 5 again);
# - **new fresh noise**: the starts of run 1, with fresh noise from seed 6.
#
# From here on we use the package's one-call `sample(..., sampler="ddpm")`, which runs
# `ddpm_sample` to the end and returns the images.

# %%
n_var = 4 if FAST else 8
num_steps = 50 if FAST else 1000  # FAST mode (for tests) takes 50 strided ancestral steps instead
def ddpm(x, seed):  # ancestral sampling with its own seeded generator for the noise along the way
    return sample(net, schedule, x, sampler="ddpm", num_steps=num_steps, prediction="v",
                  generator=torch.Generator(device).manual_seed(seed), progress=False)
starts, other_starts = (torch.randn(n_var, 1, 28, 28, generator=g).to(device) for _ in range(2))
runs = {"run 1": ddpm(starts, 5), "new starts": ddpm(other_starts, 5), "new fresh noise": ddpm(starts, 6)}
print("run 1 again, same seeds, identical:", torch.equal(ddpm(starts, 5), runs["run 1"]))

# %%
fig, axes = plt.subplots(3, 1, figsize=(6, 3.1))
for ax, (name, images) in zip(axes, runs.items()):
    show_images(images, nrow=n_var, ax=ax, title=name)
fig.tight_layout()
plt.show()

# %% [markdown]
# A surprise: new starts with the same fresh noise give (almost) the same digits, while the same
# starts with new fresh noise give different ones. The reason is the very first step. The posterior
# mean of lesson 4 mixes the model's guess and its input,
# $\mu = c_0\,\hat x_0 + c_t\,x_t$, and adds fresh noise. With the cosine schedule the last
# $\beta$ is 0.999 (lesson 3 clips it there), so at code $t = 999$ the weight $c_t$ of $x_T$ is tiny:

# %%
print(f"first step (t = 999): weight of x_T {schedule.posterior_coef_xt[999]:.3f}, "
      f"weight of the guess {schedule.posterior_coef_x0[999]:.4f}, "
      f"size of the fresh noise {schedule.posterior_variance[999].sqrt():.4f}")
linear = NoiseSchedule.linear()
print(f"with the linear schedule instead, the weight of x_T would be {linear.posterior_coef_xt[999]:.3f}")

# %% [markdown]
# So $x_{T-1}$ (code $t = 998$) is almost entirely the fresh noise of the first step: $x_T$ is thrown away at once
# (the guess from it, a blurry average, hardly depends on it either), and from then on the fresh
# noise steers. This is a property of this schedule, whose last step alone has $\beta = 0.999$. The
# linear schedule also ends with $\bar\alpha$ almost 0, but its last $\beta$ is 0.02, so there
# $x_T$ would survive the first step (weight 0.990). Measured, as the average
# distance between the two images in the same position of two runs (`paired_distance` from
# `diffusion_lab.metrics`):

# %%
for name in ("new starts", "new fresh noise"):
    print(f"run 1 vs {name:16}: {paired_distance(runs['run 1'], runs[name]):5.2f}")

# %% [markdown]
# To put a number on the variety *within* a run, take the average distance between two different
# samples: 0 for copies, larger for varied sets. **Exercise 3 (checked).** Write
# `mean_pairwise_distance(images)` for a batch (B, C, H, W): flatten each image to a vector,
# and average the Euclidean distance $\lVert a - b\rVert$ over all pairs of *different* images.
# `hint("mean_pairwise_distance")` gives a hint and `solution("mean_pairwise_distance")` an answer.

# %%
def mean_pairwise_distance_mine(images):
    # your code here
    raise NotImplementedError

check_mean_pairwise_distance(mean_pairwise_distance_mine)

# %% [markdown]
# The measurement below uses the package's `mean_pairwise_distance` (the model answer), so it runs
# whether or not you have done the exercise. Real digits give the scale:

# %%
real_digits = load_mnist()[0][torch.randperm(10000, generator=g)[:n_var]]
for name, images in {"run 1": runs["run 1"], "real digits": real_digits}.items():
    print(f"{name:12} mean distance between two of its images: {mean_pairwise_distance(images):5.2f}")

# %% [markdown]
# Within a run the samples differ about as much as real digits do: the model does not repeat itself
# (8 images make a rough estimate; section 6 repeats it with 200).
# Lesson 7 meets samplers that add no fresh noise at all; there, the start $x_T$ alone decides the
# digit.

# %% [markdown]
# ## 6. A fresh batch, measured
#
# Finally, a larger batch from new noise, measured the way lesson 5 measured its samples: the share
# the classifier recognises with at least 90% confidence, the Fréchet distance between classifier
# features of the samples and of real digits (lower is better), and the share of each digit. The
# same number of real digits, measured the same way, gives the reference. The Fréchet distance
# depends strongly on how many images go in: it compares 128-number features, and with few images
# their averages and spreads are themselves noisy, so even real digits score far from 0 (about 56
# with 150 images, 47 with 200, 18 with 300). Compare rows of the same size only.

# %%
n = 16 if FAST else 200
x_T = torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(6)).to(device)
start = time.perf_counter()
samples = ddpm(x_T, 7)
print(f"{n} samples, {num_steps} steps, in {time.perf_counter() - start:.0f} s")

# %%
fig, ax = plt.subplots(figsize=(6, 6) if not FAST else (6, 1.6))
show_images(samples[:100], nrow=10 if not FAST else 8, ax=ax, title=f"the first 100 of {n} fresh samples"
            if not FAST else f"{n} fresh samples")
plt.show()

# %%
ours, real_ref = digit_report(samples), reference_report(n)
real_n = load_mnist()[0][torch.randperm(10000, generator=g)[:n]]
print(f"{n} images each          Fréchet distance   confident   mean distance between two")
for name, report, images in (("real digits", real_ref, real_n), ("bundled model, DDPM", ours, samples)):
    print(f"{name:24} {report.frechet:12.1f} {report.confident:11.0%} {mean_pairwise_distance(images):16.2f}")

# %%
fig, ax = plt.subplots(figsize=(6, 2.4))
ax.bar(torch.arange(10) - 0.2, real_ref.class_shares, width=0.4, label="real digits")
ax.bar(torch.arange(10) + 0.2, ours.class_shares, width=0.4, label="samples")
ax.axhline(0.1, color="grey", lw=0.8, ls=":")
ax.set_xticks(range(10))
ax.set_xlabel("digit (as the classifier reads it)")
ax.set_ylabel("share")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# With 200 images each, real digits score a Fréchet distance of 46.6 and 96% confident; the bundled
# model's samples 48.7 and 93%. Most samples are clean digits; the rest are the odd, half-formed
# shapes you can spot in the grid. Every digit is drawn, in shares near the real ones. The largest
# gap is the 9s: 6.5% of the samples against 11% of these 200 real digits. The 2s go the other way
# (8.5% against 5.5%), but this real set happens to hold few 2s (10.3% of all 10,000 bundled digits
# are 2s). Lesson 7 shows that about 20 model calls, instead of 1000, come close to the same
# quality, though not all the way.

# %% [markdown]
# ## Summary
#
# - Sampling runs the reverse step from pure noise: predict the noise, estimate $x_0$, step to the
#   posterior mean, add a little fresh noise; 1000 times. The article's `generate` does exactly
#   that once `remove_noise` exists and the model's $v$ is turned into noise,
#   $\epsilon = \sqrt{1-\bar\alpha_t}\,x_t + \sqrt{\bar\alpha_t}\,v$.
# - The model's guess $\hat x_0$ runs far ahead of the sample $x_t$: the digit's class is mostly
#   settled at high noise, while $x_t$ still looks like static; the later steps refine.
# - The variety comes from the random inputs: the start $x_T$ and, for ancestral sampling, the
#   fresh noise at every step; with all of them fixed, sampling repeats exactly.
# - Measured with the course's classifier, the bundled model's samples come close to real digits
#   (Fréchet distance 48.7 against 46.6 for real digits, 93% confident against 96%).
#
# ## Going further
#
# 1. In section 2, record with `every=1` and find the first step at which `stages` says
#    "rough digit". How does it move with the thresholds in `trajectory.stages(thresholds=...)`?
# 2. Sample with `clip_x0=False` in `ddpm_sample`. Do the digits change? Measure them.
# 3. Section 5 found that $x_T$ is forgotten in the first step. Sample with the same seeds from a
#    model trained on the linear schedule (train one in lesson 5 with `NoiseSchedule.linear()`):
#    does $x_T$ matter there?
# 4. Train lesson 5's small model again and walk through its samples with the widget: where does
#    it go wrong, early (class) or late (detail)?
