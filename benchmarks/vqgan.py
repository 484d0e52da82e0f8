"""VQ-GAN against VQ-VAE at the same code grid and codebook size, and latent diffusion over the
VQ-GAN against pixel-space EDM at the same number of optimizer steps.

Part 1 (autoencoders). ``vqvae`` and ``vqgan`` with the same encoder, decoder, code grid, codebook
size, batch, learning rate and step count (``--ae-steps``); ``vqgan`` adds the perceptual loss
over genzoo's digits classifier trained with seed 1, the PatchGAN from step ``disc_start`` and
the adaptive weight (arXiv:2012.09841), with the paper's Adam betas (0.5, 0.9) for both of its
players. Variants (``--ae-models``, see :func:`ae_variant`) tell the additions apart:
``vqgan-noadv`` never switches the discriminator on (the perceptual term alone); ``-dw0.1``
scales the adaptive weight by 0.1 instead of the paper code's 0.8; ``-ds1000`` starts D at step
1000; ``-adamw`` uses the Trainer's Adam betas (0.9, 0.999), as ``vqvae`` does. Every model
reconstructs the test split (the same images for every row); the reconstructions are scored
against the test images in the feature space of genzoo's digits classifier (seed 0, the
yardstick of every benchmark here; not the network the perceptual loss uses): Fréchet distance,
k-NN precision and recall (k = 5), and the pixel MSE.

Part 2 (generation). ``ldm`` over the VQ-GAN run (EDM on its pre-quantization latents, scaled to
unit standard deviation, decoded through the quantizer, as the LDM paper's VQ-regularised models,
arXiv:2112.10752, Sec. 3.1 and App. G) against ``edm`` on pixels (and, on request, ``ldm-vqvae``
over the VQ-VAE run), all class-conditional with the same U-Net settings, batch, learning rate, EMA
and step count (``--gen-steps``; the autoencoder's own training is not counted). Each draws ``--n``
samples with labels cycling over the classes (Heun, 18 steps = 35 network evaluations, guidance 1):
Fréchet distance and precision against the test split, and the wall-clock sampling time of the
``--n`` samples (decoding included). The FD floor is ``--n`` training images (at most the split)
against the test split.

    python benchmarks/vqgan.py --data digits --ae-steps 1500 --disc-start 500 --gen-steps 1500 \
        --n 2000 --threads 1 --out runs/bench-vqgan
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import threads

import genzoo
from genzoo.data import load_dataset
from genzoo.metrics import evaluate_samples, get_classifier
from genzoo.viz import save_samples_png

QUIET = {"progress": False, "tensorboard": False, "ckpt_every": 0, "log_every": 100}
AE = {"codebook_size": 64, "code_dim": 16, "width": 32, "res_blocks": 2}  # grid 4x4 on digits
AE_TRAIN = {"batch_size": 64, "lr": 5e-4, "grad_clip": 0.0, "ema_decay": 0.0}
UNET = {"channels": 32, "channel_mult": (1, 2), "class_conditional": True}
GEN_TRAIN = {"batch_size": 64, "lr": 1e-3, "ema_decay": 0.999}


def _train(model: str, data: str, run: Path, steps: int, over: dict[str, Any]) -> float:
    """Train (unless the run exists); the wall-clock seconds, or NaN for a reused run."""
    if (run / "config.yaml").exists():
        return float("nan")
    t = time.perf_counter()
    genzoo.train(model, data, steps=steps, out=run, overrides={**QUIET, **over})
    return time.perf_counter() - t


def _scores(x: torch.Tensor, ref: torch.Tensor, clf: Any) -> dict[str, float]:
    s = evaluate_samples(x, ref, clf, metrics=["fd", "prdc"])["scores"]
    return {"fd": s["fd"], "precision": s["precision"], "recall": s["recall"]}


def ae_variant(name: str, disc_start: int) -> tuple[str, dict[str, Any]]:
    """``vqvae``, or ``vqgan`` followed by dash-separated changes to its config: ``noadv`` (the
    discriminator never starts), ``adamw`` (the Trainer's Adam betas (0.9, 0.999) for both
    players instead of the paper code's (0.5, 0.9)), ``dw<x>`` (disc_weight = x instead of 0.8),
    ``ds<n>`` (disc_start = n instead of ``--disc-start``), e.g. ``vqgan-adamw-dw0.1-ds1000``."""
    if name == "vqvae":
        return "vqvae", {}
    head, *mods = name.split("-")
    if head != "vqgan":
        raise SystemExit(f"unknown autoencoder {name!r}: vqvae or vqgan[-noadv|-adamw|-dwX|-dsN]")
    extra: dict[str, Any] = {"disc_start": disc_start}
    for mod in mods:
        if mod == "noadv":
            extra["disc_start"] = 10**9
        elif mod == "adamw":
            extra["betas"] = (0.9, 0.999)
        elif re.fullmatch(r"dw[0-9.e-]+", mod):
            extra["disc_weight"] = float(mod[2:])
        elif re.fullmatch(r"ds[0-9]+", mod):
            extra["disc_start"] = int(mod[2:])
        else:
            raise SystemExit(f"unknown vqgan change {mod!r} in {name!r}: noadv, adamw, dwX, dsN")
    return "vqgan", extra


def autoencoders(args: argparse.Namespace, clf: Any, test: torch.Tensor) -> list[dict[str, Any]]:
    out = Path(args.out)
    rows = []
    recons = [test[:16]]
    for name in args.ae_models.split(","):
        model, extra = ae_variant(name, args.disc_start)
        seed = f"-seed{args.seed}" if args.seed else ""
        run = out / f"{name}-{args.data}{seed}"
        over = {**AE, **AE_TRAIN, **extra, "seed": args.seed}
        dt = _train(model, args.data, run, args.ae_steps, over)
        m = genzoo.load(run, device="cpu")
        with torch.no_grad():
            x_hat = torch.cat([m(test[i : i + 500]) for i in range(0, len(test), 500)])
        x_hat = x_hat.clamp(-1, 1)
        row = {
            "model": name,
            "seed": args.seed,
            "steps": args.ae_steps,
            "train_s": dt,
            "mse": float((x_hat - test).pow(2).mean()),
            **_scores(x_hat, test, clf),
        }
        codes = m.encode_codes(test)
        counts = torch.bincount(codes.flatten(), minlength=m.n_codes).float()
        p = counts / counts.sum()
        row["perplexity"] = float(torch.exp(-(p * p.clamp_min(1e-30).log()).sum()))
        rows.append(row)
        recons.append(x_hat[:16])
        print(json.dumps(row), flush=True)
    save_samples_png(torch.cat(recons), clf.info, out / f"recon-{args.data}.png", nrow=16)
    return rows


def latent_scale(run: Path, data: str) -> float:
    """1 / std of the autoencoder's pre-quantization latents on the training split (App. G)."""
    m = genzoo.load(run, device="cpu")
    x = load_dataset(data, "train").all()["x"]
    with torch.no_grad():
        z = m.encode_latent(x[:1000])
    return float(1.0 / z.std())


def generators(args: argparse.Namespace, clf: Any, test: torch.Tensor) -> list[dict[str, Any]]:
    out = Path(args.out)
    k = clf.info.n_classes
    labels = torch.arange(args.n) % k
    rows = []
    for name in args.gen_models.split(","):
        if name.startswith("ldm-"):  # over the autoencoder run of part 1 named after the dash
            ae_run = out / f"{name[4:]}-{args.data}"
            scale = round(latent_scale(ae_run, args.data), 4)
            model, extra = "ldm", {"autoencoder_run": str(ae_run), "latent_scale": scale}
        else:
            model, extra = name, {}
        run = out / f"{name}-{args.data}"
        dt = _train(model, args.data, run, args.gen_steps, {**UNET, **GEN_TRAIN, **extra})
        m = genzoo.load(run, device="cpu")
        g = torch.Generator().manual_seed(0)
        t = time.perf_counter()
        with torch.no_grad():
            x = torch.cat(
                [
                    m.sample(len(y), cond=y, generator=g, steps=18, sampler="heun")
                    for y in labels.split(500)
                ]
            )
        sample_s = time.perf_counter() - t
        row = {
            "model": name,
            "steps": args.gen_steps,
            "train_s": dt,
            "sample_s": sample_s,
            "samples_per_s": args.n / sample_s,
            "accuracy": clf.accuracy(x, labels),
            **_scores(x, test, clf),
        }
        if model == "ldm":
            row["latent_scale"] = extra["latent_scale"]
        rows.append(row)
        print(json.dumps(row), flush=True)
        grid = x[torch.argsort(labels[:100], stable=True)]
        save_samples_png(grid, clf.info, out / f"samples-{name}-{args.data}.png", nrow=10)
    return rows


def table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    def f(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(f(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="digits")
    p.add_argument("--ae-steps", type=int, default=2000)
    p.add_argument("--disc-start", type=int, default=1000)
    p.add_argument("--ae-models", default="vqvae,vqgan,vqgan-noadv")
    p.add_argument("--gen-steps", type=int, default=2000)
    p.add_argument("--gen-models", default="ldm-vqgan,edm", help="ldm-<part-1 model>, edm")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0, help="training seed of part 1's runs")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="runs/bench-vqgan")
    p.add_argument("--skip-gen", action="store_true", help="part 1 only")
    args = p.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    with threads(args.threads):
        clf = get_classifier(args.data)
        test = load_dataset(args.data, "test").all()["x"]
        train = load_dataset(args.data, "train").all()["x"]
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[: args.n]
        floor = _scores(train[pick], test, clf)
        print(f"classifier {clf.name} ({clf.hash[:12]}), test accuracy {clf.test_accuracy:.3f}")
        print(f"floor ({len(pick)} training images vs {len(test)} test images): {floor}")
        ae = autoencoders(args, clf, test)
        gen = [] if args.skip_gen else generators(args, clf, test)
    print()
    cols = ["model", "seed", "steps", "train_s", "mse", "fd", "precision", "recall", "perplexity"]
    print(table(ae, cols))
    if gen:
        print()
        cols = ["model", "steps", "train_s", "fd", "precision", "recall", "accuracy"]
        print(table(gen, [*cols, "sample_s", "samples_per_s"]))
    doc = {"args": vars(args), "floor": floor, "autoencoders": ae, "generators": gen}
    (Path(args.out) / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc


if __name__ == "__main__":
    main()
