"""MAF and IAF: normalizing flows of stacked affine autoregressive layers.

- MAF: Papamakarios, Pavlakou & Murray, "Masked Autoregressive Flow for Density Estimation",
  arXiv:1705.07057. Each layer is ``u_i = (x_i - mu_i) exp(-alpha_i)`` with ``(mu, alpha)`` from a
  MADE (Germain et al., arXiv:1502.03509) over ``x_<i`` (Eq. 3-5): the density is one pass per
  layer, sampling ``D`` passes. Layers alternate the ordering of the variables (Sec. 3.1:
  "reverse the order between layers") or draw a random one; ActNorm between layers stands in for
  the paper's batch normalisation (Sec. 3.4), as in genzoo's RealNVP.
- IAF: Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling, "Improved Variational Inference
  with Inverse Autoregressive Flow", arXiv:1606.04934. The same layer used in the sampling
  direction (MAF Sec. 3.2): ``x_i = u_i exp(alpha_i(u_<i)) + mu_i(u_<i)`` is one pass, so sampling
  is fast and the density needs ``D`` passes per layer. :class:`IAF` differs from :class:`MAF` by
  one hook, :meth:`MAF.autoregressive_layer`, which wraps the layer in
  :class:`~genzoo.nn.made.Inverted`.

Both flatten images (after the logit pre-processing of :class:`FlowModel`) to vectors of ``D``
values in raster order and model them with MADEs over all ``D``, as the MAF paper does on MNIST.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from genzoo.core.config import Config, bounded
from genzoo.core.registry import register_model
from genzoo.models.flows.base import FlowModel
from genzoo.nn.flow_layers import ActNorm, Flatten, FlowLayer, FlowSequential
from genzoo.nn.made import MADE, AffineAutoregressive, Inverted


@dataclass(frozen=True)
class MAFConfig(Config):
    """Configuration of :class:`MAF` and :class:`IAF`."""

    flows: int = bounded(5, ge=1)  # autoregressive layers (MAF paper: 5 or 10)
    hidden: tuple[int, ...] = bounded((256, 256), ge=1)  # MADE hidden widths per layer (MAF
    # paper: 1024 on MNIST, 100 on UCI)
    order: Literal["reverse", "random"] = "reverse"  # orderings of successive layers: identity
    # and reversed in turn (MAF Sec. 3.1), or a fixed random permutation per layer (seeded)
    actnorm: bool = True  # ActNorm between layers (for the paper's batch norm, Sec. 3.4)
    max_log_scale: float = bounded(3.0, ge=0.0)  # soft bound |alpha| < c via c tanh(raw / c)
    # (0: none)
    logit_alpha: float = bounded(0.05, gt=0.0, lt=0.5)  # images: logit pre-processing
    # logit(alpha + (1 - 2 alpha) u)


def layer_order(kind: str, dim: int, k: int) -> torch.Tensor:
    """The ordering of layer ``k``: identity / reversed in turn, or a permutation seeded by k."""
    if kind == "random":
        return torch.randperm(dim, generator=torch.Generator().manual_seed(1000 + k))
    return torch.arange(dim) if k % 2 == 0 else torch.arange(dim - 1, -1, -1)


@register_model("maf")
class MAF(FlowModel):
    """Masked Autoregressive Flow (arXiv:1705.07057): fast exact density, ``D`` passes to sample.

    ``x (B, *shape) -> [logit] -> flatten -> [AffineAutoregressive (-> ActNorm)] x flows -> u``.
    """

    config_class: ClassVar[type[Config]] = MAFConfig
    config: MAFConfig

    def autoregressive_layer(self, made: MADE) -> FlowLayer:
        """The hook: MAF's layer runs MADE in the density direction."""
        return AffineAutoregressive(made, self.config.max_log_scale)

    def build_flow(self, shape: tuple[int, ...]) -> FlowLayer:
        cfg = self.config
        d = self.info.dim
        layers: list[FlowLayer] = []
        if self.is_image:
            layers.append(Flatten(shape))  # (B, C, H, W) -> (B, D)
        for k in range(cfg.flows):
            made = MADE(d, cfg.hidden, 2, layer_order(cfg.order, d, k))
            layers.append(self.autoregressive_layer(made))
            if cfg.actnorm and k < cfg.flows - 1:
                layers.append(ActNorm(d))
        return FlowSequential(layers)


@register_model("iaf")
class IAF(MAF):
    """Inverse Autoregressive Flow (arXiv:1606.04934): MAF's layers inverted, one pass to sample.

    Sampling is one MADE pass per layer and ``log_prob`` takes ``D`` (slow to train on images)."""

    def autoregressive_layer(self, made: MADE) -> FlowLayer:
        return Inverted(AffineAutoregressive(made, self.config.max_log_scale))
