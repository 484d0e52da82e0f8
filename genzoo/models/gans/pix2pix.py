"""pix2pix: a conditional GAN with an L1 term for paired image-to-image translation.

Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional Adversarial Networks",
arXiv:1611.07004. G is a U-Net (Sec. 3.2.1), D a PatchGAN that sees the source and an image, real
or translated, stacked as channels (Sec. 3.2.2), and G minimises

    G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G),   lambda = 100        (Eq. (4))

with ``L_L1 = E |y - G(x)|_1`` (Eq. (3)) and the non-saturating form of ``L_cGAN`` (Eq. (1);
Sec. 3.3: G maximises ``log D(x, G(x))``), D's objective halved (Sec. 3.3). Training (Sec. 3.3):
Adam, lr 2e-4, betas (0.5, 0.999), alternating one D step and one G step (D first here, the order
of :meth:`Pix2Pix.param_groups`). The paper's noise is dropout on the decoder, "at both training
and test time"; here dropout is off in eval mode, so :meth:`translate` is deterministic.

:meth:`Pix2Pix.eval_metrics` scores held-out pairs: ``l1`` of the translation against the true
target beside ``l1_identity``, the L1 of the source itself (the identity baseline).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError, choices
from genzoo.core.protocol import Batch, LossOutput
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.models.gans.players import player_groups
from genzoo.models.gans.translation import (
    AdvLoss,
    ImageTranslator,
    adversarial_pair,
    l1,
    patch_mean,
)
from genzoo.nn.gan_nets import frozen
from genzoo.nn.image2image import PatchDiscriminator, UNetGenerator, auto_patch_layers


@dataclass(frozen=True)
class Pix2PixConfig(Config):
    """Configuration of :class:`Pix2Pix` (defaults: the paper's, Sec. 3 and Appendix 6.1)."""

    width: int = bounded(64, ge=1)  # channels of the first U-Net and PatchGAN stages (doubled per
    # stage, <= 8x)
    depth: int = bounded(0, ge=0)  # U-Net stride-2 stages (0: down to a 1 x 1 bottleneck, as in
    # the paper)
    dropout: float = bounded(0.5, ge=0.0, lt=1.0)  # dropout on the first three decoder stages,
    # training only (0: off)
    norm: Literal["batch", "instance"] = "batch"  # normalisation in G and D (paper: batch norm)
    d_layers: int = bounded(0, ge=0)  # PatchGAN stride-2 layers (0: the deepest <= 3 giving >= 2x2
    # logits)
    loss: AdvLoss = "nonsaturating"  # adversarial objective (genzoo.models.gans.losses)
    l1: float = bounded(100.0, ge=0.0)  # lambda: weight of the L1 term, Eq. (4)
    lr_d: float | None = bounded(None, gt=0.0)  # D learning rate (None: the trainer's lr)
    lr_g: float | None = bounded(None, gt=0.0)  # G learning rate (None: the trainer's lr)
    betas: tuple[float, float] = bounded((0.5, 0.999), ge=0.0, lt=1.0)  # Adam betas of both
    # players (Sec. 3.3)


@register_model("pix2pix")
class Pix2Pix(ImageTranslator):
    """pix2pix (arXiv:1611.07004): U-Net G, PatchGAN D, L1 (lambda 100) + adversarial loss.

    ``forward(src)`` is the generator. Logs: ``d_loss``, ``d_real``, ``d_fake`` (mean patch
    logits); ``g_loss``, ``g_adv``, ``l1``.
    """

    config_class: ClassVar[type[Config]] = Pix2PixConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 2e-4, "batch_size": 64, "grad_clip": 0.0}
    needs_pairs: ClassVar[bool] = True
    config: Pix2PixConfig

    def __init__(self, config: Pix2PixConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        ch, h, w = self.shape
        self.generator = UNetGenerator(
            ch, ch, (h, w), c.width, depth=c.depth or None, norm=c.norm, dropout=c.dropout
        )
        self.d_layers = c.d_layers or auto_patch_layers((h, w))
        self.discriminator = PatchDiscriminator(2 * ch, c.width, self.d_layers, c.norm)
        self.d_loss_fn, self.g_loss_fn = adversarial_pair(c.loss)

    def forward(self, src: Tensor) -> Tensor:
        """``G(src)``: ``(B, C, H, W) -> (B, C, H, W)`` in [-1, 1]."""
        return self.generator(src)

    def critic(self, src: Tensor, img: Tensor) -> Tensor:
        """PatchGAN logits of ``img`` given ``src``: ``(B, 1, h, w)``."""
        return self.discriminator(torch.cat([src, img], dim=1))  # (B, 2C, H, W)

    def generator_ab(self) -> nn.Module:
        return self.generator

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """D first, then G."""
        return player_groups([self.discriminator], [self.generator])

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """D's loss (``group="d"``) or G's loss (``group="g"``), averaged over the batch."""
        src, tgt = self._sources(batch), batch["x"]
        if group == "d":
            with torch.no_grad():
                fake = self(src)  # detached: D's step leaves G alone
            real_out, fake_out = self.critic(src, tgt), self.critic(src, fake)
            d = patch_mean(self.d_loss_fn(real_out, fake_out))  # (B,), mean over patches
            logs: dict[str, Tensor | float] = {
                "d_loss": d.mean().detach(),
                "d_real": real_out.mean().detach(),
                "d_fake": fake_out.mean().detach(),
            }
            return LossOutput(d.mean(), logs)
        if group == "g":
            fake = self(src)
            with frozen(self.discriminator):
                fake_out = self.critic(src, fake)
            adv = patch_mean(self.g_loss_fn(fake_out))  # (B,)
            rec = l1(fake, tgt)  # (B,), Eq. (3)
            total = adv + self.config.l1 * rec  # Eq. (4)
            logs = {
                "g_loss": total.mean().detach(),
                "g_adv": adv.mean().detach(),
                "l1": rec.mean().detach(),
            }
            return LossOutput(total.mean(), logs)
        raise ConfigError(
            f"pix2pix loss group {group!r} is not valid; choose {choices(['d', 'g'])}."
        )

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per held-out pair ``(batch["src"], batch["x"])``: ``l1`` = mean |G(src) - x| and the
        identity baseline ``l1_identity`` = mean |src - x| (model space, pixels in [-1, 1]);
        ``d_real``/``d_fake`` (D's mean patch logits on the true and the translated pair)."""
        src, x = self.eval_pair(batch)
        fake = self(src)
        return {
            "l1": l1(fake, x),
            "l1_identity": l1(src, x),
            "d_real": patch_mean(self.critic(src, x)),
            "d_fake": patch_mean(self.critic(src, fake)),
        }
