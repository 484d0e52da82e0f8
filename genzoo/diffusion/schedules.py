"""Noise schedules as pure functions.

Every diffusion model in genzoo is a denoiser ``D(x, sigma)`` on ``x = x0 + sigma * eps`` (the EDM
convention, arXiv:2206.00364, Sec. 2). A variance-preserving (DDPM) process
``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` is the same process scaled by
``s(t) = sqrt(abar_t)``, with ``sigma_t = sqrt((1 - abar_t) / abar_t)``.

- ``*_table`` functions return the discrete training sigmas of a DDPM-type model, ascending in t.
- Sampling schedules return descending sigmas that end in 0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def sigma_from_alpha_bar(alpha_bar: Tensor) -> Tensor:
    """``sigma = sqrt((1 - abar) / abar)``: the VP process in the EDM convention."""
    return ((1 - alpha_bar) / alpha_bar).sqrt()


def alpha_bar_from_sigma(sigma: Tensor) -> Tensor:
    """Inverse of :func:`sigma_from_alpha_bar`: ``abar = 1 / (1 + sigma^2)``."""
    return 1.0 / (1.0 + sigma**2)


def linear_beta_table(n: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """DDPM's linear betas (Ho et al., arXiv:2006.11239, Sec. 4) as sigmas, ascending (float64)."""
    betas = torch.linspace(beta_start, beta_end, n, dtype=torch.float64)
    alpha_bar = torch.cumprod(1 - betas, 0)  # abar_t = prod_s (1 - beta_s)
    return sigma_from_alpha_bar(alpha_bar)


def cosine_beta_table(n: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """Improved-DDPM cosine schedule (Nichol & Dhariwal, arXiv:2102.09672, Eq. 17), as sigmas."""
    t = torch.arange(n + 1, dtype=torch.float64) / n
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2  # Eq. (17)
    betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)  # clipped as in the paper
    alpha_bar = torch.cumprod(1 - betas, 0)
    return sigma_from_alpha_bar(alpha_bar)


def discrete_schedule(table: Tensor, steps: int) -> Tensor:
    """``steps`` evenly spaced sigmas of a table, descending, then 0 (DDIM, arXiv:2010.02502).

    With ``steps == len(table)`` this is DDPM's full reverse chain.
    """
    n = table.shape[0]
    if not 1 <= steps <= n:
        raise ValueError(f"steps must be between 1 and {n}, got {steps}")
    idx = torch.linspace(n - 1, 0, steps, dtype=torch.float64).round().long()
    return torch.cat([table[idx], table.new_zeros(1)]).float()


def karras_schedule(
    steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0
) -> Tensor:
    """EDM's sigmas (Karras et al., arXiv:2206.00364, Eq. 5), descending, then 0."""
    i = torch.arange(steps, dtype=torch.float64) / max(steps - 1, 1)
    inv = 1.0 / rho
    sig = (sigma_max**inv + i * (sigma_min**inv - sigma_max**inv)) ** rho  # Eq. (5)
    return torch.cat([sig, sig.new_zeros(1)]).float()


def loglinear_schedule(steps: int, sigma_min: float, sigma_max: float) -> Tensor:
    """Geometric sigmas (NCSN, arXiv:1907.05600), descending, then 0."""
    sig = torch.exp(torch.linspace(math.log(sigma_max), math.log(sigma_min), steps))
    return torch.cat([sig, sig.new_zeros(1)])


def sigma_to_t(sigma: Tensor, table: Tensor) -> Tensor:
    """Continuous timestep index of ``sigma`` in an ascending table (interpolated in log sigma)."""
    log_table = table.log().to(sigma.device, torch.float32)
    table = table.to(sigma.device, torch.float32)
    ls = sigma.float().clamp(min=table[0], max=table[-1]).log()  # no host sync (CUDA graphs)
    idx = torch.searchsorted(log_table, ls.contiguous()).clamp(1, table.shape[0] - 1)
    lo, hi = log_table[idx - 1], log_table[idx]
    w = ((ls - lo) / (hi - lo)).clamp(0, 1)
    return (idx - 1).float() + w
