"""DINO: self-distillation with no labels (Caron et al., "Emerging Properties in Self-Supervised
Vision Transformers", arXiv:2104.14294), with a ViT-tiny student and teacher.

A student network (ViT + DINO head: a 3-layer MLP, an l2-normalised bottleneck and a
weight-normalised linear layer to ``K`` outputs, Sec. 3.1) and a teacher with the same
architecture, the exponential moving average of the student (Sec. 3.1, "Teacher network"),
see different crops of an image: the teacher the two global views, the student those and
``local_crops`` small local crops (multi-crop, Sec. 3.1). The loss is the cross-entropy between
the teacher's and the student's softmax distributions over ``K`` dimensions (Eq. (1), (3)),
summed over every pair of a teacher view and a different student view. Collapse is avoided by
centring the teacher's outputs with a running mean ``c`` (Eq. (4)) and sharpening them with a low
teacher temperature (Sec. 3.2). The centre is a buffer, so it is checkpointed.

At genzoo's scale the paper's head without BatchNorm collapsed within 25-250 steps on mnist5k
(the ViT's features of different images start almost alike: std_sqrt_d 0.07 of the [CLS]
feature at initialisation, so the centred teacher outputs hardly differ and the targets carry no
signal). The head therefore has BatchNorm after its hidden layers by default (``head_bn=True``,
the ``use_bn_in_head`` option of the DINO code): the batch statistics keep the outputs of
different images apart, as in SimCLR's and BYOL's heads. The paper's other stabilisers are
options: a linear warm-up of the teacher temperature (``warmup_teacher_temp`` to
``teacher_temp`` over ``teacher_temp_steps``), a frozen last layer for ``freeze_last_steps``,
``pool="mean"`` (mean patch token instead of [CLS]) and the trainer's ``warmup`` of the
learning rate; docs/ssl.md and benchmarks/RESULTS.md give the measurements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.models.ssl.base import SSLConfig, SSLModel, ema_update, frozen_copy, momentum_at


@dataclass(frozen=True)
class DINOConfig(SSLConfig):
    backbone: Literal["resnet", "vit"] = "vit"  # DINO's student and teacher are ViTs
    width: int = bounded(64, ge=1)  # vit: token width (ViT-tiny at CPU scale)
    out_dim: int = bounded(256, ge=2)  # K: dimensions of the softmax (65,536 in the paper)
    student_temp: float = bounded(0.1, gt=0)  # tau_s
    warmup_teacher_temp: float = bounded(0.04, gt=0)  # tau_t at step 0 (sharpening)
    teacher_temp: float = bounded(0.04, gt=0)  # tau_t after the linear warm-up
    teacher_temp_steps: int = bounded(0, ge=0)  # steps of the warm-up of tau_t (0: none)
    freeze_last_steps: int = bounded(0, ge=0)  # steps with the last layer frozen (App.)
    head_bn: bool = True  # BatchNorm in the head's MLP (the DINO code's use_bn_in_head; see above)
    center_momentum: float = bounded(0.9, ge=0, le=1)  # m of the centre, Eq. (4)
    momentum: float = bounded(0.99, ge=0, le=1)  # lambda of the teacher (0.996 in the paper)
    momentum_steps: int = bounded(0, ge=0)  # steps of the cosine schedule of lambda to 1 (0: off)
    local_crops: int = bounded(4, ge=0)  # small crops seen by the student only
    local_scale: tuple[float, float] = bounded((0.1, 0.4), gt=0, le=1)  # their area range

    def validate(self) -> None:
        super().validate()
        if self.local_scale[0] > self.local_scale[1]:
            raise ConfigError(f"local_scale = {list(self.local_scale)} must be (min, max).")


def teacher_temp_at(start: float, end: float, step: int, steps: int) -> float:
    """The teacher temperature at ``step``: linear from ``start`` to ``end`` over ``steps``
    steps, then ``end`` (the warm-up of tau_t, Sec. 3.1 / App.; ``steps = 0``: ``end``)."""
    if steps <= 0 or step >= steps:
        return end
    return start + (end - start) * step / steps


def dino_loss(
    student: list[Tensor], teacher: list[Tensor], center: Tensor, tau_s: float, tau_t: float
) -> Tensor:
    """DINO's loss (Eq. (3)): the mean over pairs ``(i, j)``, ``i`` a teacher (global) view and
    ``j != i`` a student view, of ``H(P_t(x_i), P_s(x_j)) = -sum_k P_t log P_s`` averaged over
    the batch; ``P_t = softmax((t - c) / tau_t)`` (centring, Eq. (4); sharpening), ``P_s =
    softmax(s / tau_s)`` (Eq. (1)). Teacher outputs carry no gradient."""
    targets = [F.softmax((t.detach() - center) / tau_t, dim=-1) for t in teacher]
    logp = [F.log_softmax(s / tau_s, dim=-1) for s in student]
    terms = [
        -(pt * ls).sum(-1).mean()
        for i, pt in enumerate(targets)
        for j, ls in enumerate(logp)
        if j != i  # the same view is not compared with itself
    ]
    return torch.stack(terms).mean()


class DINOHead(nn.Module):
    """3-layer MLP (GELU; BatchNorm after the hidden layers with ``bn``), l2-normalised
    bottleneck, weight-normalised linear layer with its norm fixed to 1 (Sec. 3.1 / App.):
    ``(B, in) -> (B, K)``; ``mlp`` gives the bottleneck embedding. Linear layers start as in the
    DINO code: truncated normal weights (std 0.02), zero biases."""

    def __init__(
        self, in_dim: int, hidden: int, bottleneck: int, out_dim: int, bn: bool = False
    ) -> None:
        super().__init__()

        def block(i: int) -> list[nn.Module]:
            return [nn.Linear(i, hidden), *([nn.BatchNorm1d(hidden)] if bn else []), nn.GELU()]

        self.mlp = nn.Sequential(*block(in_dim), *block(hidden), nn.Linear(hidden, bottleneck))
        for m in self.mlp.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last = nn.Parameter(torch.empty(out_dim, bottleneck))  # direction v of w = v / |v|
        nn.init.trunc_normal_(self.last, std=0.02)

    def out(self, u: Tensor, frozen: bool = False) -> Tensor:
        """Bottleneck embeddings ``(B, bottleneck)`` -> outputs ``(B, K)``; ``frozen``: no
        gradient reaches the last layer (its first steps, App.)."""
        u = F.normalize(u, dim=-1)  # the l2-normalised bottleneck
        v = self.last.detach() if frozen else self.last
        return u @ F.normalize(v, dim=-1).t()  # weight norm with g = 1

    def forward(self, h: Tensor, frozen: bool = False) -> Tensor:
        return self.out(self.mlp(h), frozen)


@register_model("dino")
class DINO(SSLModel):
    """DINO: ViT student, EMA teacher, centring and sharpening, multi-crop (arXiv:2104.14294)."""

    config_class: ClassVar[type[Config]] = DINOConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 5e-4, "batch_size": 128}
    config: DINOConfig

    def __init__(self, config: DINOConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.head = DINOHead(
            self.encoder.out_dim, c.proj_hidden, c.proj_dim, c.out_dim, bn=c.head_bn
        )
        self.teacher = frozen_copy(self.student())
        self.register_buffer("center", torch.zeros(1, c.out_dim))  # c of Eq. (4)
        side = info.shape[1]
        unit = c.patch if c.backbone == "vit" else 1
        self.local_size = max(unit, unit * round(side * 3 / 7 / unit))  # 96/224 of the paper

    def student(self) -> nn.Sequential:
        """The student network (the same modules, not a copy)."""
        return nn.Sequential(self.encoder, self.head)

    def project(self, x: Tensor) -> Tensor:
        return self.head.mlp(self.encoder(x))

    def before_step(self) -> None:
        c = self.config
        lam = momentum_at(c.momentum, int(self.updates), c.momentum_steps)
        ema_update(self.teacher, self.student(), lam)  # theta_t <- l theta_t + (1 - l) theta_s

    def objective(
        self, x: Tensor, update: bool, generator: torch.Generator | None
    ) -> tuple[Tensor, dict[str, Tensor], Tensor, Tensor]:
        c = self.config
        step = int(self.updates) - 1  # the step being taken (updates counts it already)
        frozen = update and step < c.freeze_last_steps
        tau_t = teacher_temp_at(c.warmup_teacher_temp, c.teacher_temp, step, c.teacher_temp_steps)
        g1, g2 = self.views(x, generator)
        glob = torch.cat([g1, g2])  # (2B, C, H, W)
        u = self.head.mlp(self.encoder(glob))  # (2B, bottleneck)
        student = list(self.head.out(u, frozen).chunk(2))
        if c.local_crops:
            loc = torch.cat([
                self.augment(x, self.local_size, scale=c.local_scale, generator=generator)
                for _ in range(c.local_crops)
            ])  # fmt: skip  # (n_local B, C, h, w)
            student += list(self.head(self.encoder(loc), frozen).chunk(c.local_crops))
        with torch.no_grad():
            t = self.teacher(glob)  # (2B, K)
        loss = dino_loss(student, list(t.chunk(2)), self.center, c.student_temp, tau_t)
        if update:  # Eq. (4): c <- m c + (1 - m) mean of the teacher outputs
            self.center.lerp_(t.mean(0, keepdim=True), 1 - c.center_momentum)
        z1, z2 = u.detach().chunk(2)
        probs = F.softmax((t - self.center) / tau_t, dim=-1)
        ent = -(probs * probs.clamp_min(1e-12).log()).sum(-1).mean()  # teacher entropy
        return loss, {"teacher_entropy": ent, "teacher_temp": torch.tensor(tau_t)}, z1, z2
