"""The scaling-law fit (Chinchilla approach 3) against data generated from a known law, and the
compute-optimal allocation against its closed form (Chinchilla Eq. 4) and a numerical optimum."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from genzoo.core.errors import GenzooError
from genzoo.metrics.scaling import ScalingFit, fit_scaling_law

TRUE = {"E": 1.2, "A": 40.0, "alpha": 0.40, "B": 300.0, "beta": 0.30}
SMALL_GRID = {"alphas": (0.3,), "betas": (0.3, 1.0), "log_as": (0.0,), "log_bs": (0.0, 8.0)}


def _law(n, d):
    return TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"]


def test_fit_recovers_known_exponents_from_noisy_points():
    rng = np.random.default_rng(0)
    n = np.repeat(np.geomspace(1e3, 1e7, 6), 5)
    d = np.tile(np.geomspace(1e5, 1e10, 5), 6)
    loss = _law(n, d) * np.exp(rng.normal(0.0, 0.002, n.size))  # 0.2% multiplicative noise
    fit = fit_scaling_law(n, d, loss, **SMALL_GRID)
    assert fit.alpha == pytest.approx(TRUE["alpha"], abs=0.03)
    assert fit.beta == pytest.approx(TRUE["beta"], abs=0.03)
    assert fit.E == pytest.approx(TRUE["E"], rel=0.05)
    assert fit.rmse_log < 0.005


def test_compute_optimal_allocation_matches_eq4_and_a_numerical_optimum():
    fit = ScalingFit(**TRUE, objective=0.0, rmse_log=0.0)
    c = np.geomspace(1e15, 1e21, 7)
    n_opt, d_opt = fit.optimal(c)
    np.testing.assert_allclose(6 * n_opt * d_opt, c, rtol=1e-10)  # on the budget C = 6ND
    slope = np.polyfit(np.log(c), np.log(n_opt), 1)[0]
    assert slope == pytest.approx(TRUE["beta"] / (TRUE["alpha"] + TRUE["beta"]), abs=1e-9)
    for ci, ni in zip(c[[0, 3, 6]], n_opt[[0, 3, 6]], strict=True):  # the argmin of L(N, C/6N)
        res = minimize_scalar(
            lambda u, ci=ci: fit.loss(np.exp(u), ci / (6 * np.exp(u))),
            bounds=(0.0, 40.0),
            method="bounded",
            options={"xatol": 1e-9},
        )
        assert np.exp(res.x) == pytest.approx(ni, rel=1e-3)


def test_too_few_points_is_one_sentence():
    with pytest.raises(GenzooError, match=r"needs more than 5 .* got 4"):
        fit_scaling_law([1e3, 1e4, 1e5, 1e6], [1e6] * 4, [3.0, 2.5, 2.2, 2.0])
    with pytest.raises(GenzooError, match="finite and > 0"):
        fit_scaling_law([1e3] * 6, [1e6] * 6, [3.0, 2.5, -2.2, 2.0, 1.0, 1.0])
