"""The two-stream video GAN: Vondrick, Pirsiavash & Torralba, "Generating Videos with Scene
Dynamics", arXiv:1609.02612 (VGAN).

The generator has two streams from one code ``z`` (Sec. 2.2): a 2-D convolutional background
stream ``b(z)``, one still image ``(C, H, W)``, and a 3-D (spatio-temporal) convolutional foreground
stream that gives a moving foreground ``f(z)`` ``(T, C, H, W)`` and a mask ``m(z)`` in [0, 1]
``(T, 1, H, W)``, combined as

    G(z) = m(z) * f(z) + (1 - m(z)) * b(z)                                     (Eq. 2)

with ``b`` repeated over time; a sparsity prior ``lambda |m(z)|_1`` on the mask (Sec. 2.2,
lambda = 0.1) keeps the background in use. The discriminator is a 3-D convolutional network over
the whole clip (Sec. 2.3), so it judges motion as well as appearance. The objective is the
non-saturating GAN loss (any of :data:`~genzoo.models.gans.losses.LOSS_PAIRS`); the players train
as every genzoo GAN does, D then G (:mod:`genzoo.models.gans.players`). Sized for small clips:
two up-sampling stages in space and time, so ``T`` and the frame side must be multiples of 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError, choices
from genzoo.core.protocol import Batch, GenerativeModel, LossOutput, Samples
from genzoo.core.registry import register_model
from genzoo.core.seeding import randn
from genzoo.data.base import DataInfo
from genzoo.data.video import clip_shape
from genzoo.models.gans.losses import LOSS_PAIRS
from genzoo.models.gans.players import player_groups, player_settings
from genzoo.nn.gan_nets import frozen


@dataclass(frozen=True)
class VideoGANConfig(Config):
    loss: Literal["nonsaturating", "hinge", "lsgan"] = "nonsaturating"  # objective pair
    latent_dim: int = bounded(64, ge=1)  # dimension of z ~ N(0, I)
    width: int = bounded(32, ge=1)  # channels of the last G stage and first D stage (x2 per stage)
    mask_l1: float = bounded(0.1, ge=0)  # lambda of the mask sparsity |m|_1 (Sec. 2.2)
    lr_d: float | None = bounded(None, gt=0.0)  # D learning rate (None: the trainer's lr)
    lr_g: float | None = bounded(None, gt=0.0)  # G learning rate (None: the trainer's lr)
    betas: tuple[float, float] = bounded((0.5, 0.999), ge=0.0, lt=1.0)  # Adam betas (Sec. 3)


def _up3(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose3d(cin, cout, 4, 2, 1), nn.BatchNorm3d(cout), nn.ReLU(inplace=True)
    )


def _up2(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class TwoStreamGenerator(nn.Module):
    """``z (B, Z) -> (video (B, T, C, H, W), mask (B, T, 1, H, W))`` by Eq. (2)."""

    def __init__(self, latent_dim: int, shape: tuple[int, ...], width: int) -> None:
        super().__init__()
        t, c, h, w = shape
        self.shape = shape
        self.start = (t // 4, h // 4, w // 4)
        w4 = 4 * width
        self.fg_in = nn.Linear(latent_dim, w4 * t * h * w // 64)
        self.fg = nn.Sequential(
            nn.BatchNorm3d(w4),
            nn.ReLU(inplace=True),
            _up3(w4, 2 * width),
            _up3(2 * width, width),
            nn.Conv3d(width, c + 1, 3, padding=1),  # foreground channels and the mask's logit
        )
        self.bg_in = nn.Linear(latent_dim, w4 * h * w // 16)
        self.bg = nn.Sequential(
            nn.BatchNorm2d(w4),
            nn.ReLU(inplace=True),
            _up2(w4, 2 * width),
            _up2(2 * width, width),
            nn.Conv2d(width, c, 3, padding=1),
        )

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        c = self.shape[1]
        t0, h0, w0 = self.start
        fg = self.fg(self.fg_in(z).view(z.shape[0], -1, t0, h0, w0))  # (B, C+1, T, H, W)
        fg = fg.permute(0, 2, 1, 3, 4)  # (B, T, C+1, H, W)
        f = torch.tanh(fg[:, :, :c])  # the moving foreground f(z)
        m = torch.sigmoid(fg[:, :, c:])  # the mask m(z), (B, T, 1, H, W)
        b = torch.tanh(self.bg(self.bg_in(z).view(z.shape[0], -1, h0, w0)))  # (B, C, H, W)
        video = m * f + (1 - m) * b[:, None]  # Eq. (2): b(z) repeated over time
        return video, m


class VideoDiscriminator(nn.Module):
    """3-D convolutions over the clip ``(B, T, C, H, W) -> (B,)`` logits (Sec. 2.3)."""

    def __init__(self, shape: tuple[int, ...], width: int) -> None:
        super().__init__()
        t, c, h, w = shape
        self.body = nn.Sequential(
            nn.Conv3d(c, width, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv3d(width, 2 * width, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv3d(2 * width, 4 * width, 3, 1, 1),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.head = nn.Linear(4 * width * t * h * w // 64, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.body(x.permute(0, 2, 1, 3, 4))  # (B, T, C, H, W) -> (B, C, T, H, W) -> features
        return self.head(h.flatten(1)).squeeze(1)  # (B,)


@register_model("video-gan")
class VideoGAN(GenerativeModel, Samples):
    """VGAN (arXiv:1609.02612): two-stream generator (static background, moving foreground and
    mask) against a 3-D convolutional video discriminator. ``loss(batch, "d")`` / ``"g"``; logs
    ``d_loss``, ``d_real``, ``d_fake``; ``g_loss``, ``mask`` (the mask's mean). No likelihood."""

    family: ClassVar[str] = "gans"
    dequantize: ClassVar[bool] = False
    config_class: ClassVar[type[Config]] = VideoGANConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 2e-4, "batch_size": 32, "grad_clip": 0.0}
    config: VideoGANConfig

    def __init__(self, config: VideoGANConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        self.shape = shape = clip_shape("video-gan", info, multiple=4)
        self.generator = TwoStreamGenerator(config.latent_dim, shape, config.width)
        self.discriminator = VideoDiscriminator(shape, config.width)
        self.d_loss_fn, self.g_loss_fn = LOSS_PAIRS[config.loss]

    def forward(self, z: Tensor) -> Tensor:
        """The generator ``G(z)``: ``(B, latent_dim) -> (B, T, C, H, W)`` in [-1, 1]."""
        return self.generator(z)[0]

    def _latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return randn((n, self.config.latent_dim), generator=generator, device=self.device)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return player_groups([self.discriminator], [self.generator])

    def group_settings(self) -> dict[str, dict[str, Any]]:
        c = self.config
        return player_settings(c.betas, c.lr_d, c.lr_g)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        x = batch["x"]
        if group == "d":
            with torch.no_grad():
                fake = self(self._latent(x.shape[0]))
            real_out, fake_out = self.discriminator(x), self.discriminator(fake)
            per = self.d_loss_fn(real_out, fake_out)  # (B,)
            logs = {"d_loss": per.mean().detach(), "d_real": real_out.mean().detach(),
                    "d_fake": fake_out.mean().detach()}  # fmt: skip
            return LossOutput(per.mean(), logs)
        if group == "g":
            fake, m = self.generator(self._latent(x.shape[0]))
            with frozen(self.discriminator):
                fake_out = self.discriminator(fake)
            sparsity = m.flatten(1).abs().mean(1)  # |m(z)|_1 per pixel (Sec. 2.2)
            per = self.g_loss_fn(fake_out) + self.config.mask_l1 * sparsity  # (B,)
            logs = {"g_loss": per.mean().detach(), "mask": m.mean().detach()}
            return LossOutput(per.mean(), logs)
        raise ConfigError(
            f"video-gan loss group {group!r} is not valid; choose {choices(['d', 'g'])}."
        )

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per example: the objective pair on the test clips and as many fresh fakes."""
        x = batch["x"]
        fake = self.sample(x.shape[0], generator=generator)
        real_out, fake_out = self.discriminator(x), self.discriminator(fake)
        return {"d_loss": self.d_loss_fn(real_out, fake_out), "g_loss": self.g_loss_fn(fake_out)}

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` clips ``G(z)`` ``(n, T, C, H, W)`` in [-1, 1]; unconditional, no options."""
        if cond is not None or options:
            what = "cond" if cond is not None else repr(next(iter(options)))
            raise ConfigError(f"video-gan is unconditional and takes no {what}.")
        return self(self._latent(n, generator)).float()
