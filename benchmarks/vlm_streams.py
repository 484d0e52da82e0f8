"""Single- vs two-stream vision-language encoders on ``shapes``: question answering and image-text
matching with hard negatives, at equal parameters and equal steps.

Runs, each by the one Trainer for the same number of steps and batch on ``shapes?size=16``
(finished runs under ``--out`` are re-used, shorter ones resumed):

- ``vqa`` part: ``visualbert`` and ``vilbert`` with ``task=vqa``, beside genzoo's fusion ``vqa``
  (early and middle fusion) trained alike: answer accuracy on the questions of the first
  ``--n-test`` test images, overall, by number of objects and per kind of question;
- ``itm`` part: ``visualbert`` and ``vilbert`` with ``task=itm``: ``genzoo.evaluate`` on the first
  ``--n-test`` test images: balanced accuracy, the true captions accepted, each kind of hard
  negative (a colour, a shape or the relation swapped) rejected, and how often the true caption
  scores above that negative.

    python benchmarks/vlm_streams.py --threads 1 --part vqa
    python benchmarks/vlm_streams.py --threads 1 --part itm
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import genzoo
from genzoo.data import load_dataset
from genzoo.data.shapes import ITM_NEGATIVES, QUESTION_TYPES
from genzoo.runs.load import load

DATA = "shapes?size=16"
MODELS = {
    "vqa": {
        "visualbert (single stream)": ("visualbert", {"task": "vqa"}),
        "vilbert (two streams)": ("vilbert", {"task": "vqa"}),
        "vqa, early fusion": ("vqa", {"fusion": "early"}),
        "vqa, middle fusion": ("vqa", {"fusion": "middle"}),
    },
    "itm": {
        "visualbert (single stream)": ("visualbert", {"task": "itm"}),
        "vilbert (two streams)": ("vilbert", {"task": "itm"}),
    },
}


def _train(name: str, model: str, out: Path, steps: int, **over: object) -> tuple[Path, float]:
    """Train ``out/name`` to ``steps`` (re-used when finished, resumed when shorter); returns the
    run and its training time in seconds (from the trainer)."""
    run = out / name
    if (run / "config.yaml").exists():
        last = json.loads((run / "metrics.jsonl").read_text().strip().splitlines()[-1])
        if int(last["step"]) < steps:
            genzoo.train(resume=run, steps=steps)
    else:
        settings = {"progress": False, "tensorboard": False, **over}
        genzoo.train(model, DATA, steps=steps, out=run, overrides=settings)
    last = (run / "metrics.jsonl").read_text().strip().splitlines()[-1]
    return run, float(json.loads(last)["time"])


@torch.no_grad()
def vqa_rows(run: Path, n: int) -> dict[str, float]:
    """Answer accuracy on the questions of the first ``n`` test images: all, by objects, by
    kind."""
    model = load(run, device="cpu").eval()
    data = load_dataset(DATA, "test")
    idx = torch.arange(min(n, len(data)))
    ok = []
    for i in range(0, len(idx), 250):
        b = data.get(idx[i : i + 250])
        ok.append(model(b["x"], b["question"]).argmax(-1) == b["answer"])  # (b, Q)
    right = torch.cat(ok).float()
    qtype, nobj = data.qtype[idx], data.n_objects[idx][:, None].expand_as(right)
    r = {"all": float(right.mean())}
    for k in (1, 2):
        r[f"{k} obj"] = float(right[nobj == k].mean())
    for t, name in enumerate(QUESTION_TYPES):
        sel = qtype == t
        r[name] = float(right[sel].mean()) if sel.any() else float("nan")
    return r


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/bench-vlm-streams")
    p.add_argument("--part", choices=("vqa", "itm"), required=True)
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--batch", type=int, default=32, help="images per step")
    p.add_argument("--width", type=int, default=16, help="CNN image encoder width (all models)")
    p.add_argument("--n-test", type=int, default=1000, help="test images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--models", help="comma-separated models to run: visualbert, vilbert, vqa, vqa-early, ..."
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out) / f"seed{args.seed}"
    rows: dict[str, dict[str, float]] = {}
    for label, (model, over) in MODELS[args.part].items():
        key = model + (f"-{over['fusion']}" if "fusion" in over else "")  # vqa-early, ...
        if args.models and not {model, key} & set(args.models.split(",")):
            continue
        name = f"{args.part}-{key}"
        run, dt = _train(
            name, model, out, args.steps, batch_size=args.batch, width=args.width,
            seed=args.seed, **over,
        )  # fmt: skip
        m = load(run, device="cpu")
        params = sum(q.numel() for q in m.parameters())
        res = vqa_rows(run, args.n_test) if args.part == "vqa" else genzoo.evaluate(
            run, n=args.n_test, samples=0
        )  # fmt: skip
        rows[label] = {"params": params, "train_s": dt, **res}
    print(
        f"\n### {args.part} on {DATA}: {args.steps} steps, batch {args.batch} images, "
        f"image encoder width {args.width}, seed {args.seed}, first {args.n_test} test images\n"
    )
    if args.part == "vqa":
        head = ["all", "1 obj", "2 obj", *QUESTION_TYPES]
    else:
        head = ["acc", "acc_positive", *(f"acc_{k}" for k in ITM_NEGATIVES)]
        head += [f"rank_{k}" for k in ITM_NEGATIVES]
    print("| model | params | train s | " + " | ".join(head) + " |")
    print("|---|---:|---:|" + "---:|" * len(head))
    for label, r in rows.items():
        cells = " | ".join(f"{100 * r[k]:.1f}" for k in head)
        print(f"| {label} | {r['params']:,} | {r['train_s']:.0f} | {cells} |")
    out.mkdir(parents=True, exist_ok=True)
    tag = f"-{args.models.replace(',', '-')}" if args.models else ""
    (out / f"results-{args.part}{tag}.json").write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
