"""Latent diffusion (Rombach, Blattmann, Lorenz, Esser & Ommer, arXiv:2112.10752).

A frozen, pretrained autoencoder maps images to latents ``z = latent_scale * E(x)`` (Sec. 3.1;
App. G rescales latents to about unit variance); a diffusion model is trained on the latents
(Sec. 3.2, Eq. 2, with the denoising loss of the EDM parametrisation, arXiv:2206.00364), and
samples are decoded by the autoencoder's decoder. ``E`` is the model's ``encode_latent``: a VAE's
posterior mean (a vector: the denoiser is an MLP) or a VQ-VAE's encoder output before
quantization (a spatial grid: the denoiser is a U-Net; the decoder quantizes, as the paper's
VQ-regularised autoencoders do).

The autoencoder comes from a trained genzoo run (``autoencoder_run``; any model with
``encode_latent`` and ``decode_latent``: ``vae``, ``vqvae``, ``ae``, ...). It is loaded without
the trainer (:func:`load_autoencoder`: safe YAML config + safetensors weights of the run's latest
checkpoint) and kept as a frozen submodule, so an LDM checkpoint holds its weights as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, GenerativeModel, LossOutput
from genzoo.core.registry import register_model
from genzoo.core.seeding import randn
from genzoo.data.base import DataInfo
from genzoo.diffusion.samplers import run_sampler
from genzoo.models.diffusion.edm import EDM, EDMConfig


@dataclass(frozen=True)
class LatentDiffusionConfig(EDMConfig):
    autoencoder_run: str = ""  # run directory of the trained autoencoder (e.g. a vae run)
    autoencoder_ema: bool = True  # use the autoencoder run's EMA weights when it has them
    latent_scale: float = 1.0  # z = latent_scale * encode_latent(x) (aim for unit-std latents)
    arch: Literal["auto", "unet", "dit", "mlp"] = "auto"  # auto: MLP over vector latents, U-Net
    # over spatial ones
    sigma_data: float = 1.0  # std of the scaled latents
    clip_denoised: bool = False  # latents are unbounded: no clamping of D
    sampler: str = "heun"  # default sampler (see `genzoo list samplers`)
    sample_steps: int = 18  # default number of sampling steps

    def validate(self) -> None:
        super().validate()
        if self.latent_scale <= 0:
            raise ConfigError(f"latent_scale = {self.latent_scale} must be positive.")


def load_autoencoder(run: str | Path, *, ema: bool = True) -> tuple[GenerativeModel, DataInfo]:
    """The trained autoencoder of ``run`` (safe formats only) and its data description."""
    from genzoo.models.runs import load_model

    model, _ = load_model(run, ema=ema)
    return model, model.info


@register_model("ldm")
class LatentDiffusion(EDM):
    """Latent diffusion (arXiv:2112.10752): EDM on a frozen autoencoder's latents.

    ``autoencoder`` (a module with ``encode``/``decode``) replaces ``config.autoencoder_run``.
    """

    config_class = LatentDiffusionConfig
    config: LatentDiffusionConfig
    dequantize: ClassVar[bool] = False
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "ema_decay": 0.999, "batch_size": 128}

    def __init__(
        self, config: LatentDiffusionConfig, info: DataInfo, autoencoder: nn.Module | None = None
    ) -> None:
        if autoencoder is None:
            if not config.autoencoder_run:
                raise ConfigError("ldm needs autoencoder_run=<run directory of a trained vae>.")
            autoencoder, ae_info = load_autoencoder(
                config.autoencoder_run, ema=config.autoencoder_ema
            )
            if tuple(ae_info.shape) != tuple(info.shape):
                raise ConfigError(
                    f"The autoencoder was trained on shape {ae_info.shape}, the data has "
                    f"{info.shape}."
                )
        if not hasattr(autoencoder, "encode_latent"):
            raise ConfigError("ldm needs an autoencoder with a latent space (vae, vqvae, ae, ...).")
        with torch.no_grad():
            z = autoencoder.encode_latent(torch.zeros(1, *info.shape))  # (1, K) or (1, d, h, w)
        # vector latents (vae) -> the MLP denoiser; spatial latents (conv vqvae) -> the U-Net
        kind = "images" if z.dim() == 4 else "points"
        latent_info = DataInfo(
            f"latent:{info.name}", kind, tuple(z.shape[1:]), value_range=(-1e9, 1e9)
        )
        super().__init__(config, latent_info)
        self.info = info  # the data's info; the denoiser works on latent_info
        self.latent_info = latent_info
        self.autoencoder = autoencoder.eval().requires_grad_(False)  # frozen

    def train(self, mode: bool = True) -> LatentDiffusion:
        super().train(mode)
        self.autoencoder.eval()  # the frozen autoencoder always runs in eval mode
        return self

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Images (B, *shape) -> scaled latents: ``latent_scale * encode_latent(x)`` (a VAE's
        posterior mean (B, K); a VQ-VAE's continuous encoder output before quantization
        (B, d, h, w), as in the paper's VQ-regularised autoencoders, Sec. 3.1)."""
        return self.config.latent_scale * self.autoencoder.encode_latent(x).float()

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        """Scaled latents -> images in model space (``decode_latent``: the decoder's mean; a
        VQ-VAE quantizes first)."""
        x = self.autoencoder.decode_latent(z / self.config.latent_scale)
        return x.clamp(*self.info.value_range) if self.info.kind == "images" else x

    def sampling_denoiser(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.denoise(x, sigma, cond)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        per = self.per_example_loss(self.encode(batch["x"]), batch.get("y"))
        loss = per.mean()
        return LossOutput(loss, {"loss": loss.detach()})

    def eval_metrics(
        self, x: Tensor, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        return {"loss": self.per_example_loss(self.encode(x), y, generator)}

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        guidance: float = 1.0,
        sigmas: Tensor | None = None,
        **options: Any,
    ) -> Tensor:
        """Sample latents with any genzoo sampler, then decode them to images."""
        if cond is not None:
            raise ConfigError("ldm is unconditional; it takes no class.")
        sig = sigmas if sigmas is not None else self.sampling_sigmas(steps)
        z = randn((n, *self.latent_info.shape), generator=generator, device=self.device)
        z = z * self.prior_std(float(sig[0]))
        z = run_sampler(
            sampler or self.config.sampler,
            self.sampling_denoiser,
            z,
            sig,
            generator=generator,
            **options,
        )
        return self.decode(z)
