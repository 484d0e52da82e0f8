"""BigGAN (small): class-conditional BN, hierarchical latent, projection D, orthogonal
regularisation and the truncation trick.

Brock, Donahue & Simonyan, "Large Scale GAN Training for High Fidelity Natural Image Synthesis",
arXiv:1809.11096, scaled down to run on a CPU:

- **Class-conditional batch norm with a shared embedding** (Sec. 3): one class embedding is shared
  by all generator blocks; each block's BN gains and biases are linear projections of it.
- **Hierarchical latent** (Sec. 3, "skip-z"): ``z`` is split into one chunk per resolution; the
  first feeds the initial linear layer, the others are concatenated to the class embedding of
  their block's conditional BN.
- **Projection discriminator** (Miyato & Koyama, "cGANs with Projection Discriminator",
  arXiv:1802.05637): ``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>`` on residual down blocks with
  global sum pooling.
- **Hinge loss and spectral norm** in both players (Sec. 3; Zhang et al., arXiv:1805.08318).
- **Orthogonal regularisation**, BigGAN's variant (Sec. 3.1, Eq. (3)): only the off-diagonal
  Gram entries of each generator weight are pushed towards zero, ``beta ||W^T W * (1 - I)||_F^2``
  (the filter norms stay free), beta = 1e-4.
- **Truncation trick** (Sec. 3.1): ``sample(n, truncation=t)`` draws ``z`` from the normal
  truncated to ``|z_i| <= t``; the paper resamples values outside the threshold, which draws
  from exactly this distribution.

Training follows the paper where it is cheap: Adam betas (0, 0.999) and D at four times G's
learning rate (4e-4 and 1e-4, the two time-scales of SA-GAN, arXiv:1805.08318, on which BigGAN
builds). Scaled down for a CPU: width 32, one D step per G step (the paper: 2, ``n_critic=2``),
and by default no spectral norm on D's last linear layer and class embedding (``sn_head``;
measured in docs/biggan.md). Batches carry labels ``y``; the
fakes of a step take the real batch's labels; ``sample(n, cond=y)`` draws for given labels, and
without ``cond`` the labels are drawn uniformly from the sampling generator (as ``cgan``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError, choices
from genzoo.core.protocol import Batch, GenerativeModel, LossOutput, Samples
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand, randn
from genzoo.data.base import DataInfo
from genzoo.models.gans.losses import d_loss_hinge, g_loss_critic
from genzoo.models.gans.players import image_shape, player_groups, player_settings
from genzoo.nn.biggan_nets import BigGANGenerator, biggan_discriminator_body
from genzoo.nn.diffaug import diff_augment, parse_policy
from genzoo.nn.gan_nets import Discriminator, apply_spectral_norm, frozen


def orthogonal_penalty(weight: Tensor) -> Tensor:
    """BigGAN's orthogonal regulariser of one weight, ``||W W^T * (1 - I)||_F^2`` (unweighted).

    ``W`` is the weight reshaped to ``(out, fan_in)`` (one row per filter); only the off-diagonal
    entries of its Gram matrix count, so rows may have any norm (arXiv:1809.11096, Eq. (3)).
    """
    w = weight.flatten(1)  # (out, ...) -> (out, fan_in)
    gram = w @ w.t()  # (out, out)
    off = gram * (1.0 - torch.eye(gram.shape[0], device=w.device, dtype=w.dtype))
    return off.pow(2).sum()  # Eq. (3) without beta


def truncated_normal(
    shape: tuple[int, ...],
    threshold: float,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Standard normal values conditioned on ``|z| <= threshold``, by the inverse CDF.

    The truncation trick resamples every value beyond the threshold until it falls inside
    (arXiv:1809.11096, Sec. 3.1); that is the normal truncated to ``[-t, t]``, which
    ``Phi^-1(U(Phi(-t), Phi(t)))`` draws in one pass (``torch.special.ndtri``).
    """
    lo = 0.5 * math.erfc(threshold / math.sqrt(2.0))  # Phi(-t)
    u = rand(shape, generator=generator, device=device, dtype=torch.float64)
    z = torch.special.ndtri(lo + (1.0 - 2.0 * lo) * u)  # in [-t, t] up to rounding
    return z.clamp_(-threshold, threshold).float()


@dataclass(frozen=True)
class BigGANConfig(Config):
    """Configuration of :class:`BigGAN` (small: widths for 8x8 to 32x32 images)."""

    latent_dim: int = bounded(60, ge=2)  # dimension of z, split over the initial layer and
    # each generator block (hierarchical latent)
    embed_dim: int = bounded(32, ge=1)  # width of the shared class embedding of G
    width: int = bounded(32, ge=1)  # channels of D's first block, doubled per block; G mirrors
    spectral_norm: bool = True  # spectral norm on every conv and linear weight of D and G (Sec. 3)
    sn_head: bool = False  # with spectral_norm: also on D's linear head psi and class embedding
    # (the paper's choice; off by default: on 8x8 digits it kept D's scores near 0, see
    # docs/biggan.md)
    ortho: float = bounded(1e-4, ge=0.0)  # beta of the orthogonal regulariser on G (0: off)
    n_critic: int = bounded(1, ge=1)  # D steps per G step (the paper: 2; 1 halves the cost)
    lr_d: float | None = bounded(4e-4, gt=0.0)  # D learning rate (None: the trainer's lr)
    lr_g: float | None = bounded(1e-4, gt=0.0)  # G learning rate (None: the trainer's lr)
    betas: tuple[float, float] = bounded((0.0, 0.999), ge=0.0, lt=1.0)  # Adam betas of both
    diffaug: str = ""  # DiffAugment policies on real and fake before D, e.g.
    # "color,translation,cutout" (arXiv:2006.10738; "" is off)

    def validate(self) -> None:
        parse_policy(self.diffaug)


@register_model("biggan")
class BigGAN(GenerativeModel, Samples):
    """BigGAN (arXiv:1809.11096), small: class-conditional images on labelled image datasets.

    ``forward(z, y)`` is ``G``; :meth:`critic` is the projection ``D``. ``loss(batch, "d")`` and
    ``loss(batch, "g")`` are the hinge losses of the players (G's with the orthogonal penalty);
    logs ``d_loss``, ``d_real``, ``d_fake``; ``g_loss``, ``ortho``. Sampling option
    ``truncation=t`` (t > 0) truncates ``z`` to ``|z_i| <= t``.
    """

    family: ClassVar[str] = "gans"
    dequantize: ClassVar[bool] = False
    config_class: ClassVar[type[Config]] = BigGANConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 2e-4, "batch_size": 64, "grad_clip": 0.0}
    config: BigGANConfig
    info: DataInfo

    def __init__(self, config: BigGANConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.shape = image_shape("biggan", info, min_side=4)
        if info.n_classes < 1:
            raise ConfigError(
                f"Model 'biggan' is class-conditional, but dataset {info.name!r} has no labels; "
                "choose a labelled dataset such as 'digits' or 'mnist5k'."
            )
        self.n_classes = info.n_classes
        self.policy = parse_policy(c.diffaug)
        ch, hw = self.shape[0], (self.shape[1], self.shape[2])
        self.generator = BigGANGenerator(c.latent_dim, self.n_classes, c.embed_dim, ch, hw, c.width)
        body, feat = biggan_discriminator_body(ch, hw, c.width)
        self.discriminator = Discriminator(body, feat, self.n_classes, "projection")
        if c.spectral_norm:
            apply_spectral_norm(self.discriminator if c.sn_head else self.discriminator.body)
            # G's shared embedding is a lookup table, not a layer: it keeps its plain weights
            apply_spectral_norm(self.generator.blocks)
            for m in (self.generator.linear, self.generator.out_conv):
                apply_spectral_norm(m)

    # ----------------------------------------------------------------------------------------------
    # networks

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        """The generator: ``(B, latent_dim), (B,) -> (B, C, H, W)`` in [-1, 1]."""
        return self.generator(z, y)

    def critic(self, x: Tensor, y: Tensor) -> Tensor:
        """D's hinge scores ``(B,)``: ``psi(phi(x)) + <embed(y), phi(x)>``."""
        return self.discriminator(x, y)

    def augmented_critic(self, x: Tensor, y: Tensor) -> Tensor:
        """D on DiffAugment's transform of ``x`` (the ``diffaug`` policies; identity when off):
        what both players' losses score, real and fake alike (arXiv:2006.10738, Sec. 3)."""
        return self.critic(diff_augment(x, self.policy), y)

    def ortho_penalty(self) -> Tensor:
        """Sum of :func:`orthogonal_penalty` over G's weights (matrices and conv kernels), the
        shared class embedding excepted (as BigGAN's reference code)."""
        total = torch.zeros((), device=self.device)
        for name, p in self.generator.named_parameters():
            if p.ndim >= 2 and not name.startswith("embed."):
                total = total + orthogonal_penalty(p)
        return total

    def _latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return randn((n, self.config.latent_dim), generator=generator, device=self.device)

    def _labels(self, batch: Batch) -> Tensor:
        if "y" not in batch:
            raise ConfigError("Model 'biggan' is class-conditional; batches need labels 'y'.")
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
        """D's hinge loss (``group="d"``) or G's (``group="g"``), averaged over the batch."""
        x, y = batch["x"], self._labels(batch)
        if group == "d":
            with torch.no_grad():
                fake = self(self._latent(x.shape[0]), y)  # detached fakes with the batch's labels
            real_out = self.augmented_critic(x, y)  # (B,)
            fake_out = self.augmented_critic(fake, y)  # (B,)
            adv = d_loss_hinge(real_out, fake_out)  # (B,)
            logs: dict[str, Tensor | float] = {
                "d_loss": adv.mean().detach(),
                "d_real": real_out.mean().detach(),
                "d_fake": fake_out.mean().detach(),
            }
            return LossOutput(adv.mean(), logs)
        if group == "g":
            fake = self(self._latent(x.shape[0]), y)
            with frozen(self.discriminator):  # D's weights take no gradient in G's step
                fake_out = self.augmented_critic(fake, y)  # (B,)
            adv = g_loss_critic(fake_out).mean()
            ortho = self.ortho_penalty() if self.config.ortho > 0 else torch.zeros(())
            total = adv + self.config.ortho * ortho  # Eq. (3): beta * R(W) added to G's loss
            return LossOutput(total, {"g_loss": adv.detach(), "ortho": ortho.detach()})
        raise ConfigError(
            f"BigGAN loss group {group!r} is not valid; choose {choices(['d', 'g'])}."
        )

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per example on a test batch and as many fakes with the batch's labels: the hinge
        ``d_loss`` and ``g_loss``, ``d_real``, ``d_fake``."""
        x, y = batch["x"], self._labels(batch)
        fake = self.sample(x.shape[0], cond=y, generator=generator)
        real_out, fake_out = self.critic(x, y), self.critic(fake, y)
        return {
            "d_loss": d_loss_hinge(real_out, fake_out),
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
        truncation: float | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` images ``(n, C, H, W)`` in [-1, 1] for labels ``cond`` (``(n,)``; uniform labels
        drawn after ``z`` without it). ``truncation=t`` (t > 0): ``|z_i| <= t``."""
        t = truncation
        if options:
            raise ConfigError(
                f"Unknown sampling option {next(iter(options))!r} for 'biggan'; "
                f"choose {choices(['truncation'])}."
            )
        if t is None:
            z = self._latent(n, generator)  # (n, latent_dim)
        else:
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
                raise ConfigError(
                    f"truncation = {t!r} is not valid for 'biggan'; give a threshold t > 0 "
                    "(|z_i| <= t; small t: typical, less varied samples)."
                )
            z = truncated_normal((n, self.config.latent_dim), float(t), generator, self.device)
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
        return self(z, y).float()
