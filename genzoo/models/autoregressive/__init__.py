"""Autoregressive family: importing this package registers its models (``pixelcnn``, ``gpt``,
``vqvae-prior``)."""

from genzoo.models.autoregressive.gpt import GPT, GPTConfig
from genzoo.models.autoregressive.pixelcnn import PixelCNN, PixelCNNConfig
from genzoo.models.autoregressive.vq_prior import VQPrior, VQPriorConfig

__all__ = ["GPT", "GPTConfig", "PixelCNN", "PixelCNNConfig", "VQPrior", "VQPriorConfig"]
