"""Collapse monitors of a batch of embeddings, logged at every training step of the
self-supervised models (and re-exported by :mod:`genzoo.metrics.representation`).

- ``std_sqrt_d``: the standard deviation over the batch of the l2-normalised embedding, averaged
  over its ``d`` dimensions, times ``sqrt(d)``. Embeddings spread evenly over the sphere give
  ``std ~ 1/sqrt(d)`` (so about 1 here); a collapsed representation (every input mapped to one
  vector) gives 0 (Chen & He, "SimSiam", arXiv:2011.10566, Sec. 4.1).
- ``eff_rank``: the effective rank ``exp(H(p))`` of the singular values ``p = s / sum(s)`` of the
  batch's embeddings (Roy & Vetterli 2007; RankMe, Garrido et al., arXiv:2210.02885, Eq. (1)):
  1 for a collapse to one vector, at most ``min(B, d)``; a low value is dimensional collapse.
- ``align``: ``E ||f(x) - f(y)||^2`` over positive pairs of normalised embeddings (Wang & Isola,
  arXiv:2005.10242, Eq. (2), alpha = 2; lower is better, 0 when the views agree).
- ``uniform``: ``log E exp(-2 ||f(x) - f(y)||^2)`` over all pairs of the batch (Eq. (3), t = 2;
  lower is more uniform, 0 when collapsed).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def std_sqrt_d(z: Tensor) -> Tensor:
    """``sqrt(d) mean_j std_b(z_bj / |z_b|)`` of embeddings ``(B, d)``: ~1 spread, 0 collapsed."""
    u = F.normalize(z.float(), dim=1)
    return u.std(0).mean() * math.sqrt(u.shape[1])


def effective_rank(z: Tensor, eps: float = 1e-12) -> Tensor:
    """``exp(-sum_k p_k log p_k)``, ``p = s / |s|_1`` for the singular values ``s`` of ``z``."""
    s = torch.linalg.svdvals(z.float())
    p = s / s.sum().clamp_min(eps) + eps
    return torch.exp(-(p * p.log()).sum())


def alignment(z1: Tensor, z2: Tensor) -> Tensor:
    """Wang & Isola Eq. (2) (alpha = 2) of the positive pairs ``(z1[i], z2[i])``."""
    a, b = F.normalize(z1.float(), dim=1), F.normalize(z2.float(), dim=1)
    return (a - b).pow(2).sum(1).mean()


def uniformity(z: Tensor, t: float = 2.0) -> Tensor:
    """Wang & Isola Eq. (3) over the distinct pairs of the batch ``z`` ``(B, d)``."""
    u = F.normalize(z.float(), dim=1)
    sq = torch.pdist(u).pow(2)  # (B (B - 1) / 2,)
    return sq.mul(-t).exp().mean().log()


def collapse_monitors(z1: Tensor, z2: Tensor) -> dict[str, Tensor]:
    """The four monitors of two views' embeddings ``(B, d)`` each (``z1`` for the one-view ones)."""
    return {
        "std_sqrt_d": std_sqrt_d(z1),
        "eff_rank": effective_rank(z1),
        "align": alignment(z1, z2),
        "uniform": uniformity(z1),
    }
