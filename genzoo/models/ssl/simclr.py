"""SimCLR: a simple framework for contrastive learning of visual representations (Chen, Kornblith,
Norouzi & Hinton, arXiv:2002.05709).

Two random views of every image of a batch (Sec. 2.1, App. A) go through the encoder f and the
projection head g (Linear-BN-ReLU-Linear); the NT-Xent loss (normalised temperature-scaled cross
entropy, Eq. (1)) makes each view pick its partner among the other ``2N - 1`` views of the batch
by cosine similarity over ``tau``. The representation is the encoder's output h, before g.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.core.config import Config, bounded
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.models.ssl.base import SSLConfig, SSLModel, projector


@dataclass(frozen=True)
class SimCLRConfig(SSLConfig):
    temperature: float = bounded(0.5, gt=0)  # tau of NT-Xent (0.5 for small batches, App. B.9)


def nt_xent(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """NT-Xent of the positive pairs ``(z1[i], z2[i])``, ``(N, d)`` each, averaged over all
    ``2N`` anchors (Eq. (1) and Alg. 1): the cross-entropy of each anchor's similarities to the
    other ``2N - 1`` views, its partner being the target."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2N, d): sim(u, v) = u^T v / |u| |v|
    sim = z @ z.t() / temperature  # (2N, 2N)
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, float("-inf"))  # 1[k != i] of Eq. (1)
    target = (torch.arange(2 * n, device=z.device) + n) % (2 * n)  # the partner view
    return F.cross_entropy(sim, target)  # Eq. (1), mean over the 2N terms l(i, j), l(j, i)


@register_model("simclr")
class SimCLR(SSLModel):
    """SimCLR: encoder + projection head, NT-Xent over two views (arXiv:2002.05709)."""

    config_class: ClassVar[type[Config]] = SimCLRConfig
    config: SimCLRConfig

    def __init__(self, config: SimCLRConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        self.head = projector(self.encoder.out_dim, config.proj_hidden, config.proj_dim)

    def project(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x))  # z = g(f(x)), (B, proj_dim)

    def objective(
        self, x: Tensor, update: bool, generator: torch.Generator | None
    ) -> tuple[Tensor, dict[str, Tensor], Tensor, Tensor]:
        v1, v2 = self.views(x, generator)
        z = self.project(torch.cat([v1, v2]))  # one pass: BatchNorm sees both views
        z1, z2 = z.chunk(2)
        loss = nt_xent(z1, z2, self.config.temperature)
        return loss, {}, z1, z2
