"""Building blocks only: no diffusion, no training."""

from genzoo.nn.mlp import MLP

__all__ = ["MLP"]
