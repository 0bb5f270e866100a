# %% [markdown]
# # Lesson 9 · Text to image: type a sentence, get that picture
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{{REPO}}/blob/main/notebooks/{{NAME}}.ipynb)
#
# **What you will learn**
#
# - a text-to-image data set small enough for a CPU, whose every caption can be checked from the
#   pixels, with some combinations kept out of training
# - how a prompt becomes numbers: words to ids, ids to vectors, a small transformer
# - CLIP: training a text encoder and an image encoder to agree, and measuring it
# - cross-attention: how each pixel of the U-Net reads the prompt, as in Stable Diffusion
# - a text-conditioned U-Net with classifier-free guidance, and prompt adherence measured on
#   combinations it saw and ones it never saw
#
# **What you need first**: lesson 8 (conditioning, the null condition, classifier-free guidance)
# and lesson 4 (attention in the U-Net).
#
# **Time to run** (Restart & Run All, full mode): about 5 minutes on a 2-core laptop
# CPU (measured: 279 s), of which about 4 minutes are training; GPU: not measured yet (no
# GPU was available when this lesson was written).

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
from diffusion_lab import get_device, seed_everything
from diffusion_lab.captions import HELD_OUT, VOCABULARY, adherence, all_combinations, caption, make_captioned_digits
from diffusion_lab.metrics import mean_pairwise_distance
from diffusion_lab.exercises import check_contrastive_loss, check_cross_attention, check_tokenize, hint, solution
from diffusion_lab.models import TextConditionedUNet, UNet
from diffusion_lab.models.text import CLIP, ImageEncoder, TextEncoder, Tokenizer, caption_accuracy, train_clip
from diffusion_lab.pretrained import load_pretrained
from diffusion_lab.samplers import sample
from diffusion_lab.schedules import NoiseSchedule
from diffusion_lab.training import EMA, train
from diffusion_lab.viz import LossPlot, show_images
from diffusion_lab.widgets import PromptExplorer
device = get_device()
g = seed_everything(0)
FAST = os.environ.get("DIFFUSION_LAB_FAST") == "1"
print(f"device: {device}, FAST mode: {FAST}")

# %% [markdown]
# ## 1. A captioned data set you can check
#
# Stable Diffusion learned from billions of captioned photos. We need something a laptop can train
# on in minutes, yet with captions that **say something**, so that obeying them is a real test.
# Each image below is a real handwritten digit, shrunk to one of two sizes, painted in one of four
# colours and put in one of four corners of a 32×32 canvas; its caption says exactly that. That
# makes 10 × 4 × 2 × 4 = 320 different prompts.
#
# Because the captions come from the drawing, we can also go backwards: read the digit (with the
# course classifier), the colour (the hue of the ink), the size (the extent of the ink) and the
# place (the centre of the ink) from pixels alone. That gives an exact measure of **prompt
# adherence**, which real text-to-image models can only estimate.

# %%
data = make_captioned_digits(2_000 if FAST else 20_000, split="seen", seed=0)
fig, axes = plt.subplots(2, 6, figsize=(12, 4.6))
for ax, image, text in zip(axes.flat, data.images, data.captions):
    show_images(image, ax=ax)
    ax.set_title(text.replace(" in the ", "\nin the "), fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# Four digit-colour pairs never appear in training, in any size or place: a green 3, a red 7, a
# blue 5 and a yellow 0. The model sees green digits and sees 3s, but never a green 3. Asking for
# one later tests whether it **composes** words it knows into a picture it has never seen.

# %%
print("held out of training:", ", ".join(f"{colour} {digit}" for digit, colour in HELD_OUT))
print(f"{len(all_combinations('seen'))} seen prompts, {len(all_combinations('held_out'))} held out")
real = make_captioned_digits(500, split="seen", source="eval", seed=1)
print("real images, read back from pixels:",
      {k: round(v, 3) for k, v in adherence(real.images, real.digits, real.colours, real.sizes, real.places).items()})

# %% [markdown]
# Colour, size and place are read back perfectly; the digit about 98% of the time, the course
# classifier's own accuracy on these small, shifted digits. So about 98% "whole prompt right" is
# the reference for real images. It is not a hard ceiling: a model that draws very typical digits
# (the kind the classifier was trained on) can score a little higher.

# %% [markdown]
# ## 2. How a prompt becomes numbers
#
# A network takes numbers, not words. Step one, **tokenizing**: split the prompt into words and
# replace each by its number in a fixed vocabulary. Real models split into sub-word pieces (CLIP
# has 49,408 of them) so that any text can be written; our captions use only 23 words, so whole
# words will do. Two special tokens join them: `<pad>` (id 0) fills every prompt to the same
# length, and `<bos>` (id 1) starts every prompt; the encoder will gather a summary of the whole
# prompt at that position.
#
# **Exercise 1 (checked).** Write `tokenize(text, vocabulary, max_length)`: lowercase, split into
# words with `.split()`, put `<bos>` first, give word $w$ the id `vocabulary.index(w) + 2`, then
# pad with 0 so the whole row, `<bos>` included, is `max_length` long. Return a LongTensor
# (`torch.tensor` of Python ints). The empty prompt `""` must give `[1, 0, 0, ...]`: it is the
# null prompt of guidance. `hint("tokenize")`, `solution("tokenize")`.

# %%
def tokenize_mine(text, vocabulary, max_length):
    # your code here
    raise NotImplementedError

check_tokenize(tokenize_mine)

# %% [markdown]
# The package's `Tokenizer` does the same, for a batch, and refuses words it does not know
# rather than guessing:

# %%
tokenizer = Tokenizer(VOCABULARY, max_length=12)
print(tokenizer.encode("a small red 7 in the top left"))
try:
    tokenizer.encode("a small purple 7 in the top left")
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# Ids are arbitrary labels, so step two gives each token a learned vector (an embedding table,
# like lesson 8's label vectors) and adds a learned vector for its position. Step three lets the
# words talk to each other: a small **transformer** (2 layers of self-attention here; 12 in CLIP's
# text encoder), so that "red" next to "7" can become a feature meaning "the 7 is red". The
# output is one 64-number vector per token. The `<pad>` positions are masked out of the
# encoder's attention, so padding changes none of the word features. (The U-Net will read all 12
# vectors, pads included, as Stable Diffusion reads all 77 of CLIP's.)

# %%
text_encoder = TextEncoder(tokenizer.vocab_size, max_length=12, dim=64, depth=2).to(device)
tokens = tokenizer.encode(data.captions[:4]).to(device)
print("tokens:", tuple(tokens.shape), "-> token features:", tuple(text_encoder(tokens).shape),
      "-> summary at <bos>:", tuple(text_encoder.pooled(tokens).shape))
print(f"{text_encoder.num_parameters():,} weights")

# %% [markdown]
# ## 3. CLIP: teaching the text encoder what words look like
#
# An untrained encoder's vectors tell words apart but know nothing of what they look like. CLIP
# (Radford et al. 2021) trains them with a simple game. Take a batch of $B$ images and their $B$ captions; encode the images with an image
# encoder (a small CNN here) and the captions with the text encoder; normalise both to unit length
# and compare every image with every caption by a dot product. That gives a $B \times B$ table of
# scores whose diagonal holds the true pairs. Train both encoders so that each image picks its own
# caption out of the $B$, and each caption picks its own image: a cross-entropy over each row and
# over each column,
#
# $$\mathcal L = \tfrac12\bigl(\mathrm{CE}_\text{rows}(S, \mathrm{diag}) + \mathrm{CE}_\text{columns}(S, \mathrm{diag})\bigr),\qquad S_{ij} = \tau\, \frac{f(\text{image}_i)\cdot g(\text{text}_j)}{\lVert f\rVert\,\lVert g\rVert},$$
#
# with a learned logit scale $\tau$ (one over a temperature; it starts at $1/0.07$). This is the
# **contrastive** loss: pull matching pairs together, push the others apart. The loss only
# touches the summary vector at `<bos>` directly; the per-word vectors that the U-Net will read
# are trained through it, since the transformer builds the summary from them. (CLIP itself
# reads its summary at an end-of-text token, and its attention only looks backwards.)
#
# **Exercise 2 (checked).** Write `contrastive_loss(logits)` for a square table of scores whose
# row $i$ is image $i$ against all texts. `hint("contrastive_loss")`, `solution("contrastive_loss")`.

# %%
def contrastive_loss_mine(logits):
    # your code here
    raise NotImplementedError

check_contrastive_loss(contrastive_loss_mine)

# %% [markdown]
# Our batches often hold the same caption more than once (128 captions drawn from 288 prompts).
# Those images cannot be told apart by their captions, so the loss cannot reach 0: its floor
# here is about 0.28 (the average of $\log(1 + k)$, $k$ the number of other images in the batch
# with the same caption). We train for a minute:

# %%
torch.manual_seed(0)
clip = CLIP(text_encoder, ImageEncoder(channels=(16, 32, 64))).to(device)
all_tokens = tokenizer.encode(data.captions)
clip_losses = [r.loss for r in train_clip(clip, data.images.to(device), all_tokens.to(device),
                                          num_steps=40 if FAST else 500, batch_size=128,
                                          generator=torch.Generator().manual_seed(0))]
print(f"CLIP loss: {clip_losses[0]:.2f} at the start, {clip_losses[-1]:.2f} after {len(clip_losses)} steps")

# %% [markdown]
# How good is it? For new images, we score every one of the 320 possible captions and check
# whether the best is the right one (chance: 1 in 320). We also draw the score table for 8 images
# and their 8 captions: a bright diagonal means each image prefers its own caption.

# %%
candidates = tokenizer.encode([caption(*c) for c in all_combinations("all")]).to(device)
held = make_captioned_digits(500, split="held_out", source="eval", seed=2)
for name, d in (("seen", real), ("held-out", held)):
    accuracy = caption_accuracy(clip, d.images.to(device), tokenizer.encode(d.captions).to(device), candidates)
    print(f"{name:8} combinations: the best of 320 captions is the right one for {accuracy:.0%}")
with torch.no_grad():
    scores = clip(real.images[:8].to(device), tokenizer.encode(real.captions[:8]).to(device)).cpu()
short = [c.replace("a ", "", 1).replace(" in the ", ", ") for c in real.captions[:8]]
plt.imshow(scores, cmap="viridis"); plt.colorbar(label="score")
plt.xticks(range(8), short, rotation=60, ha="right", fontsize=8); plt.yticks(range(8), short, fontsize=8)
plt.xlabel("caption"); plt.ylabel("image"); plt.title("CLIP scores: each image against each caption")
plt.show()

# %% [markdown]
# After 500 steps, about a minute, the best of 320 captions is the right one for 92% of new images
# of seen combinations (chance: 0.3%), and the diagonal of the score table stands out. Held-out
# combinations are harder (62%): the image encoder has never seen a green 3 and may match it to a
# caption it knows. Bright cells off the diagonal are pairs that share attributes. (These figures
# are from the run stored with this lesson.) For the U-Net, what matters is the text side: token
# features in which "green" and "3" each mean something visual.

# %% [markdown]
# ## 4. Cross-attention: each pixel reads the prompt
#
# Lesson 8 added one label vector to the time embedding: one number-vector for the whole image.
# A prompt says **where** things go and what they look like, so Stable Diffusion lets every
# position of the U-Net's feature map look at every word. This is **cross-attention**
# (Rombach et al. 2022). Each pixel's features make a query $q$; each token's features make a key
# $k$ and a value $v$ (all by learned linear maps). The pixel gives each token a weight, and takes
# the weighted average of the values:
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt d}\right) V,$$
#
# with one row per pixel and one column per token, the softmax along each row. The result is added
# to the pixel's features. A pixel in the top-left corner can learn to attend to "top" and
# "left", and a pixel on a stroke to "red".
#
# **Exercise 3 (checked).** Write `cross_attention(q, k, v)` for one head: `q` is (B, N, d) for
# N pixels, `k` and `v` are (B, L, d) for L tokens. `hint("cross_attention")`,
# `solution("cross_attention")`.

# %%
def cross_attention_mine(q, k, v):
    # your code here
    raise NotImplementedError

check_cross_attention(cross_attention_mine)

# %% [markdown]
# `UNet(context_dim=64)` puts a cross-attention block after every residual block below full
# resolution and in the middle, 6 in our three-level U-Net (Stable Diffusion puts them inside
# transformer blocks, with self-attention and a feed-forward layer, at several resolutions); its queries come from the feature map,
# its keys and values from the text encoder's 12 token vectors. Each block starts switched off
# (its output layer is zero), so at first the U-Net ignores the text and learns to read it as
# training goes. `TextConditionedUNet` puts the frozen text encoder in front, so the model follows
# the course contract with tokens as `cond`; its null condition is the empty prompt,
# `[<bos>, <pad>, ...]`, as in Stable Diffusion.

# %%
unet = UNet(3, image_size=32, channels=(16, 32, 64), attention=False, context_dim=64)
model = TextConditionedUNet(unet, clip.text_encoder).to(device)
print([name for name, m in model.unet.named_modules() if type(m).__name__ == "CrossAttention"])
print(f"{model.num_parameters(trainable_only=True):,} weights to train; the text encoder's "
      f"{model.text_encoder.num_parameters():,} stay frozen")

# %% [markdown]
# ## 5. Training it, on a CPU
#
# Lesson 8's recipe, with prompts for labels: $v$-prediction, cosine schedule, EMA, 10% of the
# prompts replaced by the empty prompt. We train for about 3 minutes.

# %%
schedule = NoiseSchedule.cosine().to(device)
ema = EMA(model, 0.995)
plot = LossPlot(every=5 if FAST else 25, smooth=10 if FAST else 50)
for record in train(model, data.images, schedule, cond=all_tokens, p_uncond=0.1, ema=ema,
                    num_steps=20 if FAST else 2500, batch_size=64, lr=2e-3, prediction="v",
                    max_minutes=0.3 if FAST else 3, generator=torch.Generator().manual_seed(0)):
    plot.update(record)
print(f"step {record.step} after {record.seconds:.0f} s, loss {record.loss:.4f}")

# %% [markdown]
# Four prompts, eight samples each, guidance $w = 3$:

# %%
prompts = ["a large red 2 in the top left", "a small blue 8 in the bottom right",
           "a large yellow 4 in the bottom left", "a small green 1 in the top right"]
x_T = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(3)).to(device)
fig, axes = plt.subplots(len(prompts), 1, figsize=(8, 1.45 * len(prompts)))
for ax, prompt in zip(axes, prompts):
    images = sample(ema.model, schedule, x_T, sampler="dpm_solver_sde", num_steps=20, prediction="v",
                    cond=tokenizer.encode([prompt] * 8).to(device), guidance_scale=3.0,
                    generator=torch.Generator(device).manual_seed(4), progress=False)
    show_images(images, nrow=8, ax=ax, title=prompt)
fig.tight_layout()
plt.show()

# %% [markdown]
# Three minutes are enough for the easy words: the samples have the colour, size and place asked
# for. The digits are not there yet: most are blobs with at most a hint of the shape asked for.
# Shape takes longest to learn, as in lesson 5; the bundled model, trained for 17 times as many
# steps, draws them.

# %% [markdown]
# ## 6. The bundled model, and adherence measured
#
# `load_pretrained("text_digits")` is a longer run of this recipe, made by
# `python -m diffusion_lab.pretrained train text_digits`: 30,000 captioned images, 600 CLIP steps,
# then 12,000 U-Net steps of 64 images with an EMA decay of 0.999, about 70 minutes on the 2-core
# CPU (the run was resumed once; `info` counts the part after step 3,400). It comes with its
# tokenizer. Below, the same prompts and noises at $w = 1$ and $w = 3$, and how much the 8 images
# of each prompt differ (`mean_pairwise_distance`, in pixels).

# %%
bundled = load_pretrained("text_digits")
net, tokenizer = bundled.model.to(device), bundled.tokenizer
print(bundled.info)
fig, axes = plt.subplots(len(prompts), 2, figsize=(14, 1.45 * len(prompts)))
for row, prompt in zip(axes, prompts):
    for ax, w in zip(row, (1.0, 3.0)):
        images = sample(net, schedule, x_T, sampler="dpm_solver_sde", num_steps=20, prediction="v",
                        cond=tokenizer.encode([prompt] * 8).to(device), guidance_scale=w,
                        generator=torch.Generator(device).manual_seed(4), progress=False)
        show_images(images, nrow=8, ax=ax, title=f"{prompt}, w = {w:g}, variety {mean_pairwise_distance(images):.1f}")
fig.tight_layout()
plt.show()

# %% [markdown]
# Guidance fixes wrong digits (the 8 among the red 2s at $w = 1$) and makes the digits bolder and
# more alike in style. The pixel variety hardly shows it, and even rises for the 4s and the 1s:
# thicker strokes differ in more pixels, as lesson 8 found for its digits. To the eye, each row at
# $w = 3$ is one handwriting, and at $w = 1$ several.

# %% [markdown]
# Now the measurement. We draw random prompts from the seen combinations and from the held-out
# ones, one image per prompt, at guidance scales 1 and 3, and read every attribute back from the
# pixels: the share right per attribute, and the share with the **whole prompt** right.

# %%
def measure(split, w, n):
    combos = all_combinations(split)
    chosen = [combos[i] for i in torch.randint(len(combos), (n,), generator=torch.Generator().manual_seed(5))]
    noise = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(6)).to(device)
    images = sample(net, schedule, noise, sampler="dpm_solver_sde", num_steps=20, prediction="v",
                    cond=tokenizer.encode([caption(*c) for c in chosen]).to(device),
                    guidance_scale=w, generator=torch.Generator(device).manual_seed(7), progress=False)
    digits, colours, sizes, places = zip(*chosen)
    return adherence(images.cpu(), torch.tensor(digits), colours, sizes, places)

n = 40 if FAST else 200
table = {(split, w): measure(split, w, n) for split in ("seen", "held_out") for w in (1.0, 3.0)}
for (split, w), a in table.items():
    print(f"{split:8} w={w:g}: " + "  ".join(f"{k} {100 * a[k]:5.1f}%" for k in ("digit", "colour", "size", "place", "all")))

# %%
attributes = ["digit", "colour", "size", "place", "all"]
fig, ax = plt.subplots(figsize=(8, 3.2))
for i, ((split, w), a) in enumerate(table.items()):
    ax.bar([j + 0.2 * i - 0.3 for j in range(5)], [100 * a[k] for k in attributes], width=0.2,
           label=f"{split.replace('_', '-')}, w = {w:g}")
ax.set(xticks=range(5), xticklabels=["digit", "colour", "size", "place", "whole prompt"],
       ylabel="% of images right", ylim=(0, 105), title=f"prompt adherence, {n} prompts each")
ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.12))
plt.show()

# %% [markdown]
# Colour, size and place are almost always right, even without guidance. The digit is the hard
# part: without guidance ($w = 1$) 81% of the seen prompts get the right digit, with $w = 3$ 98%,
# as good as the pixel reader does on real images. The held-out combinations, never seen in
# training, do just as well with guidance (99% of whole prompts right): the model learned
# "green" and "3" separately, and composes them. With 200 prompts, one standard error is about 1
# point near 98% but 3 points near 80%, so the gap between seen and held-out prompts at $w = 1$
# (80% and 74.5% whole prompts) may be chance. As in lesson 8, the price is paid in variety:
# the guided digits are bolder and more alike (above).

# %% [markdown]
# ## 7. Your turn: type a prompt
#
# Type a prompt from the vocabulary (any digit, red/yellow/green/blue, small/large, top/bottom,
# left/right) and press **generate** (or Enter); the slider changes the guidance. Every prompt
# starts from the same 8 noises, so you can see what each word changes. Try a held-out pair (a
# green 3), an unknown word, or a prompt with words left out ("a red 2"): every training caption
# named all four attributes, so a shorter prompt is new to the model. What does it do with what
# you did not say?

# %%
explorer = PromptExplorer(net, schedule, tokenizer, prompt="a large green 3 in the top right",
                          prediction="v", num_steps=10 if FAST else 20, guidance_scale=3.0)
explorer

# %% [markdown]
# ## Summary
#
# - A prompt becomes numbers in three steps: words to ids (tokenizing), ids to learned vectors
#   plus positions, and a transformer that mixes them into one feature vector per token.
# - CLIP trains a text encoder and an image encoder together with a contrastive loss: in a batch,
#   each image must pick its own caption and each caption its own image.
# - Cross-attention lets every pixel of the U-Net weigh every token,
#   $\mathrm{softmax}(QK^\top/\sqrt d)\,V$: this is how "top left" reaches the top-left pixels.
# - The rest is lesson 8: train with 10% empty prompts, sample with classifier-free guidance.
# - Measured with exact, pixel-level checks on the bundled model, at $w = 3$: 98% of seen prompts
#   and 99% of never-seen combinations came out right in every attribute (80% and 74.5% without
#   guidance), at the cost of less varied images.
#
# ## Going further
#
# 1. Replace the frozen CLIP text encoder by an untrained one (frozen at random) and train the
#    U-Net again: how much does adherence drop? (Imagen, which used a text-only T5 encoder, found
#    a bigger text encoder helped more than a bigger U-Net.)
# 2. Hold out a colour-place pair instead of a digit-colour pair, and measure again.
# 3. Look inside: hook one `CrossAttention` block and plot, for each pixel, the weight it gives to
#    the word "left".
