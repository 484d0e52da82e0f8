"""Masked convolutions for autoregressive image models (PixelCNN family).

Pixels are ordered in raster order (row by row, left to right) and, within a pixel, channel by
channel (R -> G -> B for colour images). A network whose output for sub-pixel ``(c, i, j)`` may only
depend on earlier sub-pixels is built from:

- :class:`MaskedConv2d`: the PixelCNN convolution of van den Oord et al., "Pixel Recurrent Neural
  Networks", arXiv:1601.06759, Sec. 3.4 (mask "A" for the first layer excludes the centre pixel's
  own channel, mask "B" for later layers includes it). A stack of them has a blind spot: pixels up
  and to the right are never seen.
- :class:`GatedPixelCNNLayer`: one layer of the Gated PixelCNN of van den Oord et al., "Conditional
  Image Generation with PixelCNN Decoders", arXiv:1606.05328, Sec. 2.2 (Fig. 2): a *vertical* stack
  that sees every row above (no blind spot), a *horizontal* stack that sees the current row to the
  left, gated activations ``tanh(W_f * x) * sigmoid(W_g * x)`` (Eq. 2), an optional conditioning
  vector added inside the gates (Eq. 4), and a residual connection in the horizontal stack.

Channels of hidden layers are split into ``groups`` equal blocks, block ``g`` belonging to colour
channel ``g``; within the centre pixel, block ``g`` sees input blocks ``< g`` (mask A) or ``<= g``
(mask B). With ``groups = 1`` (gray images) this reduces to the usual masks.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MaskType = Literal["A", "B"]


def channel_groups(n_channels: int, groups: int) -> Tensor:
    """Colour group of each of ``n_channels`` channels: ``(n_channels,)`` long, blocks in order."""
    if n_channels % groups:
        raise ValueError(f"{n_channels} channels cannot be split into {groups} colour groups")
    return torch.arange(n_channels) // (n_channels // groups)


def centre_mask(
    in_groups: Tensor, out_groups: Tensor, mask_type: MaskType
) -> Tensor:  # -> (out, in)
    """Which input channels an output channel may see *at the same pixel*.

    Mask A: input group strictly before the output group; mask B: before or equal.
    """
    o, i = out_groups[:, None], in_groups[None, :]
    return (i < o) if mask_type == "A" else (i <= o)


def pixelcnn_mask(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    mask_type: MaskType,
    groups: int = 1,
    *,
    in_groups: Tensor | None = None,
    out_groups: Tensor | None = None,
) -> Tensor:
    """The PixelCNN weight mask ``(out, in, k, k)`` (arXiv:1601.06759, Sec. 3.4).

    Rows above the centre and the centre row left of the centre are visible; the centre pixel is
    visible by colour group (:func:`centre_mask`); everything else is masked out.
    """
    k = kernel_size
    if k % 2 == 0:
        raise ValueError(f"kernel_size = {k} must be odd")
    gi = channel_groups(in_channels, groups) if in_groups is None else in_groups
    go = channel_groups(out_channels, groups) if out_groups is None else out_groups
    mask = torch.zeros(out_channels, in_channels, k, k)
    mask[:, :, : k // 2, :] = 1.0  # rows above
    mask[:, :, k // 2, : k // 2] = 1.0  # same row, left of the centre
    mask[:, :, k // 2, k // 2] = centre_mask(gi, go, mask_type).float()
    return mask


class MaskedConv2d(nn.Conv2d):
    """A ``Conv2d`` whose weight is multiplied by a fixed 0/1 ``mask`` (a buffer) at every call.

    Use :meth:`pixelcnn` for the PixelCNN masks A/B; any mask of the weight's shape works.
    Gradients of masked weights are exactly zero, so they stay at their (irrelevant) values.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        mask: Tensor,
        *,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=padding, bias=bias)
        if mask.shape != self.weight.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} != weight {tuple(self.weight.shape)}")
        self.register_buffer("mask", mask.to(self.weight.dtype), persistent=False)

    @classmethod
    def pixelcnn(
        cls,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        mask_type: MaskType,
        groups: int = 1,
    ) -> MaskedConv2d:
        """A same-size PixelCNN convolution with mask A or B (arXiv:1601.06759, Sec. 3.4)."""
        mask = pixelcnn_mask(in_channels, out_channels, kernel_size, mask_type, groups)
        return cls(in_channels, out_channels, kernel_size, mask, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


def masked_1x1(
    in_channels: int,
    out_channels: int,
    groups: int,
    mask_type: MaskType = "B",
) -> MaskedConv2d:
    """A 1x1 convolution that respects the colour-group order at each pixel."""
    gi = channel_groups(in_channels, groups)
    go = channel_groups(out_channels, groups)
    mask = centre_mask(gi, go, mask_type).float()[:, :, None, None]  # (out, in, 1, 1)
    return MaskedConv2d(in_channels, out_channels, 1, mask)


def down_shift(x: Tensor) -> Tensor:
    """Shift a feature map one row down (zeros at the top): ``out[.., i, :] = x[.., i-1, :]``."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]  # (B, C, H, W)


def gate(x: Tensor) -> Tensor:
    """Gated activation ``tanh(a) * sigmoid(b)`` over the two channel halves of ``x``.

    arXiv:1606.05328 Eq. (2). Each half is ordered by colour groups, so the gate keeps the order.
    """
    a, b = x.chunk(2, dim=1)  # (B, 2C, H, W) -> 2 x (B, C, H, W)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedPixelCNNLayer(nn.Module):
    """One Gated PixelCNN layer (arXiv:1606.05328, Sec. 2.2, Fig. 2) without a blind spot.

    - vertical stack: a ``(k//2 + 1) x k`` convolution over the rows ``i - k//2 .. i`` (padded so
      the output keeps the input size). Its features at row ``i`` may depend on row ``i`` itself;
      they reach the horizontal stack only after :func:`down_shift`, i.e. from the rows above.
    - horizontal stack: a ``1 x (k//2 + 1)`` convolution over the columns ``j - k//2 .. j`` of the
      current row, whose centre column is masked by colour group (mask ``A`` in the first layer,
      ``B`` afterwards), plus a 1x1 convolution of the down-shifted vertical features.
    - both stacks go through the gate ``tanh * sigmoid`` (Eq. 2) with the conditioning added inside
      it (Eq. 4); the horizontal stack gets a masked 1x1 convolution and a residual connection
      (when input and output widths agree).

    ``forward(v, h, cond) -> (v_out, h_out)``, all ``(B, channels, H, W)``; ``cond`` is a
    ``(B, 4 * channels)`` vector (from an embedding), broadcast over pixels, or ``None``.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        kernel_size: int,
        mask_type: MaskType,
        groups: int = 1,
        residual: bool = True,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size = {kernel_size} must be odd")
        r = kernel_size // 2
        self.r = r
        self.channels = channels
        self.residual = residual and in_channels == channels
        gi = channel_groups(in_channels, groups)
        gh = channel_groups(channels, groups).repeat(2)  # both gate halves are group-ordered
        self.v_conv = nn.Conv2d(in_channels, 2 * channels, (r + 1, kernel_size))
        h_mask = torch.ones(2 * channels, in_channels, 1, r + 1)
        h_mask[:, :, 0, r] = centre_mask(gi, gh, mask_type).float()  # the centre column
        self.h_conv = MaskedConv2d(in_channels, 2 * channels, (1, r + 1), h_mask)
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)  # sees rows above only
        self.h_out = masked_1x1(channels, channels, groups, "B")

    def forward(self, v: Tensor, h: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        r = self.r
        v_pre = self.v_conv(F.pad(v, (r, r, r, 0)))  # rows i-r..i, cols j-r..j+r: (B, 2C, H, W)
        h_pre = self.h_conv(F.pad(h, (r, 0, 0, 0)))  # cols j-r..j of row i: (B, 2C, H, W)
        h_pre = h_pre + self.v_to_h(down_shift(v_pre))  # rows < i only
        if cond is not None:
            cv, ch = cond[:, :, None, None].chunk(2, dim=1)  # (B, 4C) -> 2 x (B, 2C, 1, 1)
            v_pre = v_pre + cv  # Eq. (4): V^T h inside the gate
            h_pre = h_pre + ch
        v_out = gate(v_pre)  # Eq. (2)
        h_new = self.h_out(gate(h_pre))
        h_out = h + h_new if self.residual else h_new
        return v_out, h_out
