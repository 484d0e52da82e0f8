"""MoCo v2: momentum contrast (He, Fan, Wu, Xie & Girshick, arXiv:1911.05722) with the MLP head
and stronger augmentation of Chen, Fan, Girshick & He, "Improved Baselines with Momentum
Contrastive Learning", arXiv:2003.04297.

A query encoder f_q (backbone + MLP head) and a key encoder f_k, its momentum average
(Eq. (2): ``theta_k <- m theta_k + (1 - m) theta_q``), embed two views of each image. The
InfoNCE loss (Eq. (1)) classifies each query's own key (the positive) against the ``K`` keys of
a FIFO queue of earlier batches (the negatives); after the step the batch's keys are enqueued and
the oldest dequeued (Sec. 3.2, Alg. 1). Queue and write pointer are buffers, so they are
checkpointed with the weights.

The head has BatchNorm after its hidden layer by default (``head_bn=True``): that is MoCo v3's
projection head (Chen, Xie & He, arXiv:2104.02057, Sec. 4), not v2's. With v2's plain MLP head
(``head_bn=false``) the representation collapsed in genzoo's CPU-sized runs (on shapes to one
vector, on mnist5k to an effective rank of 4 of 64; benchmarks/RESULTS.md), with BatchNorm it did
not; v2's head stays available.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.registry import register_model
from genzoo.core.seeding import randn
from genzoo.data.base import DataInfo
from genzoo.models.ssl.base import SSLConfig, SSLModel, ema_update, frozen_copy, projector


@dataclass(frozen=True)
class MoCoConfig(SSLConfig):
    temperature: float = bounded(0.2, gt=0)  # tau of InfoNCE (0.2 in MoCo v2)
    momentum: float = bounded(0.99, ge=0, le=1)  # m of the key encoder (0.999 in the paper)
    queue_size: int = bounded(1024, ge=1)  # K negative keys (65,536 in the paper)
    head_bn: bool = True  # BatchNorm in the MLP head (MoCo v3's, arXiv:2104.02057; false: v2's)


@register_model("moco")
class MoCo(SSLModel):
    """MoCo v2 (arXiv:2003.04297): query encoder, momentum key encoder, FIFO queue of keys; by
    default with MoCo v3's BatchNorm head (arXiv:2104.02057)."""

    config_class: ClassVar[type[Config]] = MoCoConfig
    config: MoCoConfig

    def __init__(self, config: MoCoConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.head = projector(self.encoder.out_dim, c.proj_hidden, c.proj_dim, batch_norm=c.head_bn)
        self.key_encoder = frozen_copy(self.online())  # f_k
        queue = F.normalize(randn((c.queue_size, c.proj_dim)), dim=1)
        self.register_buffer("queue", queue)  # (K, d) keys, oldest at queue_ptr
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def online(self) -> nn.Sequential:
        """The query encoder f_q: backbone, then MLP head (the same modules, not a copy)."""
        return nn.Sequential(self.encoder, self.head)

    def project(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x))

    def before_step(self) -> None:
        ema_update(self.key_encoder, self.online(), self.config.momentum)  # Eq. (2)

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Write ``keys`` ``(B, d)`` over the oldest entries of the queue (FIFO, wrapping)."""
        k = self.queue.shape[0]
        keys = keys[-k:]  # a batch larger than the queue keeps only its newest keys
        idx = (self.queue_ptr + torch.arange(keys.shape[0], device=keys.device)) % k
        self.queue[idx] = keys.to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % k)

    def objective(
        self, x: Tensor, update: bool, generator: torch.Generator | None
    ) -> tuple[Tensor, dict[str, Tensor], Tensor, Tensor]:
        v1, v2 = self.views(x, generator)
        q = F.normalize(self.project(v1), dim=1)  # (B, d) queries
        with torch.no_grad():
            k = F.normalize(self.key_encoder(v2), dim=1)  # (B, d) keys, no gradient
        pos = (q * k).sum(1, keepdim=True)  # (B, 1): q . k+
        neg = q @ self.queue.clone().t()  # (B, K): q . k_i of the queue
        logits = torch.cat([pos, neg], dim=1) / self.config.temperature
        labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        loss = F.cross_entropy(logits, labels)  # Eq. (1): InfoNCE, the positive is class 0
        acc = (logits.argmax(1) == 0).float().mean()
        if update:
            self.enqueue(k)
        return loss, {"acc": acc.detach()}, q, k
