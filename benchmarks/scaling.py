"""Scaling laws at tiny scale: GPTs of several sizes over a grid of token budgets on
``text:pystdlib``, the fit ``L(N, D) = E + A/N^alpha + B/D^beta`` and its compute-optimal frontier.

Each size (width, layers) is one GPT run (character tokens, 128-token windows, no dropout, AdamW
at a constant learning rate after a linear warm-up, batch ``--batch`` windows). It is trained to
the first token budget, its held-out loss measured on the whole test split (nats per token, from
the model's exact ``log_prob``), then resumed to the next budget, and so on: genzoo's resume is
exact, so with a constant learning rate each budget's point is the run one would get by training
to that budget alone (with a cosine schedule fitted to each budget, as Chinchilla did, the losses
would be a little lower; that costs twice the compute).

``N`` counts the non-embedding parameters, as Kaplan et al. (arXiv:2001.08361) do (the token and
position embeddings are left out; the read-out is tied to the token embedding). ``D`` is the
tokens seen in training (``steps * batch * 128``); compute is ``C = 6 N D``. The fit is
:func:`genzoo.metrics.scaling.fit_scaling_law` (Chinchilla's approach 3: Huber loss, delta 1e-3,
on log L, L-BFGS from a grid of starts).

    python benchmarks/scaling.py --threads 1 --out runs/scaling --plot docs/img/scaling-pystdlib.png
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

import genzoo
from genzoo.data import load_dataset
from genzoo.metrics.scaling import ScalingFit, fit_scaling_law
from genzoo.runs.load import open_run

SIZES = ((16, 1), (32, 1), (48, 2), (64, 2), (96, 3))  # (width, layers)
QUICK_SIZES = ((8, 1), (16, 1), (24, 1))
BLOCK = 128  # text:pystdlib windows
QUIET = {"progress": False, "tensorboard": False, "log_every": 100, "n_samples": 1}


def non_embedding_params(model: torch.nn.Module) -> int:
    """Parameters outside the token and position embeddings (Kaplan's N)."""
    emb = sum(
        p.numel()
        for m in model.modules()
        if isinstance(m, torch.nn.Embedding)
        for p in m.parameters()
    )
    return sum(p.numel() for p in model.parameters()) - emb


@torch.no_grad()
def heldout_nats(model: torch.nn.Module, x: torch.Tensor, chunk: int = 64) -> float:
    """Mean negative log-likelihood per token of the test windows ``x`` ``(M, 128)``."""
    model.eval()
    total = sum(float(model.log_prob(x[i : i + chunk]).sum()) for i in range(0, len(x), chunk))
    return -total / x.numel()


def run_size(
    width: int, layers: int, steps: list[int], args: argparse.Namespace, test_x: torch.Tensor
) -> list[dict]:
    out = Path(args.out) / f"gpt-w{width}-l{layers}"
    shutil.rmtree(out, ignore_errors=True)
    over = {
        **QUIET,
        "n_layer": layers,
        "n_head": max(1, width // 16),
        "n_embd": width,
        "dropout": 0.0,
        "batch_size": args.batch,
        "lr": args.lr,
        "warmup": args.warmup,
        "seed": args.seed,
        "ckpt_every": 0,
    }
    rows = []
    t0 = time.perf_counter()
    for i, s in enumerate(steps):
        if i == 0:
            genzoo.train("gpt", "text:pystdlib", steps=s, out=out, overrides=over)
        else:
            genzoo.train(resume=out, steps=s, overrides={"progress": False, "tensorboard": False})
        model = open_run(out).model
        n = non_embedding_params(model)
        loss = heldout_nats(model, test_x)
        rows.append(
            {
                "width": width,
                "layers": layers,
                "N": n,
                "N_total": sum(p.numel() for p in model.parameters()),
                "steps": s,
                "D": s * args.batch * BLOCK,
                "loss": loss,
                "train_s": time.perf_counter() - t0,
            }
        )
        print(f"  w{width} l{layers} N={n} steps={s} loss={loss:.4f} nats/token", flush=True)
    return rows


def plot(rows: list[dict], fit: ScalingFit, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    sizes = sorted({(r["width"], r["layers"], r["N"]) for r in rows}, key=lambda t: t[2])
    for k, (w, layers, n) in enumerate(sizes):
        pts = sorted((r for r in rows if r["N"] == n), key=lambda r: r["D"])
        c = np.array([6 * n * r["D"] for r in pts])
        ax.plot(c, [r["loss"] for r in pts], "o", color=f"C{k}", label=f"N={n:,} (w{w}, {layers}L)")
        dd = np.geomspace(pts[0]["D"] / 2, pts[-1]["D"] * 2, 50)
        ax.plot(6 * n * dd, fit.loss(n, dd), "-", color=f"C{k}", alpha=0.5, lw=1)
    c_all = np.array([6 * r["N"] * r["D"] for r in rows])
    cc = np.geomspace(c_all.min() / 2, c_all.max() * 2, 100)
    n_opt, d_opt = fit.optimal(cc)
    ax.plot(cc, fit.loss(n_opt, d_opt), "k--", lw=1.5, label="fitted compute-optimal frontier")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C = 6ND (FLOPs)")
    ax.set_ylabel("held-out loss (nats/token)")
    ax.set_title(
        f"text:pystdlib, L = {fit.E:.2f} + {fit.A:.3g}/N^{fit.alpha:.2f} "
        f"+ {fit.B:.3g}/D^{fit.beta:.2f}"
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def report(rows: list[dict]) -> ScalingFit:
    print(
        "\n| width | layers | N (non-emb.) | N (total) | steps | D (tokens) | C = 6ND "
        "| held-out nats/token |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["N"], r["D"])):
        print(
            f"| {r['width']} | {r['layers']} | {r['N']:,} | {r['N_total']:,} | {r['steps']} | "
            f"{r['D']:,} | {6 * r['N'] * r['D']:.2e} | {r['loss']:.4f} |"
        )
    n, d, y = (np.array([r[k] for r in rows], dtype=float) for k in ("N", "D", "loss"))
    fit = fit_scaling_law(n, d, y)
    print(
        f"\nfit (Huber delta 1e-3 on log L): E = {fit.E:.3f}, A = {fit.A:.4g}, "
        f"alpha = {fit.alpha:.3f}, "
        f"B = {fit.B:.4g}, beta = {fit.beta:.3f}; rms log-residual {fit.rmse_log:.4f}"
    )
    s = fit.alpha + fit.beta
    print(f"N* ~ C^{fit.beta / s:.3f}, D* ~ C^{fit.alpha / s:.3f} (Chinchilla Eq. 4)")
    c_all = 6 * n * d
    print("\n| C (FLOPs) | N* | D* | D*/N* (tokens per parameter) | fitted L |")
    print("|---|---|---|---|---|")
    for c in np.geomspace(c_all.min(), c_all.max(), 4):
        no, do = fit.optimal(c)
        lo = float(fit.loss(no, do))
        print(
            f"| {c:.2e} | {float(no):,.0f} | {float(do):,.0f} | {float(do / no):.1f} | {lo:.4f} |"
        )
    return fit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", default="125,250,500,1000", help="token budgets, as cumulative steps")
    p.add_argument("--batch", type=int, default=16, help="windows of 128 tokens per step")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="3 tiny sizes x 2 budgets (a smoke run)")
    p.add_argument("--out", default="runs/scaling")
    p.add_argument(
        "--plot", help="write loss against compute with the fitted frontier to this .png"
    )
    p.add_argument(
        "--report-only", action="store_true", help="train nothing: fit --out/results.json"
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["GENZOO_THREADS"] = str(args.threads)
    out = Path(args.out)
    res = out / "results.json"
    t0 = time.perf_counter()
    if args.report_only:
        rows = json.loads(res.read_text())
    else:
        sizes = QUICK_SIZES if args.quick else SIZES
        steps = [20, 40] if args.quick else [int(s) for s in args.steps.split(",")]
        test_x = load_dataset("text:pystdlib", "test").x  # (M, 128)
        if args.quick:
            test_x = test_x[:32]
        rows = []
        for w, layers in sizes:
            rows += run_size(w, layers, steps, args, test_x)
            out.mkdir(parents=True, exist_ok=True)
            res.write_text(json.dumps(rows, indent=1))
    print(f"\ntext:pystdlib (char tokens, 128-token windows), batch {args.batch}, lr {args.lr}")
    if len(rows) <= 5:
        print(f"{len(rows)} points: too few for the 5-parameter fit (it needs more than 5).")
        return
    fit = report(rows)
    if args.plot:
        plot(rows, fit, Path(args.plot))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
