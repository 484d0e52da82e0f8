"""Autoencoder family: importing this package registers its models (``ae``, ``dae``, ``vae``,
``vqvae``, ``dvae``)."""

from genzoo.models.autoencoders.ae import AE, DAE, AEConfig, DAEConfig
from genzoo.models.autoencoders.dvae import DVAE, DVAEConfig
from genzoo.models.autoencoders.vae import VAE, VAEConfig
from genzoo.models.autoencoders.vqvae import VQVAE, VQVAEConfig

__all__ = [
    "AE",
    "DAE",
    "DVAE",
    "VAE",
    "VQVAE",
    "AEConfig",
    "DAEConfig",
    "DVAEConfig",
    "VAEConfig",
    "VQVAEConfig",
]
