"""Discrete VAE: the Gumbel-softmax sample tends to the categorical as the temperature falls; the
straight-through sample is one-hot forward and carries the relaxed gradient; the KL to the uniform
prior is log K - H(q) (torch.distributions); the ELBO is the exact expectation below the exact
log p(x) of a small model (enumeration); the temperature schedule; codes and samples."""

import itertools
import math

import pytest
import torch
from scipy.stats import chisquare
from torch.distributions import Categorical, kl_divergence

from genzoo.core.errors import ConfigError
from genzoo.core.protocol import LatentSpace, LikelihoodBound, Samples, likelihood_kind
from genzoo.data.base import DataInfo
from genzoo.models import MODELS
from genzoo.models.autoencoders import DVAE
from genzoo.models.autoencoders.dvae import gumbel_softmax, kl_to_uniform

F64 = torch.float64


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_gumbel_softmax_mean_tends_to_the_categorical_as_tau_falls():
    """E[y_tau] -> p = softmax(logits) as tau -> 0 (at tau -> inf it tends to uniform): the L1
    error of the Monte-Carlo mean (200,000 draws, fixed generator) falls with tau and at tau = 0.01
    is within the Monte-Carlo error; the hard (argmax) draws are categorical(p) at any tau."""
    logits = torch.tensor([2.0, 0.5, 0.0, -1.0, 1.0], dtype=F64)
    p = logits.softmax(0)
    n = 200_000
    mc_l1 = float((p * (1 - p) / n).sqrt().sum())  # sum of the standard errors
    errs = []
    for tau in [10.0, 2.0, 1.0, 0.5, 0.1, 0.01]:
        y = gumbel_softmax(logits.expand(n, 5), tau, generator=gen(0))
        errs.append(float((y.mean(0) - p).abs().sum()))
    assert all(a > b for a, b in itertools.pairwise(errs)), errs
    assert errs[0] > 50 * mc_l1 and errs[-1] < 4 * mc_l1, (errs, mc_l1)
    hard = gumbel_softmax(logits.expand(n, 5), 3.0, hard=True, generator=gen(1))
    counts = hard.sum(0)
    assert chisquare(counts.numpy(), (p * n).numpy()).pvalue > 1e-3


def test_straight_through_is_one_hot_forward_with_the_relaxed_gradient():
    logits = torch.randn(6, 7, generator=gen(0), dtype=F64)
    w = torch.randn(6, 7, generator=gen(1), dtype=F64)
    grads = {}
    for hard in (False, True):
        lg = logits.clone().requires_grad_(True)
        y = gumbel_softmax(lg, 0.7, hard=hard, generator=gen(2))
        (y * w).sum().backward()
        grads[hard] = lg.grad
        if hard:
            assert torch.equal(y.detach(), torch.nn.functional.one_hot(y.argmax(1), 7).to(F64))
            soft = gumbel_softmax(logits, 0.7, generator=gen(2))
            assert torch.equal(y.argmax(1), soft.argmax(1))  # the same Gumbel noise
    torch.testing.assert_close(grads[True], grads[False], rtol=0, atol=1e-15)
    assert grads[True].abs().min() > 0


def test_kl_to_uniform_is_log_k_minus_the_entropy():
    logits = 3 * torch.randn(4, 9, 3, generator=gen(0), dtype=F64)  # codes along dim 1
    kl = kl_to_uniform(logits, dim=1)  # (4, 3)
    q = Categorical(logits=logits.movedim(1, -1))
    u = Categorical(probs=torch.full((9,), 1 / 9, dtype=F64))
    torch.testing.assert_close(kl, kl_divergence(q, u), rtol=0, atol=1e-12)
    torch.testing.assert_close(kl, math.log(9) - q.entropy(), rtol=0, atol=1e-12)
    assert torch.allclose(kl_to_uniform(torch.zeros(2, 5)), torch.zeros(2), atol=1e-7)


def small_points_dvae(k=3, tokens=2):
    torch.manual_seed(0)
    info = DataInfo("pts", "points", (2,))
    cfg = {"codebook_size": k, "tokens": tokens, "hidden": [16], "code_dim": 4}
    m = DVAE(DVAE.config_class.from_dict(cfg), info).to(F64).eval()
    with torch.no_grad():
        for prm in m.parameters():
            prm.add_(0.5 * torch.randn(prm.shape, generator=gen(3), dtype=F64))
    return m


def test_elbo_is_the_exact_expectation_and_below_the_exact_log_likelihood():
    """K = 3 codes at 2 positions: enumerate the 9 code pairs. log p(x) = logsumexp_z
    log p(x|z) - log 9; the ELBO's expectation is sum_z q(z|x) log p(x|z) - KL(q || U); the
    one-sample ELBO averages to it, and it lies below log p(x)."""
    m = small_points_dvae()
    x = torch.randn(5, 2, generator=gen(4), dtype=F64)
    with torch.no_grad():
        q = m.encode_latent(x)  # (B, 2, 3)
        zs = torch.tensor(list(itertools.product(range(3), repeat=2)))  # (9, 2)
        log_px = torch.stack(
            [m._log_px(m.decode_codes(z.expand(5, 2)), x) for z in zs], dim=1
        )  # (B, 9)
        log_q = torch.stack([q[:, 0, z[0]].log() + q[:, 1, z[1]].log() for z in zs], 1)
        exact_elbo = (log_q.exp() * log_px).sum(1) - m.kl(m.logits(x))
        log_p = torch.logsumexp(log_px, 1) - math.log(9)
        draws = m.elbo(x.repeat(20_000, 1), gen(0)).view(20_000, 5)  # one sample each
        mc, se = draws.mean(0), draws.std(0) / math.sqrt(20_000)
        # Jensen's gap is the KL to the true posterior: the ELBO is below, by a margin here
        assert torch.all(exact_elbo < log_p - 1e-3), (exact_elbo, log_p)
    torch.testing.assert_close(
        exact_elbo, (log_q.exp() * (log_px - log_q - math.log(9))).sum(1), rtol=0, atol=1e-10
    )  # KL(q || U) in the model's form equals sum q log(q / (1/9))
    assert torch.all((mc - exact_elbo).abs() < 4 * se + 1e-9), (mc, exact_elbo, se)


def test_temperature_anneals_geometrically_and_counts_training_steps():
    info = DataInfo("img", "images", (1, 8, 8), levels=17)
    cfg = {"tau_start": 1.0, "tau_end": 1 / 16, "anneal_steps": 4, "width": 8, "res_blocks": 0}
    m = DVAE(DVAE.config_class.from_dict(cfg), info).train()
    x = torch.rand(3, 1, 8, 8, generator=gen(0)) * 2 - 1
    taus = []
    for _ in range(6):
        taus.append(float(m.loss({"x": x}).logs["tau"]))
    assert taus == pytest.approx([1.0, 0.5, 0.25, 0.125, 0.0625, 0.0625])
    with torch.no_grad():
        m.loss({"x": x})
    m.eval()
    m.loss({"x": x})
    assert int(m.step) == 6  # only training steps with gradients count
    assert "step" in m.state_dict()  # a resumed run continues the schedule


def test_codes_latents_samples_and_contract():
    info = DataInfo("img", "images", (1, 8, 8), levels=17)
    m = DVAE(DVAE.config_class.from_dict({"codebook_size": 5, "width": 8}), info).eval()
    x = torch.rand(4, 1, 8, 8, generator=gen(0)) * 2 - 1
    codes = m.encode_codes(x)
    assert codes.shape == (4, *m.code_grid) == (4, 4, 4) and codes.max() < 5
    torch.testing.assert_close(m(x), m.decode_codes(codes))
    q = m.encode_latent(x)  # (B, K, h, w) on the simplex
    torch.testing.assert_close(q.sum(1), torch.ones(4, 4, 4))
    torch.testing.assert_close(m.decode_latent(m.one_hot(codes)), m.decode_codes(codes))
    s = m.sample(3, generator=gen(1))
    assert s.shape == (3, 1, 8, 8) and s.min() >= -1 and s.max() <= 1
    assert torch.equal(s, m.sample(3, generator=gen(1)))
    ev = m.eval_metrics({"x": x}, gen(2))
    assert set(ev) == {"elbo", "loss", "mse", "perplexity"} and ev["elbo"].shape == (4,)
    assert MODELS.get("dvae") is DVAE and likelihood_kind(DVAE) == "bound"
    assert issubclass(DVAE, LikelihoodBound) and issubclass(DVAE, LatentSpace)
    assert issubclass(DVAE, Samples) and m.bpd_levels == 17
    with pytest.raises(ConfigError, match="unconditional"):
        m.sample(2, cond=torch.zeros(2))
    with pytest.raises(ConfigError, match="codebook_size"):
        DVAE.config_class.from_dict({"codebook_size": 1})


def test_a_dvae_is_the_code_model_of_vqvae_prior_and_t2i_vq():
    """DALL-E's pairing: the GPT prior and the text-to-image GPT take a dVAE as their code model.
    Its codes round-trip to its own reconstruction, the prior's context-free baseline is its
    uniform prior (P log K nats), and p(codes | caption) sums to 1 over all K^P sequences."""
    from genzoo.data.shapes import shapes_info
    from genzoo.models.autoregressive import T2IVQConfig, TextToImageVQ, VQPrior, VQPriorConfig

    info = DataInfo("img", "images", (1, 8, 8), levels=17)
    torch.manual_seed(0)
    dv = DVAE(DVAE.config_class.from_dict({"codebook_size": 5, "width": 8}), info).eval()
    prior = VQPrior(VQPriorConfig(n_layer=1, n_head=2, n_embd=16, dropout=0.0), info, vqvae=dv)
    x = torch.rand(3, 1, 8, 8, generator=gen(0)) * 2 - 1
    codes = prior.encode_codes(x)  # (3, 16) in raster order
    torch.testing.assert_close(codes.view(3, 4, 4), dv.encode_codes(x), rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(prior.decode_codes(codes), dv(x).clamp(-1, 1))
    torch.testing.assert_close(prior.unigram_log_prob(codes), torch.full((3,), -16 * math.log(5)))
    assert prior.sample(2, generator=gen(1)).shape == (2, 1, 8, 8)

    shapes = shapes_info("shapes?size=16")
    torch.manual_seed(0)
    cfg = {"codebook_size": 3, "width": 8, "res_blocks": 1, "downsample": 3}
    dv16 = DVAE(DVAE.config_class.from_dict(cfg), shapes).eval()  # 2x2 grid: P = 4, K = 3
    t2i = TextToImageVQ(T2IVQConfig(n_layer=1, n_head=2, n_embd=16, dropout=0.0), shapes, dv16)
    allc = torch.tensor(list(itertools.product(range(3), repeat=4)))  # (81, 4)
    text = t2i.encode_prompts(["a red circle"] * len(allc))
    with torch.no_grad():
        lp = t2i.code_log_prob(allc, text).double()
    torch.testing.assert_close(lp.exp().sum(), torch.tensor(1.0, dtype=F64))
    with pytest.raises(ConfigError, match="'dvae'"):
        VQPrior(
            VQPriorConfig(), info, vqvae=MODELS.get("vae")(MODELS.get("vae").config_class(), info)
        )
