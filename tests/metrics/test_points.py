"""2-D metrics: true NLL, Gaussian-kernel MMD, sliced Wasserstein, mode statistics."""

import math

import numpy as np
import pytest
import scipy.stats
import torch

from genzoo.core.errors import ConfigError
from genzoo.data import dataset_info, get_toy
from genzoo.metrics import mode_coverage
from genzoo.metrics import mode_stats as exported_mode_stats
from genzoo.metrics.points import mmd, mode_stats, sliced_wasserstein, true_nll, wasserstein_1d
from genzoo.models.gans import GAN, GANConfig
from genzoo.models.multimodal import CLIP, CLIPConfig


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_true_nll_of_true_samples_is_the_entropy():
    toy = get_toy("8gaussians")
    x = toy.sample(20_000, _gen(0))
    nll = true_nll(x, toy)
    lp = toy.log_prob(x.double())
    se = float(lp.std()) / math.sqrt(len(x))
    assert abs(nll - toy.entropy()) < 4 * se
    # samples off the modes are less likely
    assert true_nll(x + 0.3, toy) > nll + 1.0
    # zero density outside the support gives inf
    assert true_nll(torch.tensor([[10.0, 10.0], [0.5, 0.5]]), get_toy("checkerboard")) == math.inf


def test_true_nll_refuses_toys_without_density():
    from genzoo.core.errors import GenzooError

    with pytest.raises(GenzooError, match="no closed-form density"):
        true_nll(torch.zeros(4, 2), get_toy("moons"))


def _numpy_mmd(x, y, bws):
    def k(a, b):
        d2 = ((a[:, None] - b[None]) ** 2).sum(-1)
        return sum(np.exp(-d2 / (2 * s**2)) for s in bws)

    m, n = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return (
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * k(x, y).mean()
    )


def test_mmd_matches_numpy_and_separates_distributions():
    toy = get_toy("moons")
    x, y = toy.sample(300, _gen(1)), toy.sample(250, _gen(2))
    bws = (0.1, 0.5, 1.0)
    assert mmd(x, y, bws) == pytest.approx(_numpy_mmd(x.double().numpy(), y.double().numpy(), bws))
    # unbiased: ~0 for one distribution (vs the estimate's spread), > 0 for a shifted one
    same = [mmd(toy.sample(200, _gen(10 + i)), toy.sample(200, _gen(50 + i))) for i in range(20)]
    shifted = mmd(toy.sample(200, _gen(3)), toy.sample(200, _gen(4)) + torch.tensor([0.5, 0.0]))
    spread = float(np.std(same))
    assert abs(float(np.mean(same))) < 3 * spread / math.sqrt(len(same))
    assert shifted > 5 * spread  # about 7.5 spreads


def test_sliced_wasserstein_of_a_shift_has_its_closed_form():
    x = get_toy("8gaussians").sample(500, _gen(5)).double()
    v = torch.tensor([0.6, -0.8], dtype=torch.float64)  # |v| = 1
    # For y = x + v every projection is shifted by <v, theta>, so W_1 = |<v, theta>| exactly and
    # SW_1 = E|<v, theta>| = 2 |v| / pi in 2-D; SW_2 = (E <v, theta>^2)^(1/2) = |v| / sqrt(2).
    sw1 = sliced_wasserstein(x, x + v, n_projections=4000, p=1)
    sw2 = sliced_wasserstein(x, x + v, n_projections=4000, p=2)
    assert sw1 == pytest.approx(2 / math.pi, rel=0.02)
    assert sw2 == pytest.approx(1 / math.sqrt(2), rel=0.02)
    # scales linearly with the shift, and is monotone in it
    assert sliced_wasserstein(x, x + 2 * v, n_projections=4000) == pytest.approx(2 * sw1, rel=1e-9)
    # fresh samples of the shifted distribution approach the same value as n grows
    toy, errs = get_toy("8gaussians"), []
    for n in (100, 5000):
        a, b = toy.sample(n, _gen(6)), toy.sample(n, _gen(7)) + v
        errs.append(abs(sliced_wasserstein(a, b, n_projections=500) - 2 / math.pi))
    assert errs[1] < errs[0] and errs[1] < 0.05


def test_wasserstein_1d_matches_scipy_for_unequal_sizes():
    g = _gen(7)
    u, v = torch.randn(37, 1, generator=g, dtype=torch.float64), torch.rand(23, 1, generator=g)
    ours = float(wasserstein_1d(u, v.double(), p=1)[0])
    assert ours == pytest.approx(scipy.stats.wasserstein_distance(u[:, 0], v[:, 0]), rel=1e-10)
    # in 1-D every direction is +-1, so SW_1 is the 1-D W_1
    assert sliced_wasserstein(u, v, n_projections=8) == pytest.approx(ours, rel=1e-10)


def test_sliced_wasserstein_is_seeded():
    x, y = torch.randn(100, 2, generator=_gen(8)), torch.randn(90, 2, generator=_gen(9))
    assert sliced_wasserstein(x, y) == sliced_wasserstein(x, y)
    a = sliced_wasserstein(x, y, generator=_gen(1))
    b = sliced_wasserstein(x, y, generator=_gen(2))
    assert a != b and a == pytest.approx(b, rel=0.2)


def test_mode_stats_reexported():
    assert mode_stats is exported_mode_stats
    toy = get_toy("8gaussians")
    stats = mode_stats(toy.sample(1000, _gen(10)), toy.modes, toy.mode_std)
    assert stats["modes_covered"] == 8 and stats["hq_rate"] > 0.98


def test_mode_coverage_of_a_model_is_mode_stats_of_its_seeded_samples():
    torch.manual_seed(0)
    info = dataset_info("toy2d:8gaussians")
    gan = GAN(GANConfig.from_dict({"hidden": [16]}), info).train()
    stats = mode_coverage(gan, "8gaussians", n=500, seed=4)
    gan.eval()
    x = gan.sample(500, generator=torch.Generator().manual_seed(4))
    toy = get_toy("8gaussians")
    assert stats == mode_stats(x, toy.modes, toy.mode_std)
    assert gan.training is False  # left as it was found
    assert mode_coverage(gan.train(), "8gaussians", n=500, seed=4) == stats and gan.training
    with pytest.raises(ConfigError, match="no modes"):
        mode_coverage(gan, "moons")
    clip = CLIP(CLIPConfig(), dataset_info("shapes"))
    with pytest.raises(ConfigError, match="draws no samples"):
        mode_coverage(clip, "8gaussians")
