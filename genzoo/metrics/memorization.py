"""Memorization: does a sample sit on a training example?

For each sample, the ratio of its distance to the nearest training example over its distance to
the second nearest, ``d_1 / d_2`` in pixel or feature space. A copy of a training example has
ratio 0; a fresh sample sits between several training examples and has a ratio near 1. A sample
counts as memorized when the ratio is below a threshold, 1/3 following the nearest-neighbour
distance-ratio test used for diffusion-model memorization by Yoon et al. 2023 ("Diffusion
probabilistic models generalize when they fail to memorize") and Gu et al. 2023
(arXiv:2310.02664).
"""

from __future__ import annotations

import torch
from torch import Tensor

from genzoo.core.errors import GenzooError
from genzoo.metrics.features import FeatureExtractor, extract

CHUNK = 1024  # samples compared with the whole training set at once


def _flat(x: Tensor) -> Tensor:
    return x.detach().reshape(x.shape[0], -1).to(torch.float64)  # (N, D)


def nearest_train_ratio(
    samples: Tensor,
    train: Tensor,
    extractor: FeatureExtractor | None = None,
    *,
    chunk: int = CHUNK,
) -> tuple[Tensor, Tensor]:
    """``(ratio, nearest)``: ``d_1 / d_2`` (N,) float64 and the index (N,) of the nearest train row.

    Distances are Euclidean in ``extractor`` features, or between flattened inputs (pixel space)
    when ``extractor`` is ``None``. A sample whose two nearest training examples are both at
    distance 0 (a copy of a duplicated example) has ratio 0.
    """
    if train.shape[0] < 2:
        raise GenzooError(
            f"The distance ratio needs at least 2 training examples, got {train.shape[0]}."
        )
    if extractor is not None:
        a, b = (
            _flat(extract(extractor.features, samples)),
            _flat(extract(extractor.features, train)),
        )
    else:
        a, b = _flat(samples), _flat(train)
    if a.shape[1] != b.shape[1]:
        raise GenzooError(
            f"Samples and train data differ in dimension: {a.shape[1]} and {b.shape[1]}."
        )
    b = b.to(a.device)
    ratios, nearest = [], []
    for s in range(0, a.shape[0], chunk):
        # exact distances (no matrix-product shortcut): a copy must be at distance exactly 0
        d = torch.cdist(a[s : s + chunk], b, compute_mode="donot_use_mm_for_euclid_dist")  # (c, M)
        two = d.topk(2, dim=1, largest=False)
        d1, d2 = two.values[:, 0], two.values[:, 1]
        ratios.append(torch.where(d2 > 0, d1 / d2.clamp_min(1e-300), torch.zeros_like(d1)))
        nearest.append(two.indices[:, 0])
    return torch.cat(ratios), torch.cat(nearest)


def memorization(
    samples: Tensor,
    train: Tensor,
    extractor: FeatureExtractor | None = None,
    *,
    threshold: float = 1 / 3,
) -> dict[str, float]:
    """``{"memorized_fraction", "mean_ratio", "median_ratio", "threshold"}`` of the samples.

    ``memorized_fraction`` is the fraction of samples with ``d_1 / d_2 < threshold``.
    """
    ratio, _ = nearest_train_ratio(samples, train, extractor)
    return {
        "memorized_fraction": float((ratio < threshold).double().mean()),
        "mean_ratio": float(ratio.mean()),
        "median_ratio": float(ratio.median()),
        "threshold": float(threshold),
    }
