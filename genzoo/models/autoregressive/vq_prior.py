"""A GPT prior over the codes of a trained VQ-VAE: the model that makes VQ-VAE generative.

van den Oord, Vinyals & Kavukcuoglu, "Neural Discrete Representation Learning", arXiv:1711.00937,
Sec. 3.3 and 4.2: after the VQ-VAE is trained, an autoregressive prior ``p(z)`` is fitted to the
code indices of the training set, and samples are ``x = decode(z)`` with ``z ~ p(z)``. The paper's
prior is a PixelCNN over the latent grid; here it is :class:`~genzoo.models.autoregressive.gpt.GPT`
over the codes in raster order (as in VQ-GAN, Esser, Rombach & Ommer, arXiv:2012.09841, Sec. 3.2).

The VQ-VAE comes from a trained genzoo run (``vqvae_run``): the runs layer loads it
(:class:`~genzoo.core.protocol.BuiltOnRuns`) and passes it to the constructor as ``vqvae=``; it is
kept as a frozen submodule (so a prior checkpoint holds its weights too), just as latent
diffusion holds its autoencoder (:mod:`genzoo.models.diffusion.ldm`). Training reads the images
of the same dataset and encodes them on the fly, ``codes = vqvae.encode_codes(x)``: nothing is
cached, and the code "dataset" is exactly what the VQ-VAE sees.

One token stream, one vocabulary (``V = K + 1 + classes``)::

    [0, K)        the K codebook entries, the only tokens ever predicted
    K             BOS: "an image starts here" (unconditional)
    K + 1 + y     the class token of label y (``class_conditional``), in place of BOS

A sequence is ``[start token, c_1, ..., c_P]`` for the ``P`` code positions of one example, and
``log p(c) = sum_i log p(c_i | start, c_<i)`` is exact. DALL-E-style text-to-image (Ramesh et al.,
arXiv:2102.12092, Sec. 2.2: one transformer over [text tokens; image tokens]) is the same model
with a longer start: :meth:`VQPrior.start_tokens` is the one place a conditioning prefix is built,
and every likelihood and sampling path goes through it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.core.config import Config
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, BuiltOnRuns, GenerativeModel, LossOutput, Samples, SubRun
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.models.autoencoders.base import DiscreteCodes, check_sample_args, clip_to_data
from genzoo.models.autoregressive.gpt import GPT, GPTConfig, TransformerConfig
from genzoo.models.autoregressive.sampling import (
    SAMPLING_OPTIONS,
    at_least_float32,
    sampling_kwargs,
)


@dataclass(frozen=True)
class VQPriorConfig(TransformerConfig):
    """Configuration of :class:`VQPrior`: the VQ-VAE run, and the GPT over its codes (the
    transformer's fields are :class:`~genzoo.models.autoregressive.gpt.TransformerConfig`'s)."""

    vqvae_run: str = ""  # run directory of the trained vqvae whose codes are modelled
    vqvae_ema: bool = True  # use the vqvae run's EMA weights when it has them
    class_conditional: bool = False  # labelled data: start with a class token instead of BOS

    def gpt_config(self, vocab_size: int = 0, block_size: int = 0) -> GPTConfig:
        """The :class:`GPTConfig` of the transformer over codes."""
        return GPTConfig(vocab_size=vocab_size, block_size=block_size, **self.transformer_fields())


@register_model("vqvae-prior")
class VQPrior(GenerativeModel, Samples, BuiltOnRuns):
    """GPT prior over a frozen VQ-VAE's codes (arXiv:1711.00937, Sec. 3.3); samples are decoded
    images.

    ``encode_codes(x)`` gives the code sequences ``(B, P)`` (raster order over the latent grid),
    ``decode_codes(codes)`` the VQ-VAE's decoding of them, so ``decode_codes(encode_codes(x))`` is
    the VQ-VAE's reconstruction of ``x``. ``code_log_prob(codes, y)`` is the prior's exact
    log-likelihood of codes in nats; ``sample_codes`` draws codes with the KV-cached GPT,
    ``sample`` decodes them. There is no likelihood of images (the decoder is deterministic), so
    it declares neither ``ExactLikelihood`` nor ``LikelihoodBound``; ``eval_metrics`` reports the
    code log-likelihood next to the usage-frequency (unigram) prior that ``vqvae``'s own
    ``sample`` draws from.

    Built on a run: ``vqvae`` (:attr:`sub_runs`), the trained VQ-VAE of ``vqvae_run``.
    """

    family: ClassVar[str] = "autoregressive"
    dequantize: ClassVar[bool] = False  # the VQ-VAE was trained on bin centres
    config_class: ClassVar[type[Config]] = VQPriorConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 64, "warmup": 100}
    sub_runs: ClassVar[tuple[SubRun, ...]] = (
        SubRun("vqvae", "vqvae_run", "vqvae_ema", needs=(DiscreteCodes,)),
    )
    config: VQPriorConfig
    info: DataInfo

    def __init__(
        self, config: VQPriorConfig, info: DataInfo, vqvae: DiscreteCodes | None = None
    ) -> None:
        super().__init__(config, info)
        if vqvae is None:
            raise ConfigError(f"{self.name} needs vqvae_run=<run directory of a trained vqvae>.")
        if not isinstance(vqvae, DiscreteCodes) or not isinstance(vqvae, GenerativeModel):
            got = vqvae.name if isinstance(vqvae, GenerativeModel) else type(vqvae).__name__
            raise ConfigError(
                f"vqvae_run = {config.vqvae_run!r} is a {got!r} run; {self.name} needs a "
                "'dvae' or 'vqvae' run."
            )
        vq_info = vqvae.info
        if vq_info.kind != info.kind or tuple(vq_info.shape) != tuple(info.shape):
            raise ConfigError(
                f"The vqvae was trained on {vq_info.kind} of shape {tuple(vq_info.shape)} "
                f"({vq_info.name!r}); dataset {info.name!r} has {info.kind} of shape "
                f"{tuple(info.shape)}."
            )
        if config.class_conditional and info.n_classes < 1:
            raise ConfigError(
                f"class_conditional = true needs labelled data, but {info.name!r} has none."
            )
        self.vqvae = vqvae.eval().requires_grad_(False)  # frozen
        self.grid: tuple[int, ...] = vqvae.code_grid  # (h, w) or (tokens,)
        self.n_codes = vqvae.n_codes  # K
        self.positions = math.prod(self.grid)  # P
        self.bos = self.n_codes
        n_start = 1 + (info.n_classes if config.class_conditional else 0)
        self.code_info = DataInfo(
            f"vqcodes:{info.name}", "text", (self.positions,), levels=self.n_codes
        )
        # the GPT reads the codes as a token stream of P tokens over K targets; the start tokens
        # (BOS, classes) are extra vocabulary it never predicts
        self.gpt = GPT(config.gpt_config(self.n_codes + n_start, self.positions), self.code_info)

    def train(self, mode: bool = True) -> VQPrior:
        super().train(mode)
        self.vqvae.eval()  # the frozen VQ-VAE always runs in eval mode
        return self

    # --- codes <-> data ---------------------------------------------------------------------------
    @torch.no_grad()
    def encode_codes(self, x: Tensor) -> Tensor:
        """Data ``(B, *shape)`` in model space -> code sequences ``(B, P)`` long (raster order)."""
        with torch.autocast(x.device.type, enabled=False):  # nearest codes in float32
            codes = self.vqvae.encode_codes(x.float())  # (B, h, w) or (B, tokens)
        return codes.reshape(x.shape[0], -1)  # (B, P)

    @torch.no_grad()
    def decode_codes(self, codes: Tensor) -> Tensor:
        """Code sequences ``(B, P)`` -> data ``(B, *shape)`` in model space (images clipped)."""
        with torch.autocast(codes.device.type, enabled=False):
            x = self.vqvae.decode_codes(codes.view(codes.shape[0], *self.grid)).float()
        return clip_to_data(x, self.info)

    # --- the token stream -------------------------------------------------------------------------
    def start_tokens(self, b: int, cond: Tensor | None = None) -> Tensor:
        """The tokens before the first code: ``(B, S)`` long (BOS, or the class token)."""
        if self.config.class_conditional:
            if cond is None:
                raise ConfigError("This vqvae-prior is class-conditional; pass the labels.")
            y = cond.long().view(b, 1).to(self.device)
            if bool(((y < 0) | (y >= self.info.n_classes)).any()):
                raise ConfigError(f"Labels must be in [0, {self.info.n_classes}).")
            return self.bos + 1 + y
        if cond is not None:
            raise ConfigError("This vqvae-prior is unconditional; it takes no labels.")
        return torch.full((b, 1), self.bos, dtype=torch.long, device=self.device)

    def code_token_log_probs(self, codes: Tensor, cond: Tensor | None = None) -> Tensor:
        """``log p(c_i | start, c_<i)`` of every code: ``(B, P)`` in nats."""
        start = self.start_tokens(codes.shape[0], cond)  # (B, S)
        inp = torch.cat([start, codes[:, :-1]], dim=1)  # (B, S + P - 1)
        logits = at_least_float32(self.gpt(inp))[:, start.shape[1] - 1 :]  # (B, P, K)
        return -F.cross_entropy(logits.transpose(1, 2), codes, reduction="none")  # (B, P)

    def code_log_prob(self, codes: Tensor, cond: Tensor | None = None) -> Tensor:
        """The prior's exact log-likelihood of code sequences ``(B, P)``: ``(B,)`` nats."""
        return self.code_token_log_probs(codes, cond).sum(1)

    def unigram_log_prob(self, codes: Tensor) -> Tensor:
        """Log-likelihood ``(B,)`` of codes ``(B, P)`` drawn independently from the VQ-VAE's EMA
        usage frequencies (what ``vqvae``'s own ``sample`` does): the baseline the prior beats."""
        freq = self.vqvae.code_frequencies().double().clamp_min(0)
        log_q = (freq / freq.sum()).clamp_min(torch.finfo(torch.float64).tiny).log()  # (K,)
        return log_q[codes].sum(1).float()

    # --- protocol ---------------------------------------------------------------------------------
    def condition(self, batch: Batch, *, training: bool = False) -> Tensor | None:
        """What the start tokens are built from for a batch: its labels for a class-conditional
        prior, else nothing. (A hook: the text-to-image model gives captions.)"""
        return batch.get("y") if self.config.class_conditional else None

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """Mean next-code cross-entropy in nats; logs ``bits_per_code``."""
        codes = self.encode_codes(batch["x"])  # (B, P)
        per_code = -self.code_token_log_probs(codes, self.condition(batch, training=True))
        loss = per_code.mean()  # the one reduction over (B, P)
        return LossOutput(loss, {"bits_per_code": loss.detach() / math.log(2)})

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per example: ``loss`` (nats per code), ``code_log_prob`` (nats per example),
        ``unigram_log_prob`` (the usage-frequency prior's), ``bits_per_code`` of both."""
        codes = self.encode_codes(batch["x"])
        lp = self.code_log_prob(codes, self.condition(batch))
        uni = self.unigram_log_prob(codes)
        per_bits = self.positions * math.log(2)
        return {
            "loss": -lp / self.positions,
            "code_log_prob": lp,
            "unigram_log_prob": uni,
            "bits_per_code": -lp / per_bits,
            "unigram_bits_per_code": -uni / per_bits,
        }

    @torch.no_grad()
    def sample_codes(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        uncond_start: Tensor | None = None,
        guidance: float = 1.0,
        **options: Any,
    ) -> Tensor:
        """``n`` code sequences ``(n, P)`` from the prior (KV-cached GPT).

        ``cond``: labels ``(n,)`` of a class-conditional prior (default ``arange(n) % classes``).
        Options: ``temperature``, ``top_k``, ``top_p`` (defaults from the config). With
        ``uncond_start`` (the start tokens of the unconditional model) and ``guidance = w``,
        classifier-free guidance (:meth:`GPT.generate`).
        """
        check_sample_args(self.name, None, options, SAMPLING_OPTIONS)
        if self.config.class_conditional and cond is None:
            cond = torch.arange(n) % self.info.n_classes
        return self.gpt.generate(
            self.start_tokens(n, cond),
            self.positions,
            **sampling_kwargs(self.config, options),
            generator=generator,
            uncond=uncond_start,
            guidance=guidance,
        )  # (n, P)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` samples ``(n, *shape)`` in model space: prior codes through the VQ-VAE decoder."""
        return self.decode_codes(self.sample_codes(n, cond=cond, generator=generator, **options))
