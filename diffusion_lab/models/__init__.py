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
from .points import PointDenoiser
from .unet import TextConditionedUNet, UNet
from .unet1d import UNet1d

__all__ = [
    "Autoencoder",
    "AutoencoderStep",
    "LabelEmbedding",
    "LatentDiffusion",
    "PointDenoiser",
    "SinusoidalEmbedding",
    "TextConditionedUNet",
    "TimeMLP",
    "UNet",
    "UNet1d",
    "autoencoder_loss",
    "encode_dataset",
    "latent_denoiser",
    "latent_scale",
    "reconstruction_psnr",
    "train_autoencoder",
]
