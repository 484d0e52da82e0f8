"""NCSN: noise-conditional score networks (Song & Ermon, arXiv:1907.05600; v2: arXiv:2006.09011).

A score network ``s_theta(x, sigma) ~ grad log p_sigma(x)`` on geometric noise levels
``sigma_1 > ... > sigma_L`` trained with denoising score matching weighted by ``sigma^2`` (Eq. 6):
``sigma^2 |s_theta + eps / sigma|^2``. In genzoo's currency (VE preconditioning, EDM Table 1)
``D(x, sigma) = x + sigma^2 s_theta = x + sigma F(x, ln sigma)`` — the NCSNv2 choice
``s_theta = F / sigma`` — and the loss is ``|D - x0|^2 / sigma^2``. Sampling is annealed Langevin
dynamics (Algorithm 1), or any other sampler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from genzoo.core.config import bounded
from genzoo.core.errors import ConfigError
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand
from genzoo.diffusion.parametrization import score_from_x0
from genzoo.diffusion.schedules import loglinear_schedule
from genzoo.models.diffusion.base import DiffusionConfig, DiffusionModel


@dataclass(frozen=True)
class NCSNConfig(DiffusionConfig):
    sigma_min: float = 0.01  # smallest noise level sigma_L
    sigma_max: float = 10.0  # largest noise level sigma_1 (about the largest data distance)
    num_levels: int = bounded(100, ge=2)  # L, number of geometric noise levels
    sampler: str = "langevin"  # default sampler: annealed Langevin dynamics (Algorithm 1)
    sample_steps: int = bounded(0, ge=0)  # sampling levels (0: all L levels)

    def validate(self) -> None:
        super().validate()
        if not 0 < self.sigma_min < self.sigma_max:
            raise ConfigError("sigma_min and sigma_max must satisfy 0 < sigma_min < sigma_max.")


@register_model("ncsn")
class NCSN(DiffusionModel):
    """NCSN (arXiv:1907.05600): VE score network, annealed Langevin dynamics."""

    config_class = NCSNConfig
    config: NCSNConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "ema_decay": 0.999, "batch_size": 128}

    def precond(self, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        one = torch.ones_like(sigma)
        return one, sigma, one, sigma.log()  # VE: D = x + sigma F(x, ln sigma)

    def score(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        """``s_theta(x, sigma) = (D(x, sigma) - x) / sigma^2`` (= ``F / sigma``, NCSNv2)."""
        return score_from_x0(x, self.denoise(x, sigma, cond), sigma)

    def train_sigma(self, b: int, generator: torch.Generator | None, device: Any) -> Tensor:
        c = self.config
        i = (rand((b,), generator=generator, device=device) * c.num_levels).floor()
        frac = i.clamp(max=c.num_levels - 1) / (c.num_levels - 1)
        log_s = math.log(c.sigma_max) + frac * (math.log(c.sigma_min) - math.log(c.sigma_max))
        return log_s.exp()  # uniform over the L geometric levels

    def loss_weight(self, sigma: Tensor) -> Tensor:
        return 1 / sigma**2  # sigma^2 |s + eps/sigma|^2 = |D - x0|^2 / sigma^2, Eq. (6)

    def sampling_sigmas(self, steps: int | None = None) -> Tensor:
        c = self.config
        return loglinear_schedule(steps or c.sample_steps or c.num_levels, c.sigma_min, c.sigma_max)
