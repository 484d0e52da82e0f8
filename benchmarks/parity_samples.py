"""Refactor parity: train the README comparison's eight models for a fixed number of steps and
save their samples, so that two versions of genzoo can be compared bit for bit.

    OMP_NUM_THREADS=1 PYTHONPATH=<checkout A> python benchmarks/parity_samples.py runs/par-a
    OMP_NUM_THREADS=1 PYTHONPATH=<checkout B> python benchmarks/parity_samples.py runs/par-b
    python benchmarks/parity_samples.py --compare runs/par-a runs/par-b

Each model is trained with seed 0 and the comparison's settings (``genzoo.compare``'s
``QUICK_OVERRIDES``, copied here so that an older checkout can run this file too) for
``--steps`` steps on ``digits``, then draws 128 samples with seed 0 through ``genzoo.sample``.
On the CPU with one thread, equal code paths give equal samples to the bit.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

import genzoo

MODELS = ["ppca", "vae", "ddpm", "edm", "flow-matching", "realnvp", "pixelcnn", "dcgan"]
QUICK = {
    "ddpm": {"schedule": "cosine", "lr": 1e-3, "sample_steps": 100, "sampler": "ddim"},
    "edm": {"lr": 1e-3},
    "flow-matching": {"lr": 1e-3},
    "vae": {"lr": 2e-3},
}


def write(out: Path, steps: int) -> None:
    torch.set_num_threads(1)
    res = {}
    for m in MODELS:
        t = time.perf_counter()
        over = {**QUICK.get(m, {}), "progress": False, "tensorboard": False, "n_samples": 4}
        run = genzoo.train(m, "digits", steps=steps, out=out / m, overrides=over)
        res[m] = genzoo.sample(run, 128, seed=0).float().contiguous()
        print(f"{m:<14} {time.perf_counter() - t:6.1f} s", flush=True)
    save_file(res, str(out / "samples.safetensors"))


def compare(a: Path, b: Path) -> None:
    sa, sb = load_file(str(a / "samples.safetensors")), load_file(str(b / "samples.safetensors"))
    print("| model | identical | max abs difference |")
    print("|---|---|---:|")
    for m in MODELS:
        d = float((sa[m] - sb[m]).abs().max())
        print(f"| {m} | {'yes' if torch.equal(sa[m], sb[m]) else 'no'} | {d:.3g} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", type=Path)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    args = p.parse_args()
    if args.compare:
        compare(*args.compare)
    elif args.out is not None:
        write(args.out, args.steps)
    else:
        p.error("give an output folder, or --compare A B")


if __name__ == "__main__":
    main()
