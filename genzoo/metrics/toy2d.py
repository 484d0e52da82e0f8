"""Metrics for 2-D toy data with known modes: modes covered and the high-quality-sample rate.

A sample is *high quality* if it lies within ``k`` standard deviations of its nearest mode
(k = 3 following the unrolled-GAN evaluation, Metz et al., arXiv:1611.02163, Sec. 3.1); a mode is
*covered* if at least ``min_count`` high-quality samples are assigned to it.
"""

from __future__ import annotations

import torch
from torch import Tensor


def mode_stats(
    samples: Tensor, modes: Tensor, std: float, k: float = 3.0, min_count: int | None = None
) -> dict[str, float]:
    """``{"modes_covered", "n_modes", "hq_rate"}`` for samples (N, 2) and mode centres (K, 2)."""
    samples = samples.detach().double().cpu()
    modes = modes.double().cpu()
    d = torch.cdist(samples, modes)  # (N, K)
    dist, nearest = d.min(1)
    hq = dist <= k * std
    counts = torch.bincount(nearest[hq], minlength=modes.shape[0])
    if min_count is None:  # a mode needs a fair share: at least 1/4 of a uniform share, >= 1
        min_count = max(1, samples.shape[0] // (4 * modes.shape[0]) // 10)
    return {
        "modes_covered": float((counts >= min_count).sum()),
        "n_modes": float(modes.shape[0]),
        "hq_rate": float(hq.double().mean()),
    }
