"""Fréchet distance against network evaluations (NFE) for every sampler, on one trained model each.

Trains (or re-uses) a DDPM (cosine schedule) and a class-conditional EDM on a dataset under a
wall-clock budget, then samples with DDPM-1000 ancestral, DDIM 10/20/50/100, Euler, Heun 18
(35 NFE), DPM-Solver++ 10/20 and Euler-Maruyama, and measures the Fréchet distance in the feature
space of genzoo's classifier for the dataset (against the test split; the FD of the real training
split against the same test split is printed as the floor). For the class-conditional EDM it also
reports the fraction of guided samples that the classifier assigns to the asked class, per
guidance scale, and the class kept when inpainting the lower half of test images.

    python benchmarks/diffusion_samplers.py --data digits --budget 120s --n 2000

Prints markdown tables; ``--out DIR`` also writes ``results.json`` there.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import genzoo
from genzoo.data import load_dataset
from genzoo.diffusion.guidance import InpaintingDenoiser
from genzoo.diffusion.samplers import run_sampler
from genzoo.diffusion.schedules import discrete_schedule, karras_schedule
from genzoo.metrics import NFECounter, frechet_distance, get_classifier
from genzoo.models.diffusion.ddpm import DDPM

SAMPLERS = [
    ("ancestral", 1000),
    ("ddim", 10),
    ("ddim", 20),
    ("ddim", 50),
    ("ddim", 100),
    ("euler", 50),
    ("heun", 18),
    ("dpmpp-2m", 10),
    ("dpmpp-2m", 20),
    ("euler-maruyama", 100),
]


def _sample(model, name: str, steps: int, n: int, seed: int, cond=None, guidance=1.0, den=None):
    """Samples and NFE for one sampler; DDPM uses its discrete sigmas, EDM the Karras ones."""
    g = torch.Generator(device=model.device).manual_seed(seed)
    if isinstance(model, DDPM) and name in ("ancestral", "ddim"):
        sig = discrete_schedule(
            model.sigma_table.cpu().double(), min(steps, len(model.sigma_table))
        )
    elif isinstance(model, DDPM):
        # ODE/SDE solvers on a DDPM: Karras sigmas over the model's range, capped at 80 as in EDM
        # (Sec. 3): the cosine table reaches sigma ~1e4, where 2nd-order steps amplify errors.
        table = model.sigma_table
        sig = karras_schedule(steps, float(table[0]), min(float(table[-1]), 80.0))
    else:
        sig = karras_schedule(steps, model.config.sigma_min, model.config.sigma_max)
    counter = NFECounter(den or model.sampling_denoiser)
    x = torch.randn((n, *model.info.shape), generator=g, device=model.device)
    x = x * model.prior_std(float(sig[0]))
    t = time.perf_counter()
    if guidance != 1.0 and cond is not None:
        from genzoo.diffusion.guidance import ClassifierFreeGuidance

        counter = NFECounter(
            ClassifierFreeGuidance(model.sampling_denoiser, guidance, model.info.n_classes)
        )
    out = run_sampler(name, counter, x, sig.to(torch.float32), cond=cond, generator=g)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    return out.clamp(-1, 1), counter.nfe, dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="digits")
    p.add_argument("--budget", default="120s", help="training time per model")
    p.add_argument("--n", type=int, default=2000, help="samples per sampler")
    p.add_argument("--out", default="runs/bench-samplers")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    test = load_dataset(args.data, "test")
    clf = get_classifier(args.data)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    clf = clf.to(dev)
    real = test.all()["x"].to(dev)
    real_f = clf.features(real)
    train_f = clf.features(load_dataset(args.data, "train").all()["x"].to(dev))
    floor = frechet_distance(train_f, real_f)  # real training data against the same test split
    common = {"progress": False, "tensorboard": False, "batch_size": 64, "warmup": 100}
    runs = {}
    specs = {
        "ddpm": ("ddpm", {"schedule": "cosine", "lr": 1e-3}),
        "edm-cond": ("edm", {"class_conditional": True, "lr": 1e-3}),
    }
    for key, (model, over) in specs.items():
        run = out / key
        if not (run / "config.yaml").exists():
            genzoo.train(
                model, args.data, budget=args.budget, out=run, overrides={**common, **over}
            )
        runs[key] = run
    results: dict = {"data": args.data, "budget": args.budget, "n": args.n, "fd_floor": floor}
    rows = []
    for key, run in runs.items():
        m = genzoo.load(run)
        for name, steps in SAMPLERS:
            if key != "ddpm" and name == "ancestral":
                continue
            cond = None
            if m.config.class_conditional:
                gy = torch.Generator().manual_seed(args.seed)
                cond = torch.randint(0, m.info.n_classes, (args.n,), generator=gy).to(m.device)
            x, nfe, dt = _sample(m, name, steps, args.n, args.seed, cond=cond)
            fd = frechet_distance(clf.features(x), real_f)
            rows.append((key, name, steps, nfe, fd, args.n / dt))
            print(
                f"| {key} | {name} | {steps} | {nfe} | {fd:.2f} | {args.n / dt:.0f} |", flush=True
            )
    results["samplers"] = [
        dict(zip(["model", "sampler", "steps", "nfe", "fd", "samples_per_s"], r, strict=True))
        for r in rows
    ]
    # Guidance and inpainting with the class-conditional EDM.
    m = genzoo.load(runs["edm-cond"])
    guid = []
    for w in (1.0, 2.0, 3.0):
        y = torch.arange(args.n, device=m.device) % m.info.n_classes
        x, nfe, _ = _sample(m, "heun", 18, args.n, args.seed, cond=y, guidance=w)
        acc = float((clf.logits(x).argmax(1) == y).double().mean())
        fd = frechet_distance(clf.features(x), real_f)
        guid.append({"guidance": w, "class_accuracy": acc, "fd": fd, "nfe": nfe})
        print(f"guidance {w}: class accuracy {acc:.3f}, FD {fd:.2f}, NFE {nfe}", flush=True)
    results["guidance"] = guid
    batch = test.all()
    x0, y = batch["x"].to(m.device), batch["y"].to(m.device)
    mask = torch.zeros_like(x0)
    mask[..., : x0.shape[-2] // 2, :] = 1  # the upper half is known, the lower half is filled in
    den = InpaintingDenoiser(m.sampling_denoiser, x0, mask)
    x, _, _ = _sample(m, "heun", 18, x0.shape[0], args.seed, cond=y, den=den)
    keep = float((clf.logits(x).argmax(1) == y).double().mean())
    base = float((clf.logits(x0 * mask - (1 - mask)).argmax(1) == y).double().mean())
    results["inpainting"] = {"class_kept": keep, "lower_half_blank_accuracy": base}
    print(f"inpainting lower half: class kept {keep:.3f} (blank lower half: {base:.3f})")
    print(f"FD floor (the training split against the test split): {floor:.2f}")
    (out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
