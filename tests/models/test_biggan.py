"""BigGAN (small): conditional BN, the orthogonal regulariser, truncation, the projection D, the
hierarchical latent, and the contract (sampling, bad options)."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import truncnorm
from torch import nn

from genzoo.core.errors import ConfigError
from genzoo.data.base import DataInfo
from genzoo.models.gans.biggan import BigGAN, BigGANConfig, orthogonal_penalty, truncated_normal
from genzoo.nn.biggan_nets import ConditionalBatchNorm2d
from genzoo.nn.diffaug import diff_augment

DIGITS = DataInfo("digits", "images", (1, 8, 8), levels=17, n_classes=10)
TINY = BigGANConfig(latent_dim=9, embed_dim=4, width=8)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_conditional_bn_with_one_class_is_batch_norm_with_that_class_affine() -> None:
    """Every example with the same conditioning vector: CBN = nn.BatchNorm2d whose weight and
    bias are that vector's gamma and beta (training mode, batch statistics)."""
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(5, 3)
    x = torch.randn(6, 5, 4, 4, generator=gen(1)) * 2 + 1
    c = torch.randn(1, 3, generator=gen(2)).expand(6, 3)  # one class for the whole batch
    gamma, beta = cbn.affine(c[:1])
    ref = nn.BatchNorm2d(5)
    with torch.no_grad():
        ref.weight.copy_(gamma[0])
        ref.bias.copy_(beta[0])
    torch.testing.assert_close(cbn(x, c), ref(x), rtol=1e-5, atol=1e-5)
    # and different classes in one batch get different affine maps
    c2 = torch.randn(6, 3, generator=gen(3))
    assert not torch.allclose(cbn(x, c2), ref(x), atol=1e-3)


def test_orthogonal_penalty_is_zero_for_orthogonal_rows_and_positive_otherwise() -> None:
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen(0), dtype=torch.float64))
    scaled = q * torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0, 0.1], dtype=torch.float64)[:, None]
    assert orthogonal_penalty(q).item() == pytest.approx(0.0, abs=1e-20)
    # BigGAN's variant leaves the row norms free (only off-diagonal Gram entries count)
    assert orthogonal_penalty(scaled).item() == pytest.approx(0.0, abs=1e-20)
    w = torch.randn(6, 3, 3, 3, generator=gen(1), dtype=torch.float64)  # a conv kernel
    flat = w.flatten(1)
    expected = ((flat @ flat.T) ** 2).sum() - (flat.pow(2).sum(1) ** 2).sum()
    assert orthogonal_penalty(w).item() == pytest.approx(expected.item(), rel=1e-10)
    assert orthogonal_penalty(w).item() > 0


@pytest.mark.parametrize("t", [0.1, 0.5, 2.0])
def test_truncated_z_lies_within_the_threshold_and_follows_the_truncated_normal(t) -> None:
    z = truncated_normal((20000,), t, gen(0))
    assert float(z.abs().max()) <= t
    # its variance is the truncated normal's (scipy), not the standard normal's
    assert float(z.var()) == pytest.approx(truncnorm(-t, t).var(), rel=0.05)


def test_sampling_with_truncation_and_its_bad_values() -> None:
    m = BigGAN(TINY, DIGITS).eval()
    x = m.sample(7, cond=torch.arange(7), generator=gen(0), truncation=0.5)
    assert x.shape == (7, 1, 8, 8) and float(x.abs().max()) <= 1.0
    for bad in (0, -1.0, "big"):
        with pytest.raises(ConfigError, match="truncation"):
            m.sample(2, truncation=bad)
    with pytest.raises(ConfigError, match="temperature"):
        m.sample(2, temperature=0.5)
    with pytest.raises(ConfigError, match="class labels"):
        m.sample(2, cond=torch.tensor([0, 10]))


@pytest.mark.parametrize("sn_head", [False, True])
def test_projection_discriminator_class_term_is_the_inner_product(sn_head) -> None:
    """D(x, y) - psi(phi(x)) = <embed(y), phi(x)> (arXiv:1802.05637), spectral norm on the body
    and, with sn_head, on psi and the embedding too."""
    m = BigGAN(TINY.replace(sn_head=sn_head), DIGITS).eval()
    d = m.discriminator
    x = torch.rand(5, 1, 8, 8, generator=gen(0)) * 2 - 1
    y = torch.tensor([0, 3, 3, 9, 1])
    phi = d.features(x)
    assert phi.shape == (5, 16)  # width * 2 after the two down blocks
    class_term = m.critic(x, y) - d.psi(phi).squeeze(1)
    torch.testing.assert_close(class_term, (d.embed(y) * phi).sum(1), rtol=1e-5, atol=1e-5)


def test_hierarchical_latent_reaches_every_block() -> None:
    """Changing only the chunk of z that feeds one block changes the output (each chunk is used),
    and the class changes it too (the shared embedding is used)."""
    m = BigGAN(TINY, DIGITS).eval()
    g = m.generator
    assert sum(g.chunks) == 9 and len(g.chunks) == len(g.blocks) + 1
    z = torch.randn(2, 9, generator=gen(0))
    y = torch.tensor([1, 2])
    base = m(z, y)
    start = 0
    for size in g.chunks:
        z2 = z.clone()
        z2[:, start : start + size] += 1.0
        assert not torch.allclose(m(z2, y), base, atol=1e-4)
        start += size
    assert not torch.allclose(m(z, torch.tensor([5, 6])), base, atol=1e-4)


def test_losses_and_orthogonal_term_in_g_step() -> None:
    m = BigGAN(TINY, DIGITS)
    batch = {"x": torch.rand(4, 1, 8, 8, generator=gen(0)) * 2 - 1, "y": torch.tensor([0, 1, 2, 3])}
    d = m.loss(batch, "d")
    g = m.loss(batch, "g")
    assert float(g.logs["ortho"]) > 0
    assert float(g.loss.detach()) == pytest.approx(
        float(g.logs["g_loss"]) + 1e-4 * float(g.logs["ortho"])
    )
    assert float(d.loss.detach()) >= 0  # hinge
    g.loss.backward()
    assert all(p.grad is None for p in m.discriminator.parameters())
    with pytest.raises(ConfigError, match="class-conditional"):
        BigGAN(TINY, DataInfo("u", "images", (1, 8, 8), levels=17))


def test_diffaug_reaches_d_on_real_and_fake_and_bad_policies_are_one_sentence() -> None:
    """With ``diffaug`` on, D's scores in both players' losses are those of augmented images (the
    same random draws reproduce them by hand); off, the losses score the images as they are."""
    torch.manual_seed(0)
    cfg = dict(width=4, embed_dim=4, latent_dim=8)
    m = BigGAN(BigGANConfig(diffaug="translation,cutout", **cfg), DIGITS)
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    y = torch.arange(6) % 10
    assert not torch.allclose(m.augmented_critic(x, y), m.critic(x, y))
    m.eval()  # spectral norm's power iteration and batch statistics stay fixed for the replay
    torch.manual_seed(1)
    out = m.loss({"x": x, "y": y}, "d")
    torch.manual_seed(1)  # the same draws: the fakes' latent, then the two augmentations
    with torch.no_grad():
        fake = m(m._latent(6), y)
    real_out = m.critic(diff_augment(x, m.policy), y)
    fake_out = m.critic(diff_augment(fake, m.policy), y)
    torch.testing.assert_close(out.logs["d_real"], real_out.mean().detach())
    torch.testing.assert_close(out.logs["d_fake"], fake_out.mean().detach())
    m.train()
    g = m.loss({"x": x, "y": y}, "g")
    g.loss.backward()
    assert all(p.grad is not None for p in m.generator.parameters())
    off = BigGAN(BigGANConfig(**cfg), DIGITS).eval()
    assert off.policy == () and torch.equal(off.augmented_critic(x, y), off.critic(x, y))
    with pytest.raises(ConfigError, match="not a DiffAugment policy"):
        BigGANConfig.from_dict({"diffaug": "colour"})
