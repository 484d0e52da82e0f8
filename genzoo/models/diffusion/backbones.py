"""The denoising networks ``F(c_in x, c_noise, class)`` of the diffusion models, configured once.

Each backbone has its own frozen sub-config (:class:`UNetBackbone`, :class:`DiTBackbone`,
:class:`MLPBackbone`); a diffusion config holds all three (``unet``, ``dit``, ``mlp``) and its
``arch`` picks the one :func:`build_backbone` builds (``auto``: the U-Net for images, the MLP for
points). Configs written before the backbones were nested held their fields flat (``channels``,
``hidden``, ``width`` ...): :data:`FLAT_KEYS` says where each one lives now, and
:func:`nest_flat_keys` moves them (old ``config.yaml`` files and ``key=value`` overrides).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from torch import nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.data.base import DataInfo
from genzoo.nn.dit import DiT
from genzoo.nn.unet import NoiseMLP, UNet

Arch = Literal["auto", "unet", "dit", "mlp"]


@dataclasses.dataclass(frozen=True)
class UNetBackbone(Config):
    """The U-Net of DDPM (arXiv:2006.11239, App. B) with the options of later papers."""

    channels: int = bounded(32, ge=1)  # base channels (32 fits 8x8 digits on a CPU; 128 CIFAR-10)
    channel_mult: tuple[int, ...] = bounded((1, 2), ge=1)  # channel multiplier per resolution
    num_res_blocks: int = bounded(1, ge=0)  # residual blocks per level
    attn_resolutions: tuple[int, ...] = bounded((), ge=1)  # resolutions with self-attention (16,)
    dropout: float = bounded(0.0, ge=0, lt=1)  # dropout inside residual blocks
    adaptive_norm: bool = False  # noise and class enter by adaptive group norm (AdaGN,
    # arXiv:2105.05233) instead of being added to the features (DDPM)


@dataclasses.dataclass(frozen=True)
class DiTBackbone(Config):
    """The diffusion transformer (arXiv:2212.09748): patches, adaLN-Zero blocks."""

    patch: int = bounded(2, ge=1)  # patch size (the resolution must be a multiple of it)
    width: int = bounded(128, ge=1)  # token width (a multiple of heads)
    depth: int = bounded(4, ge=0)  # transformer blocks
    heads: int = bounded(4, ge=1)  # attention heads

    def validate(self) -> None:
        if self.width % self.heads:
            raise ConfigError(f"width = {self.width} must be divisible by heads = {self.heads}.")


@dataclasses.dataclass(frozen=True)
class MLPBackbone(Config):
    """An MLP over points, with the noise (and class) embedding added to every layer."""

    hidden: tuple[int, ...] = bounded((256, 256, 256), ge=1)  # widths of the hidden layers


BACKBONES: dict[str, type[Config]] = {"unet": UNetBackbone, "dit": DiTBackbone, "mlp": MLPBackbone}

FLAT_KEYS: dict[str, str] = {
    **{f.name: "unet" for f in dataclasses.fields(UNetBackbone)},
    **{f.name: "dit" for f in dataclasses.fields(DiTBackbone)},
    **{f.name: "mlp" for f in dataclasses.fields(MLPBackbone)},
}
"""Old flat config key -> the backbone sub-config that holds it now."""


def nest_flat_keys(cls: type[Config], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the old flat keys (``channels=8``) moved into their backbone's sub-config;
    each given sub-config is completed from ``cls``'s default of it (so a partial ``unet:
    {channels: 8}`` keeps the model's other U-Net defaults), and a flat key wins over a nested
    one."""
    out = dict(data)
    moved: dict[str, dict[str, Any]] = {}
    for key in list(out):
        if key in FLAT_KEYS:
            moved.setdefault(FLAT_KEYS[key], {})[key] = out.pop(key)
    defaults = {f.name: f for f in dataclasses.fields(cls) if f.name in BACKBONES}
    for part, f in defaults.items():
        if part not in out and part not in moved:
            continue
        given = out.get(part) or {}
        if isinstance(given, Config):
            given = given.to_dict()
        elif not isinstance(given, dict):
            raise ConfigError(f"{part} must be a mapping of keys to values.")
        base = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        out[part] = {**base.to_dict(), **given, **moved.get(part, {})}
    return out


def resolve_arch(arch: str, info: DataInfo) -> str:
    """``auto`` -> ``unet`` for images, ``mlp`` for points; a spatial backbone needs images."""
    if arch == "auto":
        return "unet" if info.kind == "images" else "mlp"
    if arch in ("unet", "dit") and info.kind != "images":
        raise ConfigError(f"arch = {arch!r} needs images, but {info.name!r} holds points.")
    return arch


def build_backbone(
    arch: str, config: Any, info: DataInfo, *, n_classes: int = 0, **unet_extra: Any
) -> nn.Module:
    """The network of ``arch`` (already resolved) from ``config.unet`` / ``.dit`` / ``.mlp``;
    ``unet_extra`` are further U-Net arguments (cross-attention ``context_dim``, ...)."""
    if arch == "unet":
        u: UNetBackbone = config.unet  # its fields are the U-Net's keywords
        return UNet(
            in_channels=info.shape[0],
            resolution=info.shape[-1],
            n_classes=n_classes,
            **dataclasses.asdict(u),
            **unet_extra,
        )
    if unet_extra:
        raise ConfigError(f"arch = {arch!r} takes no {sorted(unet_extra)[0]}; use the U-Net.")
    if arch == "dit":
        d: DiTBackbone = config.dit  # its fields are the DiT's keywords
        return DiT(info.shape[0], info.shape[-1], n_classes=n_classes, **dataclasses.asdict(d))
    return NoiseMLP(info.dim, config.mlp.hidden, n_classes=n_classes)
