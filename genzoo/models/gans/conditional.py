"""Class-conditional GAN: G and D both see the label.

Mirza & Osindero, "Conditional Generative Adversarial Nets", arXiv:1411.1784: the label is fed to
both players, here as a one-hot vector concatenated to ``z`` (G) and to ``x`` (D; constant
channels for images). ``conditional=projection`` swaps D's conditioning for the projection
discriminator ``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>`` of Miyato & Koyama, "cGANs with
Projection Discriminator", arXiv:1802.05637. Batches carry labels in ``batch["y"]``; the fakes of a
step take the real batch's labels; ``sample(n, cond=y)`` draws for given labels, and without
``cond`` labels are drawn uniformly from the sampling generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from genzoo.core.config import Config
from genzoo.core.registry import register_model
from genzoo.models.gans.gan import GAN, GANConfig


@dataclass(frozen=True)
class CGANConfig(GANConfig):
    """cGAN defaults: class-conditional G and D (one-hot concatenation)."""

    conditional: Literal["none", "concat", "projection"] = "concat"  # how G and D see the label


@register_model("cgan")
class CGAN(GAN):
    """Conditional GAN (arXiv:1411.1784): G and D see one-hot labels; or a projection D."""

    config_class: ClassVar[type[Config]] = CGANConfig
