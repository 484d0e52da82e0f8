"""Building blocks only: no diffusion, no training."""

from genzoo.nn.masked import GatedPixelCNNLayer, MaskedConv2d
from genzoo.nn.mlp import MLP
from genzoo.nn.transformer import Block, CausalSelfAttention, KVCache, Transformer

__all__ = [
    "MLP",
    "Block",
    "CausalSelfAttention",
    "GatedPixelCNNLayer",
    "KVCache",
    "MaskedConv2d",
    "Transformer",
]
