"""Conversions between what a network predicts and the denoised estimate, in one place.

With ``x = x0 + sigma * eps`` (unscaled, EDM convention) and ``abar = 1 / (1 + sigma^2)``:

- eps-prediction (DDPM, arXiv:2006.11239):  ``x0 = x - sigma * eps``
- x0-prediction:                            ``x0`` itself
- v-prediction (arXiv:2202.00512, Sec. 4):   ``v = sqrt(abar) eps - sqrt(1 - abar) x0``
  (defined on the scaled ``x_t = sqrt(abar) x``), so ``x0 = sqrt(abar) x_t - sqrt(1 - abar) v``
- score:                                     ``grad log p(x; sigma) = (x0 - x) / sigma^2``
- velocity of the straight path (rectified flow, arXiv:2209.03003) with ``x_t = (1-t) x0 + t eps``,
  ``t = sigma / (1 + sigma)``: ``u = eps - x0``, so ``x0 = x_t - t u``.

Samplers only ever see ``x0`` (the denoiser's output); models convert once, here (DDPM's
``eps``, NCSN's ``score``, flow matching's ``velocity``). ``sigma`` is per example, ``(B,)``.
"""

from __future__ import annotations

from torch import Tensor

from genzoo.core.tensors import per_example


def x0_from_eps(x: Tensor, eps: Tensor, sigma: Tensor) -> Tensor:
    return x - per_example(sigma, x) * eps


def eps_from_x0(x: Tensor, x0: Tensor, sigma: Tensor) -> Tensor:
    return (x - x0) / per_example(sigma, x)


def x0_from_v(x: Tensor, v: Tensor, sigma: Tensor) -> Tensor:
    s = per_example(sigma, x)
    abar = 1 / (1 + s**2)
    xt = abar.sqrt() * x  # the VP-scaled input
    return abar.sqrt() * xt - (1 - abar).sqrt() * v


def v_from_x0(x: Tensor, x0: Tensor, sigma: Tensor) -> Tensor:
    s = per_example(sigma, x)
    abar = 1 / (1 + s**2)
    eps = (x - x0) / s
    return abar.sqrt() * eps - (1 - abar).sqrt() * x0


def score_from_x0(x: Tensor, x0: Tensor, sigma: Tensor) -> Tensor:
    return (x0 - x) / per_example(sigma, x) ** 2


def x0_from_score(x: Tensor, score: Tensor, sigma: Tensor) -> Tensor:
    return x + per_example(sigma, x) ** 2 * score


def x0_from_velocity(x: Tensor, u: Tensor, sigma: Tensor) -> Tensor:
    s = per_example(sigma, x)
    t = s / (1 + s)
    xt = x / (1 + s)  # x_t = (1 - t) x0 + t eps  =  (x0 + sigma eps) / (1 + sigma)
    return xt - t * u


def velocity_from_x0(x: Tensor, x0: Tensor, sigma: Tensor) -> Tensor:
    s = per_example(sigma, x)
    eps = (x - x0) / s
    return eps - x0
