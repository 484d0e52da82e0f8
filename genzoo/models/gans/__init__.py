"""GANs: one model, several objectives; importing this package registers ``gan``, ``dcgan``,
``wgan``, ``wgan-gp``, ``hinge-sn`` and ``cgan``."""

from genzoo.models.gans import losses
from genzoo.models.gans.conditional import CGAN, CGANConfig
from genzoo.models.gans.dcgan import DCGAN, DCGANConfig
from genzoo.models.gans.gan import (
    GAN,
    WGAN,
    WGANGP,
    GANConfig,
    HingeSN,
    HingeSNConfig,
    WGANConfig,
    WGANGPConfig,
    mode_coverage,
)

__all__ = [
    "CGAN",
    "DCGAN",
    "GAN",
    "WGAN",
    "WGANGP",
    "CGANConfig",
    "DCGANConfig",
    "GANConfig",
    "HingeSN",
    "HingeSNConfig",
    "WGANConfig",
    "WGANGPConfig",
    "losses",
    "mode_coverage",
]
