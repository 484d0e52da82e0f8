"""DDPM's variational bound on the negative log-likelihood of discrete data.

Ho, Jain & Abbeel (arXiv:2006.11239), Eq. (5) (after Sohl-Dickstein et al., arXiv:1503.03585):

    L = KL(q(x_T|x0) || p(x_T))                                  (L_T)
        + sum_{t=2..T} KL(q(x_{t-1}|x_t,x0) || p(x_{t-1}|x_t))   (L_{t-1})
        - log p(x0|x1)                                           (L_0)

in the scaled (variance-preserving) variable ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` with
``abar_t = 1 / (1 + sigma_t^2)`` from the model's ``sigma_table``. The true posterior has mean
``mu_tilde`` and variance ``beta_tilde_t`` (Eq. 6-7); the model's reverse step has the mean of
Eq. (11) from ``eps_theta`` and the fixed variance ``beta_tilde_t``. At t = 1, where
``beta_tilde_1 = 0``, the decoder uses ``beta_tilde_2`` (the clipped log-variance of the
reference implementation). L_0 is the discretized Gaussian decoder of Eq. (13) on the data's L
levels in genzoo's bin convention: bins of width ``2/L`` centred at ``2(k + 0.5)/L - 1``, the
outer edges extended to +-infinity. For points (no levels) L_0 is the Gaussian density instead,
so the bound is on a continuous density.

The result is in nats per example; bits/dim is ``nll / (D ln 2)`` with no change of variables
(the data are discrete). To report it from :meth:`DDPM.eval_metrics`, return it under the key
``"elbo"`` as ``-ddpm_vlb(self, x)`` (evaluate() converts "elbo" to bits/dim).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from genzoo.core.errors import ConfigError
from genzoo.core.seeding import rand, randn

_LOG_TINY = 1e-12


def _sum(v: Tensor) -> Tensor:
    return v.reshape(v.shape[0], -1).sum(1)  # (B,)


def _normal_kl(mu1: Tensor, var1: Tensor, mu2: Tensor, var2: Tensor) -> Tensor:
    """Elementwise KL(N(mu1, var1) || N(mu2, var2))."""
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mu1 - mu2) ** 2) / var2 - 1)


def _std_normal_cdf(z: Tensor) -> Tensor:
    return torch.special.ndtr(z)


def discretized_gaussian_log_prob(x: Tensor, mean: Tensor, std: Tensor, levels: int) -> Tensor:
    """Elementwise log P(bin of x) under N(mean, std^2) with L bins on [-1, 1] (Eq. 13)."""
    half = 1.0 / levels
    k = torch.floor((x + 1) * levels / 2).clamp(0, levels - 1)  # the level of x
    centre = 2 * (k + 0.5) / levels - 1
    upper = torch.where(k >= levels - 1, torch.full_like(x, torch.inf), centre + half)
    lower = torch.where(k <= 0, torch.full_like(x, -torch.inf), centre - half)
    cdf_hi = _std_normal_cdf((upper - mean) / std)
    cdf_lo = _std_normal_cdf((lower - mean) / std)
    # For bins deep in a tail, use the upper tail 1 - cdf for precision.
    p = torch.where(
        mean > centre,
        _std_normal_cdf((mean - lower) / std) - _std_normal_cdf((mean - upper) / std),
        cdf_hi - cdf_lo,
    )
    return p.clamp(min=_LOG_TINY).log()


def _schedule(model: Any, dtype: torch.dtype, device: Any) -> tuple[Tensor, Tensor, Tensor]:
    """``(abar, beta, beta_tilde)`` indexed by t = 1..T at positions 0..T-1."""
    sigma = model.sigma_table.to(device, torch.float64)
    abar = 1 / (1 + sigma**2)  # abar_t = 1 / (1 + sigma_t^2)
    abar_prev = torch.cat([abar.new_ones(1), abar[:-1]])
    beta = 1 - abar / abar_prev
    beta_tilde = (1 - abar_prev) / (1 - abar) * beta  # Eq. (7)
    return abar.to(dtype), beta.to(dtype), beta_tilde.to(dtype)


def ddpm_vlb_terms(
    model: Any,
    x0: Tensor,
    t: Tensor | None = None,
    generator: torch.Generator | None = None,
    cond: Tensor | None = None,
) -> dict[str, Tensor]:
    """The bound's terms per example: ``prior`` (B,) = L_T and ``terms`` (B, len(t)) = L_{t-1}
    for the 1-based timesteps ``t`` (default all 1..T; L_0 is the decoder NLL at t = 1)."""
    b, dev = x0.shape[0], x0.device
    dt = torch.float64 if x0.dtype == torch.float64 else torch.float32
    x0 = x0.to(dt)
    abar, beta, bt = _schedule(model, dt, dev)
    n_t = abar.shape[0]
    t = torch.arange(1, n_t + 1, device=dev) if t is None else t.to(dev)
    levels = model.info.levels if model.info.kind == "images" else None
    # L_T: KL(N(sqrt(abar_T) x0, 1 - abar_T) || N(0, 1)).
    prior = _sum(
        _normal_kl(abar[-1].sqrt() * x0, 1 - abar[-1], torch.zeros_like(x0), abar[-1] * 0 + 1)
    )
    cols = []
    for ti in t.tolist():
        i = ti - 1
        eps = randn(x0.shape, generator=generator, device=dev, dtype=dt)
        xt = abar[i].sqrt() * x0 + (1 - abar[i]).sqrt() * eps  # scaled x_t, Eq. (4)
        sigma = ((1 - abar[i]) / abar[i]).sqrt()
        s = torch.full((b,), float(sigma), device=dev, dtype=torch.float32)
        with torch.no_grad():
            e = model.eps(xt / abar[i].sqrt(), s, cond).to(dt)  # eps_theta(x_t, t)
        mean = (xt - beta[i] / (1 - abar[i]).sqrt() * e) / (1 - beta[i]).sqrt()  # Eq. (11)
        if ti == 1:  # L_0 = -log p(x0 | x1), Eq. (13), variance beta_tilde_2
            std = bt[1].sqrt()
            if levels:
                cols.append(-_sum(discretized_gaussian_log_prob(x0, mean, std, levels)))
            else:
                ll = -0.5 * ((x0 - mean) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)
                cols.append(-_sum(ll))
        else:
            abar_prev = abar[i - 1]
            mu_tilde = (abar_prev.sqrt() * beta[i] / (1 - abar[i])) * x0 + (
                (1 - beta[i]).sqrt() * (1 - abar_prev) / (1 - abar[i])
            ) * xt  # Eq. (7)
            cols.append(_sum(_normal_kl(mu_tilde, bt[i], mean, bt[i])))  # L_{t-1}
    return {"prior": prior, "terms": torch.stack(cols, 1)}


def ddpm_vlb(
    model: Any,
    x0: Tensor,
    generator: torch.Generator | None = None,
    *,
    n_timesteps: int | None = None,
    cond: Tensor | None = None,
) -> Tensor:
    """Upper bound on ``-log P(x0)`` in nats per example (B,) for a :class:`DDPM` (Eq. 5).

    ``n_timesteps`` None (or >= T) sums all T terms exactly (one noise draw each). An integer
    ``n < T`` gives an unbiased estimate from ``n`` terms (the timesteps shared across the batch):
    the first ``n // 2`` timesteps exactly -- the terms there are the largest and change fastest
    (on trained image models t <= 10 holds about half the bound) -- and one t drawn uniformly from
    each of ``n - n // 2`` equal strata of the rest, weighted by its stratum's size. Drawing all
    ``n`` uniformly from 1..T would be unbiased too, but a single draw then misses or hits the few
    dominant small-t terms and scatters by a factor of two.
    """
    n_t = model.sigma_table.shape[0]
    if n_timesteps is None or n_timesteps >= n_t:
        out = ddpm_vlb_terms(model, x0, None, generator, cond)
        return out["prior"] + out["terms"].sum(1)
    if n_timesteps < 1:
        raise ConfigError(f"n_timesteps = {n_timesteps} must be >= 1.")
    n_exact = n_timesteps // 2
    n_strata = n_timesteps - n_exact
    edges = torch.linspace(n_exact, n_t, n_strata + 1, dtype=torch.float64).round().long()
    lo, size = edges[:-1], edges[1:] - edges[:-1]  # stratum j: t in lo_j + 1 .. lo_j + size_j
    u = rand((n_strata,), generator=generator, device=x0.device).double().cpu()
    drawn = lo + 1 + (u * size).long().clamp(max=size - 1)
    t = torch.cat([torch.arange(1, n_exact + 1), drawn])
    weight = torch.cat([torch.ones(n_exact, dtype=torch.float64), size.double()])
    out = ddpm_vlb_terms(model, x0, t, generator, cond)
    terms = out["terms"]  # (B, n)
    return out["prior"] + (terms * weight.to(terms.device, terms.dtype)).sum(1)
