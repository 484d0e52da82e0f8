"""CycleGAN: unpaired image-to-image translation with cycle consistency.

Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks", arXiv:1703.10593. Two generators ``G: A -> B`` and ``F: B -> A`` and two PatchGAN
discriminators ``D_B`` (real B vs ``G(a)``) and ``D_A`` (real A vs ``F(b)``) are trained with

    L = L_GAN(G, D_B) + L_GAN(F, D_A) + lambda L_cyc(G, F)                      (Eq. (3))
    L_cyc = E_a |F(G(a)) - a|_1 + E_b |G(F(b)) - b|_1,  lambda = 10            (Eq. (2))

plus the identity loss ``E_b |G(b) - b|_1 + E_a |F(a) - a|_1`` weighted ``0.5 lambda``
(Sec. 5.2, after Taigman et al.), with the least-squares GAN loss (Sec. 4), D's objective halved
and updated on a history of the 50 last generated images (Sec. 4, after Shrivastava et al.);
Adam lr 2e-4, betas (0.5, 0.999) (Sec. 4). G is the ResNet generator of Appendix 7.2
(``generator = 'unet'`` for the U-Net), D the 70 x 70 PatchGAN (smaller on small images).

Batches hold domain A in ``batch["src"]`` and domain B in ``batch["x"]`` (:mod:`genzoo.data.pairs`:
``unpaired:<base>-<task>``). ``translate(a)`` is ``G(a)``, ``translate(b, reverse=True)`` is
``F(b)``. :meth:`CycleGAN.eval_metrics` reports the cycle errors and, since the test split of
genzoo's unpaired tasks keeps its pairs, the L1 of ``G(a)`` against the true target beside the
identity baseline.
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
from genzoo.nn.image2image import (
    PatchDiscriminator,
    ResnetGenerator,
    UNetGenerator,
    auto_patch_layers,
)


class ImagePool(nn.Module):
    """History of generated images for D's update (Shrivastava et al., arXiv:1612.07828, as used
    by CycleGAN Sec. 4): until full, each new image is stored and returned; then with probability
    1/2 a stored image is returned and replaced by the new one, else the new one is returned.

    The pool lives in buffers (saved in checkpoints) and draws from torch's global generator
    (saved by the Trainer), so resumed training continues exactly.
    """

    def __init__(self, size: int, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def query(self, x: Tensor) -> Tensor:
        if self.size == 0:
            return x
        x = x.detach()
        out = x.clone()
        n = int(self.count)
        k = min(self.size - n, x.shape[0])  # filling: store and return as they are
        if k > 0:
            self.images[n : n + k] = x[:k]
            self.count.add_(k)
        rest = x.shape[0] - k
        if rest > 0:  # full: swap with probability 1/2
            swap = torch.rand(rest, device=x.device) < 0.5
            slot = torch.randint(0, self.size, (rest,), device=x.device)
            old = self.images[slot]  # (rest, C, H, W), read before any write
            out[k:] = torch.where(swap[:, None, None, None], old, x[k:])
            self.images[slot[swap]] = x[k:][swap]
        return out


@dataclass(frozen=True)
class CycleGANConfig(Config):
    """Configuration of :class:`CycleGAN` (defaults: the paper's, Sec. 4 and Appendix 7)."""

    generator: Literal["resnet", "unet"] = "resnet"  # G and F: ResNet (paper) or U-Net
    width: int = bounded(64, ge=1)  # channels of the first G and D stages
    n_blocks: int = bounded(6, ge=0)  # residual blocks of the ResNet generator (6 at 128x128, 9 at
    # 256x256)
    n_down: int = bounded(2, ge=0)  # stride-2 stages of the ResNet generator
    norm: Literal["instance", "batch"] = "instance"  # normalisation in G and D (paper: instance)
    d_layers: int = bounded(0, ge=0)  # PatchGAN stride-2 layers (0: the deepest <= 3 giving >= 2x2
    # logits)
    loss: AdvLoss = "lsgan"  # adversarial objective (paper: least squares)
    cycle: float = bounded(10.0, ge=0.0)  # lambda: weight of the cycle loss, Eq. (3)
    identity: float = bounded(0.5, ge=0.0)  # identity-loss weight relative to lambda (Sec. 5.2;
    # 0: off)
    pool_size: int = bounded(50, ge=0)  # generated images kept for D's updates (0: no history)
    lr_d: float | None = bounded(None, gt=0.0)  # D learning rate (None: the trainer's lr)
    lr_g: float | None = bounded(None, gt=0.0)  # G learning rate (None: the trainer's lr)
    betas: tuple[float, float] = bounded((0.5, 0.999), ge=0.0, lt=1.0)  # Adam betas of both
    # players


@register_model("cyclegan")
class CycleGAN(ImageTranslator):
    """CycleGAN (arXiv:1703.10593): G: A -> B, F: B -> A, two PatchGANs, LSGAN, cycle loss
    (lambda 10) and identity loss (0.5 lambda).

    ``forward(a)`` is ``G``. Logs: ``d_loss``, ``d_real``, ``d_fake``; ``g_loss``, ``g_adv``,
    ``cycle``, ``identity``.
    """

    config_class: ClassVar[type[Config]] = CycleGANConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 2e-4, "batch_size": 64, "grad_clip": 0.0}
    config: CycleGANConfig

    def __init__(self, config: CycleGANConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        ch, h, w = self.shape

        def make_g() -> nn.Module:
            if c.generator == "unet":
                return UNetGenerator(ch, ch, (h, w), c.width, norm=c.norm, dropout=0.0)
            try:
                return ResnetGenerator(ch, ch, (h, w), c.width, c.n_blocks, c.n_down, c.norm)
            except ValueError as e:
                raise ConfigError(f"{e}; choose a smaller n_down or generator = 'unet'.") from None

        self.g_ab, self.g_ba = make_g(), make_g()  # G: A -> B, F: B -> A
        self.d_layers = c.d_layers or auto_patch_layers((h, w))
        self.d_a = PatchDiscriminator(ch, c.width, self.d_layers, c.norm)
        self.d_b = PatchDiscriminator(ch, c.width, self.d_layers, c.norm)
        self.pool_a = ImagePool(c.pool_size, self.shape)  # F(b) history for D_A
        self.pool_b = ImagePool(c.pool_size, self.shape)  # G(a) history for D_B
        self.d_loss_fn, self.g_loss_fn = adversarial_pair(c.loss)

    def forward(self, a: Tensor) -> Tensor:
        """``G(a)``: domain A -> domain B, ``(B, C, H, W)`` in [-1, 1]."""
        return self.g_ab(a)

    def generator_ab(self) -> nn.Module:
        return self.g_ab

    def generator_ba(self) -> nn.Module:
        return self.g_ba

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Both discriminators first, then both generators."""
        return player_groups([self.d_a, self.d_b], [self.g_ab, self.g_ba])

    def cycle_errors(
        self, a: Tensor, b: Tensor, fake_b: Tensor | None = None, fake_a: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(|F(G(a)) - a|, |G(F(b)) - b|)`` per example (mean over pixels), Eq. (2)."""
        fake_b = self.g_ab(a) if fake_b is None else fake_b
        fake_a = self.g_ba(b) if fake_a is None else fake_a
        return l1(self.g_ba(fake_b), a), l1(self.g_ab(fake_a), b)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """Both D losses (``group="d"``) or both G losses (``group="g"``), batch means."""
        a, b = self._sources(batch), batch["x"]
        if group == "d":
            with torch.no_grad():
                fake_b = self.pool_b.query(self.g_ab(a))
                fake_a = self.pool_a.query(self.g_ba(b))
            rb, fb = self.d_b(b), self.d_b(fake_b)
            ra, fa = self.d_a(a), self.d_a(fake_a)
            d = patch_mean(self.d_loss_fn(rb, fb)) + patch_mean(self.d_loss_fn(ra, fa))  # (B,)
            logs: dict[str, Tensor | float] = {
                "d_loss": d.mean().detach(),
                "d_real": 0.5 * (rb.mean() + ra.mean()).detach(),
                "d_fake": 0.5 * (fb.mean() + fa.mean()).detach(),
            }
            return LossOutput(d.mean(), logs)
        if group == "g":
            c = self.config
            fake_b, fake_a = self.g_ab(a), self.g_ba(b)
            with frozen(self.d_a, self.d_b):
                adv = patch_mean(self.g_loss_fn(self.d_b(fake_b)))
                adv = adv + patch_mean(self.g_loss_fn(self.d_a(fake_a)))  # (B,)
            cyc_a, cyc_b = self.cycle_errors(a, b, fake_b, fake_a)
            cyc = cyc_a + cyc_b  # (B,), Eq. (2)
            total = adv + c.cycle * cyc  # Eq. (3)
            logs = {"g_adv": adv.mean().detach(), "cycle": cyc.mean().detach()}
            if c.identity > 0:
                idt = l1(self.g_ab(b), b) + l1(self.g_ba(a), a)  # (B,)
                total = total + c.identity * c.cycle * idt
                logs["identity"] = idt.mean().detach()
            logs["g_loss"] = total.mean().detach()
            return LossOutput(total.mean(), logs)
        raise ConfigError(
            f"CycleGAN loss group {group!r} is not valid; choose {choices(['d', 'g'])}."
        )

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per test example (``batch["src"]`` = a in A, ``batch["x"]`` = b in B): the cycle errors
        ``cycle_a`` = mean |F(G(a)) - a| and ``cycle_b`` = mean |G(F(b)) - b|; with the test
        pairs, ``l1`` = mean |G(a) - b| beside ``l1_identity`` = mean |a - b|, and ``l1_reverse``
        = mean |F(b) - a| (model space, pixels in [-1, 1])."""
        a, x = self.eval_pair(batch)
        fake_b, fake_a = self.g_ab(a), self.g_ba(x)
        cyc_a, cyc_b = self.cycle_errors(a, x, fake_b, fake_a)
        return {
            "cycle_a": cyc_a,
            "cycle_b": cyc_b,
            "l1": l1(fake_b, x),
            "l1_identity": l1(a, x),
            "l1_reverse": l1(fake_a, a),
        }
