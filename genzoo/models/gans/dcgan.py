"""DCGAN: the non-saturating GAN with the DCGAN generator and discriminator.

Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep Convolutional Generative
Adversarial Networks", arXiv:1511.06434. The nets (:func:`genzoo.nn.gan_nets.dcgan_generator`,
:func:`genzoo.nn.gan_nets.dcgan_discriminator`) follow the paper's guidelines (Sec. 3); the
training details of Sec. 4 are the defaults here: Adam with lr 2e-4 and beta1 = 0.5, batch 128,
z of dimension 100, batch norm in both G and D.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from genzoo.core.config import Config, bounded
from genzoo.core.registry import register_model
from genzoo.models.gans.gan import GAN, GANConfig


@dataclass(frozen=True)
class DCGANConfig(GANConfig):
    """DCGAN defaults: DCGAN nets with batch norm in D, z of dimension 100, Adam (0.5, 0.999)."""

    arch: Literal["auto", "mlp", "dcgan"] = "dcgan"  # the DCGAN nets (images only)
    latent_dim: int = bounded(100, ge=1)  # dimension of z (Sec. 4 of the paper)
    d_batchnorm: bool = True  # batch norm in D too (all layers but the input one)


@register_model("dcgan")
class DCGAN(GAN):
    """DCGAN (arXiv:1511.06434): the non-saturating GAN on the DCGAN nets; images only."""

    config_class: ClassVar[type[Config]] = DCGANConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 2e-4, "batch_size": 128, "grad_clip": 0.0}
