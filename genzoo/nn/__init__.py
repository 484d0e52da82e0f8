"""Building blocks only: no diffusion, no training."""

from genzoo.nn.attention import multi_head_attention
from genzoo.nn.embeddings import ClassEmbedding
from genzoo.nn.gan_nets import Discriminator, Generator, apply_spectral_norm, frozen
from genzoo.nn.masked import GatedPixelCNNLayer, MaskedConv2d
from genzoo.nn.mlp import MLP
from genzoo.nn.transformer import Block, CausalSelfAttention, KVCache, Transformer

__all__ = [
    "MLP",
    "Block",
    "CausalSelfAttention",
    "ClassEmbedding",
    "Discriminator",
    "GatedPixelCNNLayer",
    "Generator",
    "KVCache",
    "MaskedConv2d",
    "Transformer",
    "apply_spectral_norm",
    "frozen",
    "multi_head_attention",
]
