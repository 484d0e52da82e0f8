"""Multimodal models on ``shapes`` (32x32, 10,000 training images): CLIP zero-shot and retrieval,
captioning attribute exact match and BLEU, VQA accuracy per fusion type.

Each model is trained by the one Trainer for a fixed number of steps (finished runs under ``--out``
are re-used), then measured on the 2,000-image test split:

- ``clip``: zero-shot colour + shape accuracy (30 classes, single-object test images, prompt
  ensemble), also on the held-out colour-shape pairs never seen together in training; retrieval
  recall@1/5/10 both ways among 1,000 test pairs (a hit: the caption is the query's, word for word);
- ``captioner``: attribute exact match and BLEU-4 (every template as a reference) of greedy and
  beam captions, single-object and two-object test images;
- ``vqa``: answer accuracy with early, middle and late fusion, overall, per question type and per
  number of objects.

    python benchmarks/multimodal.py --threads 1 --pictures docs/img

``--pictures DIR`` also writes the pictures of ``docs/multimodal.md``: test images with their
captions and a question, the trained captioner's greedy captions, and CLIP's nearest test images
for prompts whose colour-shape pairs never appear in training.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import genzoo
from genzoo.data.shapes import QUESTION_TYPES
from genzoo.runs.multimodal import caption_eval, retrieve, vqa_eval, zeroshot


def _train(name: str, out: Path, steps: int, batch: int, **over: object) -> tuple[Path, float]:
    """Train ``out/name`` to ``steps`` (an interrupted run resumes; a finished one is re-used);
    returns the run and its training time in seconds (over all sessions, from the trainer)."""
    run = out / name
    if (run / "config.yaml").exists():
        genzoo.train(resume=run, steps=steps)
    else:
        model = name.split("-")[0]
        settings = {"progress": False, "tensorboard": False, "batch_size": batch, **over}
        genzoo.train(model, "shapes", steps=steps, out=run, overrides=settings)
    last = (run / "metrics.jsonl").read_text().strip().splitlines()[-1]
    return run, float(json.loads(last)["time"])


def caption_grid(
    path: Path, x: torch.Tensor, top: list[str], bottom: list[str], title: str
) -> None:
    """A 3 x 4 grid of images (model space, (12, 3, H, W)) with a text above and below each."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genzoo.data.base import model_to_unit

    img = model_to_unit(x, 256).permute(0, 2, 3, 1).numpy()  # (B, H, W, C)
    fig, axes = plt.subplots(
        3, 4, figsize=(11, 11.5), dpi=90, gridspec_kw={"hspace": 0.55, "wspace": 0.15}
    )
    for ax, im, t, b in zip(axes.flat, img, top, bottom, strict=False):
        ax.imshow(im, interpolation="nearest")
        ax.set_title("\n".join(textwrap.wrap(t, 30)), fontsize=9)
        ax.set_xlabel("\n".join(textwrap.wrap(b, 34)), fontsize=8, color="#444")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.subplots_adjust(left=0.02, right=0.98, top=0.91, bottom=0.06)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def pictures(out: Path, runs: Path) -> None:
    from genzoo.data import load_dataset
    from genzoo.runs.multimodal import caption, query_images

    big = load_dataset("shapes?size=64", "test")
    qa = [f"Q: {q} A: {a}" for q, a, _ in (big.qa[i][0] for i in range(12))]
    caption_grid(out / "shapes-captions.png", big.get(torch.arange(12))["x"], big.captions[:12],
                 qa, "shapes?size=64, test split: captions (above) and one of four questions "
                 "(below)")  # fmt: skip
    if (runs / "captioner" / "checkpoints").exists():
        test = load_dataset("shapes", "test")
        x = test.get(torch.arange(12))["x"]
        gen = caption(runs / "captioner", x, "greedy")
        top = [f"model: {t}" for t in gen]
        bottom = [f"truth: {t}" for t in test.captions[:12]]
        title = "captioner (greedy) on test images: generated (above), true (below)"
        caption_grid(out / "shapes-captioner.png", x, top, bottom, title)
    if (runs / "clip" / "checkpoints").exists():
        from genzoo.viz import image_grid

        rows, info = [], None
        prompts = ["a red cross", "an orange circle", "a yellow square", "a green triangle"]
        for text in prompts:
            x, _, info = query_images(runs / "clip", text, k=8)
            rows.append(x)
        from PIL import Image

        grid = image_grid(torch.cat(rows), info, nrow=8)
        Image.fromarray(grid).resize((grid.shape[1] * 4, grid.shape[0] * 4), Image.NEAREST).save(
            out / "clip-heldout-queries.png"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/bench-multimodal")
    p.add_argument("--clip-steps", type=int, default=1000)
    p.add_argument("--caption-steps", type=int, default=4000)
    p.add_argument("--vqa-steps", type=int, default=2400)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", default="clip,captioner,vqa", help="comma-separated parts")
    p.add_argument("--pictures", help="folder for the docs pictures (after the runs)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    parts = set(args.only.split(","))
    results: dict[str, object] = {}

    if "clip" in parts:
        run, dt = _train("clip", out, args.clip_steps, 128)
        zs = zeroshot(run)
        rt = retrieve(run, n=1000)
        results["clip"] = {"train_s": dt, "zeroshot": zs, "retrieval": rt}
        print(f"\n### CLIP ({args.clip_steps} steps, batch 128, {dt:.0f} s)\n")
        print("| zero-shot (single objects) | accuracy |")
        print("|---|---:|")
        for k in ("accuracy", "colour_accuracy", "shape_accuracy", "seen_accuracy",
                  "heldout_accuracy"):  # fmt: skip
            print(f"| {k.replace('_', ' ')} | {100 * zs[k]:.1f} % |")
        print(f"\n{zs['n']} test images, {zs['n_heldout']} of them held-out pairs.\n")
        print("| retrieval (1,000 test pairs) | R@1 | R@5 | R@10 |")
        print("|---|---:|---:|---:|")
        for d in ("image_to_text", "text_to_image"):
            r = rt[d]
            print(f"| {d.replace('_', ' ')} | {100 * r[1]:.1f} | {100 * r[5]:.1f} | "
                  f"{100 * r[10]:.1f} |")  # fmt: skip

    if "captioner" in parts:
        run, dt = _train("captioner", out, args.caption_steps, 64)
        rows = {m: caption_eval(run, method=m) for m in ("greedy", "beam")}
        results["captioner"] = {"train_s": dt, **rows}
        print(f"\n### Captioner ({args.caption_steps} steps, batch 64, {dt:.0f} s)\n")
        print("| decoding | exact match, 1 object | BLEU, 1 object | exact match, 2 objects "
              "| BLEU, 2 objects |")  # fmt: skip
        print("|---|---:|---:|---:|---:|")
        for m, r in rows.items():
            print(f"| {m} | {100 * r['single_attr_match']:.1f} % | {r['single_bleu']:.1f} | "
                  f"{100 * r['pair_attr_match']:.1f} % | {r['pair_bleu']:.1f} |")  # fmt: skip
        print("\nexamples (greedy, single objects):", rows["greedy"]["single_examples"][:3])

    if "vqa" in parts:
        rows = {}
        for fusion in ("early", "middle", "late"):
            run, dt = _train(f"vqa-{fusion}", out, args.vqa_steps, 64, fusion=fusion)
            rows[fusion] = {"train_s": dt, **vqa_eval(run)}
        results["vqa"] = rows
        print(f"\n### VQA ({args.vqa_steps} steps, batch 64 images x 4 questions)\n")
        head = ["all", "1 object", "2 objects", *QUESTION_TYPES]
        print("| fusion | " + " | ".join(head) + " |")
        print("|---|" + "---:|" * len(head))
        for fusion, r in rows.items():
            keys = ["accuracy", "acc_1_objects", "acc_2_objects"]
            keys += [f"acc_{t}" for t in QUESTION_TYPES]
            print(f"| {fusion} | " + " | ".join(f"{100 * r[k]:.1f}" for k in keys) + " |")

    if args.pictures:
        pictures(Path(args.pictures), out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
