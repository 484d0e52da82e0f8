"""Does a text-conditioned video-diffusion run's denoiser use the caption's direction word?
(issue 21). Sampling scores (``benchmarks/video.py --text``) say whether clips move the prompted
way; this probe asks the denoiser directly, at fixed noise levels, on real test clips of
``moving-shapes?size=16&n=2000``: the denoising error ``|D(x0 + sigma eps, sigma, y) - x0|^2``
(per pixel, the same ``eps`` for every caption) with the clip's own caption ``y`` "a <colour>
<shape> moving <direction>", with its direction word swapped for the opposite one, with its
colour word swapped (the next colour), and with the null caption. A denoiser that reads the
direction word does worse with the opposite direction; the colour swap is the comparison for a
word it is known to read (colour is matched in 100 % of sampled clips).

It also prints the high-noise limit of the best denoiser from the train split: as sigma grows,
the best ``D`` tends to the mean clip of the clips sharing what the caption says, so the error of
each train clip against the mean clip of its (colour, shape, direction) group, of its (colour,
shape) group (the direction unknown), and so on, is what knowing each word is worth there.

    python benchmarks/video_text_probe.py --threads 1 --run runs-vtft/video-diffusion-text \
        --checkpoints 250 500 --n 64
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from genzoo.core.io import load_state_strict
from genzoo.core.runs import read_checkpoint
from genzoo.data import load_dataset
from genzoo.data.base import levels_to_model
from genzoo.data.shapes import COLOUR_NAMES, SHAPES, article
from genzoo.data.video import SHAPE_DIRECTIONS
from genzoo.runs.load import open_run

SPEC = "moving-shapes?size=16&n=2000"
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


def prompts(colour: list[int], shape: list[int], direction: list[str]) -> list[str]:
    out = []
    for c, s, d in zip(colour, shape, direction, strict=True):
        name = f"{COLOUR_NAMES[c]} {SHAPES[s]}"
        out.append(f"{article(name)} {name} moving {d}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a video-diffusion run with text=true")
    ap.add_argument("--checkpoints", type=int, nargs="*", help="steps (default: the latest)")
    ap.add_argument("--n", type=int, default=64, help="test clips")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.5, 2.0, 5.0, 20.0])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run = Path(args.run)
    opened = open_run(run, ema=True, device="cpu")
    model = opened.model
    test = load_dataset(SPEC, "test")
    assert test.x is not None and test.y is not None
    n = args.n
    x0 = levels_to_model(test.x[:n], 256)  # (n, T, C, H, W)
    y = test.y[:n]
    colour, shape = (y // 5).tolist(), (y % 5).tolist()
    dirs = [SHAPE_DIRECTIONS[int(d)] for d in test.extras["direction"][:n]]
    captions = {
        "own caption": prompts(colour, shape, dirs),
        "direction swapped": prompts(colour, shape, [OPPOSITE[d] for d in dirs]),
        "colour swapped": prompts([(c + 1) % 6 for c in colour], shape, dirs),
    }
    train = load_dataset(SPEC, "train")
    assert train.x is not None and train.y is not None
    xt = levels_to_model(train.x, 256).float()  # (N, T, C, H, W)
    keys = {"colour": train.y // 5, "shape": train.y % 5, "direction": train.extras["direction"]}
    print(f"high-noise limit on the {len(xt)} train clips: per-pixel error x 1000 against the "
          "mean clip of the clips that share the words known\n")  # fmt: skip
    print("| words known | error x 1000 |")
    print("|---|---:|")
    for known in [(), ("colour", "shape"), ("shape", "direction"), ("colour", "direction"),
                  ("colour", "shape", "direction")]:  # fmt: skip
        group = torch.zeros(len(xt), dtype=torch.long)
        for k in known:
            group = group * 10 + keys[k]
        err = sum(float(((xt[group == v] - xt[group == v].mean(0)) ** 2).sum())
                  for v in group.unique())  # fmt: skip
        print(f"| {', '.join(known) or 'none (the mean clip)'} | {err / xt.numel() * 1000:.2f} |")
    print()
    print(f"{n} test clips of {SPEC}; per-pixel denoising error x 1000 (EMA weights); the same "
          f"noise for every caption; seed 0\n")  # fmt: skip
    head = " | ".join(f"sigma {s:g}" for s in args.sigmas)
    print(f"| step | caption | {head} |")
    print("|---|---|" + "---:|" * len(args.sigmas))
    for step in args.checkpoints or [opened.step]:
        ckpt = run / "checkpoints" / f"step_{step:09d}"
        if step != opened.step or ckpt.is_dir():  # also the latest, after an earlier one
            files, _ = read_checkpoint(ckpt)
            load_state_strict(model, files["ema" if "ema" in files else "model"], str(ckpt))
        g = torch.Generator().manual_seed(0)
        eps = torch.randn(x0.shape, generator=g)
        rows: dict[str, list[float]] = {}
        with torch.no_grad():
            for name, text in [*captions.items(), ("null caption", None)]:
                tok = None if text is None else model.encode_prompts(text)
                errs = []
                for s in args.sigmas:
                    sigma = torch.full((n,), s)
                    d = model.denoise(x0 + s * eps, sigma, tok)
                    errs.append(float(((d - x0) ** 2).mean()) * 1000)
                rows[name] = errs
        for name, errs in rows.items():
            print(f"| {step} | {name} | " + " | ".join(f"{e:.2f}" for e in errs) + " |")


if __name__ == "__main__":
    main()
