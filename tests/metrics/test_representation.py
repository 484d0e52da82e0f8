"""Probes and collapse monitors of frozen representations: closed forms and separable data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genzoo.metrics.representation import (
    alignment,
    effective_rank,
    knn_accuracy,
    label_subset,
    linear_probe,
    probe_table,
    std_sqrt_d,
    uniformity,
)


def _separable(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three classes in 5-D on either side of hyperplanes: x_0 - x_1 > 1 etc. by a margin."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 5)) * 0.3
    x[np.arange(n), y] += 3.0  # class c is far out along axis c
    return x, y


def test_linear_probe_and_knn_reach_100_percent_on_separable_features() -> None:
    xtr, ytr = _separable(300, 0)
    xte, yte = _separable(200, 1)
    assert linear_probe(xtr, ytr, xte, yte) == 1.0
    assert knn_accuracy(xtr, ytr, xte, yte) == 1.0
    rows = probe_table(xtr, {"class": ytr}, xte, {"class": yte}, budgets=(10, None))
    assert [r["labels"] for r in rows] == [10, "all"]
    assert all(r["linear"] == 1.0 and r["knn"] == 1.0 for r in rows)


def test_probe_of_high_dimensional_features_goes_through_pca_and_stays_exact() -> None:
    """Above PCA_ABOVE dimensions the probe sees the top principal components: separable 5-D
    classes rotated into 1,100 dimensions with small noise are still classified perfectly."""
    from genzoo.metrics.representation import PCA_ABOVE

    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(PCA_ABOVE + 76, 5)))  # (1100, 5) orthonormal columns
    (xtr, ytr), (xte, yte) = _separable(300, 0), _separable(200, 1)
    lift = [x @ q.T + 0.01 * rng.normal(size=(len(x), q.shape[0])) for x in (xtr, xte)]
    rows = probe_table(lift[0], {"class": ytr}, lift[1], {"class": yte}, budgets=(None,))
    assert all(r["linear"] == 1.0 and r["knn"] == 1.0 for r in rows)


def test_label_subset_takes_exactly_k_per_class() -> None:
    y = np.repeat(np.arange(4), 30)
    idx = label_subset(y, 7, seed=3)
    assert np.bincount(y[idx]).tolist() == [7, 7, 7, 7]
    assert len(label_subset(y, None)) == len(y)


def test_knn_weighs_votes_by_exp_similarity_over_t() -> None:
    """Two neighbours of class 0 at cosine 0.5, one of class 1 at cosine 1: exp(1/T) beats
    2 exp(0.5/T) for T = 0.07, the plain majority would pick class 0."""
    a = np.array([[1.0, 0.0], [0.5, math.sqrt(0.75)], [0.5, -math.sqrt(0.75)]])
    ya = np.array([1, 0, 0])
    assert knn_accuracy(a, ya, np.array([[1.0, 0.0]]), np.array([1]), k=3) == 1.0
    assert knn_accuracy(a, ya, np.array([[1.0, 0.0]]), np.array([0]), k=3, temperature=10.0) == 1


def test_collapse_monitors_closed_forms() -> None:
    d = 16
    onehot = torch.eye(d) * 2.5  # spread evenly: one embedding per axis
    assert float(std_sqrt_d(onehot)) == pytest.approx(1.0, rel=1e-6)  # std = 1/sqrt(d)
    assert float(effective_rank(onehot)) == pytest.approx(d, rel=1e-5)
    # uniformity: all pairs at squared distance 2 -> log exp(-2 * 2) = -4
    assert float(uniformity(onehot)) == pytest.approx(-4.0, rel=1e-6)
    same = torch.randn(1, d).expand(10, d)
    assert float(std_sqrt_d(same)) == pytest.approx(0.0, abs=1e-6)
    assert float(effective_rank(same)) == pytest.approx(1.0, abs=1e-4)
    assert float(uniformity(same)) == pytest.approx(0.0, abs=1e-6)
    assert float(alignment(onehot, onehot * 3)) == pytest.approx(0.0, abs=1e-10)
    assert float(alignment(onehot, -onehot)) == pytest.approx(4.0)  # |u - (-u)|^2 = 4
