"""Diffusion models: one preconditioned denoiser, several papers' choices."""

from genzoo.models.diffusion.backbones import DiTBackbone, MLPBackbone, UNetBackbone
from genzoo.models.diffusion.base import DiffusionConfig, DiffusionModel
from genzoo.models.diffusion.controlnet import ControlNet, ControlNetConfig
from genzoo.models.diffusion.ddpm import DDIM, DDPM, DDIMConfig, DDPMConfig
from genzoo.models.diffusion.dreambooth import DreamBooth, DreamBoothConfig
from genzoo.models.diffusion.edm import EDM, DiTConfig, DiTModel, EDMConfig
from genzoo.models.diffusion.flow_matching import FlowMatching, FlowMatchingConfig
from genzoo.models.diffusion.ldm import LatentDiffusion, LatentDiffusionConfig
from genzoo.models.diffusion.ncsn import NCSN, NCSNConfig
from genzoo.models.diffusion.t2i import T2IDiffusionConfig, TextToImageDiffusion
from genzoo.models.diffusion.video import VideoDiffusion, VideoDiffusionConfig

__all__ = [
    "DDIM",
    "DDPM",
    "EDM",
    "NCSN",
    "ControlNet",
    "ControlNetConfig",
    "DDIMConfig",
    "DDPMConfig",
    "DiTBackbone",
    "DiTConfig",
    "DiTModel",
    "DiffusionConfig",
    "DiffusionModel",
    "DreamBooth",
    "DreamBoothConfig",
    "EDMConfig",
    "FlowMatching",
    "FlowMatchingConfig",
    "LatentDiffusion",
    "LatentDiffusionConfig",
    "MLPBackbone",
    "NCSNConfig",
    "T2IDiffusionConfig",
    "TextToImageDiffusion",
    "UNetBackbone",
    "VideoDiffusion",
    "VideoDiffusionConfig",
]
