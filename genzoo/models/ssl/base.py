"""What the self-supervised models share, written once: the config, the backbone (a small ResNet
or a ViT-tiny), the projection heads, the exponential-moving-average (momentum) update of a
target network, its momentum schedule, the augmented views and the collapse monitors.

A self-supervised model is a :class:`~genzoo.core.protocol.GenerativeModel` that learns a
representation and draws no samples (it does not inherit ``Samples``): it has ``loss`` for the
one Trainer and the capability :class:`~genzoo.core.protocol.Embeds` (``embed(x)``: the
backbone's features, what probes and ``genzoo embed`` read). Everything a method keeps between
steps — a momentum target network, MoCo's queue, DINO's centre, the step count of a momentum
schedule — is a parameter or a buffer, so it is in every checkpoint and a resumed run continues
exactly. The target networks are updated at the start of each training ``loss`` call, from the
online weights the previous optimizer step left: the same sequence as updating them right after
that step (MoCo Alg. 1, BYOL Alg. 1, DINO Alg. 1), without a hook in the Trainer.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, Embeds, GenerativeModel, LossOutput
from genzoo.data.base import DataInfo
from genzoo.models.ssl.augment import Augment, preset
from genzoo.models.ssl.monitors import collapse_monitors
from genzoo.nn.encoders import ImageEncoder
from genzoo.nn.vit import ViT


@dataclass(frozen=True)
class SSLConfig(Config):
    """Settings every self-supervised model has (defaults fit mnist5k and shapes on a CPU)."""

    backbone: Literal["resnet", "vit"] = "resnet"  # small GroupNorm ResNet or ViT-tiny
    width: int = bounded(32, ge=1)  # resnet: channels of the first stage; vit: token width
    depth: int = bounded(4, ge=1)  # vit: transformer blocks
    heads: int = bounded(4, ge=1)  # vit: attention heads
    patch: int = bounded(4, ge=1)  # vit: side of a patch in pixels
    pool: Literal["cls", "mean"] = "cls"  # vit: the [CLS] feature or the mean patch token
    proj_hidden: int = bounded(256, ge=1)  # hidden width of the projection head
    proj_dim: int = bounded(64, ge=1)  # dimension of the projected embedding the loss sees
    crop_min: float | None = bounded(None, gt=0, le=1)  # smallest crop area (None: the preset's)
    flip: bool | None = None  # horizontal flips (None: the dataset's preset; never for digits)
    color_jitter: float | None = bounded(None, ge=0)  # jitter strength (None: the preset's)
    grayscale: float | None = bounded(None, ge=0, le=1)  # p of a grey view (None: the preset's)
    darken: float | None = bounded(None, ge=0, lt=1)  # hue-keeping darkening (None: preset's)
    grey_one_view: bool = False  # grey views (p = grayscale) in the first view of a pair only

    def validate(self) -> None:
        if self.backbone == "vit":
            if self.width % self.heads:
                raise ConfigError(
                    f"width = {self.width} must be divisible by heads = {self.heads}."
                )
            if self.width % 4:
                raise ConfigError(
                    f"width = {self.width} must be divisible by 4 (2-D sin-cos positions)."
                )


class Backbone(nn.Module):
    """The encoder ``(B, C, H, W) -> (B, out_dim)``: the pooled features of genzoo's small
    ResNet (:class:`~genzoo.nn.encoders.ImageEncoder`, GroupNorm, so no example reads another
    through batch statistics) or the ``[CLS]`` feature (or mean patch token, ``pool="mean"``) of
    a :class:`~genzoo.nn.vit.ViT`."""

    def __init__(self, config: SSLConfig, info: DataInfo) -> None:
        super().__init__()
        c, (ch, h, _w) = config, info.shape
        self.net: nn.Module
        if c.backbone == "vit":
            if h % c.patch:
                raise ConfigError(
                    f"patch = {c.patch} must divide the image side {h} of {info.name!r}."
                )
            self.net = ViT(ch, c.patch, c.width, c.depth, c.heads, pool=c.pool)
            self.out_dim = c.width
        else:
            enc = ImageEncoder(ch, h, c.width)
            del enc.pos  # token positions: the pooled feature does not use them
            self.net = enc
            self.out_dim = enc.out_dim
        self.resnet = c.backbone == "resnet"

    def pooled_stages(self, x: Tensor, stages: int) -> Tensor:
        """The mean-pooled feature maps of the ResNet's last ``stages`` stages, concatenated
        ``(B, C_{n-stages+1} + ... + C_n)`` (finest first); ``stages = 1`` is :meth:`forward`.
        Earlier stages keep what the augmentations teach the last ones to ignore (e.g. colour)."""
        if not self.resnet:
            raise ConfigError(
                f"Features of the last {stages} stages need backbone=resnet; this run's backbone "
                "is a ViT, whose features are its [CLS] (or mean) token: use stages=1."
            )
        maps = self.net.stage_outputs(x)
        if not 1 <= stages <= len(maps):
            raise ConfigError(
                f"stages = {stages} must be between 1 and the backbone's {len(maps)} stages."
            )
        return torch.cat([m.mean(dim=(2, 3)) for m in maps[-stages:]], dim=1)  # (B, sum C_i)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, out_dim)
        if self.resnet:  # the ResNet's stages and mean pool (its token positions are not used)
            return self.net.body(x).mean(dim=(2, 3))  # (B, C, g, g) -> (B, C)
        return self.net(x)


def projector(
    in_dim: int, hidden: int, out_dim: int, *, batch_norm: bool = True, layers: int = 2
) -> nn.Sequential:
    """The MLP head ``[Linear, (BatchNorm), ReLU] * (layers - 1), Linear``: SimCLR's g(.)
    (Sec. 2.1), MoCo v2's MLP head (no BatchNorm), BYOL's projector and predictor (Sec. 3.3)."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden)]
        mods += [nn.BatchNorm1d(hidden)] if batch_norm else []
        mods += [nn.ReLU()]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` that the optimizer never updates (a momentum target network)."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, m: float) -> None:
    """``xi <- m xi + (1 - m) theta`` for every parameter and floating-point buffer (BYOL Eq. (1),
    MoCo Eq. (2)); other buffers (counters) are copied. ``m = 0`` copies, ``m = 1`` freezes."""
    torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), 1.0 - m)
    for tb, ob in zip(target.buffers(), online.buffers(), strict=True):
        if tb.is_floating_point():
            tb.lerp_(ob, 1.0 - m)
        elif m < 1:
            tb.copy_(ob)


def momentum_at(base: float, step: int, total: int) -> float:
    """The cosine momentum schedule of BYOL (Sec. 3.2) and DINO (Sec. 3.1): from ``base`` at
    step 0 to 1 at step ``total``; ``total = 0`` keeps ``base``."""
    if total <= 0:
        return base
    k = min(step, total)
    return 1 - (1 - base) * (math.cos(math.pi * k / total) + 1) / 2


class SSLModel(GenerativeModel, Embeds):
    """Base of the self-supervised models: a backbone, augmented views, collapse monitors.

    A method implements :meth:`objective` (the loss on a batch, and the two views' projected
    embeddings for the monitors), :meth:`project` and, where it has a target network,
    :meth:`before_step`.
    """

    family: ClassVar[str] = "ssl"
    config_class: ClassVar[type[Config]] = SSLConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 256}
    config: SSLConfig

    def __init__(self, config: SSLConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.augment = Augment(
            preset(
                info,
                crop_min=c.crop_min,
                flip=c.flip,
                color_jitter=c.color_jitter,
                grayscale=c.grayscale,
                darken=c.darken,
            )
        )
        self.encoder = Backbone(config, info)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))  # training steps

    # --- representation -----------------------------------------------------------------------
    def embed(self, x: Tensor, stages: int = 1) -> Tensor:
        """Backbone features ``(B, d)`` of images in model space: the representation.
        ``stages > 1`` (ResNet only): the mean-pooled features of the last ``stages`` stages,
        concatenated (:meth:`Backbone.pooled_stages`), an option of the probes."""
        if stages == 1:
            return self.encoder(x)
        return self.encoder.pooled_stages(x, stages)

    def project(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """The embedding ``(B, proj_dim)`` the loss compares (after the projection head)."""
        raise NotImplementedError

    def views(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Two independent random views of every image (the dataset's augmentations); with
        ``grey_one_view`` only the first may be grey, so a grey view is always paired with a
        coloured one."""
        v1 = self.augment(x, generator=generator)
        return v1, self.augment(x, generator=generator, grey=not self.config.grey_one_view)

    # --- training -------------------------------------------------------------------------------
    def before_step(self) -> None:
        """Called at the start of each training ``loss``: momentum updates of target networks."""

    def objective(
        self, x: Tensor, update: bool, generator: torch.Generator | None
    ) -> tuple[Tensor, dict[str, Tensor], Tensor, Tensor]:  # pragma: no cover - abstract
        """``(loss, logs, z1, z2)`` on images ``x``; ``update``: a training step (queues and
        centres may change)."""
        raise NotImplementedError

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """The method's loss on two (or more) views of the batch, with the collapse monitors of
        the two views' embeddings logged beside it."""
        return self._loss(batch, None)

    def _loss(self, batch: Batch, generator: torch.Generator | None) -> LossOutput:
        update = self.training and torch.is_grad_enabled()
        if update:
            self.before_step()
            self.updates += 1
        loss, logs, z1, z2 = self.objective(batch["x"], update, generator)
        logs = {**logs, **collapse_monitors(z1.detach(), z2.detach())}
        return LossOutput(loss, logs)

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """The loss and the collapse monitors of a test batch (batch-level numbers, repeated
        per example); the probes are in ``genzoo eval``'s table."""
        out = self._loss(batch, generator)
        b = batch["x"].shape[0]
        vals = {"loss": out.loss, **out.logs}
        return {k: torch.as_tensor(v, dtype=torch.float32).expand(b) for k, v in vals.items()}
