"""Models that follow the course's one contract: `model(xt, t, cond=None) -> Tensor like xt`.

The exception is `Autoencoder` (lesson 11), which maps images to latents and back; the
denoiser of a `LatentDiffusion` follows the contract on latents.
"""

from .autoencoder import (
    Autoencoder,
    AutoencoderStep,
    LatentDiffusion,
    autoencoder_loss,
    encode_dataset,
    latent_denoiser,
    latent_scale,
    reconstruction_psnr,
    train_autoencoder,
)
from .embeddings import LabelEmbedding, SinusoidalEmbedding, TimeMLP
from .unet import TextConditionedUNet, UNet

__all__ = [
    "Autoencoder",
    "AutoencoderStep",
    "LabelEmbedding",
    "LatentDiffusion",
    "SinusoidalEmbedding",
    "TextConditionedUNet",
    "TimeMLP",
    "UNet",
    "autoencoder_loss",
    "encode_dataset",
    "latent_denoiser",
    "latent_scale",
    "reconstruction_psnr",
    "train_autoencoder",
]
