"""Discrete VAE (dVAE): a VAE with categorical latents trained through the Gumbel-softmax
relaxation, as the image tokenizer of DALL-E.

- Gumbel-softmax / Concrete relaxation: Jang, Gu & Poole, "Categorical Reparameterization with
  Gumbel-Softmax", arXiv:1611.01144 (Eq. 1 the Gumbel-max trick, Eq. 2 the relaxed sample, Sec. 2.2
  the straight-through estimator); Maddison, Mnih & Teh, "The Concrete Distribution",
  arXiv:1611.00712.
- dVAE: Ramesh et al., "Zero-Shot Text-to-Image Generation", arXiv:2102.12092, Sec. 2.1 and
  Appendix A: the encoder outputs logits over ``K`` codes at each position of a latent grid, the
  decoder reads the relaxed one-hot codes (through a learned codebook embedding), the prior is
  uniform over the ``K`` codes, the temperature is annealed from 1 to 1/16 during training and
  the KL weight ``beta`` may differ from 1.

The bound is the ELBO with a hard categorical sample (Eq. (3) of the VAE paper, arXiv:1312.6114,
with ``q(z|x)`` categorical per position and ``p(z)`` uniform):
``log p(x) >= E_q[log p(x|z)] - KL(q(z|x) || U)``, ``KL = sum_positions (log K - H(q))``, exactly,
no relaxation in it. ``p(x|z)`` is the Gaussian of the VAE (:class:`GaussianDecoder`), a density
of the dequantized data on [-1, 1]^D (bits/dim with ``levels = info.levels``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import (
    Batch,
    GenerativeModel,
    LatentSpace,
    LikelihoodBound,
    LossOutput,
    Samples,
)
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand
from genzoo.data.base import DataInfo
from genzoo.models.autoencoders.base import (
    DiscreteCodes,
    check_sample_args,
    clip_to_data,
    per_example_mse,
)
from genzoo.models.autoencoders.vae import GaussianDecoder, register_log_scale
from genzoo.models.autoencoders.vqvae import codec_networks
from genzoo.nn.convnets import choose_arch


def gumbel_softmax(
    logits: Tensor,
    tau: float,
    *,
    hard: bool = False,
    dim: int = -1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A relaxed one-hot sample ``softmax((logits + g) / tau)``, ``g ~ Gumbel(0, 1)`` i.i.d.
    (arXiv:1611.01144, Eq. 2), along ``dim``. ``hard``: the straight-through estimator (Sec. 2.2):
    the forward value is the one-hot of the argmax (Eq. 1, an exact categorical sample), the
    gradient that of the relaxed sample.

    By hand rather than ``torch.nn.functional.gumbel_softmax`` because that takes no generator,
    and genzoo draws every random number from an optional ``torch.Generator``.
    """
    u = rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    tiny = torch.finfo(logits.dtype).tiny
    e = -torch.log(u.clamp_min(tiny))  # Exponential(1)
    g = -torch.log(e.clamp_min(tiny))  # Gumbel(0, 1) noise
    y = ((logits + g) / tau).softmax(dim)  # Eq. (2)
    if not hard:
        return y
    one_hot = torch.zeros_like(y).scatter_(dim, y.argmax(dim, keepdim=True), 1.0)  # Eq. (1)
    return _StraightThrough.apply(one_hot, y)


class _StraightThrough(torch.autograd.Function):
    """``forward(hard, soft) = hard`` exactly, with the gradient passed to ``soft`` (the usual
    ``hard + soft - soft.detach()`` is one-hot only up to rounding)."""

    @staticmethod
    def forward(ctx: Any, hard: Tensor, soft: Tensor) -> Tensor:
        return hard.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:
        return None, grad


def _at_least_float32(t: Tensor) -> Tensor:
    """Half precision (autocast) -> float32; float32 and float64 stay as they are."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def kl_to_uniform(logits: Tensor, dim: int = -1) -> Tensor:
    """``KL(q || U_K) = log K - H(q)`` of the categorical ``q = softmax(logits)`` along ``dim``
    (the dimension is removed), in nats."""
    log_q = logits.log_softmax(dim)
    entropy = -(log_q.exp() * log_q).sum(dim)  # H(q)
    return math.log(logits.shape[dim]) - entropy


@dataclass(frozen=True)
class DVAEConfig(Config):
    """Configuration of :class:`DVAE`."""

    codebook_size: int = bounded(64, ge=2)  # K: codes per position (DALL-E: 8192)
    code_dim: int = bounded(16, ge=1)  # d: width of the codebook embedding the decoder reads
    tau_start: float = bounded(1.0, gt=0.0)  # Gumbel-softmax temperature at step 0 (DALL-E: 1)
    tau_end: float = bounded(1 / 16, gt=0.0)  # temperature after the annealing (DALL-E: 1/16)
    anneal_steps: int = bounded(2000, ge=0)  # steps over which tau falls geometrically from
    # tau_start to tau_end (0: tau_end from the start)
    hard: bool = False  # straight-through: one-hot codes forward, relaxed gradient backward
    beta: float = bounded(1.0, ge=0.0)  # weight of the KL term in the training loss (bounds use 1)
    obs_scale: Literal["per_dim", "global", "fixed"] = "global"  # gaussian sigma of p(x|z):
    # learned per dimension, one learned scalar, or fixed at exp(init_log_scale)
    init_log_scale: float = -1.0  # initial (or fixed) log sigma of p(x|z)
    min_log_scale: float = -7.0  # soft floor on log sigma
    arch: Literal["auto", "mlp", "conv"] = "auto"  # auto: conv for images with H, W >= 8, else MLP
    width: int = bounded(64, ge=1)  # conv: channels of the encoder and decoder
    downsample: int = bounded(-1, ge=-1)  # conv: stride-2 stages (-1: 1 for images under 16 px,
    # else 2)
    res_blocks: int = bounded(2, ge=0)  # conv: residual blocks at the latent resolution
    hidden: tuple[int, ...] = bounded((256, 256), ge=1)  # mlp: hidden widths of the encoder
    # (decoder: reversed)
    tokens: int = bounded(2, ge=1)  # mlp: code positions per example

    def validate(self) -> None:
        if self.obs_scale != "fixed" and not self.init_log_scale > self.min_log_scale:
            raise ConfigError(
                f"init_log_scale = {self.init_log_scale} must be above "
                f"min_log_scale = {self.min_log_scale}."
            )


@register_model("dvae")
class DVAE(GenerativeModel, Samples, LikelihoodBound, LatentSpace, DiscreteCodes):
    """Discrete VAE with a uniform categorical prior, trained with the Gumbel-softmax relaxation.

    ``x -> logits (B, K, h, w) [images] or (B, tokens, K) [points] -> y ~ GumbelSoftmax(logits,
    tau) -> codebook embedding y E (K -> d) -> decoder -> mean of p(x|z)``.

    Loss: ``-log p(x|y) + beta * KL(q(z|x) || U)`` with the relaxed ``y`` at the annealed
    temperature (:meth:`temperature`; the model counts its training steps in a buffer ``step``,
    saved in checkpoints, one per ``loss`` call in training mode with gradients). Logs ``rec``,
    ``kl``, ``tau``, ``perplexity`` and ``usage`` of the batch's argmax codes.

    ``eval_metrics`` reports the ELBO with a hard categorical sample (a true lower bound of
    ``log p(x)``, see the module docstring), the reconstruction ``mse`` with the argmax codes, and
    the batch's code ``perplexity``. Codes like the VQ-VAE's (:class:`DiscreteCodes`, so a
    ``vqvae-prior`` or ``t2i-vq`` takes a dvae run as its ``vqvae_run``): ``encode_codes(x)``
    (argmax codes, ``(B, h, w)`` or ``(B, tokens)``), ``decode_codes``, ``code_grid``;
    ``encode_latent`` gives
    ``q(z|x)`` (probabilities ``(B, K, h, w)`` / ``(B, tokens, K)``), ``decode_latent`` decodes
    any point of the simplex (interpolation). ``sample`` draws codes from the uniform prior: the
    dVAE alone is a (weak) generative model; DALL-E's is the transformer over its codes.
    """

    family: ClassVar[str] = "autoencoders"
    latent_prior: ClassVar[Literal["gaussian", "euclidean"]] = "euclidean"
    dequantize: ClassVar[bool] = True
    config_class: ClassVar[type[Config]] = DVAEConfig
    config: DVAEConfig
    info: DataInfo

    def __init__(self, config: DVAEConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        arch, shape = choose_arch(config.arch, info)
        self.shape, self.arch = shape, arch
        k = config.codebook_size
        self.encoder, self.decoder, grid = codec_networks(arch, shape, config, k, config.code_dim)
        self.code_grid: tuple[int, ...] = grid  # (h, w) or (tokens,)
        self.codebook = nn.Linear(k, config.code_dim, bias=False)  # one-hot -> code vector
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.obs = GaussianDecoder(config, info, self._log_scale_raw)  # type: ignore[arg-type]
        register_log_scale(self, config, shape)

    def _log_scale_raw(self) -> Tensor:
        return self.log_scale_raw

    @property
    def bpd_levels(self) -> int | None:
        """A density of the dequantized data on [-1, 1]^D: bits/dim with the data's levels."""
        return self.info.levels

    @property
    def code_axis(self) -> int:
        """The dimension of the K codes in logits and one-hots: 1 (images) or -1 (points)."""
        return 1 if self.arch == "conv" else -1

    # ----------------------------------------------------------------------------------------------
    # networks

    def temperature(self) -> float:
        """``tau`` of the next training step: geometric from ``tau_start`` to ``tau_end`` over
        ``anneal_steps``, then ``tau_end``."""
        cfg = self.config
        if cfg.anneal_steps == 0:
            return cfg.tau_end
        frac = min(1.0, int(self.step) / cfg.anneal_steps)
        return cfg.tau_start * (cfg.tau_end / cfg.tau_start) ** frac

    def logits(self, x: Tensor) -> Tensor:
        """Encoder logits of ``q(z|x)``: ``(B, K, h, w)`` (images) or ``(B, tokens, K)``."""
        if self.arch == "conv":
            return _at_least_float32(self.encoder(x))
        out = _at_least_float32(self.encoder(x.flatten(1)))  # (B, tokens * K)
        return out.view(x.shape[0], self.config.tokens, self.config.codebook_size)

    def decode_soft(self, y: Tensor) -> Tensor:
        """(Relaxed) one-hot codes ``(B, K, h, w)`` or ``(B, tokens, K)`` -> the mean of p(x|z)
        in model space ``(B, *shape)``."""
        if self.arch == "conv":
            e = self.codebook(y.movedim(1, -1)).movedim(-1, 1)  # (B, h, w, K) -> (B, d, h, w)
            return self.decoder(e)
        e = self.codebook(y)  # (B, tokens, d)
        return self.decoder(e.flatten(1)).view(y.shape[0], *self.shape)  # (B, D) -> shape

    def encode_latent(self, x: Tensor) -> Tensor:
        """``q(z|x)``: code probabilities ``(B, K, h, w)`` or ``(B, tokens, K)``."""
        return self.logits(x).softmax(self.code_axis)

    def decode_latent(self, z: Tensor) -> Tensor:
        """Decode code probabilities (any point of the simplex at each position)."""
        return self.decode_soft(z)

    @property
    def n_codes(self) -> int:
        """K, the number of codes per position."""
        return int(self.config.codebook_size)

    def code_frequencies(self) -> Tensor:
        """The uniform prior ``(K,)`` (what :meth:`sample` draws codes from)."""
        return torch.ones(self.n_codes, device=self.device)

    def encode_codes(self, x: Tensor) -> Tensor:
        """The most likely code at each position: ``(B, h, w)`` or ``(B, tokens)`` long."""
        return self.logits(x).argmax(self.code_axis)

    def one_hot(self, codes: Tensor) -> Tensor:
        """Codes ``(B, *grid)`` -> one-hot ``(B, K, h, w)`` or ``(B, tokens, K)``."""
        y = F.one_hot(codes.long(), self.config.codebook_size)  # (B, *grid, K)
        y = y.to(self.codebook.weight.dtype)
        return y.movedim(-1, 1) if self.arch == "conv" else y

    def decode_codes(self, codes: Tensor) -> Tensor:
        """Codes ``(B, h, w)`` or ``(B, tokens)`` -> data ``(B, *shape)`` in model space."""
        return self.decode_soft(self.one_hot(codes))

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction through the argmax codes, ``(B, *shape) -> (B, *shape)``."""
        return self.decode_codes(self.encode_codes(x))

    # ----------------------------------------------------------------------------------------------
    # bound and loss

    def kl(self, logits: Tensor) -> Tensor:
        """``KL(q(z|x) || U)`` per example ``(B,)``: ``sum over positions of log K - H(q)``."""
        return kl_to_uniform(logits, self.code_axis).flatten(1).sum(1)

    def _log_px(self, mean: Tensor, x: Tensor) -> Tensor:
        return self.obs.log_prob(_at_least_float32(mean), x).flatten(1).sum(1)  # (B, D) -> (B,)

    def elbo(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The ELBO in nats per example ``(B,)``, one hard sample ``z ~ q(z|x)`` (Eq. 1 of
        arXiv:1611.01144: the argmax of Gumbel-perturbed logits is a categorical sample)."""
        x = _at_least_float32(x)
        logits = self.logits(x)
        z = gumbel_softmax(logits, 1.0, hard=True, dim=self.code_axis, generator=generator)
        return self._log_px(self.decode_soft(z.detach()), x) - self.kl(logits)

    def _usage(self, logits: Tensor) -> tuple[Tensor, Tensor]:
        """Perplexity (exp of the entropy of the argmax codes' frequencies) and the fraction of
        the codebook in use, over the batch."""
        k = self.config.codebook_size
        counts = torch.bincount(logits.argmax(self.code_axis).flatten(), minlength=k).float()
        p = counts / counts.sum()
        perplexity = torch.exp(-(p * p.clamp_min(1e-12).log()).sum())
        return perplexity, (counts > 0).float().mean()

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """``mean(-log p(x|y)) + beta * mean(KL)`` with the relaxed codes ``y`` at the annealed
        temperature (straight-through with ``hard``)."""
        x = _at_least_float32(batch["x"])
        tau = self.temperature()
        logits = self.logits(x)
        y = gumbel_softmax(logits, tau, hard=self.config.hard, dim=self.code_axis)
        rec = -self._log_px(self.decode_soft(y), x)  # (B,)
        kl = self.kl(logits)  # (B,)
        loss = rec.mean() + self.config.beta * kl.mean()  # the one reduction over the batch
        perplexity, usage = self._usage(logits.detach())
        if self.training and torch.is_grad_enabled():
            self.step += 1  # one training step seen (the temperature schedule)
        logs: dict[str, Tensor | float] = {
            "rec": rec.mean().detach(),
            "kl": kl.mean().detach(),
            "tau": tau,
            "perplexity": perplexity,
            "usage": usage,
        }
        return LossOutput(loss, logs)

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per example: ``elbo`` (nats), ``loss`` (= -elbo), ``mse`` of the argmax-code
        reconstruction, and the batch's code ``perplexity`` repeated."""
        x = _at_least_float32(batch["x"])
        elbo = self.elbo(x, generator)
        logits = self.logits(x)
        mse = per_example_mse(self.decode_soft(self.one_hot(logits.argmax(self.code_axis))), x)
        perplexity, _ = self._usage(logits)
        return {"elbo": elbo, "loss": -elbo, "mse": mse, "perplexity": perplexity.expand(len(x))}

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` decodes of codes drawn from the uniform prior (the mean of p(x|z)); images are
        clipped to the data range."""
        check_sample_args(self.name, cond, options)
        k = self.config.codebook_size
        u = rand((n, *self.code_grid), generator=generator, device=self.device)
        codes = (u * k).long().clamp_max(k - 1)  # uniform over the K codes
        return clip_to_data(self.decode_codes(codes).float(), self.info)
