"""Small convolutional encoder and decoder for images of any small size (8x8 to 64x64).

Building blocks only: :class:`ConvEncoder` maps ``(B, C, H, W)`` to a flat ``(B, out_dim)`` with
stride-2 stages and a linear head; :class:`ConvDecoder` mirrors it, from ``(B, in_dim)`` back to
exactly ``(B, C, H, W)``. Odd sizes are handled exactly: each stride-2 stage maps ``n`` to
``ceil(n / 2)`` (28 -> 14 -> 7, 25 -> 13 -> 7), and the decoder upsamples to the recorded size of
each stage (7 -> 14 -> 28, 7 -> 13 -> 25) rather than doubling blindly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from genzoo.core.errors import ConfigError, choices
from genzoo.nn.mlp import MLP


def conv_sizes(size: tuple[int, int], n_stages: int) -> list[tuple[int, int]]:
    """Spatial sizes before each stride-2 stage and after the last: ``n -> ceil(n / 2)``."""
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise ValueError(f"spatial size must be positive, got {size}")
    sizes = [(h, w)]
    for _ in range(n_stages):
        h, w = (h + 1) // 2, (w + 1) // 2  # kernel 3, stride 2, padding 1
        sizes.append((h, w))
    return sizes


class _Staged(nn.Module):
    """What :class:`ConvEncoder` and :class:`ConvDecoder` share: the input size and the sizes of
    the stride-2 stages it goes through (``size``, ``sizes``)."""

    def __init__(self, size: tuple[int, int], channels: Sequence[int]) -> None:
        super().__init__()
        if len(channels) == 0:
            raise ValueError(f"{type(self).__name__} needs at least one stage in channels")
        self.size = (int(size[0]), int(size[1]))
        self.sizes = conv_sizes(self.size, len(channels))


class ConvEncoder(_Staged):
    """``(B, in_ch, H, W) -> (B, out_dim)``: a 3x3 stem, stride-2 stages, then a linear head.

    ``channels[i]`` is the width of stage ``i``; each stage halves the spatial size (rounding up)
    with a stride-2 3x3 convolution followed by a stride-1 3x3 convolution.
    """

    def __init__(
        self,
        in_ch: int,
        out_dim: int,
        size: tuple[int, int],
        channels: Sequence[int] = (32, 64),
        act: type[nn.Module] = nn.SiLU,
    ) -> None:
        super().__init__(size, channels)
        layers: list[nn.Module] = [nn.Conv2d(in_ch, channels[0], 3, padding=1), act()]
        prev = channels[0]
        for c in channels:
            layers += [
                nn.Conv2d(prev, c, 3, stride=2, padding=1),
                act(),
                nn.Conv2d(c, c, 3, padding=1),
                act(),
            ]
            prev = c
        self.body = nn.Sequential(*layers)
        h, w = self.sizes[-1]
        self.head = nn.Linear(prev * h * w, out_dim)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, out_dim)
        h = self.body(x)  # (B, channels[-1], h, w)
        return self.head(h.flatten(1))  # (B, channels[-1] * h * w) -> (B, out_dim)


class ConvDecoder(_Staged):
    """``(B, in_dim) -> (B, out_ch, H, W)``, the mirror of :class:`ConvEncoder`.

    A linear layer makes a ``(channels[-1], h, w)`` map at the encoder's smallest size; each stage
    upsamples (nearest) to the encoder's size one level up, then applies two 3x3 convolutions; a
    final 3x3 convolution gives ``out_ch`` channels with no activation.
    """

    def __init__(
        self,
        in_dim: int,
        out_ch: int,
        size: tuple[int, int],
        channels: Sequence[int] = (32, 64),
        act: type[nn.Module] = nn.SiLU,
    ) -> None:
        super().__init__(size, channels)
        self.channels = tuple(int(c) for c in channels)
        h, w = self.sizes[-1]
        self.head = nn.Sequential(nn.Linear(in_dim, self.channels[-1] * h * w), act())
        layers: list[nn.Module] = []
        for i in reversed(range(len(self.channels))):
            c_in = self.channels[i]
            c_out = self.channels[i - 1] if i > 0 else self.channels[0]
            layers += [
                nn.Upsample(size=self.sizes[i], mode="nearest"),
                nn.Conv2d(c_in, c_out, 3, padding=1),
                act(),
                nn.Conv2d(c_out, c_out, 3, padding=1),
                act(),
            ]
        layers.append(nn.Conv2d(self.channels[0], out_ch, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:  # (B, in_dim) -> (B, out_ch, H, W)
        h, w = self.sizes[-1]
        x = self.head(z).view(z.shape[0], self.channels[-1], h, w)  # (B, C_last, h, w)
        return self.body(x)  # (B, out_ch, H, W)


def choose_arch(arch: str, info: Any) -> tuple[str, tuple[int, ...]]:
    """``(arch, shape)`` of an encoder/decoder model: ``auto`` picks convolutions for images of
    at least 8x8 and an MLP otherwise; ``conv`` on anything but (C, H, W) images is an error."""
    shape = tuple(int(s) for s in info.shape)
    is_image = info.kind == "images" and len(shape) == 3
    if arch == "auto":
        arch = "conv" if is_image and min(shape[1], shape[2]) >= 8 else "mlp"
    if arch == "conv" and not is_image:
        raise ConfigError(
            f"arch = 'conv' needs images of shape (C, H, W), but dataset {info.name!r} has "
            f"{info.kind} of shape {shape}; choose {choices(['auto', 'mlp'])}."
        )
    return arch, shape


def encoder_decoder(
    arch: str,
    shape: tuple[int, ...],
    dim: int,
    enc_out: int,
    latent: int,
    channels: Sequence[int],
    hidden: Sequence[int],
) -> tuple[nn.Module, nn.Module]:
    """The encoder ``x -> (B, enc_out)`` and decoder ``(B, latent) -> x`` of an autoencoder
    model, convolutional (``arch = "conv"``, images of ``shape`` (C, H, W)) or MLPs over the
    ``dim`` flattened values (the decoder mirrors the encoder's hidden widths)."""
    if arch == "conv":
        c, h, w = shape
        return ConvEncoder(c, enc_out, (h, w), channels), ConvDecoder(latent, c, (h, w), channels)
    return MLP(dim, enc_out, hidden), MLP(latent, dim, tuple(reversed(hidden)))
