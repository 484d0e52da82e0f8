"""Text-to-image on ``shapes?size=16``: diffusion with classifier-free guidance against the
DALL-E-style GPT over VQ-VAE codes, judged on prompts whose colour-shape pairs never appear
together in training.

Runs (the one Trainer, fixed step counts; finished runs under ``--out`` are re-used, interrupted
ones resume): ``t2i-diffusion`` (EDM U-Net with coordinate channels, cross-attention on a jointly
trained text encoder, 10% caption dropout); ``vqvae`` (8x8 grid of 64 codes) and ``t2i-vq`` on its
codes (10% caption dropout). Both are sampled at each guidance scale ``--guidance``; the VQ-VAE's
reconstructions of the real images are judged too, as the ceiling of ``t2i-vq``.

Prompts: the captions of the test images that show a held-out colour-shape pair
(:data:`genzoo.data.shapes.HELDOUT_PAIRS`), single-object and two-object ones. Each generated image
is read by genzoo's attribute classifier (:mod:`genzoo.metrics.text_to_image`, trained on fresh
scenes with every pair) and compared with what its prompt says; FD is the Fréchet distance between
the classifier features of the generated images and of the real test images of the same prompts.

    python benchmarks/text_to_image.py --threads 1 --pictures docs/img
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from benchutil import ROOT  # noqa: F401  (puts the checkout on sys.path)

import genzoo
from genzoo.core.config import parse_overrides
from genzoo.data.shapes import load_shapes
from genzoo.metrics.frechet import frechet_distance
from genzoo.metrics.text_to_image import (
    clip_score,
    prompt_attribute_accuracy,
    train_attribute_classifier,
)
from genzoo.runs import load

DATA = "shapes?size=16"
COMMON = {"progress": False, "tensorboard": False, "batch_size": 64, "n_samples": 30}
RUNS = {
    "vqvae": ("vqvae", {"lr": 2e-3, "codebook_size": 64, "code_dim": 16, "width": 32,
                        "downsample": 1, "res_blocks": 1}),
    "t2i-vq": ("t2i-vq", {"lr": 1e-3, "warmup": 50, "n_layer": 3, "n_embd": 96, "n_head": 4,
                          "dropout": 0.0}),
    "clip": ("clip", {"lr": 1e-3, "warmup": 100, "batch_size": 128}),  # CLIP score's model
    "t2i-diffusion": ("t2i-diffusion", {"lr": 2e-3, "ema_decay": 0.999, "warmup": 50,
                                        "p_mean": 0.0, "coord_channels": True}),
}  # fmt: skip


def train(out: Path, name: str, steps: int, extra: dict | None = None) -> tuple[Path, float]:
    """Train (or resume / re-use) ``out/name`` (``extra``: settings over the defaults); its run and
    training seconds."""
    run = out / name
    model, over = RUNS[name]
    if (run / "config.yaml").exists():
        genzoo.train(resume=run, steps=steps)
    else:
        over = {**COMMON, **over, **(extra or {})}
        if name == "t2i-vq":
            over["vqvae_run"] = str(out / "vqvae")
        genzoo.train(model, DATA, steps=steps, out=run, overrides=over)
    last = (run / "metrics.jsonl").read_text().strip().splitlines()[-1]
    return run, float(json.loads(last)["time"])


def heldout_prompts(n_single: int, n_pair: int) -> tuple[list[str], torch.Tensor]:
    """Captions of held-out test images (single-object first) and the indices of the images."""
    test = load_shapes(DATA, "test")
    held = test.heldout.bool()
    single = torch.nonzero(held & (test.n_objects == 1)).flatten()[:n_single]
    pair = torch.nonzero(held & (test.n_objects == 2)).flatten()[:n_pair]
    idx = torch.cat([single, pair])
    return [test.captions[int(i)] for i in idx], idx


def generate(model: object, prompts: list[str], seed: int, **kw: object) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(prompts), 100):
        part = prompts[i : i + 100]
        out.append(model.sample(len(part), prompts=part, generator=g, **kw))  # type: ignore[attr-defined]
    return torch.cat(out)


def judge(
    clf: object, x: torch.Tensor, prompts: list[str], real_feats: torch.Tensor, clip: object
) -> dict:
    """Attribute accuracy against the prompts, FD to the real images and CLIP score."""
    r = clf.read(x)  # type: ignore[attr-defined]
    res = prompt_attribute_accuracy(r, prompts)
    res["fd"] = frechet_distance(r["features"], real_feats)
    res["clip_score"] = clip_score(clip, x, clip.encode_texts(prompts))  # type: ignore[attr-defined]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/bench-t2i", help="folder of the runs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--diffusion-steps", type=int, default=10000)
    ap.add_argument("--clip-steps", type=int, default=1000)
    ap.add_argument("--vqvae-steps", type=int, default=4000)
    ap.add_argument("--ar-steps", type=int, default=2000)
    ap.add_argument("--n-single", type=int, default=150, help="single-object held-out prompts")
    ap.add_argument("--n-pair", type=int, default=100, help="two-object held-out prompts")
    ap.add_argument("--guidance", type=float, nargs="+", default=[0.0, 1.0, 2.0, 3.0, 5.0])
    ap.add_argument("--sample-steps", type=int, default=18, help="Heun steps of the diffusion")
    ap.add_argument("--top-k", type=int, default=0, help="t2i-vq top-k (0: off)")
    ap.add_argument("--pictures", help="folder for the prompt grids of docs/multimodal.md")
    ap.add_argument("--diffusion-only", action="store_true", help="skip vqvae and t2i-vq")
    ap.add_argument("--judge-steps", type=int, default=4000, help="attribute classifier steps")
    ap.add_argument("--judge-n", type=int, default=20_000, help="its training scenes")
    ap.add_argument("--set", nargs="*", default=[], metavar="key=value",
                    help="t2i-diffusion settings over the defaults (ablations)")  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    res: dict = {"data": DATA, "runs": {}}
    runs = [("clip", args.clip_steps), ("t2i-diffusion", args.diffusion_steps)]
    if not args.diffusion_only:
        runs += [("vqvae", args.vqvae_steps), ("t2i-vq", args.ar_steps)]
    for name, steps in runs:
        extra = parse_overrides(args.set) if name == "t2i-diffusion" else None
        _, secs = train(out, name, steps, extra)
        res["runs"][name] = {"steps": steps, "train_s": round(secs, 1), "set": extra or {}}
    clip = load(out / "clip", device="cpu")
    clf = train_attribute_classifier(16, n=args.judge_n, steps=args.judge_steps)
    res["judge_test_accuracy"] = clf.test_accuracy
    prompts, idx = heldout_prompts(args.n_single, args.n_pair)
    real = load_shapes(DATA, "test").get(idx)["x"]
    real_feats = clf.read(real)["features"]
    res["n_prompts"] = {"single": min(args.n_single, len(prompts)), "total": len(prompts)}

    def sweep(label: str, model: object, **kw: object) -> dict:
        """Samples for the prompts at every guidance scale, judged; one row each."""
        rows = {}
        for w in args.guidance:
            t0 = time.perf_counter()
            x = generate(model, prompts, 0, guidance=w, **kw)
            r = judge(clf, x, prompts, real_feats, clip)
            r["sample_s"] = round(time.perf_counter() - t0, 1)
            rows[str(w)] = r
            print(f"{label} w={w}: {json.dumps(r)}", flush=True)
        return rows

    res["real_images"] = judge(clf, real, prompts, real_feats, clip)  # the judge on the truth
    diff = load(out / "t2i-diffusion", device="cpu")
    res["diffusion"] = sweep("diffusion", diff, steps=args.sample_steps)
    ar = None
    if not args.diffusion_only:
        ar = load(out / "t2i-vq", device="cpu")
        with torch.no_grad():  # the VQ-VAE's reconstructions: the ceiling of t2i-vq
            recon = ar.decode_codes(ar.encode_codes(real))
        res["vq_reconstructions"] = judge(clf, recon, prompts, real_feats, clip)
        res["t2i_vq"] = sweep("t2i-vq", ar, top_k=args.top_k, temperature=1.0)
    (out / "results.json").write_text(json.dumps(res, indent=2))
    print(table(res))
    if args.pictures:
        folder = Path(args.pictures)
        guidance_plot(folder / "t2i_guidance.png", res)
        pictures(folder, diff, ar, args.sample_steps, args.top_k)


def table(res: dict) -> str:
    """The markdown table of RESULTS.md: one row per model and guidance scale."""
    cols = ["single_all", "single_colour", "single_shape", "single_position", "single_size",
            "single_count", "pair_count", "pair_words"]  # fmt: skip
    head = "| model | setting | single: all | colour | shape | position | size | count | "
    lines = [head + "pairs: count | pair words | FD | CLIP score |", "|---" * 12 + "|"]

    def row(model: str, setting: str, r: dict) -> None:
        pct = " | ".join(f"{100 * r[c]:.1f}%" for c in cols)
        lines.append(f"| {model} | {setting} | {pct} | {r['fd']:.0f} | {r['clip_score']:.1f} |")

    row("real test images", "(the judge's ceiling)", res["real_images"])
    for w, r in res["diffusion"].items():
        row("t2i-diffusion", f"w = {float(w):g}", r)
    if "t2i_vq" in res:
        row("vqvae reconstructions", "(t2i-vq's ceiling)", res["vq_reconstructions"])
    for w, r in res.get("t2i_vq", {}).items():
        row("t2i-vq", f"w = {float(w):g}", r)
    return "\n".join(lines)


def guidance_plot(path: Path, res: dict) -> None:
    """Single-object attribute accuracy and FD against the guidance scale, both models."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    for key, label in (("diffusion", "t2i-diffusion"), ("t2i_vq", "t2i-vq")):
        ws = sorted(res.get(key, {}), key=float)
        a1.plot([float(w) for w in ws], [100 * res[key][w]["single_all"] for w in ws], "o-",
                label=label)  # fmt: skip
        a2.plot([float(w) for w in ws], [res[key][w]["fd"] for w in ws], "o-", label=label)
    a1.axhline(100 * res["real_images"]["single_all"], ls="--", c="gray", label="real images")
    a1.axhline(80, ls=":", c="k", lw=0.8)
    a1.set(xlabel="guidance w", ylabel="single-object attribute accuracy (%)", ylim=(0, 100))
    a2.set(xlabel="guidance w", ylabel="FD (judge features; lower is better)")
    a1.legend()
    a2.legend()
    fig.suptitle(f"Held-out colour-shape prompts, {res['data']}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def pictures(folder: Path, diff: object, ar: object | None, steps: int, top_k: int) -> None:
    """Two 3 x 4 grids (one without ``ar``): held-out prompts (first two rows) and seen /
    two-object ones."""
    from multimodal import caption_grid

    prompts = [
        "a red cross", "an orange circle", "a yellow square", "a green triangle",
        "a blue diamond", "a large red cross in the centre", "a small orange circle on the left",
        "a blue diamond at the top",
        "a red circle", "a purple square in the bottom right",
        "a yellow circle to the left of a blue square", "a green cross above a red diamond",
    ]  # fmt: skip
    note = ["held-out pair"] * 8 + ["seen pair"] * 2 + ["two objects"] * 2
    x = generate(diff, prompts, 1, guidance=3.0, steps=steps)
    caption_grid(folder / "t2i_diffusion.png", x, prompts, note,
                 "t2i-diffusion, guidance 3 (shapes 16x16)")  # fmt: skip
    if ar is None:
        return
    x = generate(ar, prompts, 1, top_k=top_k, guidance=3.0)
    caption_grid(folder / "t2i_vq.png", x, prompts, note, "t2i-vq, guidance 3 (shapes 16x16)")


if __name__ == "__main__":
    main()
