"""Networks for image-to-image translation: the pix2pix U-Net, the CycleGAN ResNet generator and
the PatchGAN discriminator.

Building blocks only (no losses, no training). Images are ``(B, C, H, W)``; any size works: the
stride-2 stages go ``n -> ceil(n / 2)`` (kernel 4 on even sides, 3 on odd ones) and the decoder
returns exactly to the encoder's sizes, so skip connections always line up.

- :class:`UNetGenerator` (Isola et al., "Image-to-Image Translation with Conditional Adversarial
  Networks", arXiv:1611.07004, Sec. 3.2.1, Fig. 3 and Appendix 6.1.1): an encoder of stride-2
  convolutions ``C64-C128-C256-C512-C512-...`` down to a 1 x 1 bottleneck (LeakyReLU 0.2, batch
  norm on every stage but the first and the innermost), a mirrored decoder of fractionally strided
  convolutions (ReLU; dropout 0.5 on the first three), with a skip connection concatenating
  encoder stage ``i`` to decoder stage ``n - i``, and a tanh output.
- :class:`ResnetGenerator` (Zhu et al., "Unpaired Image-to-Image Translation using
  Cycle-Consistent Adversarial Networks", arXiv:1703.10593, Appendix 7.2, after Johnson et al.,
  arXiv:1603.08155): ``c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-C`` with instance
  norm and reflection padding.
- :class:`PatchDiscriminator` (pix2pix Sec. 3.2.2 and Appendix 6.1.2): ``C64-C128-C256-C512`` of
  4 x 4 convolutions, stride 2 on the first ``n_layers``, stride 1 on the last, then a 4 x 4
  convolution to one logit per patch. Each logit sees a square of
  :func:`patch_receptive_field` ``(n_layers) = 9 * 2^n_layers - 2`` input pixels: 70 x 70 for the
  paper's ``n_layers = 3``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

Norm = Literal["batch", "instance", "none"]


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)  # as in the CycleGAN code: no affine
    return nn.Identity()


def halving_sizes(size: tuple[int, int], stages: int | None = None) -> list[tuple[int, int]]:
    """Sizes of successive stride-2 stages, input first: ``n -> ceil(n / 2)``, ``stages`` times, or
    until both sides are 1 when ``stages`` is ``None``. ``(8, 8) -> 8, 4, 2, 1``;
    ``(28, 28) -> 28, 14, 7, 4, 2, 1``."""
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise ValueError(f"image sides must be positive, got {size}")
    sizes = [(h, w)]
    while (stages is None and (h > 1 or w > 1)) or (stages is not None and len(sizes) <= stages):
        h, w = (h + 1) // 2, (w + 1) // 2
        sizes.append((h, w))
    return sizes


def down_conv(c_in: int, c_out: int, src: tuple[int, int], bias: bool = True) -> nn.Conv2d:
    """Stride-2 convolution ``n -> ceil(n / 2)``: kernel 4 on even sides, 3 on odd ones."""
    k = tuple(4 if s % 2 == 0 else 3 for s in src)
    return nn.Conv2d(c_in, c_out, k, stride=2, padding=1, bias=bias)


def up_conv(
    c_in: int, c_out: int, src: tuple[int, int], dst: tuple[int, int], bias: bool = True
) -> nn.ConvTranspose2d:
    """Fractionally strided convolution ``src -> dst`` with ``dst`` in ``{2 src - 1, 2 src}``
    (kernel 4 doubles a side, kernel 3 gives ``2 n - 1``): the inverse of :func:`down_conv`."""
    k = []
    for s, d in zip(src, dst, strict=True):
        if d not in (2 * s, 2 * s - 1):
            raise ValueError(f"cannot upsample {src} to {dst} with one stride-2 layer")
        k.append(4 if d == 2 * s else 3)
    return nn.ConvTranspose2d(c_in, c_out, tuple(k), stride=2, padding=1, bias=bias)


class UNetGenerator(nn.Module):
    """pix2pix U-Net ``(B, in_ch, H, W) -> (B, out_ch, H, W)`` in [-1, 1] (arXiv:1611.07004).

    ``depth`` stride-2 encoder stages (default: down to 1 x 1, as the paper's 256 -> 1), widths
    ``width * min(2^i, max_mult)``. Decoder stage ``j`` maps the innermost features (``j = 0``) or
    the concatenation of the previous decoder output with the skip of encoder stage
    ``depth - 1 - j`` back up one size; :attr:`downs` and :attr:`ups` hold the stages.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        size: tuple[int, int],
        width: int = 64,
        max_mult: int = 8,
        depth: int | None = None,
        norm: Norm = "batch",
        dropout: float = 0.5,
        n_dropout: int = 3,
    ) -> None:
        super().__init__()
        self.sizes = halving_sizes(size, depth)
        n = len(self.sizes) - 1
        if n < 1:
            raise ValueError(f"the U-Net needs at least one stage, got depth {depth}")
        ch = [width * min(2**i, max_mult) for i in range(n)]  # encoder stage widths
        bias = norm != "batch"  # a bias before batch norm is redundant
        self.downs = nn.ModuleList()
        for i in range(n):
            inner_or_first = i == 0 or i == n - 1
            self.downs.append(
                nn.Sequential(
                    down_conv(in_ch if i == 0 else ch[i - 1], ch[i], self.sizes[i], bias),
                    _norm("none" if inner_or_first else norm, ch[i]),
                    nn.LeakyReLU(0.2),
                )
            )
        self.ups = nn.ModuleList()
        for j in range(n):
            i = n - 1 - j  # the encoder stage this decoder stage undoes
            c_in = ch[i] if j == 0 else 2 * ch[i]  # + skip of encoder stage i (j > 0)
            src, dst = self.sizes[i + 1], self.sizes[i]
            if j == n - 1:  # the output layer
                self.ups.append(nn.Sequential(up_conv(c_in, out_ch, src, dst), nn.Tanh()))
                continue
            layers: list[nn.Module] = [up_conv(c_in, ch[i - 1], src, dst, bias)]
            layers.append(_norm(norm, ch[i - 1]))
            if j < n_dropout and dropout > 0:
                layers.append(nn.Dropout(dropout))
            layers.append(nn.ReLU())
            self.ups.append(nn.Sequential(*layers))

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        h = x
        for down in self.downs:
            h = down(h)
            skips.append(h)  # encoder stage i: (B, ch[i], *sizes[i + 1])
        n = len(self.downs)
        for j, up in enumerate(self.ups):
            if j > 0:
                h = skip_cat(h, skips[n - 1 - j])  # (B, 2 ch[i], *sizes[i + 1])
            h = up(h)
        return h


def skip_cat(a: Tensor, b: Tensor) -> Tensor:
    """Channel concatenation of two maps of the same size (the U-Net's skip connection)."""
    if a.shape[2:] != b.shape[2:]:
        raise ValueError(f"skip connection of sizes {tuple(a.shape)} and {tuple(b.shape)}")
    return torch.cat([a, b], dim=1)


class ResidualBlock(nn.Module):
    """``x + conv(norm(relu(norm(conv(x)))))`` with 3 x 3 convolutions and reflection padding."""

    def __init__(self, ch: int, norm: Norm = "instance") -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(ch, ch, 3),
            _norm(norm, ch),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(ch, ch, 3),
            _norm(norm, ch),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """CycleGAN generator ``(B, in_ch, H, W) -> (B, out_ch, H, W)`` in [-1, 1] (arXiv:1703.10593,
    Appendix 7.2): ``c7s1-w, d2w, d4w, R4w x n_blocks, u2w, uw, c7s1-out_ch`` then tanh.

    ``n_down`` stride-2 stages (2 in the paper); the upsampling stages return to the exact input
    size (odd sides included).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        size: tuple[int, int],
        width: int = 64,
        n_blocks: int = 6,
        n_down: int = 2,
        norm: Norm = "instance",
    ) -> None:
        super().__init__()
        sizes = halving_sizes(size, n_down)
        if min(sizes[-1]) < 2 or min(size) < 4:
            raise ValueError(
                f"images of {size[0]}x{size[1]} are too small for {n_down} stride-2 stages "
                "(the smallest map must be at least 2x2)"
            )
        pad = min(3, min(size) - 1)  # reflection padding must be smaller than the side
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(pad),
            nn.Conv2d(in_ch, width, 2 * pad + 1),
            _norm(norm, width),
            nn.ReLU(),
        ]
        c = width
        for i in range(n_down):
            layers += [down_conv(c, 2 * c, sizes[i]), _norm(norm, 2 * c), nn.ReLU()]
            c *= 2
        layers += [ResidualBlock(c, norm) for _ in range(n_blocks)]
        for i in range(n_down, 0, -1):
            layers += [up_conv(c, c // 2, sizes[i], sizes[i - 1]), _norm(norm, c // 2), nn.ReLU()]
            c //= 2
        layers += [nn.ReflectionPad2d(pad), nn.Conv2d(c, out_ch, 2 * pad + 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def patch_receptive_field(n_layers: int) -> int:
    """Side of the square of input pixels one PatchGAN logit sees: ``9 * 2^n_layers - 2``.

    From ``r = 1 + sum_l (k_l - 1) prod_{m < l} s_m`` over the convolutions of
    :class:`PatchDiscriminator`: ``n_layers`` of kernel 4 and stride 2, then two of kernel 4 and
    stride 1, so ``r = 1 + 3 (2^n - 1) + 3 * 2^n + 3 * 2^n``. ``n_layers = 3``: 70 (the paper's
    70 x 70 PatchGAN); 1: 16; 2: 34; 4: 142.
    """
    return 9 * 2**n_layers - 2


def receptive_field(kernels: Sequence[int], strides: Sequence[int]) -> int:
    """Receptive field of a chain of convolutions: ``1 + sum_l (k_l - 1) prod_{m < l} s_m``."""
    r, jump = 1, 1
    for k, s in zip(kernels, strides, strict=True):
        r += (k - 1) * jump
        jump *= s
    return r


def patch_output_size(side: int, n_layers: int) -> int:
    """Side of the PatchGAN's logit map for an input side (kernel 4, padding 1 everywhere)."""
    for s in [2] * n_layers + [1, 1]:
        side = (side + 2 - 4) // s + 1
    return side


def auto_patch_layers(size: tuple[int, int], most: int = 3) -> int:
    """The deepest PatchGAN (at most ``most`` stride-2 layers, the paper's 70 x 70 at 3) whose
    logit map is still at least 2 x 2 on images of ``size``; at least 1."""
    for n in range(most, 0, -1):
        if min(patch_output_size(s, n) for s in size) >= 2:
            return n
    return 1


class PatchDiscriminator(nn.Module):
    """PatchGAN ``(B, in_ch, H, W) -> (B, 1, h, w)`` logits, one per overlapping patch of
    :attr:`receptive_field` pixels (arXiv:1611.07004, Sec. 3.2.2, Appendix 6.1.2).

    ``C64`` (no norm) then ``n_layers - 1`` more stride-2 stages doubling the width (at most
    ``8 * width``), one stride-1 stage, and a stride-1 convolution to one channel; 4 x 4 kernels,
    padding 1, LeakyReLU(0.2).
    """

    def __init__(
        self, in_ch: int, width: int = 64, n_layers: int = 3, norm: Norm = "batch"
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers = {n_layers} must be at least 1")
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(in_ch, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for i in range(1, n_layers + 1):  # n_layers - 1 stride-2 stages, then one stride-1 stage
            c_out = width * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(c, c_out, 4, stride, 1, bias=bias), _norm(norm, c_out)]
            layers.append(nn.LeakyReLU(0.2))
            c = c_out
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        self.n_layers = n_layers
        convs = [m for m in self.net if isinstance(m, nn.Conv2d)]
        self.receptive_field = receptive_field(
            [int(m.kernel_size[0]) for m in convs], [int(m.stride[0]) for m in convs]
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
