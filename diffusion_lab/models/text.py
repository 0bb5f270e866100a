"""From a prompt to numbers: a word-level tokenizer, a small text transformer, and a tiny CLIP.

The pipeline of a text-to-image model, text side:
    "a small red 7" -> Tokenizer -> tokens (B, L) -> TextEncoder -> features (B, L, D)
The token features feed a U-Net's cross-attention (as in Stable Diffusion, Rombach et al. 2022);
the feature at the <bos> position is the pooled summary of the whole prompt. CLIP (Radford et al.
2021) trains a text encoder and an image encoder together, so that a picture and its caption land
close together in one shared space.

Introduced in: notebooks/09_text_to_image.ipynb
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import optimizer_step, warmup_cosine_lr

__all__ = [
    "CLIP",
    "CLIPStep",
    "ImageEncoder",
    "TextEncoder",
    "Tokenizer",
    "caption_accuracy",
    "contrastive_loss",
    "retrieval_accuracy",
    "train_clip",
]

PAD, BOS = "<pad>", "<bos>"
PAD_ID, BOS_ID = 0, 1
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clips its learned temperature so logits stay <= 100


# ----- tokenizer -----
class Tokenizer:
    """A word-level tokenizer: "<pad>" = 0, "<bos>" = 1, then the vocabulary in the given order.

    Text is lowercased and split on whitespace. Every encoded prompt starts with <bos> (the text
    encoder pools there) and is padded with <pad> to `max_length`. `encode("")` is the null
    prompt [<bos>, <pad>, ...], used for classifier-free guidance.
    Introduced in: notebooks/09_text_to_image.ipynb
    """

    pad_id, bos_id = PAD_ID, BOS_ID

    def __init__(self, vocabulary: Sequence[str], *, max_length: int = 12):
        if isinstance(vocabulary, str):
            raise TypeError("vocabulary must be a list of words, not one string")
        words = [str(word).lower() for word in vocabulary]
        for word in words:
            if not word or word.split() != [word]:
                raise ValueError(f"vocabulary words must be non-empty, without spaces: {word!r}")
            if word in (PAD, BOS):
                raise ValueError(f"{word!r} is a special token; leave it out of the vocabulary")
        duplicates = sorted({word for word in words if words.count(word) > 1})
        if duplicates:
            raise ValueError(f"the vocabulary repeats {duplicates} (case is ignored)")
        if max_length < 2:
            raise ValueError(
                f"max_length must be at least 2 (<bos> plus one word), got {max_length}"
            )
        self.vocabulary, self.max_length = words, int(max_length)
        self.itos = [PAD, BOS, *words]  # id -> token
        self.stoi = {token: i for i, token in enumerate(self.itos)}  # token -> id

    @property
    def vocab_size(self) -> int:
        """Number of token ids, the two special tokens included."""
        return len(self.itos)

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def config(self) -> dict:
        """The arguments that recreate this tokenizer: `Tokenizer(**tok.config)`."""
        return {"vocabulary": list(self.vocabulary), "max_length": self.max_length}

    def _encode_one(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"a prompt must be a str, got {type(text).__name__}")
        words = text.lower().split()
        if len(words) > self.max_length - 1:
            raise ValueError(
                f"{text!r} has {len(words)} words, but at most {self.max_length - 1} fit "
                f"(max_length={self.max_length} includes the <bos> token)"
            )
        for word in words:
            if word not in self.stoi or word in (PAD, BOS):
                raise ValueError(
                    f"unknown word {word!r} in {text!r}; known words: {', '.join(self.vocabulary)}"
                )
        ids = [BOS_ID] + [self.stoi[word] for word in words]
        return ids + [PAD_ID] * (self.max_length - len(ids))

    def encode(self, text: str | Sequence[str]) -> torch.Tensor:
        """Prompt(s) -> LongTensor (B, max_length); one str gives B = 1."""
        prompts = [text] if isinstance(text, str) else list(text)
        ids = [self._encode_one(prompt) for prompt in prompts]
        return torch.tensor(ids, dtype=torch.long).reshape(len(ids), self.max_length)  # (B, L)

    def decode(self, tokens: torch.Tensor | Sequence) -> list[str]:
        """Tokens (L,) or (B, L) -> one string per row; <bos> and <pad> are dropped."""
        tokens = torch.as_tensor(tokens)
        if tokens.ndim == 1:
            tokens = tokens[None]  # (1, L)
        if tokens.ndim != 2 or tokens.is_floating_point():
            raise ValueError(
                f"expected integer tokens (L,) or (B, L), got shape {tuple(tokens.shape)}"
            )
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size - 1}]")
        rows = tokens.tolist()
        return [" ".join(self.itos[i] for i in row if i not in (PAD_ID, BOS_ID)) for row in rows]

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, max_length={self.max_length})"


# ----- text encoder -----
class Attention(nn.Module):
    """Multi-head self-attention (Vaswani et al. 2017) in which <pad> keys are ignored."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = self.qkv(x).reshape(B, L, 3, self.num_heads, D // self.num_heads).unbind(2)
        q, k, v = (a.transpose(1, 2) for a in (q, k, v))  # (B, heads, L, D / heads) each
        # keep (B, L) is True for real tokens; as a mask (B, 1, 1, L) it hides pad *keys* from
        # every query, so no word ever looks at a pad. <bos> is always kept: no row is empty
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
        return self.proj(h.transpose(1, 2).reshape(B, L, D))  # (B, L, D)


class Block(nn.Module):
    """A pre-LayerNorm transformer block: x + attention(norm(x)), then x + MLP(norm(x))."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), keep)  # (B, L, D)
        return x + self.mlp(self.norm2(x))


class TextEncoder(nn.Module):
    """A small transformer text encoder, as in CLIP (Radford et al. 2021, sec. 2.4).

    forward(tokens (B, L)) -> token features (B, L, dim), for a U-Net's cross-attention;
    pooled(tokens) -> (B, dim), the feature at the <bos> position (position 0). Pads are
    ignored by attention, so the features of the words do not depend on the padding.
    Introduced in: notebooks/09_text_to_image.ipynb
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        max_length: int = 12,
        dim: int = 64,
        depth: int = 2,
        num_heads: int = 4,
    ):
        super().__init__()
        if vocab_size < 3:
            raise ValueError(
                f"vocab_size must count <pad>, <bos> and at least one word, got {vocab_size}"
            )
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.config = dict(
            vocab_size=vocab_size, max_length=max_length, dim=dim, depth=depth, num_heads=num_heads
        )
        self.token_embedding = nn.Embedding(vocab_size, dim)
        # one learned vector per slot
        self.position_embedding = nn.Parameter(torch.zeros(max_length, dim))  # (L_max, D)
        self.blocks = nn.ModuleList(Block(dim, num_heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.token_embedding.weight, std=0.02)  # small start, as in GPT-2 and CLIP
        nn.init.normal_(self.position_embedding, std=0.01)

    def _check(self, tokens: torch.Tensor) -> None:
        vocab_size, max_length = self.config["vocab_size"], self.config["max_length"]
        if tokens.ndim != 2 or tokens.is_floating_point() or tokens.dtype == torch.bool:
            raise ValueError(
                f"expected integer tokens of shape (B, L), got {tokens.dtype} {tuple(tokens.shape)}"
            )
        if not 1 <= tokens.shape[1] <= max_length:
            raise ValueError(f"L must lie in [1, {max_length}] (max_length), got {tokens.shape[1]}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= vocab_size):
            raise ValueError(
                f"token ids must lie in [0, {vocab_size - 1}] (vocab_size={vocab_size}), "
                f"got ids from {tokens.min().item()} to {tokens.max().item()}"
            )
        if tokens.numel() and (tokens[:, 0] != BOS_ID).any():
            raise ValueError(f"every row must start with <bos> (id {BOS_ID}); use Tokenizer.encode")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        self._check(tokens)
        keep = tokens != PAD_ID  # (B, L), False at pads
        x = self.token_embedding(tokens) + self.position_embedding[: tokens.shape[1]]  # (B, L, D)
        for block in self.blocks:
            x = block(x, keep)
        return self.norm(x)  # (B, L, D)

    def pooled(self, tokens: torch.Tensor) -> torch.Tensor:
        """One vector per prompt: the feature at the <bos> position, (B, dim)."""
        return self(tokens)[:, 0]  # (B, D)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())


# ----- image encoder -----
def _norm(channels: int, groups: int = 8) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class ImageEncoder(nn.Module):
    """A small CNN: images (B, C, H, W) -> (B, dim), the image tower of a tiny CLIP.

    Each level is conv-GroupNorm-SiLU twice; every level after the first starts with a stride-2
    conv that halves H and W. Global average pooling and a linear layer give the embedding.
    Introduced in: notebooks/09_text_to_image.ipynb
    """

    def __init__(
        self,
        in_channels: int = 3,
        *,
        image_size: int = 32,
        dim: int = 64,
        channels: tuple[int, ...] = (32, 64, 128),
    ):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels:
            raise ValueError("channels must name at least one level, e.g. (32, 64, 128)")
        self.config = dict(
            in_channels=in_channels, image_size=image_size, dim=dim, channels=channels
        )
        self.input_shape = (in_channels, image_size, image_size)
        layers, ch = [], in_channels
        for level, out_ch in enumerate(channels):
            stride = 1 if level == 0 else 2  # halve the resolution at every new level
            layers += [nn.Conv2d(ch, out_ch, 3, stride, padding=1), _norm(out_ch), nn.SiLU()]
            layers += [nn.Conv2d(out_ch, out_ch, 3, padding=1), _norm(out_ch), nn.SiLU()]
            ch = out_ch
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(ch, dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or tuple(images.shape[1:]) != self.input_shape:
            raise ValueError(
                f"expected images of shape (B, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(images.shape)}"
            )
        h = self.features(images)  # (B, C_last, H / 2**(levels-1), W / 2**(levels-1))
        return self.head(h.mean(dim=(2, 3)))  # global average pool -> (B, dim)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())


# ----- CLIP -----
class CLIP(nn.Module):
    """Contrastive language-image pre-training in miniature (Radford et al. 2021, fig. 3).

    Both towers are projected linearly into one `embed_dim` space and L2-normalised, so the
    logits are scaled cosine similarities: forward(images, tokens) -> (B_img, B_txt). The scale
    exp(logit_scale) is learned, starts at 1/0.07 and is clipped at 100, as in the paper.
    Introduced in: notebooks/09_text_to_image.ipynb
    """

    def __init__(
        self, text_encoder: TextEncoder, image_encoder: ImageEncoder, *, embed_dim: int = 64
    ):
        super().__init__()
        self.text_encoder, self.image_encoder = text_encoder, image_encoder
        self.text_proj = nn.Linear(text_encoder.config["dim"], embed_dim, bias=False)
        self.image_proj = nn.Linear(image_encoder.config["dim"], embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # log of 1/temperature
        self.config = dict(
            embed_dim=embed_dim, text=dict(text_encoder.config), image=dict(image_encoder.config)
        )

    @classmethod
    def from_config(cls, config: dict) -> CLIP:
        """Rebuild an (untrained) CLIP of the same shape from `clip.config`."""
        return cls(
            TextEncoder(**config["text"]),
            ImageEncoder(**config["image"]),
            embed_dim=config["embed_dim"],
        )

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens (B, L) -> unit-length text embeddings (B, embed_dim)."""
        return F.normalize(self.text_proj(self.text_encoder.pooled(tokens)), dim=-1)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) -> unit-length image embeddings (B, embed_dim)."""
        return F.normalize(self.image_proj(self.image_encoder(images)), dim=-1)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        image_emb = self.encode_image(images)  # (B_img, E)
        text_emb = self.encode_text(tokens)  # (B_txt, E)
        scale = self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
        return scale * image_emb @ text_emb.T  # (B_img, B_txt) scaled cosine similarities

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def contrastive_loss(
    logits: torch.Tensor, *, caption_ids: torch.Tensor | None = None
) -> torch.Tensor:
    """The symmetric cross-entropy of CLIP (Radford et al. 2021, fig. 3): mean of both directions.

    logits (B, B) pair image i with text i. With `caption_ids` (B,), pairs that share an id are
    all positives for each other: each row's target is spread evenly over its positives (soft
    cross-entropy), so an image is rewarded for matching every wording of its caption, and the
    floor of the loss is the entropy of the targets rather than 0. Ids that come from identical
    token rows give equal logit columns, and then exactly the plain loss: ids change the loss
    only when they group different texts (paraphrases, or captions of the same attributes).
    Introduced in: notebooks/09_text_to_image.ipynb
    """
    if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(
            f"expected square logits (B, B) for B image-text pairs, got {tuple(logits.shape)}"
        )
    B = logits.shape[0]
    if caption_ids is None:
        targets = torch.arange(B, device=logits.device)  # (B,): pair i is the only positive
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
    if caption_ids.shape != (B,):
        raise ValueError(f"caption_ids must have shape ({B},), got {tuple(caption_ids.shape)}")
    caption_ids = caption_ids.to(logits.device)
    same = (caption_ids[:, None] == caption_ids[None, :]).to(logits.dtype)  # (B, B), symmetric
    targets = same / same.sum(dim=1, keepdim=True)  # each row sums to 1 over its positives
    # image -> text uses the rows of logits, text -> image the columns (rows of logits.T)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


# ----- training and evaluation -----
@dataclass
class CLIPStep:
    """What `train_clip` yields after each optimiser step."""

    step: int  # optimiser steps done so far (1 after the first)
    loss: float
    seconds: float  # wall time since this call to train_clip() started


def train_clip(
    clip: CLIP,
    images: torch.Tensor,
    tokens: torch.Tensor,
    *,
    num_steps: int = 500,
    batch_size: int = 256,
    lr: float = 2e-3,
    weight_decay: float = 0.01,
    warmup_steps: int = 50,
    caption_ids: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[CLIPStep]:
    """Train `clip` on pairs images (N, C, H, W), tokens (N, L) with AdamW; yield after each step.

    Each batch is `batch_size` distinct pairs drawn with `generator`. Pairs with the same
    `caption_ids` (N,) are positives for each other (`contrastive_loss`); by default the ids come
    from identical token rows; pass your own to group paraphrases.
    Learning rate: linear warm-up over `warmup_steps`, then cosine decay to 10% of `lr`;
    gradients are clipped at norm 1; no weight decay on biases, norms or the temperature.
    The model is put in train mode; put it in eval mode afterwards (`eval_mode`).
    Introduced in: notebooks/09_text_to_image.ipynb
    """
    if len(images) != len(tokens):
        raise ValueError(f"got {len(images)} images but {len(tokens)} token rows; pair them 1:1")
    if len(images) < 2:
        raise ValueError("contrastive training needs at least 2 image-text pairs")
    if num_steps < 1 or batch_size < 2:
        raise ValueError(f"need num_steps >= 1 and batch_size >= 2, got {num_steps}, {batch_size}")
    if caption_ids is None:
        _, caption_ids = torch.unique(tokens, dim=0, return_inverse=True)  # (N,) same text, same id
    elif caption_ids.shape != (len(tokens),):
        raise ValueError(
            f"caption_ids must have shape ({len(tokens)},), got {tuple(caption_ids.shape)}"
        )
    device = next(clip.parameters()).device
    decay = [p for p in clip.parameters() if p.ndim >= 2]  # weight matrices and embeddings
    no_decay = [p for p in clip.parameters() if p.ndim < 2]  # biases, norm gains, temperature
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
    )

    def lr_at(step: int) -> float:
        return warmup_cosine_lr(step, lr=lr, warmup_steps=warmup_steps, num_steps=num_steps)

    gen_device = generator.device if generator is not None else torch.device("cpu")
    start = time.perf_counter()
    clip.train()
    for step in range(num_steps):
        # 1. a batch of distinct pairs (no pair is its own negative)
        index = torch.randperm(len(images), generator=generator, device=gen_device)[:batch_size]
        x = images[index.to(images.device)].to(device)  # (B, C, H, W)
        text = tokens[index.to(tokens.device)].to(device)  # (B, L)
        ids = caption_ids[index.to(caption_ids.device)].to(device)  # (B,)
        # 2. the (B, B) similarity matrix and the symmetric loss
        loss = contrastive_loss(clip(x, text), caption_ids=ids)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the loss became {loss.item()} at step {step + 1}; try a smaller lr (now {lr})"
            )
        # 3. one AdamW step at this step's learning rate
        optimizer_step(optimizer, loss, clip.parameters(), lr=lr_at(step))
        yield CLIPStep(step + 1, loss.item(), time.perf_counter() - start)


def _model_device(clip: CLIP) -> torch.device:
    return next(clip.parameters()).device


@torch.no_grad()
def _encode_images(clip: CLIP, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    device = _model_device(clip)
    chunks = [
        clip.encode_image(images[i : i + batch_size].to(device))
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(chunks)  # (N, E)


@torch.no_grad()
def caption_accuracy(
    clip: CLIP,
    images: torch.Tensor,
    tokens: torch.Tensor,
    candidate_tokens: torch.Tensor,
    *,
    batch_size: int = 512,
) -> float:
    """Zero-shot captioning (Radford et al. 2021, sec. 3.1.2): share of images whose best-scoring
    caption among the distinct `candidate_tokens` (K, L) is their own caption `tokens` (N, L).

    Does not change the model's mode; the tiny CLIP has no dropout or batch norm.
    Introduced in: notebooks/09_text_to_image.ipynb
    """
    if len(images) != len(tokens) or len(images) == 0:
        raise ValueError(
            f"need as many images as token rows (> 0), got {len(images)} and {len(tokens)}"
        )
    candidates = torch.unique(candidate_tokens, dim=0)  # (K, L), distinct captions
    # where each image's own caption sits among the candidates
    own = (tokens[:, None, :].cpu() == candidates[None].cpu()).all(-1)  # (N, K)
    missing = (~own.any(1)).nonzero().flatten()
    if len(missing):
        raise ValueError(
            f"the caption of image {missing[0].item()} is not among the candidate captions; "
            "pass every caption that occurs in `tokens`"
        )
    image_emb = _encode_images(clip, images, batch_size)  # (N, E)
    text_emb = clip.encode_text(candidates.to(_model_device(clip)))  # (K, E)
    best = (image_emb @ text_emb.T).argmax(1).cpu()  # (N,) best candidate per image
    return own[torch.arange(len(images)), best].float().mean().item()


@torch.no_grad()
def retrieval_accuracy(
    clip: CLIP, images: torch.Tensor, tokens: torch.Tensor, *, batch_size: int = 512
) -> dict[str, float]:
    """Top-1 retrieval within one set of pairs: {"image_to_text": ..., "text_to_image": ...}.

    image_to_text: share of images whose nearest caption (of all N) says the same as their own;
    text_to_image: share of distinct captions whose nearest image (of all N) carries that caption.
    Introduced in: notebooks/09_text_to_image.ipynb
    """
    if len(images) != len(tokens) or len(images) == 0:
        raise ValueError(
            f"need as many images as token rows (> 0), got {len(images)} and {len(tokens)}"
        )
    unique, caption_ids = torch.unique(tokens.cpu(), dim=0, return_inverse=True)  # (K, L), (N,)
    image_emb = _encode_images(clip, images, batch_size)  # (N, E)
    text_emb = clip.encode_text(unique.to(_model_device(clip)))  # (K, E), one per distinct caption
    similarity = (image_emb @ text_emb.T).cpu()  # (N, K)
    image_to_text = (similarity.argmax(1) == caption_ids).float().mean().item()
    text_to_image = (caption_ids[similarity.argmax(0)] == torch.arange(len(unique))).float()
    return {"image_to_text": image_to_text, "text_to_image": text_to_image.mean().item()}
