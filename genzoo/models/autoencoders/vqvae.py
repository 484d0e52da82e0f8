"""VQ-VAE: an autoencoder with a discrete latent grid.

van den Oord, Vinyals & Kavukcuoglu, "Neural Discrete Representation Learning", arXiv:1711.00937.
The quantizer (nearest code, straight-through gradient, EMA codebook, commitment loss, dead-code
restarts) is :class:`genzoo.nn.quantizer.VectorQuantizer`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.protocol import Batch, GenerativeModel, LatentSpace, LossOutput, Samples
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.models.autoencoders.base import (
    DiscreteCodes,
    check_sample_args,
    clip_to_data,
    per_example_mse,
)
from genzoo.nn.convnets import choose_arch, conv_sizes
from genzoo.nn.mlp import MLP
from genzoo.nn.quantizer import VectorQuantizer


@dataclass(frozen=True)
class VQVAEConfig(Config):
    """Configuration of :class:`VQVAE`."""

    codebook_size: int = bounded(128, ge=1)  # K: number of codes
    code_dim: int = bounded(16, ge=1)  # d: dimension of each code vector
    beta: float = bounded(0.25, ge=0.0)  # weight of the commitment loss (paper: 0.25)
    ema: bool = True  # EMA codebook updates (paper, Appendix A.1); false: codebook loss
    decay: float = bounded(0.99, ge=0.0, lt=1.0)  # EMA decay gamma
    dead_threshold: float = bounded(1.0, ge=0.0)  # restart codes whose EMA count per step falls
    # below (0: off)
    arch: Literal["auto", "mlp", "conv"] = "auto"  # auto: conv for images with H, W >= 8, else MLP
    width: int = bounded(64, ge=1)  # conv: channels of the encoder and decoder
    downsample: int = bounded(-1, ge=-1)  # conv: stride-2 stages (-1: 1 for images under 16 px,
    # else 2)
    res_blocks: int = bounded(2, ge=0)  # conv: residual blocks at the latent resolution (paper: 2)
    hidden: tuple[int, ...] = bounded((256, 256), ge=1)  # mlp: hidden widths of the encoder
    # (decoder: reversed)
    tokens: int = bounded(2, ge=1)  # mlp: code vectors per example


class _ResBlock(nn.Module):
    """``x + conv1x1(SiLU(conv3x3(SiLU(x))))`` (the paper's residual block, with SiLU)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1), nn.SiLU(), nn.Conv2d(ch, ch, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def codec_networks(
    arch: str, shape: tuple[int, ...], config: Any, enc_out: int, dec_in: int
) -> tuple[nn.Module, nn.Module, tuple[int, ...]]:
    """The encoder and decoder of a discrete-code autoencoder (VQ-VAE, dVAE) and the grid of one
    example's code positions: ``(h, w)`` for images (``arch = "conv"``), ``(tokens,)`` for MLPs.

    conv: ``(B, C, H, W) -> (B, enc_out, h, w)`` (``downsample`` stride-2 stages, then
    ``res_blocks`` residual blocks) and ``(B, dec_in, h, w) -> (B, C, H, W)``; mlp:
    ``(B, D) -> (B, tokens * enc_out)`` and ``(B, tokens * dec_in) -> (B, D)``. ``config`` has
    the fields ``width``, ``downsample``, ``res_blocks``, ``hidden`` and ``tokens`` of
    :class:`VQVAEConfig`.
    """
    if arch != "conv":
        hidden = tuple(config.hidden)
        encoder = MLP(math.prod(shape), config.tokens * enc_out, hidden)
        decoder = MLP(config.tokens * dec_in, math.prod(shape), tuple(reversed(hidden)))
        return encoder, decoder, (config.tokens,)
    c, h, w = shape
    stages = config.downsample if config.downsample >= 0 else (1 if min(h, w) < 16 else 2)
    sizes = conv_sizes((h, w), stages)  # (H, W), ..., latent (h, w)
    ch = config.width
    enc: list[nn.Module] = [nn.Conv2d(c, ch, 3, padding=1)]
    for _ in range(stages):
        enc += [nn.SiLU(), nn.Conv2d(ch, ch, 3, stride=2, padding=1)]
    enc += [_ResBlock(ch) for _ in range(config.res_blocks)]
    enc += [nn.SiLU(), nn.Conv2d(ch, enc_out, 1)]
    dec: list[nn.Module] = [nn.Conv2d(dec_in, ch, 3, padding=1)]
    dec += [_ResBlock(ch) for _ in range(config.res_blocks)]
    for size in reversed(sizes[:-1]):
        dec += [nn.SiLU(), nn.Upsample(size=size, mode="nearest")]
        dec += [nn.Conv2d(ch, ch, 3, padding=1)]
    dec += [nn.SiLU(), nn.Conv2d(ch, c, 3, padding=1)]
    return nn.Sequential(*enc), nn.Sequential(*dec), tuple(sizes[-1])


@register_model("vqvae")
class VQVAE(GenerativeModel, Samples, LatentSpace, DiscreteCodes):
    """VQ-VAE: ``x -> z_e = encoder(x) -> z_q = quantize(z_e) -> decoder(z_q)``.

    Loss (Eq. (3), with the squared error for ``-log p(x|z_q)``, each term a mean per value):
    ``mse(x, decode(z_q)) + beta * ||z_e - sg[e]||^2`` plus ``||sg[z_e] - e||^2`` without the EMA
    codebook. Logs ``mse``, ``commitment``, ``perplexity`` (exp of the entropy of the batch's code
    frequencies), ``usage`` (fraction of the codebook used in the batch) and ``restarted``
    (dead codes moved to encoder outputs in this step).

    Images are encoded to a ``(d, h, w)`` grid (one code per position); points to ``tokens``
    code vectors. ``encode_codes(x)`` gives the code indices ``(B, h, w)`` or ``(B, tokens)`` (what
    a prior such as GPT models), ``decode_codes`` maps them back. ``encode_latent`` is the
    continuous ``z_e`` and ``decode_latent`` quantizes and decodes it (interpolation).

    :meth:`sample` draws every position's code independently from the codebook's EMA usage
    frequencies: a weak prior. The paper's samples come from an autoregressive prior trained on
    the codes (PixelCNN; GPT in genzoo) -- VQ-VAE is generative through that prior.
    """

    family: ClassVar[str] = "autoencoders"
    latent_prior: ClassVar[Literal["gaussian", "euclidean"]] = "euclidean"
    config_class: ClassVar[type[Config]] = VQVAEConfig
    config: VQVAEConfig
    info: DataInfo

    def __init__(self, config: VQVAEConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        arch, shape = choose_arch(config.arch, info)
        self.shape = shape
        self.arch = arch
        d = config.code_dim
        self.encoder, self.decoder, grid = codec_networks(arch, shape, config, d, d)
        # (d, h, w) for images, (tokens, d) for points
        self.latent_shape: tuple[int, ...] = (d, *grid) if arch == "conv" else (*grid, d)
        self.quantizer = VectorQuantizer(
            config.codebook_size,
            d,
            ema=config.ema,
            decay=config.decay,
            dead_threshold=config.dead_threshold,
        )

    # ----------------------------------------------------------------------------------------------
    # latent <-> flat code vectors

    def _to_vectors(self, z: Tensor) -> Tensor:
        """``z_e -> (B * positions, d)``: conv ``(B, d, h, w)``, mlp ``(B, tokens, d)``."""
        if self.arch == "conv":
            return z.permute(0, 2, 3, 1).reshape(-1, self.config.code_dim)  # (B, h, w, d) -> (N, d)
        return z.reshape(-1, self.config.code_dim)  # (B, tokens, d) -> (N, d)

    def _from_vectors(self, v: Tensor, b: int) -> Tensor:
        """Inverse of :meth:`_to_vectors` for a batch of ``b``."""
        if self.arch == "conv":
            d, h, w = self.latent_shape
            return v.view(b, h, w, d).permute(0, 3, 1, 2)  # (N, d) -> (B, d, h, w)
        return v.view(b, *self.latent_shape)  # (N, d) -> (B, tokens, d)

    def encode_latent(self, x: Tensor) -> Tensor:
        """The continuous encoder output ``z_e``: ``(B, d, h, w)`` or ``(B, tokens, d)``."""
        if self.arch == "conv":
            return self.encoder(x)
        return self.encoder(x.flatten(1)).view(x.shape[0], *self.latent_shape)

    def _decode_quantized(self, z_q: Tensor) -> Tensor:
        if self.arch == "conv":
            return self.decoder(z_q)
        return self.decoder(z_q.flatten(1)).view(z_q.shape[0], *self.shape)  # (B, D) -> shape

    def decode_latent(self, z: Tensor) -> Tensor:
        """Quantize ``z`` to its nearest codes (no codebook update) and decode."""
        codes = self.quantizer.nearest(self._to_vectors(z))
        return self._decode_quantized(self._from_vectors(self.quantizer.lookup(codes), z.shape[0]))

    @property
    def code_grid(self) -> tuple[int, ...]:
        """The positions of one example's codes: ``(h, w)`` (images) or ``(tokens,)`` (points)."""
        return tuple(self.latent_shape[1:] if self.arch == "conv" else self.latent_shape[:1])

    @property
    def n_codes(self) -> int:
        """K, the codebook size."""
        return int(self.config.codebook_size)

    def code_frequencies(self) -> Tensor:
        """The codebook's EMA usage counts ``(K,)`` (what :meth:`sample` draws codes from)."""
        return self.quantizer.cluster_size.float().clamp_min(0)

    def encode_codes(self, x: Tensor) -> Tensor:
        """Code indices of ``x``: ``(B, h, w)`` (images) or ``(B, tokens)`` (points), long."""
        z = self.encode_latent(x)
        codes = self.quantizer.nearest(self._to_vectors(z))  # (N,)
        return codes.view(x.shape[0], *self.code_grid)  # (N,) -> (B, *grid)

    def decode_codes(self, codes: Tensor) -> Tensor:
        """Code indices ``(B, h, w)`` or ``(B, tokens)`` -> data ``(B, *shape)`` in model space."""
        v = self.quantizer.lookup(codes.reshape(-1))  # (N, d)
        return self._decode_quantized(self._from_vectors(v, codes.shape[0]))

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction ``decoder(quantize(encoder(x)))``, ``(B, *shape) -> (B, *shape)``."""
        return self.decode_latent(self.encode_latent(x))

    # ----------------------------------------------------------------------------------------------
    # protocol

    def _terms(self, x: Tensor) -> tuple[Tensor, Any]:
        """``(per-example mse (B,), quantizer output)``; updates the codebook in training."""
        x = x.float()
        z = self.encode_latent(x)
        q = self.quantizer(self._to_vectors(z))
        x_hat = self._decode_quantized(self._from_vectors(q.z_q, x.shape[0]))
        return per_example_mse(x_hat, x), q

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """``mse + beta * commitment (+ codebook loss)``, averaged over the batch (Eq. (3))."""
        mse, q = self._terms(batch["x"])
        rec = mse.mean()  # the one reduction over the batch
        loss = rec + self.config.beta * q.commitment + q.codebook_loss
        logs: dict[str, Tensor | float] = {
            "mse": rec.detach(),
            "commitment": q.commitment.detach(),
            "perplexity": q.perplexity,
            "usage": q.usage,
            "restarted": float(q.restarted),
        }
        if not self.config.ema:
            logs["codebook_loss"] = q.codebook_loss.detach()
        return LossOutput(loss, logs)

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """``{"loss", "mse", "perplexity"}`` per example (the batch's perplexity repeated)."""
        x = batch["x"]
        mse, q = self._terms(x)
        loss = mse + self.config.beta * q.commitment + q.codebook_loss
        return {"loss": loss, "mse": mse, "perplexity": q.perplexity.expand(x.shape[0])}

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` decodes of codes drawn independently per position from the codebook's EMA usage
        frequencies (see the class docstring). Images are clipped to the data range."""
        check_sample_args(self.name, cond, options)
        grid = self.code_grid
        positions = math.prod(grid)
        probs = self.quantizer.cluster_size.float().clamp_min(0).cpu()
        probs = probs / probs.sum() if probs.sum() > 0 else torch.ones_like(probs) / probs.numel()
        gdev = generator.device if generator is not None else torch.device("cpu")
        codes = torch.multinomial(
            probs.to(gdev), n * positions, replacement=True, generator=generator
        )
        x = self.decode_codes(codes.to(self.device).view(n, *grid)).float()
        return clip_to_data(x, self.info)
