"""Precision / recall and density / coverage from k-nearest-neighbour manifolds of features.

- Precision and recall (Kynkäänniemi et al. 2019, arXiv:1904.06991): each set is approximated by
  the union of balls around its points, of radius the distance to the point's k-th nearest
  neighbour in its own set. Precision is the fraction of generated samples inside the real
  manifold, recall the fraction of real samples inside the generated one.
- Density and coverage (Naeem et al. 2020, arXiv:2002.09797): density counts how many real balls
  each generated sample falls in, divided by ``k`` (1 in expectation for identical distributions,
  above 1 where samples crowd dense regions); coverage is the fraction of real balls that hold at
  least one generated sample.

Distances are computed in float64 by ``torch.cdist`` in row chunks, so memory stays
``O(chunk * N)``. A point is inside a ball when its distance is strictly below the radius, as in
the ``prdc`` reference code of Naeem et al. (ties have probability zero for continuous features).
"""

from __future__ import annotations

import torch
from torch import Tensor

from genzoo.core.errors import GenzooError

CHUNK = 1024  # rows of the distance matrix computed at once


def _chunked_cdist(a: Tensor, b: Tensor, chunk: int):
    """Yield ``(start, cdist(a[start:start+chunk], b))`` blocks of the (N_a, N_b) distances."""
    for s in range(0, a.shape[0], chunk):
        yield s, torch.cdist(a[s : s + chunk], b)


def knn_radii(feats: Tensor, k: int, chunk: int = CHUNK) -> Tensor:
    """Distance of every row of ``feats`` (N, D) to its k-th nearest other row, (N,) float64."""
    f = feats.detach().to(torch.float64)
    if not 1 <= k < f.shape[0]:
        raise GenzooError(f"k must be between 1 and {f.shape[0] - 1} (the set size - 1), got {k}.")
    out = torch.empty(f.shape[0], dtype=torch.float64, device=f.device)
    for s, d in _chunked_cdist(f, f, chunk):
        out[s : s + d.shape[0]] = d.topk(k + 1, dim=1, largest=False).values[:, k]  # self is 0th
    return out


def prdc(real: Tensor, fake: Tensor, k: int = 5, chunk: int = CHUNK) -> dict[str, float]:
    """``{"precision", "recall", "density", "coverage"}`` of features ``fake`` against ``real``."""
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise GenzooError(
            f"prdc needs two (N, D) feature matrices of one dimension, got {tuple(real.shape)} "
            f"and {tuple(fake.shape)}."
        )
    r = real.detach().to(torch.float64)
    f = fake.detach().to(device=r.device, dtype=torch.float64)
    r_real = knn_radii(r, k, chunk)  # (N,)
    r_fake = knn_radii(f, k, chunk)  # (M,)

    in_real = torch.zeros(f.shape[0], dtype=torch.bool, device=r.device)  # fake j in some real ball
    n_balls = torch.zeros(f.shape[0], dtype=torch.float64, device=r.device)  # real balls holding j
    for s, d in _chunked_cdist(f, r, chunk):  # (c, N)
        inside = d < r_real[None]
        in_real[s : s + d.shape[0]] = inside.any(1)
        n_balls[s : s + d.shape[0]] = inside.sum(1).double()

    in_fake = torch.zeros(r.shape[0], dtype=torch.bool, device=r.device)  # real i in a fake ball
    covered = torch.zeros(r.shape[0], dtype=torch.bool, device=r.device)  # real ball i is hit
    for s, d in _chunked_cdist(r, f, chunk):  # (c, M)
        in_fake[s : s + d.shape[0]] = (d < r_fake[None]).any(1)
        covered[s : s + d.shape[0]] = d.min(1).values < r_real[s : s + d.shape[0]]

    return {
        "precision": float(in_real.double().mean()),
        "recall": float(in_fake.double().mean()),
        "density": float(n_balls.mean() / k),
        "coverage": float(covered.double().mean()),
    }
