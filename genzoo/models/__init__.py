"""The model families; importing this package registers every built-in model in ``MODELS``."""

from genzoo.core.registry import MODELS
from genzoo.models import (  # noqa: F401  (each registers its models)
    autoencoders,
    autoregressive,
    diffusion,
    flows,
    gans,
    linear,
    multimodal,
    posttrain,
    ssl,
    style,
)

__all__ = ["MODELS"]
