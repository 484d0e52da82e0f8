"""The GPT prior over VQ-VAE codes: the code stream round-trips through the VQ-VAE, the prior is
a normalised distribution over code sequences, samples are decoded codes, and a short training run
beats the best context-free (unigram) code model on held-out codes."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import genzoo
from genzoo.cli import main
from genzoo.core.errors import ConfigError
from genzoo.data import dataset_info, load_dataset
from genzoo.data.base import DataInfo
from genzoo.models.autoencoders import VQVAE, VQVAEConfig
from genzoo.models.autoregressive import VQPrior, VQPriorConfig


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny_prior(info: DataInfo, vq_kw: dict, seed: int = 0, **kw) -> VQPrior:
    torch.manual_seed(seed)
    vq = VQVAE(VQVAEConfig(**vq_kw), info).eval()
    cfg = VQPriorConfig(n_layer=1, n_head=2, n_embd=16, dropout=0.0, **kw)
    return VQPrior(cfg, info, vqvae=vq).eval()


DIGITS = load_dataset("digits").info
POINTS = DataInfo("toy2d:moons", "points", (2,), value_range=(-4.0, 4.0))


def test_codes_round_trip_to_the_vqvae_reconstruction() -> None:
    """``decode_codes(encode_codes(x))`` is exactly the VQ-VAE's own reconstruction of ``x``, the
    codes are in raster order over the latent grid, and the VQ-VAE is frozen inside the prior."""
    m = tiny_prior(DIGITS, {"codebook_size": 16, "code_dim": 4, "width": 8, "res_blocks": 1})
    x = load_dataset("digits", "test").all()["x"][:32]
    codes = m.encode_codes(x)
    assert codes.shape == (32, 16) and codes.dtype == torch.long  # 8x8 -> 4x4 grid, P = 16
    assert codes.min() >= 0 and codes.max() < 16
    torch.testing.assert_close(codes.view(32, 4, 4), m.vqvae.encode_codes(x), rtol=0, atol=0)
    with torch.no_grad():
        recon = m.vqvae(x).clamp(-1, 1)
    torch.testing.assert_close(m.decode_codes(codes), recon, rtol=0, atol=0)
    assert not any(p.requires_grad for p in m.vqvae.parameters())
    assert {k.split(".")[0] for k, p in m.named_parameters() if p.requires_grad} == {"gpt"}
    m.train()
    assert not m.vqvae.training  # training the prior leaves the VQ-VAE in eval mode


@pytest.mark.parametrize("conditional", [False, True])
def test_prior_is_a_normalised_distribution_over_all_code_sequences(conditional: bool) -> None:
    """Summing ``exp(code_log_prob)`` over all K^P sequences gives 1 (per class when conditional),
    the per-code terms add up to the total, and the loss is their mean."""
    info = DataInfo("toy", "points", (2,), n_classes=3 if conditional else 0)
    m = tiny_prior(
        info,
        {"codebook_size": 3, "code_dim": 2, "tokens": 3, "hidden": (8,)},
        class_conditional=conditional,
    )
    assert (m.n_codes, m.positions) == (3, 3)
    seqs = torch.tensor(list(itertools.product(range(3), repeat=3)))  # (27, 3)
    with torch.no_grad():
        for y in range(3) if conditional else [None]:
            cond = None if y is None else torch.full((27,), y)
            lp = m.code_log_prob(seqs, cond).double()
            assert math.isclose(lp.exp().sum().item(), 1.0, rel_tol=1e-5)
            per = m.code_token_log_probs(seqs, cond)
            torch.testing.assert_close(per.sum(1), lp.float())
        if conditional:  # the class token changes the distribution
            a = m.code_log_prob(seqs, torch.zeros(27, dtype=torch.long))
            b = m.code_log_prob(seqs, torch.ones(27, dtype=torch.long))
            assert not torch.allclose(a, b)


def test_samples_are_decoded_prior_codes() -> None:
    """``sample`` is ``decode_codes(sample_codes)`` for the same generator; shapes and the data
    range hold; greedy sampling is the argmax path of the prior; the class token is used."""
    m = tiny_prior(
        DIGITS,
        {"codebook_size": 16, "code_dim": 4, "width": 8, "res_blocks": 1},
        class_conditional=True,
    )
    codes = m.sample_codes(6, generator=gen(3))
    assert codes.shape == (6, 16) and codes.min() >= 0 and codes.max() < 16
    x = m.sample(6, generator=gen(3))
    assert x.shape == (6, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    torch.testing.assert_close(x, m.decode_codes(codes), rtol=0, atol=0)
    greedy = m.sample_codes(2, cond=torch.tensor([4, 4]), temperature=0.0)
    start = m.start_tokens(2, torch.tensor([4, 4]))
    assert start.tolist() == [[16 + 1 + 4]] * 2  # K + 1 + y
    seq = start
    for _ in range(16):  # the argmax path without the KV cache
        nxt = m.gpt(seq)[:, -1].argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], 1)
    assert torch.equal(greedy, seq[:, 1:])


def test_bad_settings_are_one_sentence_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="vqvae_run"):
        VQPrior(VQPriorConfig(), DIGITS)
    vq = VQVAE(VQVAEConfig(width=8, code_dim=4), DIGITS)
    with pytest.raises(ConfigError, match="shape"):
        VQPrior(VQPriorConfig(), dataset_info("mnist5k"), vqvae=vq)
    with pytest.raises(ConfigError, match="labelled"):
        VQPrior(VQPriorConfig(class_conditional=True), POINTS, vqvae=VQVAE(VQVAEConfig(), POINTS))
    with pytest.raises(ConfigError, match="n_embd"):
        VQPriorConfig.from_dict({"n_embd": 30, "n_head": 4})
    m = VQPrior(VQPriorConfig(n_layer=1, n_embd=16), DIGITS, vqvae=vq)
    with pytest.raises(ConfigError, match="'beam'"):
        m.sample(2, beam=3)
    with pytest.raises(ConfigError, match="unconditional"):
        m.sample(2, cond=torch.tensor([0, 1]))


@pytest.fixture(scope="module")
def vqvae_run(tmp_path_factory):
    over = {"progress": False, "tensorboard": False, "ckpt_every": 0, "lr": 3e-3}
    # a small MLP VQ-VAE: each digit is 4 codes out of 16
    over |= {"arch": "mlp", "hidden": (64,), "tokens": 4, "codebook_size": 16, "code_dim": 4}
    out = tmp_path_factory.mktemp("vqp") / "vq"
    return genzoo.train("vqvae", "digits", steps=200, out=out, overrides=over)


def test_trained_prior_beats_the_unigram_code_entropy_on_held_out_codes(
    vqvae_run, tmp_path, fast_train, capsys
) -> None:
    """A short run of ``genzoo.train("vqvae-prior", ...)`` on the codes of a trained VQ-VAE run:
    its held-out NLL per code is below the entropy of the held-out codes' own frequencies (the
    best any context-free code model can do, even one fitted to the test codes), and
    ``genzoo.evaluate`` reports it next to the VQ-VAE's usage-frequency prior."""
    run = genzoo.train(
        "vqvae-prior",
        "digits",
        steps=150,
        out=tmp_path / "prior",
        overrides={
            **fast_train,
            "vqvae_run": str(vqvae_run),
            "n_layer": 2,
            "n_embd": 32,
            "dropout": 0.0,
            "lr": 3e-3,
            "warmup": 20,
            "ckpt_every": 0,
        },
    )
    prior = genzoo.load(run)
    assert isinstance(prior, VQPrior)
    vq = genzoo.load(vqvae_run)
    for k, v in vq.state_dict().items():  # the frozen VQ-VAE inside is the run's, bit for bit
        assert torch.equal(prior.vqvae.state_dict()[k], v), k
    codes = prior.encode_codes(load_dataset("digits", "test").all()["x"])  # (359, 4)
    freq = torch.bincount(codes.flatten(), minlength=16).double()
    p = freq[freq > 0] / freq.sum()
    unigram_entropy = float(-(p * p.log()).sum())  # nats per code
    with torch.no_grad():
        nll = float(-prior.code_log_prob(codes).double().mean()) / prior.positions
    assert nll < unigram_entropy - 0.2, (nll, unigram_entropy)
    res = genzoo.evaluate(run)
    assert res["loss"] == pytest.approx(nll, rel=1e-5)
    assert res["bits_per_code"] == pytest.approx(nll / math.log(2), rel=1e-5)
    assert res["unigram_bits_per_code"] >= unigram_entropy / math.log(2) - 1e-6  # >= entropy
    x = genzoo.sample(run, 8, seed=1)
    assert x.shape == (8, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert main(["eval", str(run)]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if "bits_per_code " in s)
    assert float(line.split()[1]) == pytest.approx(res["bits_per_code"], abs=1e-4), line


def test_the_vqvae_comes_from_load_parts_and_old_flat_keys_still_load() -> None:
    """vqvae-prior reads no run: ``load_parts`` asks the runs layer's loader for ``vqvae_run``
    (EMA as ``vqvae_ema`` says) and passes the model as ``vqvae=``; the flat keys of a config
    saved before the shared transformer config load unchanged and reach the inner GPT."""
    vq = VQVAE(VQVAEConfig(width=8, code_dim=4, codebook_size=8, res_blocks=1), DIGITS).eval()
    asked = []

    def load_run(run: str, ema: bool) -> VQVAE:
        asked.append((run, ema))
        return vq

    old = {"vqvae_run": "runs/vq", "vqvae_ema": False, "n_layer": 1, "n_head": 2, "n_embd": 16}
    old |= {"dropout": 0.1, "bias": True, "pos_emb": "learned", "tie_weights": True}
    old |= {"class_conditional": False, "temperature": 0.5, "top_k": 3, "top_p": 1.0}
    cfg = VQPriorConfig.from_dict(old)
    parts = VQPrior.load_parts(cfg, load_run)
    assert asked == [("runs/vq", False)] and parts == {"vqvae": vq}
    m = VQPrior(cfg, DIGITS, **parts)
    assert m.vqvae is vq and m.gpt.config.n_embd == 16 and m.gpt.config.top_k == 3
    assert m.gpt.config.temperature == 0.5 and m.gpt.vocab_size == 8 + 1
    assert VQPrior.load_parts(VQPriorConfig(), load_run) == {} and len(asked) == 1
    with pytest.raises(ConfigError, match="'vqvae' run"):
        VQPrior(cfg, DIGITS, vqvae=torch.nn.Linear(1, 1))  # type: ignore[arg-type]
