"""Shared diffusion machinery: schedules, parametrizations, samplers, the ideal denoiser."""

from genzoo.diffusion.ideal import IdealDenoiser
from genzoo.diffusion.samplers import SAMPLERS, get_sampler, run_sampler

__all__ = ["SAMPLERS", "IdealDenoiser", "get_sampler", "run_sampler"]
