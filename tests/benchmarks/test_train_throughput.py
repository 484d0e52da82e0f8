"""benchmarks/train_throughput.py at CPU sizes: every row is measured on the same data, ratios are
finite, FLOPs are counted as the closed forms say, and the U-Net matches diffusers' parameters."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

# A stand-in with nanoGPT's interface (GPTConfig fields, GPT(config), forward(idx, targets) ->
# (logits, loss) with ignore_index=-1): the real model.py is fetched at benchmark time only.
NANOGPT_STANDIN = """
from dataclasses import dataclass
import torch.nn as nn
import torch.nn.functional as F

@dataclass
class GPTConfig:
    block_size: int = 1024
    vocab_size: int = 50304
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True

class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

    def forward(self, idx, targets=None):
        logits = self.head(self.wte(idx))
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss
"""


def test_flop_count_of_a_linear_layer_is_2mnk_forward_and_6mnk_with_backward(bench):
    tt = bench("train_throughput")
    m, k, n = 7, 11, 13
    x = torch.randn(m, k, requires_grad=True)
    w = torch.randn(n, k, requires_grad=True)
    assert tt.count_flops(lambda: F.linear(x, w)) == 2 * m * n * k
    assert tt.count_flops(lambda: F.linear(x, w).sum().backward()) == 6 * m * n * k


def test_ddpm_cifar10_unet_matches_diffusers_parameter_count(bench):
    pytest.importorskip("diffusers")
    tt = bench("train_throughput")
    w = tt.unet_workload(batch=2, tiny=False)
    mine = tt.n_params(tt._genzoo_model(w))
    theirs = tt.n_params(w.peers[0].build())
    assert mine == 35_746_307  # DDPM's CIFAR-10 network, "35.7M parameters"
    assert abs(mine - theirs) <= 0.05 * theirs


def test_summary_ratios_are_genzoo_best_over_peer_eager_and_peer_best(bench):
    tt = bench("train_throughput")

    def row(impl, variant, thr):
        return {
            "config": "c",
            "impl": impl,
            "variant": variant,
            "throughput": thr,
            "unit": "img/s",
            "mfu": 0.1,
            "params": 1,
        }

    rows = [
        row("genzoo", "eager", 30.0),
        row("genzoo", "compile", 60.0),
        row("peer", "eager", 10.0),
        row("peer", "compile", 20.0),
    ]
    (s,) = tt.summarize(rows)
    assert s["ratio_vs_eager"] == pytest.approx(6.0)
    assert s["ratio_vs_best"] == pytest.approx(3.0)
    assert rows[0]["vs_peer"] == pytest.approx(3.0) and rows[1]["vs_peer"] == pytest.approx(3.0)


def test_tiny_run_end_to_end_on_cpu(bench, tmp_path):
    pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    tt = bench("train_throughput")
    nano = tmp_path / "model.py"
    nano.write_text(NANOGPT_STANDIN)
    out = tmp_path / "train.json"
    res = tt.main(
        [
            "--tiny",
            "--device",
            "cpu",
            "--channels-last",
            "--nanogpt",
            str(nano),
            "--steps",
            "1",
            "--warmup",
            "1",
            "--out",
            str(out),
        ]
    )
    got = {(r["config"], r["impl"], r["variant"]) for r in res["rows"]}
    assert got == {
        ("unet", "genzoo", "eager"),
        ("unet", "diffusers", "eager"),
        ("unet", "genzoo", "channels_last"),
        ("unet", "diffusers", "channels_last"),
        ("dit", "genzoo", "eager"),
        ("dit", "diffusers", "eager"),
        ("gpt2", "genzoo", "eager"),
        ("gpt2", "transformers", "eager"),
        ("gpt2", "nanoGPT", "eager"),
    }
    for r in res["rows"]:
        assert r["throughput"] > 0 and math.isfinite(r["throughput"])
        assert r["gflops_per_step"] > 0 and 0 < r["mfu"] < 1
    for cfg in ("unet", "dit", "gpt2"):  # every implementation saw the same batch
        assert len({r["data"] for r in res["rows"] if r["config"] == cfg}) == 1
    unet = {r["impl"]: r["params"] for r in res["rows"] if r["config"] == "unet"}
    assert abs(unet["genzoo"] - unet["diffusers"]) <= 0.05 * unet["diffusers"]
    assert {(s["config"], s["peer"]) for s in res["summary"]} == {
        ("unet", "diffusers"),
        ("dit", "diffusers"),
        ("gpt2", "transformers"),
        ("gpt2", "nanoGPT"),
    }
    for s in res["summary"]:
        for key in ("ratio_vs_eager", "ratio_vs_best"):
            assert s[key] > 0 and math.isfinite(s[key])
    assert json.loads(out.read_text())["summary"] == json.loads(json.dumps(res["summary"]))
