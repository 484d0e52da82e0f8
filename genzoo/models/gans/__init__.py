"""GANs: one model, several objectives; importing this package registers ``gan``, ``dcgan``,
``wgan``, ``wgan-gp``, ``hinge-sn`` and ``cgan``, the image-to-image models ``pix2pix`` and
``cyclegan``, and the vocoder ``hifigan``."""

from genzoo.models.gans import losses
from genzoo.models.gans.conditional import CGAN, CGANConfig
from genzoo.models.gans.cyclegan import CycleGAN, CycleGANConfig
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
)
from genzoo.models.gans.hifigan import HiFiGAN, HiFiGANConfig
from genzoo.models.gans.pix2pix import Pix2Pix, Pix2PixConfig

__all__ = [
    "CGAN",
    "DCGAN",
    "GAN",
    "WGAN",
    "WGANGP",
    "CGANConfig",
    "CycleGAN",
    "CycleGANConfig",
    "DCGANConfig",
    "GANConfig",
    "HiFiGAN",
    "HiFiGANConfig",
    "HingeSN",
    "HingeSNConfig",
    "Pix2Pix",
    "Pix2PixConfig",
    "WGANConfig",
    "WGANGPConfig",
    "losses",
]
