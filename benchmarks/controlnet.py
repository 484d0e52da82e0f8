"""ControlNet and DreamBooth on ``shapes?size=16``, over one small text-to-image diffusion run.

Runs (the one Trainer, fixed step counts; finished runs under ``--out`` are re-used): the base
``t2i-diffusion`` (the text-to-image benchmark's settings, fewer steps), a ``controlnet`` on it
with the object-mask control (``genzoo train controlnet --base RUN --control mask``), and two
``dreambooth`` runs on four rendered images of a striped square (a pattern ``shapes`` never shows)
bound to "a sks square", with the prior-preservation loss (lambda = 1) and without (lambda = 0).

ControlNet: held-out controls are the object masks of the first ``--n-controls`` test images
(never seen in training), each with its caption as the prompt. A generated image's object mask is
the set of pixels brighter than ``--threshold`` in their brightest channel (the background is
exactly black); IoU with the control mask, per image, averaged. The base model's samples for the
same prompts and noise (no control), and the real test images themselves, are scored the same way.

DreamBooth: subject fidelity is the cosine similarity of the attribute classifier's features
(:mod:`genzoo.metrics.text_to_image`, genzoo's shapes judge) between each "a sks square" sample
and the mean feature of the subject images; class leakage is the same similarity for "a square"
samples; prior drift is the judge's attribute accuracy ("all" of colour, shape and count) on the
30 class prompts "a red circle", ... before (the base) and after fine-tuning, each prompt
``--drift-reps`` times. Every model draws these samples from the same noise, so the change from
the base is a paired difference: its standard error is that of the per-image differences
(``sd(d) / sqrt(n)``, the paired t-test's denominator); each accuracy also gets its binomial
standard error ``sqrt(p (1 - p) / n)``. ``--heldout N``: the base's accuracy on the text-to-image
benchmark's first N held-out single-object prompts (its guidance, the same Heun steps as here), to
check that the base reads prompts as well as its step count predicts.

    python benchmarks/controlnet.py --threads 1 --pictures docs/img
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from benchutil import ROOT  # noqa: F401  (puts the checkout on sys.path)
from text_to_image import generate, heldout_prompts  # the text-to-image benchmark's prompts

import genzoo
from genzoo.data import load_dataset
from genzoo.data.base import levels_to_model
from genzoo.data.shapes import shapes_info
from genzoo.data.subjects import render_subject
from genzoo.metrics.text_to_image import prompt_attribute_accuracy, train_attribute_classifier
from genzoo.models.diffusion.t2i import class_prompts
from genzoo.runs import open_run
from genzoo.runs.controlnet import train_controlnet
from genzoo.runs.dreambooth import dreambooth
from genzoo.viz import save_images_folder

DATA = "shapes?size=16"
COMMON = {"progress": False, "tensorboard": False, "n_samples": 16}
BASE = {
    "batch_size": 64,
    "lr": 2e-3,
    "ema_decay": 0.999,
    "warmup": 50,
    "p_mean": 0.0,
    "coord_channels": True,
}  # fmt: skip  (benchmarks/text_to_image.py's t2i-diffusion)


def base_run(out: Path, steps: int) -> Path:
    """The base t2i-diffusion run, trained (or resumed) to at least ``steps`` steps."""
    run = out / "t2i"
    if not (run / "config.yaml").exists():
        genzoo.train("t2i-diffusion", DATA, steps=steps, out=run, overrides={**COMMON, **BASE})
    elif open_run(run).step < steps:
        genzoo.train(resume=run, steps=steps)
    return run


def object_mask(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """``(B, 1, H, W)`` bool: pixels whose brightest channel in [0, 1] exceeds ``threshold``."""
    return ((x + 1) / 2).amax(1, keepdim=True) > threshold


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image intersection over union of two ``(B, 1, H, W)`` bool masks."""
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter))


def features(clf: object, x: torch.Tensor) -> torch.Tensor:
    return clf.read(x)["features"]  # type: ignore[attr-defined]


def cosine_to(feats: torch.Tensor, centre: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(feats, centre[None], dim=1).mean())


ATTRS = ("all", "shape", "colour")  # the per-image checks of the class prompts


def per_image_hits(readings: dict[str, torch.Tensor], prompts: list[str]) -> dict[str, np.ndarray]:
    """0/1 per single-object prompt and attribute (``all``, ``shape``, ``colour``): the terms
    whose means :func:`prompt_attribute_accuracy` returns."""
    hits: dict[str, list[float]] = {k: [] for k in ATTRS}
    for i, text in enumerate(prompts):
        acc = prompt_attribute_accuracy({k: v[i : i + 1] for k, v in readings.items()}, [text])
        for k in ATTRS:
            hits[k].append(acc[f"single_{k}"])
    return {k: np.asarray(v) for k, v in hits.items()}


def binomial_se(hits: np.ndarray) -> float:
    """Standard error of a share of 0/1 outcomes, ``sqrt(p (1 - p) / n)``."""
    p = float(np.mean(hits))
    return math.sqrt(p * (1 - p) / len(hits))


def paired_difference(after: np.ndarray, before: np.ndarray) -> tuple[float, float]:
    """Mean of ``after - before`` over the same prompts and noise, and its standard error
    ``sd(d) / sqrt(n)`` (sample standard deviation; the paired t statistic's denominator)."""
    d = np.asarray(after, dtype=float) - np.asarray(before, dtype=float)
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/bench-controlnet", help="folder of the runs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--base-steps", type=int, default=600)
    ap.add_argument("--cn-steps", type=int, default=300, help="controlnet training steps")
    ap.add_argument("--cn-batch", type=int, default=32, help="controlnet batch size")
    ap.add_argument("--db-steps", type=int, default=100, help="dreambooth training steps")
    ap.add_argument("--n-controls", type=int, default=32, help="held-out test controls")
    ap.add_argument("--sample-steps", type=int, default=10, help="Heun steps")
    ap.add_argument("--threshold", type=float, default=0.35, help="object brightness threshold")
    ap.add_argument("--n-prior", type=int, default=32, help="dreambooth class images")
    ap.add_argument("--n-subject", type=int, default=4, help="dreambooth subject images")
    ap.add_argument("--n-eval", type=int, default=30, help="dreambooth samples per prompt set")
    ap.add_argument("--judge-steps", type=int, default=1500, help="attribute classifier steps")
    ap.add_argument("--judge-n", type=int, default=10_000, help="its training scenes")
    ap.add_argument("--dreambooth-only", action="store_true", help="skip the ControlNet part")
    ap.add_argument(
        "--drift-reps",
        type=int,
        default=1,
        help="samples per class prompt for the prior drift (30 prompts each)",
    )
    ap.add_argument("--base-out", help="folder of the base run (default --out)")
    ap.add_argument(
        "--heldout",
        type=int,
        default=0,
        help="also score the base on this many held-out text-to-image prompts (0: not)",
    )
    ap.add_argument("--pictures", help="folder for the pictures of docs/controlnet.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    res: dict = {"data": DATA, "date": time.strftime("%Y-%m-%d"), "args": vars(args)}
    t0 = time.perf_counter()
    base_dir = base_run(Path(args.base_out) if args.base_out else out, args.base_steps)
    base_loaded = open_run(base_dir)
    base, res["base_step"] = base_loaded.model, base_loaded.step
    if not args.dreambooth_only:
        controlnet_part(args, out, base_dir, base, res, t0)

    # --- DreamBooth ---
    info = shapes_info(DATA)
    subj_dir = out / "subject"
    subject = levels_to_model(render_subject("striped-square", args.n_subject, 16, seed=3), 256)
    if not subj_dir.exists():
        save_images_folder(subject, info, subj_dir)
    db_dirs = {}
    for lam in (1.0, 0.0):
        d = out / f"dreambooth-prior{lam:g}"
        if not (d / "config.yaml").exists():
            dreambooth(base_dir, subj_dir, token="sks", class_noun="square", prior_weight=lam,
                       n_prior=args.n_prior, prior_steps=args.sample_steps, steps=args.db_steps,
                       out=d, overrides=COMMON)  # fmt: skip
        db_dirs[lam] = d
    clf = train_attribute_classifier(16, n=args.judge_n, steps=args.judge_steps)
    res["judge_test_accuracy"] = clf.test_accuracy
    centre = features(clf, subject).mean(0)
    res["subject_self_similarity"] = cosine_to(features(clf, subject), centre)
    cls_prompts = class_prompts(30) * args.drift_reps
    n = args.n_eval
    kw = {"steps": args.sample_steps}
    if args.heldout > 0:  # the base against the text-to-image benchmark's held-out prompts
        prompts, _ = heldout_prompts(args.heldout, 0)
        h = per_image_hits(clf.read(generate(base, prompts, 0, **kw)), prompts)
        res["base_heldout"] = {"n": len(prompts), "all": float(h["all"].mean()),
                               "all_se": binomial_se(h["all"]), "shape": float(h["shape"].mean()),
                               "colour": float(h["colour"].mean())}  # fmt: skip
        print(f"base on held-out prompts: {json.dumps(res['base_heldout'])}", flush=True)
    hits: dict[str, dict[str, np.ndarray]] = {}

    def judge(model: object, label: str) -> dict:
        xs = model.sample(n, prompts=["a sks square"], generator=gen(1), **kw)  # type: ignore[attr-defined]
        xc = model.sample(n, prompts=["a square"], generator=gen(2), **kw)  # type: ignore[attr-defined]
        xp = model.sample(len(cls_prompts), prompts=cls_prompts, generator=gen(3), **kw)  # type: ignore[attr-defined]
        hits[label] = per_image_hits(clf.read(xp), cls_prompts)
        r = {
            "subject_similarity": cosine_to(features(clf, xs), centre),
            "class_prompt_similarity": cosine_to(features(clf, xc), centre),
            "class_prompts_n": len(cls_prompts),
        }
        first = hits[next(iter(hits))]  # the base's, drawn from the same noise
        for k in ATTRS:
            r[f"class_prompts_{k}"] = float(hits[label][k].mean())
            r[f"class_prompts_{k}_se"] = binomial_se(hits[label][k])
            if hits[label] is not first:
                diff, se = paired_difference(hits[label][k], first[k])
                r[f"class_prompts_{k}_change"], r[f"class_prompts_{k}_change_se"] = diff, se
        print(f"{label}: {json.dumps(r)}", flush=True)
        pics[label] = (xs[:6], xc[:6])
        return r

    pics: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    db = {"base (before fine-tuning)": judge(base, "base (before fine-tuning)")}
    for lam, d in db_dirs.items():
        label = f"dreambooth, lambda = {lam:g}"
        db[label] = judge(open_run(d).model, label)
        db[label]["step"] = open_run(d).step
    res["dreambooth"] = db
    (out / "results.json").write_text(json.dumps(res, indent=2))
    print(table(res))
    if args.pictures:
        dreambooth_picture(Path(args.pictures) / "dreambooth.png", subject, pics)


def controlnet_part(
    args: argparse.Namespace, out: Path, base_dir: Path, base: object, res: dict, t0: float
) -> None:
    """Train (or re-use) the ControlNet and score the IoU of its samples with held-out masks."""
    cn_dir = out / "controlnet"
    if not (cn_dir / "config.yaml").exists():
        over = {**COMMON, "batch_size": args.cn_batch}
        train_controlnet(base_dir, "mask", steps=args.cn_steps, out=cn_dir, overrides=over)
    elif open_run(cn_dir).step < args.cn_steps:
        genzoo.train(resume=cn_dir, steps=args.cn_steps)
    cn_loaded = open_run(cn_dir)
    cn, res["controlnet_step"] = cn_loaded.model, cn_loaded.step
    res["train_s"] = round(time.perf_counter() - t0, 1)

    # --- ControlNet: IoU of the generated object's mask with held-out control masks ---
    test = load_dataset(f"control:mask:{DATA}", "test")
    idx = torch.arange(args.n_controls)
    batch = test.get(idx)
    prompts = [test.base.captions[int(i)] for i in idx]  # type: ignore[attr-defined]
    control = batch["control"]
    truth = control.bool()
    kw = {"steps": args.sample_steps}
    t1 = time.perf_counter()
    x_cn = cn.sample(len(idx), control=control, prompts=prompts, generator=gen(0), **kw)
    cn_s = time.perf_counter() - t1
    x_base = base.sample(len(idx), prompts=prompts, generator=gen(0), **kw)
    x_cn0 = cn.sample(
        len(idx), control=control, control_scale=0.0, prompts=prompts, generator=gen(0), **kw
    )
    rows = {}
    for name, x in (("real test images", batch["x"]), ("controlnet (scale 1)", x_cn),
                    ("base t2i-diffusion (no control)", x_base),
                    ("controlnet, scale 0", x_cn0)):  # fmt: skip
        v = iou(object_mask(x, args.threshold), truth)
        rows[name] = {"mean_iou": float(v.mean()), "iou_ge_0.8": float((v >= 0.8).float().mean())}
        print(f"{name}: {json.dumps(rows[name])}", flush=True)
    res["controlnet"] = rows
    res["controlnet_scale0_equals_base"] = bool(torch.equal(x_cn0, x_base))
    res["controlnet_sample_s"] = round(cn_s, 1)
    if args.pictures:
        control_picture(Path(args.pictures) / "controlnet_masks.png", control[:8], x_cn[:8],
                        x_base[:8], prompts[:8])  # fmt: skip


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def table(res: dict) -> str:
    lines = []
    if "controlnet" in res:  # absent with --dreambooth-only
        lines += ["| images | mean IoU with the control mask | share with IoU >= 0.8 |",
                  "|---|---|---|", ""]  # fmt: skip
        for name, r in res["controlnet"].items():
            lines.insert(-1, f"| {name} | {r['mean_iou']:.3f} | {100 * r['iou_ge_0.8']:.0f}% |")
    lines += ["| model | subject similarity ('a sks square') | class leakage ('a square') | "
              "class prompts: all | shape | colour | change of all from the base |",
              "|---" * 7 + "|"]  # fmt: skip
    for name, r in res["dreambooth"].items():
        acc = " | ".join(
            f"{100 * r[f'class_prompts_{k}']:.1f} ± {100 * r[f'class_prompts_{k}_se']:.1f}%"
            for k in ATTRS
        )
        change = "-"
        if "class_prompts_all_change" in r:
            change = (f"{100 * r['class_prompts_all_change']:+.1f} ± "
                      f"{100 * r['class_prompts_all_change_se']:.1f} points")  # fmt: skip
        lines.append(
            f"| {name} | {r['subject_similarity']:.3f} | {r['class_prompt_similarity']:.3f} | "
            f"{acc} | {change} |"
        )
    return "\n".join(lines)


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _show(ax: object, img: torch.Tensor) -> None:
    from genzoo.data.base import model_to_unit

    a = model_to_unit(img[None], 256)[0].permute(1, 2, 0).numpy()
    ax.imshow(a.squeeze(), cmap="gray", interpolation="nearest", vmin=0, vmax=1)  # type: ignore[attr-defined]
    ax.set_xticks([])  # type: ignore[attr-defined]
    ax.set_yticks([])  # type: ignore[attr-defined]


def control_picture(
    path: Path, control: torch.Tensor, x_cn: torch.Tensor, x_base: torch.Tensor, prompts: list
) -> None:
    """Rows: control mask, ControlNet sample, base sample (same prompt and noise)."""
    import textwrap

    plt = _plt()
    k = control.shape[0]
    fig, axes = plt.subplots(3, k, figsize=(1.6 * k, 5.6), dpi=90)
    for j in range(k):
        _show(axes[0, j], control[j].expand(3, -1, -1) * 2 - 1)
        axes[0, j].set_title("\n".join(textwrap.wrap(prompts[j], 18)), fontsize=7)
        _show(axes[1, j], x_cn[j])
        _show(axes[2, j], x_base[j])
    for i, label in enumerate(("control mask", "controlnet", "base, no control")):
        axes[i, 0].set_ylabel(label, fontsize=8)
    fig.suptitle("ControlNet on shapes 16x16: held-out test masks (prompt: the test caption)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def dreambooth_picture(path: Path, subject: torch.Tensor, pics: dict) -> None:
    """Row 0: the subject images; then per model 'a sks square' and 'a square' samples."""
    plt = _plt()
    rows = 1 + 2 * len(pics)
    fig, axes = plt.subplots(rows, 6, figsize=(7.5, 1.3 * rows), dpi=90)
    for j in range(6):
        if j < subject.shape[0]:
            _show(axes[0, j], subject[j])
        else:
            axes[0, j].axis("off")
    axes[0, 0].set_ylabel("subject", fontsize=7)
    for r, (label, (xs, xc)) in enumerate(pics.items()):
        for j in range(6):
            for i, x in ((1 + 2 * r, xs), (2 + 2 * r, xc)):
                if j < x.shape[0]:
                    _show(axes[i, j], x[j])
                else:
                    axes[i, j].axis("off")
        axes[1 + 2 * r, 0].set_ylabel(f"{label}\n'a sks square'", fontsize=6)
        axes[2 + 2 * r, 0].set_ylabel("'a square'", fontsize=6)
    fig.suptitle("DreamBooth on shapes 16x16: a striped square bound to 'sks'", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
