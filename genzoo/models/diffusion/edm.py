"""EDM: Elucidating the Design Space of Diffusion-Based Generative Models
(Karras, Aittala, Aila & Laine, arXiv:2206.00364).

Preconditioning (Table 1, "ours"): ``c_skip = sd^2 / (s^2 + sd^2)``, ``c_out = s sd / sqrt(s^2 +
sd^2)``, ``c_in = 1 / sqrt(s^2 + sd^2)``, ``c_noise = ln(s) / 4``; training ``ln s ~ N(P_mean,
P_std^2)`` with loss weight ``lambda = (s^2 + sd^2) / (s sd)^2``; sampling with Heun's method
(Algorithm 1) on the Karras schedule (Eq. 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from genzoo.core.config import bounded
from genzoo.core.errors import ConfigError
from genzoo.core.registry import register_model
from genzoo.core.seeding import randn
from genzoo.diffusion.schedules import karras_schedule
from genzoo.models.diffusion.backbones import Arch
from genzoo.models.diffusion.base import DiffusionConfig, DiffusionModel


@dataclass(frozen=True)
class EDMConfig(DiffusionConfig):
    sigma_data: float = bounded(0.5, gt=0)  # std of the data (0.5 for images in [-1, 1]; ~1.4
    # for toy2d)
    p_mean: float = -1.2  # mean of ln(sigma) during training
    p_std: float = bounded(1.2, gt=0)  # std of ln(sigma) during training
    sigma_min: float = 0.002  # smallest sampling sigma
    sigma_max: float = 80.0  # largest sampling sigma
    rho: float = 7.0  # Karras schedule curvature (Eq. 5)
    sampler: str = "heun"  # default sampler: Heun, EDM Algorithm 1
    sample_steps: int = bounded(18, ge=0)  # Heun steps (35 network evaluations)

    def validate(self) -> None:
        super().validate()
        if not 0 < self.sigma_min < self.sigma_max:
            raise ConfigError("sigma_min and sigma_max must satisfy 0 < sigma_min < sigma_max.")


@register_model("edm")
class EDM(DiffusionModel):
    """EDM (arXiv:2206.00364): preconditioned denoiser, log-normal sigmas, Heun sampling."""

    config_class = EDMConfig
    config: EDMConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "ema_decay": 0.999, "batch_size": 128}

    def precond(self, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        sd = self.config.sigma_data
        c_skip = sd**2 / (sigma**2 + sd**2)  # Table 1
        c_out = sigma * sd / (sigma**2 + sd**2).sqrt()
        c_in = 1 / (sigma**2 + sd**2).sqrt()
        c_noise = sigma.log() / 4
        return c_skip, c_out, c_in, c_noise

    def train_sigma(self, b: int, generator: torch.Generator | None, device: Any) -> Tensor:
        z = randn((b,), generator=generator, device=device)
        return (self.config.p_mean + self.config.p_std * z).exp()  # ln s ~ N(P_mean, P_std^2)

    def loss_weight(self, sigma: Tensor) -> Tensor:
        sd = self.config.sigma_data
        return (sigma**2 + sd**2) / (sigma * sd) ** 2  # lambda(sigma), Table 1

    def sampling_sigmas(self, steps: int | None = None) -> Tensor:
        c = self.config
        return karras_schedule(steps or c.sample_steps, c.sigma_min, c.sigma_max, c.rho)

    def prior_std(self, sigma_max: float) -> float:
        return (sigma_max**2 + self.config.sigma_data**2) ** 0.5


@dataclass(frozen=True)
class DiTConfig(EDMConfig):
    arch: Arch = "dit"  # the DiT backbone (images only)


@register_model("dit")
class DiTModel(EDM):
    """DiT (arXiv:2212.09748): a transformer backbone with adaLN-Zero, trained as EDM."""

    config_class = DiTConfig
    config: DiTConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 3e-4, "ema_decay": 0.999, "batch_size": 128}
