"""GANs on images: conditional-GAN class accuracy, Fréchet distance per objective and seed, and
image-to-image translation (pix2pix, CycleGAN) on the embedded digit tasks.

Every number is measured with genzoo's own digits classifier (``genzoo.metrics.get_classifier``,
trained deterministically and cached): class accuracy = the fraction of samples drawn for class
``k`` that it classifies as ``k``; Fréchet distance in its feature space against the test split.

    python benchmarks/gan_images.py cgan --data digits --steps 3000 --seeds 0,1,2 --threads 1
    python benchmarks/gan_images.py fd --data digits --steps 3000 --set batch_size=64 width=32
    python benchmarks/gan_images.py i2i --task digits-thick --steps 2000 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

import genzoo
from genzoo.data import load_dataset
from genzoo.metrics import evaluate_samples, get_classifier
from genzoo.viz import save_samples_png

QUIET = {"progress": False, "tensorboard": False, "ckpt_every": 0, "log_every": 250}


def _train(model: str, data: str, run: Path, steps: int, over: dict) -> float:
    t = time.perf_counter()
    if not (run / "config.yaml").exists():
        genzoo.train(model, data, steps=steps, out=run, overrides={**QUIET, **over})
    return time.perf_counter() - t


def _settings(text: list[str]) -> dict:
    from genzoo.core.config import parse_overrides

    return parse_overrides(text)


def cmd_cgan(args: argparse.Namespace) -> None:
    """Class accuracy and FD of the conditional GAN, samples for labels 0..K-1 in turn."""
    clf = get_classifier(args.data)
    test = load_dataset(args.data, "test").all()
    k = clf.info.n_classes
    print(f"classifier {clf.name} ({clf.hash[:12]}), test accuracy {clf.test_accuracy:.3f}")
    print("| model | seed | steps | train s | class accuracy | FD |")
    print("|---|---:|---:|---:|---:|---:|")
    accs, fds = [], []
    for seed in args.seeds:
        run = Path(args.out) / f"{args.model}-{args.data}-s{seed}"
        dt = _train(args.model, args.data, run, args.steps, {"seed": seed, **args.set})
        y = torch.arange(k).repeat_interleave(args.n // k)  # (n,) labels 0..K-1 in turn
        x = genzoo.sample(run, len(y), seed=0, cond=y)
        acc = clf.accuracy(x, y)
        fd = evaluate_samples(x, test["x"], clf, metrics=["fd"])["scores"]["fd"]
        accs.append(acc)
        fds.append(fd)
        print(f"| {args.model} | {seed} | {args.steps} | {dt:.0f} | {acc:.3f} | {fd:.2f} |")
        if seed == args.seeds[0]:
            grid = genzoo.sample(run, 10 * k, seed=1, cond=torch.arange(k).repeat(10))
            save_samples_png(
                grid, clf.info, Path(args.out) / f"{args.model}-{args.data}.png", nrow=k
            )
    med_acc, med_fd = statistics.median(accs), statistics.median(fds)
    print(f"median class accuracy {med_acc:.3f}, median FD {med_fd:.2f}")


def seed_spread(values: list[float]) -> dict[str, float]:
    """Median, population std and min / max of one objective's per-seed scores (the spread across
    seeds is the stability figure)."""
    return {
        "median": statistics.median(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def cmd_fd(args: argparse.Namespace) -> dict:
    """FD of unconditional GANs per objective and seed; the spread is the stability figure.

    The floor is ``n`` random training images scored like the samples (same ``n``, same test
    split): the FD of a perfect generator at this sample size. A grid of 64 samples per objective
    (first seed) goes to ``<out>/gan-fd-<model>-<data>.png``."""
    clf = get_classifier(args.data)
    test = load_dataset(args.data, "test").all()["x"]
    train = load_dataset(args.data, "train").all()["x"]
    n_floor = min(args.n, len(train))
    # a random subset: a split may be stored in class order (mnist5k's training split is)
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:n_floor]
    floor = evaluate_samples(train[pick], test, clf, metrics=["fd"])["scores"]["fd"]
    print(f"classifier {clf.name} ({clf.hash[:12]}), test accuracy {clf.test_accuracy:.3f}")
    print(f"FD floor ({n_floor} training images vs the {len(test)} test images): {floor:.2f}")
    print("| model | seed | steps | train s | FD |")
    print("|---|---:|---:|---:|---:|")
    per_model: dict[str, list[float]] = {}
    for model in args.models.split(","):
        fds = per_model.setdefault(model, [])
        for seed in args.seeds:
            run = Path(args.out) / f"{model}-{args.data}-s{seed}"
            dt = _train(model, args.data, run, args.steps, {"seed": seed, **args.set})
            x = genzoo.sample(run, args.n, seed=0)
            fds.append(evaluate_samples(x, test, clf, metrics=["fd"])["scores"]["fd"])
            print(f"| {model} | {seed} | {args.steps} | {dt:.0f} | {fds[-1]:.2f} |", flush=True)
            if seed == args.seeds[0]:
                grid = genzoo.sample(run, 64, seed=1)
                png = Path(args.out) / f"gan-fd-{model}-{args.data}.png"
                save_samples_png(grid, clf.info, png, nrow=8)
    print()
    print("| objective | median FD | std | min-max | floor |")
    print("|---|---:|---:|---:|---:|")
    summary = {m: seed_spread(v) for m, v in per_model.items()}
    for m, s in summary.items():
        print(
            f"| {m} | {s['median']:.2f} | {s['std']:.2f} | {s['min']:.2f}-{s['max']:.2f} "
            f"| {floor:.2f} |"
        )
    return {"floor": floor, "fd": per_model, "summary": summary}


def cmd_i2i(args: argparse.Namespace) -> None:
    """pix2pix on pairs:<task>, CycleGAN on unpaired:<task>: held-out L1 against the identity
    baseline, cycle errors, and a grid per model (rows: source, translation, target)."""
    print("| model | data | steps | train s | L1 | identity L1 | cycle A | cycle B |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for model, prefix in [("pix2pix", "pairs"), ("cyclegan", "unpaired")]:
        if model not in args.models.split(","):
            continue
        data = f"{prefix}:{args.task}"
        run = Path(args.out) / f"{model}-{args.task}"
        over = {**(args.p2p if model == "pix2pix" else args.cyc), **args.set}
        dt = _train(model, data, run, args.steps, over)
        res = genzoo.evaluate(run)
        cyc = [f"{res[k]:.4f}" if k in res else "-" for k in ("cycle_a", "cycle_b")]
        print(
            f"| {model} | {data} | {args.steps} | {dt:.0f} | {res['l1']:.4f} | "
            f"{res['l1_identity']:.4f} | {cyc[0]} | {cyc[1]} |",
            flush=True,
        )
        m = genzoo.load(run)
        test = load_dataset(data, "test").get(torch.arange(16))
        rows = torch.cat([test["src"], m.translate(test["src"]), test["x"]])
        save_samples_png(rows, m.info, Path(args.out) / f"{model}-{args.task}.png", nrow=16)


def main(argv: list[str] | None = None) -> dict | None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["cgan", "fd", "i2i"])
    p.add_argument("--data", default="digits")
    p.add_argument("--model", default="cgan", help="cgan: the conditional model")
    p.add_argument("--models", default="gan,wgan-gp,hinge-sn", help="fd / i2i: models")
    p.add_argument("--task", default="digits-thick", help="i2i: <base>-<task>")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--n", type=int, default=1000, help="samples per run")
    p.add_argument("--set", nargs="*", default=[], metavar="key=value", help="extra settings")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--out", default="runs/bench-gan-images")
    args = p.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.set = _settings(args.set)
    args.p2p = {"width": 32}
    args.cyc = {"width": 32, "generator": "unet"}
    if args.threads:
        torch.set_num_threads(args.threads)
    return {"cgan": cmd_cgan, "fd": cmd_fd, "i2i": cmd_i2i}[args.what](args)


if __name__ == "__main__":
    main()
