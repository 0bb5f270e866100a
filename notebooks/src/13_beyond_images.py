# %% [markdown]
# # Lesson 13 · Beyond images: sound, point clouds, video, and two other views of diffusion
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{{REPO}}/blob/main/notebooks/{{NAME}}.ipynb)
#
# **What you will learn**
#
# - why nothing in the diffusion recipe is about pictures, and what does change from one kind of
#   data to another: the network, and the way you measure the results
# - diffusion on **sound**: short waveforms, a 1-D U-Net, samples you can play and read as
#   spectrograms
# - diffusion on **point clouds**, where the order of the points means nothing (a small stand-in
#   for molecules), with a network that treats every order alike by construction
# - diffusion on **video**: a clip is one tensor, and frames that are made together move together
# - the same process seen three ways on 2-D data: predicting the noise, the **score**, and **flow
#   matching**'s velocity, with the conversions checked numerically
#
# **What you need first**: lesson 5 (`train`), lesson 7 (`sample`, and DDIM as Euler steps on an
# ODE), lesson 8 (the score, in the derivation of guidance) and lesson 12 (the 2-D toys and the
# energy distance).
#
# **Time to run** (Restart & Run All, full mode): about 2.5 minutes on a 2-core laptop CPU
# (measured: 155 s); GPU: not measured yet (no GPU was available when this lesson was
# written).

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
from IPython.display import Audio, display
from diffusion_lab import beyond, gaussian_ring, get_device, q_sample, seed_everything
from diffusion_lab.exercises import (check_chamfer_distance, check_eps_to_score, check_flow_path,
                                     check_spectral_flatness, hint, solution)
from diffusion_lab.models import PointDenoiser, UNet1d
from diffusion_lab.pretrained import load_pretrained
from diffusion_lab.samplers import ddim_step, last, sample
from diffusion_lab.schedules import NoiseSchedule
from diffusion_lab.toy import MLPDenoiser, energy_distance, mode_coverage, ring_centres
from diffusion_lab.training import EMA, train
from diffusion_lab.viz import LossPlot, plot_points, points_frame, show_images, show_sounds
from diffusion_lab.widgets import FrameSlider
device = get_device()
g = seed_everything(0)
FAST = os.environ.get("DIFFUSION_LAB_FAST") == "1"
print(f"device: {device}, FAST mode: {FAST}")

# %% [markdown]
# ## 1. The recipe never looked at the pixels
#
# Go back over what we built. The forward process mixes a tensor with noise,
# $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$, number by number. The loss
# compares two tensors of the same shape. A sampler repeatedly asks the network for a noise
# estimate and takes a step. None of this knows that the numbers were pixels: `q_sample`,
# `train` and `sample` accept a tensor of any shape.
#
# Two things do depend on the data:
#
# | | images | sound | point clouds | video |
# |---|---|---|---|---|
# | one example | (1, 28, 28) | (1, 1024): a waveform | (64, 2): 64 points | (8, 28, 28): 8 frames |
# | the network | 2-D U-Net | **1-D** U-Net | a network that treats the points as a set | the 2-D U-Net, frames as channels |
# | "is it good?" | a digit classifier | is it a note or a hiss? | does it lie on a shape? | does it move like a solid thing? |
#
# The network must suit the structure of the data (neighbouring samples in time, a set without
# order, frames that follow each other), and every kind of data needs its own measure of
# quality. This lesson goes through each column.

# %% [markdown]
# ## 2. Sound
#
# A sound is a waveform: air pressure sampled many times a second. Ours are synthetic, made in
# code so that nothing downloads: 1024 samples at 4000 samples per second, a quarter of a second,
# each a pure **tone**, a **chord** (two or three notes), or a **chirp** (a pitch that slides up or
# down). Every sound fades in and out over 8 ms, too short to see in the plots below.
#
# A waveform is hard to read by eye. A **spectrogram** is easier: cut the sound into short
# overlapping windows, take the Fourier transform of each, and draw how much of each frequency
# (upwards, 0 to 2000 Hz) there is at each moment (rightwards, a quarter of a second), in decibels:
# black is -60 dB or less, pale yellow 20 dB. A tone is one bright horizontal line, a chord is a
# few, a chirp is a slanted line.

# %%
waves, kinds = beyond.make_sounds(8000, generator=g)
print(f"{len(waves)} sounds, each {tuple(waves.shape[1:])}, values in [{waves.min():.2f}, {waves.max():.2f}]")
pick = [kinds.index(k) for k in ("tone", "chord", "chirp")]
show_sounds(waves[pick], titles=[kinds[i] for i in pick])
plt.show()

# %% [markdown]
# Listen to the three (a quarter of a second each, with short gaps; the sounds are resampled to
# 8000 samples per second, since some browsers refuse to play 4000):

# %%
display(Audio(beyond.playable(waves[pick]), rate=8000, normalize=False))

# %% [markdown]
# Noise added by the forward process spreads over every frequency: white noise has equal power
# everywhere, so its spectrogram fills the whole panel. Here is the tone at four noise levels
# (cosine schedule, as the course's models use). Even $t = 0$ holds one step of noise (standard
# deviation 0.006, about -44 dB), which is why its background is no longer black.

# %%
schedule = NoiseSchedule.cosine()
levels = [0, 300, 600, 999]
noisy = torch.cat([q_sample(waves[pick[:1]], torch.tensor([t]), schedule, generator=g) for t in levels])
show_sounds(noisy.clamp(-1, 1), titles=[f"t = {t}" for t in levels])
plt.show()

# %% [markdown]
# So "is it a sound or a hiss?" can be put into a number. Take the **power spectrum** of a sound,
# $p_1, \dots, p_K$ (the squared size of each frequency), and divide its geometric mean by its
# arithmetic mean:
#
# $$\text{flatness} = \frac{\bigl(\prod_k p_k\bigr)^{1/K}}{\frac1K \sum_k p_k}
#   = \frac{\exp\bigl(\frac1K\sum_k \log p_k\bigr)}{\frac1K\sum_k p_k}.$$
#
# The geometric mean is never larger than the arithmetic one, and equals it only when every
# $p_k$ is the same. A few strong frequencies and silence elsewhere drive the geometric mean, and
# the flatness, towards 0; white noise scores about 0.56.
#
# **Exercise 1 (checked).** Write `spectral_flatness(power)` for power spectra `power` of shape
# (B, K), one flatness per row. `hint("spectral_flatness")`, `solution("spectral_flatness")`.

# %%
def spectral_flatness_mine(power):
    # your code here
    raise NotImplementedError

check_spectral_flatness(spectral_flatness_mine)

# %% [markdown]
# The package's `beyond.spectral_flatness` does the same on a waveform (it computes the power
# spectrum first). On the data, on noise, and on the tone at the four levels above:

# %%
flat = lambda x: beyond.spectral_flatness(x.flatten(1)).median().item()
print(f"median flatness: sounds {flat(waves[:500]):.4f}, white noise {flat(torch.randn(500, 1, 1024, generator=g)):.3f}")
print("the noised tone:", ", ".join(f"t={t}: {flat(x[None]):.3f}" for t, x in zip(levels, noisy)))

# %% [markdown]
# ### A 1-D U-Net
#
# An image U-Net slides small 2-D filters over the picture, halves the resolution on the way
# down and doubles it on the way up. For sound the same design works with 1-D filters sliding
# along time: `UNet1d`, with the same contract `model(xt, t)`. Its levels run at 1024, 512 and 256
# samples: the top level handles the fine wiggles of each note, the lower ones coarser structure
# over longer stretches of time.
#
# Nothing else changes: the same `train`, the same schedule, the same "$v$" objective that the
# course's image models use (lesson 5). We train for 400 steps, about a minute.

# %%
torch.manual_seed(0)
sound_model = UNet1d(channels=(16, 32, 64)).to(device)
print(f"UNet1d: {sum(p.numel() for p in sound_model.parameters()):,} parameters")
sound_ema = EMA(sound_model, decay=0.99)
plot = LossPlot(every=5 if FAST else 25, smooth=10, title="sound model loss")
for record in train(sound_model, waves, schedule, num_steps=10 if FAST else 400, batch_size=32,
                    prediction="v", ema=sound_ema, generator=g, progress=False):
    plot.update(record)
plot.show()
print(f"{record.step} steps in {record.seconds:.0f} s, last loss {record.loss:.3f}")

# %%
x_T = torch.randn(8, 1, 1024, generator=g).to(device)
ours = sample(sound_ema.model.eval(), schedule, x_T, prediction="v", num_steps=50, progress=False).cpu()
print(f"median flatness of 8 samples: {flat(ours):.4f}")
show_sounds(ours[:4])
plt.show()
display(Audio(beyond.playable(ours), rate=8000, normalize=False))

# %% [markdown]
# After 400 steps (56 s here) the samples are already sounds rather than hiss: their median flatness
# is 0.0057, against 0.56 for noise. But listen, and look at the spectrograms: each has a main band
# of frequencies, wider and blurrier than the single line of a real note, over a floor of noise.
#
# The package bundles the same network trained for longer, with a slower EMA (decay 0.999 instead
# of 0.99; `load_pretrained("sounds")`, how long and on what is printed below). Sixteen of its
# sounds, against the data and plain noise:

# %%
sounds = load_pretrained("sounds")
print(sounds.info)
x_T = torch.randn(16, 1, 1024, generator=g).to(device)
generated = sample(sounds.model.to(device), sounds.schedule, x_T, prediction=sounds.prediction,
                   num_steps=50, progress=False).cpu()
show_sounds(generated[:4])
plt.show()
display(Audio(beyond.playable(generated), rate=8000, normalize=False))

# %%
real = waves[torch.randperm(len(waves), generator=g)[:16]]
for name, x in {"bundled model": generated, "training sounds": real,
                "white noise": torch.randn(16, 1, 1024, generator=g)}.items():
    share = beyond.peak_energy_fraction(x.flatten(1)).median()
    print(f"{name:15} median flatness {flat(x):.4f}, energy in the 16 strongest of 512 frequencies {share:.0%}")

# %% [markdown]
# The bundled model's sounds come closer to pure notes: median flatness 0.0010, and 80% of their
# energy in the 16 strongest frequencies (training sounds: 0.0000 and 100%; noise: 0.56 and 13%).
# Their spectrograms show narrower bands than the quick model's, close to a single line in some,
# and a floor of noise at every frequency remains, heard as a soft hiss behind the note. (`benchmarks/beyond.py` measures 64 of them:
# 0.0026 and 77%.)
#
# Real audio models work the same way with more of everything: WaveGrad and DiffWave (both
# published in 2021)
# generate speech waveforms at 22-24 kHz, conditioned on a spectrogram of the words; newer
# systems usually run diffusion on a spectrogram or on the latent code of an audio autoencoder
# (lesson 11's idea), rather than on raw samples.

# %% [markdown]
# ## 3. Point clouds
#
# A molecule is a set of atoms with positions in space. The set has no order: listing the same
# atoms in another order describes the same molecule. Our stand-in: clouds of 64 points on the
# outline of a circle, a square or a triangle, of random size, with a little jitter, each standing
# on a corner (so the squares look like diamonds). An example is
# a tensor (64, 2), but unlike an image, shuffling its rows changes nothing.

# %%
clouds, shape_ids = beyond.point_cloud_shapes(5000, rotate=False, generator=g)
fig, axes = plt.subplots(1, 6, figsize=(9, 1.6))
for ax, cloud, k in zip(axes, clouds, shape_ids):
    plot_points(cloud, ax=ax, s=2)
    ax.set(xlim=(-1, 1), ylim=(-1, 1), xticks=[], yticks=[], title=beyond.SHAPES[k])
plt.show()

# %% [markdown]
# To compare two clouds we need a distance that ignores the order of the points. The
# **Chamfer distance** pairs every point with its nearest neighbour in the other cloud:
#
# $$d(A, B) = \frac12\Bigl(\frac1{|A|}\sum_{a\in A}\min_{b\in B}\lVert a-b\rVert
#   + \frac1{|B|}\sum_{b\in B}\min_{a\in A}\lVert a-b\rVert\Bigr).$$
#
# Both directions matter: with only the first term, $B$ could add stray points far from every
# point of $A$ without paying for them; with only the second, $B$ could cover part of $A$ and
# leave the rest bare.
#
# **Exercise 2 (checked).** Write `chamfer_distance(a, b)` for two clouds (N, D) and (M, D),
# returning one number. (The package's `beyond.chamfer_distance` does the same for batches of
# clouds, (B, N, D).) `hint("chamfer_distance")`, `solution("chamfer_distance")`.

# %%
def chamfer_distance_mine(a, b):
    # your code here
    raise NotImplementedError

check_chamfer_distance(chamfer_distance_mine)

# %% [markdown]
# ### A network that treats every order alike
#
# If we fed the 64 points to an MLP as one list of 128 numbers, it would treat point 1 and point
# 2 differently, and would have to learn all $64!$ orderings of every shape. Instead,
# `PointDenoiser` handles every point with the **same** small network, and lets the points talk
# through one shared summary: the mean of their features, added back to every point (the
# "DeepSets" design, Zaheer et al. 2017). A mean does not care about order, so shuffling the
# input points shuffles the predicted noise in exactly the same way: the network is
# **permutation equivariant**. We check that on an untrained network (random weights, so nothing
# was learned that could hide a mistake):

# %%
torch.manual_seed(0)
point_model = PointDenoiser(num_points=64).to(device)
torch.nn.init.normal_(point_model.point_out.weight, std=0.1)  # the output starts at 0; wake it up
order = torch.randperm(64, generator=g)
xt = torch.randn(4, 64, 2, generator=g).to(device)
with torch.no_grad():
    gap = (point_model(xt[:, order], 500) - point_model(xt, 500)[:, order]).abs().max().item()
print(f"{point_model.num_parameters():,} parameters; shuffle in, shuffle out: largest difference {gap:.1e}")
print("(float32 rounding: the sums are added in another order; in exact arithmetic it is 0)")

# %% [markdown]
# Now train it, with a fresh start, on the clouds: 1500 steps.

# %%
torch.manual_seed(0)
point_model = PointDenoiser(num_points=64).to(device)
point_ema = EMA(point_model, decay=0.995)
plot = LossPlot(every=10 if FAST else 50, smooth=20, title="point cloud model loss")
for record in train(point_model, clouds, schedule, num_steps=30 if FAST else 1500, batch_size=64,
                    prediction="v", ema=point_ema, generator=g, progress=False):
    plot.update(record)
plot.show()
print(f"{record.step} steps in {record.seconds:.0f} s, last loss {record.loss:.3f}")

# %%
x_T = torch.randn(200, 64, 2, generator=g).to(device)
new_clouds = sample(point_ema.model.eval(), schedule, x_T, prediction="v", num_steps=50, progress=False).cpu()
fig, axes = plt.subplots(2, 8, figsize=(11, 3))
for ax, cloud in zip(axes.flat, new_clouds):
    plot_points(cloud, ax=ax, s=2)
    ax.set(xlim=(-1, 1), ylim=(-1, 1), xticks=[], yticks=[])
plt.show()

# %% [markdown]
# How close is each cloud to a real shape? `beyond.shape_fit` centres and scales a cloud, tries
# the circle, square and triangle outlines at many angles and positions, and returns the smallest
# Chamfer distance and which shape gave it. Training clouds are not at 0 (their 64 points leave
# random gaps along the outline), so we measure them too, and plain Gaussian blobs as the bad
# reference (the fit has to call each blob something; it mostly picks the triangle).

# %%
for name, x in {"samples": new_clouds, "training clouds": clouds[:200],
                "Gaussian blobs": 0.4 * torch.randn(200, 64, 2, generator=g)}.items():
    fit = beyond.shape_fit(x)
    counts = torch.bincount(fit["label"], minlength=3).tolist()
    print(f"{name:15} median distance {fit['distance'].median():.3f}, within 0.1: "
          f"{(fit['distance'] < 0.1).float().mean():.0%}, read as circle/square/triangle {counts}")

# %% [markdown]
# After 1500 steps (66 s here), 99% of the sampled clouds lie within 0.1 of a shape, with a median
# of 0.063 against the training clouds' 0.051, and the three shapes come out in similar numbers
# (66, 70 and 64 of 200, as the fit reads them). What gives them away: a few stray points, and
# some outlines with rounded corners or bent sides.
#
# Real molecule generators add what our toy leaves out: atoms of several kinds (a label per point,
# diffused alongside the positions), and networks that are equivariant to rotations as well as to
# the order: turn the molecule, and the predicted noise turns with it (equivariant graph networks,
# as in EDM for molecules, Hoogeboom et al. 2022, which reads the bonds off the distances
# afterwards). Our clouds are upright; `point_cloud_shapes(rotate=True)` turns each by a random
# angle. Measured by `benchmarks/beyond.py` after the same 1500 steps: 54% of the sampled clouds
# lie within 0.1 of a shape, against 98% for upright clouds, and triangles nearly vanish (7 of
# 200). Try it.

# %% [markdown]
# ## 4. Video
#
# A clip is a stack of frames. Ours: 8 frames of 28x28, in which a small digit glides across the
# canvas at a constant speed and bounces off the walls (a tiny "Moving MNIST", Srivastava et al.
# 2015). The simplest video diffusion model treats the whole clip as **one** example: stack the 8
# frames as 8 channels of one image and use the image U-Net with `in_channels=8`. Each
# convolution then sees all the frames at once, so the frames are denoised together and can agree
# on one digit and one path.
#
# Training this takes longer than a lesson should, so the package bundles one, trained with
# `train` on such clips (how long and on what is printed below).

# %%
video = load_pretrained("clips")
print(video.info)
num_frames = video.model.input_shape[0]  # frames are the channels
clips = beyond.moving_digit_clips(16, frames=num_frames, generator=g)  # (16, frames, 1, 28, 28)
print(f"clips {tuple(clips.shape)} -> as channels {tuple(beyond.clips_to_channels(clips).shape)}")
show_images(clips[:4].flatten(0, 1), nrow=num_frames)
plt.show()

# %% [markdown]
# Sixteen new clips, sampled with 50 DDIM steps; the first four as strips (one clip per row), then
# all sixteen as an animation (press play, or drag the slider).

# %%
x_T = torch.randn(16, *video.model.input_shape, generator=g).to(device)
made = sample(video.model.to(device), video.schedule, x_T, prediction=video.prediction, num_steps=50, progress=False)
made = beyond.channels_to_clips(made.cpu())  # (16, frames, 1, 28, 28)
show_images(made[:4].flatten(0, 1), nrow=num_frames)
plt.show()

# %%
frames = [made[:, f] for f in range(num_frames)]  # frame f of every clip: (16, 1, 28, 28)
labels = [f"frame {f + 1} of {num_frames}" for f in range(num_frames)]
FrameSlider(frames, labels, nrow=8, scale=3, description="frame", interval=300)

# %% [markdown]
# Do the frames belong together? `beyond.motion_consistency` tries every small shift of each
# frame and keeps the best correlation with the next frame: 1 when the next frame is the previous
# one moved rigidly. The best shift itself says how far things moved: we print its mean length. It
# also checks that each clip keeps the same amount of ink in every frame. Two
# references: real clips, and "clips" whose every frame comes from a different real clip, in which
# each frame looks right but nothing follows.

# %%
real_clips = beyond.moving_digit_clips(200, frames=num_frames, generator=g)
pick = torch.randperm(200, generator=g)[:16 * num_frames].reshape(16, num_frames)
mixed = real_clips[pick, torch.arange(num_frames)]  # frame f of clip i from real clip pick[i, f]
for name, x in {"samples": made, "real clips": real_clips[:16], "mixed-up frames": mixed}.items():
    m = beyond.motion_consistency(x)
    moved = m["shifts"].float().norm(dim=-1).mean()  # pixels per frame
    print(f"{name:16} correlation {m['correlation']:.3f}, moved {moved:.1f} px per frame, ink kept in {m['mass_constant']:.0%} of clips")

# %% [markdown]
# By this measure the sampled clips move: the best shift between consecutive frames is 2.4 pixels
# on average, close to the real clips' 2.2 (mixed-up frames jump 4.5), and after that shift their
# frames correlate at 0.625, well above the 0.386 of mixed-up frames. So the 8 frames were made
# together and share a place and a path. But real clips score 1.000, no sampled clip keeps its
# ink constant, and the digits are speckled blobs rather than legible digits. This small network
# (16 channels at full resolution for all 8 frames together, trained for 33 CPU minutes) has
# learned the motion better than the digits.
#
# Real video models keep the idea and make it scale. "Video Diffusion Models" (Ho et al. 2022)
# use a U-Net over space **and** time, with attention between frames instead of frames stacked
# as channels; later systems (Blattmann et al. 2023, then transformer models such as Sora) run the
# diffusion in the latent space of a video autoencoder, lesson 11's idea again.

# %% [markdown]
# ## 5. One process, three views
#
# Back to 2-D points, where we can draw everything: the ring of 8 Gaussians from lesson 12. We will
# look at one diffusion process in three ways.
#
# **1. Noise prediction** (this course): the network $\hat\epsilon(x_t, t)$ guesses the noise in
# $x_t$.
#
# **2. The score.** The score of a distribution is the gradient of its log-density,
# $\nabla_x \log q_t(x)$: at every point, the direction in which the data gets more likely, the
# way uphill. You met it in lesson 8, where guidance was derived from it. Tweedie's formula links
# it to the best noise guess:
#
# $$\nabla_x \log q_t(x_t) = -\frac{\mathbb E[\epsilon \mid x_t]}{\sqrt{1-\bar\alpha_t}} .$$
#
# So a noise predictor **is** a score model, up to a sign and a scale: the noise points away from
# the data, the score towards it. Score-based models (Song and Ermon 2019) and DDPM (Ho et al. 2020)
# were later shown to be one family (Song, Sohl-Dickstein et al. 2021).
#
# **Exercise 3 (checked).** Write `eps_to_score(eps_hat, alpha_bar_t)`; `alpha_bar_t` arrives as
# a Python number, so take square roots with `** 0.5`. `hint("eps_to_score")`,
# `solution("eps_to_score")`.

# %%
def eps_to_score_mine(eps_hat, alpha_bar_t):
    # your code here
    raise NotImplementedError

check_eps_to_score(eps_to_score_mine)

# %% [markdown]
# **3. Flow matching** (Lipman et al. 2023; Liu et al. 2023, "rectified flow") starts from a simpler
# path. Join each data point $x_0$ to a noise sample $\epsilon$ by a straight line, with time
# $s$ from 0 (data) to 1 (noise; Lipman et al. run time the other way, from noise at 0 to data at
# 1, and the formulas flip accordingly):
#
# $$x_s = (1-s)\,x_0 + s\,\epsilon, \qquad \frac{d x_s}{ds} = \epsilon - x_0 .$$
#
# A network $\hat v(x_s, s)$ learns the velocity $\epsilon - x_0$ with a squared error, just as
# ours learns $\epsilon$. To sample, start from noise at $s = 1$ and follow the learned velocity
# backwards to $s = 0$ with small Euler steps, $x_{s-\Delta} = x_s - \Delta\,\hat v(x_s, s)$.
# (So that the course's networks can be reused unchanged, the package gives them $s$ as an integer
# time, $t = \mathrm{round}(999\,s)$.)
#
# **Exercise 4 (checked).** Write `flow_path(x0, eps, s)` returning `(x_s, velocity)`; `s` has
# shape (B, 1). `hint("flow_path")`, `solution("flow_path")`.

# %%
def flow_path_mine(x0, eps, s):
    # your code here
    raise NotImplementedError

check_flow_path(flow_path_mine)

# %% [markdown]
# Is that a different process? Not really. Divide the DDPM point by
# $\sqrt{\bar\alpha_t}+\sqrt{1-\bar\alpha_t}$ and it lands exactly on the straight path, at
# $s = \sqrt{1-\bar\alpha_t}\,/\,(\sqrt{\bar\alpha_t}+\sqrt{1-\bar\alpha_t})$, with the **same**
# $x_0$ and $\epsilon$. So one trained network serves all three views: the velocity at that point
# is $\hat\epsilon - \hat x_0$, with $\hat x_0$ from lesson 2's formula. The package has the
# conversions (`beyond.eps_to_score`, `ddpm_to_flow`, `eps_to_velocity`, `velocity_to_eps`). A
# numerical check: one DDIM step (lesson 7) and one Euler step on the straight path, from the same
# point with the same noise estimate, land on the same point. The noise estimate here is random:
# the claim is an identity of algebra, true for any $\hat\epsilon$, so no trained model is needed.

# %%
a_t, a_prev = schedule.alpha_bar[700].double(), schedule.alpha_bar[400].double()
xt, eps_hat = torch.randn(1000, 2, generator=g).double(), torch.randn(1000, 2, generator=g).double()
x_ddim, _ = ddim_step(xt, eps_hat, a_t, a_prev, clip_x0=False)
xs, s = beyond.ddpm_to_flow(xt, a_t)
xs_next, _ = beyond.euler_step(xs, beyond.eps_to_velocity(xt, eps_hat, a_t), s.item(), beyond.flow_time(a_prev).item())
print(f"s: {s.item():.3f} -> {beyond.flow_time(a_prev).item():.3f}; largest difference "
      f"{(beyond.ddpm_to_flow(x_ddim, a_prev)[0] - xs_next).abs().max().item():.1e}")

# %% [markdown]
# DDIM **is** Euler's method on the straight path: divide every $x_t$ by
# $\sqrt{\bar\alpha_t}+\sqrt{1-\bar\alpha_t}$ and each DDIM step becomes exactly
# $x_{s'} = x_s + (s' - s)\,\hat v$. What differs between
# the methods in practice is what the network is asked to predict, and on which grid of times it
# is sampled.
#
# ### Trained side by side
#
# Two MLPs of the same size (lesson 12's), on the ring: one learns the noise with `train`, one
# the velocity with `beyond.train_flow`, the same number of steps.

# %%
ring = gaussian_ring(4000, radius=0.75, std=0.05, generator=g)
steps = 100 if FAST else 3000
torch.manual_seed(0)
eps_model = MLPDenoiser().to(device)  # the same start and the same batches for both
*_, eps_run = train(eps_model, ring, schedule, num_steps=steps, batch_size=256, warmup_steps=50,
                    progress=False, generator=torch.Generator().manual_seed(1))
torch.manual_seed(0)
flow_model = MLPDenoiser().to(device)
*_, flow_run = beyond.train_flow(flow_model, ring, num_steps=steps, batch_size=256, warmup_steps=50,
                                 generator=torch.Generator().manual_seed(1))
print(f"{steps} steps each: noise model {eps_run.seconds:.1f} s, flow model {flow_run.seconds:.1f} s")

# %% [markdown]
# For this data the true answer is known. The ring is a mixture of 8 Gaussians; noised, each
# stays Gaussian, so the exact score of $q_t$ has a closed form (`beyond.gaussian_mixture_score`).
# The figure shows, at three noise levels, the exact score, the score read off the noise model,
# and the flow model's velocity (reversed, so that it too points towards the data; read at the
# flow point $x_s$ of each grid point), each over a noised sample of the ring. The arrows show
# directions only (all drawn the same length). At low noise all three point into the nearest
# cluster; at high noise (t = 500), where the noised ring is one broad cloud, towards its middle.

# %%
centres = ring_centres(8, radius=0.75).to(device)
eps_model.eval()
flow_model.eval()

def views(t):
    """At DDPM step t: alpha_bar, the flow time s, and three fields of points x_t (N, 2): the exact
    score, the learned score, and the flow model's velocity at the matching flow point x_s."""
    a = schedule.alpha_bar[t].item()
    s = beyond.flow_time(a).item()
    exact = lambda x: beyond.gaussian_mixture_score(x, centres, 0.05, a)
    learned = lambda x: beyond.eps_to_score(eps_model(x, t), a)
    velocity = lambda x: flow_model(beyond.ddpm_to_flow(x, a)[0], round(s * 999))  # x_t -> x_s
    return a, s, exact, learned, velocity

# %%
fig, axes = plt.subplots(3, 3, figsize=(7.5, 7.5))
for row, t in enumerate([50, 200, 500]):
    a, s, exact, learned, velocity = views(t)
    noised = a**0.5 * ring[:300] + (1 - a) ** 0.5 * torch.randn(300, 2, generator=g)
    fns = [exact, learned, lambda x: -velocity(x)]
    for ax, fn, name in zip(axes[row], fns, ["exact score", "score from the noise model", "-velocity (flow model)"]):
        where, vectors = beyond.vector_field_grid(fn, lim=1.2, n=15, device=device)
        plot_points(noised, ax=ax, s=2, color="C1", alpha=0.3)
        ax.quiver(*where.cpu().T, *(vectors / vectors.norm(dim=1, keepdim=True)).cpu().T, angles="xy", width=0.006)
        ax.set(xlim=(-1.3, 1.3), ylim=(-1.3, 1.3), xticks=[], yticks=[], title=f"{name}\nt = {t} (s = {s:.2f})")
fig.tight_layout()
plt.show()

# %% [markdown]
# How close are the learned fields to the truth? At points drawn from $q_t$ (where the model was
# trained), the median relative error of the learned score, and of both models' velocities: the
# flow model's own, and the one converted from the noise model with `eps_to_velocity`. The exact
# velocity comes from the exact score through the same conversions.

# %%
err = lambda u, v: ((u - v).norm(dim=1) / v.norm(dim=1)).median().item()  # median relative error
for t in [50, 200, 500]:
    a, s, exact, learned, velocity = views(t)
    xt = (a**0.5 * ring[:2000] + (1 - a) ** 0.5 * torch.randn(2000, 2, generator=g)).to(device)
    with torch.no_grad():
        v_true = beyond.eps_to_velocity(xt, beyond.score_to_eps(exact(xt), a), a)
        v_eps = beyond.eps_to_velocity(xt, eps_model(xt, t), a)
        v_flow = velocity(xt)
        print(f"t = {t} (s = {s:.2f}): score {err(learned(xt), exact(xt)):.1%}; velocity: "
              f"flow model {err(v_flow, v_true):.1%}, from the noise model {err(v_eps, v_true):.1%}")

# %% [markdown]
# Far from the data (t = 500, s = 0.50) both models are close to the truth: the score within 2.3%,
# the velocities within 5-7%. Near the data (t = 50) the errors grow to 24-30%: there the exact field
# changes sharply between and around the 8 clusters, and a small MLP smooths it. The velocity read
# off the noise model and the flow model's own agree about as well as they should if both
# learned the same process: they are close, with the flow model slightly ahead at every level.
#
# ### Sampling: DDIM on the noise model, Euler on the flow model
#
# The same 2000 starting noises, a range of step counts. Quality: the energy distance to a fresh
# draw of the ring, the modes covered, and quality, the share of samples within 0.15 of a centre
# (all three from lesson 12). DDIM runs twice: as the exact Euler step
# just checked (`clip_x0=False`), and as the course's samplers run by default, with the estimate
# $\hat x_0$ clipped to the data's range $[-1, 1]$ at every step.

# %%
fresh = gaussian_ring(4000, radius=0.75, std=0.05, generator=g)
print(f"reference, 2000 points of the ring itself: energy distance "
      f"{energy_distance(gaussian_ring(2000, radius=0.75, std=0.05, generator=g), fresh):.4f}")
noise = torch.randn(2000, 2, generator=g).to(device)
run = {"DDIM, noise model": lambda n: sample(eps_model, schedule, noise, num_steps=n, clip_x0=False, progress=False),
       "DDIM, clipped x0": lambda n: sample(eps_model, schedule, noise, num_steps=n, progress=False),
       "Euler, flow model": lambda n: last(beyond.euler_sample(flow_model, noise, num_steps=n))}
for n in [2, 5, 10, 20, 50]:
    for name, fn in run.items():
        x = fn(n).cpu()
        c = mode_coverage(x, centres.cpu(), radius=0.15)
        print(f"{n:2d} steps, {name}: energy distance {energy_distance(x, fresh):8.4f}, modes {c['covered']}/8, quality {c['quality']:.2f}")

# %% [markdown]
# Without clipping, DDIM on the noise model fails at every step count, and the reason is its
# first step. At $t = 999$ the cosine schedule leaves $\bar\alpha_t \approx 2\times10^{-9}$, and
# the estimate $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$ multiplies
# every error in $\hat\epsilon$ by $1/\sqrt{\bar\alpha_t} \approx 20{,}000$: at pure noise, the
# noise is easy to guess but the data behind it is not, and predicting $\epsilon$ hides exactly
# that. Clipping $\hat x_0$ to the data's range repairs it, which works only because we know the
# range. The flow model predicts $\epsilon - x_0$ directly and needs no repair; the same worry is
# why the course's image models predict $v$ (lesson 5), and one reason why newer image models, such
# as Stable Diffusion 3 (Esser et al. 2024), are trained with flow matching.
#
# With clipping, DDIM on the noise model comes close: at 50 steps an energy distance of 0.0021
# against 0.0011 for Euler on the flow model, at 5 steps 0.048 against 0.013, all 8 modes covered
# by both. The flow model stays ahead from 5 steps on, here and in `benchmarks/beyond.py` over 5
# seeds; 2 steps are too few for either.
#
# The flow model's samples on their way from noise to the ring, 20 Euler steps, with the
# velocity field of each moment drawn underneath (arrows reversed, pointing where the points go):

# %%
trajectory = [noise.cpu()] + [step.xt.cpu() for step in beyond.euler_sample(flow_model, noise, num_steps=20)]
grid_s = torch.linspace(1, 0, 21).tolist()
arrows = [beyond.vector_field_grid(lambda x: -flow_model(x, round(s * 999)), lim=1.2, n=13, device=device)
          for s in grid_s]
pictures = [points_frame([x[:800]], arrows=[a], lim=1.3, size=3.2) for x, a in zip(trajectory, arrows)]
FrameSlider(pictures, [f"s = {s:.2f}" for s in grid_s], scale=1, description="step", interval=250)

# %% [markdown]
# ## Summary
#
# - The forward process, the loss and the samplers work on tensors of any shape. What changes
#   with the data is the network (1-D convolutions for sound, a set network for point clouds,
#   frames stacked as channels for video) and the measure of quality (spectral flatness, a shape
#   fit, frame-to-frame consistency).
# - Frames generated together move together: the clip model's frames follow one another far more
#   closely than frames of different clips (0.625 against 0.386), though this small model draws its
#   digits as speckled blobs.
# - Noise prediction, the score and flow matching are three views of one process: the score is
#   $-\hat\epsilon/\sqrt{1-\bar\alpha_t}$, the straight flow path is the DDPM path rescaled, and a
#   DDIM step is an Euler step on it. In practice they differ in what the network is asked to
#   predict and on which time grid it is sampled.
#
# ## Going further
#
# 1. Train the sound model for 2000 steps instead of 400 (five times as long as the run above),
#    with `EMA(sound_model, decay=0.999)` as the bundled model had, and compare its flatness with
#    the bundled model's.
# 2. Make the point clouds harder with `rotate=True`. How much worse is the shape fit after the same
#    training? Would a network that sees only distances between points do better?
# 3. Sample the clip model, then hold its first frame fixed while sampling the rest, as lesson 10
#    did with the known pixels of an image: prediction of the future, from one frame.
# 4. Train the flow model with more steps, then sample it with only 2 or 3 Euler steps. Rectified
#    flow (Liu et al. 2023) retrains on its own (noise, sample) pairs to straighten the paths
#    further: try one round.
