"""The baselines of the self-supervised probe table: raw pixels, a random-init encoder, a
supervised encoder (genzoo's classifier of the dataset), a VAE's latent (posterior mean) and, on
shapes, CLIP's image encoder — probed exactly as the SSL methods of
``benchmarks/self_supervised.py`` are (:func:`genzoo.metrics.representation.probe_table`: a
logistic-regression probe on standardised features and a weighted 20-NN, labels per class drawn
from the train split, accuracy on the test split).

The supervised encoder saw every label of the train split while it was trained, so its row is a
ceiling for a few-label probe, not a peer: a self-supervised method is label-free.

    genzoo train vae --data mnist5k --steps 600 --out runs/vae-mnist5k lr=2e-3
    genzoo train clip --data "shapes?objects=1&n=4000" --steps 300 --out runs/clip-shapes
    python -m benchmarks.ssl_baselines --vae runs/vae-mnist5k --clip runs/clip-shapes
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from genzoo.data import load_dataset
from genzoo.data.base import Dataset
from genzoo.metrics.representation import probe_table
from genzoo.models import MODELS
from genzoo.runs.baselines import (
    clip_image_features,
    latent_features,
    pixel_features,
    supervised_features,
)
from genzoo.runs.represent import features, probe_targets

DATA = {"mnist5k": "mnist5k", "shapes": "shapes?objects=1&n=4000"}
ALL_LABELS_MAX_DIM = 1024
"""Features wider than this get no all-label probe (shapes' 3,072 raw pixels did not finish)."""


def random_init(spec: str, seed: int) -> Callable[[Dataset], np.ndarray]:
    """SimCLR's backbone (width 16, as benchmarks/self_supervised.py) left untrained."""

    def fn(data: Dataset) -> np.ndarray:
        torch.manual_seed(seed)
        cls = MODELS.get("simclr")
        model = cls(cls.config_class.from_dict({"width": 16}), data.info).eval()
        return features(model, data)

    return fn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="mnist5k,shapes")
    ap.add_argument("--vae", help="a vae run on mnist5k (its posterior mean)")
    ap.add_argument("--clip", help="a clip run on shapes?objects=1&n=4000 (its image encoder)")
    ap.add_argument("--budgets", default="10,all", help="labels per class (all: every label)")
    ap.add_argument("--label-draws", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", default="pixels,random,supervised,vae,clip", help="baselines")
    args = ap.parse_args()
    wanted = set(args.rows.split(","))
    torch.set_num_threads(1)
    budgets = [None if b == "all" else int(b) for b in args.budgets.split(",")]
    for dname in args.data.split(","):
        spec = DATA[dname]
        train, test = load_dataset(spec, "train"), load_dataset(spec, "test")
        ytr, yte = probe_targets(train), probe_targets(test)
        if dname == "shapes":
            ytr.pop("class"), yte.pop("class")
        rows: list[tuple[str, int, dict]] = []
        extractors: dict[str, tuple[str, Callable[[Dataset], np.ndarray]]] = {
            "raw pixels": ("pixels", pixel_features),
            "random-init encoder": ("random", random_init(spec, args.seed)),
            "supervised encoder (genzoo classifier, all labels)": (
                "supervised",
                lambda d, s=spec: supervised_features(s, d),
            ),
        }
        if args.vae and dname == "mnist5k":
            extractors["VAE latent (posterior mean)"] = (
                "vae",
                lambda d: latent_features(args.vae, d),
            )
        if args.clip and dname == "shapes":
            extractors["CLIP image encoder"] = ("clip", lambda d: clip_image_features(args.clip, d))
        for name, (key, fn) in extractors.items():
            if key not in wanted:
                continue
            t0 = time.perf_counter()
            ftr, fte = fn(train), fn(test)
            use = [b for b in budgets if b is not None or ftr.shape[1] <= ALL_LABELS_MAX_DIM]
            acc: dict[tuple[str, str], list[tuple[float, float]]] = {}
            for s in range(args.label_draws):
                draw = use if s == 0 else [b for b in use if b is not None]  # "all": one draw
                for r in probe_table(ftr, ytr, fte, yte, draw, seed=args.seed + s):
                    key = (r["target"], str(r["labels"]))
                    acc.setdefault(key, []).append((r["linear"], r["knn"]))
            mean = {k: tuple(np.mean(v, axis=0)) for k, v in acc.items()}
            rows.append((name, ftr.shape[1], mean))
            print(f"  {dname} {name}: d={ftr.shape[1]}, {time.perf_counter() - t0:.0f} s, "
                  f"{mean}", flush=True)  # fmt: skip
        keys = [(t, "all" if b is None else str(b)) for t in ytr for b in budgets]
        print(f"\n### {dname}: test accuracy, % (linear probe / weighted k-NN), labels per class\n")
        print("| baseline | d | " + " | ".join(f"{t}, {b}" for t, b in keys) + " |")
        print("|---|---:|" + "---:|" * len(keys))
        for name, d, mean in rows:
            cells = [
                f"{100 * mean[k][0]:.1f} / {100 * mean[k][1]:.1f}" if k in mean else "—"
                for k in keys
            ]
            print(f"| {name} | {d} | " + " | ".join(cells) + " |")
        print(flush=True)


if __name__ == "__main__":
    main()
