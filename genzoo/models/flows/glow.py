"""Glow: generative flow with invertible 1x1 convolutions (Kingma & Dhariwal, arXiv:1807.03039).

One step of flow is ActNorm -> invertible 1x1 convolution (LU-decomposed) -> affine (or
additive) coupling (Sec. 3, Fig. 2a, Table 1). The multi-scale architecture (Fig. 2b) has ``L``
levels: each squeezes, runs ``K`` steps and, except the last, splits off half of its channels
under a learned Gaussian prior conditioned on the other half. Images are logit pre-processed as
in RealNVP (arXiv:1605.08803, Sec. 4.1). On points a step is ActNorm -> invertible linear map (the
1x1 convolution of a 1x1 image) -> affine coupling of the two halves, with MLP nets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from torch import Tensor

from genzoo.core.config import Config, bounded
from genzoo.core.registry import register_model
from genzoo.models.flows.base import FlowModel, can_squeeze
from genzoo.nn.flow_layers import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    CouplingConvNet,
    CouplingMLP,
    FactorOut,
    Flatten,
    FlowLayer,
    FlowSequential,
    InvertibleConv1x1,
    Squeeze,
    channel_mask,
    checkerboard_mask,
    half_mask,
)


@dataclass(frozen=True)
class GlowConfig(Config):
    """Configuration of :class:`Glow`."""

    levels: int = bounded(2, ge=1)  # L (images): levels; each squeezes (when H and W are even),
    # runs K steps and, except the last, splits off half its channels; 8x8 -> 4x4 -> 2x2,
    # 28x28 -> 14x14 -> 7x7
    steps: int = bounded(8, ge=1)  # K: steps of flow per level (images), or in all (points);
    # paper: 32
    channels: int = bounded(64, ge=1)  # images: width of the coupling nets (paper: 512)
    blocks: int = bounded(1, ge=0)  # images: residual blocks per coupling net
    hidden: tuple[int, ...] = bounded((64, 64), ge=1)  # points: hidden widths of the MLP coupling
    # nets
    coupling: Literal["affine", "additive"] = "affine"  # coupling type (Glow studies both)
    scale_fn: Literal["sigmoid", "tanh"] = "sigmoid"  # affine log-scale: Glow's sigmoid(raw + 2),
    # or RealNVP's a * tanh(raw)
    learned_prior: bool = True  # split prior N(mu(h), sigma(h)) from the kept half (else N(0, I))
    logit_alpha: float = bounded(0.05, gt=0.0, lt=0.5)  # images: logit pre-processing
    # logit(alpha + (1 - 2 alpha) u)


@register_model("glow")
class Glow(FlowModel):
    """Glow (arXiv:1807.03039): ActNorm, LU-decomposed invertible 1x1 convolutions, couplings,
    multi-scale with learned split priors; exact log-likelihood."""

    config_class: ClassVar[type[Config]] = GlowConfig
    config: GlowConfig

    def _step(self, channels: int, mask: Tensor, net_in: int, image: bool) -> list[FlowLayer]:
        """One step of flow (Fig. 2a): actnorm, invertible 1x1 conv, coupling."""
        cfg = self.config
        k = 2 if cfg.coupling == "affine" else 1
        if image:
            net = CouplingConvNet(net_in, k * net_in, cfg.channels, cfg.blocks)
        else:
            net = CouplingMLP(net_in, k * net_in, cfg.hidden)
        coupling: FlowLayer
        if cfg.coupling == "affine":
            coupling = AffineCoupling(mask, net, cfg.scale_fn)
        else:
            coupling = AdditiveCoupling(mask, net)
        return [ActNorm(channels), InvertibleConv1x1(channels), coupling]

    def _level(self, shape: tuple[int, int, int], level: int) -> FlowLayer:
        """The flow from ``level`` on: ``(B, *shape) -> (B, D)`` flat."""
        cfg = self.config
        layers: list[FlowLayer] = []
        if can_squeeze(shape):
            layers.append(Squeeze())
            c, h, w = shape
            shape = (4 * c, h // 2, w // 2)  # (4C, H/2, W/2)
        for k in range(cfg.steps):
            # couple channel halves; a 1-channel image (no squeeze possible) uses checkerboards
            mask = channel_mask(shape, 0) if shape[0] > 1 else checkerboard_mask(shape, k % 2)
            layers += self._step(shape[0], mask, shape[0], image=True)
        if level + 1 < cfg.levels and shape[0] > 1:
            kept = ((shape[0] + 1) // 2, shape[1], shape[2])  # (C/2, H, W) go on
            layers.append(FactorOut(shape, self._level(kept, level + 1), cfg.learned_prior))
        else:
            layers.append(Flatten(shape))
        return FlowSequential(layers)

    def build_flow(self, shape: tuple[int, ...]) -> FlowLayer:
        if self.is_image:
            return self._level(shape, 0)  # type: ignore[arg-type]
        d = shape[0]
        layers: list[FlowLayer] = []
        for _ in range(self.config.steps):
            layers += self._step(d, half_mask(d), d, image=False)
        return FlowSequential(layers)
