"""Test bits/dim of the likelihood families on one dataset, each trained for the same budget.

Exact likelihoods (PixelCNN, GPT over pixels, NICE, RealNVP, Glow) and the VAE's IWAE bound are
all reported in genzoo's one convention (README: uniformly dequantized data on [0, L)^D, or the
exact discrete NLL for the autoregressive models), through ``genzoo.evaluate``.

    python benchmarks/likelihood_bpd.py --data digits --budget 40s
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import genzoo

MODELS = ["pixelcnn", "gpt", "nice", "realnvp", "glow", "vae"]
KEYS = ["log_prob_bpd", "iwae64_bpd", "elbo_bpd"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="digits")
    p.add_argument("--budget", default="40s")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--out", default="runs/bench-bpd")
    args = p.parse_args()
    rows = []
    print("| model | likelihood | steps | wall s (train + grid) | test bits/dim |")
    print("|---|---|---:|---:|---:|")
    for name in args.models.split(","):
        run = Path(args.out) / f"{name}-{args.data}"
        t = time.perf_counter()
        if not (run / "config.yaml").exists():
            over = {"progress": False, "tensorboard": False}
            genzoo.train(name, args.data, budget=args.budget, out=run, overrides=over)
        dt = time.perf_counter() - t
        res = genzoo.evaluate(run)
        key = next(k for k in KEYS if k in res)
        kind = "exact" if key == "log_prob_bpd" else key.split("_")[0] + " bound"
        rows.append({"model": name, "kind": kind, "step": res["step"], "bpd": res[key]})
        print(f"| {name} | {kind} | {res['step']} | {dt:.0f} | {res[key]:.3f} |", flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"results-{args.data}.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
