"""VQ-GAN (arXiv:2012.09841): the adaptive weight of Eq. (7) against its closed form and on the
model, the straight-through gradient through the whole model, perplexity bounds, the loss before
the discriminator starts (the VQ-VAE's plus the perceptual term), the runs layer's feature network,
and latent diffusion over a VQ-GAN run."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import entropy
from torch import nn

import genzoo
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import LatentSpace
from genzoo.data.base import DataInfo
from genzoo.metrics.classifier import SmallCNN
from genzoo.models.autoencoders import VQGAN, VQVAE, VQGANConfig, VQVAEConfig
from genzoo.models.autoencoders.base import DiscreteCodes
from genzoo.models.autoencoders.vqgan import adaptive_weight, last_layer_weight
from genzoo.models.diffusion.ldm import LatentDiffusion
from genzoo.nn.perceptual import FeatureTaps, perceptual_distance
from genzoo.nn.quantizer import code_statistics
from genzoo.runs.perceptual import stage_ends

INFO = DataInfo("digits", "images", (1, 8, 8), levels=17, n_classes=10)
TINY = {"codebook_size": 16, "code_dim": 4, "width": 8, "res_blocks": 1, "d_width": 8}


def feature_net(seed: int = 0) -> FeatureTaps:
    torch.manual_seed(seed)
    body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1))
    return FeatureTaps(body, [1, 2])


def tiny_vqgan(**kw) -> VQGAN:
    torch.manual_seed(0)
    return VQGAN(VQGANConfig(**{**TINY, **kw}), INFO, features=feature_net())


def images(n: int = 6, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g) * 2 - 1


# --------------------------------------------------------------------------------------------------
# Eq. (7)


def test_adaptive_weight_equals_its_closed_form_on_a_linear_layer() -> None:
    """``y = x W``; ``rec = |y - t|^2`` has ``grad_W = 2 x^T (y - t)``, ``adv = sum(y a)`` has
    ``grad_W = x^T 1 a^T``: lambda is the ratio of their Frobenius norms."""
    g = torch.Generator().manual_seed(0)
    x, t, a = torch.randn(5, 3, generator=g), torch.randn(5, 2, generator=g), torch.randn(2)
    w = torch.randn(3, 2, generator=g, requires_grad=True)
    y = x @ w
    rec, adv = (y - t).pow(2).sum(), (y @ a).sum()
    grad_rec = 2 * x.T @ (y - t).detach()
    grad_adv = x.T @ torch.ones(5, 1) @ a[None]
    want = grad_rec.norm() / (grad_adv.norm() + 1e-6)
    got = adaptive_weight(rec, adv, w, delta=1e-6)
    torch.testing.assert_close(got, want)
    assert not got.requires_grad
    # a generator loss that does not depend on W: lambda is clamped at max_weight
    flat = adaptive_weight((y - t).pow(2).sum(), (y * 0).sum(), w, max_weight=7.0)
    assert float(flat) == 7.0


def test_generator_loss_is_vq_vae_plus_perceptual_before_disc_start_then_adds_lambda_adv() -> None:
    model = tiny_vqgan(disc_start=2, perceptual=0.5, disc_weight=0.8).eval()
    x = images()
    # the VQ-VAE with the same encoder, decoder and codebook
    vq_cfg = VQVAEConfig(**{k: v for k, v in TINY.items() if k != "d_width"})
    vqvae = VQVAE(vq_cfg, INFO).eval()
    shared = {k: v for k, v in model.state_dict().items() if k.split(".")[0] in vqvae._modules}
    vqvae.load_state_dict(shared)  # strict: the VQ-GAN holds every VQ-VAE weight
    off = model.loss({"x": x}, "g")
    x_hat = vqvae(x)
    net = feature_net()
    perc = perceptual_distance(net(x_hat), net(x)).mean()
    want = vqvae.loss({"x": x}).loss + 0.5 * perc
    torch.testing.assert_close(off.loss, want)
    assert off.logs["disc_on"] == 0.0
    d_params = list(model.discriminator.parameters())
    grads = torch.autograd.grad(off.loss, d_params, allow_unused=True)
    assert all(g is None for g in grads)  # no adversarial term: D is not in the graph
    d_off = model.loss({"x": x}, "d")
    assert float(d_off.loss.detach()) == 0.0  # D does not train before disc_start
    # after disc_start: total = L_VQ + disc_weight * lambda * L_GAN with lambda of Eq. (7)
    model.step.fill_(2)
    on = model.loss({"x": x}, "g")
    assert on.logs["disc_on"] == 1.0
    x_hat, _ = model.reconstruct(x)
    rec = (
        ((x_hat - x) ** 2).flatten(1).mean(1) + 0.5 * perceptual_distance(net(x_hat), net(x))
    ).mean()
    adv = (-model.discriminator(x_hat)).flatten(1).mean(1).mean()  # hinge G loss: -D
    last = last_layer_weight(model.decoder)
    assert last is model.decoder[-1].weight
    (g_rec,) = torch.autograd.grad(rec, last, retain_graph=True)
    (g_adv,) = torch.autograd.grad(adv, last)
    lam = g_rec.norm() / (g_adv.norm() + model.config.delta)
    torch.testing.assert_close(on.logs["adaptive_weight"], lam)
    torch.testing.assert_close(on.loss, off.loss + 0.8 * lam * adv.detach())


def test_straight_through_gradient_is_the_identity_through_the_model() -> None:
    """d L / d z_e equals d L / d z_q for the whole generator loss (perceptual and adversarial
    terms included): the quantizer passes the decoder's gradient to the encoder unchanged."""
    model = tiny_vqgan(disc_start=0).eval()
    x = images()
    z_e = model.encode_latent(x)
    q = model.quantizer(model._to_vectors(z_e))
    x_hat = model._decode_quantized(model._from_vectors(q.z_q, x.shape[0]))
    loss = (
        ((x_hat - x) ** 2).mean()
        + perceptual_distance(model._features(x_hat), model._features(x)).mean()
        - model.discriminator(x_hat).mean()
    )
    g_e, g_q = torch.autograd.grad(loss, [z_e, q.z_q])
    torch.testing.assert_close(model._to_vectors(g_e), g_q, rtol=0, atol=0)
    assert g_q.abs().sum() > 0


# --------------------------------------------------------------------------------------------------
# perplexity and usage


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(1, 64),
    idx=st.lists(st.integers(0, 10**6), min_size=1, max_size=200),
)
def test_perplexity_is_at_most_the_codebook_size_and_exp_entropy(k: int, idx: list[int]) -> None:
    indices = torch.tensor(idx) % k
    counts, perplexity, usage = code_statistics(indices, k)
    assert 1.0 - 1e-5 <= float(perplexity) <= k * (1 + 1e-5)
    assert float(perplexity) <= float((counts > 0).sum()) * (1 + 1e-5)  # <= codes in use
    assert math.isclose(float(perplexity), math.exp(entropy(counts.numpy())), rel_tol=1e-5)
    assert math.isclose(float(usage), len(set(indices.tolist())) / k, rel_tol=1e-6)


@pytest.mark.parametrize("k", [1, 7, 64])
def test_uniform_usage_has_perplexity_equal_to_the_codebook_size(k: int) -> None:
    _, perplexity, usage = code_statistics(torch.arange(k).repeat(3), k)
    assert math.isclose(float(perplexity), k, rel_tol=1e-5) and float(usage) == 1.0


def test_model_logs_perplexity_within_the_codebook() -> None:
    out = tiny_vqgan().train().loss({"x": images(32)}, "g")
    assert 1.0 <= float(out.logs["perplexity"]) <= 16 and 0 < float(out.logs["usage"]) <= 1


# --------------------------------------------------------------------------------------------------
# feature network, errors


def test_feature_taps_and_the_perceptual_distance() -> None:
    net = SmallCNN(1, 10, 4)
    body = net.body
    assert isinstance(body, nn.Sequential)
    ends = stage_ends(body)
    assert len(ends) == 3 and all(isinstance(body[i], nn.ReLU) for i in ends)
    taps = FeatureTaps(body, ends).train()
    assert not taps.net.training and not any(p.requires_grad for p in taps.parameters())
    x = images()
    feats = taps(x)
    assert [f.shape[1] for f in feats] == [4, 8, 16]
    d = perceptual_distance(feats, taps(x))
    assert torch.equal(d, torch.zeros(6))
    # invariant to a positive rescaling of the features (channel-normalised), symmetric, >= 0
    y = images(seed=2)
    fy = taps(y)
    d_xy = perceptual_distance(feats, fy)
    torch.testing.assert_close(d_xy, perceptual_distance([3 * f for f in feats], fy))
    torch.testing.assert_close(d_xy, perceptual_distance(fy, feats))
    assert (d_xy > 0).all() and (d_xy <= 4 * 3).all()  # at most |u - v|^2 = 4 per layer


def test_bad_settings_are_one_sentence() -> None:
    with pytest.raises(ConfigError, match="vqgan needs images"):
        VQGAN(VQGANConfig(), DataInfo("toy2d:moons", "points", (2,)))
    bare = VQGAN(VQGANConfig(**TINY), INFO)
    with pytest.raises(ConfigError, match="perceptual=0"):
        bare.loss({"x": images()}, "g")
    assert float(VQGAN(VQGANConfig(**TINY, perceptual=0), INFO).loss({"x": images()}).loss) > 0
    with pytest.raises(ConfigError, match="'e'"):
        bare.loss({"x": images()}, "e")
    with pytest.raises(ConfigError, match="d_loss"):
        VQGANConfig.from_dict({"d_loss": "nope"})


# --------------------------------------------------------------------------------------------------
# runs: a VQ-GAN run, latent diffusion and a prior over it


@pytest.fixture(scope="module")
def vqgan_run(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    calls: list[str] = []

    def fake_network(data: str, *, root: str | None = None) -> FeatureTaps:
        calls.append(data)  # the runs layer's classifier, without training one in a test
        body = SmallCNN(1, 10, 4).body
        assert isinstance(body, nn.Sequential)
        return FeatureTaps(body, stage_ends(body))

    train_module = sys.modules["genzoo.runs.train"]  # (genzoo.runs.train is also the function)
    patch.setattr(train_module, "perceptual_network", fake_network)
    try:
        run = genzoo.train(
            "vqgan",
            "digits",
            steps=30,
            out=tmp_path_factory.mktemp("vqgan") / "vqgan",
            overrides={
                **TINY,
                "progress": False,
                "tensorboard": False,
                "disc_start": 15,
                "batch_size": 32,
                "lr": 2e-3,
                "log_every": 5,
                "n_samples": 8,
            },
        )
    finally:
        patch.undo()
    assert calls == ["digits"]
    return run


def test_vqgan_run_logs_the_schedule_and_reloads(vqgan_run) -> None:
    import json

    rows = [json.loads(r) for r in (vqgan_run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "g/disc_on" in r]
    assert rows[0]["g/disc_on"] == 0.0 and rows[-1]["g/disc_on"] == 1.0
    assert rows[-1]["g/adaptive_weight"] > 0 and rows[0]["g/adaptive_weight"] == 0
    assert all(1.0 <= r["g/perplexity"] <= 16 for r in rows)
    model = genzoo.load(vqgan_run)
    assert isinstance(model, VQGAN) and int(model.step) == 30
    assert isinstance(model, LatentSpace) and isinstance(model, DiscreteCodes)


def test_ldm_over_a_vqgan_run_trains_and_decodes_through_the_quantizer(vqgan_run, tmp_path):
    run = genzoo.train(
        "ldm",
        "digits",
        steps=8,
        out=tmp_path / "ldm",
        overrides={
            "progress": False,
            "tensorboard": False,
            "autoencoder_run": str(vqgan_run),
            "class_conditional": True,
            "channels": 8,
            "channel_mult": (1,),
            "batch_size": 32,
            "n_samples": 8,
            "latent_scale": 0.5,
            "ema_decay": 0.0,
        },
    )
    ldm = genzoo.load(run)
    assert isinstance(ldm, LatentDiffusion) and isinstance(ldm.autoencoder, VQGAN)
    vq = genzoo.load(vqgan_run)
    own = ldm.autoencoder.state_dict()
    assert all(torch.equal(own[k], v) for k, v in vq.state_dict().items())
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(6) % 10
    x = ldm.sample(6, cond=labels, generator=g, steps=4)
    assert x.shape == (6, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    # the pre-quantization latents of the LDM paper, decoded through the quantizer
    x0 = images()
    z = ldm.encode_latent(x0)
    assert z.shape == (6, *vq.latent_shape)
    torch.testing.assert_close(z, 0.5 * vq.encode_latent(x0))
    codes = vq.quantizer.nearest(vq._to_vectors(z / 0.5)).view(6, *vq.code_grid)
    torch.testing.assert_close(ldm.decode_latent(z), vq.decode_codes(codes).clamp(-1, 1))
    # the class condition reaches the latent denoiser (decoded samples of a model this short
    # may quantize to the same codes)
    zn = torch.randn(2, *ldm.noise_shape, generator=torch.Generator().manual_seed(3))
    sigma = torch.ones(2)
    with torch.no_grad():
        d0 = ldm.denoise(zn, sigma, torch.tensor([0, 0]))
        d7 = ldm.denoise(zn, sigma, torch.tensor([7, 7]))
    assert not torch.equal(d0, d7)


def test_vq_prior_over_a_vqgan_run(vqgan_run, tmp_path) -> None:
    from genzoo.models.autoregressive.vq_prior import VQPrior

    vq = genzoo.load(vqgan_run)
    prior = VQPrior(VQPrior.config_class.from_dict({"n_layer": 1, "n_embd": 16}), INFO, vqvae=vq)
    assert prior.n_codes == 16 and prior.grid == vq.code_grid
