"""Tests of the vector quantizer and VQ-VAE: the straight-through gradient, the EMA update against
its closed form, dead-code restarts, usage and perplexity, the loss, shapes and the Trainer logs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import entropy

import genzoo
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import LatentSpace, Samples, likelihood_kind
from genzoo.data.base import DataInfo
from genzoo.models.autoencoders import VQVAE, VQVAEConfig
from genzoo.nn.quantizer import VectorQuantizer, code_statistics


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def hand_quantizer(**kw) -> VectorQuantizer:
    """Three codes in the plane: (0, 0), (4, 0), (0, 4)."""
    q = VectorQuantizer(3, 2, **kw)
    with torch.no_grad():
        q.codebook.copy_(torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]))
        q.embed_sum.copy_(q.codebook)
    return q


def test_straight_through_gradient_is_the_gradient_at_the_quantized_point() -> None:
    torch.manual_seed(0)
    q = VectorQuantizer(8, 3)
    a = torch.randn(3, 5)

    def f(v: torch.Tensor) -> torch.Tensor:  # any smooth function of the quantized vectors
        return torch.sin(v @ a).pow(2).sum() + v.pow(3).sum()

    z = torch.randn(6, 3, requires_grad=True)
    q.eval()
    out = q(z)
    codes = q.codebook[out.indices]
    torch.testing.assert_close(out.z_q, codes, rtol=0, atol=1e-6)  # forward: the code itself
    (grad_z,) = torch.autograd.grad(f(out.z_q), z)
    at_code = codes.detach().clone().requires_grad_(True)
    (grad_code,) = torch.autograd.grad(f(at_code), at_code)
    torch.testing.assert_close(grad_z, grad_code)  # backward: the gradient at z_q, copied to z_e
    assert not torch.allclose(grad_code, torch.autograd.grad(f(z), z)[0])  # not the one at z_e
    # the commitment loss pulls z_e towards its code: d/dz mean((z - sg[e])^2) = 2 (z - e) / n
    (g_commit,) = torch.autograd.grad(q(z).commitment, z)
    torch.testing.assert_close(g_commit, 2 * (z - codes).detach() / z.numel())


def test_ema_update_equals_the_closed_form_on_a_hand_made_batch() -> None:
    g, eps = 0.9, 1e-5
    q = hand_quantizer(decay=g, eps=eps, dead_threshold=0.0)
    z = torch.tensor([[0.5, 0.0], [0.0, -1.0], [3.0, 1.0], [5.0, 1.0], [0.2, 0.2]])
    q.train()
    out = q(z)
    assert out.indices.tolist() == [0, 0, 1, 1, 0]  # by hand: nearest of (0,0), (4,0), (0,4)
    counts = torch.tensor([3.0, 2.0, 0.0])
    sums = torch.tensor([[0.7, -0.8], [8.0, 2.0], [0.0, 0.0]])
    n_ema = g * torch.ones(3) + (1 - g) * counts  # Eq. (6), counts start at 1
    m_ema = g * torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]) + (1 - g) * sums  # Eq. (7)
    n = n_ema.sum()
    smoothed = (n_ema + eps) / (n + 3 * eps) * n  # Laplace smoothing
    torch.testing.assert_close(q.cluster_size, n_ema)
    torch.testing.assert_close(q.embed_sum, m_ema)
    torch.testing.assert_close(q.codebook, m_ema / smoothed[:, None])  # Eq. (8)
    # the output used the codebook before the update; the commitment is the mean squared gap
    old = torch.tensor([[0.0, 0.0], [0.0, 0.0], [4.0, 0.0], [4.0, 0.0], [0.0, 0.0]])
    torch.testing.assert_close(out.z_q, old)
    torch.testing.assert_close(out.commitment, (z - old).pow(2).mean())
    assert out.codebook_loss.item() == 0.0
    # evaluation and no-grad calls leave the codebook alone
    before = q.codebook.clone()
    q.eval()
    q(z)
    q.train()
    with torch.no_grad():
        q(z)
    torch.testing.assert_close(q.codebook, before)


def test_dead_codes_are_restarted_to_encoder_outputs() -> None:
    q = hand_quantizer(decay=0.5, dead_threshold=0.6)
    z = torch.tensor([[0.1, 0.0], [0.0, 0.2], [3.9, 0.1], [4.2, -0.1]])  # never near (0, 4)
    q.train()
    out = q(z, generator=gen(0))
    assert out.restarted == 1  # code 2: count 0.5 * 1 + 0.5 * 0 = 0.5 < 0.6
    new = q.codebook[2]
    assert any(torch.equal(new, row) for row in z)  # moved onto one of the batch's outputs
    assert q.cluster_size[2].item() == pytest.approx(0.6)
    torch.testing.assert_close(q.embed_sum[2], 0.6 * new)
    # the codes in use were not restarted
    assert q.cluster_size[0].item() == pytest.approx(1.5) and q.cluster_size[1].item() == 1.5
    # several dead codes get distinct encoder outputs
    q2 = VectorQuantizer(6, 2, dead_threshold=2.0, decay=0.5)
    q2.train()
    zz = torch.randn(10, 2, generator=gen(1))
    out2 = q2(zz, generator=gen(2))
    assert out2.restarted >= 4
    pre = 0.5 + 0.5 * torch.bincount(out2.indices, minlength=6).float()  # counts before restarts
    assert out2.restarted == int((pre < 2.0).sum())
    dead_rows = q2.codebook[pre < 2.0]
    assert len({tuple(r.tolist()) for r in dead_rows}) == dead_rows.shape[0]
    for r in dead_rows:
        assert (zz - r).abs().sum(1).min() == 0
    off = hand_quantizer(decay=0.5, dead_threshold=0.0)
    off.train()
    assert off(z).restarted == 0 and off.cluster_size[2].item() == pytest.approx(0.5)


def test_usage_and_perplexity_formulas() -> None:
    k = 8
    counts, perp, usage = code_statistics(torch.tensor([0, 0, 1, 1]), k)
    assert perp.item() == pytest.approx(2.0) and usage.item() == pytest.approx(2 / 8)
    assert counts.tolist() == [2, 2, 0, 0, 0, 0, 0, 0]
    _, perp, usage = code_statistics(torch.arange(8).repeat(3), k)
    assert perp.item() == pytest.approx(8.0) and usage.item() == 1.0  # uniform: all K codes
    _, perp, usage = code_statistics(torch.full((5,), 3), k)
    assert perp.item() == pytest.approx(1.0) and usage.item() == pytest.approx(1 / 8)
    idx = torch.randint(0, k, (50,), generator=gen(0)) % 5
    _, perp, usage = code_statistics(idx, k)
    freq = np.bincount(idx.numpy(), minlength=k) / 50
    assert perp.item() == pytest.approx(math.exp(entropy(freq)), rel=1e-5)
    assert usage.item() == pytest.approx((freq > 0).mean())


def test_codebook_loss_trains_the_codebook_without_ema() -> None:
    q = VectorQuantizer(4, 2, ema=False, dead_threshold=0.0)
    z = torch.randn(6, 2, generator=gen(0), requires_grad=True)
    out = q(z)
    e = q.codebook[out.indices].detach()
    torch.testing.assert_close(out.codebook_loss, (z.detach() - e).pow(2).mean())
    (g_code,) = torch.autograd.grad(out.codebook_loss, q.codebook, retain_graph=True)
    expected = torch.zeros_like(q.codebook).index_add_(0, out.indices, 2 * (e - z.detach()) / 12)
    torch.testing.assert_close(g_code, expected)
    assert torch.autograd.grad(out.codebook_loss, z, allow_unused=True)[0] is None  # sg[z_e]


def test_vqvae_loss_and_reconstruction_paths_agree() -> None:
    info = DataInfo("img", "images", (1, 8, 8), levels=17)
    torch.manual_seed(0)
    model = VQVAE(VQVAEConfig(codebook_size=16, code_dim=4, width=8, beta=0.5), info)
    assert model.latent_shape == (4, 4, 4)  # one stride-2 stage under 16 px
    x = torch.rand(5, 1, 8, 8, generator=gen(0)) * 2 - 1
    model.eval()
    out = model.loss({"x": x})
    codes = model.encode_codes(x)
    assert codes.shape == (5, 4, 4) and codes.dtype == torch.long
    rec = model.decode_codes(codes)
    torch.testing.assert_close(rec, model(x))
    z_e = model.encode_latent(x)
    e = model.quantizer.lookup(codes).permute(0, 3, 1, 2)  # (B, h, w, d) -> (B, d, h, w)
    expected = (rec - x).pow(2).mean() + 0.5 * (z_e - e).pow(2).mean()
    torch.testing.assert_close(out.loss, expected)
    assert {"mse", "commitment", "perplexity", "usage", "restarted"} <= set(out.logs)
    s = model.sample(3, generator=gen(1))
    assert s.shape == (3, 1, 8, 8) and s.min() >= -1 and s.max() <= 1
    pts = VQVAE(VQVAEConfig(tokens=3, code_dim=2, hidden=(16,)), DataInfo("p", "points", (2,)))
    xp = torch.randn(4, 2)
    assert pts.encode_codes(xp).shape == (4, 3) and pts(xp).shape == (4, 2)
    assert pts.encode_latent(xp).shape == (4, 3, 2) and pts.sample(2).shape == (2, 2)
    big = VQVAE(
        VQVAEConfig(width=8, res_blocks=1), DataInfo("m", "images", (1, 28, 28), levels=256)
    )
    assert big.latent_shape == (16, 7, 7) and big(torch.zeros(1, 1, 28, 28)).shape == (1, 1, 28, 28)


def test_vqvae_trains_and_logs_codebook_usage(tmp_path, fast_train) -> None:
    over = {**fast_train, "codebook_size": 32, "width": 16, "res_blocks": 1, "log_every": 20}
    run = genzoo.train("vqvae", "digits", steps=60, out=tmp_path / "v", overrides=over)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "mse" in r]
    assert {"perplexity", "usage", "restarted", "commitment"} <= set(rows[-1])
    assert rows[-1]["mse"] < 0.5 * rows[0]["mse"], rows
    assert 1.0 < rows[-1]["perplexity"] <= 32 and 0 < rows[-1]["usage"] <= 1
    assert rows[0]["restarted"] > 0  # the first steps move unused codes onto the data
    res = genzoo.evaluate(run)
    assert {"loss", "mse", "perplexity"} <= set(res)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="codebook_size = 0"):
        VQVAEConfig.from_dict({"codebook_size": 0})
    with pytest.raises(ConfigError, match=r"decay = 1\.0"):
        VQVAEConfig.from_dict({"decay": 1.0})
    with pytest.raises(ConfigError, match="conv"):
        VQVAE(VQVAEConfig(arch="conv"), DataInfo("p", "points", (2,)))
    with pytest.raises(ConfigError, match="temperature"):
        VQVAE(VQVAEConfig(hidden=(8,)), DataInfo("p", "points", (2,))).sample(1, temperature=1)
    assert VQVAE.name == "vqvae" and likelihood_kind(VQVAE) == "none"
    assert issubclass(VQVAE, Samples) and issubclass(VQVAE, LatentSpace)
    assert VQVAE.latent_prior == "euclidean"
