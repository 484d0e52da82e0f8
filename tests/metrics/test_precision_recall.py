"""k-NN precision / recall and density / coverage: parity with prdc and a direct numpy version."""

import numpy as np
import pytest
import torch

from genzoo.metrics.precision_recall import knn_radii, prdc


def _numpy_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """Direct transcription of the definitions (arXiv:1904.06991, arXiv:2002.09797)."""
    d_rr = np.sqrt(((real[:, None] - real[None]) ** 2).sum(-1))
    d_ff = np.sqrt(((fake[:, None] - fake[None]) ** 2).sum(-1))
    d_rf = np.sqrt(((real[:, None] - fake[None]) ** 2).sum(-1))  # (N, M)
    r_real = np.sort(d_rr, axis=1)[:, k]  # column 0 is the point itself
    r_fake = np.sort(d_ff, axis=1)[:, k]
    inside = d_rf < r_real[:, None]  # fake j inside the ball of real i
    return {
        "precision": inside.any(0).mean(),
        "recall": (d_rf < r_fake[None]).any(1).mean(),
        "density": inside.sum(0).mean() / k,
        "coverage": (d_rf.min(1) < r_real).mean(),
    }


def _sets(seed=0):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(400, 16))
    fake = 1.3 * rng.normal(size=(300, 16)) + 0.4
    return real, fake


@pytest.mark.parametrize("k", [3, 5])
def test_prdc_matches_numpy_definition(k):
    real, fake = _sets()
    ours = prdc(torch.from_numpy(real), torch.from_numpy(fake), k=k, chunk=64)  # several chunks
    ref = _numpy_prdc(real, fake, k)
    for key in ref:
        assert ours[key] == pytest.approx(float(ref[key]), abs=1e-12), key
    assert 0 < ours["precision"] < 1 and 0 < ours["recall"] < 1  # a non-trivial case


def test_prdc_matches_prdc_package():
    prdc_pkg = pytest.importorskip("prdc")
    real, fake = _sets(1)
    ref = prdc_pkg.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    ours = prdc(torch.from_numpy(real).float(), torch.from_numpy(fake).float(), k=5)
    for key in ref:
        assert ours[key] == pytest.approx(float(ref[key]), abs=1e-12), key


def test_prdc_limits():
    real, _ = _sets(2)
    r = torch.from_numpy(real)
    same = prdc(r, r.clone(), k=5)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    far = prdc(r, r + 100.0, k=5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_knn_radii_match_sorting():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    d = torch.cdist(x, x)
    assert torch.allclose(knn_radii(x, 4, chunk=7), d.sort(1).values[:, 4], atol=1e-12)
