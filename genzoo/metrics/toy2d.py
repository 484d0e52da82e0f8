"""Metrics for 2-D toy data with known modes: modes covered and the high-quality-sample rate.

A sample is *high quality* if it lies within ``k`` standard deviations of its nearest mode
(k = 3 following the unrolled-GAN evaluation, Metz et al., arXiv:1611.02163, Sec. 3.1); a mode is
*covered* if at least ``min_count`` high-quality samples are assigned to it.
:func:`mode_coverage` counts both for samples of a model (mode collapse in numbers).
"""

from __future__ import annotations

import torch
from torch import Tensor

from genzoo.core.errors import ConfigError
from genzoo.core.protocol import GenerativeModel, Samples
from genzoo.data import get_toy


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


def mode_coverage(
    model: GenerativeModel, toy: str = "8gaussians", n: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Mode collapse in numbers: :func:`mode_stats` of ``n`` samples of ``model`` (drawn in eval
    mode with a generator seeded ``seed`` on the model's device) on the toy mixture ``toy``
    (``"8gaussians"``, ``"25gaussians"``): modes covered, the number of modes, and the
    high-quality rate (samples within 3 std of a mode)."""
    mix = get_toy(toy)
    if mix.modes is None or mix.mode_std is None:
        raise ConfigError(f"Toy data {toy!r} has no modes to count; use a Gaussian mixture.")
    if not isinstance(model, Samples):
        raise ConfigError(f"Model {model.name!r} draws no samples, so it has no mode coverage.")
    g = torch.Generator(device=model.device).manual_seed(seed)
    was_training = model.training
    model.eval()
    x = model.sample(n, generator=g)
    model.train(was_training)
    return mode_stats(x, mix.modes, mix.mode_std)
