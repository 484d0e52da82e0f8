"""RePaint, the DDPM variational bound and classifier guidance against exact oracles."""

import math

import pytest
import torch

from genzoo.diffusion import IdealDenoiser
from genzoo.diffusion.classifier_guidance import (
    ClassifierGuidance,
    NoisyClassifier,
    log_uniform_sigmas,
    train_noisy_classifier,
)
from genzoo.diffusion.guidance import InpaintingDenoiser
from genzoo.diffusion.repaint import sample_repaint
from genzoo.diffusion.samplers import run_sampler
from genzoo.diffusion.schedules import karras_schedule


def _inpaint_setup(seed=0):
    g = torch.Generator().manual_seed(seed)
    data = torch.randn(32, 6, generator=g, dtype=torch.float64)
    data[:, :3] *= 3  # the known half is spread out: it identifies the data point
    known = data[torch.arange(128) % 32]
    mask = torch.zeros(128, 6, dtype=torch.float64)
    mask[:, :3] = 1
    return g, data, known, mask


def test_repaint_completes_the_matching_point_more_often_than_replacement():
    g, data, known, mask = _inpaint_setup()
    den = IdealDenoiser(data)
    sig = karras_schedule(50, 0.002, 20.0).double()
    x = 20.0 * torch.randn(known.shape, generator=g, dtype=torch.float64)
    out = sample_repaint(
        den, x.clone(), sig, x_known=known, mask=mask, jump_length=1, resample=10, generator=g
    )
    assert torch.allclose(out[:, :3], known[:, :3])  # known region is the data at sigma 0
    right = ((out[:, 3:] - known[:, 3:]).abs().max(1).values < 1e-2).double().mean()
    plain = run_sampler(
        "ancestral", InpaintingDenoiser(den, known, mask), x.clone(), sig, generator=g
    )
    right_plain = ((plain[:, 3:] - known[:, 3:]).abs().max(1).values < 1e-2).double().mean()
    assert right >= 0.9, (right, right_plain)
    assert right > right_plain + 0.05, (right, right_plain)


def test_repaint_without_resampling_is_the_per_step_replacement_chain():
    """resample = 1: each step is ancestral on the unknown part, forward noise on the known."""
    g, data, known, mask = _inpaint_setup(1)
    den = IdealDenoiser(data)
    sig = karras_schedule(6, 0.01, 5.0).double()
    x = 5.0 * torch.randn(known.shape, generator=g, dtype=torch.float64)
    out = sample_repaint(
        den,
        x.clone(),
        sig,
        x_known=known,
        mask=mask,
        resample=1,
        generator=torch.Generator().manual_seed(3),
    )
    # Independent re-implementation with the same noise stream.
    g2 = torch.Generator().manual_seed(3)
    y = x.clone()
    s = sig.tolist()
    for i in range(len(s) - 1):
        x0 = den(y, torch.full((y.shape[0],), s[i]))
        var = s[i + 1] ** 2 * (s[i] ** 2 - s[i + 1] ** 2) / s[i] ** 2  # posterior variance
        mean = x0 + math.sqrt(s[i + 1] ** 2 - var) * (y - x0) / s[i]
        unk = mean + math.sqrt(var) * torch.randn(y.shape, generator=g2, dtype=y.dtype)
        kn = known + s[i + 1] * torch.randn(y.shape, generator=g2, dtype=y.dtype) if var else known
        y = mask * kn + (1 - mask) * unk
    assert torch.allclose(out, y)


# --- DDPM variational bound ---


def _toy_ddpm(timesteps=100, beta_end=0.2):
    """A DDPM on 2-pixel images with 4 levels whose denoiser is the exact (ideal) one of a known
    discrete distribution p = (0.5, 0.3, 0.2) over three points."""
    from genzoo.data.base import DataInfo
    from genzoo.models.diffusion.ddpm import DDPM, DDPMConfig

    levels = 4
    info = DataInfo("toy", "images", (1, 1, 2), levels=levels)
    cfg = DDPMConfig(arch="mlp", timesteps=timesteps, beta_start=1e-3, beta_end=beta_end)
    m = DDPM(cfg, info)
    lv = torch.tensor([[0, 3], [1, 1], [3, 2]])
    p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    pts = (2 * (lv.double() + 0.5) / levels - 1).reshape(3, 1, 1, 2)  # bin centres
    ideal = IdealDenoiser(pts[torch.tensor([0] * 5 + [1] * 3 + [2] * 2)])
    m.denoise = lambda x, s, c=None: ideal(x, s)
    return m, pts, p


def test_vlb_of_the_exact_model_bounds_each_points_nll_and_is_tight():
    from genzoo.diffusion.vlb import ddpm_vlb

    m, pts, p = _toy_ddpm(200, 0.1)
    g = torch.Generator().manual_seed(0)
    reps = 200
    x0 = pts.repeat_interleave(reps, 0)  # (3 * reps, 1, 1, 2)
    v = ddpm_vlb(m, x0, g).reshape(3, reps)
    mean, se = v.mean(1), v.std(1) / reps**0.5
    nll = -p.log()
    assert (mean + 3 * se >= nll).all(), (mean, nll)  # a bound on each point's -log p
    cross = float((p * mean).sum())
    entropy = float((p * nll).sum())
    assert entropy - 0.02 <= cross <= entropy + 0.15, (cross, entropy)  # tight for the exact D


def test_vlb_terms_closed_forms_and_unbiased_subset_estimate():
    from genzoo.diffusion.vlb import ddpm_vlb, ddpm_vlb_terms

    m, pts, _ = _toy_ddpm(50, 0.4)
    g = torch.Generator().manual_seed(1)
    x0 = pts.repeat_interleave(100, 0)
    out = ddpm_vlb_terms(m, x0, generator=g)
    assert (out["terms"] >= 0).all()  # KLs and a discrete NLL
    abar_t = 1 / (1 + m.sigma_table[-1].double() ** 2)
    q = torch.distributions.Normal(abar_t.sqrt() * x0, (1 - abar_t).sqrt())
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0))
    assert torch.allclose(out["prior"], kl.reshape(x0.shape[0], -1).sum(1), rtol=1e-6)
    full = float((out["prior"] + out["terms"].sum(1)).mean())
    est = torch.stack([ddpm_vlb(m, x0, g, n_timesteps=5).mean() for _ in range(40)])
    assert abs(float(est.mean()) - full) < 4 * float(est.std()) / 40**0.5 + 0.02


def test_discretized_gaussian_matches_scipy_and_normalises():
    from scipy.stats import norm

    from genzoo.diffusion.vlb import discretized_gaussian_log_prob

    levels = 5
    centres = 2 * (torch.arange(levels, dtype=torch.float64) + 0.5) / levels - 1
    mean = torch.tensor(0.3, dtype=torch.float64)
    std = torch.tensor(0.4, dtype=torch.float64)
    lp = discretized_gaussian_log_prob(centres, mean, std, levels)
    edges = [-float("inf"), *(2 * k / levels - 1 for k in range(1, levels)), float("inf")]
    ref = [norm.cdf(edges[k + 1], 0.3, 0.4) - norm.cdf(edges[k], 0.3, 0.4) for k in range(levels)]
    assert torch.allclose(lp.exp(), torch.tensor(ref, dtype=torch.float64), atol=1e-12)
    assert abs(float(lp.exp().sum()) - 1) < 1e-12


# --- classifier guidance ---

MUS = torch.tensor([[-2.0, 1.0], [2.0, -1.0]], dtype=torch.float64)  # class means
S = 0.5  # component std


def _log_lik(x, sigma):
    """log N(x; mu_k, (S^2 + sigma^2) I) per class (B, 2): the noised mixture's components."""
    var = (S**2 + sigma.double().reshape(-1, 1) ** 2).to(x.dtype)  # (B, 1)
    d2 = ((x.unsqueeze(1) - MUS.to(x.dtype)) ** 2).sum(-1)  # (B, 2)
    return -0.5 * d2 / var - var.log()  # 2-D: the normaliser is (2 pi var)^-1


def analytic_classifier(x, sigma):
    return _log_lik(x, sigma)  # logits: equal class weights, p(y | x, sigma) = softmax


def mixture_denoiser(x, sigma, cond=None):
    """Exact D(x, sigma) = x + sigma^2 grad log p_sigma(x) of the two-component mixture."""
    w = torch.softmax(_log_lik(x, sigma), 1)  # (B, 2)
    var = S**2 + sigma.double().reshape(-1, 1) ** 2
    comp = (x.unsqueeze(1) * S**2 + MUS * sigma.double().reshape(-1, 1, 1) ** 2) / var.unsqueeze(1)
    return (w.unsqueeze(-1) * comp).sum(1)  # (B, 2): posterior mean of x0


def _near(out, k):
    return ((out - MUS[k]).norm(dim=1) < 4 * S).double().mean()


@pytest.mark.parametrize("y", [0, 1])
def test_classifier_guidance_with_exact_classifier_samples_one_class(y):
    g = torch.Generator().manual_seed(y)
    sig = karras_schedule(40, 0.002, 20.0).double()
    x = 20.0 * torch.randn(1000, 2, generator=g, dtype=torch.float64)
    cond = torch.full((1000,), y)
    guided = ClassifierGuidance(mixture_denoiser, analytic_classifier, 1.0)
    out = run_sampler("heun", guided, x.clone(), sig, cond=cond)
    assert _near(out, y) >= 0.95, _near(out, y)
    plain = run_sampler(
        "heun",
        ClassifierGuidance(mixture_denoiser, analytic_classifier, 0.0),
        x.clone(),
        sig,
        cond=cond,
    )
    assert 0.35 <= _near(plain, 0) <= 0.65 and _near(plain, 0) + _near(plain, 1) >= 0.95


def test_guided_denoiser_equals_the_conditional_denoiser_at_scale_one():
    """D + sigma^2 grad log p(y|x) is the denoiser of component y alone (a closed form)."""
    g = torch.Generator().manual_seed(5)
    x = 3 * torch.randn(64, 2, generator=g, dtype=torch.float64)
    sigma = torch.rand(64, generator=g, dtype=torch.float64) * 3 + 0.05
    y = torch.arange(64) % 2
    d = ClassifierGuidance(mixture_denoiser, analytic_classifier, 1.0)(x, sigma.float(), y)
    s2 = sigma.float().double().reshape(-1, 1) ** 2
    expect = (x * S**2 + MUS[y] * s2) / (S**2 + s2)
    assert torch.allclose(d, expect, atol=1e-6)


def test_trained_noisy_classifier_approaches_the_analytic_posterior():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (4000,), generator=g)
    x = (MUS[y] + S * torch.randn(4000, 2, generator=g, dtype=torch.float64)).float()
    torch.manual_seed(0)
    clf = NoisyClassifier(2, 2, hidden=(64, 64), sigma_data=1.0)
    clf = train_noisy_classifier(
        x, y, log_uniform_sigmas(0.01, 20.0), steps=600, classifier=clf, lr=3e-3, generator=g
    )
    assert clf.sigma_data == 1.0
    yt = torch.randint(0, 2, (2000,), generator=g)
    sigma = torch.exp(torch.empty(2000).uniform_(-4, 3, generator=g))
    xt = (
        MUS[yt]
        + (S**2 + sigma.double().reshape(-1, 1) ** 2).sqrt()
        * torch.randn(2000, 2, generator=g, dtype=torch.float64)
    ).float()
    with torch.no_grad():
        got = torch.softmax(clf(xt, sigma), 1)[:, 1]
    ref = torch.softmax(analytic_classifier(xt.double(), sigma), 1)[:, 1]
    err = (got.double() - ref).abs().mean()
    assert err < 0.05, err


def test_vlb_subset_estimate_keeps_the_dominant_small_t_terms():
    """With n of T timesteps the estimate holds the first n // 2 terms exactly and stratifies the
    rest: its scatter is far below that of n timesteps drawn uniformly (same cost), whose single
    draw misses or hits the few large small-t terms."""
    from genzoo.diffusion.vlb import ddpm_vlb, ddpm_vlb_terms

    m, pts, _ = _toy_ddpm(200, 0.1)
    biased = IdealDenoiser(pts + 0.03)  # slightly wrong at small noise, as trained models are
    m.denoise = lambda x, s, c=None: biased(x, s)
    x0 = pts.repeat_interleave(20, 0)
    g = torch.Generator().manual_seed(2)
    out = ddpm_vlb_terms(m, x0, generator=g)
    terms = out["terms"].mean(0)  # (T,)
    assert terms[:5].sum() > 0.2 * terms.sum()  # a few small-t terms carry much of the bound
    full = float(out["prior"].mean() + terms.sum())
    strat = torch.stack([ddpm_vlb(m, x0, g, n_timesteps=10).mean() for _ in range(30)])
    uniform = []
    for _ in range(30):
        t = torch.randint(1, 201, (10,), generator=g)
        o = ddpm_vlb_terms(m, x0, t, generator=g)
        uniform.append((o["prior"] + 200 * o["terms"].mean(1)).mean())
    uniform = torch.stack(uniform)
    assert abs(float(strat.mean()) - full) < 4 * float(strat.std()) / 30**0.5 + 0.02
    assert strat.std() < 0.5 * uniform.std(), (strat.std(), uniform.std())
