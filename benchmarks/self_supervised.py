"""Self-supervised representations on a CPU: linear probe and k-NN of SimCLR, MoCo v2, BYOL and
DINO against raw pixels and a random-init encoder, on mnist5k and shapes.

Each method trains through the one Trainer for a fixed number of steps (one thread), then its
frozen backbone features of the train split feed a logistic-regression probe and a weighted
k-NN with 1, 10, 100 labels per class and all labels; accuracy on the test split (label subsets
drawn ``--label-draws`` times, averaged). Collapse: the std of the l2-normalised projected test
embeddings times sqrt(d) (``std_sqrt_d``; 1 for evenly spread, 0 for collapsed; goal >= 0.5)
and their effective rank; the effective rank of the backbone features (what the probes read) of
the same images (``feature rank``: BatchNorm in a head can keep the projections spread while the
backbone features below it have collapsed).

Goals (issue #17): on mnist5k with 10 labels per class every method beats raw pixels and the
random-init encoder by >= 10 points, the best reaches >= 85%, none collapses; on shapes the
colour and shape probes reach >= 95%.

    python -m benchmarks.self_supervised                                  # the RESULTS.md table
    python -m benchmarks.self_supervised --methods simclr --steps 50 --data mnist5k  # a smoke run
    python -m benchmarks.self_supervised --methods moco --seeds 1 --json m1.json   # one process
    python -m benchmarks.self_supervised --report m0.json m1.json     # mean ± std over seeds
    python -m benchmarks.self_supervised --methods byol --val --set momentum=0.96  # choose settings
    python -m benchmarks.self_supervised --supervised shape --data shapes  # a supervised ceiling
    python -m benchmarks.self_supervised --reprobe RUN --data shapes --stages 2  # last 2 stages

The probes read the ResNet's last stage on mnist5k and its three stages, mean-pooled and
concatenated, on shapes (``STAGES``; ``--stages N`` for every dataset). DINO's learning rate
warms up over the first 10% of the steps and decays on a cosine (``WARMUP_COSINE``).

DINO runs on the same small ResNet as the other methods (``dino``; ``dino-vit``: its ViT-tiny).

(It is not named ``ssl.py``: a script run from ``benchmarks/`` puts that folder first on the path,
where such a file would shadow Python's own ``ssl`` for every other benchmark.)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import genzoo
from genzoo.data import load_dataset
from genzoo.metrics.representation import effective_rank, probe_table, std_sqrt_d
from genzoo.models import MODELS
from genzoo.runs.represent import features, probe_targets

DATA = {"mnist5k": "mnist5k", "shapes": "shapes?objects=1&n=4000"}
# CPU-sized settings per method (same backbone width for the three ResNet methods)
SETTINGS = {
    "simclr": {"width": 16, "batch_size": 128, "lr": 2e-3},
    "moco": {"width": 16, "batch_size": 128, "lr": 2e-3},  # MoCo v3's BatchNorm head (default)
    "moco-v2": {"width": 16, "batch_size": 128, "lr": 2e-3, "head_bn": False},  # v2's plain head
    "byol": {"width": 16, "batch_size": 128, "lr": 2e-3},
    # DINO on the same ResNet as the others (its ViT-tiny learned far less here, RESULTS.md)
    "dino": {"backbone": "resnet", "width": 16, "local_crops": 2, "batch_size": 128, "lr": 2e-3},
    "dino-vit": {"width": 64, "depth": 4, "local_crops": 2, "batch_size": 128, "lr": 1e-3},
}
# probe features: the ResNet's last N stages, mean-pooled and concatenated (shapes: all three,
# chosen on the validation split so that colour and shape both read from one encoder)
STAGES = {"mnist5k": 1, "shapes": 3}
PATCH = {"mnist5k": 7, "shapes": 8}  # DINO's ViT patch: 4 x 4 tokens (2 x 2 for local crops)
COSINE_EMA = (
    "byol",
)  # methods whose target momentum follows the cosine schedule to 1 over the run
# methods whose learning rate warms up linearly over the first 10% of the steps and then decays
# to 0 on a cosine (DINO's schedule, arXiv:2104.14294 Sec. 4 / App.; chosen on the validation
# split against DINO's early dimensional collapse, RESULTS.md "sixth pass")
WARMUP_COSINE = ("dino",)
BUDGETS = (1, 10, 100, None)
VAL = 1000  # --val: VAL random training images are the validation split of the probes


def val_split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(fit, val)`` indices of a training split of ``n`` images: a fixed random permutation
    (seed 0; the train splits may be sorted by class, as mnist5k's is), ``VAL`` held out."""
    perm = np.random.default_rng(0).permutation(n)
    return np.sort(perm[VAL:]), np.sort(perm[:VAL])


def probe(train_f, ytr, test_f, yte, draws: int) -> dict[str, tuple[float, float]]:
    """ "target labels" -> (linear, knn) accuracies, averaged over label draws."""
    acc: dict[str, list[tuple[float, float]]] = {}
    for s in range(draws):
        budgets = BUDGETS if s == 0 else BUDGETS[:-1]  # "all" has one draw only
        for r in probe_table(train_f, ytr, test_f, yte, budgets, seed=s):
            acc.setdefault(f"{r['target']} {r['labels']}", []).append((r["linear"], r["knn"]))
    return {k: tuple(np.mean(v, axis=0)) for k, v in acc.items()}  # type: ignore[misc]


def tsne_figure(path: str, steps: int, seed: int) -> None:
    """t-SNE (scikit-learn) of the digits test split: raw pixels beside SimCLR features after
    ``steps`` steps on digits, coloured by class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    with tempfile.TemporaryDirectory() as tmp:
        over = {**SETTINGS["simclr"], "seed": seed, "progress": False, "tensorboard": False}
        run = genzoo.train("simclr", "digits", steps=steps, out=Path(tmp) / "s", overrides=over)
        model = genzoo.load(run, device="cpu")
        feats = features(model, test)
    y = test.y.numpy()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, (title, f) in zip(
        axes,
        [("raw pixels", test.all()["x"].flatten(1).numpy()), (f"SimCLR, {steps} steps", feats)],
        strict=True,
    ):
        e = TSNE(2, init="pca", random_state=seed, perplexity=30).fit_transform(f)
        sc = ax.scatter(e[:, 0], e[:, 1], c=y, cmap="tab10", s=6)
        ax.set_title(f"digits test split: {title}")
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(sc, ax=axes, ticks=range(10), label="class")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"wrote {path} ({len(train)} training images)")


def run_method(
    m: str,
    dname: str,
    spec: str,
    steps: int,
    seed: int,
    data,
    draws: int,
    runs_dir: str | None,
    extra: dict | None = None,
    val: bool = False,
    stages: int = 1,
) -> dict:
    """Train method ``m`` (``moco-v2``: moco with v2's head) for ``steps`` steps with ``seed``
    (``extra``: config overrides on top of :data:`SETTINGS`), then probe its frozen features;
    one result row. ``val``: ``data`` holds the validation split in place of the test split."""
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(runs_dir or tmp) / f"{dname}-{m}-{seed}"
        vit = SETTINGS[m].get("backbone", "vit" if m.startswith("dino") else "resnet") == "vit"
        over = {**SETTINGS[m], "seed": seed, "progress": False, "tensorboard": False,
                "log_every": 50, "ckpt_every": 0,
                **({"patch": PATCH[dname]} if vit else {}),
                **({"momentum_steps": steps} if m in COSINE_EMA else {}),
                **({"warmup": steps // 10, "lr_decay": "cosine"} if m in WARMUP_COSINE else {}),
                **(extra or {})}  # fmt: skip
        t0 = time.perf_counter()
        run = genzoo.train(m.split("-")[0], spec, steps=steps, out=where, overrides=over)
        dt = time.perf_counter() - t0
        row = probe_run(run, dname, data, draws, val, stages)
    label = m + "".join(f" {k}={v}" for k, v in (extra or {}).items())
    return {**row, "method": label, "seed": seed, "steps": steps, "time": dt}


def probe_run(
    run: str | Path, dname: str, data, draws: int, val: bool = False, stages: int = 1
) -> dict:
    """The probes and collapse monitors of a trained run's frozen features (``val``: on the
    validation split of the train split, ``data`` holding its labels; ``stages``: the last
    ``stages`` stages of the ResNet, mean-pooled and concatenated)."""
    train, test, ytr, yte = data
    model = genzoo.load(run, device="cpu")
    ftr = features(model, train, stages=stages)
    if val:  # the probe's labels from part of the train split, scored on the rest
        fit, held = val_split(len(train))
        ftr, fte = ftr[fit], ftr[held]
        xv = train.get(torch.as_tensor(held))["x"]
    else:
        fte, xv = features(model, test, stages=stages), test.all()["x"][:1000]
    with torch.no_grad():
        z, h = model.project(xv), model.embed(xv, stages)
    return {"data": dname + " (validation)" * val, "method": Path(run).name, "seed": -1,
            "steps": 0, "time": 0.0, "acc": probe(ftr, ytr, fte, yte, draws),
            "std": float(std_sqrt_d(z)), "rank": float(effective_rank(z)), "d": int(z.shape[1]),
            "feat_rank": float(effective_rank(h)), "feat_d": int(h.shape[1])}  # fmt: skip


def supervised_backbone(
    dname: str, target: str, steps: int, data, draws: int, val: bool, stages: int = 1
) -> dict:
    """A ceiling for the probes: SimCLR's backbone (untrained) with a linear head trained on the
    ``target`` labels of the train split (cross-entropy, AdamW 2e-3, batch 128, ``steps`` steps,
    no augmentation), then its frozen features probed like a method's."""
    train, test, ytr, yte = data
    fit = val_split(len(train))[0] if val else np.arange(len(train))
    torch.manual_seed(0)
    cls = MODELS.get("simclr")
    model = cls(cls.config_class.from_dict({"width": 16}), train.info)
    head = torch.nn.Linear(model.encoder.out_dim, int(ytr[target].max()) + 1)
    opt = torch.optim.AdamW([*model.encoder.parameters(), *head.parameters()], lr=2e-3)
    x = train.get(torch.as_tensor(fit))["x"]
    y = torch.as_tensor(ytr[target]).long()
    t0 = time.perf_counter()
    for _ in range(steps):
        i = torch.randint(0, len(x), (128,))
        loss = torch.nn.functional.cross_entropy(head(model.encoder(x[i])), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    model.eval()
    ftr = features(model, train, stages=stages)
    fte = ftr[val_split(len(train))[1]] if val else features(model, test, stages=stages)
    acc = probe(ftr[fit], ytr, fte, yte, draws)
    return {"data": dname + " (validation)" * val, "method": f"supervised on {target}",
            "seed": 0, "steps": steps, "time": dt, "acc": acc}  # fmt: skip


def _value(text: str):
    """A ``--set`` value: JSON (numbers, true/false, lists), else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _ms(vals: list[float], scale: float = 1.0, digits: int = 1) -> str:
    """``mean ± std`` over seeds (the std of the seeds, ddof = 1; just the value for one)."""
    v = np.asarray(vals, dtype=float) * scale
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def report(rows: list[dict]) -> None:
    """Print one table per dataset: each cell the mean ± std over the training seeds."""
    for dname in dict.fromkeys(r["data"] for r in rows):
        sub = [r for r in rows if r["data"] == dname]
        keys = list(sub[0]["acc"])
        print(f"\n### {dname}: test accuracy, % (linear probe / weighted k-NN), labels per class;"
              " mean ± std over training seeds")  # fmt: skip
        head = " | ".join(keys)
        print(
            f"| method | seeds | steps | train s | std_sqrt_d | eff. rank | feature rank | {head} |"
        )
        print("|---" * (7 + len(keys)) + "|")
        for m in dict.fromkeys(r["method"] for r in sub):
            rs = [r for r in sub if r["method"] == m]
            lin = [_ms([r["acc"][k][0] for r in rs], 100) for k in keys]
            knn = [_ms([r["acc"][k][1] for r in rs], 100) for k in keys]
            cells = " | ".join(f"{a} / {b}" for a, b in zip(lin, knn, strict=True))
            trained = "std" in rs[0]
            std = _ms([r["std"] for r in rs], digits=2) if trained else "-"
            rank = f"{_ms([r['rank'] for r in rs])} of {rs[0]['d']}" if trained else "-"
            secs = _ms([r["time"] for r in rs], digits=0) if trained else "-"
            frank = (f"{_ms([r['feat_rank'] for r in rs])} of {rs[0]['feat_d']}"
                     if "feat_rank" in rs[0] else "-")  # fmt: skip
            seeds = ",".join(str(r["seed"]) for r in rs)
            print(
                f"| {m} | {seeds} | {rs[0]['steps'] or '-'} | {secs} | {std} | {rank} | {frank} "
                f"| {cells} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default="simclr,moco,byol,dino")
    ap.add_argument("--data", default="mnist5k,shapes")
    ap.add_argument("--steps", type=int, default=400, help="training steps on mnist5k")
    ap.add_argument("--shapes-steps", type=int, default=200, help="training steps on shapes")
    ap.add_argument("--label-draws", type=int, default=3)
    ap.add_argument("--seeds", default="0", help="training seeds, e.g. 0,1,2")
    ap.add_argument("--no-baselines", action="store_true", help="skip raw pixels / random init")
    ap.add_argument("--json", help="also write the rows to this .json (for --report)")
    ap.add_argument("--runs", help="keep the runs (metrics.jsonl: the monitors) in this folder")
    ap.add_argument("--report", nargs="+", help="only print the table of these .json files")
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides for every method, e.g. crop_min=0.6 (JSON values)",
    )
    ap.add_argument(
        "--supervised",
        metavar="TARGET",
        help="only train the backbone on the labels "
        "of TARGET (class, shape, colour) with a linear head and probe it: a ceiling",
    )
    ap.add_argument("--reprobe", nargs="+", help="only probe these runs (of --data) again")
    ap.add_argument(
        "--val",
        action="store_true",
        help=f"probe on a validation split: {VAL} random training images (no test image is "
        "read); to choose settings",
    )
    ap.add_argument(
        "--stages",
        type=int,
        help="probe the mean-pooled features of the ResNet's last N stages, concatenated "
        "(every method, the random-init and supervised encoders; raw pixels stay pixels); "
        f"default per dataset {STAGES}",
    )
    ap.add_argument("--tsne", help="only draw the t-SNE picture of digits to this .png")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.report:
        report([r for f in args.report for r in json.loads(Path(f).read_text())])
        return
    if args.tsne:
        tsne_figure(args.tsne, args.steps, seeds[0])
        return
    rows: list[dict] = []
    extra = {k: _value(v) for k, v in (kv.split("=", 1) for kv in args.set)}

    def keep(row: dict, stages: int) -> None:
        if stages != 1 and row["method"] != "raw pixels":  # pixels have no stages
            row = {**row, "method": f"{row['method']} (last {stages} stages)"}
        rows.append(row)
        print(f"  {row}", flush=True)
        if args.json:  # after every row, so a stopped run keeps what it finished
            Path(args.json).write_text(json.dumps(rows))

    for dname in args.data.split(","):
        spec, stages = DATA[dname], args.stages or STAGES[dname]
        train, test = load_dataset(spec, "train"), load_dataset(spec, "test")
        ytr, yte = probe_targets(train), probe_targets(test)
        if dname == "shapes":
            ytr.pop("class"), yte.pop("class")
        fit, held = val_split(len(train))
        shown = dname + " (validation)" * args.val
        if args.val:
            yte = {k: v[held] for k, v in ytr.items()}
            ytr = {k: v[fit] for k, v in ytr.items()}
        steps = args.steps if dname == "mnist5k" else args.shapes_steps
        if not args.no_baselines:  # raw pixels; a random-init encoder (SimCLR's ResNet) per seed
            raw = (train.all()["x"].flatten(1).numpy(), test.all()["x"].flatten(1).numpy())
            if args.val:
                raw = (raw[0][fit], raw[0][held])
            keep({"data": shown, "method": "raw pixels", "seed": 0, "steps": 0, "time": 0.0,
                  "acc": probe(*raw[:1], ytr, raw[1], yte, args.label_draws)}, stages)  # fmt: skip
            for seed in seeds:
                torch.manual_seed(seed)
                cls = MODELS.get("simclr")
                rnd = cls(cls.config_class.from_dict({"width": 16}), train.info).eval()
                fr = features(rnd, train, stages=stages)
                ft = fr[held] if args.val else features(rnd, test, stages=stages)
                fr = fr[fit] if args.val else fr
                acc = probe(fr, ytr, ft, yte, args.label_draws)
                keep({"data": shown, "method": "random-init encoder", "seed": seed, "steps": 0,
                      "time": 0.0, "acc": acc}, stages)  # fmt: skip
        if args.supervised:  # the backbone trained on one target's labels: a ceiling
            data = (train, test, ytr, yte)
            keep(supervised_backbone(dname, args.supervised, steps, data, args.label_draws,
                                     args.val, stages), stages)  # fmt: skip
        for run in args.reprobe or []:  # runs trained before: probed again, no training
            keep(probe_run(run, dname, (train, test, ytr, yte), args.label_draws, args.val,
                           stages), stages)  # fmt: skip
        for m in [
            m for m in args.methods.split(",") if m and not (args.reprobe or args.supervised)
        ]:
            for seed in seeds:
                data = (train, test, ytr, yte)
                keep(run_method(m, dname, spec, steps, seed, data, args.label_draws, args.runs,
                                extra, args.val, stages), stages)  # fmt: skip
    report(rows)


if __name__ == "__main__":
    main()
