"""Nearest-training-neighbour distance ratio: copies score 0, fresh samples do not."""

import numpy as np
import pytest
import torch

from genzoo.data import load_dataset
from genzoo.metrics.memorization import memorization, nearest_train_ratio


def test_copies_are_memorized_and_fresh_samples_are_not():
    train = load_dataset("digits", "train").all()["x"]  # (1438, 1, 8, 8) model space
    test = load_dataset("digits", "test").all()["x"]
    copies = train[torch.arange(0, 1000, 20)]
    ratio, nearest = nearest_train_ratio(copies, train)
    assert torch.all(ratio == 0)
    assert torch.equal(train[nearest], copies)
    assert memorization(copies, train)["memorized_fraction"] == 1.0
    fresh = memorization(test, train)
    assert fresh["memorized_fraction"] < 0.05 and fresh["median_ratio"] > 0.7
    # slightly perturbed copies are still flagged: their nearest neighbour is the original
    g = torch.Generator().manual_seed(0)
    near = memorization(copies + 0.02 * torch.randn(copies.shape, generator=g), train)
    assert near["memorized_fraction"] > 0.9


def test_ratio_matches_brute_force_numpy():
    rng = np.random.default_rng(0)
    train, samples = rng.normal(size=(200, 5)), rng.normal(size=(30, 5))
    d = np.sqrt(((samples[:, None] - train[None]) ** 2).sum(-1))
    ds = np.sort(d, axis=1)
    ratio, nearest = nearest_train_ratio(
        torch.from_numpy(samples), torch.from_numpy(train), chunk=7
    )
    np.testing.assert_allclose(ratio.numpy(), ds[:, 0] / ds[:, 1], rtol=1e-12)
    assert np.array_equal(nearest.numpy(), d.argmin(1))


def test_ratio_in_feature_space(digits_classifier):
    train = load_dataset("digits", "train").all()["x"]
    stats = memorization(train[:40], train, digits_classifier)
    assert stats["memorized_fraction"] == pytest.approx(1.0)
