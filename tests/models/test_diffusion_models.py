"""Each diffusion model's loss equals its paper's loss, computed independently from the raw net."""

import pytest
import torch

from genzoo.data import load_dataset
from genzoo.models.diffusion import (
    DDPM,
    EDM,
    NCSN,
    DDPMConfig,
    EDMConfig,
    FlowMatching,
    FlowMatchingConfig,
    NCSNConfig,
)

INFO = load_dataset("toy2d:moons").info


def _draws(b, seed):
    g = torch.Generator().manual_seed(seed)
    u = torch.rand((b,), generator=g)  # what train_sigma draws first (uniform models)
    eps = torch.randn((b, 2), generator=g)
    return u, eps


def test_flow_matching_loss_is_velocity_regression():
    m = FlowMatching(FlowMatchingConfig(), INFO)
    x0 = torch.randn(64, 2)
    loss = m.per_example_loss(x0, generator=torch.Generator().manual_seed(3))
    u, eps = _draws(64, 3)
    c = m.config
    t = c.t_min + (c.t_max - c.t_min) * u
    xt = (1 - t[:, None]) * x0 + t[:, None] * eps  # the straight path
    v = m.net(xt, t)
    expect = ((v - (eps - x0)) ** 2).mean(1)
    assert torch.allclose(loss, expect, rtol=1e-4, atol=1e-5)
    # the model's velocity (parametrization.py) is the net's output (to float32 rounding, which
    # the conversion from x0 amplifies by 1 / (1 - t) near t = 1)
    sigma = t / (1 - t)
    with torch.no_grad():
        got = m.velocity(xt * (1 + sigma[:, None]), sigma)
    torch.testing.assert_close(got, v, rtol=1e-3, atol=1e-3)


def test_ddpm_loss_is_eps_regression():
    m = DDPM(DDPMConfig(timesteps=100), INFO)
    x0 = torch.randn(64, 2)
    loss = m.per_example_loss(x0, generator=torch.Generator().manual_seed(4))
    u, eps = _draws(64, 4)
    t = (u * 100).long()
    abar = 1 / (1 + m.sigma_table[t] ** 2)
    xt = abar.sqrt()[:, None] * x0 + (1 - abar).sqrt()[:, None] * eps  # Eq. (4)
    eps_hat = m.net(xt, t.float())
    assert torch.allclose(loss, ((eps_hat - eps) ** 2).mean(1), rtol=1e-4, atol=1e-5)


def test_ncsn_loss_is_weighted_score_matching():
    m = NCSN(NCSNConfig(num_levels=10), INFO)
    x0 = torch.randn(64, 2)
    loss = m.per_example_loss(x0, generator=torch.Generator().manual_seed(5))
    _, eps = _draws(64, 5)
    sig = m.train_sigma(64, torch.Generator().manual_seed(5), "cpu")
    x = x0 + sig[:, None] * eps
    score = m.net(x, sig.log()) / sig[:, None]  # s = F / sigma
    expect = (sig[:, None] ** 2 * (score + eps / sig[:, None]) ** 2).mean(1)  # Eq. (6)
    assert torch.allclose(loss, expect, rtol=1e-4, atol=1e-5)
    with torch.no_grad():  # to float32 rounding, amplified by 1 / sigma at small sigma
        torch.testing.assert_close(m.score(x, sig), score, rtol=1e-3, atol=1e-3)


def test_edm_preconditioning_has_unit_variance_targets():
    """EDM Table 1: with data of std sigma_data, c_in x has unit variance and the effective
    training target (x0 - c_skip x) / c_out has unit variance, at every sigma."""
    m = EDM(EDMConfig(sigma_data=0.5), INFO)
    g = torch.Generator().manual_seed(0)
    x0 = 0.5 * torch.randn(200000, generator=g)
    for s in (0.01, 0.3, 2.0, 50.0):
        sigma = torch.tensor([s])
        c_skip, c_out, c_in, _ = m.precond(sigma)
        x = x0 + s * torch.randn(200000, generator=g)
        assert abs(float((c_in * x).std()) - 1) < 0.01
        target = (x0 - c_skip * x) / c_out
        assert abs(float(target.std()) - 1) < 0.01


@pytest.mark.parametrize("cls,cfg", [(EDM, EDMConfig()), (FlowMatching, FlowMatchingConfig())])
def test_class_conditional_sampling_with_guidance_runs_batched(cls, cfg):
    info = load_dataset("digits").info
    m = cls(cfg.replace(class_conditional=True, channels=8, sample_steps=3), info)
    y = torch.arange(4)
    a = m.sample(4, cond=y, guidance=2.0, generator=torch.Generator().manual_seed(0))
    b = m.sample(4, cond=y, guidance=2.0, generator=torch.Generator().manual_seed(0))
    assert a.shape == (4, 1, 8, 8) and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1


def test_model_ode_log_prob_is_exact_for_gaussian_data():
    """EDM's ODE likelihood with the exact denoiser of N(0, s^2 I) data (s = sigma_data, so the
    prior N(0, sigma_max^2 + s^2) is exact too) equals the Gaussian log-density."""
    s = 0.7
    m = EDM(EDMConfig(sigma_data=s, sigma_max=20.0), INFO)
    m.denoise = lambda x, sigma, cond=None: x * s**2 / (s**2 + sigma.reshape(-1, 1) ** 2)
    x = s * torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    lp = m.ode_log_prob(x, steps=128)
    truth = torch.distributions.Normal(0.0, s).log_prob(x).sum(1)
    assert torch.allclose(lp.float(), truth, atol=1e-2)  # Heun error at 128 steps
