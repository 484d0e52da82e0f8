"""A label-free yardstick: does the Fréchet distance in a self-supervised encoder's features rank
the models of ``genzoo compare`` as the classifier-feature FD does?

For every model of a finished ``genzoo compare`` (its ``results.json`` and trained runs), the
samples compare scored are drawn again (same count, same seed, same code: ``_draw``), and
measured with genzoo's classifier of the dataset (the compare yardstick; its FD is checked
against the one in ``results.json``) and with each given self-supervised run (``features=ssl:RUN``
of ``genzoo eval`` / ``genzoo compare``). Printed: FD, precision and recall in each feature space
per model, the models' FD ranks, and Spearman's rank correlation between the classifier FD and
each SSL FD (:func:`genzoo.metrics.rank_agreement`: ``scipy.stats.spearmanr``); the floor
(training images against the test split) is shown, not ranked.

    genzoo compare --data digits --out runs/compare
    genzoo train simclr --data digits --steps 1000 --out runs/simclr-digits width=16 \\
        batch_size=128 lr=2e-3
    python -m benchmarks.ssl_yardstick --compare runs/compare --ssl runs/simclr-digits
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from scipy.stats import rankdata

from genzoo.compare.run import _draw, _feature_extractor
from genzoo.core.io import load_tensors, read_json, save_tensors
from genzoo.data import load_dataset
from genzoo.metrics import evaluate_samples, rank_agreement
from genzoo.runs import open_run
from genzoo.runs.yardstick import ssl_features

METRICS = ("fd", "prdc")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--compare", default="runs/compare", help="a finished genzoo compare folder")
    ap.add_argument("--ssl", required=True, help="comma-separated self-supervised run folders")
    ap.add_argument("--cache", help="folder to keep the drawn samples in (re-used if present)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.compare)
    res = read_json(out / "results.json")
    data, n, seeds = res["data"], res["n_samples"], res["seeds"]
    test = load_dataset(data, "test")
    ref = test.all()["x"]
    yardsticks = {"classifier": _feature_extractor(data, test.info)}
    for i, run in enumerate(args.ssl.split(",")):
        yardsticks[f"ssl{i + 1}"] = ssl_features(run, test.info)
    for key, ext in yardsticks.items():
        print(f"{key}: {ext.name} ({ext.hash[:12]})")
    rows: list[dict] = []
    for row in res["rows"]:
        if row.get("status") != "ok":
            continue
        scores: dict[str, list[dict]] = {k: [] for k in yardsticks}
        for s in range(seeds):
            run = out / "runs" / f"{row['model']}-seed{s}"
            stem = f"{row['model']}-seed{s}.safetensors"
            cached = Path(args.cache) / stem if args.cache else None
            t0 = time.perf_counter()
            if cached is not None and cached.is_file():
                xs = load_tensors(cached)["x"]
            else:
                xs, _, _ = _draw(open_run(run, device="cpu").model, n, s)
                if cached is not None:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    save_tensors(cached, {"x": xs.contiguous()})
            for k, ext in yardsticks.items():
                scores[k].append(evaluate_samples(xs, ref, ext, metrics=METRICS)["scores"])
            print(f"  {row['model']} seed {s}: {time.perf_counter() - t0:.0f} s", flush=True)
        mean = {
            k: {m: sum(v[m] for v in vs) / len(vs) for m in ("fd", "precision", "recall")}
            for k, vs in scores.items()
        }
        rows.append({"model": row["model"], "compare_fd": row["fd"], **mean})
    train_x = load_dataset(data, "train").all()["x"][: max(n, 2)]
    floor = {
        k: evaluate_samples(train_x, ref, ext, metrics=METRICS)["scores"]
        for k, ext in yardsticks.items()
    }
    keys = list(yardsticks)
    ranks = {k: rankdata([r[k]["fd"] for r in rows]) for k in keys}
    print(
        f"\n### {data}: FD per yardstick, {n} samples per model, {seeds} seed(s) "
        "(rank 1: lowest FD)\n"
    )
    head = " | ".join(f"FD {k} (rank) | P / R {k}" for k in keys)
    print(f"| model | FD in results.json | {head} |")
    print("|---|---:|" + "---:|---:|" * len(keys))
    for i, r in enumerate(rows):
        cells = " | ".join(
            f"{r[k]['fd']:.4g} ({ranks[k][i]:.0f}) | {r[k]['precision']:.2f} / {r[k]['recall']:.2f}"
            for k in keys
        )
        print(f"| {r['model']} | {r['compare_fd']:.2f} | {cells} |")
    cells = " | ".join(
        f"{floor[k]['fd']:.4g} | {floor[k]['precision']:.2f} / {floor[k]['recall']:.2f}"
        for k in keys
    )
    print(f"| *floor: training images* | {res['floor']['fd']:.2f} | {cells} |")
    print()
    fd_cls = [r["classifier"]["fd"] for r in rows]
    for k in keys[1:]:
        rho, p = rank_agreement(fd_cls, [r[k]["fd"] for r in rows])
        print(f"Spearman rho, classifier FD vs {k} FD ({yardsticks[k].name}): {rho:.3f} "
              f"(p = {p:.3g}, {len(rows)} models)")  # fmt: skip
    for i, a in enumerate(keys[1:], 1):
        for b in keys[i + 1 :]:
            rho, p = rank_agreement([r[a]["fd"] for r in rows], [r[b]["fd"] for r in rows])
            print(f"Spearman rho, {a} FD vs {b} FD: {rho:.3f} (p = {p:.3g})")


if __name__ == "__main__":
    main()
