"""A perceptual distance over the activations of a frozen feature network.

LPIPS (Zhang, Isola, Efros, Shechtman & Wang, "The Unreasonable Effectiveness of Deep Features as
a Perceptual Metric", arXiv:1801.03924, Eq. (1)) compares two images in several layers of a
trained network: each layer's activations are normalised to unit length along the channels, and
the distance is the sum over layers of the spatially averaged squared difference, weighted per
channel by a learned ``w_l``. Here ``w_l = 1`` (the paper's "lin"-free variant, Sec. 3), so any
trained image network can serve without LPIPS's calibration data: genzoo passes its own
deterministic feature classifier (the runs layer builds it), and LPIPS/VGG weights can be plugged
in the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class FeatureTaps(nn.Module):
    """The activations of a :class:`torch.nn.Sequential` after the layers ``taps`` (indices into
    it): ``(B, C, H, W) -> [(B, C_l, H_l, W_l), ...]``. The network is frozen and kept in eval
    mode; gradients still flow to the input."""

    def __init__(self, net: nn.Sequential, taps: Sequence[int]) -> None:
        super().__init__()
        taps = sorted({int(t) % len(net) for t in taps})
        if not taps:
            raise ValueError("FeatureTaps needs at least one layer to tap")
        self.net = net[: taps[-1] + 1].eval().requires_grad_(False)
        self.taps = tuple(taps)

    def train(self, mode: bool = True) -> FeatureTaps:
        super().train(mode)
        self.net.eval()  # frozen: batch statistics or dropout never change with the caller's mode
        return self

    def forward(self, x: Tensor) -> list[Tensor]:
        out: list[Tensor] = []
        for i, layer in enumerate(self.net):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


def perceptual_distance(a: Sequence[Tensor], b: Sequence[Tensor], eps: float = 1e-10) -> Tensor:
    """``sum_l mean_hw |a_l / |a_l| - b_l / |b_l||^2`` per example ``(B,)`` for two lists of
    feature maps ``(B, C_l, H_l, W_l)``; ``|.|`` is the norm along the channels (Eq. (1) of
    arXiv:1801.03924 with unit channel weights).

    By hand: the ``lpips`` package ships only its own networks, and this is three lines."""
    total: Tensor | None = None
    for fa, fb in zip(a, b, strict=True):
        na = fa / (fa.pow(2).sum(1, keepdim=True) + eps).sqrt()  # unit length along channels
        nb = fb / (fb.pow(2).sum(1, keepdim=True) + eps).sqrt()
        d = (na - nb).pow(2).sum(1).flatten(1).mean(1)  # (B, H, W) -> (B, H*W) -> (B,), Eq. (1)
        total = d if total is None else total + d
    if total is None:
        raise ValueError("perceptual_distance needs at least one feature map")
    return total


def features_of(net: nn.Module, x: Tensor) -> list[Tensor]:
    """``net(x)`` as a list of feature maps (a network returning one tensor gives a list of one)."""
    out = net(x)
    return [out] if isinstance(out, torch.Tensor) else list(out)
