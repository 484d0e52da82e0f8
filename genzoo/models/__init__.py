"""The model families; importing this package registers every built-in model."""

from genzoo.models import autoencoders, autoregressive, diffusion, flows, gans  # noqa: F401
