"""Properties of the 2-D toy distributions: normalized densities, moments, modes, seeding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from genzoo.core.errors import DataError
from genzoo.data.toy2d import TOY2D, GaussianMixture2D, get_toy

EXACT = [name for name, cls in TOY2D.items() if cls.has_log_prob]
MIXTURES = ["8gaussians", "25gaussians"]


def _sample(name: str, n: int, seed: int = 0) -> torch.Tensor:
    return get_toy(name).sample(n, torch.Generator().manual_seed(seed))


def test_expected_toys_and_exact_ones() -> None:
    assert set(TOY2D) == {
        "moons",
        "circles",
        "8gaussians",
        "25gaussians",
        "checkerboard",
        "swissroll",
        "pinwheel",
        "rings",
    }
    assert {"8gaussians", "25gaussians", "checkerboard", "rings"} <= set(EXACT)


@pytest.mark.parametrize("name", EXACT)
def test_density_integrates_to_one(name: str) -> None:
    # midpoint rule on [-5, 5]^2; h = 0.02 resolves the narrowest mode (std 0.05) and the grid
    # cells align with the checkerboard's square edges
    h = 0.02
    c = torch.arange(-5 + h / 2, 5, h, dtype=torch.float64)
    grid = torch.cartesian_prod(c, c)  # (M^2, 2)
    total = get_toy(name).log_prob(grid).exp().sum().item() * h * h
    assert total == pytest.approx(1.0, abs=1e-2)


@pytest.mark.parametrize("name", EXACT)
def test_samples_agree_with_density(name: str) -> None:
    # -E_samples[log p] is the entropy exactly when the sampler draws from p; any mismatch of
    # sampler and density makes it a cross-entropy, which is larger
    toy = get_toy(name)
    lp = toy.log_prob(_sample(name, 200_000).double())
    assert torch.isfinite(lp).all()
    se = lp.std().item() / math.sqrt(len(lp))
    assert -lp.mean().item() == pytest.approx(toy.entropy(), abs=max(5 * se, 1e-9))


@pytest.mark.parametrize("name", [n for n in TOY2D if n not in EXACT])
def test_inexact_toys_say_so(name: str) -> None:
    toy = get_toy(name)
    assert not toy.has_log_prob and toy.entropy() is None
    with pytest.raises(NotImplementedError):
        toy.log_prob(torch.zeros(3, 2))


@pytest.mark.parametrize("name", MIXTURES)
def test_mixture_log_prob_matches_scipy(name: str) -> None:
    toy = get_toy(name)
    assert isinstance(toy, GaussianMixture2D) and toy.modes is not None
    x = _sample(name, 500, seed=3).double()
    x[:50] = torch.rand(50, 2, dtype=torch.float64) * 6 - 3  # also points far from the modes
    cov = toy.mode_std**2 * np.eye(2)
    dens = np.mean([multivariate_normal(m, cov).pdf(x.numpy()) for m in toy.modes.numpy()], 0)
    keep = dens > 1e-300  # scipy underflows far from the modes, logsumexp does not
    assert np.allclose(toy.log_prob(x).numpy()[keep], np.log(dens[keep]), rtol=1e-9, atol=1e-9)


def test_mixture_analytic_moments() -> None:
    # ring of radius 2: Cov = (r^2 / 2) I + std^2 I; grid {-2..2}^2: Var = 2 per axis + std^2
    ring, grid = get_toy("8gaussians"), get_toy("25gaussians")
    assert isinstance(ring, GaussianMixture2D) and isinstance(grid, GaussianMixture2D)
    assert torch.allclose(ring.mean(), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(ring.covariance(), (2.0 + 0.1**2) * torch.eye(2, dtype=torch.float64))
    assert torch.allclose(grid.covariance(), (2.0 + 0.05**2) * torch.eye(2, dtype=torch.float64))


@pytest.mark.parametrize("name", MIXTURES)
def test_mixture_sample_moments(name: str) -> None:
    toy = get_toy(name)
    assert isinstance(toy, GaussianMixture2D)
    x = _sample(name, 200_000).double()
    assert torch.allclose(x.mean(0), toy.mean(), atol=0.02)
    assert torch.allclose(torch.cov(x.T), toy.covariance(), atol=0.05)


@pytest.mark.parametrize("name", MIXTURES)
def test_mixture_modes_covered_and_high_quality_rate(name: str) -> None:
    toy = get_toy(name)
    assert toy.modes is not None and toy.mode_std is not None
    x = _sample(name, 100_000).double()
    d = torch.cdist(x, toy.modes)  # (n, K)
    dist, nearest = d.min(1)
    hq = (dist < 3 * toy.mode_std).double().mean().item()
    assert hq > 0.98
    assert hq == pytest.approx(1 - math.exp(-4.5), abs=0.005)  # P(|z| < 3) for a 2-D Gaussian
    counts = torch.bincount(nearest, minlength=len(toy.modes)).double()
    assert counts.min() > 0.8 * len(x) / len(toy.modes)  # every mode, about equally often
    # modes are well separated, so the entropy formula log K + H(Gaussian) applies
    assert torch.pdist(toy.modes).min() > 12 * toy.mode_std


def test_checkerboard_samples_on_black_squares() -> None:
    x = _sample("checkerboard", 50_000)
    f = torch.floor(x)
    assert ((x >= -2) & (x < 2)).all()
    assert (f.sum(1) % 2 == 0).all()
    cells = torch.unique(f, dim=0)
    assert len(cells) == 8  # all 8 black squares are used
    assert get_toy("checkerboard").entropy() == pytest.approx(math.log(8))
    lp = get_toy("checkerboard").log_prob(torch.tensor([[0.5, 0.5], [0.5, -0.5], [3.0, 3.0]]))
    assert lp[0] == pytest.approx(-math.log(8)) and lp[1] == -math.inf and lp[2] == -math.inf


def test_rings_radii_and_uniform_angle() -> None:
    x = _sample("rings", 100_000).double()
    r = x.norm(dim=1)
    nearest = (r[:, None] - torch.tensor([0.75, 1.5, 2.25, 3.0], dtype=torch.float64)).abs()
    assert (nearest.min(1).values < 0.4).float().mean() > 0.999  # radial std 0.08: 5 sigma
    theta = torch.atan2(x[:, 1], x[:, 0])
    assert abs(torch.cos(theta).mean().item()) < 0.02 and abs(torch.sin(theta).mean()) < 0.02


def test_moons_mean() -> None:
    # half circles have mean (0, 2/pi) and (1, 1/2 - 2/pi); average (1/2, 1/4); then 2x - (1, 0.2)
    x = _sample("moons", 100_000).double()
    assert torch.allclose(x.mean(0), torch.tensor([0.0, 0.3], dtype=torch.float64), atol=0.02)


@pytest.mark.parametrize("name", list(TOY2D))
def test_seeded_and_bounded(name: str) -> None:
    a, b, c = _sample(name, 2000, 7), _sample(name, 2000, 7), _sample(name, 2000, 8)
    assert a.shape == (2000, 2) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.isfinite(a).all()
    assert ((a.abs() <= 4.0).all(1)).float().mean() > 0.99  # the declared bounding box


def test_unknown_toy_names_value_and_choices() -> None:
    with pytest.raises(DataError, match=r"'blobs'.*'8gaussians'.*'swissroll'"):
        get_toy("blobs")
