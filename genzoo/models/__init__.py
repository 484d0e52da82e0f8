"""The model families; importing this package registers every built-in model."""

from genzoo.models import (  # noqa: F401
    autoencoders,
    autoregressive,
    diffusion,
    flows,
    gans,
    linear,
    multimodal,
)
