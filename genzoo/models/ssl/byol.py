"""BYOL: bootstrap your own latent (Grill et al., arXiv:2006.07733).

An online network (encoder, projector, predictor q) predicts the projection that a target network
(encoder and projector, an exponential moving average of the online ones, Eq. (1):
``xi <- tau xi + (1 - tau) theta``) gives to another view of the same image. The loss is the
squared distance of the l2-normalised prediction and target projection, ``2 - 2 cos`` (Eq. (2)),
symmetrised over the two views (Eq. (3)); there are no negatives, and the predictor with the slow
target keeps the representation from collapsing (Sec. 3.2). ``tau`` follows the cosine schedule
from ``momentum`` to 1 over ``momentum_steps`` (Sec. 3.3; 0: constant).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.models.ssl.base import (
    SSLConfig,
    SSLModel,
    ema_update,
    frozen_copy,
    momentum_at,
    projector,
)


@dataclass(frozen=True)
class BYOLConfig(SSLConfig):
    momentum: float = bounded(0.99, ge=0, le=1)  # tau_base of the target (0.996 in the paper)
    momentum_steps: int = bounded(0, ge=0)  # steps of the cosine schedule of tau to 1 (0: off)


def regression_loss(p: Tensor, z: Tensor) -> Tensor:
    """``|p/|p| - z/|z||^2 = 2 - 2 cos(p, z)`` per example (Eq. (2)), ``(B,)``."""
    return 2 - 2 * F.cosine_similarity(p, z, dim=1)


@register_model("byol")
class BYOL(SSLModel):
    """BYOL: online encoder + projector + predictor regressing an EMA target (arXiv:2006.07733)."""

    config_class: ClassVar[type[Config]] = BYOLConfig
    config: BYOLConfig

    def __init__(self, config: BYOLConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.head = projector(self.encoder.out_dim, c.proj_hidden, c.proj_dim)  # g_theta
        self.predictor = projector(c.proj_dim, c.proj_hidden, c.proj_dim)  # q_theta
        self.target = frozen_copy(self.online())  # f_xi, g_xi

    def online(self) -> nn.Sequential:
        """The online encoder and projector (the same modules, not a copy)."""
        return nn.Sequential(self.encoder, self.head)

    def project(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x))

    def before_step(self) -> None:
        c = self.config
        tau = momentum_at(c.momentum, int(self.updates), c.momentum_steps)
        ema_update(self.target, self.online(), tau)  # Eq. (1)

    def objective(
        self, x: Tensor, update: bool, generator: torch.Generator | None
    ) -> tuple[Tensor, dict[str, Tensor], Tensor, Tensor]:
        v1, v2 = self.views(x, generator)
        z = self.project(torch.cat([v1, v2]))  # (2B, d) online projections
        p1, p2 = self.predictor(z).chunk(2)
        with torch.no_grad():
            t1, t2 = self.target(torch.cat([v1, v2])).chunk(2)  # target projections
        # Eq. (3): L + L~, the second term with the views swapped
        loss = (regression_loss(p1, t2) + regression_loss(p2, t1)).mean()
        z1, z2 = z.chunk(2)
        return loss, {}, z1, z2
