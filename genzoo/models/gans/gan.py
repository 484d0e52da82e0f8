"""The GAN: one model whose config picks the objective, the Lipschitz constraint and the nets.

Generative adversarial networks (Goodfellow et al., "Generative Adversarial Nets",
arXiv:1406.2661) train a generator ``G(z)`` against a discriminator (or critic) ``D(x)``. genzoo
trains them with the one Trainer: the model has two parameter groups, ``"d"`` then ``"g"``, each
with its own AdamW optimizer (:meth:`GAN.group_settings`: ``n_critic`` D steps per G step, each on
a fresh batch, optional two-time-scale learning rates ``lr_d``/``lr_g``, betas), and
``loss(batch, group)`` returns that player's loss. The objectives are the pure functions of
:mod:`genzoo.models.gans.losses`.

The paper-level names are presets that change config defaults only:

- ``gan``: non-saturating loss, no constraint, MLP (points) or DCGAN (images) nets
  (Goodfellow et al.).
- ``dcgan``: non-saturating, DCGAN nets with batch norm in D (Radford et al., arXiv:1511.06434).
- ``wgan``: Wasserstein critic with weight clipping c = 0.01 (Arjovsky et al., arXiv:1701.07875).
- ``wgan-gp``: Wasserstein critic with the gradient penalty, lambda = 10 (Gulrajani et al.,
  arXiv:1704.00028).
- ``hinge-sn``: hinge loss with spectral norm in D (Miyato et al., arXiv:1802.05957).
- ``cgan``: non-saturating, class-conditional G and D by concatenation (Mirza & Osindero,
  arXiv:1411.1784); ``conditional=projection`` for the projection discriminator.

Notes on how the papers map onto the one Trainer:

- **Weight clipping.** The Trainer has no post-step hook, so the WGAN critic is clipped at the
  *start* of every D and every G loss call (under ``no_grad``). That is exactly Algorithm 1 of
  Arjovsky et al.: each critic update is followed by a clip before the critic is used again, and
  after each full training step (D steps, then the G step) every D parameter lies in ``[-c, c]``.
- **RMSProp.** WGAN used RMSProp (lr 5e-5); the Trainer's optimizer is AdamW, so ``wgan`` uses
  Adam with ``betas = (0, 0.99)``: no momentum and the same second-moment average as PyTorch's
  RMSProp (``alpha = 0.99``), i.e. RMSProp up to Adam's bias correction.
- **Learning rates.** ``lr_d``/``lr_g`` left at ``None`` follow the trainer's ``lr`` (so
  ``lr=...`` on the command line or on resume sets both); set them for two time-scales.
- **EMA.** ``ema_decay`` of the trainer keeps an average of all weights; sampling then uses the
  averaged generator.
- **DiffAugment.** ``diffaug = "color,translation,cutout"`` (any subset) transforms real and fake
  images before D in both players' steps (Zhao et al., arXiv:2006.10738;
  :mod:`genzoo.nn.diffaug`); the gradient penalty is taken on unaugmented interpolates.
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
from genzoo.core.seeding import rand, randn
from genzoo.data.base import DataInfo
from genzoo.models.gans.losses import (
    LOSS_PAIRS,
    clip_weights_,
    gradient_penalty,
    r1_penalty,
)
from genzoo.models.gans.players import player_groups, player_settings
from genzoo.nn.diffaug import diff_augment, parse_policy
from genzoo.nn.gan_nets import (
    Discriminator,
    Generator,
    apply_spectral_norm,
    dcgan_discriminator,
    dcgan_generator,
    frozen,
    mlp_discriminator,
    mlp_generator,
)

LossName = Literal["minimax", "nonsaturating", "wasserstein", "wgan-gp", "hinge", "lsgan"]


@dataclass(frozen=True)
class GANConfig(Config):
    """Configuration of :class:`GAN` (the presets only change these defaults)."""

    loss: LossName = "nonsaturating"  # objective pair (see genzoo.models.gans.losses)
    arch: Literal["auto", "mlp", "dcgan"] = "auto"  # auto: DCGAN for images >= 8x8, else MLP
    latent_dim: int = bounded(32, ge=1)  # dimension of z ~ N(0, I)
    hidden: tuple[int, ...] = bounded((256, 256, 256), ge=1)  # MLP widths of G and of D
    width: int = bounded(64, ge=1)  # DCGAN: channels of D's first stage, doubled per stage; G
    # mirrors them
    d_batchnorm: bool = False  # batch norm in D (DCGAN); not with gradient penalties
    spectral_norm: bool = False  # spectral norm on every weight of D (arXiv:1802.05957)
    clip: float = bounded(0.01, ge=0.0)  # WGAN weight clipping c, used by loss='wasserstein'
    # (0: no clipping)
    gp: float = bounded(10.0, ge=0.0)  # lambda of the gradient penalty, used by loss='wgan-gp'
    r1: float = bounded(0.0, ge=0.0)  # gamma of the R1 penalty gamma/2 |grad D(x_real)|^2 (0: off)
    n_critic: int = bounded(1, ge=1)  # D steps per G step, each on a fresh batch
    lr_d: float | None = bounded(None, gt=0.0)  # D learning rate (None: the trainer's lr)
    lr_g: float | None = bounded(None, gt=0.0)  # G learning rate (None: the trainer's lr)
    betas: tuple[float, float] = bounded((0.5, 0.999), ge=0.0, lt=1.0)  # Adam betas of both
    # players
    conditional: Literal["none", "concat", "projection"] = "none"  # class conditioning of G and D
    diffaug: str = ""  # DiffAugment policies on real and fake before D, e.g.
    # "color,translation,cutout" (arXiv:2006.10738; images only; "" is off)

    def validate(self) -> None:
        parse_policy(self.diffaug)
        if not self.hidden:
            raise ConfigError("hidden = [] must hold at least one width.")
        if self.d_batchnorm and (self.loss == "wgan-gp" or self.r1 > 0):
            raise ConfigError(
                "d_batchnorm = true mixes examples, so per-example gradient penalties "
                "(loss = 'wgan-gp', r1 > 0) are not valid with it; set d_batchnorm = false."
            )


@register_model("gan")
class GAN(GenerativeModel, Samples):
    """GAN (arXiv:1406.2661): one model, a choice of objective, constraint and nets.

    ``forward(z, y=None)`` is the generator ``G``; :meth:`critic` is ``D``. ``loss(batch, "d")``
    is D's loss on the real batch and detached fakes (plus the gradient penalty or R1, and WGAN
    clipping first); ``loss(batch, "g")`` is G's loss with D frozen. Logs: ``d_loss``, ``d_real``,
    ``d_fake`` (batch means of D's outputs), ``gp``/``r1`` where used; ``g_loss``, ``d_fake``.
    Samples are in model space (images through tanh in [-1, 1]). There is no likelihood.
    """

    family: ClassVar[str] = "gans"
    dequantize: ClassVar[bool] = False
    config_class: ClassVar[type[Config]] = GANConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 2e-4, "batch_size": 256, "grad_clip": 0.0}
    config: GANConfig
    info: DataInfo

    def __init__(self, config: GANConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.shape = tuple(int(s) for s in info.shape)
        is_image = info.kind == "images" and len(self.shape) == 3
        arch = c.arch
        if arch == "auto":
            arch = "dcgan" if is_image and min(self.shape[1:]) >= 8 else "mlp"
        if arch == "dcgan" and not is_image:
            raise ConfigError(
                f"arch = 'dcgan' needs images of shape (C, H, W), but dataset {info.name!r} has "
                f"{info.kind} of shape {self.shape}; choose {choices(['auto', 'mlp'])} "
                "(model 'gan' for points)."
            )
        self.arch = arch
        k = info.n_classes if c.conditional != "none" else 0
        if c.conditional != "none" and k < 1:
            raise ConfigError(
                f"conditional = {c.conditional!r} needs class labels, but dataset {info.name!r} "
                "has none; choose conditional = 'none' or a labelled dataset such as 'digits'."
            )
        self.n_classes = k
        k_in = k if c.conditional == "concat" else 0  # one-hot channels/features into D's body
        if arch == "dcgan":
            ch, hw = self.shape[0], (self.shape[1], self.shape[2])
            g_body = dcgan_generator(c.latent_dim + k, ch, hw, c.width)
            d_body, feat = dcgan_discriminator(ch + k_in, hw, c.width, c.d_batchnorm)
        else:
            g_body = mlp_generator(c.latent_dim + k, info.dim, c.hidden)
            if is_image:
                g_body = nn.Sequential(g_body, nn.Tanh())
            d_body = mlp_discriminator(info.dim + k_in, c.hidden, c.d_batchnorm)
            feat = c.hidden[-1]
        self.generator = Generator(g_body, k)
        self.discriminator = Discriminator(d_body, feat, k, c.conditional)
        if c.spectral_norm:
            apply_spectral_norm(self.discriminator)
        self.d_loss_fn, self.g_loss_fn = LOSS_PAIRS[c.loss]
        self.policy = parse_policy(c.diffaug)
        if self.policy and not is_image:
            raise ConfigError(
                f"diffaug = {c.diffaug!r} augments images, but dataset {info.name!r} has "
                f"{info.kind}; set diffaug = ''."
            )

    # ----------------------------------------------------------------------------------------------
    # networks

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """The generator: ``(B, latent_dim) -> (B, *shape)`` in model space."""
        out = self.generator(z, y if self.n_classes else None)
        return out.view(z.shape[0], *self.shape)  # (B, D) or (B, C, H, W) -> (B, *shape)

    def critic(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """D's logits (critic scores for Wasserstein losses): ``(B, ...) -> (B,)``."""
        if self.arch == "mlp":
            x = x.flatten(1)  # (B, *shape) -> (B, D)
        return self.discriminator(x, y if self.n_classes else None)

    def augmented_critic(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """D on DiffAugment's transform of ``x`` (the ``diffaug`` policies; identity when off):
        what both players' losses score, real and fake alike (arXiv:2006.10738, Sec. 3)."""
        return self.critic(diff_augment(x, self.policy), y)

    def clip_critic_(self) -> None:
        """WGAN weight clipping: every D parameter into ``[-clip, clip]`` (loss 'wasserstein')."""
        if self.config.loss == "wasserstein" and self.config.clip > 0:
            clip_weights_(self.discriminator.parameters(), self.config.clip)

    def _latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return randn((n, self.config.latent_dim), generator=generator, device=self.device)

    def _labels(self, batch: Batch) -> Tensor | None:
        if not self.n_classes:
            return None
        if "y" not in batch:
            raise ConfigError(f"Model {self.name!r} is class-conditional; batches need labels 'y'.")
        return batch["y"]

    # ----------------------------------------------------------------------------------------------
    # protocol

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """D first, then G: ``n_critic`` D steps precede each G step."""
        return player_groups([self.discriminator], [self.generator])

    def group_settings(self) -> dict[str, dict[str, Any]]:
        c = self.config
        return player_settings(c.betas, c.lr_d, c.lr_g, c.n_critic)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """D's loss (``group="d"``) or G's loss (``group="g"``), averaged over the batch."""
        if group == "d":
            return self._d_loss(batch)
        if group == "g":
            return self._g_loss(batch)
        raise ConfigError(f"GAN loss group {group!r} is not valid; choose {choices(['d', 'g'])}.")

    def _d_loss(self, batch: Batch) -> LossOutput:
        c = self.config
        self.clip_critic_()  # Algorithm 1 of WGAN: the critic is clipped after every update
        x = batch["x"]
        y = self._labels(batch)
        with torch.no_grad():
            fake = self(self._latent(x.shape[0]), y)  # detached fakes: D's step leaves G alone
        x_in = x.detach().requires_grad_(True) if c.r1 > 0 else x
        real_out = self.augmented_critic(x_in, y)  # (B,)
        fake_out = self.augmented_critic(fake, y)  # (B,)
        adv = self.d_loss_fn(real_out, fake_out)  # (B,)
        per_example = adv
        logs: dict[str, Tensor | float] = {
            "d_loss": adv.mean().detach(),
            "d_real": real_out.mean().detach(),
            "d_fake": fake_out.mean().detach(),
        }
        if c.loss == "wgan-gp":
            gp = gradient_penalty(lambda t: self.critic(t, y), x, fake)  # (B,)
            per_example = per_example + c.gp * gp  # Eq. (3) of arXiv:1704.00028
            logs["gp"] = gp.mean().detach()
        if c.r1 > 0:
            r1 = r1_penalty(real_out, x_in)  # (B,)
            per_example = per_example + 0.5 * c.r1 * r1  # R1 with weight gamma / 2
            logs["r1"] = r1.mean().detach()
        return LossOutput(per_example.mean(), logs)  # the one reduction over the batch

    def _g_loss(self, batch: Batch) -> LossOutput:
        self.clip_critic_()  # G sees the clipped critic, as after Algorithm 1's critic loop
        x = batch["x"]
        y = self._labels(batch)  # fakes take the real batch's labels
        fake = self(self._latent(x.shape[0]), y)
        with frozen(self.discriminator):  # D's weights take no gradient in G's step
            fake_out = self.augmented_critic(fake, y)  # (B,)
        per_example = self.g_loss_fn(fake_out)  # (B,)
        logs: dict[str, Tensor | float] = {
            "g_loss": per_example.mean().detach(),
            "d_fake": fake_out.mean().detach(),
        }
        return LossOutput(per_example.mean(), logs)  # the one reduction over the batch

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per example on a test batch and as many fresh fakes (with the batch's labels):
        ``d_loss``, ``g_loss`` (the objective pair, without penalties), ``d_real``, ``d_fake``.

        For the Wasserstein losses ``-d_loss`` estimates the critic's Wasserstein-1 distance.
        """
        x = batch["x"]
        yy = self._labels(batch)
        fake = self.sample(x.shape[0], cond=yy, generator=generator)
        real_out = self.critic(x, yy)
        fake_out = self.critic(fake, yy)
        return {
            "d_loss": self.d_loss_fn(real_out, fake_out),
            "g_loss": self.g_loss_fn(fake_out),
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
        **options: Any,
    ) -> Tensor:
        """``n`` samples ``G(z, y)``, ``(n, *info.shape)`` in model space.

        ``z ~ N(0, I)`` is drawn first, so the same generator state gives the same ``z`` whatever
        ``cond`` is. Class-conditional models take labels ``cond`` of shape ``(n,)``; without
        them the labels are drawn uniformly (after ``z``) from ``generator``.
        """
        if options:
            raise ConfigError(
                f"Unknown sampling option {next(iter(options))!r} for {self.name!r}; "
                "GANs take none."
            )
        z = self._latent(n, generator)  # (n, latent_dim)
        y = None
        if self.n_classes:
            if cond is None:
                u = rand((n,), generator=generator, device=self.device)
                y = (u * self.n_classes).long().clamp(max=self.n_classes - 1)  # uniform labels
            else:
                y = torch.as_tensor(cond, device=self.device).long().reshape(-1)
                if y.shape != (n,) or bool(((y < 0) | (y >= self.n_classes)).any()):
                    raise ConfigError(
                        f"cond must hold {n} class labels in 0..{self.n_classes - 1}, "
                        f"got shape {tuple(y.shape)}."
                    )
        elif cond is not None:
            raise ConfigError(
                f"Model {self.name!r} is unconditional (conditional = 'none'); "
                "sample it without cond."
            )
        return self(z, y).float()


# --------------------------------------------------------------------------------------------------
# presets: config defaults only


@dataclass(frozen=True)
class WGANConfig(GANConfig):
    """WGAN defaults: Wasserstein critic with weight clipping, 5 critic steps, RMSProp-like Adam."""

    loss: LossName = "wasserstein"  # critic objective E[D(G(z))] - E[D(x)]
    clip: float = bounded(0.01, ge=0.0)  # weight clipping c of Algorithm 1
    n_critic: int = bounded(5, ge=1)  # critic steps per generator step (Algorithm 1)
    betas: tuple[float, float] = bounded((0.0, 0.99), ge=0.0, lt=1.0)  # no momentum: RMSProp
    # up to bias correction


@register_model("wgan")
class WGAN(GAN):
    """WGAN (arXiv:1701.07875): Wasserstein critic with weight clipping, c = 0.01, n_critic 5.

    Arjovsky, Chintala & Bottou, "Wasserstein GAN", Algorithm 1 (lr 5e-5, batch 64).
    """

    config_class: ClassVar[type[Config]] = WGANConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 5e-5, "batch_size": 64, "grad_clip": 0.0}


@dataclass(frozen=True)
class WGANGPConfig(GANConfig):
    """WGAN-GP defaults (arXiv:1704.00028, Algorithm 1): lambda = 10, n_critic = 5,
    Adam (0, 0.9). On sharp toy mixtures the authors' toy value gp = 0.1 covers more modes
    (benchmarks/RESULTS.md, "GAN objectives on toy2d:25gaussians").
    """

    loss: LossName = "wgan-gp"  # Wasserstein critic plus gradient penalty
    gp: float = bounded(10.0, ge=0.0)  # lambda of the penalty
    n_critic: int = bounded(5, ge=1)  # critic steps per generator step
    betas: tuple[float, float] = bounded((0.0, 0.9), ge=0.0, lt=1.0)  # Adam betas of Algorithm 1


@register_model("wgan-gp")
class WGANGP(GAN):
    """WGAN-GP (arXiv:1704.00028): Wasserstein critic with a gradient penalty, lambda = 10.

    Gulrajani et al., "Improved Training of Wasserstein GANs": the penalty of Eq. (3) replaces
    weight clipping; Algorithm 1's defaults (n_critic 5, Adam lr 1e-4, betas (0, 0.9)).
    """

    config_class: ClassVar[type[Config]] = WGANGPConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-4, "batch_size": 256, "grad_clip": 0.0}


@dataclass(frozen=True)
class HingeSNConfig(GANConfig):
    """SN-GAN defaults: hinge loss, spectral norm on D, one D step, Adam betas (0, 0.9)
    (beta1 = 0 matters: docs/gans.md, "Numbers")."""

    loss: LossName = "hinge"  # hinge adversarial loss
    spectral_norm: bool = True  # spectral normalisation of every D weight
    betas: tuple[float, float] = bounded((0.0, 0.9), ge=0.0, lt=1.0)  # Adam betas of both
    # players (no momentum)


@register_model("hinge-sn")
class HingeSN(GAN):
    """SN-GAN (arXiv:1802.05957): hinge loss with a spectrally normalised discriminator.

    Miyato et al., "Spectral Normalization for Generative Adversarial Networks"; the hinge loss
    of Lim & Ye, "Geometric GAN", arXiv:1705.02894.
    """

    config_class: ClassVar[type[Config]] = HingeSNConfig
