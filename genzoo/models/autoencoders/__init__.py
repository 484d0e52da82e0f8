"""Autoencoder family: importing this package registers its models (``ae``, ``dae``, ``vae``,
``vqvae``, ``vqgan``, ``dvae``, ``video-ddpae``)."""

from genzoo.models.autoencoders.ae import AE, DAE, AEConfig, DAEConfig
from genzoo.models.autoencoders.ddpae import DDPAE, DDPAEConfig
from genzoo.models.autoencoders.dvae import DVAE, DVAEConfig
from genzoo.models.autoencoders.vae import VAE, VAEConfig
from genzoo.models.autoencoders.vqgan import VQGAN, VQGANConfig
from genzoo.models.autoencoders.vqvae import VQVAE, VQVAEConfig

__all__ = [
    "AE",
    "DAE",
    "DDPAE",
    "DVAE",
    "VAE",
    "VQGAN",
    "VQVAE",
    "AEConfig",
    "DAEConfig",
    "DDPAEConfig",
    "DVAEConfig",
    "VAEConfig",
    "VQGANConfig",
    "VQVAEConfig",
]
