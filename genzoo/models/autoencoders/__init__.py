"""Autoencoder family: importing this package registers its models (``vae``)."""

from genzoo.models.autoencoders.vae import VAE, VAEConfig

__all__ = ["VAE", "VAEConfig"]
