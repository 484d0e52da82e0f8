"""Layers of the progressive and style-based GANs (ProGAN, StyleGAN, StyleGAN2), plain PyTorch.

Building blocks only (no losses, no training):

- :class:`EqualLinear`, :class:`EqualConv2d`: the *equalised learning rate* of Karras et al.,
  "Progressive Growing of GANs for Improved Quality, Stability, and Variation", arXiv:1710.10196,
  Sec. 4.1: weights are stored as ``N(0, 1)`` and scaled at run time by He's constant
  ``c = gain / sqrt(fan_in)`` (``gain = sqrt(2)`` by default), so Adam's per-parameter step is the
  same relative change for every layer. ``lr_mul`` lowers a layer's effective learning rate
  (StyleGAN's mapping network, arXiv:1812.04948, App. C: 0.01).
- :class:`PixelNorm`: ``a / sqrt(mean_c a^2 + eps)`` per pixel (arXiv:1710.10196, Sec. 4.2).
- :class:`MinibatchStdDev`: one extra feature map holding the average standard deviation over a
  group of examples (arXiv:1710.10196, Sec. 3).
- :func:`modulate_weights`, :func:`modulated_conv2d`, :class:`ModulatedConv2d`: the weight
  (de)modulation of StyleGAN2, Karras et al., "Analyzing and Improving the Image Quality of
  StyleGAN", arXiv:1912.04958, Sec. 2.2, Eqs. (1)-(3), without custom CUDA ops.
- :class:`NoiseInjection`: per-pixel noise with a learned per-layer strength (arXiv:1812.04948,
  Sec. 3.2; StyleGAN2 adds it after the modulated convolution, Fig. 2c).
- :class:`MappingNetwork`: ``z -> w``, pixel norm then an MLP of equalised linear layers with
  LeakyReLU(0.2) (arXiv:1812.04948, Sec. 2).

The PyTorch layers compute the plain convolution; the wrappers are written by hand because no
maintained library offers equalised or modulated layers that run on a CPU.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.seeding import randn

SQRT2 = math.sqrt(2.0)


def lrelu(x: Tensor) -> Tensor:
    """LeakyReLU(0.2) times ``sqrt(2)``: StyleGAN2's activation, after layers scaled by
    ``1 / sqrt(fan_in)`` (gain 1); ProGAN puts the ``sqrt(2)`` into the layers instead."""
    return F.leaky_relu(x, 0.2) * SQRT2


class EqualLinear(nn.Module):
    """Linear layer with the equalised learning rate: ``y = x (c W)^T + lr_mul b``,
    ``W ~ N(0, 1) / lr_mul``, ``c = lr_mul * gain / sqrt(in_dim)``."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        gain: float = SQRT2,
        lr_mul: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init) / lr_mul))
        self.scale = lr_mul * gain / math.sqrt(in_dim)  # He's constant (Sec. 4.1)
        self.lr_mul = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class EqualConv2d(nn.Module):
    """``k x k`` convolution (same padding) with the equalised learning rate:
    weights ``N(0, 1)`` scaled by ``c = gain / sqrt(in_ch * k * k)`` at every call."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, *, gain: float = SQRT2, bias: bool = True
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = gain / math.sqrt(in_ch * kernel * kernel)  # sqrt(2 / fan_in) by default
        self.padding = kernel // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class PixelNorm(nn.Module):
    """``a_xy / sqrt(mean_c a_xy^2 + eps)``: unit-length feature vectors per pixel (Sec. 4.2)."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


class MinibatchStdDev(nn.Module):
    """Append one feature map: the std of every feature over groups of ``group_size`` examples,
    averaged over features and pixels, replicated over the map (arXiv:1710.10196, Sec. 3).
    A batch not divisible by the group size uses the whole batch as one group."""

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size = group_size
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        g = min(self.group_size, b)
        if b % g:
            g = b
        y = x.reshape(g, b // g, c, h, w)  # (G, B/G, C, H, W): group members on dim 0
        y = (y.var(dim=0, unbiased=False) + self.eps).sqrt()  # (B/G, C, H, W)
        y = y.mean(dim=(1, 2, 3))  # (B/G,)
        y = y.repeat(g)[:, None, None, None].expand(b, 1, h, w)  # (B, 1, H, W)
        return torch.cat([x, y], dim=1)


# --------------------------------------------------------------------------------------------------
# StyleGAN2: weight modulation and demodulation


def modulate_weights(
    weight: Tensor, styles: Tensor, demodulate: bool = True, eps: float = 1e-8
) -> Tensor:
    """Per-example weights ``(B, O, I, k, k)`` from ``weight (O, I, k, k)`` and ``styles (B, I)``.

    ``w'_ijk = s_i w_ijk`` (Eq. (1)); with ``demodulate``, ``w''_ijk = w'_ijk /
    sqrt(sum_{i,k} w'_ijk^2 + eps)`` (Eq. (3)), so every output channel ``j`` has unit norm.
    """
    w = weight[None] * styles[:, None, :, None, None]  # Eq. (1): (B, O, I, k, k)
    if demodulate:
        sigma = torch.rsqrt(w.pow(2).sum(dim=(2, 3, 4), keepdim=True) + eps)  # Eq. (2)
        w = w * sigma  # Eq. (3)
    return w


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    demodulate: bool = True,
    padding: int = 0,
    eps: float = 1e-8,
) -> Tensor:
    """Convolve each example of ``x (B, I, H, W)`` with its own (de)modulated weights.

    Computed without per-example weights, as StyleGAN2's reference code does when it does not
    fuse: scaling the input channels by ``s_i`` equals scaling the weights (Eq. (1)), and the
    demodulation of Eq. (3) is a per-example, per-output-channel factor applied after one shared
    convolution; on a CPU this is several times faster than a grouped convolution.
    :func:`modulate_weights` computes the weights themselves.
    """
    out = F.conv2d(x * styles[:, :, None, None], weight, padding=padding)  # Eq. (1), (B, O, H', W')
    if demodulate:
        # Eq. (2)-(3): sum_{i,k} (s_i w_ijk)^2 = sum_i s_i^2 sum_k w_ijk^2
        d = torch.rsqrt(styles.pow(2) @ weight.pow(2).sum(dim=(2, 3)).t() + eps)  # (B, O)
        out = out * d[:, :, None, None]
    return out


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution: an affine map ``A`` of ``w`` gives the styles ``s``
    (bias 1 at start), then :func:`modulated_conv2d`. With ``upsample`` the input is first
    resized (bilinear) to ``size`` given at call time: any size, not only 2x, so that 28 x 28
    data works; the paper's transposed convolution with a [1, 3, 3, 1] filter is replaced by it."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        w_dim: int,
        *,
        demodulate: bool = True,
        affine_lr_mul: float = 1.0,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)  # equalised lr (gain 1)
        # "A" in Fig. 2; affine_lr_mul < 1 slows it (the paper: 1)
        self.affine = EqualLinear(w_dim, in_ch, gain=1.0, bias_init=1.0, lr_mul=affine_lr_mul)
        self.demodulate = demodulate
        self.padding = kernel // 2

    def forward(self, x: Tensor, w: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        if size is not None and tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        s = self.affine(w)  # (B, I) styles
        return modulated_conv2d(x, self.weight * self.scale, s, self.demodulate, self.padding)


class NoiseInjection(nn.Module):
    """``x + strength * n`` with one noise image ``n ~ N(0, I)`` of shape ``(B, 1, H, W)``
    broadcast over channels and a learned scalar strength per layer (starts at 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        b, _, h, w = x.shape
        n = randn((b, 1, h, w), generator=generator, device=x.device, dtype=x.dtype)
        return x + self.strength * n


class MappingNetwork(nn.Module):
    """``z (B, z_dim) -> w (B, w_dim)``: pixel norm of ``z``, then ``n_layers`` equalised linear
    layers with LeakyReLU(0.2) at learning-rate multiplier ``lr_mul`` (arXiv:1812.04948, Sec. 2)."""

    def __init__(self, z_dim: int, w_dim: int, n_layers: int, lr_mul: float = 0.01) -> None:
        super().__init__()
        self.norm = PixelNorm()
        dims = [z_dim] + [w_dim] * n_layers
        self.layers = nn.ModuleList(
            EqualLinear(a, b, gain=1.0, lr_mul=lr_mul) for a, b in itertools.pairwise(dims)
        )

    def forward(self, z: Tensor) -> Tensor:
        h = self.norm(z)
        for layer in self.layers:
            h = lrelu(layer(h))
        return h


class StyledConv(nn.Module):
    """One synthesis layer of StyleGAN2 (Fig. 2c): modulated 3 x 3 convolution (optionally
    resized to ``size`` first), noise, bias, LeakyReLU(0.2) times sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, affine_lr_mul: float = 1.0) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, w_dim, affine_lr_mul=affine_lr_mul)
        self.noise = NoiseInjection()
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(
        self,
        x: Tensor,
        w: Tensor,
        size: tuple[int, int] | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        h = self.noise(self.conv(x, w, size), generator)
        return lrelu(h + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    """``tRGB`` of StyleGAN2: a modulated 1 x 1 convolution without demodulation, plus a bias."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, affine_lr_mul: float = 1.0) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(
            in_ch, out_ch, 1, w_dim, demodulate=False, affine_lr_mul=affine_lr_mul
        )
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


def resize(x: Tensor, size: tuple[int, int], mode: str = "area") -> Tensor:
    """Images to ``size``: ``area`` (average pooling) to go down, ``nearest`` or ``bilinear``
    to go up; any sizes (28 -> 14 -> 7 -> 4 and back)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "area":
        return F.adaptive_avg_pool2d(x, size)
    if mode == "bilinear":
        return F.interpolate(x, size=size, mode=mode, align_corners=False)
    return F.interpolate(x, size=size, mode=mode)
