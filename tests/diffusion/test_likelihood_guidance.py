"""Probability-flow ODE likelihood, guidance and inpainting wrappers against closed forms."""

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from test_samplers import make_gaussian

from genzoo.diffusion.guidance import ClassifierFreeGuidance, InpaintingDenoiser
from genzoo.diffusion.likelihood import ode_log_prob
from genzoo.diffusion.samplers import run_sampler
from genzoo.diffusion.schedules import karras_schedule


@pytest.mark.parametrize("exact", [True, False])
def test_ode_log_prob_matches_gaussian_density(exact):
    den = make_gaussian(2, seed=7)
    g = torch.Generator().manual_seed(0)
    x = den.mu + torch.randn(200 if exact else 400, 2, generator=g, dtype=torch.float64)
    smax = 50.0
    cov_max = (den.cov + smax**2 * torch.eye(2, dtype=torch.float64)).numpy()

    def prior(y, s):
        return torch.from_numpy(multivariate_normal(den.mu.numpy(), cov_max).logpdf(y.numpy()))

    lp = ode_log_prob(
        den,
        x,
        sigma_min=1e-3,
        sigma_max=smax,
        steps=300,
        exact=exact,
        prior_log_prob=prior,
        generator=g,
    )
    truth = torch.from_numpy(multivariate_normal(den.mu.numpy(), den.cov.numpy()).logpdf(x.numpy()))
    if exact:
        assert (lp - truth).abs().max() < 2e-2  # Heun error at 300 steps
    else:  # Hutchinson: unbiased, so the mean error is small
        assert abs(float((lp - truth).mean())) < 0.05


def test_classifier_free_guidance_combines_denoisers_linearly():
    def den(x, sigma, cond):
        return x * 0 + cond.reshape(-1, 1).double()  # class c -> constant c; null class 10 -> 10

    cfg = ClassifierFreeGuidance(den, 3.0, null=10)
    x = torch.zeros(4, 2, dtype=torch.float64)
    c = torch.tensor([0, 1, 2, 3])
    out = cfg(x, torch.ones(4), c)
    expect = 10 + 3.0 * (c.double() - 10)
    assert torch.allclose(out, expect.reshape(-1, 1).expand(4, 2))


def test_a_guidance_scale_that_is_not_finite_or_negative_is_one_sentence_in_the_library():
    """NaN would write NaN images without a word (it did); the model's own sample refuses it."""
    from genzoo.core.errors import ConfigError
    from genzoo.data import dataset_info
    from genzoo.models.diffusion.edm import EDM, EDMConfig

    cfg = EDMConfig.from_dict({"channels": 4, "class_conditional": True})
    model = EDM(cfg, dataset_info("digits")).eval()
    for w in (float("nan"), float("inf"), -0.5):
        with pytest.raises(ConfigError, match=r"guidance = .* must be a finite number >= 0"):
            model.sample(2, cond=torch.tensor([1, 2]), guidance=w, steps=2)
    assert model.sample(2, cond=torch.tensor([1, 2]), guidance=0.0, steps=2).isfinite().all()


def test_inpainting_keeps_known_region_exactly_with_the_ideal_denoiser():
    from genzoo.diffusion import IdealDenoiser

    g = torch.Generator().manual_seed(0)
    data = torch.randn(32, 6, generator=g, dtype=torch.float64)
    known = data[:8]
    mask = torch.zeros(8, 6, dtype=torch.float64)
    mask[:, :3] = 1  # first half known
    den = InpaintingDenoiser(IdealDenoiser(data), known, mask)
    x = 20.0 * torch.randn(8, 6, generator=g, dtype=torch.float64)
    out = run_sampler("heun", den, x, karras_schedule(40, 0.002, 20.0).double())
    assert torch.allclose(out[:, :3], known[:, :3], atol=1e-3)
    # The unknown half is a data point's unknown half, mostly the one whose known half matches
    # (replacement without resampling is not exact conditioning).
    assert torch.cdist(out[:, 3:], data[:, 3:]).min(1).values.max() < 1e-2
    right = (out[:, 3:] - known[:, 3:]).abs().max(1).values < 1e-2
    assert right.double().mean() >= 0.5, right


def test_stochastic_samplers_reach_the_data_with_the_ideal_denoiser():
    from genzoo.diffusion import IdealDenoiser

    g = torch.Generator().manual_seed(1)
    data = torch.randn(16, 2, generator=g, dtype=torch.float64) * 2
    den = IdealDenoiser(data)
    x = 20.0 * torch.randn(512, 2, generator=g, dtype=torch.float64)
    sig = karras_schedule(100, 0.002, 20.0).double()
    for name in ("euler-maruyama", "ancestral", "pc"):
        out = run_sampler(name, den, x, sig, generator=g)
        assert torch.cdist(out, data).min(1).values.max() < 0.02, name
        counts = np.bincount(torch.cdist(out, data).argmin(1).numpy(), minlength=16)
        assert (counts > 0).all(), name  # every point reached: no collapse
