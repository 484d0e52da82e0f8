"""Fréchet distance, kernel distance (KID) and Inception Score over feature matrices.

Every function here takes features that a pluggable extractor (:mod:`genzoo.metrics.features`,
:mod:`genzoo.metrics.classifier`) computed; with the standard Inception network they are FID, KID
and IS as in the papers, with genzoo's own classifier they are the same statistics measured by a
yardstick trained on the dataset itself.

- Fréchet distance (Heusel et al. 2017, arXiv:1706.08500): the Fréchet (2-Wasserstein) distance
  between Gaussians fitted to the two feature sets,
  ``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))``. It is computed in float64 by
  torchmetrics' ``_compute_fid``, which takes ``Tr (S_a S_b)^(1/2)`` as the sum of the square roots
  of the eigenvalues of ``S_a S_b`` (real and non-negative for a product of PSD matrices). We use it
  rather than ``scipy.linalg.sqrtm`` because the eigenvalue form needs no iterative matrix square
  root: it has no spurious imaginary parts to drop, needs no ``eps * I`` hack for the singular
  covariances of small sample sets, runs on any torch device, and gives the numbers torchmetrics'
  FID gives. The tests check it against ``scipy.linalg.sqrtm`` in float64.
- KID (Bińkowski et al. 2018, arXiv:1801.01401): the unbiased estimate of the squared MMD
  with the cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets.
- Inception Score (Salimans et al. 2016, arXiv:1606.03498, Sec. 4):
  ``exp(E_x KL(p(y|x) || p(y)))``, mean and standard deviation over ``splits`` groups.

Small sample sets bias these estimates (FD upward, most strongly when the number of samples is
below the feature dimension, where the covariance estimate is singular); such calls warn.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import torch
from torch import Tensor

from genzoo.core.errors import GenzooError


def _as_features(feats: Tensor, what: str) -> Tensor:
    if not isinstance(feats, Tensor) or feats.ndim != 2:
        shape = tuple(feats.shape) if isinstance(feats, Tensor) else type(feats).__name__
        raise GenzooError(f"{what} must be a (N, D) feature matrix, got {shape}.")
    if feats.shape[0] < 2:
        raise GenzooError(
            f"{what} needs at least 2 rows to estimate statistics, got {feats.shape[0]}."
        )
    return feats.detach().to(torch.float64)


def feature_stats(feats: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64."""
    f = _as_features(feats, "features")
    mu = f.mean(0)
    c = f - mu  # (N, D)
    return mu, c.T @ c / (f.shape[0] - 1)


def frechet_distance_from_stats(
    mu_a: Tensor, sigma_a: Tensor, mu_b: Tensor, sigma_b: Tensor
) -> float:
    """Fréchet distance between ``N(mu_a, sigma_a)`` and ``N(mu_b, sigma_b)`` in float64."""
    mu_a, sigma_a, mu_b, sigma_b = (t.to(torch.float64) for t in (mu_a, sigma_a, mu_b, sigma_b))
    if mu_a.shape != mu_b.shape or sigma_a.shape != sigma_b.shape:
        raise GenzooError(
            f"Feature statistics of dimension {tuple(mu_a.shape)} and {tuple(mu_b.shape)} differ."
        )
    from torchmetrics.image.fid import _compute_fid  # imported here: torchmetrics loads slowly

    # |mu_a - mu_b|^2 + Tr S_a + Tr S_b - 2 sum_i sqrt(eig_i(S_a S_b)), the FID of arXiv:1706.08500
    return float(_compute_fid(mu_a, sigma_a, mu_b, sigma_b))


def warn_if_few(n: int, dim: int, metric: str) -> None:
    """Warn (one sentence) when ``n`` samples are too few for ``dim``-dimensional features."""
    if n < dim:
        warnings.warn(
            f"{metric} from {n} samples of {dim}-dimensional features is strongly biased "
            f"(fewer samples than dimensions); use at least {dim}, ideally {10 * dim}, samples.",
            stacklevel=3,
        )


def frechet_distance(feats_a: Tensor, feats_b: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N_a, D) and (N_b, D)."""
    fa, fb = _as_features(feats_a, "feats_a"), _as_features(feats_b, "feats_b")
    if fa.shape[1] != fb.shape[1]:
        raise GenzooError(f"Feature dimensions differ: {fa.shape[1]} and {fb.shape[1]}.")
    warn_if_few(min(fa.shape[0], fb.shape[0]), fa.shape[1], "The Fréchet distance")
    return frechet_distance_from_stats(*feature_stats(fa), *feature_stats(fb))


def _poly_kernel(a: Tensor, b: Tensor, dim: int) -> Tensor:
    return (a @ b.T / dim + 1.0) ** 3  # k(x, y) = (x.y / d + 1)^3, arXiv:1801.01401


def mmd2_poly(feats_a: Tensor, feats_b: Tensor) -> Tensor:
    """Unbiased squared MMD with the cubic polynomial kernel between (m, D) and (n, D), float64."""
    a, b = feats_a.to(torch.float64), feats_b.to(torch.float64)
    m, n, d = a.shape[0], b.shape[0], a.shape[1]
    k_aa, k_bb, k_ab = _poly_kernel(a, a, d), _poly_kernel(b, b, d), _poly_kernel(a, b, d)
    sum_aa = k_aa.sum() - k_aa.diagonal().sum()  # off-diagonal terms only: unbiased
    sum_bb = k_bb.sum() - k_bb.diagonal().sum()
    return sum_aa / (m * (m - 1)) + sum_bb / (n * (n - 1)) - 2 * k_ab.sum() / (m * n)


def kid(
    feats_a: Tensor,
    feats_b: Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    *,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """Kernel distance: mean and standard deviation of the unbiased MMD^2 over random subsets.

    Each of ``subsets`` rounds draws ``subset_size`` rows of each set without replacement (all rows
    when a set is smaller, with a warning). Unbiased: its expectation is 0 when both sets come from
    the same distribution, so it can be slightly negative.
    """
    fa, fb = _as_features(feats_a, "feats_a"), _as_features(feats_b, "feats_b")
    if fa.shape[1] != fb.shape[1]:
        raise GenzooError(f"Feature dimensions differ: {fa.shape[1]} and {fb.shape[1]}.")
    if subsets < 1 or subset_size < 2:
        raise GenzooError(
            f"KID needs subsets >= 1 and subset_size >= 2, got {subsets}, {subset_size}."
        )
    m = min(subset_size, fa.shape[0], fb.shape[0])
    if m < subset_size:
        warnings.warn(
            f"KID subset_size {subset_size} exceeds the {min(fa.shape[0], fb.shape[0])} samples "
            f"available; using subsets of {m}.",
            stacklevel=2,
        )
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    vals = []
    for _ in range(subsets):
        ia = torch.randperm(fa.shape[0], generator=g)[:m].to(fa.device)
        ib = torch.randperm(fb.shape[0], generator=g)[:m].to(fb.device)
        vals.append(mmd2_poly(fa[ia], fb[ib]))
    v = torch.stack(vals)
    return float(v.mean()), float(v.std(unbiased=False)) if subsets > 1 else 0.0


def inception_score(
    logits_or_probs: Tensor,
    splits: int = 10,
    *,
    kind: Literal["auto", "logits", "probs"] = "auto",
) -> tuple[float, float]:
    """Inception Score ``exp(E_x KL(p(y|x) || p(y)))``: mean and std over ``splits`` groups.

    ``logits_or_probs`` is (N, K); ``kind="auto"`` treats rows that are non-negative and sum to 1 as
    probabilities and anything else as logits. Rows are split in order into ``splits`` groups, each
    with its own marginal ``p(y)`` (as in the paper's code).
    """
    x = _as_features(logits_or_probs, "logits_or_probs")
    if kind == "auto":
        is_probs = bool((x >= 0).all()) and bool(torch.allclose(x.sum(1), torch.ones_like(x[:, 0])))
        kind = "probs" if is_probs else "logits"
    if kind == "probs":
        log_p = x.clamp_min(1e-300).log()
    elif kind == "logits":
        log_p = torch.log_softmax(x, dim=1)
    else:
        raise GenzooError(f"Unknown kind {kind!r}; choose 'auto', 'logits' or 'probs'.")
    if not 1 <= splits <= x.shape[0]:
        raise GenzooError(f"splits must be between 1 and the {x.shape[0]} samples, got {splits}.")
    scores = []
    for chunk in torch.tensor_split(log_p, splits):  # (N / splits, K) each
        log_marginal = torch.logsumexp(chunk, 0) - math.log(chunk.shape[0])  # log p(y)
        kl = (chunk.exp() * (chunk - log_marginal)).sum(1)  # KL(p(y|x) || p(y)), (n,)
        scores.append(kl.mean().exp())
    s = torch.stack(scores)
    return float(s.mean()), float(s.std(unbiased=False)) if splits > 1 else 0.0
