# %% [markdown]
# # Lesson 5 · Training
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{{REPO}}/blob/main/notebooks/{{NAME}}.ipynb)
#
# **What you will learn**
#
# - the article's `training_step`, run as written on a batch of digits, and what a real training
#   loop adds to it (a timestep per image, an optimiser, a moving average of the weights, checkpoints)
# - three things a network can be asked to predict, $\epsilon$, $x_0$ or $v$, and why this course
#   trains with $v$ on the cosine schedule
# - a full training loop on the 10,000 digits, with a progress bar, a live loss plot, an
#   exponential moving average (EMA) of the weights, and checkpoints that survive an interruption
# - two settings that buy quality per CPU minute: which timesteps training practises most (a
#   logit-normal density), and bfloat16 arithmetic where the processor has it
# - how the loss depends on the timestep, and what the model predicts at low and high noise
# - what a few CPU minutes of training buy, measured, beside the bundled model trained for longer
#
# **What you need first**: lessons 2 to 4 (the one-jump formula
# $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$, the cosine schedule, the ideal
# denoiser and the U-Net), and a little PyTorch (an optimiser step).
#
# **Time to run** (Restart & Run All, full mode): about 6 minutes on a 2-core laptop CPU (measured:
# 340 s: 3 minutes of training, most of the rest sampling); GPU: not measured yet (no GPU was
# available when this lesson was written).
#
# Run one training notebook at a time on a CPU: PyTorch already uses every core, and two kernels
# training at once fight over them and each runs several times slower.

# %%
# On Colab, install the course package; elsewhere `pip install -r requirements.txt` already did
import sys
if "google.colab" in sys.modules:
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/{{REPO}}"], check=True)

# %%
import itertools
import os
from pathlib import Path
import matplotlib.pyplot as plt
import torch
from diffusion_lab import NoiseSchedule, eval_mode, get_device, load_mnist, native_bf16, seed_everything
from diffusion_lab.exercises import check_ema_update, check_training_loss, check_v_target, hint, solution
from diffusion_lab.metrics import digit_report, reference_report
from diffusion_lab.models import UNet
from diffusion_lab.pretrained import load_pretrained
from diffusion_lab.samplers import ddpm_sample, last, predict_eps_x0
from diffusion_lab.training import EMA, diffusion_loss, load_checkpoint, train
from diffusion_lab.viz import LossPlot, plot_chain, show_images
device = get_device()
g = seed_everything(0)
FAST = os.environ.get("DIFFUSION_LAB_FAST") == "1"
print(f"device: {device}, FAST mode: {FAST}")

# %% [markdown]
# ## 1. The article's training step
#
# Training needs no labels and no hidden answer key: we make the noisy image ourselves, so we know
# exactly which noise went in, and the network is scored on how well it names that noise. The
# article writes this as a function `training_step(model, image)`. It uses a global `alpha_bar`
# that it never defines; we give it the linear schedule of lesson 3 (1000 values, indexed by the
# code timesteps 0 to 999 of lesson 1's convention) and the article's own `add_noise`.

# %%
digits, labels = load_mnist()  # (10000, 1, 28, 28) in [-1, 1]
alpha_bar = NoiseSchedule.linear().alpha_bar  # the global the article's code expects, shape (1000,)

# %% [markdown]
# Here are the article's `add_noise` and `training_step`, as written (code and comments copied from
# "Diffusion Models" by Amit Shekhar, Outcome School, the article this course grew from):

# %%
def add_noise(image, noise, alpha_bar_t):
    # alpha_bar_t controls how much original image remains
    noisy_image = (alpha_bar_t ** 0.5) * image + ((1 - alpha_bar_t) ** 0.5) * noise
    return noisy_image

def training_step(model, image):
    t = torch.randint(0, 1000, (1,))          # pick a random time step
    noise = torch.randn_like(image)           # create random noise
    noisy_image = add_noise(image, noise, alpha_bar[t])

    predicted_noise = model(noisy_image, t)   # model predicts the noise
    loss = ((noise - predicted_noise) ** 2).mean()   # compare with real noise
    return loss

# %% [markdown]
# It returns a loss and nothing else: the update of the weights is left to us. Give it a small
# U-Net from lesson 4 and a batch of 64 digits, then take one optimiser step. The article's code
# makes `t` on the CPU, so this small demonstration runs there whatever `device` is.

# %%
torch.manual_seed(0)  # the article's code draws t and the noise from PyTorch's global generator
small_model = UNet(channels=(16, 32, 64), attention=False)  # on the CPU, like the article's t
optimizer = torch.optim.Adam(small_model.parameters(), lr=2e-3)
batch = digits[:64]  # (64, 1, 28, 28)
loss = training_step(small_model, batch)
optimizer.zero_grad()
loss.backward()  # gradients of the loss with respect to every weight
optimizer.step()  # move each weight a little downhill
print(f"loss of the first step: {loss.item():.3f}")

# %% [markdown]
# An untrained network scores about 1, the average of $\epsilon^2$: it knows nothing about the
# noise yet. Repeat the step a few dozen times on fresh batches and watch the loss:

# %%
article_losses = []
for step in range(15 if FAST else 40):
    batch = digits[torch.randint(len(digits), (64,))]
    loss = training_step(small_model, batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    article_losses.append(loss.item())

# %%
fig, ax = plt.subplots(figsize=(6, 2.4))
ax.plot(range(2, len(article_losses) + 2), article_losses, "o-", ms=3)
ax.set_xlabel("optimiser step")
ax.set_ylabel("loss")
ax.set_yscale("log")
ax.set_title("the article's training_step, one optimiser step each")
fig.tight_layout()
plt.show()

# %% [markdown]
# The loss falls quickly, but it jumps from step to step. Part of the reason is that the article
# draws **one** timestep for the whole batch (`t` has shape `(1,)`), and some timesteps are far
# harder than others (section 4). The loop this lesson uses differs in several ways:
#
# - every image in a batch gets its own random timestep, so each step sees the whole range;
# - the optimiser (Adam), with a warm-up and a slowly falling learning rate, and gradient clipping;
# - an average of the weights over recent steps (EMA, section 3), used for sampling;
# - checkpoints, so an interrupted run loses nothing, and a progress bar and a loss plot.

# %% [markdown]
# **Exercise 1 (checked).** Write the loss of `training_step` for a batch with one timestep *per
# image*. `model(xt, t)` is a callable, `x0` a tensor of images (B, 1, H, W), `alpha_bar` the
# schedule's tensor (T,), `t` a tensor (B,) of code timesteps and `noise` a tensor shaped like `x0`
# (given, so the answer is exact). Return the mean squared error between `noise` and the model's
# prediction, as a tensor. Hint: `alpha_bar[t]` has shape (B,); reshape it so it multiplies one
# image each. `hint("training_loss")` gives a hint and `solution("training_loss")` a model answer.

# %%
def training_loss_mine(model, x0, alpha_bar, t, noise):
    # your code here
    raise NotImplementedError

check_training_loss(training_loss_mine)

# %% [markdown]
# ## 2. What should the network predict?
#
# The article asks for the noise $\epsilon$, as Ho et al. (2020) did. Since
# $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ ties the three together, the
# network could as well be asked for the clean image $x_0$: given $x_t$, either one gives the other.
# A third choice, from Salimans & Ho (2022), is the **velocity**
#
# $$v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1-\bar\alpha_t}\,x_0, \qquad
# x_0 = \sqrt{\bar\alpha_t}\,x_t - \sqrt{1-\bar\alpha_t}\,v, \qquad
# \epsilon = \sqrt{1-\bar\alpha_t}\,x_t + \sqrt{\bar\alpha_t}\,v.$$
#
# At low noise $v \approx \epsilon$, at high noise $v \approx -x_0$, and in between it is a blend.

# %% [markdown]
# Why bother? With $\epsilon$-prediction, the $x_0$ estimate is
# $(x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$: near the end of the cosine
# schedule $\bar\alpha_t$ is almost 0, so a tiny error in $\hat\epsilon$ becomes a huge error in
# $\hat x_0$. With $x_0$-prediction the same happens the other way round at low noise. The target
# $v$ avoids both. In our CPU measurements, $v$-prediction on the cosine schedule learned faster:
# with the same compute it reached better digits than $\epsilon$-prediction on the linear
# schedule. That was a handful of short runs on digits, not a general law, but it is why this
# course trains with `prediction="v"` and `NoiseSchedule.cosine()`.
# Here are the three targets for one digit at four code timesteps of the cosine schedule:

# %%
schedule = NoiseSchedule.cosine()  # the schedule used for training from here on
x0, eps = digits[1:2], torch.randn(1, 1, 28, 28, generator=g)  # one clean digit and one noise
show_ts = [50, 300, 600, 900]  # code timesteps
abar = [schedule.alpha_bar[t].item() for t in show_ts]
rows = {"$x_t$": [a ** 0.5 * x0[0] + (1 - a) ** 0.5 * eps[0] for a in abar],
        "target $\\epsilon$": [eps[0]] * 4, "target $x_0$": [x0[0]] * 4,
        "target $v$": [a ** 0.5 * eps[0] - (1 - a) ** 0.5 * x0[0] for a in abar]}

# %%
fig, axes = plt.subplots(4, 4, figsize=(6, 6.4))
for row, (name, images) in zip(axes, rows.items()):
    plot_chain(images, [f"{name}\nt = {t}, $\\bar\\alpha$ = {a:.3f}" for t, a in zip(show_ts, abar)],
               axes=row)
fig.suptitle("the three targets (grey levels clipped to [-1, 1])", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# The $\epsilon$ and $x_0$ targets do not change with $t$; the $v$ target turns from the noise into
# the negative (inverted) digit as the noise grows.
#
# **Exercise 2 (checked).** Write `v_target(x0, eps, alpha_bar_t)`: `x0` and `eps` are tensors of
# the same shape, `alpha_bar_t` is a Python float. Return the tensor $v$ of the formula above.
# `hint("v_target")` gives a hint and `solution("v_target")` a model answer.

# %%
def v_target_mine(x0, eps, alpha_bar_t):
    # your code here
    raise NotImplementedError

check_v_target(v_target_mine)

# %% [markdown]
# ## 3. The training loop
#
# ### An average of the weights
#
# The weights after the last step are not the best weights to sample with: each step follows one
# small random batch, so the weights jitter around where the loss is low. An **exponential moving
# average** (EMA) keeps a second copy that moves only a little towards the trained weights after
# every step, $\bar w \leftarrow d\,\bar w + (1-d)\,w$ with a decay $d$ just below 1. It averages
# roughly the last $1/(1-d)$ steps (200 for $d = 0.995$), which smooths out the jitter. We train
# `model` and sample from the average, `ema.model`. The toy below shows the idea on one number.

# %%
walk = torch.linspace(0, 1, 400) + 0.3 * torch.randn(400, generator=g)  # a drifting, jittery "weight"
averages = {}
for d in (0.9, 0.98):
    a, trace = walk[0].item(), []
    for w in walk.tolist():
        a = d * a + (1 - d) * w
        trace.append(a)
    averages[d] = trace

# %%
fig, ax = plt.subplots(figsize=(6, 2.4))
ax.plot(walk, lw=0.6, alpha=0.5, label="weight after each step")
for d, trace in averages.items():
    ax.plot(trace, lw=1.5, label=f"EMA, decay {d}")
ax.set_xlabel("step")
ax.legend(fontsize=8)
ax.set_title("an exponential moving average smooths the jitter (and lags a little)")
fig.tight_layout()
plt.show()

# %% [markdown]
# A larger decay smooths more but lags further behind; the package also warms the decay up, so the
# first few hundred steps are not dominated by the random starting weights.
#
# **Exercise 3 (checked).** Write one EMA update, `ema_update(average, value, decay)`: `average` and
# `value` are tensors of the same shape, `decay` is a Python float. Return the new average.
# `hint("ema_update")` gives a hint and `solution("ema_update")` a model answer.

# %%
def ema_update_mine(average, value, decay):
    # your code here
    raise NotImplementedError

check_ema_update(ema_update_mine)

# %% [markdown]
# ### Training on the digits
#
# `train(...)` runs the loop and **yields** a record after every optimiser step, so the notebook
# decides what to show and when to stop. It draws one timestep per image, uses Adam with a warm-up
# and a cosine-decaying learning rate, updates the EMA, shows a progress bar, saves a checkpoint
# every 200 steps and at the end, and stops by itself after `max_minutes`. The model is the U-Net of
# lesson 4 without attention, which trains faster on a CPU.
#
# A CPU gets through only so many images a minute, so two more settings decide how much a few
# minutes buy. Both were chosen by measuring samples after 3-minute runs on a 2-core CPU.
#
# - **Which timesteps to practise.** Algorithm 1 draws $t$ uniformly. We draw the fraction $t/T$
#   from a *logit-normal* density instead (Esser et al. 2024 use it to train Stable Diffusion 3):
#   $$u = \frac{1}{1 + e^{-(m + s z)}},\quad z \sim \mathcal N(0, 1),\qquad t = \lfloor u\,T \rfloor,$$
#   with $m = 0.5$ and $s = 1$. About 69% of the draws then land in the noisier half, where the
#   network decides which digit it is drawing and its shape, and fewer are spent on the faint
#   static of the lowest timesteps, which a sampler barely needs (section 4 shows why).
# - **bfloat16.** `mixed_precision="auto"` runs the convolutions in bfloat16, a 16-bit float with
#   float32's range but fewer digits, wherever the processor does bfloat16 arithmetic in hardware
#   (recent x86 server CPUs with AVX512-BF16 or AMX; NVIDIA GPUs from the A100 and RTX 30 series on,
#   not Colab's free T4; `native_bf16(device)` says). The weights, the optimiser, the EMA
#   and the loss stay float32. On the 2-core CPU this lesson was measured on, a step is about 1.4
#   times faster; elsewhere "auto" stays in float32, so the run takes fewer steps in the same time.
#
# Batches of 64 rather than the 128 of many recipes (and of the bundled model below): this CPU handles
# about as many images a second either way, so the smaller batch gives twice as many updates.

# %%
torch.manual_seed(0)
model = UNet(channels=(16, 32, 64), attention=False).to(device)
ema = EMA(model, 0.995)  # ema.model is the averaged copy we will sample from
ckpt = Path("checkpoints") / ("lesson5_fast.pt" if FAST else "lesson5.pt")
# Restart & Run All should train from scratch, so we delete an old checkpoint here.
# To RESUME an earlier run instead, comment out the next line: train() picks up the file.
ckpt.unlink(missing_ok=True)

# %%
bf16 = native_bf16(device)  # bfloat16 arithmetic in hardware here?
steps = 30 if FAST else (1800 if bf16 else 1250)  # each about 3 minutes on a 2-core CPU
settings = dict(num_steps=steps, batch_size=64, lr=2e-3, prediction="v", ema=ema,
                logit_normal=(0.5, 1.0), mixed_precision="auto",
                max_minutes=0.3 if FAST else 3.5, checkpoint=ckpt, checkpoint_every=200,
                generator=torch.Generator().manual_seed(0))
print(f"{sum(p.numel() for p in model.parameters()):,} weights; bfloat16 in hardware: {bf16}; "
      f"{steps} steps; checkpoint: {ckpt}")

# %% [markdown]
# To show that an interruption costs nothing, we stop after half of the steps, as if you had pressed
# Stop. `itertools.islice` takes only the first records from the loop; closing the loop makes
# `train` save a checkpoint (pressing Stop does the same). The plot redraws itself as it goes.

# %%
half = settings["num_steps"] // 2
plot = LossPlot(every=5 if FAST else 25, smooth=10 if FAST else 50)
run = train(model, digits, schedule, **settings)
for record in itertools.islice(run, half):
    plot.update(record)
run.close()  # what Stop does too: train() saves the checkpoint on its way out
print(f"stopped at step {record.step} after {record.seconds:.0f} s, loss {record.loss:.4f}")

# %%
state = load_checkpoint(ckpt)
print(f"the checkpoint holds step {state['step']}; saved: {', '.join(sorted(state))}")

# %% [markdown]
# The checkpoint holds the weights, the optimiser's state, the EMA and the state of the random
# generator that picks batches and timesteps. Calling `train` again with the **same arguments**
# therefore continues exactly where it stopped, on the same batches it would have seen.
# (After a kernel restart, run the cells above without the `unlink` line and then this one.)

# %%
plot_all = LossPlot(every=5 if FAST else 25, smooth=10 if FAST else 50, title="training loss, resumed")
plot_all.steps, plot_all.losses = list(plot.steps), list(plot.losses)  # continue the same curve
for record in train(model, digits, schedule, **settings):
    plot_all.update(record)
print(f"finished at step {record.step}: {record.seconds:.0f} s in this call, loss {record.loss:.4f}")

# %% [markdown]
# The loss falls fast in the first hundred steps and then slowly; the raw curve stays noisy because
# each batch holds a different mix of easy and hard timesteps. If the progress bar stopped before
# the last step, the `max_minutes` limit was reached: the run is still usable, just shorter.

# %% [markdown]
# ## 4. The loss at each timestep
#
# One number per step hides a lot. `diffusion_loss(..., t=..., reduction="none")` measures the loss
# at a timestep we choose, so we can sweep the whole range with the EMA model, on the same 128
# digits and the same noise each time. For comparison, a "model" that always answers $v = 0$ shows
# how large the target itself is. A useful fact: the $v$ loss is exactly the sum of the squared
# errors of the implied $\hat x_0$ and $\hat\epsilon$, since
# $\hat x_0 - x_0 = -\sqrt{1-\bar\alpha_t}\,(\hat v - v)$ and
# $\hat\epsilon - \epsilon = \sqrt{\bar\alpha_t}\,(\hat v - v)$.

# %%
grid_ts = list(range(0, 1000, 100 if FAST else 25))
x_eval = digits[:128].to(device)
zero_model = lambda xt, t: torch.zeros_like(xt)  # knows nothing: always predicts v = 0
per_t = {"EMA model": [], "always v = 0": []}
with torch.no_grad():
    for t in grid_ts:
        t_batch = torch.full((len(x_eval),), t, device=device)
        for name, m in (("EMA model", ema.model), ("always v = 0", zero_model)):
            loss = diffusion_loss(m, x_eval, schedule, prediction="v", t=t_batch, reduction="none",
                                  generator=torch.Generator().manual_seed(t))  # same noise for both
            per_t[name].append(loss.mean().item())

# %%
fig, ax = plt.subplots(figsize=(6, 2.6))
for name, values in per_t.items():
    ax.plot(grid_ts, values, "o-" if name == "EMA model" else "--", ms=3, label=name)
ax.set_xlabel("code timestep t (more noise to the right)")
ax.set_ylabel("v loss (mean over 128 digits)")
ax.set_yscale("log")
ax.legend(fontsize=8)
ax.set_title("the loss depends strongly on the timestep")
fig.tight_layout()
plt.show()

# %% [markdown]
# The dashed line is flat near 1: the $v$ target has about the same size at every timestep, one
# more reason to prefer it. The model's loss is lowest in the middle and rises at both ends, for
# two different reasons (recall: $v$ loss = $x_0$ error + $\epsilon$ error).
#
# - At high noise (right) the $x_0$ error dominates: the network has to say which digit lies under
#   the static, and lesson 4 showed that even the ideal denoiser cannot; many digits fit and the
#   best answer is their blurry average. This part stays however long we train: it is uncertainty
#   in the data, not a weakness of the model.
# - At the very lowest noise (left) the digit is nearly intact but the static is faint, and $v$
#   asks for its exact pattern at full size, so the $\epsilon$ error dominates. Fortunately a
#   sampler barely needs it there: the image is already almost clean.

# %% [markdown]
# Both ends say where training time is worth least, which is why this lesson draws timesteps from
# the logit-normal density rather than uniformly. (Part of the rise at the far left is that choice
# itself: the model practised the lowest timesteps least.) Here are 100,000 draws from each, the way
# `train` makes them:

# %%
draw = lambda density: schedule.sample_t(100_000, generator=torch.Generator().manual_seed(0),
                                         logit_normal=density)
drawn = {"logit-normal (0.5, 1): this lesson": draw(settings["logit_normal"]), "uniform: Algorithm 1": draw(None)}
fig, ax = plt.subplots(figsize=(6, 2.2))
for name, ts in drawn.items():
    ax.hist(ts.numpy(), bins=40, range=(0, 1000), histtype="step", lw=1.5, label=name)
    print(f"{name:36} lowest 100 timesteps: {(ts < 100).float().mean():5.1%}   "
          f"noisier half: {(ts >= 500).float().mean():5.1%}")
ax.set_xlabel("code timestep t"); ax.set_ylabel("draws per bin"); ax.legend(fontsize=8)
ax.set_title("where training spends its steps")
fig.tight_layout()
plt.show()

# %% [markdown]
# The logit-normal density spends almost no training on the lowest timesteps, where the loss is
# mostly the exact static and a sampler has little left to do, and most of it on the middle and the
# noisier half, where the digit takes shape. It still covers the whole range: the model must answer
# at every $t$ a sampler asks about.

# %% [markdown]
# ## 5. What the model predicts at low and high noise
#
# Turning the network's output into an $x_0$ estimate (`predict_eps_x0`, the formulas of section 2)
# shows what it "sees". Take three digits, noise them to the four timesteps of section 2 and look at
# $x_t$ beside the model's $\hat x_0$:

# %%
clean = digits[2:5].to(device)  # three digits
noise = torch.randn(clean.shape, generator=g).to(device)
strips = []
with torch.no_grad():
    for t, a in zip(show_ts, abar):
        xt = a ** 0.5 * clean + (1 - a) ** 0.5 * noise
        output = ema.model(xt, torch.full((3,), t, device=device))
        _, x0_hat = predict_eps_x0(output, xt, torch.tensor(a, device=device), "v")
        strips.append((xt, x0_hat.clamp(-1, 1)))

# %%
fig, axes = plt.subplots(3, 1 + 2 * len(show_ts), figsize=(10, 4.2))
for i in range(3):
    images, names = [clean[i]], ["clean $x_0$"]
    for t, (xt, x0_hat) in zip(show_ts, strips):
        images += [xt[i], x0_hat[i]]
        names += [f"$x_t$, t = {t}", f"$\\hat x_0$, t = {t}"]
    plot_chain(images, names if i == 2 else None, axes=axes[i])
fig.tight_layout()
plt.show()

# %% [markdown]
# Up to `t = 300` the estimate is the digit itself, crisp. At `t = 600` it is still the right digit,
# a little softer. At `t = 900` it is a dim blur that need not even be the right digit: the model
# answers with an average of the digits that could lie under the noise, just as lesson 4's ideal
# denoiser does. Sampling (lesson 6) walks from that
# blur to a sharp digit by re-asking the question at ever lower noise.

# %% [markdown]
# ## 6. Samples after a few CPU minutes
#
# Now the real test: start from pure noise and run DDPM sampling (lesson 4's reverse step, all 1000
# steps) with the EMA model. We measure the samples as the course does from here on
# (`diffusion_lab.metrics`): a small digit classifier says how many samples it recognises with at
# least 90% confidence, and the **Fréchet distance** between classifier features of the samples and
# of the real digits says how far the two collections differ (lower is better; real digits score
# about 0 only with very many samples, so we also measure the same number of real digits).

# %%
n = 8 if FAST else 100
x_T = torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(1)).to(device)
ours = last(ddpm_sample(ema.model, schedule, x_T, prediction="v",
                        generator=torch.Generator().manual_seed(2)))

# %%
fig, ax = plt.subplots(figsize=(5, 5) if not FAST else (5, 1.2))
show_images(ours, nrow=10 if not FAST else 8, ax=ax,
            title=f"our EMA model after {record.step} steps: {n} samples")
plt.show()

# %% [markdown]
# For comparison, the course bundles a model trained by the package's own script with this lesson's
# recipe (v-prediction on the cosine schedule, logit-normal timesteps, bfloat16), run far longer and
# on the U-Net of lesson 4 with its attention: 20,000 steps of 128 digits, about 22 times as many
# images as the run stored here. That took about an hour and a half on the same kind of 2-core CPU,
# in two parts: its `info` records the second, resumed from a checkpoint at step 6,800:

# %%
bundled = load_pretrained("digits")
print(bundled.info)
theirs = last(ddpm_sample(bundled.model.to(device), bundled.schedule, x_T, prediction=bundled.prediction,
                          generator=torch.Generator().manual_seed(2)))

# %%
fig, ax = plt.subplots(figsize=(5, 5) if not FAST else (5, 1.2))
show_images(theirs, nrow=10 if not FAST else 8, ax=ax,
            title=f"bundled model ({bundled.info['num_steps']} steps): the same {n} noises")
plt.show()

# %%
table = {"real digits": reference_report(n), f"ours ({record.step} steps)": digit_report(ours),
         f"bundled ({bundled.info['num_steps']} steps)": digit_report(theirs)}
print(f"{f'{n} images each':22} {'Fréchet distance':>16} {'confident':>11}")
for name, report in table.items():
    print(f"{name:22} {report.frechet:16.1f} {report.confident:11.0%}")

# %% [markdown]
# With only a hundred images the Fréchet distance is noisy and even real digits score far from 0,
# so compare each row with the row of real digits rather than with zero. In the run stored here
# (1,800 steps in 3 minutes on a 2-core CPU) the classifier was confident about 82 of our 100
# samples, against 95 of 100 real digits, and our Fréchet distance was a little above theirs:
# mostly recognisable digits, some half-formed or not digits at all. The bundled model, trained with
# the same timestep density and bfloat16 on about 22 times as many images, came closer: 92 confident, and a Fréchet distance that
# even fell below the real digits' (at this size that only shows how noisy the measure is).
#
# Your run will differ by a few points: another seed, or another hundred noises, moves the
# confident share that much. Measured with more samples on the same kind of CPU (the package's
# `benchmarks/train_digits.py`, 1000-step DDPM, 300 samples each), three minutes of this recipe gave
# 80.7% confident and a Fréchet distance of 42, against 96% and 18 for real digits. In two otherwise
# identical 3-minute runs measured on 500 samples, uniform timesteps gave 78.0% confident against
# 81.2% with the logit-normal density. The bundled model, measured like the three-minute runs,
# gives 92.0% and 23.6.

# %% [markdown]
# ## Summary
#
# - Training a diffusion model is supervised learning with answers we make ourselves: noise a clean
#   image to a random timestep in one jump and score the network on the target. The article's
#   `training_step` is that idea for one timestep per batch; the real loop draws one per image.
# - The target can be $\epsilon$, $x_0$ or $v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1-\bar\alpha_t}\,x_0$;
#   any one gives the others through $x_t$. This course uses $v$ with the cosine schedule.
# - `train(...)` is a generator: the notebook plots and stops it; checkpoints hold the weights, the
#   optimiser, the EMA and the random state, so a rerun resumes exactly. We sample from the EMA.
# - The loss is small at low noise and large at high noise, where even the ideal denoiser can only
#   give a blurry average; the model's $\hat x_0$ shows the same.
# - Where training spends its timesteps, and how many steps a minute buys, decide what a few CPU
#   minutes give: here a logit-normal density over the timesteps and bfloat16 arithmetic.
# - Three CPU minutes give mostly recognisable digits, some rough; the bundled model, trained with
#   the same timestep density on 22 times as many images, comes closer to real digits, and the
#   table says by how much.
#
# ## Going further
#
# 1. Train longer: set `steps` five times larger and `max_minutes=16`, and train from scratch. How do
#    the Fréchet distance and the share of confident samples change? (Resuming the 3-minute run
#    instead also works, but its learning rate jumps back up: the schedule is sized by `num_steps`.)
# 2. Set `prediction="eps"` (in `settings` and in `ddpm_sample`) and train again for the same time.
#    Then also switch to `schedule = NoiseSchedule.linear()`. Which reaches the better table?
# 3. Make the network wider: `UNet(channels=(32, 64, 64), attention=False)`. It is slower per step:
#    with the same `max_minutes`, is it better or worse?
# 4. Change the EMA decay: `EMA(model, 0.9)` and `EMA(model, 0.99)`. Sample from each, and also
#    from `model` itself (no average): which samples look cleanest after the same steps?
# 5. Plot the per-timestep loss of section 4 for `model` and for `ema.model`: where does the
#    average help most?
# 6. Train again with `logit_normal=None` (uniform timesteps, as in Algorithm 1). If `bf16` is True
#    here, also try `mixed_precision="no"` with `steps = 1250` (what float32 reaches in about the same
#    time). Before you conclude, train each twice with different seeds: with 100 samples the confident
#    share moves by several points from run to run with the same settings.
