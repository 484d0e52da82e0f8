"""benchmarks/likelihood_bpd.py at a few steps: every model reports the rows it should, the VAE's
IWAE(64) bound is below its ELBO in bits/dim, the exact PPCA row agrees with an independent pass
over the test split, closed-form PPCA beats the uniform distribution, and the grids are saved."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH_ARGS = ["--data", "digits", "--models", "ppca,vae,nice", "--steps", "30", "--threads", "1"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bpd")
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "likelihood_bpd.py"
    cmd = [sys.executable, str(script), *BENCH_ARGS, "--train-n", "359"]
    cmd += ["--out", str(out / "runs"), "--grids", str(out / "img")]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rows = json.loads((out / "runs" / "results-digits.json").read_text())
    return out, rows, proc.stdout


def test_rows_per_model(results):
    _, rows, stdout = results
    kinds = {(r["model"], r["likelihood"]) for r in rows}
    assert kinds == {
        ("ppca", "exact"),
        ("vae", "ELBO bound"),
        ("vae", "IWAE(64) bound"),
        ("nice", "exact"),
    }
    for r in rows:
        assert r["n_test"] == 359  # every digits test image
        assert r["steps"] == (1 if r["model"] == "ppca" else 30)
        assert math.isfinite(r["bpd"]) and math.isfinite(r["train_bpd"])
        assert f"| {r['model']} | {r['likelihood']} |" in stdout  # the markdown table


def test_iwae_below_elbo(results):
    _, rows, _ = results
    bpd = {r["likelihood"]: r for r in rows if r["model"] == "vae"}
    # log p >= IWAE_64 >= ELBO: fewer bits/dim for the tighter bound, on test and on train
    assert bpd["IWAE(64) bound"]["bpd"] < bpd["ELBO bound"]["bpd"]
    assert bpd["IWAE(64) bound"]["train_bpd"] < bpd["ELBO bound"]["train_bpd"]


def test_ppca_matches_independent_pass(results, bench):
    out, rows, _ = results
    lb = bench("likelihood_bpd")
    torch.set_num_threads(1)
    ppca = next(r for r in rows if r["model"] == "ppca")
    # the benchmark's own pass over all 359 test digits (other dequantization noise) agrees with
    # genzoo.evaluate's number to well within the noise of 359 x 64 uniform draws
    again = lb.split_bpd(out / "runs" / "ppca-digits", 359, split="test")["log_prob_bpd"]
    assert again == pytest.approx(ppca["bpd"], abs=5e-3)
    # a fitted Gaussian beats the uniform distribution over the 17 grey levels
    assert ppca["bpd"] < math.log2(17) - 0.3
    assert ppca["train_bpd"] < math.log2(17) - 0.3


def test_grids_saved(results):
    out, _, _ = results
    for name in ("ppca", "vae", "nice"):
        png = out / "img" / f"bpd-{name}-digits.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
