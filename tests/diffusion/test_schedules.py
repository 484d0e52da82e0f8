import math

import torch

from genzoo.diffusion import parametrization as P
from genzoo.diffusion.schedules import (
    alpha_bar_from_sigma,
    cosine_beta_table,
    discrete_schedule,
    karras_schedule,
    linear_beta_table,
    sigma_to_t,
)


def test_linear_table_matches_ddpm_alpha_bar():
    sig = linear_beta_table(1000)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    assert torch.allclose(alpha_bar_from_sigma(sig), abar, rtol=1e-12)
    assert (sig[1:] > sig[:-1]).all()


def test_cosine_table_is_increasing():
    sig = cosine_beta_table(1000)
    assert (sig[1:] > sig[:-1]).all() and sig[0] < 0.1


def test_sampling_schedules_descend_and_end_in_zero():
    for s in (karras_schedule(18), discrete_schedule(linear_beta_table(1000), 50)):
        assert s[-1] == 0 and (s[1:] < s[:-1]).all()
    k = karras_schedule(18, 0.002, 80.0, 7.0)
    assert math.isclose(float(k[0]), 80.0, rel_tol=1e-5)
    assert math.isclose(float(k[-2]), 0.002, rel_tol=1e-5)


def test_full_discrete_schedule_is_the_whole_table():
    table = linear_beta_table(100)
    s = discrete_schedule(table, 100)
    assert torch.allclose(s[:-1].double(), table.flip(0).float().double())


def test_sigma_to_t_inverts_the_table():
    table = linear_beta_table(1000)
    t = sigma_to_t(table.float(), table)
    assert torch.allclose(t, torch.arange(1000).float(), atol=1e-2)


def test_parametrization_round_trips():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(16, 3, 4, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(16, 3, 4, 4, generator=g, dtype=torch.float64)
    sigma = torch.rand(16, generator=g, dtype=torch.float64) * 10 + 0.01
    x = x0 + sigma.reshape(-1, 1, 1, 1) * eps
    assert torch.allclose(P.x0_from_eps(x, eps, sigma), x0)
    assert torch.allclose(P.eps_from_x0(x, x0, sigma), eps)
    v = P.v_from_x0(x, x0, sigma)
    assert torch.allclose(P.x0_from_v(x, v, sigma), x0)
    u = P.velocity_from_x0(x, x0, sigma)
    assert torch.allclose(u, eps - x0)
    assert torch.allclose(P.x0_from_velocity(x, u, sigma), x0)
    score = P.score_from_x0(x, x0, sigma)
    assert torch.allclose(score, -eps / sigma.reshape(-1, 1, 1, 1))
    assert torch.allclose(P.x0_from_score(x, score, sigma), x0)
