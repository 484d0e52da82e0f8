"""NICE: Non-linear Independent Components Estimation (Dinh, Krueger & Bengio, arXiv:1410.8516).

A stack of additive (volume-preserving) coupling layers with alternating partitions, followed
by a learned diagonal scaling, which carries the whole log-determinant (Sec. 3.2 and 3.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.registry import register_model
from genzoo.models.flows.base import FlowModel
from genzoo.nn.flow_layers import (
    AdditiveCoupling,
    CouplingConvNet,
    CouplingMLP,
    DiagonalScaling,
    Flatten,
    FlowLayer,
    FlowSequential,
    alternating_mask,
    checkerboard_mask,
)


@dataclass(frozen=True)
class NICEConfig(Config):
    """Configuration of :class:`NICE`."""

    couplings: int = bounded(4, ge=1)  # additive coupling layers, alternating partitions (the paper
    # uses 4)
    arch: Literal["auto", "mlp", "conv"] = "auto"  # coupling nets: auto = MLP for points, conv
    # (checkerboard masks) for images; mlp on images couples odd/even pixels as in the paper
    hidden: tuple[int, ...] = bounded((256, 256, 256), ge=1)  # MLP coupling nets: hidden widths
    # (paper: 5 x 1000)
    channels: int = bounded(64, ge=1)  # conv coupling nets: width of the residual blocks
    blocks: int = bounded(2, ge=0)  # conv coupling nets: residual blocks
    logit_alpha: float = bounded(0.05, gt=0.0, lt=0.5)  # images: logit pre-processing
    # logit(alpha + (1 - 2 alpha) u)


@register_model("nice")
class NICE(FlowModel):
    """NICE (arXiv:1410.8516): additive couplings + diagonal scaling, exact log-likelihood.

    ``x -> [additive coupling, partition alternating] x couplings -> exp(s) * h = z``. Points and
    ``arch = "mlp"`` images couple odd with even coordinates through MLPs; ``arch = "conv"`` images
    couple the two colours of a checkerboard through small ResNets.
    """

    config_class: ClassVar[type[Config]] = NICEConfig
    config: NICEConfig

    def build_flow(self, shape: tuple[int, ...]) -> FlowLayer:
        cfg = self.config
        arch = cfg.arch
        if arch == "auto":
            arch = "conv" if self.is_image else "mlp"
        if arch == "conv" and not self.is_image:
            raise ConfigError(f"arch = 'conv' needs images, but {self.info.name!r} holds points.")
        layers: list[FlowLayer] = []
        if arch == "conv":
            c = shape[0]
            for i in range(cfg.couplings):
                net = CouplingConvNet(c, c, cfg.channels, cfg.blocks)
                layers.append(AdditiveCoupling(checkerboard_mask(shape, i % 2), net))
            layers += [DiagonalScaling(shape), Flatten(shape)]
            return FlowSequential(layers)
        d = self.info.dim
        if self.is_image:
            layers.append(Flatten(shape))  # (B, C, H, W) -> (B, D)
        for i in range(cfg.couplings):
            net = CouplingMLP(d, d, cfg.hidden)
            layers.append(AdditiveCoupling(alternating_mask(d, i % 2), net))
        layers.append(DiagonalScaling((d,)))
        return FlowSequential(layers)
