"""LSTM / GRU language models: exact normalisation by enumeration, causality by autograd, the
carried state equals the full-sequence logits, samples follow the model, and a short text run."""

import itertools
import math

import pytest
import torch
from scipy.stats import chisquare

from genzoo.core.errors import ConfigError
from genzoo.core.protocol import ExactLikelihood, Samples
from genzoo.core.registry import MODELS
from genzoo.data.base import DataInfo, levels_to_model, model_to_levels
from genzoo.data.text import get_tokenizer, load_text, text_info
from genzoo.models.autoregressive import GRULM, RecurrentLM

CELLS = ["lstm", "gru"]


def tiny_images(shape, levels, n_classes=0):
    return DataInfo(name="tiny", kind="images", shape=shape, levels=levels, n_classes=n_classes)


def small(name, info, seed=0, **kw):
    torch.manual_seed(seed)
    cls = MODELS.get(name)
    cfg = {"n_layer": 2, "n_embd": 8, "hidden": 16, **kw}
    return cls(cls.config_class.from_dict(cfg), info).eval()


@pytest.mark.parametrize("cond", [False, True])
@pytest.mark.parametrize("name", CELLS)
def test_probabilities_of_all_sequences_sum_to_one(name, cond):
    """Every image of 4 pixels with 3 levels (81 sequences): sum exp(log_prob) = 1 (per class),
    and log_prob equals an independent loop of one-token-at-a-time softmaxes."""
    info = tiny_images((1, 2, 2), 3, n_classes=2 if cond else 0)
    m = small(name, info, class_conditional=cond).double()
    with torch.no_grad():
        m.head.weight.mul_(10)  # far from uniform
    k = torch.tensor(list(itertools.product(range(3), repeat=4))).view(-1, 1, 2, 2)
    x = levels_to_model(k, 3)
    for y in [0, 1] if cond else [None]:
        yy = None if y is None else torch.full((len(k),), y)
        lp = m.log_prob(x, yy).detach()
        assert abs(float(lp.exp().sum()) - 1.0) < 1e-12
        tok = m.tokenize(x)
        seq = torch.cat([m._start_tokens(len(k), yy), tok], dim=1)
        ref = sum(
            torch.log_softmax(m(seq[:, : t + 1])[0][:, -1], -1).gather(1, tok[:, t : t + 1])[:, 0]
            for t in range(4)
        )
        torch.testing.assert_close(lp, ref.detach(), rtol=0, atol=1e-12)
    assert lp.exp().max() > 5 * lp.exp().min()  # not the uniform distribution


@pytest.mark.parametrize("name", CELLS)
def test_logits_at_t_depend_on_exactly_the_tokens_up_to_t(name):
    m = small(name, text_info(block_size=10)).double()
    assert m.config.cell == name
    assert isinstance(m.rnn, torch.nn.LSTM if name == "lstm" else torch.nn.GRU)
    idx = torch.randint(0, 97, (2, 10), generator=torch.Generator().manual_seed(0))
    for t in range(10):
        emb = m.tok_emb(idx).detach().requires_grad_(True)  # (B, T, E)
        out, _ = m.rnn(emb)
        logits = m.head(out)  # the forward of the model after its embedding
        torch.testing.assert_close(logits, m(idx)[0], rtol=0, atol=1e-12)
        (logits[:, t] * torch.randn(logits[:, t].shape, dtype=logits.dtype)).sum().backward()
        g = emb.grad.abs().sum((0, 2))  # (T,)
        assert torch.all(g[t + 1 :] == 0), (t, g)
        assert torch.all(g[: t + 1] > 0), (t, g)


@pytest.mark.parametrize("name", CELLS)
def test_carried_state_gives_the_full_sequence_logits_and_the_same_samples(name):
    m = small(name, text_info(block_size=16))
    idx = torch.randint(0, 97, (3, 16), generator=torch.Generator().manual_seed(0))
    full, _ = m(idx)  # (B, T, V)
    parts, state = [], None
    for a, b in [(0, 5), (5, 6), (6, 7), (7, 16)]:  # a prefix, single steps, then a chunk
        out, state = m(idx[:, a:b], state)
        parts.append(out)
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=0, atol=1e-5)
    start = m._start_tokens(3, None)
    g1, g2 = (torch.Generator().manual_seed(2) for _ in range(2))
    a = m.generate(start, 20, generator=g1)
    assert torch.equal(a, m.generate(start, 20, generator=g2, use_state=False))
    greedy = m.generate(start, 12, temperature=0.0)
    logits, _ = m(torch.cat([start, greedy[:, :-1]], dim=1))
    assert torch.equal(logits.argmax(-1), greedy)  # each token the argmax given its prefix


@pytest.mark.parametrize("name", CELLS)
def test_samples_follow_the_model_distribution(name):
    info = tiny_images((1, 1, 2), 3)
    m = small(name, info, seed=3)
    with torch.no_grad():
        m.head.weight.mul_(20)  # a far-from-uniform distribution
        m.head.bias.mul_(20)
    k = torch.tensor(list(itertools.product(range(3), repeat=2))).view(-1, 1, 1, 2)
    p = m.log_prob(levels_to_model(k, 3)).detach().exp().double()
    assert p.max() > 0.25 and p.min() < 0.01
    s = model_to_levels(m.sample(20_000, generator=torch.Generator().manual_seed(0)), 3)
    counts = torch.bincount(s.flatten(1) @ torch.tensor([3, 1]), minlength=9).double()
    assert chisquare(counts.numpy(), (p / p.sum() * 20_000).numpy()).pvalue > 1e-3


def test_text_lstm_learns_python_source_and_generates_text():
    """60 Adam steps on 32-character windows of pystdlib bring the test loss below the best
    context-free model (the train split's character frequencies, ~4.45 bits per character)."""
    train, test = load_text(block_size=32), load_text(split="test", block_size=32)
    m = small("lstm", train.info, n_layer=1, n_embd=32, hidden=128).train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        batch = train.get(torch.randint(len(train), (32,), generator=g))
        opt.zero_grad()
        m.loss(batch).loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
    m.eval()
    x = test.get(torch.arange(128))["x"]
    bits = float(-m.log_prob(x).detach().mean() / (32 * math.log(2)))
    counts = torch.bincount(train.tokens, minlength=97).double() + 1.0
    unigram = float(-(counts / counts.sum()).log2()[test.tokens].mean())
    assert bits < unigram - 0.5, (bits, unigram)
    out = m.sample(2, prompt=get_tokenizer().encode("def "), length=40, generator=g)
    assert out.shape == (2, 44) and get_tokenizer().decode(out[0]).startswith("def ")
    assert m.sample(3, generator=g).shape == (3, 32)  # one window by default


def test_registry_presets_and_errors():
    assert MODELS.get("lstm") is RecurrentLM and MODELS.get("gru") is GRULM
    assert issubclass(RecurrentLM, ExactLikelihood) and issubclass(RecurrentLM, Samples)
    assert RecurrentLM.config_class().cell == "lstm" and GRULM.config_class().cell == "gru"
    info = tiny_images((1, 2, 2), 5)
    m = small("gru", info)
    with pytest.raises(ConfigError, match="'prompt'"):
        m.sample(1, prompt=[1])
    with pytest.raises(ConfigError, match="top_p"):
        m.sample(1, top_p=0.0)
    with pytest.raises(ConfigError, match="cell"):
        RecurrentLM.config_class.from_dict({"cell": "rnn"})
    with pytest.raises(ConfigError, match="class_conditional"):
        small("lstm", info, class_conditional=True)
