"""GPT: causality by autograd, KV-cache parity, exact normalisation by enumeration, sampling
filters against brute force, the text path on the pystdlib corpus, and short training runs."""

import itertools
import math

import pytest
import torch
from scipy.stats import chisquare

import genzoo
from genzoo.core.errors import ConfigError, GenzooError
from genzoo.data import load_dataset
from genzoo.data.base import DataInfo, levels_to_model, model_to_levels
from genzoo.data.text import (
    PYSTDLIB_ALPHABET,
    CharTokenizer,
    get_tokenizer,
    load_text,
    pystdlib_text,
    split_text,
    text_info,
)
from genzoo.models.autoregressive import GPT, GPTConfig
from genzoo.models.autoregressive.sampling import filter_logits, sample_logits

SMALL = {"n_layer": 2, "n_head": 2, "n_embd": 32, "dropout": 0.0}


def tiny_images(shape, levels, n_classes=0):
    return DataInfo(name="tiny", kind="images", shape=shape, levels=levels, n_classes=n_classes)


def small_gpt(info, seed=0, **kw):
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**SMALL, **kw}), info).eval()


@pytest.mark.parametrize("pos_emb", ["learned", "rotary"])
def test_logits_at_position_t_depend_on_exactly_the_tokens_up_to_t(pos_emb):
    m = small_gpt(text_info(block_size=12), pos_emb=pos_emb).double()
    idx = torch.randint(0, 97, (2, 12), generator=torch.Generator().manual_seed(0))
    emb = {}

    def keep(module, inp, out):
        out.retain_grad()
        emb["e"] = out

    m.tok_emb.register_forward_hook(keep)
    for t in range(12):
        m.zero_grad()
        logits = m(idx)  # (B, T, V)
        w = torch.randn(logits[:, t].shape, dtype=logits.dtype)
        (logits[:, t] * w).sum().backward()
        g = emb["e"].grad.abs().sum((0, 2))  # (T,)
        assert torch.all(g[t + 1 :] == 0), (t, g)
        assert torch.all(g[: t + 1] > 0), (t, g)


def test_image_tokens_predict_each_level_from_earlier_sub_pixels_only():
    """Tokens are sub-pixels in raster order, channels within a pixel; changing token d leaves
    every log p(t_i | t_<i) with i < d exactly as it was, and changes the later ones."""
    info = tiny_images((3, 2, 2), 4)
    m = small_gpt(info)
    k = torch.randint(0, 4, (1, 3, 2, 2), generator=torch.Generator().manual_seed(0))
    tok = m.tokenize(levels_to_model(k, 4))
    assert torch.equal(tok.view(2, 2, 3), k[0].permute(1, 2, 0))  # R, G, B of pixel 0 first
    assert torch.equal(model_to_levels(m.detokenize(tok), 4), k)
    base = m._token_log_probs(levels_to_model(k, 4), None)  # (1, D)
    for d in range(12):
        k2 = m.detokenize((tok + torch.nn.functional.one_hot(torch.tensor([d]), 12)) % 4)
        lp = m._token_log_probs(k2, None)
        torch.testing.assert_close(lp[:, :d], base[:, :d], rtol=0, atol=1e-6)
        assert torch.all(lp[:, d:] != base[:, d:])


@pytest.mark.parametrize("pos_emb", ["learned", "rotary"])
def test_kv_cache_gives_the_logits_of_the_full_forward(pos_emb):
    m = small_gpt(text_info(block_size=16), pos_emb=pos_emb)
    idx = torch.randint(0, 97, (3, 16), generator=torch.Generator().manual_seed(0))
    full = m(idx)  # (B, T, V)
    cache = m.new_cache()
    parts = [m(idx[:, :5], cache)]  # prefill 5 positions
    parts += [m(idx[:, t : t + 1], cache) for t in range(5, 9)]  # one position at a time
    parts.append(m(idx[:, 9:], cache))  # several new positions after a cache
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=0, atol=1e-5)
    assert cache.length == 16
    with pytest.raises(ValueError, match="block_size"):
        m(idx[:, :1], cache)


@pytest.mark.parametrize("cond, vocab", [(False, 0), (True, 0), (False, 200)])
def test_probabilities_of_all_images_sum_to_one(cond, vocab):
    # vocab 200: a padded vocabulary whose read-out computes 64 columns (aligned) for 3 targets;
    # the extra columns must not enter the softmax
    info = tiny_images((1, 2, 2), 3, n_classes=2 if cond else 0)
    m = small_gpt(info, class_conditional=cond, vocab_size=vocab).double()
    assert m(torch.zeros(1, 4, dtype=torch.long)).shape == (1, 4, 3)
    k = torch.tensor(list(itertools.product(range(3), repeat=4))).view(-1, 1, 2, 2)
    x = levels_to_model(k, 3)
    totals = []
    for y in [0, 1] if cond else [None]:
        yy = None if y is None else torch.full((len(k),), y)
        lp = m.log_prob(x, yy).detach()
        totals.append(float(lp.exp().sum()))
        # the same number from an independent loop: one prefix at a time, no batching over T
        tok = m.tokenize(x[:5])
        start = m._start_tokens(5, None if yy is None else yy[:5])
        seq = torch.cat([start, tok], dim=1)
        ref = sum(
            torch.log_softmax(m(seq[:, : t + 1])[:, -1], -1).gather(1, tok[:, t : t + 1])[:, 0]
            for t in range(4)
        )
        torch.testing.assert_close(lp[:5], ref.detach(), rtol=0, atol=1e-10)
    assert all(abs(t - 1.0) < 1e-10 for t in totals), totals


def test_filters_match_brute_force_and_greedy_is_top_k_1():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 9, generator=g)
    for k in (1, 3, 9):
        kept = torch.isfinite(filter_logits(logits, top_k=k))
        assert torch.all(kept.sum(1) == k)
        assert torch.all(kept.gather(1, logits.argsort(1, descending=True)[:, :k]))
    for p in (0.05, 0.5, 0.9):
        kept = torch.isfinite(filter_logits(logits, top_p=p))
        probs = logits.softmax(1)
        for row in range(50):
            order = probs[row].argsort(descending=True).tolist()
            n = next(i + 1 for i in range(9) if probs[row, order[: i + 1]].sum() >= p)
            assert set(torch.nonzero(kept[row])[:, 0].tolist()) == set(order[:n])
    greedy = sample_logits(logits, temperature=0.0)
    assert torch.equal(greedy, logits.argmax(1))
    assert torch.equal(sample_logits(logits, top_k=1, generator=g), greedy)


def test_greedy_sampling_is_the_argmax_path_with_and_without_cache():
    info = load_dataset("digits").info
    m = small_gpt(info)
    x = m.sample(4, temperature=0.0)
    tok = m.tokenize(x)
    inp = torch.cat([m._start_tokens(4, None), tok[:, :-1]], dim=1)
    assert torch.equal(m(inp).argmax(-1), tok)  # each level is the argmax given its prefix
    assert torch.equal(m.sample(4, top_k=1, generator=torch.Generator().manual_seed(5)), x)
    a = m.sample(3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, m.sample(3, generator=torch.Generator().manual_seed(1)))
    start = m._start_tokens(3, None)
    g1, g2 = (torch.Generator().manual_seed(2) for _ in range(2))
    with_cache = m.generate(start, 64, generator=g1)
    assert torch.equal(with_cache, m.generate(start, 64, generator=g2, use_cache=False))


def test_samples_follow_the_model_distribution():
    info = tiny_images((1, 1, 2), 3)
    m = small_gpt(info, seed=3)
    with torch.no_grad():
        m.tok_emb.weight.mul_(20)  # a far-from-uniform distribution
    k = torch.tensor(list(itertools.product(range(3), repeat=2))).view(-1, 1, 1, 2)
    p = m.log_prob(levels_to_model(k, 3)).detach().exp().double()
    s = model_to_levels(m.sample(20_000, generator=torch.Generator().manual_seed(0)), 3)
    counts = torch.bincount(s.flatten(1) @ torch.tensor([3, 1]), minlength=9).double()
    assert chisquare(counts.numpy(), (p / p.sum() * 20_000).numpy()).pvalue > 1e-3


def test_guided_samples_follow_the_extrapolated_distribution():
    """Classifier-free guidance in ``generate``: with prefix c, unconditional prefix u and w = 2,
    every token is drawn from ``softmax(log p_u + 2 (log p_c - log p_u))`` given the tokens so
    far; the frequencies of all 9 two-token sequences match that product (chi-square), which
    differs from the conditional model's."""
    info = tiny_images((1, 1, 2), 3, n_classes=2)
    m = small_gpt(info, seed=3, class_conditional=True)
    with torch.no_grad():
        m.tok_emb.weight.mul_(20)
    n, w = 20_000, 2.0
    c = m._start_tokens(n, torch.zeros(n))
    u = m._start_tokens(n, torch.ones(n))
    s = m.generate(c, 2, uncond=u, guidance=w, generator=torch.Generator().manual_seed(0))
    seqs = torch.tensor(list(itertools.product(range(3), repeat=2)))  # (9, 2)
    with torch.no_grad():
        lc = m(torch.cat([c[:9], seqs[:, :1]], 1)).log_softmax(-1)  # (9, 2, 3)
        lu = m(torch.cat([u[:9], seqs[:, :1]], 1)).log_softmax(-1)
    lg = (lu + w * (lc - lu)).log_softmax(-1).double()
    p = (lg[:, 0].gather(1, seqs[:, :1]) + lg[:, 1].gather(1, seqs[:, 1:])).exp().flatten()
    p_c = (lc[:, 0].gather(1, seqs[:, :1]) + lc[:, 1].gather(1, seqs[:, 1:])).exp().flatten()
    assert (p - p_c.double()).abs().max() > 0.05
    counts = torch.bincount(s @ torch.tensor([3, 1]), minlength=9).double()
    assert chisquare(counts.numpy(), (p / p.sum() * n).numpy()).pvalue > 1e-3
    with pytest.raises(ConfigError, match="unconditional prefix"):
        m.generate(c[:2], 2, guidance=w)
    with pytest.raises(ConfigError, match="must match"):
        m.generate(c[:2], 2, uncond=u[:3], guidance=w)


def test_pystdlib_corpus_and_char_tokenizer():
    text = pystdlib_text()
    assert len(text) == 600_000 and set(text) <= set(PYSTDLIB_ALPHABET)
    tok = get_tokenizer("pystdlib")
    assert tok.vocab_size == 97 and tok.encode("\n").tolist() == [0]
    assert tok.decode(tok.encode(text[:5000])) == text[:5000]
    train, test = load_text("pystdlib", "train", block_size=32), load_text("pystdlib", "test")
    stream = tok.encode(split_text(text, "train"))
    assert torch.equal(train.x[3], stream[96:128])  # window i = tokens [32 i, 32 i + 32)
    assert train.info.shape == (32,) and train.info.levels == 97 and test.info.shape == (128,)
    assert split_text(text, "train") + split_text(text, "test") == text
    assert CharTokenizer.from_text("ba").encode("ab").tolist() == [0, 1]


def test_bpe_tokenizer_round_trips_and_is_deterministic():
    pytest.importorskip("tokenizers")
    from genzoo.data.text import BPETokenizer

    text = split_text(pystdlib_text(), "train")[:100_000]
    a, b = BPETokenizer.train(text, 300), BPETokenizer.train(text, 300)
    sample = pystdlib_text()[-3000:]
    ids = a.encode(sample)
    assert a.vocab_size == 300 and torch.equal(ids, b.encode(sample))
    assert a.decode(ids) == sample and len(ids) < 0.7 * len(sample)
    assert torch.equal(BPETokenizer.from_dict(a.to_dict()).encode(sample), ids)


def test_text_gpt_learns_python_source_and_generates_text():
    """Text path, directly (no Trainer): 80 AdamW steps on 32-token windows bring the test loss
    below the best context-free model (the train split's character frequencies, ~4.45 bits per
    character; uniform is log2(97) ~ 6.6); generation decodes to text."""
    train, test = load_text(block_size=32), load_text(split="test", block_size=32)
    m = small_gpt(train.info, n_layer=2, n_head=4, n_embd=64).train()
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(80):
        batch = train.get(torch.randint(len(train), (32,), generator=g))
        opt.zero_grad()
        m.loss(batch).loss.backward()
        opt.step()
    m.eval()
    x = test.get(torch.arange(128))["x"]
    bits = float(-m.log_prob(x).detach().mean() / (32 * math.log(2)))
    counts = torch.bincount(train.tokens, minlength=97).double() + 1.0
    unigram = float(-(counts / counts.sum()).log2()[test.tokens].mean())
    assert bits < unigram - 0.5, (bits, unigram)
    out = m.sample(2, prompt=get_tokenizer().encode("def "), length=40, generator=g)
    assert out.shape == (2, 44) and get_tokenizer().decode(out[0]).startswith("def ")
    for start in (out[:, -8:], torch.cat([m._start_tokens(2, None), out[:, -8:]], dim=1)):
        long = m.generate(start, 40, temperature=0.0)  # runs past block_size: sliding window
        assert torch.equal(long, m.generate(start, 40, temperature=0.0, use_cache=False))


def test_points_are_a_density_uniform_within_bins(tmp_path, fast_train):
    run = genzoo.train(
        "gpt",
        "toy2d:8gaussians",
        steps=60,
        out=tmp_path / "pts",
        overrides={**fast_train, **SMALL, "point_bins": 32, "batch_size": 128, "lr": 5e-3},
    )
    m = genzoo.load(run)
    x = m.sample(500, generator=torch.Generator().manual_seed(0))
    assert x.shape == (500, 2) and x.abs().max() < 4.0
    width = 8.0 / 32  # the box (-4, 4) in 32 bins
    centres = -4.0 + (torch.arange(32) + 0.5) * width
    grid = torch.cartesian_prod(centres, centres)  # (1024, 2): one point per bin pair
    with torch.no_grad():
        mass = (m.log_prob(grid).exp() * width**2).sum()
        jitter = grid + (torch.rand(grid.shape) - 0.5) * width * 0.99
        same = torch.allclose(m.log_prob(jitter), m.log_prob(grid), atol=1e-5)
    assert abs(float(mass) - 1.0) < 1e-4 and same
    res = genzoo.evaluate(run)
    assert res["log_prob"] > -math.log(64.0) + 1.0  # beats the uniform density on the box


def independent_pixel_bpd(levels=17):
    """Test bits/dim of the best independent-pixel model (per-position categorical, add-one)."""
    tr = load_dataset("digits", "train").x.flatten(1).long()  # (N, 64)
    te = load_dataset("digits", "test").x.flatten(1).long()
    counts = torch.ones(tr.shape[1], levels).scatter_add_(1, tr.T, torch.ones(tr.T.shape))
    log_p = (counts / counts.sum(1, keepdim=True)).log2()
    return float(-log_p.gather(1, te.T).sum(0).mean() / tr.shape[1])


def test_short_training_on_digits_beats_uniform_and_independent_pixels(tmp_path, fast_train):
    base = independent_pixel_bpd()  # ~2.42; uniform is log2(17) ~ 4.09
    run = genzoo.train(
        "gpt",
        "digits",
        steps=200,
        out=tmp_path / "gpt",
        overrides={
            **fast_train,
            "n_layer": 2,
            "n_embd": 64,
            "dropout": 0.0,
            "batch_size": 32,
            "lr": 1e-2,
            "warmup": 20,
            "n_samples": 16,
        },
    )
    res = genzoo.evaluate(run)
    bpd = res["log_prob_bpd"]
    assert bpd == pytest.approx(-res["log_prob"] / (64 * math.log(2)))  # discrete: no log(L/2)
    assert bpd < base - 0.2 < math.log2(17) - 1.8, (bpd, base)


def test_bad_settings_are_one_sentence_errors():
    info = load_dataset("digits").info
    with pytest.raises(ConfigError, match="block_size = 32 is too short"):
        GPT(GPTConfig(block_size=32), info)
    with pytest.raises(ConfigError, match="vocab_size = 10 is too small"):
        GPT(GPTConfig(vocab_size=10), info)
    with pytest.raises(ConfigError, match="divisible"):
        GPTConfig.from_dict({"n_embd": 30, "n_head": 4})
    with pytest.raises(ConfigError, match="top_p"):
        small_gpt(info).sample(1, top_p=0.0)


@pytest.mark.parametrize("kind", ["images", "points", "text"])
def test_sample_returns_data_in_the_datasets_range_for_every_kind(kind):
    """``sample`` gives what the dataset's ``x`` holds: bin centres of images, points inside the
    value range (uniform within their bins), token ids ``(n, block_size)`` for text; and
    ``tokenize(sample)`` recovers the drawn tokens (bins, levels or ids)."""
    info = {
        "images": tiny_images((1, 2, 2), 5),
        "points": DataInfo("p", "points", (3,), value_range=(-2.0, 2.0)),
        "text": text_info(block_size=6),
    }[kind]
    m = small_gpt(info, point_bins=8)
    x = m.sample(50, generator=torch.Generator().manual_seed(0))
    assert x.shape == (50, *info.shape)
    tok = m.tokenize(x)
    assert tok.shape == (50, info.dim) and tok.min() >= 0 and tok.max() < m.n_out
    if kind == "images":
        torch.testing.assert_close(x, levels_to_model(model_to_levels(x, 5), 5))
    elif kind == "points":
        assert x.min() >= -2.0 and x.max() <= 2.0
        centre = -2.0 + (tok.float() + 0.5) * 0.5  # bins of width 4 / 8
        assert (x - centre).abs().max() <= 0.25 + 1e-6
    else:
        assert x.dtype == torch.long and torch.equal(tok, x)
    with pytest.raises(ConfigError, match="'prompt'" if kind != "text" else "'beam'"):
        m.sample(1, **({"prompt": [1]} if kind != "text" else {"beam": 2}))


def test_config_ranges_are_declared_once_and_named_in_the_error():
    with pytest.raises(ConfigError, match=r"n_layer = 0 must be >= 1"):
        GPTConfig.from_dict({"n_layer": 0})
    with pytest.raises(ConfigError, match=r"dropout = 1\.0 must be a finite number in \[0, 1\)"):
        GPTConfig.from_dict({"dropout": 1.0})
    with pytest.raises(ConfigError, match=r"block_size = -1 must be >= 0"):
        GPTConfig.from_dict({"block_size": -1})
    with pytest.raises(ConfigError, match=r"temperature = -1\.0"):
        GPTConfig.from_dict({"temperature": -1.0})


def test_a_text_prompt_is_encoded_by_the_datasets_tokenizer_and_bad_ids_are_one_sentence():
    """``prompt="def "`` draws exactly what its token ids draw (same generator); a bare number on
    the command line is its text; ids outside the vocabulary, fractional ids or a nested list are
    one sentence (they were an IndexError, a silent truncation and a TypeError)."""
    info = load_text(block_size=16).info
    m = small_gpt(info, n_layer=1, n_head=2, n_embd=16).eval()
    tok = get_tokenizer()

    def draw(prompt):
        return m.sample(2, prompt=prompt, length=5, generator=torch.Generator().manual_seed(3))

    assert torch.equal(draw("def "), draw(tok.encode("def ")))
    assert torch.equal(draw(5), draw(tok.encode("5")))
    assert tok.decode(draw("x = ")[0]).startswith("x = ")
    for bad, needle in (([-1], "0..96"), ([97], "0..96"), ([1.5], "whole numbers"),
                        ([[[1]]], "token ids"), ("é", "'é'")):  # fmt: skip
        with pytest.raises(GenzooError, match=needle):
            draw(bad)
