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

    python benchmarks/llava.py --threads 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import genzoo
from genzoo.data import load_dataset
from genzoo.data.shapes import QUESTION_TYPES
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/bench-llava")
    p.add_argument("--clip-steps", type=int, default=400)
    p.add_argument("--text-steps", type=int, default=300)
    p.add_argument("--align-steps", type=int, default=300)
    p.add_argument("--instruct-steps", type=int, default=500)
    p.add_argument("--lm", default="full", help="how the GPT trains in stage instruct")
    p.add_argument("--n-test", type=int, default=500, help="test images (4 questions each)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)

    clip, t_clip = _train("clip", "clip", out, args.clip_steps, batch_size=64, width=16)
    text, t_text = _train("text", "llava", out, args.text_steps, stage="text")
    align, t_align = _train(
        "align", "llava", out, args.align_steps, stage="align", base_run=str(text),
        clip_run=str(clip),
    )  # fmt: skip
    inst, t_inst = _train(
        f"instruct-{args.lm}", "llava", out, args.instruct_steps, stage="instruct",
        base_run=str(align), lm=args.lm,
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
        f"\n### LLaVA-style on {DATA} (clip {args.clip_steps} steps at batch 64, {t_clip:.0f} s; "
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
    (out / f"results-{args.lm}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
