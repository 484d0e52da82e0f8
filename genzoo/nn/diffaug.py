"""Differentiable augmentation (DiffAugment) for GANs trained on little data.

Zhao, Liu, Lin, Zhu & Han, "Differentiable Augmentation for Data-Efficient GAN Training",
arXiv:2006.10738, Sec. 3: the *same* family of random, differentiable transformations ``T`` is
applied to real and to generated images every time D sees them (in D's step and in G's step), so
that D cannot memorise the few real images and G still gets gradients through ``T``. The three
policies of the paper (its Sec. 4 and reference code), for images in ``[-1, 1]``:

- ``color``: brightness ``x + (u - 0.5)``, saturation ``m_c + 2u (x - m_c)`` (``m_c`` the
  channel mean per pixel), contrast ``m + (u + 0.5) (x - m)`` (``m`` the image mean), one
  ``u ~ U[0, 1)`` per example and transformation;
- ``translation``: shift by up to 1/8 of the image size in each direction, zero padding;
- ``cutout``: zero a square of half the image size at a random place (clipped at the borders).

Each transformation is a differentiable function of the image (the randomness does not depend on
it), so gradients flow to G. Written by hand: the reference code is a short script, and no
maintained library ships it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from genzoo.core.errors import ConfigError, choices
from genzoo.core.seeding import rand

POLICIES = ("color", "translation", "cutout")


def parse_policy(text: str) -> tuple[str, ...]:
    """``"color,translation"`` -> ``("color", "translation")``; ``""``/``"none"`` -> ``()``.
    An unknown name is one sentence naming it and the choices."""
    names = [p.strip() for p in text.split(",") if p.strip() and p.strip() != "none"]
    for p in names:
        if p not in POLICIES:
            raise ConfigError(
                f"diffaug = {text!r}: {p!r} is not a DiffAugment policy; choose a comma-separated "
                f"list of {choices(list(POLICIES))} (or '' for none)."
            )
    return tuple(dict.fromkeys(names))


def _u(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """One ``u ~ U[0, 1)`` per example, shaped to broadcast over ``(B, C, H, W)``."""
    return rand((x.shape[0], 1, 1, 1), generator=generator, device=x.device, dtype=x.dtype)


def color(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Random brightness, saturation and contrast, one draw each per example."""
    x = x + (_u(x, generator) - 0.5)  # brightness
    m = x.mean(dim=1, keepdim=True)  # (B, 1, H, W)
    x = (x - m) * (_u(x, generator) * 2.0) + m  # saturation
    m = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return (x - m) * (_u(x, generator) + 0.5) + m  # contrast


def translation(
    x: Tensor, ratio: float = 0.125, generator: torch.Generator | None = None
) -> Tensor:
    """Shift each image by up to ``ratio`` of its size (integer pixels, zero padding)."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    u = rand((2, b), generator=generator, device=x.device)
    ty = (u[0] * (2 * sh + 1)).long() - sh  # (B,) in [-sh, sh]
    tx = (u[1] * (2 * sw + 1)).long() - sw  # (B,) in [-sw, sw]
    rows = torch.arange(h, device=x.device)[None, :] - ty[:, None]  # (B, H) source rows
    cols = torch.arange(w, device=x.device)[None, :] - tx[:, None]  # (B, W) source cols
    valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    bi = torch.arange(b, device=x.device)[:, None, None]
    out = x.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    out = out * valid[..., None].to(x.dtype)  # zero padding where the source is outside
    return out.permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)


def cutout(x: Tensor, ratio: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """Zero one square of ``ratio`` times the image size per example (clipped at the borders)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    u = rand((2, b), generator=generator, device=x.device)
    cy = (u[0] * (h + 1 - ch % 2)).long()  # (B,) centres, as in the reference code
    cx = (u[1] * (w + 1 - cw % 2)).long()
    ys = torch.arange(h, device=x.device)[None, :] - (cy[:, None] - ch // 2)  # (B, H)
    xs = torch.arange(w, device=x.device)[None, :] - (cx[:, None] - cw // 2)  # (B, W)
    inside = ((ys >= 0) & (ys < ch))[:, :, None] & ((xs >= 0) & (xs < cw))[:, None, :]  # (B,H,W)
    return x * (~inside)[:, None].to(x.dtype)


def diff_augment(
    x: Tensor, policy: Sequence[str], generator: torch.Generator | None = None
) -> Tensor:
    """Apply the policies in the order given to images ``(B, C, H, W)``; ``()`` is the identity.
    Inputs that are not images (points) pass through unchanged."""
    if not policy or x.ndim != 4:
        return x
    for p in policy:
        if p == "color":
            x = color(x, generator)
        elif p == "translation":
            x = translation(x, generator=generator)
        elif p == "cutout":
            x = cutout(x, generator=generator)
        else:
            parse_policy(p)  # one sentence naming the unknown policy
    return x
