"""Models that follow the course's one contract: `model(xt, t, cond=None) -> Tensor like xt`."""

from .embeddings import SinusoidalEmbedding, TimeMLP
from .unet import UNet

__all__ = ["SinusoidalEmbedding", "TimeMLP", "UNet"]
