"""LLaVA-style model on ``shapes``: exact-match accuracy of generated answers on held-out test
questions, against the same language model without the image.

Four runs, each by the one Trainer for a fixed number of steps (finished runs under ``--out`` are
re-used): a ``clip`` run (its image encoder becomes the frozen vision encoder), then ``llava`` in
three stages, each built on the previous run: ``text`` (the GPT alone on captions and
question-answer texts), ``align`` (the projector on captions; encoder and GPT frozen) and
``instruct`` (projector and GPT on the answers; ``lm`` chooses full tuning or LoRA).

Measured on the first ``--n-test`` images of the test split (4 questions each, 18 possible
one-word answers), greedy answers, exact match (the answer word, then ``[EOS]``):

- ``llava``: the instruct-stage model with the image;
- ``blind LM (stage text)``: the GPT of the ``text`` stage, which the multimodal stages start from,
  with no image: the same language model without the image;
- ``llava, image removed``: the instruct-stage model with its image tokens removed.

Before the ``llava`` stages, the frozen encoder is probed: a linear probe and k-NN (genzoo's
:func:`~genzoo.metrics.representation.probe_table`) on its image tokens (the ``(N, C)`` grid the
projector reads, flattened) for the shape and the colour of single-object images (train split ->
test split). ``--probe-only`` stops there (to compare encoders before paying for the stages).

    python benchmarks/llava.py --threads 1
    python benchmarks/llava.py --threads 1 --clip-steps 1000 --clip-width 32 --clip-batch 128
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import genzoo
from genzoo.data import load_dataset
from genzoo.data.shapes import QUESTION_TYPES, ShapesDataset
from genzoo.metrics.representation import probe_table
from genzoo.models.multimodal.clip import CLIP
from genzoo.models.multimodal.llava import LLaVA
from genzoo.runs.load import load

DATA = "shapes?size=16"


def _train(name: str, model: str, out: Path, steps: int, **over: object) -> tuple[Path, float]:
    """Train ``out/name`` to ``steps`` (a finished run is re-used, a shorter one resumed);
    returns the run and its training time in seconds (from the trainer)."""
    run = out / name
    if (run / "config.yaml").exists():
        last = json.loads((run / "metrics.jsonl").read_text().strip().splitlines()[-1])
        if int(last["step"]) < steps:  # resume up to the new total
            genzoo.train(resume=run, steps=steps)
    else:
        settings = {"progress": False, "tensorboard": False, **over}
        genzoo.train(model, DATA, steps=steps, out=run, overrides=settings)
    last = (run / "metrics.jsonl").read_text().strip().splitlines()[-1]
    return run, float(json.loads(last)["time"])


@torch.no_grad()
def right_answers(model: LLaVA, n: int, image: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n, Q)`` exact matches of the greedy answers on the first ``n`` test images, and the
    question types ``(n, Q)``."""
    data = load_dataset(DATA, "test")
    idx = torch.arange(min(n, len(data)))
    out = []
    for i in range(0, len(idx), 250):
        batch = data.get(idx[i : i + 250])
        b, nq, _ = batch["question"].shape
        q = batch["question"].flatten(0, 1)
        x = batch["x"].repeat_interleave(nq, 0) if image else None
        gen = model.generate_answers(x, q)  # (b*Q, k)
        want = model.answer_ids[batch["answer"].flatten()]
        out.append(((gen[:, 0] == want) & (gen[:, 1] == model.eos_id)).view(b, nq))
    return torch.cat(out).float(), data.qtype[idx]


@torch.no_grad()
def probe_encoder(clip: CLIP, n_train: int = 3000, n_test: int = 1000) -> dict[str, dict]:
    """Linear probe and k-NN accuracy of the frozen encoder's flattened image tokens for the
    shape and the colour of single-object images (the first ``n_train`` of the train split, the
    first ``n_test`` of the test split)."""
    clip.eval()

    def feats(split: str, n: int) -> tuple:
        data = load_dataset(DATA, split)
        assert isinstance(data, ShapesDataset)
        idx = data.single_object()[:n]
        x = data.get(idx)["x"]
        f = torch.cat([clip.image_encoder(x[i : i + 500]).tokens.flatten(1)
                       for i in range(0, len(x), 500)])  # fmt: skip
        a = data.attrs[idx, 0]  # (n, 4): shape, colour, size, position of the object
        return f.numpy(), {"shape": a[:, 0].numpy(), "colour": a[:, 1].numpy()}

    (ftr, ytr), (fte, yte) = feats("train", n_train), feats("test", n_test)
    rows = probe_table(ftr, ytr, fte, yte, budgets=(None,))
    return {r["target"]: {"linear": r["linear"], "knn": r["knn"]} for r in rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/bench-llava")
    p.add_argument("--clip-steps", type=int, default=400)
    p.add_argument("--clip-width", type=int, default=16, help="clip's image encoder width")
    p.add_argument("--clip-batch", type=int, default=64, help="clip's batch size")
    p.add_argument("--probe-only", action="store_true", help="train and probe the encoder only")
    p.add_argument("--seed", type=int, default=0, help="training seed of align and instruct")
    p.add_argument("--text-steps", type=int, default=300)
    p.add_argument("--align-steps", type=int, default=300)
    p.add_argument("--instruct-steps", type=int, default=1000)
    p.add_argument("--lm", default="full", help="how the GPT trains in stage instruct")
    p.add_argument("--n-test", type=int, default=500, help="test images (4 questions each)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)

    # one clip run per encoder setting; the stages over it are named after it
    tag = f"w{args.clip_width}-b{args.clip_batch}-s{args.clip_steps}"
    clip, t_clip = _train(
        f"clip-{tag}", "clip", out, args.clip_steps, batch_size=args.clip_batch,
        width=args.clip_width,
    )  # fmt: skip
    encoder = load(clip, device="cpu")
    assert isinstance(encoder, CLIP)
    probe = probe_encoder(encoder)
    print(
        f"\nclip {tag} ({t_clip:.0f} s): probe of the image tokens, single objects, test "
        "accuracy % (linear / k-NN): "
        + ", ".join(f"{k} {100 * v['linear']:.1f} / {100 * v['knn']:.1f}" for k, v in probe.items())
    )
    if args.probe_only:
        (out / f"probe-{tag}.json").write_text(json.dumps(probe, indent=2))
        return
    text, t_text = _train("text", "llava", out, args.text_steps, stage="text")
    if args.seed:  # another seed of the multimodal stages over the same encoder and GPT
        tag += f"-seed{args.seed}"
    align, t_align = _train(
        f"align-{tag}", "llava", out, args.align_steps, stage="align", base_run=str(text),
        clip_run=str(clip), seed=args.seed,
    )  # fmt: skip
    inst, t_inst = _train(
        f"instruct-{args.lm}-{tag}", "llava", out, args.instruct_steps, stage="instruct",
        base_run=str(align), lm=args.lm, seed=args.seed,
    )  # fmt: skip

    final = load(inst, device="cpu")
    blind_lm = load(text, device="cpu")
    assert isinstance(final, LLaVA) and isinstance(blind_lm, LLaVA)
    rows = {
        "llava": right_answers(final, args.n_test, image=True),
        "blind LM (stage text)": right_answers(blind_lm, args.n_test, image=False),
        "llava, image removed": right_answers(final, args.n_test, image=False),
    }
    print(
        f"\n### LLaVA-style on {DATA} (clip {args.clip_steps} steps at batch {args.clip_batch}, "
        f"width {args.clip_width}, {t_clip:.0f} s; "
        f"text {args.text_steps}, {t_text:.0f} s; align {args.align_steps}, {t_align:.0f} s; "
        f"instruct ({args.lm}) {args.instruct_steps}, {t_inst:.0f} s; batch 32 images)\n"
    )
    head = ["all", *QUESTION_TYPES]
    print("| model | " + " | ".join(head) + " |")
    print("|---|" + "---:|" * len(head))
    results: dict[str, dict[str, float]] = {}
    for name, (ok, qtype) in rows.items():
        r = {"all": float(ok.mean())}
        for t, qn in enumerate(QUESTION_TYPES):
            sel = qtype == t
            r[qn] = float(ok[sel].mean()) if sel.any() else float("nan")
        results[name] = r
        print(f"| {name} | " + " | ".join(f"{100 * r[k]:.1f}" for k in head) + " |")
    gap = 100 * (results["llava"]["all"] - results["blind LM (stage text)"]["all"])
    n_q = int(rows["llava"][0].numel())
    print(f"\n{n_q} test questions; llava - blind LM = {gap:+.1f} points (goal: >= 30).")
    results["probe"] = probe  # type: ignore[assignment]
    (out / f"results-{args.lm}-{tag}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
