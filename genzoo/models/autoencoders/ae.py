"""Deterministic autoencoder (AE) and denoising autoencoder (DAE).

The AE minimises the squared reconstruction error; with a linear encoder and decoder its optimum
spans the principal subspace of the data (Baldi & Hornik, "Neural networks and principal component
analysis", 1989). The DAE reconstructs the clean input from a corrupted one (Vincent et al.,
"Extracting and composing robust features with denoising autoencoders", ICML 2008; "Stacked
denoising autoencoders", JMLR 11, 2010, Sec. 4.2 for the three corruptions).

Neither has a prior over its codes. To sample, genzoo fits one after the fact (the "ex-post
density estimation" of Ghosh et al., "From variational to deterministic autoencoders",
arXiv:1903.12436, Sec. 4): a full-covariance Gaussian over the codes, kept as a moving average of
the training batches' codes, from which :meth:`AE.sample` draws and decodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.options import option
from genzoo.core.protocol import Batch, LatentSpace, LossOutput, Samples
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand, randn
from genzoo.data.base import DataInfo
from genzoo.models.autoencoders.base import (
    EncoderDecoderConfig,
    EncoderDecoderModel,
    check_sample_args,
    clip_to_data,
    per_example_mse,
)


@dataclass(frozen=True)
class AEConfig(EncoderDecoderConfig):
    """Configuration of :class:`AE` (``latent_dim``, ``arch``, ``hidden``, ``channels``: see
    :class:`~genzoo.models.autoencoders.base.EncoderDecoderConfig`; ``hidden = ()`` makes a
    linear autoencoder)."""

    prior_momentum: float = bounded(0.01, gt=0.0, le=1.0)  # weight of each training batch in the
    # moving-average Gaussian over the codes that sample() draws from


@dataclass(frozen=True)
class DAEConfig(AEConfig):
    """Configuration of :class:`DAE`: an :class:`AEConfig` plus the corruption."""

    noise: Literal["gaussian", "masking", "salt_pepper"] = "gaussian"  # corruption of the input
    noise_level: float = bounded(0.25, ge=0.0)  # gaussian: std in model units; masking /
    # salt_pepper: the probability that each value is corrupted

    def validate(self) -> None:
        super().validate()
        if self.noise != "gaussian" and self.noise_level > 1:
            raise ConfigError(
                f"noise_level = {self.noise_level} is a probability for noise = {self.noise!r}; "
                "it must be in [0, 1]."
            )


@register_model("ae")
class AE(EncoderDecoderModel, Samples, LatentSpace):
    """Deterministic autoencoder ``x -> z = encode_latent(x) -> decode_latent(z)`` trained on the
    mean squared error, with a Gaussian fitted over its codes for sampling (see the module
    docstring).

    ``encode_latent``: ``(B, *shape) -> (B, K)``; ``decode_latent``: ``(B, K) -> (B, *shape)``;
    ``forward(x)`` is the reconstruction. Subclasses change the input the encoder sees through one
    hook, :meth:`corrupt`.
    """

    latent_prior: ClassVar[Literal["gaussian", "euclidean"]] = "euclidean"
    config_class: ClassVar[type[Config]] = AEConfig
    config: AEConfig
    info: DataInfo

    def __init__(self, config: AEConfig, info: DataInfo) -> None:
        k = config.latent_dim
        super().__init__(config, info, enc_out=k)
        self.register_buffer("code_mean", torch.zeros(k))  # moving-average Gaussian over codes
        self.register_buffer("code_cov", torch.eye(k))

    # ----------------------------------------------------------------------------------------------
    # networks

    def corrupt(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The input the encoder sees during training: ``x`` itself for the plain AE."""
        return x

    def encode_latent(self, x: Tensor) -> Tensor:
        """``(B, *shape) -> z (B, K)``."""
        return self._encoder_out(x)

    def decode_latent(self, z: Tensor) -> Tensor:
        """``z (B, K) -> (B, *shape)`` in model space."""
        return self._decoder_out(z)

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction ``decode_latent(encode_latent(x))``, same shape as ``x``."""
        return self.decode_latent(self.encode_latent(x))

    # ----------------------------------------------------------------------------------------------
    # protocol

    def squared_error(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Per-example mean squared error of reconstructing clean ``x`` from ``corrupt(x)``:
        ``(B, *shape) -> (B,)`` (the plain reconstruction error for the AE)."""
        x = x.float()
        z = self.encode_latent(self.corrupt(x, generator))
        err = per_example_mse(self.decode_latent(z), x)
        if self.training and torch.is_grad_enabled():
            self._update_code_prior(z.detach().float())
        return err

    @torch.no_grad()
    def _update_code_prior(self, z: Tensor) -> None:
        """Moving averages of the codes' mean and covariance: ``m <- (1 - a) m + a mean(z)``."""
        a = self.config.prior_momentum
        mean = z.mean(0)
        centred = z - mean
        cov = centred.T @ centred / max(z.shape[0] - 1, 1)  # (K, K)
        self.code_mean.lerp_(mean, a)
        self.code_cov.lerp_(cov, a)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """Mean squared error per dimension, averaged over the batch; logs ``mse``."""
        loss = self.squared_error(batch["x"]).mean()  # the one reduction over the batch
        return LossOutput(loss, {"mse": loss.detach()})

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """``{"loss", "mse"}`` per example: the training objective (for the DAE, with its
        corruption) and the plain reconstruction error of clean inputs."""
        x = batch["x"]
        rec = per_example_mse(self(x.float()), x)
        return {"loss": self.squared_error(x, generator), "mse": rec}

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` decodes of ``z ~ N(code_mean, code_cov)``, the Gaussian fitted to the training
        codes. Option ``temperature`` scales the deviation from the mean (default 1). Images are
        clipped to the data range."""
        check_sample_args(self.name, cond, options, ("temperature",))
        temperature = option(options, "temperature", 1.0, ge=0)
        k = self.config.latent_dim
        cov = self.code_cov.double()
        jitter = 1e-6 * (cov.diagonal().mean().item() + 1e-12)
        chol = torch.linalg.cholesky(
            cov + jitter * torch.eye(k, dtype=cov.dtype, device=cov.device)
        )
        eps = randn((n, k), generator=generator, device=self.device)
        z = self.code_mean + temperature * (eps.double() @ chol.T).float()  # (n, K)
        return clip_to_data(self.decode_latent(z).float(), self.info)


@register_model("dae")
class DAE(AE):
    """Denoising autoencoder: reconstruct the clean ``x`` from ``corrupt(x)`` (Vincent et al. 2008,
    2010). Corruptions (JMLR 2010, Sec. 4.2), each value independently:

    - ``gaussian``: ``x + s eps``, ``eps ~ N(0, 1)``, ``s = noise_level`` (additive isotropic);
    - ``masking``: with probability ``noise_level`` a value is set to "off": the lower end of the
      data range for images (black), 0 for points;
    - ``salt_pepper``: with probability ``noise_level`` a value is set to the lower or the upper end
      of the data range, each with probability 1/2.

    The corruption is applied during training and in the ``loss`` of ``eval_metrics``;
    ``forward``, ``encode_latent`` and interpolation see clean inputs.
    """

    config_class: ClassVar[type[Config]] = DAEConfig
    config: DAEConfig

    def corrupt(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        cfg = self.config
        if cfg.noise_level == 0:
            return x
        if cfg.noise == "gaussian":
            return x + cfg.noise_level * randn(x.shape, generator=generator, device=x.device)
        hit = rand(x.shape, generator=generator, device=x.device) < cfg.noise_level
        lo, hi = self.info.value_range
        if cfg.noise == "masking":
            off = lo if self.info.kind == "images" else 0.0
            return torch.where(hit, torch.full_like(x, off), x)
        coin = rand(x.shape, generator=generator, device=x.device) < 0.5  # salt or pepper
        extreme = torch.where(coin, torch.full_like(x, hi), torch.full_like(x, lo))
        return torch.where(hit, extreme, x)
