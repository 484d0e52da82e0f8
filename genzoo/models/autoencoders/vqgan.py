"""VQ-GAN: a VQ autoencoder trained with a perceptual and a patch-wise adversarial loss.

Esser, Rombach & Ommer, "Taming Transformers for High-Resolution Image Synthesis",
arXiv:2012.09841, Sec. 3.2. The autoencoder is genzoo's VQ-VAE (:class:`VQVAE`: the same encoder,
decoder and :class:`~genzoo.nn.quantizer.VectorQuantizer`, EMA codebook and dead-code restarts
included), so a VQ-GAN run has the VQ-VAE's codes and latents: a ``vqvae-prior`` (the paper's
transformer over codes) or an ``ldm`` (latent diffusion, arXiv:2112.10752) is built over it with
``vqvae_run=`` / ``autoencoder_run=``. What VQ-GAN adds:

- the perceptual loss: the reconstruction term of Eq. (4) is ``mse + perceptual * d(x, x_hat)``
  with ``d`` the LPIPS-style distance of :func:`genzoo.nn.perceptual.perceptual_distance` in a
  frozen feature network. The network is pluggable and comes from outside the model
  (:meth:`VQGAN.set_feature_net`; ``genzoo train vqgan`` passes genzoo's own deterministic feature
  classifier of the dataset, trained with another seed than the one the metrics use); it is not
  part of the model's weights.
- a PatchGAN discriminator D (:class:`genzoo.nn.image2image.PatchDiscriminator`) and the
  adversarial loss of Eq. (5) (hinge by default, as the paper's code);
- the adaptive weight of Eq. (7), ``lambda = |grad_{G_L} L_rec| / (|grad_{G_L} L_GAN| + delta)``
  with ``G_L`` the last layer of the decoder (:func:`adaptive_weight`), in the total
  ``L_VQ + disc_weight * lambda * L_GAN`` of Eq. (6);
- a discriminator start step ``disc_start``: before it D is not trained and the generator's loss
  has no adversarial term (exactly the VQ-VAE loss plus the perceptual term), the schedule of the
  paper's code that keeps an untrained D from ruining early reconstructions.

Two players as every genzoo GAN: ``param_groups() = {"d": D, "g": encoder, decoder (and codebook
without EMA)}``, D's step first. The model counts its generator steps in a buffer ``step`` (saved
in checkpoints, so a resumed run keeps the schedule). Logs: ``mse``, ``perceptual``,
``commitment``, ``perplexity``, ``usage``, ``restarted``, ``g_adv``, ``adaptive_weight``,
``disc_on`` (G); ``d_loss``, ``d_real``, ``d_fake`` (D).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError, choices
from genzoo.core.protocol import Batch, LossOutput
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.models.autoencoders.base import per_example_mse
from genzoo.models.autoencoders.vqvae import VQVAE, VQVAEConfig
from genzoo.models.gans.players import player_groups, player_settings
from genzoo.models.gans.translation import AdvLoss, adversarial_pair, patch_mean
from genzoo.nn.gan_nets import frozen
from genzoo.nn.image2image import PatchDiscriminator, auto_patch_layers
from genzoo.nn.perceptual import features_of, perceptual_distance


@dataclass(frozen=True)
class VQGANConfig(VQVAEConfig):
    """Configuration of :class:`VQGAN`: the VQ-VAE's fields plus the adversarial ones."""

    perceptual: float = bounded(1.0, ge=0.0)  # weight of the perceptual distance in L_rec
    # (0: off, no feature network needed)
    disc_start: int = bounded(500, ge=0)  # generator step from which D trains and L_GAN counts
    disc_weight: float = bounded(0.8, ge=0.0)  # factor on the adaptive lambda (paper's code: 0.8)
    delta: float = bounded(1e-6, gt=0.0)  # delta of Eq. (7)
    max_weight: float = bounded(1e4, gt=0.0)  # lambda is clamped to [0, max_weight] (paper's code)
    d_loss: AdvLoss = "hinge"  # adversarial objective (genzoo.models.gans.losses)
    d_width: int = bounded(64, ge=1)  # channels of the PatchGAN's first stage
    d_layers: int = bounded(0, ge=0)  # PatchGAN stride-2 layers (0: the deepest <= 3 giving
    # >= 2x2 logits)
    lr_d: float | None = bounded(None, gt=0.0)  # D learning rate (None: the trainer's lr)
    lr_g: float | None = bounded(None, gt=0.0)  # autoencoder learning rate (None: the trainer's)
    betas: tuple[float, float] = bounded((0.5, 0.9), ge=0.0, lt=1.0)  # Adam betas of both
    # players (paper's code)


def last_layer_weight(decoder: nn.Module) -> nn.Parameter:
    """The weight of the decoder's last convolution or linear layer (``G_L`` of Eq. (7))."""
    layers = [m for m in decoder.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not layers:
        raise ValueError("the decoder has no convolution or linear layer")
    return layers[-1].weight


def adaptive_weight(
    rec: Tensor, adv: Tensor, last: Tensor, delta: float = 1e-6, max_weight: float = 1e4
) -> Tensor:
    """``lambda = |grad_last rec| / (|grad_last adv| + delta)``, clamped to ``[0, max_weight]``
    and detached (Eq. (7)); ``rec`` and ``adv`` are scalar losses whose graphs reach ``last``."""
    (g_rec,) = torch.autograd.grad(rec, last, retain_graph=True)
    (g_adv,) = torch.autograd.grad(adv, last, retain_graph=True)
    lam = g_rec.norm() / (g_adv.norm() + delta)  # Eq. (7)
    return lam.clamp(0.0, max_weight).detach()


class PerceptualFeatures:
    """Trained with a perceptual loss over a frozen feature network that the caller provides
    (:meth:`set_feature_net`); :attr:`needs_feature_net` says whether the config uses it."""

    _feature_net: tuple[nn.Module, ...] = ()

    @property
    def needs_feature_net(self) -> bool:
        raise NotImplementedError

    def set_feature_net(self, net: nn.Module) -> None:
        """Use ``net`` (images ``(B, C, H, W)`` in model space -> a feature map or a list of them)
        for the perceptual loss. It is frozen and kept outside the model's weights."""
        self._feature_net = (net.eval().requires_grad_(False),)


@register_model("vqgan")
class VQGAN(VQVAE, PerceptualFeatures):
    """VQ-GAN (arXiv:2012.09841): the VQ-VAE with a perceptual loss, a PatchGAN and the adaptive
    weight of Eq. (7). ``features`` is the perceptual loss's feature network (see
    :meth:`set_feature_net`)."""

    config_class: ClassVar[type[Config]] = VQGANConfig
    config: VQGANConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 2e-4, "batch_size": 64, "grad_clip": 0.0}

    def __init__(
        self, config: VQGANConfig, info: DataInfo, features: nn.Module | None = None
    ) -> None:
        if info.kind != "images" or len(info.shape) != 3:
            raise ConfigError(
                f"vqgan needs images (its discriminator is a PatchGAN), but dataset "
                f"{info.name!r} has {info.kind} of shape {tuple(info.shape)}; use vqvae."
            )
        super().__init__(config, info)
        c, h, w = self.shape
        self.d_layers = config.d_layers or auto_patch_layers((h, w))
        self.discriminator = PatchDiscriminator(c, config.d_width, self.d_layers, "batch")
        self.d_loss_fn, self.g_loss_fn = adversarial_pair(config.d_loss)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        if features is not None:
            self.set_feature_net(features)

    @property
    def needs_feature_net(self) -> bool:
        return self.config.perceptual > 0

    @property
    def disc_on(self) -> bool:
        """Whether the adversarial game has started (``step >= disc_start``)."""
        return int(self.step) >= self.config.disc_start

    def _features(self, x: Tensor) -> list[Tensor]:
        if not self._feature_net:
            raise ConfigError(
                "vqgan's perceptual loss needs a feature network: train it with `genzoo train "
                "vqgan` (which passes one), call set_feature_net(net), or set perceptual=0."
            )
        net = self._feature_net[0]
        p = next(net.parameters(), None)
        if p is not None and p.device != x.device:
            net.to(x.device)
        return features_of(net, x)

    def perceptual_loss(self, x_hat: Tensor, x: Tensor) -> Tensor:
        """The perceptual distance per example ``(B,)`` (0 with ``perceptual = 0``)."""
        if self.config.perceptual == 0:
            return torch.zeros(x.shape[0], device=x.device)
        with torch.no_grad():
            target = [f.detach() for f in self._features(x)]
        return perceptual_distance(self._features(x_hat.float()), target)

    # ----------------------------------------------------------------------------------------------
    # two players

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """D first, then the autoencoder (encoder, decoder, and the codebook without EMA)."""
        return player_groups([self.discriminator], [self.encoder, self.decoder, self.quantizer])

    def group_settings(self) -> dict[str, dict[str, Any]]:
        c = self.config
        return player_settings(c.betas, c.lr_d, c.lr_g)

    def reconstruct(self, x: Tensor) -> tuple[Tensor, Any]:
        """``(x_hat, quantizer output)``; in training mode this updates the codebook."""
        z = self.encode_latent(x)
        q = self.quantizer(self._to_vectors(z))
        return self._decode_quantized(self._from_vectors(q.z_q, x.shape[0])), q

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """D's loss (``group="d"``) or the autoencoder's (``group="g"``, also ``"main"``)."""
        if group == "d":
            return self._d_loss(batch["x"].float())
        if group in ("g", "main"):
            return self._g_loss(batch["x"].float())
        raise ConfigError(f"vqgan loss group {group!r} is not valid; choose {choices(['d', 'g'])}.")

    def _d_loss(self, x: Tensor) -> LossOutput:
        if not self.disc_on:  # D waits for disc_start: a zero loss leaves it unchanged
            zero = sum(p.sum() for p in self.discriminator.parameters()) * 0.0
            return LossOutput(zero, {"d_loss": 0.0, "d_real": 0.0, "d_fake": 0.0})
        with torch.no_grad():
            fake, _ = self.reconstruct(x)  # no gradient: no codebook update in D's step
        real_out, fake_out = self.discriminator(x), self.discriminator(fake)
        d = patch_mean(self.d_loss_fn(real_out, fake_out))  # (B,), from Eq. (5)
        logs: dict[str, Tensor | float] = {
            "d_loss": d.mean().detach(),
            "d_real": real_out.mean().detach(),
            "d_fake": fake_out.mean().detach(),
        }
        return LossOutput(d.mean(), logs)

    def _g_loss(self, x: Tensor) -> LossOutput:
        cfg = self.config
        x_hat, q = self.reconstruct(x)
        mse = per_example_mse(x_hat, x)  # (B,)
        perc = self.perceptual_loss(x_hat, x)  # (B,)
        rec = (mse + cfg.perceptual * perc).mean()  # L_rec, the one reduction over the batch
        vq = rec + cfg.beta * q.commitment + q.codebook_loss  # L_VQ, Eq. (4)
        logs: dict[str, Tensor | float] = {
            "mse": mse.mean().detach(),
            "perceptual": perc.mean().detach(),
            "commitment": q.commitment.detach(),
            "perplexity": q.perplexity,
            "usage": q.usage,
            "restarted": float(q.restarted),
            "disc_on": float(self.disc_on),
            "g_adv": 0.0,
            "adaptive_weight": 0.0,
        }
        loss = vq
        if self.disc_on and torch.is_grad_enabled():  # lambda needs gradients (Eq. (7))
            with frozen(self.discriminator):
                adv = patch_mean(self.g_loss_fn(self.discriminator(x_hat))).mean()  # L_GAN
            lam = adaptive_weight(
                rec, adv, last_layer_weight(self.decoder), cfg.delta, cfg.max_weight
            )
            loss = vq + cfg.disc_weight * lam * adv  # Eq. (6)
            logs["g_adv"] = adv.detach()
            logs["adaptive_weight"] = lam
        if self.training and torch.is_grad_enabled():
            self.step += 1  # one generator step seen (the discriminator schedule)
        return LossOutput(loss, logs)
