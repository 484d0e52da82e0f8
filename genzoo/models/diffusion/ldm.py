"""Latent diffusion (Rombach, Blattmann, Lorenz, Esser & Ommer, arXiv:2112.10752).

A frozen, pretrained autoencoder maps images to latents ``z = latent_scale * E(x)`` (Sec. 3.1;
App. G rescales latents to about unit variance); a diffusion model is trained on the latents
(Sec. 3.2, Eq. 2, with the denoising loss of the EDM parametrisation, arXiv:2206.00364), and
samples are decoded by the autoencoder's decoder. ``E`` is the model's ``encode_latent``: a VAE's
posterior mean (a vector: the denoiser is an MLP) or a VQ-VAE's encoder output before
quantization (a spatial grid: the denoiser is a U-Net; the decoder quantizes, as the paper's
VQ-regularised autoencoders do).

The autoencoder comes from a trained genzoo run (``autoencoder_run``; any model with a latent
space: ``vae``, ``vqvae``, ``ae``, ...): the runs layer loads it (:class:`BuiltOnRuns`) and passes
it as ``autoencoder``; it is kept as a frozen submodule, so an LDM checkpoint holds its weights as
well. The LDM's own latent space is the scaled autoencoder latent ``z`` (``encode_latent`` /
``decode_latent``). Sampling is the template of :class:`DiffusionModel` with the noise drawn in
latent space and :meth:`to_data` decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genzoo.core.config import bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import (
    Batch,
    BuiltOnRuns,
    GenerativeModel,
    LatentSpace,
    LossOutput,
    SubRun,
)
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.models.diffusion.backbones import Arch
from genzoo.models.diffusion.edm import EDM, EDMConfig


@dataclass(frozen=True)
class LatentDiffusionConfig(EDMConfig):
    autoencoder_run: str = ""  # run directory of the trained autoencoder (e.g. a vae run)
    autoencoder_ema: bool = True  # use the autoencoder run's EMA weights when it has them
    latent_scale: float = bounded(1.0, gt=0)  # z = latent_scale * encode_latent(x) (aim for
    # unit-std latents)
    arch: Arch = "auto"  # auto: MLP over vector latents, U-Net over spatial ones
    sigma_data: float = bounded(1.0, gt=0)  # std of the scaled latents
    clip_denoised: bool = False  # latents are unbounded: no clamping of D
    sampler: str = "heun"  # default sampler (see `genzoo list samplers`)
    sample_steps: int = bounded(18, ge=0)  # default number of sampling steps


@register_model("ldm")
class LatentDiffusion(EDM, BuiltOnRuns, LatentSpace):
    """Latent diffusion (arXiv:2112.10752): EDM on a frozen autoencoder's latents.

    ``autoencoder`` is the trained autoencoder (a model with a latent space) of
    ``config.autoencoder_run``, loaded by the runs layer.
    """

    config_class = LatentDiffusionConfig
    config: LatentDiffusionConfig
    dequantize: ClassVar[bool] = False
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "ema_decay": 0.999, "batch_size": 128}
    sub_runs: ClassVar[tuple[SubRun, ...]] = (
        SubRun("autoencoder", "autoencoder_run", "autoencoder_ema", needs=(LatentSpace,)),
    )

    def __init__(
        self,
        config: LatentDiffusionConfig,
        info: DataInfo,
        autoencoder: GenerativeModel | None = None,
    ) -> None:
        if autoencoder is None:
            raise ConfigError("ldm needs autoencoder_run=<run directory of a trained vae>.")
        if not isinstance(autoencoder, LatentSpace) or not isinstance(autoencoder, nn.Module):
            raise ConfigError(
                "ldm needs an autoencoder with a latent space (vae, vqvae, ae, ...); "
                f"got a {type(autoencoder).__name__}."
            )
        if isinstance(autoencoder, GenerativeModel) and tuple(autoencoder.info.shape) != tuple(
            info.shape
        ):
            raise ConfigError(
                f"The autoencoder was trained on shape {autoencoder.info.shape}, the data has "
                f"{info.shape}."
            )
        with torch.no_grad():
            z = autoencoder.encode_latent(torch.zeros(1, *info.shape))  # (1, K) or (1, d, h, w)
        # vector latents (vae) -> the MLP denoiser; spatial latents (conv vqvae) -> the U-Net
        kind = "images" if z.dim() == 4 else "points"
        latent_info = DataInfo(  # the data's labels too: class_conditional works on latents
            f"latent:{info.name}",
            kind,
            tuple(z.shape[1:]),
            n_classes=info.n_classes,
            value_range=(-1e9, 1e9),
            class_names=info.class_names,
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
    def encode_latent(self, x: Tensor) -> Tensor:
        """Images (B, *shape) -> scaled latents: ``latent_scale * encode_latent(x)`` of the
        autoencoder (a VAE's posterior mean (B, K); a VQ-VAE's continuous encoder output before
        quantization (B, d, h, w), as in the paper's VQ-regularised autoencoders, Sec. 3.1)."""
        return self.config.latent_scale * self.autoencoder.encode_latent(x).float()

    @torch.no_grad()
    def decode_latent(self, z: Tensor) -> Tensor:
        """Scaled latents -> images in model space (the autoencoder's ``decode_latent``: the
        decoder's mean; a VQ-VAE quantizes first)."""
        x = self.autoencoder.decode_latent(z / self.config.latent_scale)
        return x.clamp(*self.info.value_range) if self.info.kind == "images" else x

    def sampling_denoiser(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.denoise(x, sigma, cond)  # latents are unbounded

    # --- the sampling template's hooks: noise in latent space, decoded to images ---
    @property
    def noise_shape(self) -> tuple[int, ...]:
        return tuple(self.latent_info.shape)

    def to_data(self, x: Tensor) -> Tensor:
        return self.decode_latent(x)

    def inpaint(self, x_known: Tensor, mask: Tensor, **kwargs: Any) -> Tensor:
        raise ConfigError(
            "ldm diffuses the autoencoder's latents, so it cannot keep known pixels; inpaint "
            "with a diffusion model of the pixels (ddpm, edm, flow-matching, ...)."
        )

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        per = self.per_example_loss(self.encode_latent(batch["x"]), batch.get("y"))
        loss = per.mean()
        return LossOutput(loss, {"loss": loss.detach()})

    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        z = self.encode_latent(batch["x"])
        return {"loss": self.per_example_loss(z, batch.get("y"), generator)}
