"""Variational autoencoder (VAE) and beta-VAE, with the ELBO and the IWAE bound.

Equation numbers refer to Kingma & Welling (arXiv:1312.6114) unless marked IWAE (Burda et al.,
arXiv:1509.00519).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.options import option
from genzoo.core.protocol import Batch, LatentSpace, LikelihoodBound, LossOutput, Samples
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand, randn
from genzoo.data.base import DataInfo, levels_to_model, model_to_levels
from genzoo.models.autoencoders.base import (
    EncoderDecoderConfig,
    EncoderDecoderModel,
    check_sample_args,
    clip_to_data,
)

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class VAEConfig(EncoderDecoderConfig):
    """Configuration of :class:`VAE` (beta-VAE when ``beta != 1``); ``latent_dim`` is the
    dimension K of the latent ``z ~ N(0, I_K)``, the networks as in
    :class:`~genzoo.models.autoencoders.base.EncoderDecoderConfig`."""

    likelihood: Literal["gaussian", "bernoulli"] = "gaussian"  # p(x|z); bernoulli binarizes x
    beta: float = bounded(1.0, ge=0.0)  # weight of the KL term in the training loss (beta-VAE);
    # bounds use 1
    obs_scale: Literal["per_dim", "global", "fixed"] = "per_dim"  # gaussian sigma: learned per
    # dimension, one learned scalar, or fixed at exp(init_log_scale)
    init_log_scale: float = 0.0  # initial (or fixed) log sigma of the gaussian decoder
    min_log_scale: float = -7.0  # soft floor on log sigma, keeps the density bounded
    kl_warmup: int = bounded(0, ge=0)  # KL warm-up: training steps over which the KL weight rises
    # linearly from 0 to beta (0: off)
    free_bits: float = bounded(0.0, ge=0.0)  # free bits: a floor in nats on each latent
    # dimension's batch-mean KL in the training loss (0: off)

    def validate(self) -> None:
        super().validate()
        if self.obs_scale != "fixed" and not self.init_log_scale > self.min_log_scale:
            raise ConfigError(
                f"init_log_scale = {self.init_log_scale} must be above "
                f"min_log_scale = {self.min_log_scale}."
            )


def register_log_scale(module: nn.Module, config: Any, shape: tuple[int, ...]) -> None:
    """Give ``module`` the raw log sigma of a Gaussian p(x|z) as ``log_scale_raw``: a buffer for
    ``obs_scale = "fixed"``, else a parameter (one per dimension for ``"per_dim"``), started so
    that the floored log sigma is exactly ``init_log_scale``."""
    scale_shape = shape if config.obs_scale == "per_dim" else ()
    if config.obs_scale == "fixed":
        init = torch.full(scale_shape, float(config.init_log_scale))
        module.register_buffer("log_scale_raw", init)
    else:
        # softplus^-1 so that the floored log sigma starts exactly at init_log_scale
        gap = config.init_log_scale - config.min_log_scale
        raw = config.min_log_scale + gap + math.log(-math.expm1(-gap))
        module.log_scale_raw = nn.Parameter(torch.full(scale_shape, raw))


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, diag exp(logvar)) || N(0, I))`` per example in nats: ``(B, K) -> (B,)``.

    The closed form of Kingma & Welling, Appendix B (the first term of their Eq. (10), negated).
    """
    return gaussian_kl_per_dim(mu, logvar).sum(-1)  # Eq. (10)


def gaussian_kl_per_dim(mu: Tensor, logvar: Tensor) -> Tensor:
    """The KL of :func:`gaussian_kl` for each latent dimension: ``(B, K) -> (B, K)``."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)  # Eq. (10), one term per dimension


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """``log N(z; 0, I)`` summed over the last dimension: ``(..., K) -> (...)``."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


class GaussianDecoder:
    """``p(x|z) = N(x; out, sigma^2)``: the decoder output ``out`` is the mean in model space;
    ``log sigma`` (per dimension or one scalar) is softly floored at ``min_log_scale``. A density
    on [-1, 1]^D of dequantized data: bits/dim with ``levels = info.levels``."""

    def __init__(self, config: VAEConfig, info: DataInfo, raw: Callable[[], Tensor]) -> None:
        self.config = config
        self.bpd_levels = info.levels
        self._raw = raw  # the model's log_scale_raw (a bound method, so copies follow the copy)

    def log_scale(self) -> Tensor:
        """``log sigma``: shape ``info.shape`` (per_dim) or ``()``."""
        raw = self._raw()
        if self.config.obs_scale == "fixed":
            return raw
        m = self.config.min_log_scale
        return m + F.softplus(raw - m)  # smooth floor at min_log_scale

    def prepare(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x -> (target, encoder input)``: both ``x``."""
        return x, x

    def mean(self, out: Tensor) -> Tensor:
        return out

    def log_prob(self, out: Tensor, target: Tensor) -> Tensor:
        """``log N(target; out, sigma^2)`` per value."""
        log_s = self.log_scale()
        return -0.5 * ((target - out) * torch.exp(-log_s)).pow(2) - log_s - 0.5 * LOG_2PI

    def draw(self, out: Tensor, generator: torch.Generator | None) -> Tensor:
        """``out + sigma * eps``, ``eps ~ N(0, I)``."""
        eps = randn(out.shape, generator=generator, device=out.device)
        return out + torch.exp(self.log_scale()) * eps


class BernoulliDecoder:
    """``p(b|z) = Bernoulli(b; sigmoid(out))`` of the binarized data ``b``: the decoder output
    ``out`` is the logits; a discrete likelihood (bits/dim with ``levels = None``)."""

    bpd_levels: int | None = None

    def __init__(self, config: VAEConfig, info: DataInfo) -> None:
        self.levels = info.levels

    def log_scale(self) -> Tensor:
        raise ConfigError("obs_log_scale exists only for likelihood = 'gaussian'.")

    def prepare(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x -> (target in {0, 1}, encoder input in {-1, 1})``: the bin centre of x's level is
        > 0 (the same for any dequantization), or x > 0 for data without levels."""
        if self.levels is not None:
            x = levels_to_model(model_to_levels(x, self.levels), self.levels)
        b = (x > 0).float()
        return b, 2.0 * b - 1.0

    def mean(self, out: Tensor) -> Tensor:
        """``2 p - 1`` in model space."""
        return 2.0 * torch.sigmoid(out) - 1.0

    def log_prob(self, out: Tensor, target: Tensor) -> Tensor:
        return target * out - F.softplus(out)  # log Bernoulli(target; sigmoid(out)), exact

    def draw(self, out: Tensor, generator: torch.Generator | None) -> Tensor:
        """``+-1``: ``+1`` with probability ``sigmoid(out)``."""
        p = torch.sigmoid(out)
        u = rand(p.shape, generator=generator, device=p.device)
        return 2.0 * (u < p).float() - 1.0


@register_model("vae")
class VAE(EncoderDecoderModel, Samples, LikelihoodBound, LatentSpace):
    """Variational autoencoder with a diagonal-Gaussian encoder and a N(0, I) prior.

    Kingma & Welling, "Auto-Encoding Variational Bayes", arXiv:1312.6114: trained on the negative
    ELBO with the reparameterization trick and the analytic KL (their Eq. (10)). ``beta`` weights
    the KL term of the training loss as in beta-VAE (Higgins et al., "beta-VAE: Learning Basic
    Visual Concepts with a Constrained Variational Framework", ICLR 2017). Evaluation reports the
    ELBO (always with beta = 1) and the importance-weighted bound of Burda et al., "Importance
    Weighted Autoencoders", arXiv:1509.00519 (IWAE Eq. (8)); both are lower bounds on log p(x) in
    nats per example, with ``ELBO = L_1 <= L_k <= L_{k+1} <= log p(x)``.

    Against posterior collapse, two changes to the training loss only (the bounds are unchanged):

    - KL warm-up (``kl_warmup = N``): the KL weight is ``beta * min(1, t / N)`` at training step
      ``t`` (0, 1, ...), rising linearly from 0 (Sønderby et al., "Ladder Variational
      Autoencoders", arXiv:1602.02282, Sec. 2.3; Bowman et al., arXiv:1511.06349, Sec. 3.1). The
      model counts its training steps itself (a buffer ``kl_step``, saved in checkpoints, so a
      resumed run continues the schedule): one per ``loss`` call in training mode with gradients.
    - Free bits (``free_bits = lambda``): the KL term becomes ``sum_j max(lambda, E_batch
      KL(q(z_j|x) || p(z_j)))``, a floor per latent dimension below which the KL is not pushed
      down (Kingma et al., "Improved Variational Inference with Inverse Autoregressive Flow",
      arXiv:1606.04934, Appendix C.8, with one group per latent dimension).

    Likelihoods (:class:`GaussianDecoder`, :class:`BernoulliDecoder`, chosen once as ``obs``):

    - ``gaussian``: ``p(x|z) = N(x; likelihood_params(z), sigma^2)`` with a learned
      (per-dimension or global) or fixed ``log sigma``, softly floored at ``min_log_scale``. On
      uniformly dequantized images this is a proper density on [-1, 1]^D and
      :func:`genzoo.metrics.bits_per_dim` with ``levels = info.levels`` converts it
      (``bpd_levels``).
    - ``bernoulli``: the model binarizes its input deterministically (the bin centre of x's level
      is > 0, i.e. x > 0 for points and bin centres) and ``log p`` is the exact discrete Bernoulli
      log-likelihood of the *binarized* data: its bits/dim use ``levels=None`` (``bpd_levels``)
      and are not comparable with bits/dim of the gray-level data.

    ``posterior(x) -> (mu, logvar)`` are the parameters of q(z|x); ``likelihood_params(z)`` the
    decoder's output (the gaussian mean in model space, or the Bernoulli logits);
    ``encode_latent(x)`` is the posterior mean and ``decode_latent(z)`` the mean of p(x|z), so
    ``forward(x) = decode_latent(encode_latent(x))`` is the reconstruction mean in model space.
    """

    latent_prior: ClassVar[Literal["gaussian", "euclidean"]] = "gaussian"
    dequantize: ClassVar[bool] = True
    config_class: ClassVar[type[Config]] = VAEConfig
    config: VAEConfig
    info: DataInfo
    obs: GaussianDecoder | BernoulliDecoder

    def __init__(self, config: VAEConfig, info: DataInfo) -> None:
        super().__init__(config, info, enc_out=2 * config.latent_dim)
        if config.kl_warmup > 0:  # training steps seen, for the KL warm-up schedule
            self.register_buffer("kl_step", torch.zeros((), dtype=torch.long))
        if config.likelihood == "bernoulli":
            self.obs = BernoulliDecoder(config, info)
            return
        self.obs = GaussianDecoder(config, info, self._log_scale_raw)
        register_log_scale(self, config, self.shape)

    def _log_scale_raw(self) -> Tensor:
        return self.log_scale_raw

    # ----------------------------------------------------------------------------------------------
    # networks

    @property
    def bpd_levels(self) -> int | None:
        """The ``levels`` argument of ``bits_per_dim`` for this model's bounds (None: discrete)."""
        return self.obs.bpd_levels

    def obs_log_scale(self) -> Tensor:
        """``log sigma`` of the gaussian decoder: shape ``info.shape`` (per_dim) or ``()``."""
        return self.obs.log_scale()

    def _prepare(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x -> (target, encoder input)``; Bernoulli: target in {0, 1}, input in {-1, 1}."""
        return self.obs.prepare(x.float())

    def _encode_input(self, x_in: Tensor) -> tuple[Tensor, Tensor]:
        h = self._encoder_out(x_in).float()  # (B, 2K)
        mu, logvar = h.chunk(2, dim=-1)  # (B, K) each
        return mu, logvar.clamp(-30.0, 20.0)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, *shape) -> (mu, logvar)``, each ``(B, K)``: the parameters of q(z|x)."""
        return self._encode_input(self._prepare(x)[1])

    def likelihood_params(self, z: Tensor) -> Tensor:
        """``(B, K) -> (B, *shape)``: the gaussian mean in model space, or Bernoulli logits."""
        return self._decoder_out(z)

    def encode_latent(self, x: Tensor) -> Tensor:
        """The posterior mean ``mu(x)``, ``(B, *shape) -> (B, K)``."""
        return self.posterior(x)[0]

    def decode_latent(self, z: Tensor) -> Tensor:
        """The mean of p(x|z) in model space (Bernoulli: ``2 p - 1``), ``(B, K) -> (B, *shape)``."""
        return self.obs.mean(self.likelihood_params(z))

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction mean ``E[x | z = mu(x)]`` in model space, ``(B, *shape) -> (B, *shape)``.

        Bernoulli: ``2 p - 1`` of the binarized input.
        """
        return self.decode_latent(self.encode_latent(x))

    def _log_px_given_z(self, out: Tensor, target: Tensor) -> Tensor:
        """``log p(target | z)`` per example from the decoder output: ``(N, *shape) -> (N,)``."""
        return self.obs.log_prob(out.float(), target).flatten(1).sum(1)  # (N, D) -> (N,)

    # ----------------------------------------------------------------------------------------------
    # bounds

    def _elbo_terms(self, x: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """One-sample ``(E_q log p(x|z), KL(q(z|x) || p(z)))`` per example, each ``(B,)``."""
        rec, kl_dims = self._elbo_terms_per_dim(x, generator)
        return rec, kl_dims.sum(-1)

    def _elbo_terms_per_dim(
        self, x: Tensor, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """``(E_q log p(x|z) (B,), KL per latent dimension (B, K))``, one sample of z."""
        target, x_in = self._prepare(x)
        mu, logvar = self._encode_input(x_in)
        eps = randn(mu.shape, generator=generator, device=mu.device)  # eps ~ N(0, I)
        z = mu + torch.exp(0.5 * logvar) * eps  # Eq. (10): z = mu + sigma * eps, reparameterized
        out = self.likelihood_params(z)
        rec = self._log_px_given_z(out, target)  # Eq. (10), second term with L = 1
        kl = gaussian_kl_per_dim(mu, logvar)  # Eq. (10), first term (analytic KL), (B, K)
        return rec, kl

    def kl_weight(self) -> float:
        """The KL weight of the next training step: ``beta * min(1, t / kl_warmup)``."""
        beta = self.config.beta
        if self.config.kl_warmup > 0:
            t = int(self.kl_step)
            beta = beta * min(1.0, t / self.config.kl_warmup)  # linear warm-up from 0
        return beta

    def elbo(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The evidence lower bound in nats per example, ``(B, *shape) -> (B,)`` (beta = 1)."""
        rec, kl = self._elbo_terms(x, generator)
        return rec - kl  # Eq. (3): L = -KL(q(z|x) || p(z)) + E_q[log p(x|z)]

    def iwae(
        self,
        x: Tensor,
        k: int,
        generator: torch.Generator | None = None,
        *,
        chunk: int | None = None,
    ) -> Tensor:
        """The k-sample importance-weighted bound ``L_k`` in nats per example: ``(B,)``.

        ``L_k = E[log (1/k) sum_i p(x, z_i) / q(z_i|x)]`` with ``z_i ~ q(z|x)`` (IWAE Eq. (8));
        ``L_1`` is the ELBO in expectation. The k samples are decoded ``chunk`` at a time (by
        default so that one decoder call sees at most ``min(4096, 2^22 / D)`` examples), so memory
        stays bounded.
        """
        if k < 1:
            raise ValueError(f"iwae needs k >= 1 samples, got {k}")
        target, x_in = self._prepare(x)
        mu, logvar = self._encode_input(x_in)  # (B, K) each
        b, dim_z = mu.shape
        std = torch.exp(0.5 * logvar)
        max_batch = max(1, min(4096, 2**22 // self.info.dim))  # examples per decoder call
        step = chunk if chunk is not None else max(1, min(k, max_batch // max(b, 1)))
        log_w = []
        for start in range(0, k, step):
            c = min(step, k - start)
            eps = randn((c, b, dim_z), generator=generator, device=mu.device)  # (c, B, K)
            z = mu + std * eps  # (c, B, K), z ~ q(z|x)
            out = self.likelihood_params(z.reshape(c * b, dim_z))  # (c * B, *shape)
            tgt = target.unsqueeze(0).expand(c, *target.shape).reshape(c * b, *self.shape)
            log_px = self._log_px_given_z(out, tgt).view(c, b)  # (c * B,) -> (c, B)
            log_pz = standard_normal_log_prob(z)  # (c, B)
            log_qz = -0.5 * (eps.pow(2) + logvar + LOG_2PI).sum(-1)  # log q(z|x), (c, B)
            log_w.append(log_px + log_pz - log_qz)  # log p(x, z_i) / q(z_i|x)
        log_w_all = torch.cat(log_w, dim=0)  # (k, B)
        return torch.logsumexp(log_w_all, dim=0) - math.log(k)  # IWAE Eq. (8)

    # ----------------------------------------------------------------------------------------------
    # protocol

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """Negative (beta-weighted) ELBO, averaged over the batch:
        ``mean(-E_q log p(x|z)) + w * KL_term`` with ``w`` = :meth:`kl_weight` and ``KL_term`` =
        ``mean(KL)``, or ``sum_j max(free_bits, mean(KL_j))`` with free bits.

        Logs (nats per example, batch means): ``elbo`` (beta = 1), ``rec`` = -E_q log p(x|z),
        ``kl`` = KL(q(z|x) || p(z)); with warm-up also ``kl_weight``, with free bits also
        ``kl_term`` (the floored KL the loss uses).
        """
        rec, kl_dims = self._elbo_terms_per_dim(batch["x"], None)
        kl = kl_dims.sum(-1)  # (B,)
        weight = self.kl_weight()
        if self.config.free_bits > 0:
            # IAF paper, Appendix C.8: sum_j max(lambda, E_batch KL_j); no gradient below lambda
            kl_term = kl_dims.mean(0).clamp_min(self.config.free_bits).sum()
        else:
            kl_term = kl.mean()
        loss = (-rec).mean() + weight * kl_term  # the one reduction over the batch
        logs: dict[str, Tensor | float] = {
            "elbo": (rec - kl).mean().detach(),
            "rec": (-rec).mean().detach(),
            "kl": kl.mean().detach(),
        }
        if self.config.kl_warmup > 0:
            logs["kl_weight"] = weight
            if self.training and torch.is_grad_enabled():
                self.kl_step += 1  # one training step seen
        if self.config.free_bits > 0:
            logs["kl_term"] = kl_term.detach()
        return LossOutput(loss, logs)

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """``{"elbo", "iwae64", "loss"}`` per example in nats (``loss`` = -elbo).

        Convert with ``bits_per_dim(-value, info.dim, model.bpd_levels)``.
        """
        x = batch["x"]
        elbo = self.elbo(x, generator=generator)
        iwae = self.iwae(x, 64, generator=generator)
        return {"elbo": elbo, "iwae64": iwae, "loss": -elbo}

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` samples ``(n, *info.shape)`` in model space, decoded from ``z ~ N(0, I)``.

        Options: ``noise`` (default False) returns the mean of p(x|z) (gaussian mean, or
        ``2 p - 1`` for Bernoulli); True draws from p(x|z) (adds ``sigma * eps``, or returns +-1).
        Images are clipped to the dataset's value range.
        """
        check_sample_args(self.name, cond, options, ("noise",))
        noise = option(options, "noise", False)
        z = randn((n, self.config.latent_dim), generator=generator, device=self.device)
        out = self.likelihood_params(z).float()  # (n, *shape)
        x = self.obs.draw(out, generator) if noise else self.obs.mean(out)
        return clip_to_data(x, self.info)
