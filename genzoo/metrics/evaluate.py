"""Sample-quality scores of a set of samples against reference data, reported with their settings.

:func:`evaluate_samples` embeds samples and reference data with one feature extractor and returns
the Fréchet distance, KID, IS (when the extractor classifies) and precision / recall / density /
coverage, together with everything needed to compare two numbers: the extractor's name and weight
hash, the numbers of samples, the seeds and the estimator settings. :func:`noise_floor` gives the
same scores between two disjoint halves of the real data: the value a perfect model would get at
that sample size, below which differences between models mean nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from genzoo.core.errors import GenzooError, choices
from genzoo.data.base import Dataset
from genzoo.metrics.features import FeatureExtractor, PixelFeatures, extract, has_logits
from genzoo.metrics.frechet import frechet_distance, inception_score, kid
from genzoo.metrics.precision_recall import prdc

METRICS = ("fd", "kid", "is", "prdc", "recognized")
DEFAULT_METRICS = ("fd", "kid", "is", "prdc")
RECOGNIZED_P = 0.9
"""A sample is *recognised* when the yardstick classifier gives its most likely class a softmax
probability of at least this."""


def recognition(
    logits: Tensor, threshold: float = RECOGNIZED_P, min_share: float = 0.02
) -> dict[str, float]:
    """How many samples a classifier recognises, and as how many classes.

    ``recognized``: the fraction of samples whose largest softmax probability is at least
    ``threshold``; ``classes_covered``: the classes that hold at least ``min_share`` of the
    recognised samples (the modes a model reaches; a few stray samples do not count);
    ``n_classes``: the classifier's classes.
    """
    p = logits.float().softmax(1)  # (B, K)
    conf, cls = p.max(1)
    ok = conf >= threshold
    counts = torch.bincount(cls[ok], minlength=p.shape[1])
    need = max(1, int(min_share * int(ok.sum())))
    return {
        "recognized": float(ok.float().mean()),
        "classes_covered": float((counts >= need).sum()) if bool(ok.any()) else 0.0,
        "n_classes": float(p.shape[1]),
    }


def _tensor(data: Tensor | Dataset, what: str) -> Tensor:
    if isinstance(data, Dataset):
        return data.all()["x"]  # model space (bin centres for images)
    if not isinstance(data, Tensor):
        raise GenzooError(
            f"{what} must be a tensor or a genzoo Dataset, got {type(data).__name__}."
        )
    return data


def evaluate_features(
    feats: Tensor,
    ref_feats: Tensor,
    *,
    logits: Tensor | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    is_splits: int = 10,
    k: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Scores of sample features (N, F) against reference features (M, F); see
    :func:`evaluate_samples` for the keys."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise GenzooError(f"Unknown metric {unknown[0]!r}; choose {choices(METRICS)}.")
    scores: dict[str, float] = {}
    if "fd" in metrics:
        scores["fd"] = frechet_distance(feats, ref_feats)
    if "kid" in metrics:
        g = torch.Generator().manual_seed(seed)
        size = min(kid_subset_size, feats.shape[0], ref_feats.shape[0])  # recorded in settings
        scores["kid"], scores["kid_std"] = kid(feats, ref_feats, kid_subsets, size, generator=g)
    if "is" in metrics and logits is not None:
        scores["is"], scores["is_std"] = inception_score(logits, min(is_splits, logits.shape[0]))
    if "prdc" in metrics:
        scores.update(prdc(ref_feats, feats, k=k))
    if "recognized" in metrics and logits is not None:
        scores.update(recognition(logits))
    return scores


def evaluate_samples(
    samples: Tensor,
    reference: Tensor | Dataset,
    extractor: FeatureExtractor | None = None,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    is_splits: int = 10,
    k: int = 5,
    seed: int = 0,
    batch_size: int = 500,
) -> dict[str, dict[str, Any]]:
    """Scores of ``samples`` against ``reference`` (both in model space) measured by ``extractor``.

    Returns ``{"scores": {...}, "settings": {...}}``. Scores: ``fd`` (Fréchet distance), ``kid``
    and ``kid_std`` (mean and std of the unbiased MMD^2 over ``kid_subsets`` subsets of
    ``kid_subset_size``), ``is`` and ``is_std`` (only if the extractor has ``logits``; over
    ``is_splits`` splits), ``precision``, ``recall``, ``density``, ``coverage`` (k-NN with ``k``),
    and on request (``"recognized"``, extractors with ``logits``) :func:`recognition`'s
    ``recognized``, ``classes_covered`` and ``n_classes``.
    Settings: ``extractor``, ``extractor_hash``, ``feature_dim``, ``n_samples``, ``n_reference``,
    ``seed`` (of the KID subsets) and the estimator settings above. ``extractor=None`` uses the
    flattened inputs (:class:`PixelFeatures`), the natural choice for low-dimensional points.
    """
    ext = extractor if extractor is not None else PixelFeatures()
    x = _tensor(samples, "samples")
    ref = _tensor(reference, "reference")
    feats = extract(ext.features, x, batch_size)
    ref_feats = extract(ext.features, ref.to(x.device), batch_size)
    logits = None
    if has_logits(ext) and {"is", "recognized"} & set(metrics):
        logits = extract(ext.logits, x, batch_size)  # type: ignore[attr-defined]
    scores = evaluate_features(
        feats,
        ref_feats,
        logits=logits,
        metrics=metrics,
        kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size,
        is_splits=is_splits,
        k=k,
        seed=seed,
    )
    settings: dict[str, Any] = {
        "extractor": ext.name,
        "extractor_hash": ext.hash,
        "feature_dim": int(feats.shape[1]),
        "n_samples": int(x.shape[0]),
        "n_reference": int(ref.shape[0]),
        "seed": seed,
        "metrics": list(metrics),
        "kid_subsets": kid_subsets,
        "kid_subset_size": min(kid_subset_size, int(x.shape[0]), int(ref.shape[0])),
        "is_splits": is_splits,
        "k": k,
    }
    if "recognized" in metrics:
        settings["recognized_p"] = RECOGNIZED_P
    return {"scores": scores, "settings": settings}


def rank_agreement(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Spearman's rank correlation of two yardsticks' scores of the same models, and its
    two-sided p-value (``scipy.stats.spearmanr``; ties get average ranks): 1 when both order the
    models alike, -1 when one reverses the other. Needs at least 3 models, no NaN."""
    if len(a) != len(b) or len(a) < 3:
        raise GenzooError(
            f"A rank agreement needs the same models under both yardsticks, at least 3; got "
            f"{len(a)} and {len(b)} scores."
        )
    from scipy.stats import spearmanr

    res = spearmanr(a, b)
    return float(res.statistic), float(res.pvalue)


def noise_floor(
    reference: Tensor | Dataset,
    extractor: FeatureExtractor | None = None,
    *,
    n: int | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> dict[str, dict[str, Any]]:
    """:func:`evaluate_samples` between two disjoint random halves of the real data.

    ``n`` caps the size of each half (default: half of the data), so the floor can be taken at the
    sample count the models are evaluated with. The halves come from a permutation seeded with
    ``seed``; ``settings["split"]`` records it.
    """
    ref = _tensor(reference, "reference")
    half = ref.shape[0] // 2
    n = half if n is None else min(n, half)
    if n < 2:
        raise GenzooError(
            f"The noise floor needs at least 4 reference examples, got {ref.shape[0]}."
        )
    perm = torch.randperm(ref.shape[0], generator=torch.Generator().manual_seed(seed))
    a, b = ref[perm[:n].to(ref.device)], ref[perm[half : half + n].to(ref.device)]
    out = evaluate_samples(a, b, extractor, seed=seed, **kwargs)
    out["settings"]["split"] = f"two disjoint random halves of the reference (seed {seed})"
    return out
