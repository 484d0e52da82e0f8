"""Fréchet distance, KID and IS: parity with scipy / torchmetrics, closed forms, unbiasedness."""

import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from genzoo.metrics.frechet import frechet_distance, inception_score, kid, mmd2_poly


def _gaussian(n, d, scale, shift=0.0, seed=0, mix_seed=None):
    """n samples of N(shift, scale^2 M^T M) with a random mixing M (seeded by mix_seed or seed)."""
    gm = torch.Generator().manual_seed(seed if mix_seed is None else mix_seed)
    mix = torch.randn(d, d, generator=gm, dtype=torch.float64) * scale / math.sqrt(d)
    g = torch.Generator().manual_seed(seed + 1000)
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ mix + shift


def _fd_scipy(a: np.ndarray, b: np.ndarray) -> float:
    """The classic reference (pytorch-fid): scipy.linalg.sqrtm of the covariance product."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fd_matches_scipy_sqrtm():
    a = _gaussian(500, 64, 1.0, seed=0)
    b = _gaussian(500, 64, 2.0, shift=0.3, seed=1)
    ours = frechet_distance(a, b)
    ref = _fd_scipy(a.numpy(), b.numpy())
    assert ours == pytest.approx(ref, rel=1e-6)
    # symmetric, and float32 inputs give the same float64 computation
    assert frechet_distance(b, a) == pytest.approx(ours, rel=1e-9)
    assert frechet_distance(a.float(), b.float()) == pytest.approx(ref, rel=1e-4)


def test_fd_of_identical_sets_is_zero():
    a = _gaussian(500, 64, 1.5, seed=2)
    assert abs(frechet_distance(a, a.clone())) < 1e-6


def test_fd_approaches_closed_form_of_two_gaussians():
    d = 8
    g = torch.Generator().manual_seed(3)
    mu1, mu2 = torch.randn(d, generator=g, dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
    s1 = torch.linspace(0.5, 2.0, d, dtype=torch.float64)  # diagonal variances
    s2 = torch.linspace(2.0, 0.2, d, dtype=torch.float64)
    closed = float(((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * (s1 * s2).sqrt()).sum())
    errs = []
    for n in (300, 60_000):
        a = mu1 + s1.sqrt() * torch.randn(n, d, generator=g, dtype=torch.float64)
        b = mu2 + s2.sqrt() * torch.randn(n, d, generator=g, dtype=torch.float64)
        errs.append(abs(frechet_distance(a, b) - closed))
    assert errs[1] < 0.01 * closed  # within 1% at 60k samples
    assert errs[1] < errs[0]  # and closer than with 300


def test_fd_warns_when_samples_fewer_than_dimensions():
    a, b = _gaussian(40, 64, 1.0, seed=4), _gaussian(40, 64, 1.0, seed=5)
    with pytest.warns(UserWarning, match="fewer samples than dimensions"):
        frechet_distance(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frechet_distance(_gaussian(100, 16, 1.0, seed=4), _gaussian(100, 16, 1.0, seed=5))


def test_mmd2_poly_matches_torchmetrics():
    from torchmetrics.image.kid import poly_mmd

    a, b = _gaussian(200, 32, 1.0, seed=6), _gaussian(200, 32, 1.2, shift=0.1, seed=7)
    assert float(mmd2_poly(a, b)) == pytest.approx(float(poly_mmd(a, b)), rel=1e-10)


def test_kid_is_unbiased_and_detects_a_difference():
    # Averaged over many independent small sample pairs of ONE distribution, the unbiased
    # estimate is ~0 (within 3 standard errors), while the plug-in (biased) estimate is not.
    g = torch.Generator().manual_seed(8)
    unbiased, biased = [], []
    for _ in range(300):
        a = torch.randn(30, 16, generator=g, dtype=torch.float64)
        b = torch.randn(30, 16, generator=g, dtype=torch.float64)
        u = float(mmd2_poly(a, b))
        unbiased.append(u)
        k = lambda x, y: (x @ y.T / 16 + 1) ** 3  # noqa: E731
        biased.append(float(k(a, a).mean() + k(b, b).mean() - 2 * k(a, b).mean()))
    u = torch.tensor(unbiased)
    se = float(u.std() / math.sqrt(len(u)))
    assert abs(float(u.mean())) < 3 * se
    assert float(torch.tensor(biased).mean()) > 10 * se

    x = _gaussian(1000, 16, 1.0, seed=9, mix_seed=0)
    same = kid(x, _gaussian(1000, 16, 1.0, seed=10, mix_seed=0), 20, 500)
    diff = kid(x, _gaussian(1000, 16, 1.0, shift=0.5, seed=10, mix_seed=0), 20, 500)
    assert diff[0] > 0 and diff[0] > 20 * abs(same[0])
    assert diff[0] > 5 * diff[1]


def test_kid_is_seeded_and_warns_on_small_sets():
    a, b = _gaussian(100, 8, 1.0, seed=11), _gaussian(100, 8, 1.0, shift=0.2, seed=12)
    r1 = kid(a, b, 5, 50, generator=torch.Generator().manual_seed(1))
    r2 = kid(a, b, 5, 50, generator=torch.Generator().manual_seed(1))
    assert r1 == r2
    with pytest.warns(UserWarning, match="subset_size"):
        kid(a, b, 2, 500)


def test_inception_score_closed_forms():
    k = 10
    uniform = torch.full((200, k), 1.0 / k)
    assert inception_score(uniform, splits=4)[0] == pytest.approx(1.0, abs=1e-9)
    confident = torch.eye(k).repeat(20, 1)  # (200, K), every class equally often
    mean, std = inception_score(confident, splits=1)
    assert mean == pytest.approx(k, rel=1e-9) and std == 0.0
    # large one-hot logits give (almost) the same as probabilities
    assert inception_score(50 * confident, splits=1, kind="logits")[0] == pytest.approx(k, rel=1e-6)


def test_inception_score_matches_numpy_formula():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(7, 0.3), size=300)
    ref = []
    for part in np.array_split(p, 5):
        py = part.mean(0, keepdims=True)
        ref.append(np.exp((part * (np.log(part) - np.log(py))).sum(1).mean()))
    mean, std = inception_score(torch.from_numpy(p), splits=5)
    assert mean == pytest.approx(np.mean(ref), rel=1e-9)
    assert std == pytest.approx(np.std(ref), rel=1e-6)
    logits = torch.from_numpy(np.log(p)) + 3.0  # softmax-equivalent logits
    assert inception_score(logits, splits=5, kind="logits")[0] == pytest.approx(mean, rel=1e-9)
