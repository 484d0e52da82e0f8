"""Metrics for 2-D (and other low-dimensional) point samples.

- :func:`true_nll`: mean negative log-likelihood of the samples under the true density of a toy
  distribution (``Toy2D.log_prob``); it rewards precision, not coverage (a model that puts all its
  samples on one mode scores well), so read it next to the two distances below.
- :func:`mmd`: unbiased squared maximum mean discrepancy (Gretton et al. 2012, JMLR 13, "A kernel
  two-sample test", Lemma 6) with a sum of Gaussian kernels of several bandwidths.
- :func:`sliced_wasserstein`: the sliced p-Wasserstein distance (Bonneel et al. 2015, "Sliced and
  Radon Wasserstein barycenters of measures"): the 1-D Wasserstein distances of the projections on
  random unit directions, ``SW_p = (E_theta W_p^p(<x, theta>, <y, theta>))^(1/p)``; each 1-D
  distance is exact, also for sets of different sizes.
- :func:`mode_stats` (re-exported from :mod:`genzoo.metrics.toy2d`): modes covered and the
  high-quality-sample rate for mixtures with known modes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from genzoo.core.errors import GenzooError
from genzoo.core.seeding import randn
from genzoo.data.toy2d import Toy2D
from genzoo.metrics.toy2d import mode_stats

__all__ = ["mmd", "mode_stats", "sliced_wasserstein", "true_nll"]

DEFAULT_BANDWIDTHS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)  # fixed scales for toy data in [-4, 4]^2
CHUNK = 1024  # rows of a kernel matrix computed at once


def _points(x: Tensor, what: str) -> Tensor:
    if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[0] < 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise GenzooError(f"{what} must be (N, D) points with N >= 2, got {shape}.")
    return x.detach().to(torch.float64)


def true_nll(samples: Tensor, toy: Toy2D) -> float:
    """Mean ``-log p_true(x)`` in nats over samples (N, 2); ``inf`` if a sample has zero density."""
    if not toy.has_log_prob:
        raise GenzooError(
            f"toy2d:{toy.name} has no closed-form density, so the true NLL is not defined; use mmd "
            "or sliced_wasserstein instead."
        )
    x = _points(samples, "samples")
    return float(-toy.log_prob(x).mean())


def _kernel_sum(a: Tensor, b: Tensor, bandwidths: Tensor, exclude_diagonal: bool) -> Tensor:
    """``sum_ij sum_s exp(-|a_i - b_j|^2 / (2 s^2))``, in row chunks."""
    total = torch.zeros((), dtype=torch.float64, device=a.device)
    for s in range(0, a.shape[0], CHUNK):
        d2 = torch.cdist(a[s : s + CHUNK], b).square()  # (c, N_b)
        for bw in bandwidths.tolist():
            total = total + torch.exp(-d2 / (2 * bw**2)).sum()
    if exclude_diagonal:  # k(x_i, x_i) = 1 for each bandwidth
        total = total - a.shape[0] * len(bandwidths)
    return total


def mmd(x: Tensor, y: Tensor, bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS) -> float:
    """Unbiased MMD^2 between samples (m, D) and (n, D) with a sum of Gaussian kernels.

    ``k(a, b) = sum_s exp(-|a - b|^2 / (2 s^2))`` over ``bandwidths`` s; the estimate is 0 in
    expectation when both sets come from one distribution (and can then be slightly negative).
    """
    a, b = _points(x, "x"), _points(y, "y").to(x.device)
    if a.shape[1] != b.shape[1]:
        raise GenzooError(f"Point dimensions differ: {a.shape[1]} and {b.shape[1]}.")
    bw = torch.as_tensor(list(bandwidths), dtype=torch.float64, device=a.device)
    m, n = a.shape[0], b.shape[0]
    k_aa = _kernel_sum(a, a, bw, exclude_diagonal=True) / (m * (m - 1))
    k_bb = _kernel_sum(b, b, bw, exclude_diagonal=True) / (n * (n - 1))
    k_ab = _kernel_sum(a, b, bw, exclude_diagonal=False) / (m * n)
    return float(k_aa + k_bb - 2 * k_ab)


def wasserstein_1d(u: Tensor, v: Tensor, p: float = 1.0) -> Tensor:
    """``W_p^p`` between the empirical distributions of the columns of ``u`` (n, P), ``v`` (m, P).

    Exact: the quantile functions are step functions with steps at ``i/n`` and ``j/m``; the
    integral ``int_0^1 |F^-1(t) - G^-1(t)|^p dt`` is summed over the merged steps. Returns (P,).
    """
    n, m = u.shape[0], v.shape[0]
    us = u.T.contiguous().sort(1).values  # (P, n): sorting contiguous rows is much faster
    vs = v.T.contiguous().sort(1).values  # (P, m)
    if n == m:
        return (us - vs).abs().pow(p).mean(1)
    t = torch.cat(
        [
            torch.arange(1, n + 1, dtype=torch.float64) / n,
            torch.arange(1, m + 1, dtype=torch.float64) / m,
        ]
    ).unique()  # sorted merged step ends in (0, 1]
    width = torch.diff(t, prepend=t.new_zeros(1))
    mid = (t - width / 2).to(u.device)
    iu = (mid * n).floor().long().clamp(max=n - 1)
    iv = (mid * m).floor().long().clamp(max=m - 1)
    return ((us[:, iu] - vs[:, iv]).abs().pow(p) * width.to(u.device)).sum(1)


def sliced_wasserstein(
    x: Tensor,
    y: Tensor,
    n_projections: int = 256,
    p: float = 1.0,
    *,
    generator: torch.Generator | None = None,
) -> float:
    """Sliced p-Wasserstein distance between samples (n, D) and (m, D).

    Directions are uniform on the unit sphere, drawn from ``generator`` (seed 0 when omitted, so
    the same inputs give the same number). For a pure shift ``y = x + v`` it equals
    ``(E_theta |<v, theta>|^p)^(1/p)``, e.g. ``2 |v| / pi`` for p = 1 in 2-D.
    """
    a, b = _points(x, "x"), _points(y, "y").to(x.device)
    if a.shape[1] != b.shape[1]:
        raise GenzooError(f"Point dimensions differ: {a.shape[1]} and {b.shape[1]}.")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    theta = randn((a.shape[1], n_projections), generator=g, device=a.device, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)  # (D, P) unit directions
    wpp = wasserstein_1d(a @ theta, b @ theta, p)  # (P,)
    return float(wpp.mean() ** (1.0 / p))
