"""Autoregressive family: importing this package registers its models (``pixelcnn``, ``gpt``,
``lstm``, ``gru``, ``vqvae-prior``, ``t2i-vq``, ``wavenet``, ``video-worldmodel``)."""

from genzoo.models.autoregressive.gpt import GPT, GPTConfig, TransformerConfig
from genzoo.models.autoregressive.pixelcnn import PixelCNN, PixelCNNConfig
from genzoo.models.autoregressive.rnn import GRULM, GRUConfig, RecurrentLM, RNNConfig
from genzoo.models.autoregressive.t2i_vq import T2IVQConfig, TextToImageVQ
from genzoo.models.autoregressive.video_worldmodel import VideoWorldModel, VideoWorldModelConfig
from genzoo.models.autoregressive.vq_prior import VQPrior, VQPriorConfig
from genzoo.models.autoregressive.wavenet import WaveNet, WaveNetConfig

__all__ = [
    "GPT",
    "GRULM",
    "GPTConfig",
    "GRUConfig",
    "PixelCNN",
    "PixelCNNConfig",
    "RNNConfig",
    "RecurrentLM",
    "T2IVQConfig",
    "TextToImageVQ",
    "TransformerConfig",
    "VQPrior",
    "VQPriorConfig",
    "VideoWorldModel",
    "VideoWorldModelConfig",
    "WaveNet",
    "WaveNetConfig",
]
