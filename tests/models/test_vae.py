"""Tests of the VAE: bounds (ELBO <= IWAE_k <= log p), closed forms, training, shapes, configs."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import multivariate_normal
from sklearn.datasets import load_digits

from genzoo.core.errors import ConfigError
from genzoo.core.protocol import LatentSpace, Samples, likelihood_kind
from genzoo.data.base import DataInfo, levels_to_model
from genzoo.metrics.likelihood import bits_per_dim
from genzoo.models.autoencoders.vae import VAE, VAEConfig, gaussian_kl
from genzoo.nn.convnets import ConvDecoder, ConvEncoder

DIGITS_INFO = DataInfo("digits", "images", (1, 8, 8), levels=17, n_classes=10)


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """These small networks run as fast on one thread, and stay fast when CPU cores are shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def digits_levels() -> torch.Tensor:
    """scikit-learn digits as integer levels 0..16, shape (N, 1, 8, 8)."""
    return torch.from_numpy(load_digits().images).long().unsqueeze(1)  # (N, 8, 8) -> (N, 1, 8, 8)


def train(model: VAE, x: torch.Tensor, steps: int, lr: float, batch: int = 64) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = gen(1)
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=g)
        out = model.loss({"x": x[idx]})
        opt.zero_grad()
        out.loss.backward()
        opt.step()


@pytest.fixture(scope="module")
def digits_run() -> dict:
    """A conv VAE briefly trained on dequantized 8x8 digits, with its negative ELBO before/after."""
    torch.manual_seed(0)
    x = levels_to_model(digits_levels(), 17, dequantize=True, generator=gen(0))
    model = VAE(VAEConfig(), DIGITS_INFO)
    x_eval = x[:400]

    def neg_elbo() -> float:
        with torch.no_grad():
            return -model.elbo(x_eval, generator=gen(3)).mean().item()

    before = neg_elbo()
    train(model, x, steps=200, lr=3e-3)
    return {"model": model, "x": x_eval, "before": before, "after": neg_elbo()}


# --------------------------------------------------------------------------------------------------
# closed forms and bounds


def test_analytic_kl_matches_monte_carlo_and_torch() -> None:
    mu = torch.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5], [0.3, 0.1, -1.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, 0.0, 0.0], [-1.0, 0.5, -3.0], [1.0, -0.2, 0.0]])
    logvar = logvar.double()
    kl = gaussian_kl(mu, logvar)  # (3,)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    ref = torch.distributions.kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(kl, ref)
    assert kl[0].item() == pytest.approx(0.0, abs=1e-12)
    z = q.sample((200_000,))  # (S, 3, K)
    log_ratio = (q.log_prob(z) - p.log_prob(z)).sum(-1)  # (S, 3)
    mc = log_ratio.mean(0)
    se = log_ratio.std(0) / math.sqrt(z.shape[0])
    assert torch.all((mc - kl).abs() <= 5 * se + 1e-9), (mc, kl, se)


def test_iwae_k1_equals_elbo_in_expectation(digits_run: dict) -> None:
    model, x = digits_run["model"], digits_run["x"][:50]
    reps = 80
    x_rep = x.repeat(reps, 1, 1, 1)  # (reps * 50, 1, 8, 8)
    with torch.no_grad():
        elbo = model.elbo(x_rep, generator=gen(10)).view(reps, -1)  # (reps, 50)
        iwae1 = model.iwae(x_rep, 1, generator=gen(11)).view(reps, -1)  # (reps, 50)
    diff = (iwae1 - elbo).mean(0)  # per example, averaged over draws: (50,)
    se = diff.std() / math.sqrt(diff.numel())
    # the same expectation: the mean difference is zero up to Monte-Carlo error
    assert abs(diff.mean().item()) < 4 * se.item() + 0.05, (diff.mean(), se)
    # but the estimators differ (IWAE_1 samples the KL, the ELBO integrates it)
    assert not torch.allclose(elbo, iwae1)


def test_iwae_non_decreasing_in_k_and_above_elbo(digits_run: dict) -> None:
    model, x = digits_run["model"], digits_run["x"][:50]
    with torch.no_grad():
        means = {}
        for k, reps in [(1, 32), (8, 8), (64, 2)]:
            draws = torch.stack([model.iwae(x, k, generator=gen(100 * k + r)) for r in range(reps)])
            means[k] = draws.mean().item()  # (reps, B) -> average
        elbo = torch.stack([model.elbo(x, generator=gen(7 + r)) for r in range(32)]).mean().item()
    assert means[1] <= means[8] <= means[64], means
    assert means[64] - means[1] > 0.1, means  # a trained VAE has a visible gap to close
    assert means[64] >= elbo, (means, elbo)


def test_iwae_chunking_does_not_change_the_estimate() -> None:
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=3, hidden=(32,)), DataInfo("pts", "points", (2,)))
    x = torch.randn(5, 2)
    with torch.no_grad():
        full = model.iwae(x, 12, generator=gen(0), chunk=12)
        chunked = model.iwae(x, 12, generator=gen(0), chunk=5)
    # different chunking draws different noise, but both estimate the same bound closely
    assert full.shape == chunked.shape == (5,)
    assert torch.allclose(full, chunked, atol=0.5)


def test_linear_gaussian_elbo_reaches_exact_log_likelihood() -> None:
    """Linear decoder, fixed sigma: the model is probabilistic PCA with a tractable log p(x)."""
    torch.manual_seed(0)
    g = gen(0)
    d, k, s = 4, 2, 0.5
    w = torch.randn(d, k, generator=g)

    def draw(n: int) -> torch.Tensor:  # x = W z + s eps ~ N(0, W W^T + s^2 I), (n, d)
        return torch.randn(n, k, generator=g) @ w.T + s * torch.randn(n, d, generator=g)

    x_train, x_test = draw(2000), draw(2000)
    cov = (w @ w.T).double().numpy() + s**2 * np.eye(d)
    true_ll = multivariate_normal(np.zeros(d), cov).logpdf(x_test.double().numpy()).mean()

    cfg = VAEConfig(
        latent_dim=k, arch="mlp", hidden=(), obs_scale="fixed", init_log_scale=math.log(s)
    )
    model = VAE(cfg, DataInfo("gauss", "points", (d,)))
    train(model, x_train, steps=600, lr=1e-2, batch=256)

    with torch.no_grad():
        elbo_draws = torch.stack([model.elbo(x_test, generator=gen(2 + r)) for r in range(20)])
        elbo = elbo_draws.mean().item()
        elbo_se = (elbo_draws.mean(0).std() / math.sqrt(x_test.shape[0])).item()
        iwae = model.iwae(x_test, 64, generator=gen(50)).mean().item()
        dec = model.decoder[0]  # the decoder is one Linear layer: x = W' z + b + s eps
        w_m, b_m = dec.weight.double().numpy(), dec.bias.double().numpy()
    model_cov = w_m @ w_m.T + s**2 * np.eye(d)
    model_ll = multivariate_normal(b_m, model_cov).logpdf(x_test.double().numpy()).mean()

    assert abs(elbo - true_ll) < 0.03 * abs(true_ll), (elbo, true_ll)
    # a bound on the model's own exact log-likelihood, up to Monte-Carlo error
    assert elbo <= model_ll + 4 * elbo_se, (elbo, model_ll, elbo_se)
    assert elbo <= iwae <= model_ll + 0.01, (elbo, iwae, model_ll)


# --------------------------------------------------------------------------------------------------
# training and likelihoods


def test_short_digits_training_lowers_negative_elbo(digits_run: dict) -> None:
    before, after = digits_run["before"], digits_run["after"]
    assert after < 0.7 * before, (before, after)
    model = digits_run["model"]
    bpd = bits_per_dim(after, DIGITS_INFO.dim, model.bpd_levels).item()
    assert 0.0 < bpd < 8.0  # log2(17) ~ 4.09 bits/dim is the uniform baseline on [0, 17)


def test_loss_is_beta_weighted_negative_elbo() -> None:
    info = DataInfo("pts", "points", (3,))
    x = torch.randn(16, 3)
    for beta in (1.0, 4.0):
        torch.manual_seed(0)
        model = VAE(VAEConfig(latent_dim=2, hidden=(16,), beta=beta), info)
        torch.manual_seed(1)
        out = model.loss({"x": x})
        torch.manual_seed(1)
        elbo = model.elbo(x)
        expected = -elbo.mean() + (beta - 1.0) * out.logs["kl"]
        torch.testing.assert_close(out.loss, expected)
        torch.testing.assert_close(out.logs["elbo"], elbo.mean().detach())
        torch.testing.assert_close(out.logs["elbo"], -(out.logs["rec"] + out.logs["kl"]))
        assert out.loss.ndim == 0 and out.loss.requires_grad


def test_gaussian_log_scale_starts_at_init_and_respects_floor() -> None:
    info = DataInfo("pts", "points", (3,))
    model = VAE(VAEConfig(init_log_scale=-1.5, min_log_scale=-4.0), info)
    torch.testing.assert_close(model.obs_log_scale(), torch.full((3,), -1.5))
    with torch.no_grad():
        model.log_scale_raw.fill_(-50.0)
    assert torch.all(model.obs_log_scale() >= -4.0)
    glob = VAE(VAEConfig(obs_scale="global"), info)
    assert glob.obs_log_scale().shape == ()
    assert VAE(VAEConfig(), DIGITS_INFO).bpd_levels == 17


def test_bernoulli_bits_per_dim_and_samples() -> None:
    torch.manual_seed(0)
    model = VAE(VAEConfig(likelihood="bernoulli"), DIGITS_INFO)
    assert model.bpd_levels is None
    k = digits_levels()[:200]
    x1 = levels_to_model(k, 17, dequantize=True, generator=gen(0))
    x2 = levels_to_model(k, 17, dequantize=True, generator=gen(1))
    with torch.no_grad():
        e1 = model.elbo(x1, generator=gen(5))
        e2 = model.elbo(x2, generator=gen(5))
    # binarization is deterministic in the integer level, whatever the dequantization noise
    torch.testing.assert_close(e1, e2)
    bpd = bits_per_dim(-e1.mean(), DIGITS_INFO.dim, model.bpd_levels).item()
    assert 0.8 < bpd < 1.3, bpd  # p ~ 1/2 per pixel at init: about 1 bit/dim
    mean = model.sample(32, generator=gen(2))
    draw = model.sample(32, generator=gen(2), noise=True)
    assert mean.shape == draw.shape == (32, 1, 8, 8)
    assert mean.min() >= -1 and mean.max() <= 1
    assert set(draw.unique().tolist()) <= {-1.0, 1.0}


def test_sampling_is_reproducible_and_noise_option() -> None:
    model = VAE(VAEConfig(), DIGITS_INFO)
    a = model.sample(8, generator=gen(4))
    b = model.sample(8, generator=gen(4))
    torch.testing.assert_close(a, b)
    c = model.sample(8, generator=gen(4), noise=True)
    assert not torch.allclose(a, c)
    assert c.min() >= -1 and c.max() <= 1
    with pytest.raises(ConfigError, match="noise"):
        model.sample(2, temperature=0.5)
    metrics1 = model.eval_metrics({"x": a}, generator=gen(9))
    metrics2 = model.eval_metrics({"x": a}, generator=gen(9))
    assert set(metrics1) == {"elbo", "iwae64", "loss"}
    for key in metrics1:
        assert metrics1[key].shape == (8,)
        torch.testing.assert_close(metrics1[key], metrics2[key])
    torch.testing.assert_close(metrics1["loss"], -metrics1["elbo"])


# --------------------------------------------------------------------------------------------------
# shapes, architectures and configs


@pytest.mark.parametrize(
    ("kind", "shape", "arch"),
    [
        ("points", (2,), "mlp"),
        ("images", (1, 8, 8), "conv"),
        ("images", (1, 28, 28), "conv"),
        ("images", (3, 32, 32), "conv"),
        ("images", (1, 4, 4), "mlp"),
    ],
)
@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_shapes(kind: str, shape: tuple[int, ...], arch: str, likelihood: str) -> None:
    info = DataInfo("t", kind, shape, levels=None if kind == "points" else 256)
    model = VAE(VAEConfig(latent_dim=5, likelihood=likelihood), info)
    assert model.arch == arch
    x = torch.rand(3, *shape, generator=gen(0)) * 2 - 1
    mu, logvar = model.posterior(x)
    assert mu.shape == logvar.shape == (3, 5)
    assert model.likelihood_params(mu).shape == (3, *shape)
    torch.testing.assert_close(model.encode_latent(x), mu)
    assert model(x).shape == (3, *shape)
    samples = model.sample(4, generator=gen(1))
    assert samples.shape == (4, *shape)
    if kind == "images":
        assert samples.min() >= -1 and samples.max() <= 1
    with torch.no_grad():
        assert model.elbo(x).shape == model.iwae(x, 3).shape == (3,)
    out = model.loss({"x": x})
    assert torch.isfinite(out.loss) and set(out.logs) == {"elbo", "rec", "kl"}


@pytest.mark.parametrize("size", [(8, 8), (28, 28), (32, 32), (25, 13), (7, 5), (1, 1)])
def test_conv_encoder_decoder_exact_sizes(size: tuple[int, int]) -> None:
    enc = ConvEncoder(2, 6, size, channels=(8, 16, 16))
    dec = ConvDecoder(6, 3, size, channels=(8, 16, 16))
    x = torch.randn(2, 2, *size)
    h = enc(x)
    assert h.shape == (2, 6)
    assert dec(h).shape == (2, 3, *size)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="nope"):
        VAEConfig.from_dict({"nope": 1})
    with pytest.raises(ConfigError, match="likelihood"):
        VAEConfig.from_dict({"likelihood": "poisson"})
    with pytest.raises(ConfigError, match="latent_dim"):
        VAEConfig.from_dict({"latent_dim": 0})
    with pytest.raises(ConfigError, match="init_log_scale"):
        VAEConfig.from_dict({"init_log_scale": -8.0})
    with pytest.raises(ConfigError, match="conv"):
        VAE(VAEConfig(arch="conv"), DataInfo("pts", "points", (2,)))
    cfg = VAEConfig.from_dict({"latent_dim": "8", "channels": "16,32", "beta": "4"})
    assert cfg == VAEConfig(latent_dim=8, channels=(16, 32), beta=4.0)
    assert VAEConfig.from_json(cfg.to_json()) == cfg
    assert VAE.name == "vae" and likelihood_kind(VAE) == "bound" and VAE.dequantize
    assert issubclass(VAE, Samples) and issubclass(VAE, LatentSpace)
    assert VAE.latent_prior == "gaussian"


# --------------------------------------------------------------------------------------------------
# KL warm-up, free bits, and the linear-Gaussian VAE at the PPCA optimum


def test_kl_warmup_weights_the_kl_linearly_from_zero_to_beta() -> None:
    info = DataInfo("pts", "points", (3,))
    x = torch.randn(16, 3, generator=gen(0))
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=2, hidden=(16,), beta=2.0, kl_warmup=4), info)
    model.train()
    for t in range(7):
        assert int(model.kl_step) == t
        torch.manual_seed(10 + t)
        out = model.loss({"x": x})
        torch.manual_seed(10 + t)
        with torch.no_grad():
            rec, kl = model._elbo_terms(x, None)
        weight = 2.0 * min(1.0, t / 4)  # 0, 0.5, 1, 1.5, 2, 2, 2
        torch.testing.assert_close(out.loss, (-rec).mean() + weight * kl.mean())
        assert out.logs["kl_weight"] == pytest.approx(weight)
        assert kl.mean() > 0.01  # the weight visibly matters
    # only training steps count: evaluation and no-grad calls leave the schedule alone
    model.eval()
    model.loss({"x": x})
    model.train()
    with torch.no_grad():
        model.loss({"x": x})
    assert int(model.kl_step) == 7
    assert "kl_step" in model.state_dict()  # saved with checkpoints: resume continues it
    assert "kl_step" not in VAE(VAEConfig(latent_dim=2), info).state_dict()


def test_free_bits_floor_each_dimension_batch_mean_kl() -> None:
    info = DataInfo("pts", "points", (4,))
    x = torch.randn(64, 4, generator=gen(0)) * torch.tensor([3.0, 1.0, 0.1, 0.01])
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=3, hidden=(16,), beta=1.5, free_bits=0.0), info)
    with torch.no_grad():  # a posterior with very different KL per dimension
        head = model.encoder[-1]
        head.weight[:3] *= torch.tensor([[8.0], [1.0], [0.05]])
        head.bias[3:] = torch.tensor([-3.0, 0.0, 0.0])
    torch.manual_seed(1)
    rec, kl_dims = model._elbo_terms_per_dim(x, None)
    per_dim = kl_dims.mean(0).detach()  # E_batch KL_j, (K,)
    lam = float(per_dim.sort().values[1])  # a floor between the dimensions' KLs
    lam = 0.5 * (lam + float(per_dim.sort().values[0]))
    assert (per_dim < lam).sum() == 1 and (per_dim > lam).sum() == 2
    floored = VAE(model.config.replace(free_bits=lam), info)
    floored.load_state_dict(model.state_dict())
    torch.manual_seed(1)
    out = floored.loss({"x": x})
    expected = (-rec).mean() + 1.5 * per_dim.clamp_min(lam).sum()
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(out.logs["kl_term"], per_dim.clamp_min(lam).sum())
    torch.testing.assert_close(out.logs["kl"], kl_dims.sum(-1).mean().detach())  # the true KL
    assert out.loss > (-rec).mean() + 1.5 * per_dim.sum()  # the floor raised the loss
    # above every dimension's KL, the KL term has no gradient: only the reconstruction pulls
    high = VAE(model.config.replace(free_bits=float(per_dim.max()) + 1.0), info)
    high.load_state_dict(model.state_dict())
    torch.manual_seed(1)
    grads = torch.autograd.grad(high.loss({"x": x}).loss, list(high.encoder.parameters()))
    torch.manual_seed(1)
    rec_only = (-high._elbo_terms(x, None)[0]).mean()
    ref = torch.autograd.grad(rec_only, list(high.encoder.parameters()))
    for a, b in zip(grads, ref, strict=True):
        torch.testing.assert_close(a, b)
    torch.manual_seed(1)
    plain = torch.autograd.grad(model.loss({"x": x}).loss, list(model.encoder.parameters()))
    assert not torch.allclose(plain[0], ref[0])  # without the floor the KL does pull


def test_linear_gaussian_vae_elbo_reaches_the_ppca_maximum_likelihood() -> None:
    """Lucas et al. (arXiv:1911.02469): with a linear encoder and decoder and a learned global
    sigma, the ELBO's optimum is the PPCA maximum log-likelihood (Tipping & Bishop's closed
    form), reached here within 1% on data that is not itself PPCA-distributed."""
    from genzoo.models.linear import PPCA, PPCAConfig
    from genzoo.models.linear.ppca import ppca_log_prob

    g = gen(0)
    d, k = 5, 2
    rot = torch.linalg.qr(torch.randn(d, d, generator=g))[0]
    spectrum = torch.tensor([4.0, 2.0, 0.5, 0.3, 0.2])  # not PPCA: unequal trailing eigenvalues
    x = (torch.randn(2000, d, generator=g) * spectrum.sqrt()) @ rot.T + 1.0
    info = DataInfo("gauss", "points", (d,))
    ppca_ll = PPCA(PPCAConfig(latent_dim=k), info).fit(x).log_prob(x.double()).mean().item()

    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=k, arch="mlp", hidden=(), obs_scale="global"), info)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 1000)
    for _ in range(1000):
        idx = torch.randint(0, x.shape[0], (500,), generator=g)
        out = model.loss({"x": x[idx]})
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        draws = torch.stack([model.elbo(x, generator=gen(100 + r)).mean() for r in range(50)])
        elbo, se = draws.mean().item(), draws.std().item() / math.sqrt(50)
        dec = model.decoder[0]  # x = W z + b + sigma eps: the VAE's marginal is a PPCA
        s2 = torch.exp(2 * model.obs_log_scale()).double()
        vae_ll = ppca_log_prob(x.double(), dec.bias.double(), dec.weight.double(), s2).mean()
    assert vae_ll.item() <= ppca_ll + 1e-6  # PPCA's closed form is the maximum
    assert elbo <= vae_ll.item() + 4 * se  # a lower bound, up to Monte-Carlo error
    assert ppca_ll - elbo < 0.01 * abs(ppca_ll), (elbo, ppca_ll)


def test_warmup_and_free_bits_config_errors() -> None:
    with pytest.raises(ConfigError, match="kl_warmup = -1"):
        VAEConfig.from_dict({"kl_warmup": -1})
    with pytest.raises(ConfigError, match=r"free_bits = -0\.5"):
        VAEConfig.from_dict({"free_bits": -0.5})
    cfg = VAEConfig.from_dict({"kl_warmup": "100", "free_bits": "0.25"})
    assert (cfg.kl_warmup, cfg.free_bits) == (100, 0.25)


def test_likelihood_strategy_follows_copies_and_devices_of_the_model() -> None:
    """The decoder likelihood is chosen once; a deep copy (the trainer's EMA model) reads its
    own ``log_scale_raw``, not the original's."""
    model = VAE(VAEConfig(latent_dim=2, hidden=(8,)), DataInfo("p", "points", (3,)))
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.log_scale_raw.fill_(3.0)
    assert not torch.allclose(model.obs_log_scale(), twin.obs_log_scale())
    m = model.config.min_log_scale
    torch.testing.assert_close(twin.obs_log_scale(), m + F.softplus(torch.full((3,), 3.0 - m)))
    bern = VAE(VAEConfig(latent_dim=2, hidden=(8,), likelihood="bernoulli"), DIGITS_INFO)
    with pytest.raises(ConfigError, match="gaussian"):
        bern.obs_log_scale()
    assert "log_scale_raw" not in bern.state_dict() and "log_scale_raw" in model.state_dict()
