"""Tests of PCA and probabilistic PCA: parity with scipy and scikit-learn, the closed-form maximum
likelihood of Tipping & Bishop, streaming moments, and the closed-form fit through the Trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.decomposition import PCA as SkPCA

import genzoo
from genzoo.core.errors import ConfigError, GenzooError
from genzoo.core.protocol import ClosedForm, LatentSpace, likelihood_kind
from genzoo.core.seeding import make_generator
from genzoo.data import load_dataset
from genzoo.data.base import DataInfo
from genzoo.models.linear import PCA, PPCA, PCAConfig, PPCAConfig
from genzoo.models.linear.pca import fit_moments
from genzoo.models.linear.ppca import ppca_log_prob


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def gaussian_data(n: int, d: int = 6, seed: int = 0) -> torch.Tensor:
    """Anisotropic correlated Gaussian data with a non-zero mean, ``(n, d)`` float64."""
    g = gen(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64) * torch.linspace(2.0, 0.2, d)
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ a.T + 3.0


def points(d: int) -> DataInfo:
    return DataInfo("gauss", "points", (d,))


def test_ppca_log_prob_equals_scipy_multivariate_normal() -> None:
    x = gaussian_data(500)
    model = PPCA(PPCAConfig(latent_dim=2), points(6)).fit(x[:400])
    held_out = x[400:]
    lp = model.log_prob(held_out)  # float64 in, float64 out
    assert lp.dtype == torch.float64 and lp.shape == (100,)
    w = model.weight.double().numpy()
    cov = w @ w.T + float(model.noise_variance) * np.eye(6)  # the closed-form covariance
    ref = multivariate_normal(model.mean.double().numpy(), cov).logpdf(held_out.numpy())
    np.testing.assert_allclose(lp.numpy(), ref, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(model.covariance.numpy(), cov, rtol=1e-12, atol=1e-12)
    # the same for any W (not only the ML one): the Woodbury form is general
    w_rand = torch.randn(6, 3, generator=gen(1), dtype=torch.float64)
    s2 = torch.tensor(0.3, dtype=torch.float64)
    mu = torch.randn(6, generator=gen(2), dtype=torch.float64)
    lp2 = ppca_log_prob(held_out, mu, w_rand, s2)
    cov2 = (w_rand @ w_rand.T).numpy() + 0.3 * np.eye(6)
    ref2 = multivariate_normal(mu.numpy(), cov2).logpdf(held_out.numpy())
    np.testing.assert_allclose(lp2.numpy(), ref2, rtol=1e-10, atol=1e-9)


def test_ppca_ml_noise_is_the_mean_of_the_discarded_eigenvalues() -> None:
    x = gaussian_data(800)
    k = 2
    model = PPCA(PPCAConfig(latent_dim=k), points(6)).fit(x)
    evals = np.sort(np.linalg.eigvalsh(np.cov(x.numpy(), rowvar=False, bias=True)))[::-1]
    assert float(model.noise_variance) == pytest.approx(evals[k:].mean(), rel=1e-6)
    np.testing.assert_allclose(model.mean.numpy(), x.mean(0).numpy(), rtol=1e-6, atol=1e-6)
    # C = W W^T + sigma^2 I keeps the K leading eigenvalues of S and sets the others to sigma^2
    c_evals = np.sort(np.linalg.eigvalsh(model.covariance.numpy()))[::-1]
    np.testing.assert_allclose(c_evals[:k], evals[:k], rtol=1e-5)
    np.testing.assert_allclose(c_evals[k:], evals[k:].mean(), rtol=1e-5)


def test_ppca_fit_is_a_maximum_of_the_training_likelihood() -> None:
    """The gradient of the mean training log-likelihood vanishes at the closed form, and
    perturbations of (mean, W, sigma^2) only lower it."""
    x = gaussian_data(1000)
    model = PPCA(PPCAConfig(latent_dim=3), points(6)).fit(x)
    mu = model.mean.double().clone().requires_grad_(True)
    w = model.weight.double().clone().requires_grad_(True)
    log_s2 = model.noise_variance.double().log().clone().requires_grad_(True)
    ll = ppca_log_prob(x, mu, w, log_s2.exp()).mean()
    grads = torch.autograd.grad(ll, [mu, w, log_s2])
    for gr in grads:  # float32 buffers: zero up to their rounding
        assert gr.abs().max() < 1e-4, grads
    best = ll.item()
    g = gen(3)
    with torch.no_grad():
        for _ in range(20):
            pert = [0.05 * torch.randn(t.shape, generator=g, dtype=t.dtype) for t in (mu, w)]
            ds = 0.05 * torch.randn((), generator=g, dtype=torch.float64)
            other = ppca_log_prob(x, mu + pert[0], w + pert[1], (log_s2 + ds).exp()).mean()
            assert other.item() < best


def test_pca_matches_scikit_learn() -> None:
    x = gaussian_data(300)
    k = 3
    model = PCA(PCAConfig(latent_dim=k), points(6)).fit(x)
    sk = SkPCA(n_components=k, svd_solver="full").fit(x.numpy())
    ours = model.components.double().numpy()  # (K, D)
    signs = np.sign((ours * sk.components_).sum(1, keepdims=True))
    np.testing.assert_allclose(ours * signs, sk.components_, atol=1e-5)
    n = x.shape[0]  # scikit-learn divides by N - 1, the ML covariance by N
    np.testing.assert_allclose(
        model.explained_variance.double().numpy(), sk.explained_variance_ * (n - 1) / n, rtol=1e-5
    )
    rec_sk = sk.inverse_transform(sk.transform(x.numpy()))
    np.testing.assert_allclose(model(x).double().numpy(), rec_sk, atol=1e-4)
    np.testing.assert_allclose(
        model.reconstruction_error(x).double().numpy(),
        ((x.numpy() - rec_sk) ** 2).sum(1),
        rtol=1e-4,
        atol=1e-4,
    )
    z = model.encode_latent(x).double().numpy()
    np.testing.assert_allclose(np.abs(z), np.abs(sk.transform(x.numpy())), atol=1e-4)


def test_moments_in_chunks_equal_moments_at_once() -> None:
    x = gaussian_data(1000, d=5)
    whole = fit_moments([x])
    parts = fit_moments(x.split([1, 7, 300, 2, 690]))
    assert whole.n == parts.n == 1000
    torch.testing.assert_close(parts.mean, whole.mean, rtol=0, atol=1e-12)
    torch.testing.assert_close(parts.eigenvalues, whole.eigenvalues, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        whole.eigenvalues.numpy(),
        np.sort(np.linalg.eigvalsh(np.cov(x.numpy(), rowvar=False, bias=True)))[::-1],
        rtol=1e-10,
    )


def test_ppca_samples_have_the_model_covariance_and_posterior_mean_shrinks() -> None:
    x = gaussian_data(2000, d=4)
    model = PPCA(PPCAConfig(latent_dim=2), points(4)).fit(x)
    s = model.sample(40_000, generator=gen(5)).double()
    torch.testing.assert_close(s.mean(0), model.mean.double(), atol=0.05, rtol=0)
    emp = torch.cov(s.T)
    assert (emp - model.covariance).abs().max() < 0.05 * model.covariance.abs().max()
    torch.testing.assert_close(model.sample(5, generator=gen(1)), model.sample(5, generator=gen(1)))
    clean = model.sample(5, generator=gen(1), noise=False)
    assert not torch.allclose(clean, model.sample(5, generator=gen(1)))
    # E[z|x] = M^-1 W^T (x - mean); with the ML W, W E[z|x] shrinks each component by
    # (lambda - sigma^2) / lambda towards the mean
    xs = x[:10].float()
    rec = model(xs)
    pca = PCA(PCAConfig(latent_dim=2), points(4)).fit(x)
    assert ((rec - model.mean).norm(dim=1) <= (pca(xs) - pca.mean).norm(dim=1) + 1e-5).all()


def test_closed_form_fit_through_the_trainer(tmp_path, fast_train) -> None:
    """`genzoo train ppca` fits once on the whole (dequantized) training set before step 1;
    the steps change nothing, and evaluation gives bits/dim under the uniform baseline."""
    run = genzoo.train("ppca", "digits", steps=2, out=tmp_path / "p", overrides=fast_train)
    model = genzoo.load(run)
    train_set = load_dataset("digits", "train")
    x = train_set.get(torch.arange(len(train_set)), dequantize=True, generator=make_generator(3))[
        "x"
    ]
    ref = PPCA(PPCAConfig(), train_set.info).fit(x)  # seed 0 + 3: the trainer's fit generator
    assert int(model.n_fit) == len(train_set)
    torch.testing.assert_close(model.weight, ref.weight)
    torch.testing.assert_close(model.noise_variance, ref.noise_variance)
    res = genzoo.evaluate(run)
    assert 0.0 < res["log_prob_bpd"] < np.log2(17), res  # log2(17): the uniform density
    pca_run = genzoo.train("pca", "digits", steps=1, out=tmp_path / "c", overrides=fast_train)
    res = genzoo.evaluate(pca_run)
    assert res["mse"] < 0.2 * float(x.var(0).sum()) / 64, res  # 16 of 64 components: most variance


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="latent_dim = 6 must be at most 5"):
        PPCA(PPCAConfig(latent_dim=6), points(6))
    with pytest.raises(ConfigError, match="latent_dim = 7 must be at most 6"):
        PCA(PCAConfig(latent_dim=7), points(6))
    with pytest.raises(ConfigError, match="min_variance"):
        PPCAConfig.from_dict({"min_variance": 0})
    with pytest.raises(ConfigError, match="noise"):
        PPCA(PPCAConfig(latent_dim=1), points(2)).sample(2, temperature=2.0)
    with pytest.raises(GenzooError, match="empty"):
        PCA(PCAConfig(latent_dim=1), points(2)).fit_data([])
    assert issubclass(PPCA, ClosedForm) and issubclass(PCA, ClosedForm)
    assert likelihood_kind(PPCA) == "exact" and likelihood_kind(PCA) == "none"
    assert issubclass(PPCA, LatentSpace) and PPCA.latent_prior == "gaussian"
    assert issubclass(PCA, LatentSpace) and PCA.latent_prior == "euclidean"
    assert list(PPCA(PPCAConfig(latent_dim=1), points(2)).parameters()) == []
