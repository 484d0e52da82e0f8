"""Diffusion models (denoisers over the shared machinery in genzoo.diffusion)."""

from genzoo.models.diffusion.ddpm import DDPM, DDPMConfig

__all__ = ["DDPM", "DDPMConfig"]
