"""GANs: one model, several objectives; importing this package registers ``gan``, ``dcgan``,
``wgan``, ``wgan-gp``, ``hinge-sn``, ``cgan`` and ``biggan``, the image-to-image models
``pix2pix`` and ``cyclegan``, the progress models ``progan`` and ``stylegan2``, the
two-stream ``video-gan``, the content/motion ``video-mocogan`` and the vocoders ``hifigan``,
``vocos``, ``degli`` and ``mel2linear-gl``."""

from genzoo.models.gans import losses
from genzoo.models.gans.biggan import BigGAN, BigGANConfig
from genzoo.models.gans.conditional import CGAN, CGANConfig
from genzoo.models.gans.cyclegan import CycleGAN, CycleGANConfig
from genzoo.models.gans.dcgan import DCGAN, DCGANConfig
from genzoo.models.gans.degli import DeepGriffinLim, DeGLIConfig
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
from genzoo.models.gans.mel2linear import Mel2Linear, Mel2LinearConfig
from genzoo.models.gans.mocogan import MoCoGAN, MoCoGANConfig
from genzoo.models.gans.pix2pix import Pix2Pix, Pix2PixConfig
from genzoo.models.gans.progan import ProGAN, ProGANConfig
from genzoo.models.gans.stylegan2 import StyleGAN2, StyleGAN2Config
from genzoo.models.gans.video_gan import VideoGAN, VideoGANConfig
from genzoo.models.gans.vocos import Vocos, VocosConfig

__all__ = [
    "CGAN",
    "DCGAN",
    "GAN",
    "WGAN",
    "WGANGP",
    "BigGAN",
    "BigGANConfig",
    "CGANConfig",
    "CycleGAN",
    "CycleGANConfig",
    "DCGANConfig",
    "DeGLIConfig",
    "DeepGriffinLim",
    "GANConfig",
    "HiFiGAN",
    "HiFiGANConfig",
    "HingeSN",
    "HingeSNConfig",
    "Mel2Linear",
    "Mel2LinearConfig",
    "MoCoGAN",
    "MoCoGANConfig",
    "Pix2Pix",
    "Pix2PixConfig",
    "ProGAN",
    "ProGANConfig",
    "StyleGAN2",
    "StyleGAN2Config",
    "VideoGAN",
    "VideoGANConfig",
    "Vocos",
    "VocosConfig",
    "WGANConfig",
    "WGANGPConfig",
    "losses",
]
