"""RealNVP: density estimation with real-valued non-volume preserving transformations
(Dinh, Sohl-Dickstein & Bengio, arXiv:1605.08803).

Affine coupling layers (Sec. 3.3) with checkerboard and channel-wise masks (Sec. 3.4) in the
multi-scale architecture of Sec. 3.6: at each scale, checkerboard couplings, a squeeze, channel
couplings, then half of the channels are factored out; the last scale has checkerboard couplings
only. Images are logit pre-processed (Sec. 4.1). The paper's batch normalisation is replaced by an
optional ActNorm after each coupling (Glow's batch-independent equivalent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.registry import register_model
from genzoo.models.flows.base import FlowModel, can_squeeze
from genzoo.nn.flow_layers import (
    ActNorm,
    AffineCoupling,
    CouplingConvNet,
    CouplingMLP,
    FactorOut,
    Flatten,
    FlowLayer,
    FlowSequential,
    Squeeze,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
)


@dataclass(frozen=True)
class RealNVPConfig(Config):
    """Configuration of :class:`RealNVP`."""

    couplings: int = bounded(16, ge=1)  # points: affine couplings with alternating masks
    hidden: tuple[int, ...] = bounded((64, 64, 64), ge=1)  # points: hidden widths of the MLP
    # coupling nets
    scales: int = bounded(2, ge=0)  # images: squeezes (scales); 8x8 -> 4x4 -> 2x2,
    # 28x28 -> 14x14 -> 7x7
    checker_couplings: int = bounded(3, ge=0)  # images: checkerboard couplings per scale (paper: 3)
    channel_couplings: int = bounded(3, ge=0)  # images: channel couplings per scale, after the
    # squeeze (paper: 3)
    final_couplings: int = bounded(4, ge=1)  # images: checkerboard couplings of the last scale
    # (paper: 4)
    channels: int = bounded(64, ge=1)  # images: width of the ResNet coupling nets (paper: 64 on
    # CIFAR-10)
    blocks: int = bounded(2, ge=0)  # images: residual blocks per coupling net (paper: 8 on
    # CIFAR-10)
    scale_fn: Literal["tanh", "sigmoid"] = "tanh"  # log-scale stabiliser: a * tanh(raw), or
    # Glow's sigmoid(raw + 2)
    actnorm: bool = False  # ActNorm after each coupling (a stand-in for the paper's batch norm;
    # on toy points it slows training, on digits it makes no difference)
    logit_alpha: float = bounded(0.05, gt=0.0, lt=0.5)  # images: logit pre-processing
    # logit(alpha + (1 - 2 alpha) u)


@register_model("realnvp")
class RealNVP(FlowModel):
    """RealNVP (arXiv:1605.08803): affine couplings, masks, squeeze and multi-scale factor-out.

    Points: ``couplings`` affine couplings with MLP nets, alternating masks (ActNorm between them
    if ``actnorm``). Images: ``scales`` scales as in Sec. 3.6, then a last scale; a scale whose
    height or width is odd cannot squeeze and becomes the last one.
    """

    config_class: ClassVar[type[Config]] = RealNVPConfig
    config: RealNVPConfig

    def _coupling(self, channels: int, mask: Tensor, net: nn.Module) -> list[FlowLayer]:
        """An affine coupling, then ActNorm over ``channels`` if configured."""
        out: list[FlowLayer] = [AffineCoupling(mask, net, self.config.scale_fn)]
        if self.config.actnorm:
            out.append(ActNorm(channels))
        return out

    def _image_couplings(self, shape: tuple[int, int, int], n: int, kind: str) -> list[FlowLayer]:
        cfg = self.config
        layers: list[FlowLayer] = []
        for i in range(n):
            make_mask = checkerboard_mask if kind == "checker" else channel_mask
            mask = make_mask(shape, i % 2)
            net = CouplingConvNet(shape[0], 2 * shape[0], cfg.channels, cfg.blocks)
            layers += self._coupling(shape[0], mask, net)
        return layers

    def _scale(self, shape: tuple[int, int, int], level: int) -> FlowLayer:
        """The flow from scale ``level`` on: ``(B, *shape) -> (B, D)`` flat."""
        cfg = self.config
        if level >= cfg.scales or not can_squeeze(shape):  # the last scale (Sec. 3.6)
            layers = self._image_couplings(shape, cfg.final_couplings, "checker")
            return FlowSequential([*layers, Flatten(shape)])
        layers = self._image_couplings(shape, cfg.checker_couplings, "checker")
        layers.append(Squeeze())
        c, h, w = shape
        shape = (4 * c, h // 2, w // 2)  # (4C, H/2, W/2)
        layers += self._image_couplings(shape, cfg.channel_couplings, "channel")
        kept = ((shape[0] + 1) // 2, shape[1], shape[2])  # half the channels go on
        layers.append(FactorOut(shape, self._scale(kept, level + 1)))
        return FlowSequential(layers)

    def build_flow(self, shape: tuple[int, ...]) -> FlowLayer:
        cfg = self.config
        if self.is_image:
            return self._scale(shape, 0)  # type: ignore[arg-type]
        d = shape[0]
        layers: list[FlowLayer] = []
        for i in range(cfg.couplings):
            net = CouplingMLP(d, 2 * d, cfg.hidden)
            layers += self._coupling(d, alternating_mask(d, i % 2), net)
        return FlowSequential(layers)
