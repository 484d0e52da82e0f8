"""DDPM: Denoising Diffusion Probabilistic Models (Ho, Jain & Abbeel, arXiv:2006.11239).

genzoo writes every diffusion model as a denoiser ``D(x, sigma) -> x0_hat`` on the unscaled
variable ``x = x0 + sigma * eps`` (EDM convention, arXiv:2206.00364). DDPM is the
variance-preserving choice: the network sees the scaled input ``x_t = x / sqrt(1 + sigma^2)``
(= sqrt(abar_t) x0 + sqrt(1 - abar_t) eps), the timestep ``t`` of ``sigma`` in the discrete
schedule, and predicts ``eps``:

    D(x, sigma) = x - sigma * eps_theta(x / sqrt(1 + sigma^2), t(sigma))

i.e. ``c_skip = 1, c_out = -sigma, c_in = 1 / sqrt(1 + sigma^2), c_noise = t`` (EDM Table 1, VP).
The "simple" loss ``|eps - eps_theta|^2`` (Eq. 14) is ``|D - x0|^2 / sigma^2``, with t uniform in
{1..T}. Sampling runs any genzoo sampler on the descending sigmas of the discrete schedule; the
default is DDPM's ancestral sampler (Algorithm 2) over all T steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from genzoo.core.config import bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand
from genzoo.data.base import DataInfo
from genzoo.diffusion.parametrization import eps_from_x0
from genzoo.diffusion.schedules import (
    cosine_beta_table,
    discrete_schedule,
    linear_beta_table,
    sigma_to_t,
)
from genzoo.diffusion.vlb import ddpm_vlb
from genzoo.models.diffusion.base import DiffusionConfig, DiffusionModel


@dataclass(frozen=True)
class DDPMConfig(DiffusionConfig):
    schedule: Literal["linear", "cosine"] = "linear"  # betas: Ho et al. / Nichol & Dhariwal
    timesteps: int = bounded(1000, ge=2)  # T, number of discrete noise levels
    beta_start: float = 1e-4  # linear schedule: beta_1
    beta_end: float = 0.02  # linear schedule: beta_T
    sampler: str = "ancestral"  # default sampler (see `genzoo list samplers`)
    sample_steps: int = bounded(0, ge=0)  # default number of sampling steps (0: all T steps)

    def validate(self) -> None:
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ConfigError("beta_start and beta_end must satisfy 0 < beta_start < beta_end < 1.")
        if self.sample_steps > self.timesteps:
            raise ConfigError(f"sample_steps = {self.sample_steps} must be in 0..{self.timesteps}.")


@register_model("ddpm")
class DDPM(DiffusionModel):
    """DDPM (arXiv:2006.11239): eps-prediction, linear or cosine betas, ancestral sampling."""

    config_class = DDPMConfig
    config: DDPMConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 2e-4, "ema_decay": 0.999, "batch_size": 128}

    def __init__(self, config: DDPMConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        table = (
            linear_beta_table(c.timesteps, c.beta_start, c.beta_end)
            if c.schedule == "linear"
            else cosine_beta_table(c.timesteps)
        )
        self.register_buffer("sigma_table", table.float(), persistent=False)

    @property
    def preview_options(self) -> dict[str, Any]:  # type: ignore[override]
        """A quick grid: 50 deterministic DDIM steps (at most T) instead of T ancestral ones."""
        return {"sampler": "ddim", "steps": min(50, self.config.timesteps)}

    def precond(self, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        one = torch.ones_like(sigma)
        return one, -sigma, 1 / (1 + sigma**2).sqrt(), sigma_to_t(sigma, self.sigma_table)

    def eps(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        """eps_theta at the unscaled ``x = x0 + sigma eps``."""
        return eps_from_x0(x, self.denoise(x, sigma, cond), sigma)

    def train_sigma(self, b: int, generator: torch.Generator | None, device: Any) -> Tensor:
        t_count = self.config.timesteps
        t = (rand((b,), generator=generator, device=device) * t_count).long()
        return self.sigma_table[t.clamp(max=t_count - 1)]  # t ~ U{1..T}

    def loss_weight(self, sigma: Tensor) -> Tensor:
        return 1 / sigma**2  # |D - x0|^2 / sigma^2 = |eps_theta - eps|^2, Eq. (14)

    def sampling_sigmas(self, steps: int | None = None) -> Tensor:
        steps = steps or self.config.sample_steps or self.config.timesteps
        if not 1 <= steps <= self.config.timesteps:
            raise ConfigError(f"steps = {steps} must be between 1 and {self.config.timesteps}.")
        return discrete_schedule(self.sigma_table.cpu().double(), steps)

    def prior_std(self, sigma_max: float) -> float:
        return (1 + sigma_max**2) ** 0.5  # x_T ~ N(0, I) in the scaled variable

    @property
    def bpd_levels(self) -> None:
        """The bound is of the discrete data (Eq. 13 decoder): no change of variables."""
        return None

    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Test loss and the variational bound (Eq. 5), estimated without bias from 100 random
        timesteps per example (all of them when T <= 100)."""
        out = super().eval_metrics(batch, generator)
        k = min(self.config.timesteps, 100)
        out["elbo"] = -ddpm_vlb(self, batch["x"], generator, n_timesteps=k).float()
        return out


@dataclass(frozen=True)
class DDIMConfig(DDPMConfig):
    sampler: str = "ddim"  # DDIM's deterministic sampler (eta = 0)
    sample_steps: int = bounded(50, ge=0)  # DDIM steps, evenly spaced over the T training steps


@register_model("ddim")
class DDIM(DDPM):
    """DDIM (arXiv:2010.02502): a DDPM trained as usual, sampled with 50 deterministic steps."""

    config_class = DDIMConfig
    config: DDIMConfig
