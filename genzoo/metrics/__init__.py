"""Metrics: likelihood units, sample quality over features, 2-D metrics, memorization and speed.

- :mod:`~genzoo.metrics.likelihood`: bits/dim with genzoo's one dequantization convention.
- :mod:`~genzoo.metrics.frechet`: Fréchet distance, KID, Inception Score over feature matrices.
- :mod:`~genzoo.metrics.features`, :mod:`~genzoo.metrics.classifier`: the pluggable yardsticks
  (local Inception weights; a small CNN genzoo trains and caches per dataset).
- :mod:`~genzoo.metrics.precision_recall`: k-NN precision / recall, density / coverage.
- :mod:`~genzoo.metrics.evaluate`: all of these at once, reported with their settings.
- :mod:`~genzoo.metrics.points`: true NLL, MMD, sliced Wasserstein, mode statistics for 2-D data
  (:func:`~genzoo.metrics.toy2d.mode_coverage` of a model's samples).
- :mod:`~genzoo.metrics.memorization`, :mod:`~genzoo.metrics.speed`.
"""

from genzoo.metrics.classifier import ClassifierConfig, FeatureClassifier, get_classifier
from genzoo.metrics.evaluate import (
    evaluate_features,
    evaluate_samples,
    noise_floor,
    rank_agreement,
)
from genzoo.metrics.features import (
    EmbedFeatures,
    FeatureExtractor,
    InceptionFeatures,
    PixelFeatures,
)
from genzoo.metrics.frechet import (
    feature_stats,
    frechet_distance,
    frechet_distance_from_stats,
    inception_score,
    kid,
)
from genzoo.metrics.likelihood import bits_per_dim
from genzoo.metrics.memorization import memorization, nearest_train_ratio
from genzoo.metrics.points import mmd, sliced_wasserstein, true_nll
from genzoo.metrics.precision_recall import prdc
from genzoo.metrics.speed import NFECounter, count_nfe, measure_throughput
from genzoo.metrics.toy2d import mode_coverage, mode_stats

__all__ = [
    "ClassifierConfig",
    "EmbedFeatures",
    "FeatureClassifier",
    "FeatureExtractor",
    "InceptionFeatures",
    "NFECounter",
    "PixelFeatures",
    "bits_per_dim",
    "count_nfe",
    "evaluate_features",
    "evaluate_samples",
    "feature_stats",
    "frechet_distance",
    "frechet_distance_from_stats",
    "get_classifier",
    "inception_score",
    "kid",
    "measure_throughput",
    "memorization",
    "mmd",
    "mode_coverage",
    "mode_stats",
    "nearest_train_ratio",
    "noise_floor",
    "prdc",
    "rank_agreement",
    "sliced_wasserstein",
    "true_nll",
]
