"""Tests of the autoencoder and the denoising autoencoder: the corruptions' statistics, the loss
formula, the linear AE reaching the PCA optimum, denoising, the code prior, shapes and configs."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.core.errors import ConfigError
from genzoo.core.protocol import LatentSpace, Samples, likelihood_kind
from genzoo.data.base import DataInfo
from genzoo.models.autoencoders import AE, DAE, AEConfig, DAEConfig
from genzoo.models.linear import PCA, PCAConfig

IMAGES = DataInfo("img", "images", (1, 8, 8), levels=17)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def subspace_data(n: int, d: int = 8, k: int = 2, noise: float = 0.05, seed: int = 0):
    """Points near a k-dimensional linear subspace of R^d, ``(n, d)``."""
    g = gen(seed)
    basis = torch.linalg.qr(torch.randn(d, k, generator=g))[0]  # (d, k) orthonormal
    z = torch.randn(n, k, generator=g) * torch.tensor([1.0, 0.6])
    return z @ basis.T + noise * torch.randn(n, d, generator=g)


def train(model: AE, x: torch.Tensor, steps: int, lr: float = 3e-3, batch: int = 256) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = gen(1)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=g)
        out = model.loss({"x": x[idx]})
        opt.zero_grad()
        out.loss.backward()
        opt.step()


@pytest.mark.parametrize("level", [0.1, 0.4])
def test_masking_noise_sets_a_fraction_to_off(level: float) -> None:
    model = DAE(DAEConfig(noise="masking", noise_level=level, latent_dim=2), IMAGES)
    x = torch.rand(400, 1, 8, 8, generator=gen(0)) * 1.8 - 0.9  # never exactly -1
    y = model.corrupt(x, gen(1))
    changed = y != x
    n = changed.numel()
    assert abs(changed.float().mean().item() - level) < 4 * math.sqrt(level * (1 - level) / n)
    assert torch.all(y[changed] == -1.0)  # "off" is black, the low end of the image range
    pts = DAE(
        DAEConfig(noise="masking", noise_level=level, latent_dim=1), DataInfo("p", "points", (2,))
    )
    xp = torch.randn(1000, 2, generator=gen(2)) + 5.0
    yp = pts.corrupt(xp, gen(3))
    assert torch.all(yp[yp != xp] == 0.0)  # points: masked to 0


def test_salt_and_pepper_sets_a_fraction_to_either_extreme() -> None:
    level = 0.3
    model = DAE(DAEConfig(noise="salt_pepper", noise_level=level, latent_dim=2), IMAGES)
    x = torch.rand(400, 1, 8, 8, generator=gen(0)) * 1.8 - 0.9
    y = model.corrupt(x, gen(1))
    changed = y != x
    n = changed.numel()
    assert abs(changed.float().mean().item() - level) < 4 * math.sqrt(level * (1 - level) / n)
    vals = y[changed]
    assert torch.all((vals == -1.0) | (vals == 1.0))
    salt = (vals == 1.0).float().mean().item()
    assert abs(salt - 0.5) < 4 * math.sqrt(0.25 / vals.numel())


def test_gaussian_noise_is_additive_with_the_given_std() -> None:
    model = DAE(DAEConfig(noise="gaussian", noise_level=0.2, latent_dim=2), IMAGES)
    x = torch.rand(400, 1, 8, 8, generator=gen(0)) * 2 - 1
    resid = model.corrupt(x, gen(1)) - x
    assert abs(resid.mean().item()) < 4 * 0.2 / math.sqrt(resid.numel())
    assert resid.std().item() == pytest.approx(0.2, rel=0.02)
    ae = AE(AEConfig(latent_dim=2), IMAGES)
    assert ae.corrupt(x, gen(1)) is x  # the plain AE sees its input as is


def test_loss_is_the_mse_of_reconstructing_the_clean_input_from_the_corrupted_one() -> None:
    info = DataInfo("p", "points", (5,))
    x = torch.randn(32, 5, generator=gen(0))
    model = DAE(DAEConfig(noise="salt_pepper", noise_level=0.5, latent_dim=2, hidden=(16,)), info)
    torch.manual_seed(3)
    out = model.loss({"x": x})
    torch.manual_seed(3)
    x_tilde = model.corrupt(x)
    expected = (model.decode_latent(model.encode_latent(x_tilde)) - x).pow(2).mean()
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(out.logs["mse"], expected.detach())
    # it is not the error of reconstructing the clean input from itself
    assert not torch.allclose(out.loss, (model(x) - x).pow(2).mean())


def test_linear_autoencoder_reaches_the_pca_reconstruction_error() -> None:
    """Baldi & Hornik (1989): the optimum of a linear AE spans the principal subspace, so its
    mean squared error converges to PCA's, the minimum over rank-K reconstructions."""
    torch.manual_seed(0)
    x = subspace_data(2000, noise=0.1)
    k = 2
    pca = PCA(PCAConfig(latent_dim=k), DataInfo("p", "points", (8,))).fit(x)
    floor = pca.reconstruction_error(x).mean().item() / 8  # per dimension
    model = AE(AEConfig(latent_dim=k, hidden=()), DataInfo("p", "points", (8,)))
    train(model, x, steps=1500, lr=1e-2)
    with torch.no_grad():
        mse = (model(x) - x).pow(2).mean().item()
    assert floor <= mse * (1 + 1e-4), (mse, floor)  # PCA is the minimum
    assert mse < 1.02 * floor, (mse, floor)
    # and a K - 1 dimensional code cannot get there
    pca1 = PCA(PCAConfig(latent_dim=1), DataInfo("p", "points", (8,))).fit(x)
    assert pca1.reconstruction_error(x).mean().item() / 8 > 1.5 * mse


def test_denoising_autoencoder_denoises() -> None:
    torch.manual_seed(0)
    x = subspace_data(2000, noise=0.02)
    info = DataInfo("p", "points", (8,))
    model = DAE(DAEConfig(latent_dim=2, hidden=(64,), noise="gaussian", noise_level=0.3), info)
    train(model, x, steps=600)
    model.eval()
    with torch.no_grad():
        noisy = model.corrupt(x, gen(5))
        before = (noisy - x).pow(2).mean().item()
        after = (model(noisy) - x).pow(2).mean().item()
    assert after < 0.25 * before, (before, after)  # 6 of 8 noise directions are projected out


def test_code_prior_is_a_moving_average_of_training_codes_and_sampling_uses_it() -> None:
    info = DataInfo("p", "points", (3,))
    model = AE(AEConfig(latent_dim=2, hidden=(8,), prior_momentum=0.25), info)
    x = torch.randn(50, 3, generator=gen(0))
    model.train()
    model.loss({"x": x})
    with torch.no_grad():
        z = model.encode_latent(x)
    torch.testing.assert_close(model.code_mean, 0.25 * z.mean(0))
    torch.testing.assert_close(model.code_cov, 0.75 * torch.eye(2) + 0.25 * torch.cov(z.T))
    model.eval()
    with torch.no_grad():
        model.loss({"x": x + 10})  # evaluation leaves the prior alone
    torch.testing.assert_close(model.code_mean, 0.25 * z.mean(0))
    with torch.no_grad():
        model.code_mean.fill_(0.5)
        model.code_cov.copy_(torch.tensor([[0.04, 0.0], [0.0, 0.01]]))
        s = model.sample(4, generator=gen(1))
        z = 0.5 + torch.randn(4, 2, generator=gen(1)) * torch.tensor([0.2, 0.1])
        ref = model.decode_latent(z)
    torch.testing.assert_close(s, ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        model.sample(4, generator=gen(1), temperature=0.0)[0],
        model.decode_latent(torch.full((1, 2), 0.5))[0],
    )


@pytest.mark.parametrize(
    ("kind", "shape", "arch"),
    [("points", (2,), "mlp"), ("images", (1, 8, 8), "conv"), ("images", (3, 32, 32), "conv")],
)
@pytest.mark.parametrize("cls", [AE, DAE])
def test_shapes(kind: str, shape: tuple[int, ...], arch: str, cls: type[AE]) -> None:
    info = DataInfo("t", kind, shape, levels=None if kind == "points" else 256)
    model = cls(cls.config_class(latent_dim=3), info)
    assert model.arch == arch
    x = torch.rand(2, *shape, generator=gen(0)) * 2 - 1
    assert model.encode_latent(x).shape == (2, 3)
    assert model(x).shape == (2, *shape)
    s = model.sample(5, generator=gen(1))
    assert s.shape == (5, *shape)
    metrics = model.eval_metrics({"x": x}, generator=gen(2))
    assert set(metrics) == {"loss", "mse"} and metrics["mse"].shape == (2,)
    if kind == "images":
        assert s.min() >= -1 and s.max() <= 1


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="noise"):
        DAEConfig.from_dict({"noise": "dropout"})
    with pytest.raises(ConfigError, match=r"noise_level = 1\.5"):
        DAEConfig.from_dict({"noise": "masking", "noise_level": 1.5})
    assert DAEConfig.from_dict({"noise": "gaussian", "noise_level": 1.5}).noise_level == 1.5
    with pytest.raises(ConfigError, match="conv"):
        AE(AEConfig(arch="conv"), DataInfo("p", "points", (2,)))
    with pytest.raises(ConfigError, match="temperature"):
        AE(AEConfig(latent_dim=1), DataInfo("p", "points", (2,))).sample(2, noise=True)
    assert AE.name == "ae" and DAE.name == "dae" and likelihood_kind(AE) == "none"
    assert issubclass(DAE, Samples) and issubclass(DAE, LatentSpace)
    assert AE.latent_prior == "euclidean"
