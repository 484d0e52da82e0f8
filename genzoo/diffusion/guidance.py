"""Guidance and editing as wrappers around a denoiser ``D(x, sigma, cond)``.

- Classifier-free guidance (Ho & Salimans, arXiv:2207.12598, Eq. 6, written for the denoiser):
  ``D_w(x, sigma, c) = D(x, sigma, null) + w (D(x, sigma, c) - D(x, sigma, null))``, for any kind
  of condition: the null condition is a class label one past the last (a dropped label) or a
  caption of padding only (a dropped caption); the wrapper is given it.
- Inpainting by replacement: the known pixels of the clean estimate are replaced by the truth,
  ``D'(x, sigma) = m * x_known + (1 - m) * D(x, sigma)``, so every sampler's update pulls the known
  region to the data while the unknown region follows the model (the replacement method of
  Song et al., arXiv:2011.13456, App. I.2, applied to the denoised estimate).

Each wrapper is itself a denoiser, so any sampler works with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from genzoo.core.errors import ConfigError


def check_guidance(w: float) -> float:
    """``w`` as a float when it is a usable guidance scale, else one sentence: NaN or an infinite
    scale would write NaN images, a negative one pushes away from the condition."""
    given = w
    try:
        w = float(w)
    except (TypeError, ValueError):
        w = math.nan  # not a number: the sentence below names it
    if not math.isfinite(w) or w < 0:
        raise ConfigError(
            f"guidance = {given!r} must be a finite number >= 0 (0: unconditional, 1: plain "
            "conditional sampling, > 1: stronger guidance)."
        )
    return w


class ClassifierFreeGuidance:
    """``D_u + w (D_c - D_u)`` in one batched call; ``null`` is the null condition: a value that
    fills a tensor shaped like ``cond`` (the null class, the padding id) or a function
    ``cond -> null condition``."""

    def __init__(self, denoiser: Any, scale: float, null: int | Callable[[Tensor], Tensor]) -> None:
        self.denoiser = denoiser
        self.scale = float(scale)
        self.null = null

    def null_condition(self, cond: Tensor) -> Tensor:
        return self.null(cond) if callable(self.null) else torch.full_like(cond, self.null)

    def __call__(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        if cond is None:
            return self.denoiser(x, sigma, None)
        both = self.denoiser(
            torch.cat([x, x]),
            torch.cat([sigma, sigma]),
            torch.cat([cond, self.null_condition(cond)]),
        )  # one batched call: (2B, ...)
        d_c, d_u = both.chunk(2)
        return d_u + self.scale * (d_c - d_u)  # Eq. (6)


class InpaintingDenoiser:
    """Replace the known region (``mask == 1``) of ``D``'s estimate by ``x_known``."""

    def __init__(self, denoiser: Any, x_known: Tensor, mask: Tensor) -> None:
        self.denoiser = denoiser
        self.x_known = x_known
        self.mask = mask.to(x_known.dtype)

    def __call__(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        d = self.denoiser(x, sigma, cond) if cond is not None else self.denoiser(x, sigma)
        return self.mask * self.x_known + (1 - self.mask) * d
