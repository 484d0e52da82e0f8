"""WaveNet: causality and receptive field by autograd, exact normalisation by enumeration, cached
generation equal to naive generation, and a short run through the one Trainer."""

import math

import pytest
import torch

import genzoo
from genzoo.audio import mu_law_decode
from genzoo.core.errors import ConfigError
from genzoo.data import dataset_info
from genzoo.data.base import DataInfo
from genzoo.models.autoregressive import WaveNet, WaveNetConfig


def audio_info(n_classes=3, length=64):
    return DataInfo(
        name="tiny-audio", kind="audio", shape=(length,), n_classes=n_classes, sample_rate=8000
    )


def tiny(kernel=2, layers=3, stacks=2, conditional=True, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = WaveNetConfig(
        residual_channels=4,
        skip_channels=6,
        kernel_size=kernel,
        layers_per_stack=layers,
        stacks=stacks,
        class_conditional=conditional,
        **kw,
    )
    return WaveNet(cfg, audio_info(3 if conditional else 0)).double()


@pytest.mark.parametrize("kernel,layers,stacks", [(2, 3, 2), (3, 2, 3)])
def test_causal_with_receptive_field_of_the_formula(kernel, layers, stacks):
    """d logits_t / d input_s is nonzero exactly for t - RF < s <= t, RF = (k-1) sum(d) + 1."""
    m = tiny(kernel, layers, stacks)
    rf = (kernel - 1) * sum(2**i for i in range(layers)) * stacks + 1
    assert m.receptive_field == rf
    t_len = rf + 12
    h = torch.randn(2, 4, t_len, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 2])
    for t in (0, 5, rf - 1, rf, t_len - 1):
        (g,) = torch.autograd.grad(m.stack(h, y)[:, :, t].sum(), h)
        seen = g.abs().sum((0, 1)) > 0  # (T,): which inputs output t depends on
        assert not seen[t + 1 :].any(), f"output {t} sees later inputs"
        expected = torch.zeros(t_len, dtype=torch.bool)
        expected[max(0, t - rf + 1) : t + 1] = True
        assert torch.equal(seen, expected), (t, torch.nonzero(seen).flatten().tolist())


def test_log_prob_is_normalised_and_consistent():
    """sum_k P(k) = 1 over all one-sample sequences, and sum_k2 P(k1, k2) = P(k1) for two."""
    m = tiny()
    levels = torch.arange(256)
    for c in range(3):
        lp1 = m.log_prob(mu_law_decode(levels)[:, None], torch.full((256,), c))  # (256,)
        assert torch.logsumexp(lp1, 0).item() == pytest.approx(0.0, abs=1e-9)
        for k1 in (0, 97, 255):
            k = torch.stack([torch.full((256,), k1), levels], 1)  # (256, 2): k1 then every k2
            lp2 = m.log_prob(mu_law_decode(k), torch.full((256,), c))
            assert torch.logsumexp(lp2, 0).item() == pytest.approx(lp1[k1].item(), abs=1e-9)


def test_cached_generation_equals_naive_generation():
    m = tiny(kernel=3, layers=3, stacks=2)
    y = torch.tensor([0, 1, 2])
    k1, l1 = m.generate(3, 40, y, cached=True, generator=torch.Generator().manual_seed(5))
    k2, l2 = m.generate(3, 40, y, cached=False, generator=torch.Generator().manual_seed(5))
    assert torch.equal(k1, k2)
    torch.testing.assert_close(l1, l2, atol=1e-5, rtol=0)
    # and the logits it drew from are the model's log_prob terms of the drawn sequence
    lp = torch.log_softmax(l1, -1).gather(2, k1[..., None]).sum((1, 2))
    torch.testing.assert_close(m.log_prob(mu_law_decode(k1), y), lp, atol=1e-6, rtol=0)
    x = m.sample(3, cond=y, generator=torch.Generator().manual_seed(5), length=40)
    assert torch.equal(x, mu_law_decode(k1).to(x.dtype)) and x.abs().max() <= 1


def test_uncropped_loss_is_nll_per_sample():
    m = tiny(crop=0)
    x = torch.rand(4, 64, dtype=torch.float64) * 2 - 1
    y = torch.tensor([0, 1, 2, 0])
    out = m.loss({"x": x, "y": y})
    torch.testing.assert_close(out.loss, -m.log_prob(x, y).mean() / 64)
    assert out.logs["bits"] == pytest.approx(out.loss.item() / math.log(2))


def test_bad_input_is_one_sentence():
    with pytest.raises(ConfigError, match="wavenet models audio, but dataset 'digits'"):
        WaveNet(WaveNetConfig(), dataset_info("digits"))
    with pytest.raises(ConfigError, match="set class_conditional=false"):
        WaveNet(WaveNetConfig(), audio_info(n_classes=0))
    m = tiny()
    with pytest.raises(ConfigError, match="Unknown sampling option 'steps'"):
        m.sample(2, steps=3)
    with pytest.raises(ConfigError, match="length = 0"):
        m.sample(2, length=0)


def test_training_learns_to_use_the_context():
    """Cyclic patterns of 4 levels with a random phase: 2 bits per sample without context, 0 given
    the previous sample. 80 steps of Adam must get well below the context-free 2 bits."""
    torch.manual_seed(0)
    cfg = WaveNetConfig(
        residual_channels=8,
        skip_channels=16,
        layers_per_stack=2,
        stacks=1,
        crop=32,
        class_conditional=False,
    )
    m = WaveNet(cfg, audio_info(n_classes=0))
    cycle = torch.tensor([0, 64, 128, 192])
    g = torch.Generator().manual_seed(0)

    def batch(n):
        phase = torch.randint(0, 4, (n, 1), generator=g)
        return {"x": mu_law_decode(cycle[(torch.arange(64) + phase) % 4])}  # (n, 64)

    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(80):
        opt.zero_grad()
        m.loss(batch(16)).loss.backward()
        opt.step()
    with torch.no_grad():
        bits = -m.log_prob(batch(64)["x"]).mean() / (64 * math.log(2))
    assert bits < 0.5, float(bits)


@pytest.mark.slow
def test_short_training_on_tones_beats_uniform_bits(tmp_path, fast_train):
    """200 steps through the one Trainer: test bits per sample below the uniform 8 bits."""
    run = genzoo.train(
        "wavenet",
        "tones",
        steps=200,
        out=tmp_path / "wn",
        overrides={
            **fast_train,
            "residual_channels": 16,
            "skip_channels": 32,
            "layers_per_stack": 6,
            "stacks": 1,
            "crop": 256,
            "batch_size": 8,
            "lr": 3e-3,
            "n_samples": 1,
        },
    )
    res = genzoo.evaluate(run, n=16)
    bits = res["log_prob_bpd"]
    assert bits == pytest.approx(-res["log_prob"] / (4000 * math.log(2)))  # discrete levels
    assert bits < 6.5, bits
