"""dVAE against VQ-VAE as the code model of the DALL-E-style text-to-image (``t2i-vq``) on
``shapes?size=16``: each code model's reconstruction and code usage, and the attribute accuracy of
``t2i-vq`` trained over each with the same settings, prompts, seeds and judge.

Runs (the one Trainer, fixed step counts; finished runs under ``--out`` are re-used): ``vqvae``
and ``dvae`` with the same K, grid, code width and conv encoder/decoder, then ``t2i-vq`` over each
(``vqvae_run`` = that code model; the dVAE works as its code model). Prompts: the captions of the
first held-out test images (colour-shape pairs never seen in training), as in
``benchmarks/text_to_image.py``; judge: genzoo's attribute classifier
(:mod:`genzoo.metrics.text_to_image`, trained on fresh scenes, cached).

    python benchmarks/dvae_t2i.py --threads 1
    # or the two chains at once, then the table from their saved rows:
    python benchmarks/dvae_t2i.py --threads 1 --only vqvae & python benchmarks/dvae_t2i.py \
        --threads 1 --only dvae; wait; python benchmarks/dvae_t2i.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from benchutil import ROOT  # noqa: F401  (puts the checkout on sys.path)
from text_to_image import heldout_prompts  # the same held-out prompts as the t2i benchmark

import genzoo
from genzoo.data.shapes import load_shapes
from genzoo.metrics.frechet import frechet_distance
from genzoo.metrics.text_to_image import prompt_attribute_accuracy, train_attribute_classifier

DATA = "shapes?size=16"
QUIET = {"progress": False, "tensorboard": False, "ckpt_every": 0, "n_samples": 16}
# the same K, code width, 8x8 grid and conv encoder/decoder for both code models (the VQ-VAE of
# benchmarks/text_to_image.py), batch 64, lr 2e-3
CODE = {"codebook_size": 64, "code_dim": 16, "width": 32, "downsample": 1, "res_blocks": 1,
        "batch_size": 64, "lr": 2e-3}  # fmt: skip
T2I = {"n_layer": 3, "n_embd": 96, "n_head": 4, "dropout": 0.0, "batch_size": 64, "lr": 1e-3,
       "warmup": 50}  # fmt: skip


def train(out: Path, label: str, model: str, steps: int, over: dict[str, Any]) -> float:
    """Train ``out/label`` to ``steps`` (a finished run is re-used, an interrupted one
    resumed); its training seconds."""
    run = out / label
    if (run / "config.yaml").exists():
        last = json.loads((run / "metrics.jsonl").read_text().strip().splitlines()[-1])
        if int(last["step"]) < steps:
            genzoo.train(resume=run, steps=steps)
    else:
        genzoo.train(model, DATA, steps=steps, out=run, overrides={**QUIET, **over})
    last = (run / "metrics.jsonl").read_text().strip().splitlines()[-1]
    return float(json.loads(last)["time"])


@torch.no_grad()
def code_stats(m: Any, x: torch.Tensor, k: int) -> dict[str, float]:
    """Reconstruction MSE through the (argmax / nearest) codes, codes in use and the perplexity
    of their frequencies over ``x``."""
    codes = torch.cat([m.encode_codes(x[i : i + 500]) for i in range(0, len(x), 500)])
    rec = torch.cat([m.decode_codes(codes[i : i + 500]) for i in range(0, len(x), 500)])
    counts = torch.bincount(codes.flatten(), minlength=k).double()
    p = counts / counts.sum()
    return {
        "mse": float((rec.clamp(-1, 1) - x).pow(2).mean()),
        "codes_used": int((counts > 0).sum()),
        "perplexity": math.exp(-float((p * p.clamp_min(1e-12).log()).sum())),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/bench-dvae-t2i")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--code-steps", type=int, default=1500, help="vqvae and dvae steps")
    ap.add_argument("--ar-steps", type=int, default=800, help="t2i-vq steps over each")
    ap.add_argument("--n-single", type=int, default=150)
    ap.add_argument("--n-pair", type=int, default=100)
    ap.add_argument("--guidance", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    ap.add_argument("--seed", type=int, default=0, help="sampling seed (the same for both)")
    ap.add_argument("--only", choices=["vqvae", "dvae"], help="train and measure one code model "
                    "(two processes at once); a run without it re-uses their rows")  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    anneal = int(0.6 * args.code_steps)  # the dVAE's temperature reaches 1/16 at 60% of training
    models = {"vqvae": ("vqvae", CODE), "dvae": ("dvae", {**CODE, "anneal_steps": anneal})}
    res: dict[str, Any] = {"data": DATA, "code_steps": args.code_steps, "ar_steps": args.ar_steps}
    clf = train_attribute_classifier(16, n=20_000, steps=4000)  # cached
    prompts, idx = heldout_prompts(args.n_single, args.n_pair)
    test = load_shapes(DATA, "test")
    x_test = test.get(torch.arange(len(test)))["x"]
    real = x_test[idx]
    real_feats = clf.read(real)["features"]

    def judge(x: torch.Tensor) -> dict[str, float]:
        r = clf.read(x)
        acc = prompt_attribute_accuracy(r, prompts)
        acc["fd"] = frechet_distance(r["features"], real_feats)
        return acc

    res["real"] = judge(real)
    for label, (model, over) in models.items():
        if args.only and label != args.only:
            continue
        saved = out / f"row-{label}.json"  # the row of an earlier --only run, same settings
        key = {"code_steps": args.code_steps, "ar_steps": args.ar_steps, "seed": args.seed,
               "guidance": args.guidance, "n": [args.n_single, args.n_pair]}  # fmt: skip
        if saved.exists() and json.loads(saved.read_text())["key"] == key:
            res[label] = json.loads(saved.read_text())["row"]
            continue
        code_s = train(out, label, model, args.code_steps, over)
        t2i_label = f"t2i-vq-over-{label}"
        ar_s = train(out, t2i_label, "t2i-vq", args.ar_steps,
                     {**T2I, "vqvae_run": str(out / label)})  # fmt: skip
        code_model = genzoo.load(out / label, device="cpu").eval()
        ar = genzoo.load(out / t2i_label, device="cpu").eval()
        row: dict[str, Any] = {"code_train_s": code_s, "ar_train_s": ar_s}
        row["params"] = sum(p.numel() for p in code_model.parameters())
        row.update(code_stats(code_model, x_test, CODE["codebook_size"]))
        with torch.no_grad():
            row["recon"] = judge(code_model.decode_codes(code_model.encode_codes(real)))
        last = json.loads((out / t2i_label / "metrics.jsonl").read_text().splitlines()[-1])
        row["ar_bits_per_code"] = last.get("bits_per_code")
        for w in args.guidance:
            g = torch.Generator().manual_seed(args.seed)
            t0 = time.perf_counter()
            with torch.no_grad():
                x = torch.cat([
                    ar.sample(len(prompts[i : i + 125]), prompts=prompts[i : i + 125],
                              generator=g, guidance=w, temperature=1.0)
                    for i in range(0, len(prompts), 125)
                ])  # fmt: skip
            row[f"w={w:g}"] = {**judge(x), "sample_s": time.perf_counter() - t0}
        res[label] = row
        saved.write_text(json.dumps({"key": key, "row": row}, indent=2))
        print(label, json.dumps(row), flush=True)
    if args.only:
        return
    (out / "results.json").write_text(json.dumps(res, indent=2))
    print(table(res, args.guidance))


def table(res: dict[str, Any], guidance: list[float]) -> str:
    """The markdown tables of RESULTS.md."""
    lines = [
        "| code model | params | steps | train s | test MSE | codes used (of 64) | code perplexity "
        "| recon: single all | colour | shape | FD |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label in ("vqvae", "dvae"):
        r = res[label]
        c = r["recon"]
        lines.append(
            f"| {label} | {r['params']:,} | {res['code_steps']} | {r['code_train_s']:.0f} | "
            f"{r['mse']:.4f} | {r['codes_used']} | {r['perplexity']:.1f} | "
            f"{100 * c['single_all']:.1f} | {100 * c['single_colour']:.1f} | "
            f"{100 * c['single_shape']:.1f} | {c['fd']:.0f} |"
        )
    lines += [
        "",
        "| t2i-vq over | guidance | single: all | colour | shape | position | size | count | "
        "pairs: count | pair words | FD |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cols = ["single_all", "single_colour", "single_shape", "single_position", "single_size",
            "single_count", "pair_count", "pair_words"]  # fmt: skip
    real = res["real"]
    pct = " | ".join(f"{100 * real[c]:.1f}" for c in cols)
    lines.append(f"| real test images (the judge's ceiling) | — | {pct} | 0 |")
    for label in ("vqvae", "dvae"):
        for w in guidance:
            r = res[label][f"w={w:g}"]
            pct = " | ".join(f"{100 * r[c]:.1f}" for c in cols)
            lines.append(
                f"| {label} ({res['ar_steps']} steps) | w = {w:g} | {pct} | {r['fd']:.0f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
