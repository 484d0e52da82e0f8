"""DDPM: Denoising Diffusion Probabilistic Models (Ho, Jain & Abbeel, arXiv:2006.11239).

genzoo writes every diffusion model as a denoiser ``D(x, sigma) -> x0_hat`` on the unscaled
variable ``x = x0 + sigma * eps`` (EDM convention, arXiv:2206.00364). DDPM is the
variance-preserving choice: the network sees the scaled input ``x_t = x / sqrt(1 + sigma^2)``
(= sqrt(abar_t) x0 + sqrt(1 - abar_t) eps), the timestep ``t`` of ``sigma`` in the discrete
schedule, and predicts ``eps``:

    D(x, sigma) = x - sigma * eps_theta(x / sqrt(1 + sigma^2), t(sigma))

trained with the "simple" loss ``E_t,eps |eps - eps_theta(x_t, t)|^2`` (Eq. 14) over t uniform in
{1..T}. Sampling runs any genzoo sampler on the descending sigmas of the schedule; the default is
DDPM's own ancestral sampler (Algorithm 2) over all T steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from genzoo.core.config import Config
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, GenerativeModel, LossOutput
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand, randn
from genzoo.data.base import DataInfo
from genzoo.diffusion.parametrization import x0_from_eps
from genzoo.diffusion.samplers import run_sampler
from genzoo.diffusion.schedules import (
    cosine_beta_table,
    discrete_schedule,
    linear_beta_table,
    sigma_to_t,
)
from genzoo.nn.unet import NoiseMLP, UNet


@dataclass(frozen=True)
class DDPMConfig(Config):
    schedule: Literal["linear", "cosine"] = (
        "linear"  # beta schedule (Ho et al. / Nichol & Dhariwal)
    )
    timesteps: int = 1000  # T, number of discrete noise levels
    beta_start: float = 1e-4  # linear schedule: beta_1
    beta_end: float = 0.02  # linear schedule: beta_T
    arch: Literal["auto", "unet", "mlp"] = "auto"  # auto: U-Net for images, MLP for points
    channels: int = 32  # U-Net base channels (small: fits 8x8 digits on a CPU; 128 for CIFAR-10)
    channel_mult: tuple[int, ...] = (1, 2)  # U-Net channel multiplier per resolution level
    num_res_blocks: int = 1  # U-Net residual blocks per level
    attn_resolutions: tuple[int, ...] = ()  # resolutions with self-attention, e.g. (16,)
    dropout: float = 0.0  # dropout inside residual blocks
    hidden: tuple[int, ...] = (256, 256, 256)  # MLP widths for points
    class_conditional: bool = False  # condition on class labels (label dropout for CFG)
    label_dropout: float = 0.1  # probability of dropping the label when class-conditional
    clip_denoised: bool = True  # clamp D(x, sigma) to the data range when sampling images (DDPM)
    sampler: str = "ancestral"  # default sampler (see `genzoo list samplers`)
    sample_steps: int = 0  # default number of sampling steps (0: all T steps)

    def validate(self) -> None:
        if self.timesteps < 2:
            raise ConfigError(f"timesteps = {self.timesteps} must be at least 2.")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ConfigError("beta_start and beta_end must satisfy 0 < beta_start < beta_end < 1.")
        if self.sample_steps < 0 or self.sample_steps > self.timesteps:
            raise ConfigError(f"sample_steps = {self.sample_steps} must be in 0..{self.timesteps}.")


@register_model("ddpm")
class DDPM(GenerativeModel):
    """DDPM (arXiv:2006.11239): eps-prediction, linear or cosine betas, ancestral sampling."""

    family = "diffusion"
    likelihood = "bound"
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
        n_classes = info.n_classes if c.class_conditional else 0
        arch = c.arch if c.arch != "auto" else ("unet" if info.kind == "images" else "mlp")
        if arch == "unet":
            if info.kind != "images":
                raise ConfigError(
                    f"arch = 'unet' needs image data, but {info.name!r} holds points."
                )
            self.net: torch.nn.Module = UNet(
                in_channels=info.shape[0],
                resolution=info.shape[-1],
                channels=c.channels,
                channel_mult=c.channel_mult,
                num_res_blocks=c.num_res_blocks,
                attn_resolutions=c.attn_resolutions,
                dropout=c.dropout,
                n_classes=n_classes,
            )
        else:
            self.net = NoiseMLP(info.dim, c.hidden, n_classes=n_classes)
        self.arch = arch

    # --- the denoiser -------------------------------------------------------------------------
    def eps(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        """eps_theta at the unscaled ``x = x0 + sigma eps``, for per-example sigma (B,)."""
        s = sigma.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)
        x_t = x / (1 + s**2).sqrt()  # x_t = sqrt(abar) x  (Eq. 4 in the unscaled variable)
        t = sigma_to_t(sigma, self.sigma_table)
        if self.arch == "mlp":
            return self.net(x_t.reshape(x.shape[0], -1), t, cond).reshape(x.shape)  # (B, D)
        return self.net(x_t, t, cond)

    def denoise(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        """``D(x, sigma) = x - sigma * eps_theta``: the one diffusion currency."""
        return x0_from_eps(x, self.eps(x, sigma, cond), sigma)

    def sampling_denoiser(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        """The denoiser used for sampling: ``D`` clamped to the image range, as DDPM's sampler
        clips its x0 estimate (``clip_denoised`` in the reference code)."""
        x0 = self.denoise(x, sigma, cond)
        if self.config.clip_denoised and self.info.kind == "images":
            x0 = x0.clamp(*self.info.value_range)
        return x0

    # --- training -------------------------------------------------------------------------------
    def per_example_loss(
        self, x0: Tensor, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        b, dev = x0.shape[0], x0.device
        t_count = self.config.timesteps
        t = (rand((b,), generator=generator, device=dev) * t_count).long().clamp(max=t_count - 1)
        sigma = self.sigma_table[t]  # t ~ U{1..T}
        eps = randn(x0.shape, generator=generator, device=dev)
        x = x0 + sigma.reshape(-1, *([1] * (x0.ndim - 1))) * eps  # x = x0 + sigma eps
        cond = None
        if self.config.class_conditional and y is not None:
            drop = rand((b,), generator=generator, device=dev) < self.config.label_dropout
            cond = torch.where(drop, torch.full_like(y, self.info.n_classes), y)
        err = (self.eps(x, sigma, cond) - eps) ** 2  # Eq. (14), L_simple
        return err.reshape(b, -1).mean(1)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        per = self.per_example_loss(batch["x"], batch.get("y"))
        loss = per.mean()
        return LossOutput(loss, {"loss": loss.detach()})

    def eval_metrics(
        self, x: Tensor, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        return {"loss": self.per_example_loss(x, y, generator)}

    # --- sampling -------------------------------------------------------------------------------
    def sampling_sigmas(self, steps: int | None = None) -> Tensor:
        steps = steps or self.config.sample_steps or self.config.timesteps
        if not 1 <= steps <= self.config.timesteps:
            raise ConfigError(f"steps = {steps} must be between 1 and {self.config.timesteps}.")
        return discrete_schedule(self.sigma_table.cpu().double(), steps)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        **options: Any,
    ) -> Tensor:
        """Draw ``n`` samples in model space with any genzoo sampler (default: DDPM ancestral)."""
        sigmas = self.sampling_sigmas(steps)
        x = randn((n, *self.info.shape), generator=generator, device=self.device)
        x = x * (1 + sigmas[0] ** 2).sqrt()  # x_T ~ N(0, I) in the scaled variable
        return run_sampler(
            sampler or self.config.sampler,
            self.sampling_denoiser,
            x,
            sigmas,
            cond=cond,
            generator=generator,
            **options,
        )
