"""ControlNet on digits: an edge-map control over a class-conditional pixel EDM.

The base is ``edm`` on ``digits`` (class-conditional, the U-Net of benchmarks/vqgan.py); the
ControlNet is ``genzoo train controlnet --base RUN --control edges`` (the control map is the
thresholded Sobel edge map of each image, :func:`genzoo.data.control.edge_map`). Held-out controls
are the edge maps of the first ``--n`` test digits, sampled with each image's label and the same
noise for every row. Scores: the edge map of each sample against its control, per image (IoU and
F1 of the edge pixels), and the digits classifier's accuracy on the control image's label. The
base's samples for the same labels and noise (no control) are scored the same way (the real test
images score 1 by construction).

    python benchmarks/controlnet_digits.py --threads 1 --out runs/bench-cn-digits \
        --pictures docs/img
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from benchutil import ROOT  # noqa: F401  (puts the checkout on sys.path)

import genzoo
from genzoo.data import load_dataset
from genzoo.data.control import edge_map
from genzoo.metrics import get_classifier
from genzoo.runs import open_run
from genzoo.runs.controlnet import train_controlnet

QUIET = {"progress": False, "tensorboard": False, "n_samples": 16, "ckpt_every": 500}
BASE = {
    "channels": 32,
    "channel_mult": (1, 2),
    "class_conditional": True,
    "batch_size": 64,
    "lr": 1e-3,
    "ema_decay": 0.999,
}  # fmt: skip  (benchmarks/vqgan.py's edm)


def scores(edges: torch.Tensor, control: torch.Tensor) -> dict[str, float]:
    """Mean per-image IoU and F1 of two ``(B, 1, H, W)`` {0, 1} edge maps."""
    a, b = edges.bool().flatten(1), control.bool().flatten(1)
    inter = (a & b).sum(1).float()
    union = (a | b).sum(1).float()
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter))
    f1 = torch.where(
        union > 0, 2 * inter / (a.sum(1) + b.sum(1)).clamp_min(1), torch.ones_like(inter)
    )
    return {"edge_iou": float(iou.mean()), "edge_f1": float(f1.mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/bench-cn-digits")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--base-steps", type=int, default=500)
    ap.add_argument("--cn-steps", type=int, default=300)
    ap.add_argument("--n", type=int, default=200, help="held-out test controls")
    ap.add_argument("--sample-steps", type=int, default=10, help="Heun steps")
    ap.add_argument("--pictures", help="folder for docs/controlnet.md's picture")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    base_dir, cn_dir = out / "edm", out / "controlnet-edges"
    t0 = time.perf_counter()
    if not (base_dir / "config.yaml").exists():
        genzoo.train("edm", "digits", steps=args.base_steps, out=base_dir,
                     overrides={**QUIET, **BASE})  # fmt: skip
    t1 = time.perf_counter()
    if not (cn_dir / "config.yaml").exists():
        train_controlnet(base_dir, "edges", steps=args.cn_steps, out=cn_dir,
                         overrides={**QUIET, "batch_size": 64})  # fmt: skip
    t2 = time.perf_counter()
    base, cn = open_run(base_dir).model, open_run(cn_dir).model
    test = load_dataset("control:edges:digits", "test")
    batch = test.get(torch.arange(min(args.n, len(test))))
    control, y = batch["control"], batch["y"]
    clf = get_classifier("digits")
    kw = {"steps": args.sample_steps, "cond": y}
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    xs = {
        "controlnet (scale 1)": cn.sample(len(y), control=control, generator=g(), **kw),
        "base edm (no control)": base.sample(len(y), generator=g(), **kw),
        "controlnet, scale 0": cn.sample(
            len(y), control=control, control_scale=0.0, generator=g(), **kw
        ),
        "real test images": batch["x"],
    }
    rows = {}
    for name, x in xs.items():
        rows[name] = {**scores(edge_map(x), control), "class_accuracy": clf.accuracy(x, y)}
        print(name, json.dumps(rows[name]), flush=True)
    res = {
        "base_step": open_run(base_dir).step,
        "cn_step": open_run(cn_dir).step,
        "base_train_s": round(t1 - t0, 1),
        "cn_train_s": round(t2 - t1, 1),
        "scale0_equals_base": bool(
            torch.equal(xs["controlnet, scale 0"], xs["base edm (no control)"])
        ),
        "rows": rows,
        "date": time.strftime("%Y-%m-%d"),
    }
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "rows"}))
    print("| images | edge IoU | edge F1 | class accuracy |\n|---|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['edge_iou']:.3f} | {r['edge_f1']:.3f} | {r['class_accuracy']:.3f} |")
    if args.pictures:
        picture(Path(args.pictures) / "controlnet_digits_edges.png", control[:10], xs, y[:10])


def picture(path: Path, control: torch.Tensor, xs: dict, y: torch.Tensor) -> None:
    """Rows: the control edge map, the ControlNet's sample, the base's sample (same label and
    noise), the real test digit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        ("control (edges)", control * 2 - 1),
        ("controlnet", xs["controlnet (scale 1)"]),
        ("base, no control", xs["base edm (no control)"]),
        ("test digit", xs["real test images"]),
    ]
    k = control.shape[0]
    fig, axes = plt.subplots(len(rows), k, figsize=(1.0 * k, 1.1 * len(rows)), dpi=90)
    for i, (label, x) in enumerate(rows):
        for j in range(k):
            axes[i, j].imshow(((x[j, 0] + 1) / 2).clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if i == 0:
                axes[i, j].set_title(f"label {int(y[j])}", fontsize=7)
        axes[i, 0].set_ylabel(label, fontsize=7)
    fig.suptitle("ControlNet on digits 8x8: held-out test edge maps", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
