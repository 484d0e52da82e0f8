"""ProGAN: progressive growing of GANs, from 4 x 4 up to the data's size, with fade-in.

Karras, Aila, Laine & Lehtinen, "Progressive Growing of GANs for Improved Quality, Stability, and
Variation", arXiv:1710.10196.

- **Growing** (Sec. 2, Fig. 2): G and D start at the smallest size (4 x 4) and gain one size at a
  time (4 -> 8 or, for 28 x 28 data, 4 -> 7 -> 14 -> 28). A new size is *faded in*: G's output
  is ``(1 - alpha) up(toRGB_old(h)) + alpha toRGB_new(block_new(h))`` and D's input path
  ``(1 - alpha) fromRGB_old(down(x)) + alpha block_new(fromRGB_new(x))``, with ``alpha`` rising
  linearly from 0 to 1; the real images are blended between the two sizes the same way (App. A.1).
  Each size trains ``stage_steps`` generator steps fading in, then ``stage_steps`` stable.
- **The schedule is part of the run**: ``(stage, alpha)`` is a pure function
  (:func:`growth`) of the generator-step counter ``g_steps``, a buffer saved with every
  checkpoint, so a run killed mid-transition resumes at the same ``alpha``.
- **Minibatch standard deviation** (Sec. 3) before D's last block.
- **Equalised learning rate** (Sec. 4.1): weights ``N(0, 1)`` scaled by ``sqrt(2 / fan_in)``
  at run time (:class:`genzoo.nn.style_layers.EqualConv2d`).
- **Pixel norm** (Sec. 4.2) after every convolution of G.
- **Loss** (Sec. 6 and App. A.1): WGAN-GP with lambda = 10 and one D step per G step, plus the
  drift term ``eps_drift D(x)^2`` with ``eps_drift = 0.001``; Adam lr 1e-3, betas (0, 0.99).

Differences from the paper, for a CPU: one channel width for every size; the 4 x 4 block starts
with a linear layer (the same as the paper's 4 x 4 transposed convolution from a 1 x 1 input);
nearest upsampling and area downsampling to any size. ``sample`` draws at the current stage and
upsamples (nearest) to the data's size. ``diffaug`` augments real and fake images before D.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError, choices
from genzoo.core.protocol import Batch, GenerativeModel, LossOutput, Samples
from genzoo.core.registry import register_model
from genzoo.core.seeding import randn
from genzoo.data.base import DataInfo
from genzoo.models.gans.losses import d_loss_wasserstein, g_loss_critic, gradient_penalty
from genzoo.models.gans.players import image_shape, player_groups, player_settings
from genzoo.nn.diffaug import diff_augment, parse_policy
from genzoo.nn.gan_nets import dcgan_sizes, frozen
from genzoo.nn.style_layers import (
    EqualConv2d,
    EqualLinear,
    MinibatchStdDev,
    PixelNorm,
    resize,
)


def lrelu(x: Tensor) -> Tensor:
    """LeakyReLU(0.2) (Sec. 4.1: the equalised layers carry He's sqrt(2), so no gain here)."""
    return F.leaky_relu(x, 0.2)


def growth(step: int, n_stages: int, stage_steps: int) -> tuple[int, float]:
    """``(stage, alpha)`` after ``step`` generator steps: stage 0 trains ``stage_steps`` steps,
    every later stage fades in over ``stage_steps`` steps (``alpha = 0 -> 1``) and then trains
    ``stage_steps`` steps stable; the last stage stays at ``alpha = 1``."""
    if step < stage_steps or n_stages == 1:
        return 0, 1.0
    k, r = divmod(step - stage_steps, 2 * stage_steps)
    stage = k + 1
    if stage >= n_stages:
        return n_stages - 1, 1.0
    return stage, min(1.0, r / stage_steps)


@dataclass(frozen=True)
class ProGANConfig(Config):
    """Configuration of :class:`ProGAN` (small widths for a CPU)."""

    latent_dim: int = bounded(64, ge=1)  # dimension of z ~ N(0, I)
    width: int = bounded(64, ge=1)  # channels of every block of G and D
    stage_steps: int = bounded(500, ge=1)  # G steps per fade-in and per stable phase
    gp: float = bounded(10.0, ge=0.0)  # lambda of the WGAN-GP penalty
    drift: float = bounded(0.001, ge=0.0)  # eps_drift: weight of D(x_real)^2 (App. A.1)
    mbstd_group: int = bounded(4, ge=1)  # minibatch-stddev group size in D
    lr_d: float | None = bounded(None, gt=0.0)  # D learning rate (None: the trainer's lr)
    lr_g: float | None = bounded(None, gt=0.0)  # G learning rate (None: the trainer's lr)
    betas: tuple[float, float] = bounded((0.0, 0.99), ge=0.0, lt=1.0)  # Adam betas (paper)
    diffaug: str = ""  # DiffAugment policies before D, e.g. "color,translation,cutout"

    def validate(self) -> None:
        parse_policy(self.diffaug)


class GrowingGenerator(nn.Module):
    """``G(z, stage, alpha) -> (B, C, H_s, W_s)`` at the size of ``stage``."""

    def __init__(self, z_dim: int, out_ch: int, sizes: list[tuple[int, int]], width: int) -> None:
        super().__init__()
        self.sizes = sizes  # smallest first
        h0, w0 = sizes[0]
        self.norm = PixelNorm()
        self.first = EqualLinear(z_dim, width * h0 * w0)
        self.first_conv = EqualConv2d(width, width, 3)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualConv2d(width, width, 3), EqualConv2d(width, width, 3)])
            for _ in sizes[1:]
        )
        self.to_rgb = nn.ModuleList(EqualConv2d(width, out_ch, 1, gain=1.0) for _ in sizes)
        self.width = width

    def features(self, z: Tensor, stage: int) -> Tensor:
        """The features at ``stage``'s size, before ``toRGB``."""
        h0, w0 = self.sizes[0]
        h = self.norm(lrelu(self.first(self.norm(z))))
        h = h.view(z.shape[0], self.width, h0, w0)  # (B, C * h0 * w0) -> (B, C, h0, w0)
        h = self.norm(lrelu(self.first_conv(h)))
        for s in range(1, stage + 1):
            h = self.block(h, s)
        return h

    def block(self, h: Tensor, s: int) -> Tensor:
        c1, c2 = self.blocks[s - 1]
        h = resize(h, self.sizes[s], "nearest")
        return self.norm(lrelu(c2(self.norm(lrelu(c1(h))))))

    def forward(self, z: Tensor, stage: int, alpha: float = 1.0) -> Tensor:
        if stage == 0:
            return self.to_rgb[0](self.features(z, 0))
        h = self.features(z, stage - 1)
        new = self.to_rgb[stage](self.block(h, stage))
        if alpha >= 1.0:
            return new
        old = resize(self.to_rgb[stage - 1](h), self.sizes[stage], "nearest")
        return torch.lerp(old, new, alpha)  # fade-in (Fig. 2b): (1 - alpha) old + alpha new


class GrowingDiscriminator(nn.Module):
    """``D(x, stage, alpha) -> (B,)`` for images at the size of ``stage``."""

    def __init__(
        self, in_ch: int, sizes: list[tuple[int, int]], width: int, mbstd_group: int
    ) -> None:
        super().__init__()
        self.sizes = sizes  # smallest first
        self.from_rgb = nn.ModuleList(EqualConv2d(in_ch, width, 1) for _ in sizes)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualConv2d(width, width, 3), EqualConv2d(width, width, 3)])
            for _ in sizes[1:]
        )
        self.mbstd = MinibatchStdDev(mbstd_group)
        self.last_conv = EqualConv2d(width + 1, width, 3)
        h0, w0 = sizes[0]
        self.fc = EqualLinear(width * h0 * w0, width)
        self.out = EqualLinear(width, 1, gain=1.0)

    def block(self, h: Tensor, s: int) -> Tensor:
        c1, c2 = self.blocks[s - 1]
        return resize(lrelu(c2(lrelu(c1(h)))), self.sizes[s - 1])  # down to the next size

    def forward(self, x: Tensor, stage: int, alpha: float = 1.0) -> Tensor:
        h = lrelu(self.from_rgb[stage](x))
        if stage > 0:
            h = self.block(h, stage)
            if alpha < 1.0:
                old = lrelu(self.from_rgb[stage - 1](resize(x, self.sizes[stage - 1])))
                h = torch.lerp(old, h, alpha)  # fade-in (Fig. 2b)
            for s in range(stage - 1, 0, -1):
                h = self.block(h, s)
        h = lrelu(self.last_conv(self.mbstd(h)))
        h = lrelu(self.fc(h.flatten(1)))  # (B, C, h0, w0) -> (B, C * h0 * w0)
        return self.out(h).squeeze(1)  # (B, 1) -> (B,)


@register_model("progan")
class ProGAN(GenerativeModel, Samples):
    """ProGAN (arXiv:1710.10196): progressive growing with fade-in, WGAN-GP + drift.

    ``loss(batch, "d")``: Wasserstein critic loss at the current ``(stage, alpha)`` on the real
    batch resized (and blended) to the stage's size and on detached fakes, plus the gradient
    penalty and the drift term; ``loss(batch, "g")``: ``-D(G(z))``, then the step counter
    advances. Logs: ``d_loss``, ``d_real``, ``d_fake``, ``gp``; ``g_loss``, ``d_fake``, ``stage``,
    ``alpha``. Samples at the data's size and range. No likelihood.
    """

    family: ClassVar[str] = "gans"
    dequantize: ClassVar[bool] = False
    config_class: ClassVar[type[Config]] = ProGANConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 32, "grad_clip": 0.0}
    config: ProGANConfig
    info: DataInfo

    def __init__(self, config: ProGANConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.shape = image_shape("progan", info, min_side=2)
        self.sizes = list(reversed(dcgan_sizes((self.shape[1], self.shape[2]), min_stages=1)))
        self.n_stages = len(self.sizes)
        self.generator = GrowingGenerator(c.latent_dim, self.shape[0], self.sizes, c.width)
        self.discriminator = GrowingDiscriminator(self.shape[0], self.sizes, c.width, c.mbstd_group)
        self.policy = parse_policy(c.diffaug)
        self.register_buffer("g_steps", torch.zeros((), dtype=torch.long))  # drives growth()

    # ----------------------------------------------------------------------------------------------
    # the schedule

    def growth(self) -> tuple[int, float]:
        """The current ``(stage, alpha)``, from the saved generator-step counter."""
        return growth(int(self.g_steps), self.n_stages, self.config.stage_steps)

    def real_at(self, x: Tensor, stage: int, alpha: float) -> Tensor:
        """Real images at ``stage``'s size; while fading in, blended with the previous size
        (downsampled, then upsampled back) by ``alpha`` (App. A.1)."""
        xs = resize(x, self.sizes[stage])
        if stage > 0 and alpha < 1.0:
            low = resize(resize(xs, self.sizes[stage - 1]), self.sizes[stage], "nearest")
            xs = torch.lerp(low, xs, alpha)
        return xs

    # ----------------------------------------------------------------------------------------------
    # protocol

    def forward(self, z: Tensor) -> Tensor:
        """``G(z)`` at the current stage, upsampled to the data's size: ``(B, C, H, W)``."""
        stage, alpha = self.growth()
        x = self.generator(z, stage, alpha)
        return resize(x, (self.shape[1], self.shape[2]), "nearest")

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """D first, then G; the blocks of later stages get gradients once they are grown."""
        return player_groups([self.discriminator], [self.generator])

    def group_settings(self) -> dict[str, dict[str, Any]]:
        c = self.config
        return player_settings(c.betas, c.lr_d, c.lr_g)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """D's loss (``group="d"``) or G's loss (``group="g"``)."""
        if group == "d":
            return self._d_loss(batch)
        if group == "g":
            return self._g_loss(batch)
        raise ConfigError(
            f"ProGAN loss group {group!r} is not valid; choose {choices(['d', 'g'])}."
        )

    def _latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return randn((n, self.config.latent_dim), generator=generator, device=self.device)

    def _critic(self, x: Tensor, stage: int, alpha: float) -> Tensor:
        return self.discriminator(diff_augment(x, self.policy), stage, alpha)

    def _d_loss(self, batch: Batch) -> LossOutput:
        c = self.config
        stage, alpha = self.growth()
        real = self.real_at(batch["x"], stage, alpha)
        with torch.no_grad():
            fake = self.generator(self._latent(real.shape[0]), stage, alpha)
        real_out = self._critic(real, stage, alpha)  # (B,)
        fake_out = self._critic(fake, stage, alpha)  # (B,)
        adv = d_loss_wasserstein(real_out, fake_out)  # (B,)
        gp = gradient_penalty(lambda t: self._critic(t, stage, alpha), real, fake)  # (B,)
        per_example = adv + c.gp * gp + c.drift * real_out.pow(2)  # WGAN-GP + drift (App. A.1)
        logs: dict[str, Tensor | float] = {
            "d_loss": adv.mean().detach(),
            "d_real": real_out.mean().detach(),
            "d_fake": fake_out.mean().detach(),
            "gp": gp.mean().detach(),
        }
        return LossOutput(per_example.mean(), logs)

    def _g_loss(self, batch: Batch) -> LossOutput:
        stage, alpha = self.growth()
        fake = self.generator(self._latent(batch["x"].shape[0]), stage, alpha)
        with frozen(self.discriminator):
            fake_out = self._critic(fake, stage, alpha)  # (B,)
        per_example = g_loss_critic(fake_out)  # (B,)
        self.g_steps += 1  # the schedule advances once per full step (D's steps came first)
        logs: dict[str, Tensor | float] = {
            "g_loss": per_example.mean().detach(),
            "d_fake": fake_out.mean().detach(),
            "stage": float(stage),
            "alpha": alpha,
        }
        return LossOutput(per_example.mean(), logs)

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per example on a test batch and as many fresh fakes, at the current stage:
        ``d_loss`` (Wasserstein, without penalties), ``g_loss``, ``d_real``, ``d_fake``."""
        stage, alpha = self.growth()
        real = self.real_at(batch["x"], stage, alpha)
        fake = self.generator(self._latent(real.shape[0], generator), stage, alpha)
        real_out = self.discriminator(real, stage, alpha)
        fake_out = self.discriminator(fake, stage, alpha)
        return {
            "d_loss": d_loss_wasserstein(real_out, fake_out),
            "g_loss": g_loss_critic(fake_out),
            "d_real": real_out,
            "d_fake": fake_out,
        }

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``n`` images at the current stage, upsampled to the data's size and clamped to its
        range: ``(n, C, H, W)``."""
        if cond is not None:
            raise ConfigError("Model 'progan' is unconditional; sample it without cond.")
        lo, hi = self.info.value_range
        return self(self._latent(n, generator)).clamp(lo, hi).float()

    @torch.no_grad()
    def sample_at(self, z: Tensor, stage: int, alpha: float = 1.0) -> Tensor:
        """``G(z)`` at a chosen ``stage`` and ``alpha``, upsampled to the data's size (the
        growth-stage pictures of the docs)."""
        if not 0 <= stage < self.n_stages:
            raise ConfigError(
                f"stage = {stage} does not exist; choose 0..{self.n_stages - 1} "
                f"(sizes {self.sizes})."
            )
        lo, hi = self.info.value_range
        x = self.generator(z.to(self.device), stage, alpha)
        return resize(x, (self.shape[1], self.shape[2]), "nearest").clamp(lo, hi).float()
