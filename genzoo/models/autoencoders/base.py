"""What the autoencoders share: the encoder/decoder config fields, the conv-or-MLP networks over
``x``, and the checks of ``sample``'s arguments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from torch import Tensor

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError, choices
from genzoo.core.protocol import GenerativeModel
from genzoo.data.base import DataInfo
from genzoo.nn.convnets import choose_arch, encoder_decoder


@dataclass(frozen=True)
class EncoderDecoderConfig(Config):
    """The fields of an autoencoder's networks (:class:`~genzoo.models.autoencoders.ae.AEConfig`,
    :class:`~genzoo.models.autoencoders.vae.VAEConfig`)."""

    latent_dim: int = bounded(16, ge=1)  # dimension K of the code z
    arch: Literal["auto", "mlp", "conv"] = "auto"  # auto: conv for images with H, W >= 8, else MLP
    hidden: tuple[int, ...] = bounded((256, 256), ge=1)  # MLP hidden widths of the encoder
    # (decoder: reversed); () makes a linear map
    channels: tuple[int, ...] = bounded((32, 64), ge=1)  # conv widths per stride-2 stage
    # (decoder mirrors them)

    def validate(self) -> None:
        if not self.channels:
            raise ConfigError(f"channels = {list(self.channels)} must hold positive widths.")


class EncoderDecoderModel(GenerativeModel):
    """An autoencoder over ``x``: convolutional for images of at least 8x8, else MLPs over the
    flattened values (:func:`genzoo.nn.convnets.choose_arch`). The submodules are ``encoder``
    ``x -> (B, enc_out)`` and ``decoder`` ``(B, K) -> x``."""

    family: ClassVar[str] = "autoencoders"
    config: EncoderDecoderConfig
    info: DataInfo

    def __init__(self, config: EncoderDecoderConfig, info: DataInfo, enc_out: int) -> None:
        super().__init__(config, info)
        arch, shape = choose_arch(config.arch, info)
        self.shape = shape
        self.arch = arch
        self.encoder, self.decoder = encoder_decoder(
            arch, shape, info.dim, enc_out, config.latent_dim, config.channels, config.hidden
        )

    def _encoder_out(self, x: Tensor) -> Tensor:
        """``(B, *shape) -> (B, enc_out)``."""
        if self.arch == "mlp":
            x = x.flatten(1)  # (B, *shape) -> (B, D)
        return self.encoder(x)

    def _decoder_out(self, z: Tensor) -> Tensor:
        """``(B, K) -> (B, *shape)``."""
        return self.decoder(z).view(z.shape[0], *self.shape)  # (B, D) or (B, C, H, W) -> shape


class DiscreteCodes:
    """Capability of an autoencoder with a discrete latent grid (``vqvae``, ``dvae``): what a prior
    over its codes (``vqvae-prior``, ``t2i-vq``) needs. Consumers test ``isinstance``.

    ``n_codes`` (K) codes per position, ``code_grid`` (``(h, w)`` or ``(tokens,)``) positions per
    example; ``encode_codes(x) -> (B, *code_grid)`` long, ``decode_codes`` back to data;
    ``code_frequencies()`` ``(K,)``: the distribution the autoencoder's own ``sample`` draws codes
    from (the context-free baseline a prior must beat)."""

    code_grid: tuple[int, ...]

    @property
    def n_codes(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode_codes(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode_codes(self, codes: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def code_frequencies(self) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def check_sample_args(
    name: str,
    cond: Tensor | None,
    options: Mapping[str, Any],
    valid: Sequence[str] = (),
    *,
    conditional: bool = False,
) -> None:
    """One-sentence errors for labels given to an unconditional model and for sampling options
    outside ``valid``."""
    if cond is not None and not conditional:
        raise ConfigError(f"{name!r} is unconditional; sample it without cond.")
    unknown = [key for key in options if key not in valid]
    if unknown:
        takes = f"valid options are {choices(valid)}" if valid else "it takes none"
        raise ConfigError(f"Unknown sampling option {unknown[0]!r} for {name!r}; {takes}.")


def clip_to_data(x: Tensor, info: DataInfo) -> Tensor:
    """Images clipped to the dataset's value range; other data unchanged."""
    if info.kind == "images":
        lo, hi = info.value_range
        x = x.clamp(lo, hi)
    return x


def per_example_mse(x_hat: Tensor, x: Tensor) -> Tensor:
    """Mean squared error per example, ``(B, *shape) -> (B,)``, in float32."""
    return (x_hat.float() - x.float()).pow(2).flatten(1).mean(1)  # (B, *shape) -> (B, D) -> (B,)


__all__ = [
    "DiscreteCodes",
    "EncoderDecoderConfig",
    "EncoderDecoderModel",
    "check_sample_args",
    "clip_to_data",
    "per_example_mse",
]
