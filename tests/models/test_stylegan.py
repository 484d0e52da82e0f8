"""ProGAN, StyleGAN2 and DiffAugment: the layers against plain convolutions and closed forms,
fade-in at its ends, the growth schedule across a resume, truncation, and DiffAugment's
identity, shapes and gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import genzoo
from genzoo.core.errors import ConfigError
from genzoo.data.base import DataInfo
from genzoo.models.gans import (
    GAN,
    GANConfig,
    HingeSN,
    HingeSNConfig,
    ProGAN,
    ProGANConfig,
    StyleGAN2,
    StyleGAN2Config,
)
from genzoo.models.gans.progan import growth
from genzoo.nn import diffaug
from genzoo.nn.style_layers import (
    EqualConv2d,
    EqualLinear,
    MinibatchStdDev,
    PixelNorm,
    modulate_weights,
    modulated_conv2d,
)
from genzoo.train.checkpoint import find_checkpoint, read_checkpoint

DIGITS = DataInfo("digits", "images", (1, 8, 8), levels=17, n_classes=10)
MNIST = DataInfo("mnist5k", "images", (1, 28, 28), levels=256, n_classes=10)
TINY_SG = {"width": 8, "latent_dim": 8, "mapping_layers": 2}
TINY_PG = {"width": 8, "latent_dim": 8}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------------
# layers


def test_modulated_conv_with_unit_styles_and_no_demodulation_is_a_plain_conv() -> None:
    x = torch.randn(3, 5, 7, 7, generator=gen(0), dtype=torch.float64)
    w = torch.randn(4, 5, 3, 3, generator=gen(1), dtype=torch.float64)
    ones = torch.ones(3, 5, dtype=torch.float64)
    ref = F.conv2d(x, w, padding=1)
    torch.testing.assert_close(modulated_conv2d(x, w, ones, demodulate=False, padding=1), ref)
    # and with any styles it is the plain conv of the per-example modulated weights (Eq. (1)-(3))
    s = torch.rand(3, 5, generator=gen(2), dtype=torch.float64) + 0.5
    for demod in (False, True):
        wts = modulate_weights(w, s, demod)  # (B, O, I, k, k)
        per_ex = torch.cat([F.conv2d(x[i : i + 1], wts[i], padding=1) for i in range(3)])
        torch.testing.assert_close(modulated_conv2d(x, w, s, demod, padding=1), per_ex)


def test_demodulated_weights_have_unit_norm_per_output_channel() -> None:
    w = torch.randn(6, 4, 3, 3, generator=gen(0), dtype=torch.float64) * 3
    s = torch.rand(5, 4, generator=gen(1), dtype=torch.float64) * 4
    norms = modulate_weights(w, s, demodulate=True, eps=0.0).pow(2).sum(dim=(2, 3, 4)).sqrt()
    torch.testing.assert_close(norms, torch.ones(5, 6, dtype=torch.float64))
    # without demodulation the norms are those of s_i w_ijk, not 1
    raw = modulate_weights(w, s, demodulate=False).pow(2).sum(dim=(2, 3, 4)).sqrt()
    assert (raw - 1).abs().max() > 0.5


def test_equalised_lr_scale_is_sqrt_2_over_fan_in() -> None:
    conv = EqualConv2d(5, 7, 3)
    assert conv.scale == pytest.approx(math.sqrt(2 / (5 * 3 * 3)), rel=1e-12)
    x = torch.randn(2, 5, 6, 6, generator=gen(0))
    ref = F.conv2d(x, conv.weight * math.sqrt(2 / 45), conv.bias, padding=1)
    torch.testing.assert_close(conv(x), ref)
    lin = EqualLinear(12, 3)
    assert lin.scale == pytest.approx(math.sqrt(2 / 12), rel=1e-12)
    # the stored weights are N(0, 1): the scale, not the init, sets the layer's magnitude
    big = EqualConv2d(64, 64, 3)
    assert big.weight.std().item() == pytest.approx(1.0, abs=0.05)


def test_pixel_norm_and_minibatch_stddev() -> None:
    x = torch.randn(4, 6, 3, 3, generator=gen(0), dtype=torch.float64) * 5
    y = PixelNorm(eps=0.0)(x)
    torch.testing.assert_close(y.pow(2).mean(1), torch.ones(4, 3, 3, dtype=torch.float64))
    out = MinibatchStdDev(group_size=4, eps=0.0)(x)
    assert out.shape == (4, 7, 3, 3)
    expected = x.std(dim=0, unbiased=False).mean()  # one group of 4: the mean std of features
    torch.testing.assert_close(out[:, 6], expected.expand(4, 3, 3))


# --------------------------------------------------------------------------------------------------
# StyleGAN2


def test_truncation_psi_zero_returns_the_mean_w() -> None:
    m = StyleGAN2(StyleGAN2Config(**TINY_SG), DIGITS)
    m.w_avg.copy_(torch.randn(8, generator=gen(0)))
    z = torch.randn(5, 8, generator=gen(1))
    torch.testing.assert_close(m.mapped(z, 0.0), m.w_avg.expand(5, 8))
    torch.testing.assert_close(m.mapped(z, 1.0), m.mapping(z))
    half = m.mapped(z, 0.5)
    torch.testing.assert_close(half, 0.5 * (m.mapping(z) + m.w_avg))
    # psi = 0 samples are all the one image of the mean w (noise off by zero strength at init)
    x = m.sample(4, generator=gen(2), truncation=0.0)
    torch.testing.assert_close(x, x[:1].expand_as(x))


def test_truncation_outside_unit_interval_is_one_sentence() -> None:
    m = StyleGAN2(StyleGAN2Config(**TINY_SG), DIGITS)
    for bad in (1.5, -0.1, "x"):
        with pytest.raises(ConfigError, match=r"truncation = .* choose psi in \[0, 1\]"):
            m.sample(2, truncation=bad)  # type: ignore[arg-type]


def test_style_mixing_and_w_avg_tracking() -> None:
    """With mixing_prob = 1 every training example switches from one w to another at a crossover
    inside the layers; with 0 all layers share one w. G's step moves w_avg towards mean w."""
    torch.manual_seed(0)
    m = StyleGAN2(StyleGAN2Config(**TINY_SG, mixing_prob=1.0), MNIST)
    ws = m._mixed_ws(16)  # (16, n_ws, w_dim)
    assert m.n_ws == 8 and ws.shape == (16, 8, 8)
    changes = (ws[:, 1:] != ws[:, :-1]).any(2).sum(1)  # (16,) switches between layers
    assert (changes == 1).all()
    m0 = StyleGAN2(StyleGAN2Config(**TINY_SG, mixing_prob=0.0), MNIST)
    ws0 = m0._mixed_ws(4)
    torch.testing.assert_close(ws0, ws0[:, :1].expand_as(ws0))
    before = m0.w_avg.clone()
    m0.loss({"x": torch.zeros(4, 1, 28, 28)}, "g")
    assert not torch.equal(before, m0.w_avg) and int(m0.g_steps) == 1


def test_mixing_grid_rows_take_coarse_styles_from_a() -> None:
    m = StyleGAN2(StyleGAN2Config(**TINY_SG), DIGITS)
    grid = m.mixing_grid(2, 3, crossover=m.n_ws, generator=gen(0))
    assert grid.shape == (12, 1, 8, 8)
    # crossover = n_ws: every cell of a row is its source A, whatever the column
    for r in (1, 2):
        row = grid[4 * r : 4 * r + 4]
        torch.testing.assert_close(row[1:], row[:1].expand(3, -1, -1, -1))
    with pytest.raises(ConfigError, match="crossover = 99"):
        m.mixing_grid(1, 1, crossover=99)


def test_lazy_r1_and_path_length_run_on_their_steps_only() -> None:
    torch.manual_seed(0)
    m = StyleGAN2(StyleGAN2Config(**TINY_SG, r1_every=3, pl_every=2), DIGITS)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    r1_steps = [i for i in range(6) if "r1" in m.loss({"x": x}, "d").logs]
    pl_steps = [i for i in range(4) if "pl" in m.loss({"x": x}, "g").logs]
    assert r1_steps == [0, 3] and pl_steps == [0, 2]
    assert int(m.d_steps) == 6 and int(m.g_steps) == 4 and float(m.pl_mean) > 0


def test_path_length_is_the_norm_of_the_jacobian_vector_product() -> None:
    """|J_w^T y| of Eq. (4) against the JVP-free closed form for one example: the gradient of
    <G(w), y> with respect to the stacked ws, summed over layers, averaged like the code."""
    torch.manual_seed(0)
    m = StyleGAN2(StyleGAN2Config(**TINY_SG), DIGITS).double()
    ws = m.broadcast(m.mapping(torch.randn(1, 8, dtype=torch.float64))).detach()
    ws.requires_grad_(True)
    got = m.path_lengths(ws, gen(3))
    g = gen(3)  # the noise images first, then y, from one generator (as path_lengths draws)
    img = m.synthesis(ws, g)
    y = torch.randn(img.shape, generator=g, dtype=torch.float64) / 8  # sqrt(H W) = 8
    jac = torch.autograd.functional.jacobian(lambda w: m.synthesis(w, gen(3)), ws)  # (img, ws)
    jty = (jac * y[..., None, None, None]).sum(dim=(0, 1, 2, 3))  # (1, n_ws, w_dim)
    torch.testing.assert_close(got, jty.pow(2).sum(2).mean(1).sqrt())


# audit of the StyleGAN2 recipe (issue 19): each property below is one the paper's code relies on


def test_lr_multiplier_scales_init_runtime_and_bias() -> None:
    """``lr_mul`` (mapping network, 0.01): stored weights N(0, 1/lr_mul^2), runtime scale
    lr_mul / sqrt(fan_in), bias stored / lr_mul; so the layer starts like a plain equalised one
    and one Adam step (beta1 = 0: lr * sign(grad)) moves the effective weights and biases by
    lr * lr_mul / sqrt(fan_in) and lr * lr_mul."""
    torch.manual_seed(0)
    lin = EqualLinear(256, 64, gain=1.0, lr_mul=0.01, bias_init=0.5).double()
    assert lin.weight.std().item() == pytest.approx(100.0, rel=0.03)
    eff = lambda: (lin.weight * lin.scale).detach().clone()  # noqa: E731
    before_w, before_b = eff(), (lin.bias * lin.lr_mul).detach().clone()
    assert before_w.std().item() == pytest.approx(1 / 16, rel=0.03)  # 1 / sqrt(256)
    torch.testing.assert_close(before_b, torch.full((64,), 0.5, dtype=torch.float64))
    lin(torch.randn(8, 256, generator=gen(1), dtype=torch.float64)).pow(2).sum().backward()
    with torch.no_grad():  # Adam's first step, by hand: lr * g / sqrt(g^2) = lr * sign(g)
        for p in lin.parameters():
            p -= 1e-3 * p.grad.sign()
    dw = (eff() - before_w).abs()
    db = (lin.bias * lin.lr_mul).detach() - before_b
    torch.testing.assert_close(dw, torch.full_like(dw, 1e-3 * 0.01 / 16), rtol=1e-6, atol=0)
    torch.testing.assert_close(db.abs(), torch.full_like(db, 1e-3 * 0.01), rtol=1e-6, atol=0)


def test_style_layers_start_as_the_paper_says() -> None:
    """Affine styles are 1 at w = 0 (bias init 1), noise strengths start at 0, and only the
    3 x 3 convolutions demodulate: scaling their weights leaves them unchanged, while tRGB's
    output scales with its weights."""
    torch.manual_seed(0)
    m = StyleGAN2(StyleGAN2Config(**TINY_SG), DIGITS)
    w0 = torch.zeros(2, 8)
    x = torch.randn(2, 8, 4, 4, generator=gen(0))
    for conv in m.synthesis.convs:
        torch.testing.assert_close(conv.conv.affine(w0), torch.ones(2, 8))
        assert conv.noise.strength.item() == 0.0 and conv.conv.demodulate
        ref = conv(x, w0)
        with torch.no_grad():
            conv.conv.weight.mul_(3.0)
        torch.testing.assert_close(conv(x, w0), ref)  # demodulated: scale-free
    for rgb in m.synthesis.to_rgb:
        torch.testing.assert_close(rgb.conv.affine(w0), torch.ones(2, 8))
        assert not rgb.conv.demodulate
        ref = rgb(x, w0) - rgb.bias[None, :, None, None]
        with torch.no_grad():
            rgb.conv.weight.mul_(3.0)
        torch.testing.assert_close(rgb(x, w0) - rgb.bias[None, :, None, None], 3 * ref)


def test_he_gain_is_applied_once_per_layer() -> None:
    """With N(0, 1) input, every equalised layer + LeakyReLU * sqrt(2) of D and of the mapping
    network keeps the second moment near 1 (E[lrelu(x)^2] * 2 = 1.04 for unit x); the sqrt(2)
    applied twice (in the layer and the activation) would double it at every layer."""
    from genzoo.nn.style_layers import lrelu

    torch.manual_seed(0)
    m = StyleGAN2(StyleGAN2Config(width=128, latent_dim=128, mapping_layers=4), DIGITS)
    d = m.discriminator
    h = torch.randn(8, 128, 32, 32, generator=gen(1))  # 32 x 32: little zero padding
    for layer in [d.blocks[0][0], d.blocks[0][1], d.conv]:
        x = h if layer is not d.conv else torch.cat([h, torch.randn(8, 1, 32, 32)], 1)
        assert lrelu(layer(x)).pow(2).mean().item() == pytest.approx(1.04, rel=0.1)
    v = torch.randn(512, 128 * 16, generator=gen(2))
    assert lrelu(d.fc(v)).pow(2).mean().item() == pytest.approx(1.04, rel=0.1)
    z = torch.randn(4096, 128, generator=gen(3))
    for layer in m.mapping.layers:
        assert lrelu(layer(z)).pow(2).mean().item() == pytest.approx(1.04, rel=0.1)


def test_minibatch_stddev_is_active_in_d() -> None:
    """D's logit of one example depends on the other examples of its group (minibatch stddev)
    and on no example of another group."""
    torch.manual_seed(0)
    m = StyleGAN2(StyleGAN2Config(**TINY_SG, mbstd_group=4), DIGITS)
    x = torch.rand(8, 1, 8, 8, generator=gen(0)) * 2 - 1
    y = x.clone()
    y[4] = -y[4]  # groups of 4 out of 8 are {0, 2, 4, 6} and {1, 3, 5, 7} (n mod B/G)
    out_x, out_y = m.critic(x), m.critic(y)
    assert ((out_x - out_y)[[0, 2, 6]].abs() > 1e-6).all()  # through the group's stddev only
    torch.testing.assert_close(out_x[[1, 3, 5, 7]], out_y[[1, 3, 5, 7]])


def test_regularisers_reach_only_their_player_with_lazy_weights() -> None:
    """D's step (with lazy R1) gives gradients to D alone, and its loss is the logistic loss
    plus gamma/2 * k * R1; G's step (with the path-length term) gives gradients to G alone."""
    m = StyleGAN2(StyleGAN2Config(**TINY_SG, r1=0.3, r1_every=5, pl_every=3), DIGITS)
    x = torch.rand(4, 1, 8, 8, generator=gen(0)) * 2 - 1
    groups = m.param_groups()
    torch.manual_seed(1)
    out = m.loss({"x": x}, "d")
    out.loss.backward()
    assert all(p.grad is None for p in groups["g"])
    assert all(p.grad is not None for p in groups["d"])
    torch.testing.assert_close(out.loss, out.logs["d_loss"] + 0.5 * 0.3 * 5 * out.logs["r1"])
    m.zero_grad(set_to_none=True)
    out = m.loss({"x": x}, "g")
    assert "pl" in out.logs
    out.loss.backward()
    assert all(p.grad is None for p in groups["d"])
    assert all(p.grad is not None for p in m.mapping.parameters())


# small-scale settings (issue 19): options the paper does not have, each a named departure


def test_affine_lr_multiplier_slows_only_the_style_affines() -> None:
    """``affine_lr_mul = 0.1`` leaves G's function at init unchanged and, after one Adam step
    (beta1 = 0: lr * sign(grad)), every style affine's effective bias has moved by lr * 0.1
    instead of lr, in the 3 x 3 layers and in tRGB alike, while every other parameter of G
    takes the same step as with the paper's multiplier 1."""
    x = torch.rand(4, 1, 8, 8, generator=gen(0)) * 2 - 1
    lr, moved, others = 1e-2, {}, {}
    for mul in (1.0, 0.1):
        torch.manual_seed(0)
        m = StyleGAN2(StyleGAN2Config(**TINY_SG, affine_lr_mul=mul, pl_weight=0.0), DIGITS)
        z = torch.randn(3, 8, generator=gen(1))
        if mul == 1.0:
            ref = m(z, generator=gen(2)).detach()
        else:  # same effective weights at init: the same images
            torch.testing.assert_close(m(z, generator=gen(2)), ref)
        affines = [c.conv.affine for c in [*m.synthesis.convs, *m.synthesis.to_rgb]]
        before = [(a.bias * a.lr_mul).detach().clone() for a in affines]
        torch.manual_seed(1)
        m.loss({"x": x}, "g").loss.backward()
        with torch.no_grad():  # Adam's first step, by hand: lr * g / sqrt(g^2) = lr * sign(g)
            for p in m.param_groups()["g"]:
                p -= lr * p.grad.sign()
        steps = [(a.bias * a.lr_mul).detach() - b for a, b in zip(affines, before, strict=True)]
        moved[mul] = torch.cat(steps)
        others[mul] = [
            p.detach().clone() for n, p in m.synthesis.named_parameters() if "affine" not in n
        ]
    torch.testing.assert_close(moved[1.0].abs(), torch.full_like(moved[1.0], lr), rtol=1e-4, atol=0)
    torch.testing.assert_close(
        moved[0.1].abs(), torch.full_like(moved[0.1], lr * 0.1), rtol=1e-4, atol=0
    )
    for a, b in zip(others[1.0], others[0.1], strict=True):
        torch.testing.assert_close(a, b)


def test_hinge_loss_variant_is_the_hinge_pair_and_bad_names_are_one_sentence() -> None:
    """``loss="hinge"``: D's loss is mean(relu(1 - D(x)) + relu(1 + D(G(z)))) and G's is
    -mean(D(G(z))) on the same fakes (R1 and path length off); an unknown name is refused."""
    m = StyleGAN2(StyleGAN2Config(**TINY_SG, loss="hinge", r1=0.0, pl_weight=0.0), DIGITS)
    x = torch.rand(4, 1, 8, 8, generator=gen(0)) * 3 - 1.5  # beyond [-1, 1]: hinge margins bite
    with torch.no_grad():
        m.discriminator.out.weight.mul_(20.0)  # logits beyond +-1, so the relus cut some terms
        torch.manual_seed(5)
        fake = m.synthesis(m._mixed_ws(4))
        real_out, fake_out = m.critic(x), m.critic(fake)
        torch.manual_seed(5)
        d = m.loss({"x": x}, "d").loss
        torch.manual_seed(5)
        g = m.loss({"x": x}, "g").loss
    assert (fake_out.abs() > 1).any() or (real_out.abs() > 1).any()
    want = (torch.relu(1 - real_out) + torch.relu(1 + fake_out)).mean()
    torch.testing.assert_close(d, want)
    torch.testing.assert_close(g, -fake_out.mean())
    assert not torch.allclose(
        d,
        torch.nn.functional.softplus(-real_out).mean()
        + torch.nn.functional.softplus(fake_out).mean(),
    )
    with pytest.raises(ConfigError, match="loss 'wgan' is not known; choose"):
        StyleGAN2Config.from_dict({"loss": "wgan"})


def test_dcgan_sn_discriminator_is_hinge_sn_s_discriminator() -> None:
    """``d_arch="dcgan-sn"`` builds the D of genzoo's hinge + SN GAN: its state (weights, spectral
    norm vectors) loads strictly into hinge + SN's D at the same width, and both give the same
    logits; the paper's residual D does not load."""
    torch.manual_seed(0)
    m = StyleGAN2(StyleGAN2Config(**TINY_SG, d_arch="dcgan-sn"), DIGITS)
    ref = HingeSN(HingeSNConfig(width=8), DIGITS)
    ref.discriminator.load_state_dict(m.discriminator.state_dict())  # strict
    x = torch.rand(5, 1, 8, 8, generator=gen(0)) * 2 - 1
    m.eval()  # no power iteration: the same stored u, v in both
    ref.eval()
    torch.testing.assert_close(m.critic(x), ref.discriminator(x))
    paper = StyleGAN2(StyleGAN2Config(**TINY_SG), DIGITS)
    with pytest.raises(RuntimeError):
        ref.discriminator.load_state_dict(paper.discriminator.state_dict())
    with pytest.raises(ConfigError, match="d_arch 'sn' is not known; choose"):
        StyleGAN2Config.from_dict({"d_arch": "sn"})


def test_d_mbstd_adds_the_group_stddev_map_to_the_dcgan_sn_discriminator() -> None:
    """``d_mbstd``: the "dcgan-sn" D's flattened features end with one map holding the mean
    stddev over the example's group (hand-computed here); an example's logit moves when another
    member of its group changes and not otherwise; off, it is hinge + SN's D as before (the same
    parameters with the same seed); with the paper's residual D it is one sentence."""
    torch.manual_seed(0)
    on = StyleGAN2(StyleGAN2Config(**TINY_SG, d_arch="dcgan-sn", d_mbstd=True), DIGITS)
    torch.manual_seed(0)
    off = StyleGAN2(StyleGAN2Config(**TINY_SG, d_arch="dcgan-sn", d_mbstd=False), DIGITS)
    torch.manual_seed(0)
    plain = StyleGAN2(StyleGAN2Config(**TINY_SG, d_arch="dcgan-sn"), DIGITS)
    for (k, a), (k2, b) in zip(off.state_dict().items(), plain.state_dict().items(), strict=True):
        assert k == k2
        torch.testing.assert_close(a, b)
    on.eval()  # no power iteration
    x = torch.rand(8, 1, 8, 8, generator=gen(0)) * 2 - 1
    body = on.discriminator.body
    h = body[:-2](x)  # (8, C, h, w) before the stddev map and the flatten
    c, hh, ww = h.shape[1:]
    feats = body(x)  # (8, (C + 1) h w)
    assert feats.shape == (8, (c + 1) * hh * ww)
    assert on.discriminator.psi.weight.shape == (1, (c + 1) * hh * ww)
    std_map = feats[:, c * hh * ww :]  # (8, h w)
    for i in range(8):
        group = [j for j in range(8) if j % 2 == i % 2]  # groups of 4 out of 8: n mod B/G
        g = h[group].double()  # (4, C, h, w)
        mean = g.mean(0)
        hand = (((g - mean) ** 2).mean(0) + 1e-8).sqrt().mean()  # mean stddev over the group
        torch.testing.assert_close(std_map[i].double(), hand.expand(hh * ww), rtol=1e-5, atol=1e-6)
    y = x.clone()
    y[4] = -y[4]  # a member of the group {0, 2, 4, 6}
    out_x, out_y = on.critic(x), on.critic(y)
    assert ((out_x - out_y)[[0, 2, 6]].abs() > 1e-6).all()
    torch.testing.assert_close(out_x[[1, 3, 5, 7]], out_y[[1, 3, 5, 7]])
    off.eval()
    base_x, base_y = off.critic(x), off.critic(y)  # without it: per-example logits
    torch.testing.assert_close(base_x[[0, 1, 2, 3, 5, 6, 7]], base_y[[0, 1, 2, 3, 5, 6, 7]])
    with pytest.raises(ConfigError, match="d_mbstd=true applies to d_arch='dcgan-sn' only"):
        StyleGAN2Config.from_dict({"d_mbstd": True})


def test_g_width_widens_only_the_synthesis_network() -> None:
    """``g_width`` sets the channels of the constant and of every styled convolution while D,
    the mapping net and the images keep theirs; ``None`` is ``width`` (the same parameters with
    the same seed); 0 is refused."""
    torch.manual_seed(0)
    base = StyleGAN2(StyleGAN2Config(**TINY_SG), DIGITS)
    torch.manual_seed(0)
    same = StyleGAN2(StyleGAN2Config(**TINY_SG, g_width=8), DIGITS)
    for (k, a), (k2, b) in zip(base.state_dict().items(), same.state_dict().items(), strict=True):
        assert k == k2
        torch.testing.assert_close(a, b)
    wide = StyleGAN2(StyleGAN2Config(**TINY_SG, d_arch="dcgan-sn", g_width=12), DIGITS)
    narrow = StyleGAN2(StyleGAN2Config(**TINY_SG, d_arch="dcgan-sn"), DIGITS)
    assert wide.synthesis.const.shape[1] == 12
    assert all(conv.bias.shape == (12,) for conv in wide.synthesis.convs)
    for a, b in ((wide.discriminator, narrow.discriminator), (wide.mapping, narrow.mapping)):
        assert {k: v.shape for k, v in a.state_dict().items()} == {
            k: v.shape for k, v in b.state_dict().items()
        }
    assert wide.sample(3, generator=gen(1)).shape == (3, 1, 8, 8)
    with pytest.raises(ConfigError, match="g_width"):
        StyleGAN2Config.from_dict({"g_width": 0})


def test_stylegan2_trains_through_the_one_trainer_and_samples_in_range(tmp_path, fast_train):
    over = {**fast_train, **TINY_SG, "batch_size": 8, "r1_every": 2, "pl_every": 2}
    run = genzoo.train("stylegan2", "digits", steps=4, out=tmp_path / "s", overrides=over)
    files, _ = read_checkpoint(find_checkpoint(run))
    assert int(files["model"]["g_steps"]) == 4 and int(files["model"]["d_steps"]) == 4
    x = genzoo.sample(run, 6, seed=0, truncation=0.7)
    assert x.shape == (6, 1, 8, 8) and torch.isfinite(x).all()
    assert x.min() >= -1 and x.max() <= 1


def test_stylegan2_refuses_points() -> None:
    points = DataInfo("toy2d:8gaussians", "points", (2,), value_range=(-4.0, 4.0))
    with pytest.raises(ConfigError, match="needs images"):
        StyleGAN2(StyleGAN2Config(), points)


# --------------------------------------------------------------------------------------------------
# ProGAN


def test_growth_schedule() -> None:
    assert growth(0, 3, 10) == (0, 1.0)
    assert growth(9, 3, 10) == (0, 1.0)
    assert growth(10, 3, 10) == (1, 0.0)
    assert growth(15, 3, 10) == (1, 0.5)
    assert growth(25, 3, 10) == (1, 1.0)
    assert growth(30, 3, 10) == (2, 0.0)
    assert growth(10**6, 3, 10) == (2, 1.0)
    assert growth(5, 1, 10) == (0, 1.0)


def test_fade_in_at_alpha_0_and_1_equals_the_old_and_the_new_path() -> None:
    torch.manual_seed(0)
    m = ProGAN(ProGANConfig(**TINY_PG), MNIST)
    g, d = m.generator, m.discriminator
    assert m.sizes == [(4, 4), (7, 7), (14, 14), (28, 28)]
    z = torch.randn(3, 8, generator=gen(0))
    for s in (1, 2, 3):
        old = F.interpolate(g(z, s - 1, 1.0), size=m.sizes[s], mode="nearest")
        torch.testing.assert_close(g(z, s, 0.0), old)
        new = g.to_rgb[s](g.block(g.features(z, s - 1), s))
        torch.testing.assert_close(g(z, s, 1.0), new)
        assert g(z, s, 1.0).shape == (3, 1, *m.sizes[s])
        # D: at alpha = 0 the new block is skipped (its input downsampled to the old size)
        x = torch.randn(4, 1, *m.sizes[s], generator=gen(s))
        torch.testing.assert_close(d(x, s, 0.0), d(F.adaptive_avg_pool2d(x, m.sizes[s - 1]), s - 1))
        h = F.leaky_relu(d.from_rgb[s](x), 0.2)  # ProGAN: plain LeakyReLU, He's gain in the layers
        full = d.block(h, s)
        for k in range(s - 1, 0, -1):
            full = d.block(full, k)
        h = F.leaky_relu(d.last_conv(d.mbstd(full)), 0.2)
        head = d.out(F.leaky_relu(d.fc(h.flatten(1)), 0.2)).squeeze(1)
        torch.testing.assert_close(d(x, s, 1.0), head)
    # real images blend the same way: alpha 0 is the previous size, upsampled
    x = torch.randn(2, 1, 28, 28, generator=gen(9))
    low = F.interpolate(F.adaptive_avg_pool2d(x, (14, 14)), size=(28, 28), mode="nearest")
    torch.testing.assert_close(m.real_at(x, 3, 0.0), low)
    torch.testing.assert_close(m.real_at(x, 3, 1.0), x)


def test_progan_resumes_mid_transition_at_the_same_alpha(tmp_path, fast_train) -> None:
    """A run stopped inside a fade-in resumes with the same (stage, alpha) and the same weights
    as a run that never stopped."""
    common = {**fast_train, **TINY_PG, "stage_steps": 4, "batch_size": 8, "log_every": 5}
    straight = genzoo.train("progan", "digits", steps=7, out=tmp_path / "a", overrides=common)
    half = genzoo.train("progan", "digits", steps=5, out=tmp_path / "b", overrides=common)
    m_half = genzoo.load(half, ema=False)
    assert m_half.growth() == (1, 0.25)  # killed here: stage 1 fading in  # type: ignore[attr-defined]
    genzoo.train(resume=half, steps=7, overrides=fast_train)
    a, b = genzoo.load(straight, ema=False), genzoo.load(half, ema=False)
    assert a.growth() == b.growth() == (1, 0.75)  # type: ignore[attr-defined]
    fa, _ = read_checkpoint(find_checkpoint(straight))
    fb, _ = read_checkpoint(find_checkpoint(half))
    for k, v in fa["model"].items():
        assert torch.equal(v, fb["model"][k]), k


def test_progan_samples_at_data_size_and_range() -> None:
    m = ProGAN(ProGANConfig(**TINY_PG), MNIST)
    x = m.sample(3, generator=gen(0))
    assert x.shape == (3, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    with pytest.raises(ConfigError, match="stage = 7 does not exist"):
        m.sample_at(torch.zeros(1, 8), 7)


# --------------------------------------------------------------------------------------------------
# DiffAugment


def test_diffaugment_off_is_identity_and_policies_keep_shapes_and_gradients() -> None:
    x = torch.randn(4, 3, 8, 8, generator=gen(0), requires_grad=True)
    assert diffaug.diff_augment(x, ()) is x
    assert diffaug.parse_policy("") == () and diffaug.parse_policy("none") == ()
    for policy in (("color",), ("translation",), ("cutout",), diffaug.POLICIES):
        y = diffaug.diff_augment(x, policy, generator=gen(1))
        assert y.shape == x.shape
        (g,) = torch.autograd.grad((y * torch.arange(y.numel()).view_as(y)).sum(), x)
        assert torch.isfinite(g).all() and g.abs().sum() > 0
    with pytest.raises(ConfigError, match="'blur' is not a DiffAugment policy"):
        diffaug.parse_policy("color,blur")


def test_translation_and_cutout_are_what_they_say() -> None:
    """Translation moves the image by whole pixels (values are kept or zero); cutout zeroes a
    half-size square and leaves the rest unchanged."""
    x = torch.arange(1, 1 + 2 * 16 * 16, dtype=torch.float64).view(2, 1, 16, 16)
    for seed in range(5):
        t = diffaug.translation(x, generator=gen(seed))
        for i in range(2):
            nz = t[i][t[i] != 0]
            assert set(nz.tolist()) <= set(x[i].flatten().tolist())
            assert len(nz) >= (16 - 2) ** 2  # a shift of at most 1/8 of 16 = 2 pixels
            # a pure shift: the difference of neighbours within the kept part is that of x
            rows = t[i, 0][(t[i, 0] != 0).all(1)]
            if len(rows) > 1:
                assert torch.all((rows[1:] - rows[:-1])[:, 2:-2] == 16)
        c = diffaug.cutout(x, generator=gen(seed))
        zero = c == 0
        assert torch.equal(c[~zero], x[~zero])
        assert zero.flatten(1).sum(1).max() <= 64 and zero.flatten(1).sum(1).min() >= 16


def test_every_gan_takes_diffaug_on_real_and_fake() -> None:
    """The option reaches D on both sides: with translation on, D's outputs on real data change,
    and G's step still has gradients; points refuse it in one sentence."""
    torch.manual_seed(0)
    m = GAN(GANConfig(width=4, latent_dim=4, diffaug="translation,cutout"), DIGITS)
    x = torch.rand(8, 1, 8, 8) * 2 - 1
    plain = m.critic(x)
    assert not torch.allclose(m.augmented_critic(x), plain)
    out = m.loss({"x": x}, "g")
    out.loss.backward()
    assert all(p.grad is not None for p in m.generator.parameters())
    points = DataInfo("toy2d:8gaussians", "points", (2,), value_range=(-4.0, 4.0))
    with pytest.raises(ConfigError, match="augments images"):
        GAN(GANConfig(diffaug="color"), points)
    with pytest.raises(ConfigError, match="not a DiffAugment policy"):
        GANConfig.from_dict({"diffaug": "colour"})
