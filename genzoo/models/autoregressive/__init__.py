"""Autoregressive family: importing this package registers its models (``pixelcnn``, ``gpt``)."""

from genzoo.models.autoregressive.gpt import GPT, GPTConfig
from genzoo.models.autoregressive.pixelcnn import PixelCNN, PixelCNNConfig

__all__ = ["GPT", "GPTConfig", "PixelCNN", "PixelCNNConfig"]
