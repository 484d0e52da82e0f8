"""PixelCNN on digits trained in float32 and under bf16 autocast side by side: train and test
bits/dim every few hundred steps (both evaluated in float32, and the bf16 model under autocast).

The two models start from the same weights and see the same batches with the Trainer's optimizer
settings (AdamW, lr 1e-3, batch 64, gradient norm clipped at 1), so any gap between the columns is
the precision; the gap between train and test is over-fitting.

    python benchmarks/pixelcnn_precision.py --steps 2500 --every 250 --threads 1
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from genzoo.data import load_dataset
from genzoo.models.autoregressive import PixelCNN, PixelCNNConfig


@torch.no_grad()
def bpd(model: PixelCNN, x: torch.Tensor, autocast: bool = False) -> float:
    """Exact discrete bits/dim of ``x`` (bin centres)."""
    model.eval()
    if autocast:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lp = model.log_prob(x)
    else:
        lp = model.log_prob(x)
    model.train()
    return float(-lp.double().mean() / (x[0].numel() * math.log(2)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset("digits", "train")
    train = data.all()["x"]
    test = load_dataset("digits", "test").all()["x"]
    models, opts = {}, {}
    for prec in ("fp32", "bf16"):
        torch.manual_seed(args.seed)
        models[prec] = PixelCNN(PixelCNNConfig(), data.info)
        opts[prec] = torch.optim.AdamW(models[prec].parameters(), lr=1e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(args.seed)
    print("| steps | fp32 train | fp32 test | bf16 train | bf16 test | bf16 test, autocast eval |")
    print("|---:|---:|---:|---:|---:|---:|")
    rows = []
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, len(train), (64,), generator=g)
        for prec, model in models.items():
            opt = opts[prec]
            opt.zero_grad(set_to_none=True)
            if prec == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    loss = model.loss({"x": train[idx]}).loss
            else:
                loss = model.loss({"x": train[idx]}).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        if step % args.every == 0:
            sub = train[: len(test)]
            row = {
                "step": step,
                "fp32_train": bpd(models["fp32"], sub),
                "fp32_test": bpd(models["fp32"], test),
                "bf16_train": bpd(models["bf16"], sub),
                "bf16_test": bpd(models["bf16"], test),
                "bf16_test_autocast": bpd(models["bf16"], test, autocast=True),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            rows.append(row)
            vals = " | ".join(f"{v:.3f}" for k, v in row.items() if k not in ("step", "seconds"))
            print(f"| {step} | {vals} |", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
