"""Models that follow the course's one contract: `model(xt, t, cond=None) -> Tensor like xt`."""

from .embeddings import LabelEmbedding, SinusoidalEmbedding, TimeMLP
from .unet import TextConditionedUNet, UNet

__all__ = ["LabelEmbedding", "SinusoidalEmbedding", "TextConditionedUNet", "TimeMLP", "UNet"]
