"""MoCoGAN: Tulyakov, Liu, Yang & Kautz, "MoCoGAN: Decomposing Motion and Content for Video
Generation", arXiv:1707.04993.

A clip is a path in the latent space of an image generator (Sec. 3.1). The latent code of frame
``t`` is ``z^(t) = [z_C, z_M^(t)]`` (Eq. 1): a **content** code ``z_C ~ N(0, I)`` drawn once per
clip and held fixed over its frames, and a **motion** code ``z_M^(t)`` given by a recurrent network
``R_M`` (a GRU cell) over per-frame noise ``eps^(t) ~ N(0, I)``:

    h^(t) = GRU(eps^(t), h^(t-1)),  z_M^(t) = h^(t),  h^(0) ~ N(0, I)     (Sec. 3.1)

(a random initial state as in the authors' code). One image generator ``G_I`` maps every frame's
code to a frame, ``x~^(t) = G_I(z^(t))``: the frames share all that ``z_C`` carries by construction
of the sampler, and only the motion path changes from frame to frame. Two discriminators judge the
result (Sec. 3.1): ``D_I`` sees single frames ``S_1`` drawn at random from real and from generated
clips (appearance), ``D_V`` sees the clips ``S_T`` through 3-D convolutions (motion and the frames'
agreement). The objective is the sum of their GAN losses,

    max_{G_I, R_M} min_{D_I, D_V} F_V(D_I, D_V, G_I, R_M)                     (Eq. 2)
    F_V = E_v[-log D_I(S_1(v))] + E_v~[-log(1 - D_I(S_1(v~)))]
        + E_v[-log D_V(S_T(v))] + E_v~[-log(1 - D_V(S_T(v~)))]                 (Eq. 3)

here with the non-saturating generator loss by default (the paper's training, Sec. 3.2, updates
the generator with ``-log D``) or any of :data:`~genzoo.models.gans.losses.LOSS_PAIRS`' hinge and
least-squares pairs. ``S_T`` is the whole clip (the clips have the trained length); ``S_1`` draws
``image_frames`` frames per clip. The players train as every genzoo GAN does, D (both
discriminators) then G (``G_I`` and ``R_M``) (:mod:`genzoo.models.gans.players`), Adam with betas
(0.5, 0.999) (Sec. 4). ``D_V`` is the video GAN's 3-D discriminator
(:class:`~genzoo.models.gans.video_gan.VideoDiscriminator`), so the clip length and the frame side
must be multiples of 4. Not done: the categorical content code of the action-conditioned variant
(Sec. 3.3) and the paper's input noise to D.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError, choices
from genzoo.core.protocol import Batch, GenerativeModel, LossOutput, Samples
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand, randn
from genzoo.data.base import DataInfo
from genzoo.data.video import clip_shape
from genzoo.models.gans.losses import LOSS_PAIRS
from genzoo.models.gans.players import player_groups, player_settings
from genzoo.models.gans.video_gan import VideoDiscriminator
from genzoo.nn.gan_nets import frozen


@dataclass(frozen=True)
class MoCoGANConfig(Config):
    loss: Literal["nonsaturating", "hinge", "lsgan"] = "nonsaturating"  # objective pair (Eq. 3)
    content_dim: int = bounded(50, ge=1)  # dimension of z_C, one per clip (paper: 50)
    motion_dim: int = bounded(10, ge=1)  # dimension of eps^(t) and z_M^(t) (paper: 10)
    width: int = bounded(32, ge=1)  # channels of G_I's last stage and the D's first (x2 per stage)
    image_frames: int = bounded(1, ge=1)  # frames per clip that D_I sees (S_1: one)
    spectral_norm: bool = False  # spectral norm on every weight of D_I and D_V (arXiv:1802.05957)
    lr_d: float | None = bounded(None, gt=0.0)  # D learning rate (None: the trainer's lr)
    lr_g: float | None = bounded(None, gt=0.0)  # G learning rate (None: the trainer's lr)
    betas: tuple[float, float] = bounded((0.5, 0.999), ge=0.0, lt=1.0)  # Adam betas (Sec. 4)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class ImageGenerator(nn.Module):
    """``G_I``: a frame's code ``z (N, content_dim + motion_dim) -> (N, C, H, W)`` in [-1, 1]
    (DCGAN-style, two up-sampling stages)."""

    def __init__(self, code_dim: int, shape: tuple[int, ...], width: int) -> None:
        super().__init__()
        _, c, h, w = shape
        self.start = (h // 4, w // 4)
        self.fc = nn.Linear(code_dim, 4 * width * h * w // 16)
        self.body = nn.Sequential(
            nn.BatchNorm2d(4 * width),
            nn.ReLU(inplace=True),
            _up(4 * width, 2 * width),
            _up(2 * width, width),
            nn.Conv2d(width, c, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.body(self.fc(z).view(z.shape[0], -1, *self.start))


class MotionRNN(nn.Module):
    """``R_M``: per-frame noise ``eps (B, T, motion_dim)`` and an initial state ``h0 (B,
    motion_dim)`` -> motion codes ``z_M (B, T, motion_dim)``, one GRU step per frame (Sec. 3.1),
    so ``z_M^(t)`` depends on ``eps^(1..t)`` only."""

    def __init__(self, motion_dim: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(motion_dim, motion_dim)

    def forward(self, eps: Tensor, h0: Tensor) -> Tensor:
        h, out = h0, []
        for t in range(eps.shape[1]):
            h = self.cell(eps[:, t], h)  # h^(t) = GRU(eps^(t), h^(t-1))
            out.append(h)
        return torch.stack(out, 1)


class ImageDiscriminator(nn.Module):
    """``D_I``: single frames ``(N, C, H, W) -> (N,)`` logits, each frame on its own."""

    def __init__(self, shape: tuple[int, ...], width: int) -> None:
        super().__init__()
        _, c, h, w = shape
        self.body = nn.Sequential(
            nn.Conv2d(c, width, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.head = nn.Linear(2 * width * h * w // 16, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x).flatten(1)).squeeze(1)


def _spectral(module: nn.Module) -> None:
    for m in list(module.modules()):
        if isinstance(m, nn.Linear | nn.Conv2d | nn.Conv3d):
            spectral_norm(m)


@register_model("video-mocogan")
class MoCoGAN(GenerativeModel, Samples):
    """MoCoGAN (arXiv:1707.04993): one content code per clip and a GRU motion path per frame
    into one image generator, against an image and a video discriminator. ``loss(batch, "d")`` /
    ``"g"``; logs ``d_loss``, ``d_image``, ``d_video``; ``g_loss``, ``g_image``, ``g_video``. No
    likelihood."""

    family: ClassVar[str] = "gans"
    dequantize: ClassVar[bool] = False
    config_class: ClassVar[type[Config]] = MoCoGANConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 2e-4, "batch_size": 32, "grad_clip": 0.0}
    config: MoCoGANConfig

    def __init__(self, config: MoCoGANConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        shape = clip_shape("video-mocogan", info, multiple=4)
        if config.image_frames > shape[0]:
            raise ConfigError(
                f"video-mocogan image_frames = {config.image_frames} exceeds the clip length of "
                f"{info.name!r}; choose 1 to {shape[0]}."
            )
        self.shape = shape
        self.image_generator = ImageGenerator(config.content_dim + config.motion_dim, shape,
                                              config.width)  # fmt: skip
        self.motion = MotionRNN(config.motion_dim)
        self.image_discriminator = ImageDiscriminator(shape, config.width)
        self.video_discriminator = VideoDiscriminator(shape, config.width)
        if config.spectral_norm:
            _spectral(self.image_discriminator)
            _spectral(self.video_discriminator)
        self.d_loss_fn, self.g_loss_fn = LOSS_PAIRS[config.loss]

    # ----------------------------------------------------------------------------- generator

    def generate(self, z_content: Tensor, z_motion: Tensor) -> Tensor:
        """``G_I([z_C, z_M^(t)])`` for every frame: ``z_content (B, content_dim)``, ``z_motion
        (B, T, motion_dim)`` -> clips ``(B, T, C, H, W)`` in [-1, 1]."""
        b, t = z_motion.shape[:2]
        z = torch.cat([z_content[:, None].expand(b, t, -1), z_motion], 2)  # Eq. (1): [z_C, z_M]
        return self.image_generator(z.reshape(b * t, -1)).view(b, t, *self.shape[1:])

    def forward(self, z_content: Tensor, eps: Tensor, h0: Tensor) -> Tensor:
        """A clip from its noise: ``z_C (B, content_dim)``, ``eps (B, T, motion_dim)``, ``h0 (B,
        motion_dim)`` -> ``(B, T, C, H, W)``; the motion codes are ``R_M(eps)`` (Sec. 3.1)."""
        return self.generate(z_content, self.motion(eps, h0))

    def noise(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(z_C, eps, h0)`` for ``n`` clips, all standard normal (in that order of drawing)."""
        c, t = self.config, self.shape[0]
        z_c = randn((n, c.content_dim), generator=generator, device=self.device)
        eps = randn((n, t, c.motion_dim), generator=generator, device=self.device)
        h0 = randn((n, c.motion_dim), generator=generator, device=self.device)
        return z_c, eps, h0

    # ---------------------------------------------------------------------------- the players

    def _frames(self, x: Tensor, idx: Tensor) -> Tensor:
        """``S_1``: frames ``idx (B, k)`` of each clip ``x (B, T, ...)`` -> ``(B * k, C, H, W)``."""
        rows = torch.arange(x.shape[0], device=x.device)[:, None].expand_as(idx)
        return x[rows, idx].flatten(0, 1)

    def _frame_idx(self, b: int) -> Tensor:
        t, k = self.shape[0], self.config.image_frames
        u = rand((b, t), device=self.device)
        return u.argsort(1)[:, :k]  # k distinct frames per clip, uniformly at random

    def _image_scores(self, x: Tensor, idx: Tensor) -> Tensor:
        """``D_I`` on the chosen frames of each clip: ``(B, k)`` logits."""
        return self.image_discriminator(self._frames(x, idx)).view(idx.shape)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return player_groups(
            [self.image_discriminator, self.video_discriminator],
            [self.image_generator, self.motion],
        )

    def group_settings(self) -> dict[str, dict[str, Any]]:
        c = self.config
        return player_settings(c.betas, c.lr_d, c.lr_g)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        x = batch["x"]
        b = x.shape[0]
        if group == "d":
            with torch.no_grad():
                fake = self(*self.noise(b))
            idx_r, idx_f = self._frame_idx(b), self._frame_idx(b)
            ri, fi = self._image_scores(x, idx_r), self._image_scores(fake, idx_f)  # (B, k)
            d_image = self.d_loss_fn(ri.flatten(), fi.flatten()).view(b, -1).mean(1)  # Eq. (3)
            rv, fv = self.video_discriminator(x), self.video_discriminator(fake)  # (B,)
            d_video = self.d_loss_fn(rv, fv)  # Eq. (3), the D_V terms
            per = d_image + d_video  # F_V per clip, minimised by D_I and D_V (Eq. 2)
            logs = {"d_loss": per.mean().detach(), "d_image": d_image.mean().detach(),
                    "d_video": d_video.mean().detach()}  # fmt: skip
            return LossOutput(per.mean(), logs)
        if group == "g":
            fake = self(*self.noise(b))
            with frozen(self.image_discriminator, self.video_discriminator):
                fi = self._image_scores(fake, self._frame_idx(b))
                fv = self.video_discriminator(fake)
            g_image = self.g_loss_fn(fi.flatten()).view(b, -1).mean(1)
            g_video = self.g_loss_fn(fv)
            per = g_image + g_video  # G_I and R_M's side of Eq. (2) (non-saturating by default)
            logs = {"g_loss": per.mean().detach(), "g_image": g_image.mean().detach(),
                    "g_video": g_video.mean().detach()}  # fmt: skip
            return LossOutput(per.mean(), logs)
        raise ConfigError(
            f"video-mocogan loss group {group!r} is not valid; choose {choices(['d', 'g'])}."
        )

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per example: both discriminators' objective pair on the test clips and as many fresh
        fakes (``D_I`` on every frame, averaged per clip)."""
        x = batch["x"]
        b, t = x.shape[:2]
        fake = self.sample(b, generator=generator)
        every = torch.arange(t, device=x.device)[None].expand(b, t)
        ri, fi = self._image_scores(x, every).flatten(), self._image_scores(fake, every).flatten()
        rv, fv = self.video_discriminator(x), self.video_discriminator(fake)
        d_loss = self.d_loss_fn(ri, fi).view(b, t).mean(1) + self.d_loss_fn(rv, fv)
        g_loss = self.g_loss_fn(fi).view(b, t).mean(1) + self.g_loss_fn(fv)
        return {"d_loss": d_loss, "g_loss": g_loss}

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` clips ``(n, T, C, H, W)`` in [-1, 1], each from its own ``z_C`` and motion path;
        unconditional, no options."""
        if cond is not None or options:
            what = "cond" if cond is not None else repr(next(iter(options)))
            raise ConfigError(f"video-mocogan is unconditional and takes no {what}.")
        return self(*self.noise(n, generator)).float()
