"""Samplers against closed forms: Gaussian data with its exact denoiser; the ideal denoiser."""

import math

import pytest
import torch

from genzoo.diffusion import IdealDenoiser
from genzoo.diffusion.samplers import SAMPLERS, ancestral_step, run_sampler
from genzoo.diffusion.schedules import karras_schedule


class GaussianDenoiser:
    """Exact D(x, sigma) = mu + Sigma (Sigma + sigma^2 I)^-1 (x - mu) for data N(mu, Sigma)."""

    def __init__(self, mu, cov):
        self.mu, self.cov = mu, cov
        self.lam, self.u = torch.linalg.eigh(cov)

    def __call__(self, x, sigma, cond=None):
        z = (x - self.mu) @ self.u  # eigen-coordinates
        s2 = sigma.double().reshape(-1, 1) ** 2
        return self.mu + (z * self.lam / (self.lam + s2)) @ self.u.T

    def ode_solution(self, x, sigma_max):
        """The exact probability-flow ODE map from sigma_max to 0."""
        z = (x - self.mu) @ self.u
        return self.mu + (z * (self.lam / (self.lam + sigma_max**2)).sqrt()) @ self.u.T


def make_gaussian(d, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    cov = a @ a.T / d + 0.05 * torch.eye(d)
    mu = torch.randn(d, generator=g, dtype=torch.float64)
    return GaussianDenoiser(mu, cov)


@pytest.mark.parametrize("d", [2, 8])
@pytest.mark.parametrize(
    "name,steps", [("euler", 200), ("heun", 40), ("ddim", 200), ("dpmpp-2m", 60)]
)
def test_deterministic_samplers_match_gaussian_moments(d, name, steps):
    den = make_gaussian(d)
    smax = 80.0
    g = torch.Generator().manual_seed(1)
    # x_T ~ N(mu, Sigma + smax^2 I): the exact marginal at sigma_max.
    n = 20000
    l_chol = torch.linalg.cholesky(den.cov + smax**2 * torch.eye(d))
    x = den.mu + torch.randn(n, d, generator=g, dtype=torch.float64) @ l_chol.T
    out = run_sampler(name, den, x, karras_schedule(steps, 0.002, smax).double())
    # Max error over 20,000 paths from sigma 80, within each method's discretisation error.
    tol = {"euler": 0.1, "ddim": 0.1, "heun": 0.06, "dpmpp-2m": 0.03}[name]
    assert torch.allclose(out, den.ode_solution(x, smax), atol=tol)
    emp_mean = out.mean(0)
    emp_cov = torch.cov(out.T)
    se = (den.cov.diagonal() / n).sqrt()
    assert ((emp_mean - den.mu).abs() < 5 * se + 1e-2).all()
    assert torch.allclose(emp_cov, den.cov, atol=0.03 * den.cov.abs().max())


def _endpoint_error(name, steps, den, x, smax):
    sig = karras_schedule(steps, 0.002, smax).double()
    return (run_sampler(name, den, x, sig) - den.ode_solution(x, smax)).abs().max().item()


@pytest.mark.parametrize("name,order", [("euler", 1.0), ("heun", 2.0), ("dpmpp-2m", 2.0)])
def test_convergence_order(name, order):
    den = make_gaussian(4, seed=3)
    smax = 10.0
    x = den.mu + smax * torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    errs = [_endpoint_error(name, n, den, x, smax) for n in (16, 32, 64)]
    rates = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert abs(rates[-1] - order) < 0.35, (errs, rates)


@pytest.mark.parametrize("name", ["euler", "heun", "ddim", "dpmpp-2m"])
def test_ideal_denoiser_samples_land_on_data(name):
    g = torch.Generator().manual_seed(0)
    data = torch.randn(16, 2, generator=g, dtype=torch.float64) * 2
    den = IdealDenoiser(data)
    x = 20.0 * torch.randn(256, 2, generator=g, dtype=torch.float64)
    out = run_sampler(name, den, x, karras_schedule(40, 0.002, 20.0).double())
    nearest = torch.cdist(out, data).min(1).values
    assert nearest.max() < 1e-2


def test_ideal_denoiser_is_the_gaussian_posterior_mean_for_two_points():
    data = torch.tensor([[-1.0], [1.0]])
    den = IdealDenoiser(data)
    x = torch.linspace(-3, 3, 13).reshape(-1, 1)
    s = torch.full((13,), 0.7)
    # For +-1 with equal weights, E[x0 | x] = tanh(x / sigma^2).
    assert torch.allclose(den(x, s), torch.tanh(x / 0.49), atol=1e-6)


def test_ideal_denoiser_chunking_is_exact():
    g = torch.Generator().manual_seed(0)
    data = torch.randn(1000, 5, generator=g)
    x = torch.randn(7, 5, generator=g) * 3
    s = torch.full((7,), 0.5)
    assert torch.allclose(
        IdealDenoiser(data, chunk=37)(x, s), IdealDenoiser(data, chunk=5000)(x, s)
    )


def test_ancestral_step_is_ddpm_posterior_variance():
    # DDPM posterior variance beta_tilde = (1 - abar_s)/(1 - abar_t) * beta_t, expressed unscaled.
    st, ss = 2.0, 1.2
    ab_t, ab_s = 1 / (1 + st**2), 1 / (1 + ss**2)
    beta_t = 1 - ab_t / ab_s
    var_scaled = (1 - ab_s) / (1 - ab_t) * beta_t
    down, up = ancestral_step(st, ss, eta=1.0)
    assert math.isclose(up**2, var_scaled / ab_s, rel_tol=1e-12)
    assert math.isclose(down**2 + up**2, ss**2, rel_tol=1e-12)


def test_ancestral_sampler_is_exact_in_distribution_for_gaussian():
    """DDPM ancestral sampling with the exact denoiser reproduces N(mu, Sigma) as steps grow."""
    den = make_gaussian(2, seed=5)
    g = torch.Generator().manual_seed(2)
    sig = karras_schedule(1000, 0.002, 80.0).double()
    x = den.mu + 80.0 * torch.randn(20000, 2, generator=g, dtype=torch.float64)
    out = run_sampler("ancestral", den, x, sig, generator=g)
    assert torch.allclose(out.mean(0), den.mu, atol=0.05)
    assert torch.allclose(torch.cov(out.T), den.cov, atol=0.03 * den.cov.abs().max())


def test_unknown_sampler_and_option_are_clear_errors():
    from genzoo.core.errors import GenzooError

    with pytest.raises(GenzooError, match=r"'nope'.*'euler'"):
        run_sampler("nope", None, torch.zeros(1, 1), torch.zeros(2))
    with pytest.raises(GenzooError, match="'eta'"):
        run_sampler("euler", None, torch.zeros(1, 1), torch.zeros(2), eta=0.3)


def test_all_samplers_registered():
    assert {"ancestral", "ddim", "euler", "heun", "dpmpp-2m"} <= set(SAMPLERS)
