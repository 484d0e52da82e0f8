"""Latent diffusion on a frozen VAE: trained on digits, the autoencoder stays unchanged."""

import pytest
import torch

import genzoo
from genzoo.core.errors import ConfigError
from genzoo.data import load_dataset
from genzoo.diffusion.samplers import run_sampler
from genzoo.models.diffusion.ldm import LatentDiffusion, LatentDiffusionConfig


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ldm") / "vae"
    return genzoo.train(
        "vae",
        "digits",
        steps=300,
        out=out,
        overrides={
            "progress": False,
            "tensorboard": False,
            "latent_dim": 4,
            "arch": "mlp",
            "hidden": (64,),
            "batch_size": 128,
            "lr": 2e-3,
        },
    )


def test_ldm_trains_on_frozen_latents_and_decodes_images(vae_run, tmp_path, fast_train):
    run = genzoo.train(
        "ldm",
        "digits",
        steps=400,
        out=tmp_path / "ldm",
        overrides={
            **fast_train,
            "autoencoder_run": str(vae_run),
            "hidden": (64, 64),
            "batch_size": 128,
            "ema_decay": 0.0,
            "lr": 2e-3,
            # VAE latents are close to N(0, I), for which EDM's c_skip x (the untrained net) is
            # already the optimal denoiser at sigma_data = 1; scaling them by 2 makes the
            # initial denoiser wrong so the loss has room to fall.
            "latent_scale": 2.0,
        },
    )
    ldm = genzoo.load(run)
    assert isinstance(ldm, LatentDiffusion)
    vae = genzoo.load(vae_run)
    # The autoencoder inside the trained LDM is bit-identical to the VAE run's weights.
    own = ldm.autoencoder.state_dict()
    for k, v in vae.state_dict().items():
        assert torch.equal(own[k], v), k
    assert not any(p.requires_grad for p in ldm.autoencoder.parameters())
    # The latent denoising loss went down: trained vs. untrained denoiser, same noise draws.
    test = load_dataset("digits", "test").all()["x"][:512]
    fresh = LatentDiffusion(ldm.config, ldm.info, autoencoder=ldm.autoencoder)
    with torch.no_grad():
        batch = {"x": test}
        trained_loss = ldm.eval_metrics(batch, generator=torch.Generator().manual_seed(0))["loss"]
        fresh_loss = fresh.eval_metrics(batch, generator=torch.Generator().manual_seed(0))["loss"]
    assert trained_loss.mean() < 0.85 * fresh_loss.mean(), (trained_loss.mean(), fresh_loss.mean())
    x = ldm.sample(16, generator=torch.Generator().manual_seed(1), steps=10)
    assert x.shape == (16, *ldm.info.shape) and x.min() >= -1 and x.max() <= 1
    # Sampling is the decoder applied to sampled latents.
    z = ldm.encode_latent(test[:8])
    assert z.shape == (8, 4)
    ref = vae.obs.mean(vae.likelihood_params(z / ldm.config.latent_scale)).clamp(-1, 1)
    assert torch.allclose(ldm.decode_latent(z), ref)


def test_ldm_needs_an_autoencoder_and_matching_shapes(vae_run):
    info = load_dataset("digits").info
    with pytest.raises(ConfigError, match="autoencoder_run"):
        LatentDiffusion(LatentDiffusionConfig(), info)
    other = load_dataset("toy2d:moons").info
    vae = genzoo.load(vae_run)
    with pytest.raises(ConfigError, match="shape"):
        LatentDiffusion(LatentDiffusionConfig(autoencoder_run=str(vae_run)), other, autoencoder=vae)


def test_ldm_gets_its_autoencoder_from_load_parts_and_never_reads_a_run(vae_run, tmp_path):
    """``load_parts`` asks the runs layer for ``autoencoder_run`` with ``autoencoder_ema``; the
    constructor reads nothing from disk (a run directory that does not exist is not opened), and
    sampling is the template: the decoder applied to sampled latents, with ``cuda_graph`` (a CPU
    fallback here) giving the same samples as the plain path."""
    asked = []

    def load_run(run, ema):
        asked.append((run, ema))
        return genzoo.load(run)

    cfg = LatentDiffusionConfig.from_dict({"autoencoder_run": str(vae_run), "hidden": [8]})
    parts = LatentDiffusion.load_parts(cfg, load_run)
    assert asked == [(str(vae_run), True)] and set(parts) == {"autoencoder"}
    LatentDiffusion.load_parts(cfg.replace(autoencoder_ema=False), load_run)
    assert asked[-1] == (str(vae_run), False)
    gone = cfg.replace(autoencoder_run=str(tmp_path / "no-such-run"))
    m = LatentDiffusion(gone, load_dataset("digits").info, **parts).eval()
    plain = m.sample(3, generator=torch.Generator().manual_seed(2), steps=3)
    fast = m.sample(3, generator=torch.Generator().manual_seed(2), steps=3, cuda_graph=True)
    torch.testing.assert_close(plain, fast, rtol=0, atol=0)
    g = torch.Generator().manual_seed(2)
    z = torch.randn(3, 4, generator=g) * m.prior_std(float(m.sampling_sigmas(3)[0]))
    zs = run_sampler("heun", m.denoise, z, m.sampling_sigmas(3), generator=g)
    torch.testing.assert_close(plain, m.decode_latent(zs), rtol=0, atol=0)
    with pytest.raises(ConfigError, match="latents"):
        m.inpaint(plain, torch.ones_like(plain))


def test_ldm_on_a_vqvae_diffuses_its_spatial_latents_with_a_unet(tmp_path, fast_train):
    """Over a conv VQ-VAE the latents are the encoder's grid before quantization; the denoiser is
    then a U-Net, and decoding a latent quantizes it: decode(encode(x)) is the VQ-VAE's own
    reconstruction of x."""
    from genzoo.nn.unet import UNet

    vq = genzoo.train(
        "vqvae",
        "digits",
        steps=30,
        out=tmp_path / "vq",
        overrides={**fast_train, "n_samples": 4},
    )
    over = {**fast_train, "autoencoder_run": str(vq), "channels": 16, "n_samples": 4}
    run = genzoo.train("ldm", "digits", steps=5, out=tmp_path / "ldm", overrides=over)
    ldm = genzoo.load(run)
    assert isinstance(ldm.net, UNet) and ldm.latent_info.kind == "images"
    vqvae = genzoo.load(vq)
    x = load_dataset("digits", "test").get(torch.arange(6))["x"]  # bin centres
    z = ldm.encode_latent(x)
    assert z.dim() == 4 and z.shape[0] == 6
    ref = vqvae.decode_latent(vqvae.encode_latent(x)).clamp(-1, 1)
    assert torch.allclose(ldm.decode_latent(z), ref, atol=1e-5)
    s = ldm.sample(4, generator=torch.Generator().manual_seed(0), steps=4)
    assert s.shape == (4, 1, 8, 8) and s.min() >= -1 and s.max() <= 1
