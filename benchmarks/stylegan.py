"""StyleGAN2 and ProGAN against hinge + SN at an equal step count; DiffAugment with and without;
FD, precision and recall against the truncation psi; the docs pictures.

Every score is measured in the feature space of genzoo's own classifier for the dataset
(``genzoo.metrics.get_classifier``): Fréchet distance, and k-NN precision and recall (k = 5) of
``--n`` samples against the whole test split. The floor is ``--n`` random training images scored
the same way.

    python benchmarks/stylegan.py compare --data digits --steps 1500 --seeds 0,1,2 --threads 1
    python benchmarks/stylegan.py truncation --data digits --steps 1500 --threads 1
    python benchmarks/stylegan.py pictures --data digits --steps 1500 --threads 1

``compare`` trains ``--models`` (each once plain and once with ``diffaug=--policy`` where
``--diffaug`` says so) for every seed; ``truncation`` scores the first seed's ``stylegan2`` run at
several psi and plots the curve; ``pictures`` writes the truncation strip, the style-mixing grid
and ProGAN's growth stages into ``--img``. Runs are kept in ``--out`` and reused.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

import genzoo
from genzoo.core.runs import read_run_config
from genzoo.data import load_dataset
from genzoo.metrics import evaluate_samples, get_classifier
from genzoo.viz import save_samples_png

QUIET = {"progress": False, "tensorboard": False, "ckpt_every": 0, "log_every": 250}
METRICS = ["fd", "prdc"]
PSIS = [0.0, 0.25, 0.5, 0.7, 0.85, 1.0]


def _train(model: str, data: str, run: Path, steps: int, over: dict) -> float:
    t = time.perf_counter()
    if not (run / "config.yaml").exists():
        genzoo.train(model, data, steps=steps, out=run, overrides={**QUIET, **over})
    return time.perf_counter() - t


def _scores(x: torch.Tensor, test: torch.Tensor, clf) -> dict[str, float]:
    s = evaluate_samples(x, test, clf, metrics=METRICS)["scores"]
    return {"fd": s["fd"], "precision": s["precision"], "recall": s["recall"]}


def _raw_samples(run: Path, n: int) -> torch.Tensor:
    """``n`` samples of the trained G itself, not its EMA (seed 0, as ``genzoo.sample``)."""
    model = genzoo.load(run, ema=False, device="cpu")
    return model.sample(n, generator=torch.Generator().manual_seed(0))  # type: ignore[attr-defined]


def _run_dir(args: argparse.Namespace, model: str, aug: bool, seed: int) -> Path:
    tag = "-aug" if aug else ""
    return Path(args.out) / f"{model}{tag}-{args.data}-{args.steps}-s{seed}"


def _settings(model: str, args: argparse.Namespace, aug: bool, seed: int) -> dict:
    over = {"seed": seed, "batch_size": args.batch, "width": args.width, **args.set}
    if model == "progan":  # grow over the first half of the run: 1/4 at 4 x 4, 1/4 fading in
        over.setdefault("stage_steps", max(1, args.steps // 4))
    if aug:
        over["diffaug"] = args.policy
    return over


def cmd_compare(args: argparse.Namespace) -> dict:
    clf = get_classifier(args.data)
    test = load_dataset(args.data, "test").all()["x"]
    train = load_dataset(args.data, "train").all()["x"]
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[: args.n]
    floor = _scores(train[pick], test, clf)
    print(f"classifier {clf.name} ({clf.hash[:12]}), test accuracy {clf.test_accuracy:.3f}")
    print(
        f"floor ({len(pick)} training images): FD {floor['fd']:.2f}, precision "
        f"{floor['precision']:.3f}, recall {floor['recall']:.3f}"
    )
    print("| model | diffaug | seed | steps | train s | FD | precision | recall |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    rows: dict[tuple[str, bool], list[dict[str, float]]] = {}
    augs = [False, True] if args.diffaug == "both" else [args.diffaug == "on"]
    for seed in args.seeds:
        for model in args.models.split(","):
            for aug in augs:
                if aug and seed not in args.aug_seeds:
                    continue
                run = _run_dir(args, model, aug, seed)
                dt = _train(model, args.data, run, args.steps, _settings(model, args, aug, seed))
                x = genzoo.sample(run, args.n, seed=0)
                s = _scores(x, test, clf)
                rows.setdefault((model, aug), []).append(s)
                print(
                    f"| {model} | {args.policy if aug else 'off'} | {seed} | {args.steps} | "
                    f"{dt:.0f} | {s['fd']:.2f} | {s['precision']:.3f} | {s['recall']:.3f} |",
                    flush=True,
                )
                if args.raw and read_run_config(run)["train"]["ema_decay"] > 0:
                    r = _scores(_raw_samples(run, args.n), test, clf)
                    rows.setdefault((f"{model} (raw G)", aug), []).append(r)
                    print(
                        f"| {model} (raw G, not EMA) | {args.policy if aug else 'off'} | {seed} "
                        f"| {args.steps} | - | {r['fd']:.2f} | {r['precision']:.3f} | "
                        f"{r['recall']:.3f} |",
                        flush=True,
                    )
    print()
    print("| model | diffaug | seeds | median FD | min-max FD | median precision | median recall |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (model, aug), ss in rows.items():
        fds = [s["fd"] for s in ss]
        print(
            f"| {model} | {'on' if aug else 'off'} | {len(ss)} | {statistics.median(fds):.2f} | "
            f"{min(fds):.2f}-{max(fds):.2f} | "
            f"{statistics.median(s['precision'] for s in ss):.3f} | "
            f"{statistics.median(s['recall'] for s in ss):.3f} |"
        )
    return {"floor": floor, "rows": rows}


def cmd_truncation(args: argparse.Namespace) -> dict:
    """FD, precision and recall of one stylegan2 run against psi, and the plot."""
    clf = get_classifier(args.data)
    test = load_dataset(args.data, "test").all()["x"]
    seed = args.seeds[0]
    run = _run_dir(args, "stylegan2", False, seed)
    _train("stylegan2", args.data, run, args.steps, _settings("stylegan2", args, False, seed))
    print("| psi | FD | precision | recall |")
    print("|---:|---:|---:|---:|")
    res = {}
    for psi in PSIS:
        s = _scores(genzoo.sample(run, args.n, seed=0, truncation=psi), test, clf)
        res[psi] = s
        print(f"| {psi} | {s['fd']:.2f} | {s['precision']:.3f} | {s['recall']:.3f} |", flush=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(8, 3))
    ax[0].plot(PSIS, [res[p]["fd"] for p in PSIS], "o-")
    ax[0].set(xlabel="truncation psi", ylabel="FD (lower is better)")
    ax[1].plot(PSIS, [res[p]["precision"] for p in PSIS], "o-", label="precision")
    ax[1].plot(PSIS, [res[p]["recall"] for p in PSIS], "s-", label="recall")
    ax[1].set(xlabel="truncation psi", ylim=(0, 1.02))
    ax[1].legend()
    fig.suptitle(f"stylegan2 on {args.data}, {args.steps} steps, seed {seed}", fontsize=9)
    fig.tight_layout()
    path = Path(args.img) / f"stylegan2-truncation-{args.data}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"wrote {path}")
    return res


def cmd_pictures(args: argparse.Namespace) -> None:
    """Truncation strip and mixing grid (stylegan2, first seed); ProGAN's growth stages."""
    img = Path(args.img)
    seed = args.seeds[0]
    run = _run_dir(args, "stylegan2", False, seed)
    _train("stylegan2", args.data, run, args.steps, _settings("stylegan2", args, False, seed))
    m = genzoo.load(run)
    info = m.info
    strip = [genzoo.sample(run, 8, seed=3, truncation=psi) for psi in PSIS]
    rows = torch.stack(strip, 1).reshape(-1, *info.shape)  # (8 * len(PSIS), C, H, W): rows = z
    strip_png = img / f"stylegan2-truncation-strip-{args.data}.png"
    save_samples_png(rows, info, strip_png, nrow=len(PSIS))
    g = torch.Generator().manual_seed(5)
    grid = m.mixing_grid(5, 6, generator=g)  # type: ignore[attr-defined]
    save_samples_png(grid, info, img / f"stylegan2-mixing-{args.data}.png", nrow=7)
    prun = _run_dir(args, "progan", False, seed)
    _train("progan", args.data, prun, args.steps, _settings("progan", args, False, seed))
    p = genzoo.load(prun)
    z = torch.randn(8, p.config.latent_dim, generator=torch.Generator().manual_seed(7))
    stages = [
        p.sample_at(z, s, a)  # type: ignore[attr-defined]
        for s in range(p.n_stages)  # type: ignore[attr-defined]
        for a in ([1.0] if s == 0 else [0.5, 1.0])
    ]
    rows = torch.cat(stages)  # rows = stage (alpha 0.5 while fading in, then 1), columns = z
    save_samples_png(rows, info, img / f"progan-stages-{args.data}.png", nrow=len(z))
    print(f"wrote pictures into {img}")


def main(argv: list[str] | None = None) -> dict | None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["compare", "truncation", "pictures"])
    p.add_argument("--data", default="digits")
    p.add_argument("--models", default="stylegan2,hinge-sn")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--diffaug", choices=["off", "on", "both"], default="both")
    p.add_argument("--aug-seeds", default="0", help="seeds that also train with DiffAugment")
    p.add_argument("--policy", default="color,translation,cutout")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--n", type=int, default=1000, help="samples per run")
    p.add_argument("--set", nargs="*", default=[], metavar="key=value", help="extra settings")
    p.add_argument(
        "--raw", action="store_true", help="also score the raw G of runs trained with an EMA"
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--out", default="runs/bench-stylegan")
    p.add_argument("--img", default="docs/img")
    args = p.parse_args(argv)
    from genzoo.core.config import parse_overrides

    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.aug_seeds = [int(s) for s in args.aug_seeds.split(",")]
    args.set = parse_overrides(args.set)
    if args.threads:
        torch.set_num_threads(args.threads)
    return {"compare": cmd_compare, "truncation": cmd_truncation, "pictures": cmd_pictures}[
        args.what
    ](args)


if __name__ == "__main__":
    main()
