"""Test bits/dim of every likelihood model on one dataset, each trained for a fixed step count.

Exact likelihoods (PPCA, PixelCNN, GPT over pixels, NICE, RealNVP, Glow), the VAE's ELBO and
IWAE(64) bounds, and DDPM's variational bound and probability-flow ODE likelihood are all reported
in genzoo's one convention (README: uniformly dequantized data on [0, L)^D, or the exact discrete
NLL for the autoregressive models), through ``genzoo.evaluate``. Step counts are fixed (no time
budget), so a run gives the same numbers on any machine; they are chosen so that all of digits
takes about 20 minutes and all of mnist5k about 30 on one shared CPU thread (DDPM is left out on
mnist5k: its likelihoods cost 1000 network calls per image). ``--grids`` copies each run's final
sample grid to ``<dir>/bpd-<model>-<data>.png``.

    python benchmarks/likelihood_bpd.py --data digits --threads 1
    python benchmarks/likelihood_bpd.py --data mnist5k --threads 1
    python benchmarks/likelihood_bpd.py --data digits --budget 40s   # a time budget instead
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch

import genzoo
from genzoo.core.protocol import likelihood_kind

MODELS = ["ppca", "vae", "pixelcnn", "gpt", "nice", "realnvp", "glow", "ddpm"]

# (model, data) -> optimizer steps: about 20 minutes for all of digits and 30 for mnist5k on one
# shared CPU thread
STEPS: dict[str, dict[str, int]] = {
    "digits": {
        "ppca": 1,  # closed form: one pass over the data
        "vae": 3000,
        "pixelcnn": 1000,
        "gpt": 400,
        "nice": 1000,
        "realnvp": 500,
        "glow": 1000,
        "ddpm": 1500,
    },
    "mnist5k": {  # 784 dimensions: about 10x the cost per step, and a shared CPU
        "ppca": 1,
        "vae": 300,
        "pixelcnn": 50,
        "gpt": 20,
        "nice": 30,
        "realnvp": 30,
        "glow": 60,
        "ddpm": 60,
    },
}
# the models a plain run trains: DDPM's likelihoods take all T = 1000 steps (VLB) or 127 network
# calls with a backward each (ODE) per image, too slow on mnist5k at CPU budgets
DEFAULT_MODELS = {"digits": MODELS, "mnist5k": [m for m in MODELS if m != "ddpm"]}
# (model, data) -> (test images, training images) evaluated, where not all test images and 1000
# training images (the autoregressive models cost one 784-pixel forward pass per image)
EVAL_N: dict[tuple[str, str], tuple[int | None, int]] = {
    ("vae", "mnist5k"): (None, 256),
    ("pixelcnn", "mnist5k"): (None, 256),
    ("gpt", "mnist5k"): (256, 128),
    ("nice", "mnist5k"): (None, 256),
    ("realnvp", "mnist5k"): (None, 256),
    ("glow", "mnist5k"): (None, 256),
}

# per-model settings of the benchmark (the rest are the models' defaults)
EXTRA: dict[str, dict[str, Any]] = {
    "ppca": {"latent_dim": 16},
    "ddpm": {"sample_steps": 50},  # only the final sample grid: likelihoods use all T steps
}
EXTRA_DATA: dict[tuple[str, str], dict[str, Any]] = {
    ("gpt", "mnist5k"): {"batch_size": 16},  # 784-token sequences
    ("pixelcnn", "mnist5k"): {"batch_size": 32},
}

# which evaluation keys become rows: (key, label)
ROWS: list[tuple[str, str]] = [
    ("log_prob_bpd", "exact"),
    ("elbo_bpd", "ELBO bound"),
    ("iwae64_bpd", "IWAE(64) bound"),
    ("ode_log_prob_bpd", "ODE (probability flow)"),
]


@torch.no_grad()
def split_bpd(run: Path, n: int, split: str = "train", seed: int = 0) -> dict[str, float]:
    """Bits/dim of ``n`` examples of ``split`` (random, fixed), computed as ``genzoo.evaluate``
    does on the test split: on the training split, the gap to the test number is over-fitting."""
    from genzoo.core.runs import read_run_config
    from genzoo.data import load_dataset
    from genzoo.metrics.likelihood import bits_per_dim

    model = genzoo.load(run)
    data = load_dataset(read_run_config(run)["data"], split)
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    g = torch.Generator().manual_seed(seed + 1)
    sums: dict[str, float] = {}
    for chunk in idx.split(256):
        batch = data.get(chunk, dequantize=model.dequantize, generator=g)
        vals = model.eval_metrics({k: v.to(model.device) for k, v in batch.items()}, generator=g)
        for k, v in vals.items():
            sums[k] = sums.get(k, 0.0) + float(v.double().sum())
    levels = model.bpd_levels if likelihood_kind(model) != "none" else model.info.levels
    return {
        f"{k}_bpd": float(bits_per_dim(-v / len(idx), model.info.dim, levels))
        for k, v in sums.items()
        if k in ("log_prob", "elbo", "iwae64")
    }


def final_grid(run: Path) -> Path | None:
    """The run's last sample grid (written by the trainer at its final step)."""
    grids = sorted((run / "samples").glob("step_*.png"))
    return grids[-1] if grids else None


def run_one(
    name: str,
    data: str,
    out: Path,
    steps: int,
    budget: str = "",
    eval_n: int | None = 256,
    train_n: int = 1000,
    grids: Path | None = None,
) -> list[dict[str, Any]]:
    """Train ``name`` on ``data`` (unless ``out`` already holds the run), evaluate it on the test
    split and on ``train_n`` training images, and return one row per likelihood it reports."""
    run = out / f"{name}-{data}"
    t = time.perf_counter()
    if not (run / "config.yaml").exists():
        over = {"progress": False, "tensorboard": False, "n_samples": 16, "ckpt_every": 0}
        over |= EXTRA.get(name, {}) | EXTRA_DATA.get((name, data), {})
        if budget:
            genzoo.train(name, data, budget=budget, out=run, overrides=over)
        else:
            genzoo.train(name, data, steps=steps, out=run, overrides=over)
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    diffusion = name == "ddpm"
    test_n = eval_n if diffusion else None
    test_n, train_n = EVAL_N.get((name, data), (test_n, train_n))
    res = genzoo.evaluate(run, n=test_n, ode=diffusion, ode_n=eval_n or 256)
    eval_s = time.perf_counter() - t
    train = split_bpd(run, min(eval_n or train_n, train_n) if diffusion else train_n)
    grid = final_grid(run)
    if grids is not None and grid is not None:
        grids.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(grid, grids / f"bpd-{name}-{data}.png")
    rows = []
    for key, label in ROWS:
        if key in res:
            rows.append(
                {
                    "model": name,
                    "likelihood": label,
                    "steps": res["step"],
                    "train_s": round(train_s, 1),
                    "eval_s": round(eval_s, 1),
                    "n_test": res.get("ode_n", res["n"]) if key.startswith("ode") else res["n"],
                    "bpd": round(res[key], 4),
                    "train_bpd": round(train[key], 4) if key in train else None,
                }
            )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="digits", choices=sorted(STEPS))
    p.add_argument("--models", default="", help="comma-separated (default: all for --data)")
    p.add_argument("--budget", default="", help="a time budget per model instead of fixed steps")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--eval-n", type=int, default=256, help="test images for DDPM's VLB and ODE")
    p.add_argument("--train-n", type=int, default=1000, help="training images for train bpd")
    p.add_argument("--steps", type=int, default=0, help="steps for every model (0: the table)")
    p.add_argument("--grids", default="", help="copy each final sample grid into this folder")
    p.add_argument("--out", default="runs/bench-bpd")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    rows: list[dict[str, Any]] = []
    head = "| model | likelihood | steps | train s | eval s | test images | test bits/dim |"
    print(head + " train bits/dim |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in args.models.split(",") if args.models else DEFAULT_MODELS[args.data]:
        steps = args.steps or STEPS[args.data][name]
        grids = Path(args.grids) if args.grids else None
        rows_m = run_one(name, args.data, out, steps, args.budget, args.eval_n, args.train_n, grids)
        for r in rows_m:
            rows.append(r)
            tr = "—" if r["train_bpd"] is None else f"{r['train_bpd']:.3f}"
            print(
                f"| {r['model']} | {r['likelihood']} | {r['steps']} | {r['train_s']:.0f} | "
                f"{r['eval_s']:.0f} | {r['n_test']} | {r['bpd']:.3f} | {tr} |",
                flush=True,
            )
    out.mkdir(parents=True, exist_ok=True)
    (out / f"results-{args.data}.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
