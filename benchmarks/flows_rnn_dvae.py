"""MAF/IAF, LSTM/GRU and the dVAE beside their peers, each part a few CPU minutes (issue 22).

Parts (``--part``), each trained with genzoo's one Trainer at fixed step counts (no time budget)
and evaluated with ``genzoo.evaluate`` on the test split:

- ``digits``: MAF against RealNVP and Glow on digits at about 200k parameters each and the same
  steps, and IAF beside MAF at a quarter of them (IAF's training step runs its D-pass direction):
  test bits/dim (exact likelihoods, genzoo's one dequantization convention).
- ``toy``: MAF and IAF (and RealNVP as the peer) on ``toy2d:8gaussians``: test NLL in nats
  against the mixture's true entropy (the goal: within 0.1 nats).
- ``text``: LSTM and GRU against GPT on ``text:pystdlib`` (128-character windows) at about 110k
  parameters each and the same steps: test bits per character.
- ``toy5k``: ``toy`` at the data budget of the slow RealNVP test (5,000 steps at batch 1024),
  MAF/IAF at RealNVP's depth and widths; also the gap on 5,000 fresh validation points.
- ``mnist5k``: MAF, RealNVP and Glow on mnist5k at about 390k parameters and the same steps:
  test bits/dim on all 1,000 test images. ``mnist5k-iaf``: IAF distilled from that MAF
  (probability density distillation), its exact test bits/dim on a subset and sampling speed.
- ``text-time``: ``text`` at an equal wall-clock budget (``--budget``), the three trained at once.
- ``dvae``: the dVAE (relaxed, and straight-through) against the VQ-VAE on digits with the same
  codebook size, networks and steps: test reconstruction MSE and Fréchet distance of the
  reconstructions (genzoo's digits classifier features), and code usage over the test set.

    python benchmarks/flows_rnn_dvae.py --part digits --threads 1
    python benchmarks/flows_rnn_dvae.py --part toy --threads 1
    python benchmarks/flows_rnn_dvae.py --part text --threads 1
    python benchmarks/flows_rnn_dvae.py --part dvae --threads 1
    python benchmarks/flows_rnn_dvae.py --part toy5k --only maf --threads 1  # (and iaf, realnvp)
    python benchmarks/flows_rnn_dvae.py --part mnist5k --only maf --threads 1  # (realnvp, glow)
    python benchmarks/flows_rnn_dvae.py --part mnist5k-iaf --n-eval 200 --threads 1
    python benchmarks/flows_rnn_dvae.py --part text-time --budget 5m --threads 1
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import genzoo
from genzoo.data import load_dataset

QUIET = {"progress": False, "tensorboard": False, "ckpt_every": 0, "n_samples": 16}

# part -> (model, label) -> (steps, overrides): equal steps within a part; about equal parameters
PARTS: dict[str, dict[tuple[str, str], tuple[int, dict[str, Any]]]] = {
    "digits": {
        ("maf", "maf"): (600, {"flows": 5, "hidden": [128, 128]}),
        ("realnvp", "realnvp"): (600, {"channels": 24, "blocks": 1}),
        ("glow", "glow"): (600, {"channels": 32, "steps": 4}),
        # IAF's density costs D = 64 sequential passes per layer in every training step (about
        # 40x MAF's step): it gets a quarter of the steps, beside MAF at the same quarter
        ("maf", "maf-150"): (150, {"flows": 5, "hidden": [128, 128]}),
        ("iaf", "iaf-150"): (150, {"flows": 5, "hidden": [128, 128]}),
    },
    "toy": {
        ("maf", "maf"): (2500, {"flows": 10, "hidden": [64, 64]}),
        ("iaf", "iaf"): (2500, {"flows": 10, "hidden": [64, 64]}),
        ("realnvp", "realnvp"): (2500, {"couplings": 16, "hidden": [64, 64, 64]}),
    },
    # the slow RealNVP test's data budget (5,000 steps at batch 1024); MAF/IAF at RealNVP's depth
    # and coupling-net widths (16 layers of MADE 64-64-64: about RealNVP's parameter count)
    "toy5k": {
        ("maf", "maf"): (5000, {"flows": 16, "hidden": [64, 64, 64]}),
        ("iaf", "iaf"): (5000, {"flows": 16, "hidden": [64, 64, 64]}),
        ("realnvp", "realnvp"): (5000, {"couplings": 16, "hidden": [64, 64, 64]}),
    },
    # about 390k parameters each, the same steps (the conv flows' steps cost ~30x MAF's on CPU);
    # IAF by probability density distillation from the MAF row's run (its teacher), the same
    # steps: `iaf-distilled` in `distill_part`
    "mnist5k": {
        ("maf", "maf"): (400, {"flows": 5, "hidden": [32, 32]}),
        ("realnvp", "realnvp"): (400, {"channels": 32, "blocks": 1}),
        ("glow", "glow"): (400, {"channels": 32, "steps": 8}),
    },
    "text": {
        ("gpt", "gpt"): (600, {"n_layer": 2, "n_embd": 64, "n_head": 4, "dropout": 0.0}),
        ("lstm", "lstm"): (600, {"n_layer": 1, "n_embd": 32, "hidden": 144}),
        ("gru", "gru"): (600, {"n_layer": 1, "n_embd": 32, "hidden": 160}),
    },
    "dvae": {
        ("vqvae", "vqvae"): (800, {"codebook_size": 64, "code_dim": 16}),
        ("dvae", "dvae"): (800, {"codebook_size": 64, "code_dim": 16, "anneal_steps": 500}),
        ("dvae", "dvae-hard"): (
            800,
            {"codebook_size": 64, "code_dim": 16, "anneal_steps": 500, "hard": True},
        ),
    },
}
DATA = {
    "digits": "digits",
    "toy": "toy2d:8gaussians",
    "toy5k": "toy2d:8gaussians",
    "mnist5k": "mnist5k",
    "text": "text:pystdlib",
    "dvae": "digits",
}
TRAIN = {  # training settings per part (beside each model's defaults)
    "digits": {"batch_size": 128},
    "toy": {"batch_size": 512, "lr": 2e-3, "lr_decay": "cosine", "ema_decay": 0.999},
    "toy5k": {"batch_size": 1024, "lr": 2e-3, "lr_decay": "cosine", "ema_decay": 0.999},
    "mnist5k": {"batch_size": 32},
    "text": {"batch_size": 32},
    "dvae": {"batch_size": 128},
}


def n_params(run: Path) -> int:
    return sum(p.numel() for p in genzoo.load(run).parameters())


def train(
    part: str, name: str, label: str, out: Path, steps: int, over: dict
) -> tuple[Path, float]:
    run = out / f"{part}-{label}"
    t = time.perf_counter()
    if not (run / "checkpoints").is_dir():  # a finished run (a failed one is trained again)
        shutil.rmtree(run, ignore_errors=True)
        overrides = {**QUIET, **TRAIN[part], **over}
        genzoo.train(name, DATA[part], steps=steps, out=run, overrides=overrides)
    return run, time.perf_counter() - t


def likelihood_part(part: str, out: Path, scale: float, only: str | None = None) -> None:
    toy = part.startswith("toy")
    unit = "test NLL (nats)" if toy else ("test bits/char" if part == "text" else "test bits/dim")
    extra = " | true entropy | gap |" if toy else " |"
    if toy and part != "toy":
        extra = " | validation gap" + extra  # 5,000 fresh points (seed 2), to choose settings on
    print(f"| model | params | steps | train s | eval s | {unit}" + extra)
    print("|---|---:|---:|---:|---:|---:|" + ("---:|" * (extra.count("|") - 1)))
    toy_data = load_dataset(DATA[part], "test").toy if toy else None
    entropy = toy_data.entropy() if toy_data is not None else 0.0
    for (name, label), (steps, over) in PARTS[part].items():
        if only is not None and label != only:
            continue
        steps = max(1, int(steps * scale))
        run, train_s = train(part, name, label, out, steps, over)
        t = time.perf_counter()
        res = genzoo.evaluate(run, n=512 if part == "text" else None)
        eval_s = time.perf_counter() - t
        row = f"| {label} | {n_params(run):,} | {res['step']} | {train_s:.0f} | {eval_s:.0f} | "
        if toy_data is not None:
            nll = -res["log_prob"]
            val = ""
            if part != "toy":
                x_val = toy_data.sample(5000, generator=torch.Generator().manual_seed(2))
                with torch.no_grad():
                    val_nll = -float(genzoo.load(run).log_prob(x_val).double().mean())
                val = f"{val_nll - entropy:+.4f} | "
            print(row + f"{nll:.4f} | {val}{entropy:.4f} | {nll - entropy:+.4f} |", flush=True)
        else:
            print(row + f"{res['log_prob_bpd']:.4f} |", flush=True)


def distill_part(out: Path, scale: float, n_eval: int) -> None:
    """IAF distilled from the MAF run of the ``mnist5k`` part (train that row first) with MAF's
    widths, for MAF's steps and for 10x as many (distillation steps are cheap: no sequential
    pass); exact test bits/dim of each and of the teacher on the first ``n_eval`` test images
    (IAF's density direction: 784 sequential MADE passes per layer), and the seconds to draw 16
    samples (IAF: one pass per layer; MAF: 784)."""
    ((steps, over),) = [v for (name, _), v in PARTS["mnist5k"].items() if name == "maf"]
    teacher = out / "mnist5k-maf"
    if not (teacher / "checkpoints").is_dir():
        raise SystemExit(f"train the teacher first: --part mnist5k --only maf (no {teacher})")
    steps = max(1, int(steps * scale))
    print(
        f"| model | trained params | steps | train s | eval s | test bits/dim (first {n_eval}) "
        "| s per 16 samples |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    rows = [("maf (teacher)", teacher, 0.0)]
    for label, k in [("iaf-distilled", steps), (f"iaf-distilled-{10 * steps}", 10 * steps)]:
        over_k = {**over, "teacher_run": str(teacher)}
        rows.append((label, *train("mnist5k", "iaf", label, out, k, over_k)))
    for label, r, t_s in rows:
        t = time.perf_counter()
        res = genzoo.evaluate(r, n=n_eval, batch_size=n_eval)
        eval_s = time.perf_counter() - t
        m = genzoo.load(r)
        params = sum(p.numel() for p in m.flow.parameters())  # the IAF's own, not its teacher's
        t = time.perf_counter()
        m.sample(16, generator=torch.Generator().manual_seed(0))
        sample_s = time.perf_counter() - t
        print(
            f"| {label} | {params:,} | {res['step']} | {t_s:.0f} | {eval_s:.0f} | "
            f"{res['log_prob_bpd']:.4f} | {sample_s:.2f} |",
            flush=True,
        )


def text_time_part(out: Path, budget: str, only: str | None, threads: int) -> None:
    """GPT, LSTM and GRU of the ``text`` part trained for the same wall-clock ``budget``, all
    three at once (one process each, ``threads`` torch threads), so that they share the same
    machine load; then test bits per character on the first 512 test windows, as in ``text``."""
    if only is not None:  # a child: train one model for the budget
        ((name, over),) = [(n, o) for (n, lab), (_, o) in PARTS["text"].items() if lab == only]
        run = out / f"text-time-{only}"
        shutil.rmtree(run, ignore_errors=True)
        overrides = {**QUIET, **TRAIN["text"], **over}
        genzoo.train(name, DATA["text"], budget=budget, out=run, overrides=overrides)
        return
    labels = [lab for _, lab in PARTS["text"]]
    cmd = [sys.executable, __file__, "--part", "text-time", "--budget", budget]
    cmd += ["--out", str(out), "--threads", str(threads)]
    t = time.perf_counter()
    children = [subprocess.Popen([*cmd, "--only", lab]) for lab in labels]  # at once
    if any(c.wait() != 0 for c in children):
        raise SystemExit("a training process failed")
    wall = time.perf_counter() - t
    print(f"\n{len(labels)} models trained at once for {budget} each ({wall:.0f} s wall in all)")
    print("| model | params | steps in the budget | eval s | test bits/char |")
    print("|---|---:|---:|---:|---:|")
    for lab in labels:
        run = out / f"text-time-{lab}"
        t = time.perf_counter()
        res = genzoo.evaluate(run, n=512)
        eval_s = time.perf_counter() - t
        print(
            f"| {lab} | {n_params(run):,} | {res['step']} | {eval_s:.0f} | "
            f"{res['log_prob_bpd']:.4f} |",
            flush=True,
        )


def dvae_part(out: Path, scale: float) -> None:
    from genzoo.metrics.classifier import get_classifier
    from genzoo.metrics.frechet import frechet_distance

    test = load_dataset("digits", "test")
    x = test.get(torch.arange(len(test)))["x"]  # bin centres
    clf = get_classifier("digits")  # trained once (deterministic) and cached
    dvae_rows(out, scale, x, clf, frechet_distance)


def dvae_rows(out: Path, scale: float, x: torch.Tensor, clf: Any, frechet_distance: Any) -> None:
    f_test = clf.features(x)
    print(
        "| model | params | steps | train s | test MSE | recon FD | codes used (of 64) | "
        "test code perplexity | test ELBO bits/dim |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (name, label), (steps, over) in PARTS["dvae"].items():
        run, train_s = train("dvae", name, label, out, max(1, int(steps * scale)), over)
        res = genzoo.evaluate(run)
        m = genzoo.load(run, device="cpu").eval()
        with torch.no_grad():
            codes = m.encode_codes(x).flatten()
            rec = m.decode_codes(m.encode_codes(x)).clamp(-1, 1)
        counts = torch.bincount(codes, minlength=64).double()
        p = counts / counts.sum()
        perplexity = math.exp(-float((p * p.clamp_min(1e-12).log()).sum()))
        mse = float((rec - x).pow(2).mean())
        fd = frechet_distance(clf.features(rec), f_test)
        elbo = f"{res['elbo_bpd']:.3f}" if "elbo_bpd" in res else "—"
        print(
            f"| {label} | {n_params(run):,} | {res['step']} | {train_s:.0f} | {mse:.4f} | "
            f"{fd:.2f} | {int((counts > 0).sum())} | {perplexity:.1f} | {elbo} |"
        )
    fd_floor = frechet_distance(clf.features(x[::2]), clf.features(x[1::2]))
    print(f"\nFD between the two halves of the test set (a floor): {fd_floor:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", required=True, choices=sorted([*PARTS, "mnist5k-iaf", "text-time"]))
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every step count")
    p.add_argument("--out", default="runs/bench-issue22")
    p.add_argument("--only", default=None, help="run only the row with this label")
    p.add_argument("--budget", default="5m", help="text-time: wall-clock budget per model")
    p.add_argument("--n-eval", type=int, default=200, help="mnist5k-iaf: test images to score")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    if args.part == "dvae":
        dvae_part(out, args.scale)
    elif args.part == "text-time":
        text_time_part(out, args.budget, args.only, args.threads)
    elif args.part == "mnist5k-iaf":
        distill_part(out, args.scale, args.n_eval)
    else:
        likelihood_part(args.part, out, args.scale, args.only)


if __name__ == "__main__":
    main()
