"""Captioner: decoding agrees with teacher forcing; beam, greedy and top-k keep their promises."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("tokenizers")

from genzoo.core.errors import ConfigError
from genzoo.data import load_dataset
from genzoo.models.multimodal.captioner import Captioner, CaptionerConfig

TINY = {"width": 8, "n_embd": 32, "n_layer": 2, "n_head": 2, "dropout": 0.0}


@pytest.fixture(scope="module")
def setup():
    data = load_dataset("shapes?size=16&n=200", "train")
    torch.manual_seed(0)
    model = Captioner(CaptionerConfig(**TINY), data.info)
    # a few steps so the distribution is not flat (and decodings differ)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for i in range(15):
        batch = data.get(torch.arange(i * 8, i * 8 + 32) % len(data))
        opt.zero_grad()
        model.loss(batch).loss.backward()
        opt.step()
    return model.eval(), data.get(torch.arange(6))


def _seq_logprob(model: Captioner, x: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
    """log p(seq | x) by teacher forcing, up to and including [EOS]: ``(B,)``."""
    tok = model.tokenizer
    inp = torch.cat([torch.full((len(x), 1), tok.bos_id), seq[:, :-1]], 1)
    logp = model(x, inp).log_softmax(-1).gather(2, seq[:, :, None])[..., 0]  # (B, T)
    eos_at = (seq == tok.eos_id).long()
    keep = (eos_at.cumsum(1) - eos_at) == 0  # positions up to the first [EOS]
    return (logp * keep).sum(1)


def test_loss_is_the_token_cross_entropy_without_padding(setup) -> None:
    model, batch = setup
    text = batch["text"]
    logits = model(batch["x"], text[:, :-1])
    mask = text[:, 1:] != 0
    ref = F.cross_entropy(logits[mask], text[:, 1:][mask])
    assert model.loss(batch).loss.item() == pytest.approx(ref.item(), rel=1e-5)
    # the prefix is the image: another image changes the logits, the padding never does
    other = batch["x"].flip(0)
    assert not torch.allclose(model(other, text[:, :-1]), logits, atol=1e-4)
    assert torch.allclose(model(batch["x"], text[:, :-1])[mask], logits[mask])


def test_greedy_with_cache_equals_teacher_forced_argmax(setup) -> None:
    model, batch = setup
    tok = model.tokenizer
    seq = model.generate(batch["x"], "greedy")
    inp = torch.cat([torch.full((len(seq), 1), tok.bos_id), seq[:, :-1]], 1)
    arg = model(batch["x"], inp).argmax(-1)
    for row, ref in zip(seq, arg, strict=True):
        n = int((row == tok.eos_id).nonzero()[0]) + 1 if (row == tok.eos_id).any() else len(row)
        assert torch.equal(row[:n], ref[:n])
        assert bool((row[n:] == tok.pad_id).all())


def test_beam_search(setup) -> None:
    model, batch = setup
    x = batch["x"]
    greedy = model.generate(x, "greedy")
    one = model.generate(x, "beam", beam_size=1)
    n = min(greedy.shape[1], one.shape[1])
    assert torch.equal(one[:, :n], greedy[:, :n])  # one beam is greedy search
    wide = model.generate(x, "beam", beam_size=8, length_penalty=0.0)
    lp_wide, lp_greedy = _seq_logprob(model, x, wide), _seq_logprob(model, x, greedy)
    assert bool((lp_wide >= lp_greedy - 1e-4).all())  # finds captions at least as likely
    assert (wide == model.tokenizer.eos_id).any(1).all()  # every beam result is finished


def test_top_k_sampling(setup) -> None:
    model, batch = setup
    x = batch["x"].repeat(4, 1, 1, 1)
    a = model.generate(x, "top_k", top_k=3, generator=torch.Generator().manual_seed(5))
    b = model.generate(x, "top_k", top_k=3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)  # reproducible
    tok = model.tokenizer
    inp = torch.cat([torch.full((len(a), 1), tok.bos_id), a[:, :-1]], 1)
    logits = model(x, inp)
    rank = (logits > logits.gather(2, a[:, :, None])).sum(-1)  # tokens strictly more likely
    first_pad = (a == tok.pad_id).long().cumsum(1) == 0
    assert bool((rank[first_pad] < 3).all())  # every drawn token is among the 3 most likely
    greedy = model.generate(x, "greedy")
    assert not torch.equal(a[:, : greedy.shape[1]], greedy[:, : a.shape[1]])


def test_captions_decode_to_text(setup) -> None:
    model, batch = setup
    texts = model.caption(batch["x"], "beam", beam_size=3)
    assert len(texts) == 6 and all(isinstance(t, str) for t in texts)
    assert all("[" not in t for t in texts)  # no special tokens in the text
    for bad, needle in [
        (torch.zeros(2, 1, 8, 8), r"takes images \(B, 3, 16, 16\).*has shape \(2, 1, 8, 8\)"),
        (torch.full((2, 3, 16, 16), float("nan")), "NaN or infinite"),  # were empty captions
    ]:
        with pytest.raises(ConfigError, match=needle):
            model.caption(bad)
