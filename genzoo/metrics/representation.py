"""How good a frozen representation is: linear probe and weighted k-NN accuracy with few labels,
and the collapse monitors of :mod:`genzoo.models.ssl.monitors`.

- :func:`linear_probe`: multinomial logistic regression (scikit-learn's ``LogisticRegression``,
  L-BFGS) on frozen features of the labelled training examples (standardised with the whole
  training split's statistics), accuracy on the test split (SimCLR Sec. 4, at genzoo's scale).
- :func:`knn_accuracy`: the weighted k-NN classifier of Wu et al. (arXiv:1805.01978, Sec. 3.4)
  used by DINO (arXiv:2104.14294, Sec. 4.1): the ``k`` most cosine-similar labelled examples vote
  with weight ``exp(s / T)`` (``k = 20``, ``T = 0.07``).
- :func:`probe_table`: both, for 1, 10, 100 labels per class and all labels, per target (the
  class; for ``shapes`` also the shape and the colour of the first object). Features of more
  than :data:`PCA_ABOVE` dimensions (raw 32 x 32 RGB pixels: 3,072) are first projected on
  the top :data:`PCA_DIM` principal components of the standardised features, fitted on the
  whole training split without labels (scikit-learn's ``PCA``; not whitened, which would
  blow the noise directions up to the signal's scale): L-BFGS on the 3,072 standardised
  pixels of ``shapes`` ran 100 iterations in about ten minutes on a loaded CPU without
  converging (32% shape accuracy), since pixels that are almost always black become huge,
  ill-conditioned outliers after standardising. A PCA projection is linear, so the probe stays
  linear in the features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from genzoo.models.ssl.monitors import (
    alignment,
    collapse_monitors,
    effective_rank,
    std_sqrt_d,
    uniformity,
)

__all__ = [
    "BUDGETS",
    "alignment",
    "collapse_monitors",
    "effective_rank",
    "knn_accuracy",
    "label_subset",
    "linear_probe",
    "probe_table",
    "std_sqrt_d",
    "uniformity",
]

BUDGETS: tuple[int | None, ...] = (1, 10, 100, None)
"""Labelled training examples per class of the probes (``None``: every label)."""
PCA_ABOVE = 1024
"""Features with more dimensions than this are reduced by PCA before the linear probe."""
PCA_DIM = 256
"""The principal components they keep."""


def label_subset(y: np.ndarray, per_class: int | None, seed: int = 0) -> np.ndarray:
    """Indices of ``per_class`` random examples of each class of ``y`` (all where it has fewer;
    every index for ``None``), sorted."""
    if per_class is None:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    idx = [
        rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)
    ]  # fmt: skip
    return np.sort(np.concatenate(idx))


def standardise(train_x: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Features centred and scaled to unit variance per dimension with the statistics of
    ``train_x`` (all training features: they need no labels, and with one label per class the
    labelled few would give a noisy scale)."""
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    return [(a - mu) / sd for a in (train_x, *others)]


def linear_probe(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray
) -> float:
    """Test accuracy of a multinomial logistic regression (L2, C = 1) fitted on ``train_x``."""
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(train_y)) < 2:  # one class only: the classifier is a constant
        return float(np.mean(test_y == train_y[0]))
    clf = LogisticRegression(max_iter=2000)
    clf.fit(train_x, train_y)
    return float(np.mean(clf.predict(test_x) == test_y))


def knn_accuracy(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    k: int = 20,
    temperature: float = 0.07,
) -> float:
    """Test accuracy of the weighted k-NN vote on cosine similarity (Wu et al. 2018, Eq. (7))."""
    a = F.normalize(torch.as_tensor(train_x, dtype=torch.float32), dim=1)
    b = F.normalize(torch.as_tensor(test_x, dtype=torch.float32), dim=1)
    ya = torch.as_tensor(train_y, dtype=torch.long)
    n_cls = int(max(ya.max(), int(np.max(test_y)))) + 1
    kk = min(k, a.shape[0])
    correct = 0
    for i in range(0, b.shape[0], 1024):
        sim = b[i : i + 1024] @ a.t()  # (n, N) cosine similarities
        s, j = sim.topk(kk, dim=1)  # (n, k)
        votes = torch.zeros(sim.shape[0], n_cls).scatter_add_(1, ya[j], (s / temperature).exp())
        pred = votes.argmax(1).numpy()
        correct += int(np.sum(pred == test_y[i : i + 1024]))
    return correct / len(test_y)


def probe_table(
    train_x: np.ndarray,
    train_targets: dict[str, np.ndarray],
    test_x: np.ndarray,
    test_targets: dict[str, np.ndarray],
    budgets: Sequence[int | None] = BUDGETS,
    seed: int = 0,
    knn: bool = True,
) -> list[dict[str, Any]]:
    """Rows ``{"target", "labels", "linear", "knn"}`` (accuracies in [0, 1]) for every target
    and label budget (``labels``: per class, or ``"all"``). The linear probe sees features
    standardised with the whole training split's statistics (and reduced to ``PCA_DIM``
    principal components above ``PCA_ABOVE`` dimensions); k-NN uses cosine similarity."""
    train_s, test_s = standardise(train_x, test_x)
    if train_s.shape[1] > PCA_ABOVE:  # label-free, on every training example (see above)
        from sklearn.decomposition import PCA

        pca = PCA(PCA_DIM, svd_solver="randomized", random_state=0).fit(train_s)
        train_s, test_s = pca.transform(train_s), pca.transform(test_s)  # (N, PCA_DIM)
    rows = []
    for name, ytr in train_targets.items():
        for per in budgets:
            idx = label_subset(ytr, per, seed)
            row: dict[str, Any] = {"target": name, "labels": "all" if per is None else per}
            row["linear"] = linear_probe(train_s[idx], ytr[idx], test_s, test_targets[name])
            if knn:
                row["knn"] = knn_accuracy(train_x[idx], ytr[idx], test_x, test_targets[name])
            rows.append(row)
    return rows
