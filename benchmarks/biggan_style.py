"""BigGAN against cGAN on digits, and neural style transfer (Gatys, AdaIN) on digits with
procedural textures.

``biggan``: both class-conditional GANs train for the same, stated number of steps at the same
batch size; class accuracy = the fraction of samples drawn for class ``k`` that genzoo's digits
classifier (``genzoo.metrics.get_classifier``) assigns to ``k``; FD in the same classifier's
feature space against the test split (as ``benchmarks/gan_images.py cgan``). BigGAN is also
scored under the truncation trick, and a truncation strip and a class grid are saved.

``style``: Gatys' optimisation over the digits classifier's features, content = test digits of
mnist5k, style = each procedural texture; the style (Gram) loss before and after, its reduction,
and the content-feature error (relative) of the result; AdaIN with a decoder trained for a fixed
number of steps on ``styled:mnist5k``, scored the same way. Pictures into ``--img``.

    python benchmarks/biggan_style.py biggan --steps 1500 --seeds 0 --threads 1
    python benchmarks/biggan_style.py style --steps 300 --adain-steps 800 --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/x.py` from a checkout without an install
    sys.path.insert(0, str(ROOT))

import genzoo  # noqa: E402
from genzoo.data import load_dataset  # noqa: E402
from genzoo.metrics import evaluate_samples, get_classifier  # noqa: E402
from genzoo.viz import save_samples_png  # noqa: E402

QUIET = {"progress": False, "tensorboard": False, "ckpt_every": 0, "log_every": 250}


def _train(model: str, data: str, run: Path, steps: int, over: dict) -> float:
    t = time.perf_counter()
    if not (run / "config.yaml").exists():
        genzoo.train(model, data, steps=steps, out=run, overrides={**QUIET, **over})
    return time.perf_counter() - t


def _settings(text: list[str]) -> dict:
    from genzoo.core.config import parse_overrides

    return parse_overrides(text)


def cmd_biggan(args: argparse.Namespace) -> dict:
    """Class accuracy and FD of cgan and biggan at equal steps and batch size."""
    clf = get_classifier(args.data)
    test = load_dataset(args.data, "test").all()
    k = clf.info.n_classes
    y = torch.arange(k).repeat_interleave(args.n // k)  # (n,) labels 0..K-1 in turn
    print(f"classifier {clf.name} ({clf.hash[:12]}), test accuracy {clf.test_accuracy:.3f}")
    print("| model | seed | steps | batch | train s | truncation | class accuracy | FD |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    out: dict = {}
    for model in args.models.split(","):
        for seed in args.seeds:
            run = Path(args.out) / f"{model}-{args.data}-s{seed}"
            over = {"seed": seed, "batch_size": args.batch, **args.set.get(model, {})}
            dt = _train(model, args.data, run, args.steps, over)
            truncs = [None, *args.truncation] if model == "biggan" else [None]
            for t in truncs:
                opts = {} if t is None else {"truncation": t}
                x = genzoo.sample(run, len(y), seed=0, cond=y, **opts)
                acc = clf.accuracy(x, y)
                fd = evaluate_samples(x, test["x"], clf, metrics=["fd"])["scores"]["fd"]
                out[(model, seed, t)] = (acc, fd)
                tt = "-" if t is None else f"{t:g}"
                print(
                    f"| {model} | {seed} | {args.steps} | {args.batch} | {dt:.0f} | {tt} "
                    f"| {acc:.3f} | {fd:.2f} |",
                    flush=True,
                )
            if seed == args.seeds[0]:
                grid = genzoo.sample(run, 10 * k, seed=1, cond=torch.arange(k).repeat(10))
                png = Path(args.img) / f"{model}-{args.data}-classes.png"
                save_samples_png(grid, clf.info, png, nrow=k)
                if model == "biggan":
                    _truncation_strip(run, clf.info, Path(args.img) / "biggan-truncation.png")
    return out


def _truncation_strip(run: Path, info, png: Path) -> None:
    """Rows: classes 0..9; columns: thresholds 2.0 .. 0.1 of the same base noise (seed 3)."""
    thresholds = [2.0, 1.5, 1.0, 0.7, 0.5, 0.3, 0.1]
    rows = []
    for k in range(info.n_classes):
        for t in thresholds:
            rows.append(genzoo.sample(run, 1, seed=3, cond=torch.tensor([k]), truncation=t))
    save_samples_png(torch.cat(rows), info, png, nrow=len(thresholds))


def main(argv: list[str] | None = None) -> dict | None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["biggan", "style"])
    p.add_argument("--data", default="digits")
    p.add_argument("--models", default="cgan,biggan")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seeds", default="0")
    p.add_argument("--n", type=int, default=1000, help="samples per run")
    p.add_argument("--truncation", default="1.0,0.5", help="biggan: thresholds also scored")
    p.add_argument("--set", nargs="*", default=[], metavar="model:key=value")
    p.add_argument("--adain-steps", type=int, default=800)
    p.add_argument("--adain-width", type=int, default=16)
    p.add_argument("--adain-style-weight", type=float, default=10.0, help="adain: lambda")
    p.add_argument(
        "--adain-encoder",
        default="own",
        help="adain: 'own' (trained in the run) or 'classifier:<dataset>' (fixed)",
    )
    p.add_argument(
        "--adain-set",
        nargs="*",
        default=[],
        metavar="key=value",
        help="adain: more model or training settings, e.g. lr=1e-4 grad_clip=0",
    )
    p.add_argument("--contents", default="0,1,2,3", help="style: mnist5k test indices")
    p.add_argument("--picture", default="style-transfer.png", help="style: grid file name")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--out", default="runs/bench-biggan-style")
    p.add_argument("--img", default="docs/img")
    args = p.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.truncation = [float(t) for t in args.truncation.split(",") if t]
    args.contents = [int(i) for i in args.contents.split(",")]
    per_model: dict[str, list[str]] = {}
    for item in args.set:
        model, _, kv = item.partition(":")
        per_model.setdefault(model, []).append(kv)
    args.set = {m: _settings(v) for m, v in per_model.items()}
    if args.threads:
        torch.set_num_threads(args.threads)
    Path(args.img).mkdir(parents=True, exist_ok=True)
    return {"biggan": cmd_biggan, "style": cmd_style}[args.what](args)


def cmd_style(args: argparse.Namespace) -> dict:
    """Gatys and AdaIN on mnist5k test digits x the four textures: Gram (style) loss reduction
    and content-feature error, both in the digits classifier's features."""
    from genzoo.data.textures import KINDS
    from genzoo.runs.stylize import stylize

    name = f"adain-styled-mnist5k-sw{args.adain_style_weight:g}-{args.adain_steps}"
    if args.adain_encoder != "own":  # the settings name the run (the default keeps its old name)
        name += "-" + "-".join([args.adain_encoder.replace(":", "_"), *args.adain_set])
    run = Path(args.out) / name
    over = {"seed": 0, "width": args.adain_width, "style_weight": args.adain_style_weight}
    over |= {"encoder": args.adain_encoder, **_settings(args.adain_set)}
    dt = _train("adain", "styled:mnist5k", run, args.adain_steps, over)
    print(
        f"adain: encoder {args.adain_encoder}, width {args.adain_width} (own encoder), "
        f"{' '.join(args.adain_set)}, {args.adain_steps} steps on styled:mnist5k, {dt:.0f} s"
    )
    contents = [f"mnist5k@{i}" for i in args.contents]
    print(
        "| method | style | contents | steps | style loss before | after | reduction "
        "| content error |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    rows: dict = {}
    pics = {m: [] for m in ("content", "style", "gatys", "adain")}
    for kind in KINDS:
        for method in ("gatys", "adain"):
            res = []
            for i, c in enumerate(contents):
                r = stylize(
                    c,
                    f"texture:{kind}@{i}",
                    Path(args.out) / f"{method}-{kind}-{i}.png",
                    method=method,
                    steps=args.steps,
                    run=run if method == "adain" else None,
                )
                res.append(r)
                if i == 0:
                    if method == "gatys":
                        pics["content"].append(r["content_image"])
                        pics["style"].append(r["style_image"])
                    pics[method].append(r["image"])
            before = sum(r["style_before"] for r in res) / len(res)
            after = sum(r["style_after"] for r in res) / len(res)
            red = sum(r["style_reduction"] for r in res) / len(res)
            cerr = sum(r["content_error"] for r in res) / len(res)
            rows[(method, kind)] = (red, cerr)
            steps = args.steps if method == "gatys" else "-"
            print(
                f"| {method} | {kind} | {len(res)} | {steps} | {before:.4f} | {after:.4f} "
                f"| {100 * red:.1f}% | {cerr:.3f} |",
                flush=True,
            )
    for method in ("gatys", "adain"):
        red = [v[0] for (m, _), v in rows.items() if m == method]
        cerr = [v[1] for (m, _), v in rows.items() if m == method]
        print(
            f"{method}: mean style-loss reduction {100 * sum(red) / len(red):.1f}%, "
            f"mean content-feature error {sum(cerr) / len(cerr):.3f}"
        )
    from genzoo.data import dataset_info

    info = dataset_info("mnist5k")
    grid = torch.cat([torch.cat(pics[k]) for k in ("content", "style", "gatys", "adain")])
    save_samples_png(grid, info, Path(args.img) / args.picture, nrow=len(KINDS))
    return rows


if __name__ == "__main__":
    main()
