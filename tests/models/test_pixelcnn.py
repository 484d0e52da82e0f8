"""Gated PixelCNN: causality and receptive field by autograd, exact normalisation by enumeration,
sampling against log_prob, and a short training run that must use the context."""

import itertools
import math

import pytest
import torch
from scipy.stats import chisquare

import genzoo
from genzoo.data import load_dataset
from genzoo.data.base import DataInfo, levels_to_model, model_to_levels
from genzoo.models.autoregressive import PixelCNN, PixelCNNConfig
from genzoo.models.autoregressive.pixelcnn import discretized_logistic_mixture
from genzoo.nn.masked import MaskedConv2d


def tiny_info(shape, levels, n_classes=0):
    return DataInfo(name="tiny", kind="images", shape=shape, levels=levels, n_classes=n_classes)


def small_model(shape, levels=4, n_layers=4, seed=0, **kw):
    torch.manual_seed(seed)
    c = shape[0]
    cfg = PixelCNNConfig(channels=8 * c, head_channels=8 * c, n_layers=n_layers, **kw)
    return PixelCNN(cfg, tiny_info(shape, levels, kw.get("class_conditional", 0) and 2)).double()


def dependence(net, x, out_fn):
    """|d out_fn(net(x)) / dx| (summed over the batch) for a random weighting of the outputs."""
    x = x.clone().requires_grad_(True)
    out = out_fn(net(x))
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    (out * w).sum().backward()
    return x.grad.abs().sum(0)


@pytest.mark.parametrize("output", ["softmax", "logistic_mixture"])
def test_gated_stacks_are_causal_and_have_no_blind_spot(output):
    """Logits of pixel p depend on every earlier pixel and on no later one (7x7, 4 layers)."""
    h = w = 7
    m = small_model((1, h, w), n_layers=4, output=output)
    x = torch.rand(2, 1, h, w, dtype=torch.float64) * 2 - 1
    for p in range(h * w):
        i, j = divmod(p, w)
        g = dependence(m, x, lambda out, i=i, j=j: out[:, :, :, i, j]).flatten()  # (H * W,)
        assert torch.all(g[p:] == 0), f"pixel {p} sees later pixels {torch.nonzero(g[p:])}"
        assert torch.all(g[:p] > 0), f"pixel {p} misses earlier pixels {torch.nonzero(g[:p] == 0)}"


def test_plain_masked_conv_stack_has_the_blind_spot_the_gated_one_removes():
    """Control for the test above: a PixelCNN of 3x3 masked convolutions (arXiv:1601.06759) is
    causal but misses pixels up and to the right, however deep it is."""
    torch.manual_seed(0)
    layers = [MaskedConv2d.pixelcnn(1, 8, 3, "A")]
    for _ in range(6):
        layers += [torch.nn.Tanh(), MaskedConv2d.pixelcnn(8, 8, 3, "B")]
    net = torch.nn.Sequential(*layers).double()
    x = torch.rand(2, 1, 7, 7, dtype=torch.float64)
    g = dependence(net, x, lambda out: out[:, :, 6, 3]).flatten()  # pixel p = 45
    assert torch.all(g[45:] == 0)
    assert (g[:45] == 0).any() and g[5 * 7 + 6] == 0  # e.g. (5, 6), up and right: blind


def test_rgb_subpixels_follow_raster_then_r_g_b_order():
    c, h, w = 3, 4, 4
    m = small_model((c, h, w), n_layers=4)
    x = torch.rand(4, c, h, w, dtype=torch.float64) * 2 - 1
    order = torch.arange(h * w * c).view(h, w, c).permute(2, 0, 1)  # position of (c, i, j)
    for ch, i, j in itertools.product(range(c), range(h), range(w)):
        g = dependence(m, x, lambda out, ch=ch, i=i, j=j: out[:, :, ch, i, j])  # (C, H, W)
        me = order[ch, i, j]
        assert torch.all(g[order >= me] == 0), (ch, i, j)
        assert torch.all(g[order < me] > 0), (ch, i, j)


@pytest.mark.parametrize(
    ("shape", "levels", "cond", "output"),
    [
        ((1, 2, 2), 3, False, "softmax"),
        ((3, 1, 2), 2, False, "softmax"),
        ((1, 2, 2), 3, True, "softmax"),
        ((3, 1, 2), 3, False, "logistic_mixture"),
    ],
)
def test_probabilities_of_all_images_sum_to_one(shape, levels, cond, output):
    m = small_model(shape, levels, n_layers=2, class_conditional=cond, output=output)
    d = math.prod(shape)
    k = torch.tensor(list(itertools.product(range(levels), repeat=d))).view(-1, *shape)
    x = levels_to_model(k, levels).double()
    for y in [0, 1] if cond else [None]:
        yy = None if y is None else torch.full((len(k),), y)
        total = m.log_prob(x, yy).detach().exp().sum()
        assert abs(float(total) - 1.0) < 1e-10
    if cond:
        assert not torch.allclose(
            m.log_prob(x, torch.zeros(len(k))), m.log_prob(x, torch.ones(len(k)))
        )


def test_log_prob_is_the_sum_of_categorical_log_probs_and_ignores_dequantization():
    info = load_dataset("digits").info
    torch.manual_seed(0)
    m = PixelCNN(PixelCNNConfig(channels=16, head_channels=16, n_layers=2), info)
    raw = load_dataset("digits", "test").x[:8].long()  # (8, 1, 8, 8) levels
    centres = levels_to_model(raw, 17)
    logits = m(centres)  # (B, L, C, H, W)
    ref = torch.distributions.Categorical(logits=logits.movedim(1, -1)).log_prob(raw)
    lp = m.log_prob(centres)
    torch.testing.assert_close(lp, ref.flatten(1).sum(1), rtol=1e-5, atol=1e-4)
    deq = levels_to_model(raw, 17, dequantize=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model_to_levels(deq, 17), raw)
    torch.testing.assert_close(m.log_prob(deq), lp, rtol=0, atol=0)
    assert m.eval_metrics({"x": centres})["log_prob"].shape == (8,)


def test_greedy_sampling_is_the_argmax_path_and_seeded_sampling_reproducible():
    info = load_dataset("digits").info
    torch.manual_seed(0)
    m = PixelCNN(PixelCNNConfig(channels=16, head_channels=16, n_layers=3), info).eval()
    x = m.sample(3, temperature=0.0)
    k = model_to_levels(x, 17)
    assert torch.equal(levels_to_model(k, 17), x)  # bin centres in model space
    assert torch.equal(m(x).argmax(1), k)  # every sub-pixel is the argmax given its prefix
    a = m.sample(2, generator=torch.Generator().manual_seed(3))
    b = m.sample(2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("output", ["softmax", "logistic_mixture"])
def test_samples_follow_the_model_distribution(output):
    """Empirical frequencies of 20,000 samples of a 1x2 image with 3 levels match exp(log_prob)."""
    m = small_model((1, 1, 2), 3, n_layers=2, seed=2, output=output).float().eval()
    k = torch.tensor(list(itertools.product(range(3), repeat=2))).view(-1, 1, 1, 2)
    p = m.log_prob(levels_to_model(k, 3)).detach().exp().double()
    s = model_to_levels(m.sample(20_000, generator=torch.Generator().manual_seed(0)), 3)
    counts = torch.bincount(s.flatten(1) @ torch.tensor([3, 1]), minlength=9).double()
    assert chisquare(counts.numpy(), (p / p.sum() * 20_000).numpy()).pvalue > 1e-3


def test_discretized_logistic_mixture_matches_the_logistic_cdf():
    """PixelCNN++ likelihood (arXiv:1701.05517) against torch.distributions' logistic CDF."""
    g = torch.Generator().manual_seed(0)
    params = torch.randn(6, 9, generator=g, dtype=torch.float64)  # K = 3 components
    params[:, 6:] -= 1.5  # log-scales around -1.5
    levels = 17
    logit_pi, mu, log_s = params.chunk(3, -1)
    base = torch.distributions.Uniform(torch.zeros(()), torch.ones(()))
    logistic = torch.distributions.TransformedDistribution(
        base.expand(mu.shape),
        [
            torch.distributions.transforms.SigmoidTransform().inv,
            torch.distributions.transforms.AffineTransform(mu, log_s.exp()),
        ],
    )
    edges = torch.linspace(-1, 1, levels + 1, dtype=torch.float64)[1:-1]  # inner bin edges
    cdf = torch.stack([logistic.cdf(e.expand(mu.shape)) for e in edges], dim=1)  # (6, L-1, K)
    cdf = torch.cat([torch.zeros(6, 1, 3), cdf, torch.ones(6, 1, 3)], dim=1)  # (6, L+1, K)
    ref = ((cdf[:, 1:] - cdf[:, :-1]) * logit_pi.softmax(-1)[:, None]).sum(-1)  # (6, L)
    ours = discretized_logistic_mixture(params, levels)
    torch.testing.assert_close(ours.exp(), ref, rtol=1e-9, atol=1e-12)
    k = torch.randint(0, levels, (6,), generator=g)
    torch.testing.assert_close(discretized_logistic_mixture(params, levels, k), ours[range(6), k])
    far = discretized_logistic_mixture(torch.tensor([[0.0, 5.0, -7.0]]), levels)  # mu far out
    assert torch.isfinite(far).all() and abs(float(far.exp().sum()) - 1) < 1e-6


def independent_pixel_bpd(levels=17):
    """Test bits/dim of the best model with independent pixels: a per-position categorical fitted
    to the train split (add-one smoothing). Any model that uses context must beat it."""
    tr = load_dataset("digits", "train").x.flatten(1).long()  # (N, 64)
    te = load_dataset("digits", "test").x.flatten(1).long()
    counts = torch.ones(tr.shape[1], levels).scatter_add_(1, tr.T, torch.ones(tr.T.shape))
    log_p = (counts / counts.sum(1, keepdim=True)).log2()
    return float(-log_p.gather(1, te.T).sum(0).mean() / tr.shape[1])


def test_short_training_on_digits_beats_uniform_and_independent_pixels(tmp_path, fast_train):
    base = independent_pixel_bpd()  # ~2.42; uniform is log2(17) ~ 4.09
    run = genzoo.train(
        "pixelcnn",
        "digits",
        steps=150,
        out=tmp_path / "pcnn",
        overrides={
            **fast_train,
            "channels": 32,
            "head_channels": 64,
            "n_layers": 4,
            "batch_size": 32,
            "lr": 3e-3,
            "n_samples": 16,
        },
    )
    res = genzoo.evaluate(run)
    bpd = res["log_prob_bpd"]
    assert bpd == pytest.approx(-res["log_prob"] / (64 * math.log(2)))  # discrete: no log(L/2)
    assert bpd < base - 0.2 < math.log2(17) - 1.8, (bpd, base)


@pytest.mark.parametrize("output", ["softmax", "logistic_mixture"])
def test_loss_under_bf16_autocast_matches_float32(output):
    """Mixed precision (what the Trainer uses on GPUs) gives the float32 loss of a partly trained
    model within 0.5%: the head's logits are read in float32 for the 17-way log-softmax (or the
    mixture's CDF differences), so only the convolutions run in bf16."""
    torch.manual_seed(0)
    info = load_dataset("digits").info
    m = PixelCNN(PixelCNNConfig(channels=16, head_channels=32, n_layers=3, output=output), info)
    tr = load_dataset("digits", "train").all()["x"]
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for i in range(40):  # sharpen the predictions a little: the loss falls well below log(17)
        opt.zero_grad()
        m.loss({"x": tr[32 * i : 32 * i + 32]}).loss.backward()
        opt.step()
    x = load_dataset("digits", "test").all()["x"][:128]
    with torch.no_grad():
        fp32 = m.loss({"x": x}).loss
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = m.loss({"x": x}).loss
            params = m.params(x)
    assert params.dtype == torch.bfloat16  # the convolutions did run in bf16
    assert bf16.dtype == torch.float32
    assert fp32 < 0.8 * math.log(17), fp32
    assert abs(bf16 - fp32) < 5e-3 * fp32, (bf16, fp32)


def test_bad_settings_are_one_sentence_errors():
    from genzoo.core.errors import ConfigError

    with pytest.raises(ConfigError, match="toy2d:moons"):
        PixelCNN(PixelCNNConfig(), load_dataset("toy2d:moons", "test").info)
    with pytest.raises(ConfigError, match="divisible by the 3 image channels"):
        PixelCNN(PixelCNNConfig(channels=16), tiny_info((3, 4, 4), 4))
    with pytest.raises(ConfigError, match="odd"):
        PixelCNNConfig.from_dict({"kernel": 4})
    m = small_model((1, 2, 2), 3, n_layers=1)
    with pytest.raises(ConfigError, match="'steps'"):
        m.sample(1, steps=3)
