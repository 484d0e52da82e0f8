"""The best model per GPU-minute: genzoo's diffusion recipe against diffusers' DDPM at the same
training budget, on the same data, measured by the same yardstick.

For a dataset (``--data``, default ``mnist5k``; also ``digits``, ``shapes`` or any torchvision set
found locally) and each budget (``--budgets`` in seconds, or ``--steps`` in optimizer steps) this
trains, one after the other on the same device:

(a) the peer, diffusers' ``UNet2DModel`` as in diffusers' ``train_unconditional.py`` example:
    6.5M parameters (channels 64/128/128, two residual layers per block, attention at half the
    resolution, 16x16), ε-prediction on ``DDPMScheduler`` (1,000 linear betas), AdamW (lr 1e-4,
    betas 0.95/0.999, weight decay 1e-6), 500 warm-up steps then a cosine decay, gradient clipping
    at 1, ``EMAModel`` (inverse-gamma warm-up, power 3/4, max 0.9999), bf16 autocast on CUDA,
    batch 128. Images are padded with background (-1) to the next power of two (28 -> 32); its
    samples are cropped back before they are measured. The cosine decay needs a total step count:
    under a time budget it is estimated from the speed of the first 50 steps.
(b) genzoo's recommended image-diffusion recipe: exactly what ``genzoo train edm --data D
    --budget T`` runs (:data:`RECIPE`): EDM preconditioning and loss weighting with log-normal
    training sigmas, the EDM U-Net defaults, AdamW lr 1e-3, EMA 0.999, batch 128, bf16 autocast,
    data on the device, fused AdamW; sampled with Heun on Karras sigmas (EDM Algorithm 1) and
    DPM-Solver++(2M), at most 50 network evaluations, with CUDA-graph replay on CUDA.

Both train for exactly the budget (the clock starts at the first step and is checked after
every step). Then ``--n`` samples (default 5,000) are drawn from each with several samplers
(peer: DDIM 10 and 50, DDPM 1000; genzoo: Heun 18 = 35 NFE, Heun 25 = 49 NFE, DPM-Solver++ 10 and
20, and DDIM 50 for a like-for-like row) and measured in the feature space of genzoo's classifier
for the dataset (``genzoo.metrics.get_classifier``) against the test split: Fréchet distance,
k-NN precision and recall (k = 5), the classes covered (classes given at least a quarter of their
fair share n / K of the samples by the classifier), and the sampling time. The floor is the FD of
n real training images against the test split.

``--ablate`` re-trains genzoo's recipe at one budget with one ingredient changed at a time
(:data:`ABLATIONS`) and records each change in FD at the recipe's best sampler.

    python benchmarks/quality_at_budget.py --data mnist5k --budgets 60,240,900 --out runs/qab
    python benchmarks/quality_at_budget.py --data mnist5k --budgets 240 --ablate --out runs/qab
    python benchmarks/quality_at_budget.py --tiny                # CPU smoke run (digits, steps)

Writes ``results.json`` (merged with an earlier one in the same ``--out``, so budgets can be run
in separate calls), ``fd_vs_budget.png`` and sample grids, and prints markdown tables. ``--json
DIR`` also writes this call's record (device, date, torch, git commit, command, rows, and each of
genzoo's FDs beside the peer's FD per sampler at the same budget) to
``DIR/quality_at_budget-<time>-<device>.json``, rewritten after each budget; by default (``auto``)
runs on CUDA write it to ``benchmarks/results/``, CPU runs do not.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import (
    JsonRows,
    amp_dtype,
    autocast,
    comparison,
    environment,
    free,
    json_dir,
    markdown_table,
    n_params,
    resolve_device,
    sync,
    write_json,
)

import genzoo
from genzoo.core.errors import GenzooError
from genzoo.data import load_dataset
from genzoo.data.base import DataInfo
from genzoo.metrics import count_nfe, frechet_distance, get_classifier, prdc
from genzoo.metrics.classifier import FeatureClassifier
from genzoo.models import MODELS  # importing genzoo.models registers every model
from genzoo.train.trainer import parse_duration
from genzoo.viz import save_samples_png

RECIPE_MODEL = "edm"
RECIPE: dict[str, Any] = {}
"""genzoo's recipe is ``genzoo train edm`` with its defaults: no override. Every ablation keeps
the recipe's training settings (``edm``'s ``default_train``), whatever its model."""

ABLATIONS: dict[str, tuple[str, dict[str, Any], str]] = {
    "ddpm-eps": ("ddpm", {}, "DDPM ε-prediction, linear betas, uniform t (no EDM preconditioning)"),
    "no-ema": (RECIPE_MODEL, {"ema_decay": 0.0}, "no EMA of the weights"),
    "lr-1e-4": (RECIPE_MODEL, {"lr": 1e-4}, "the peer's learning rate 1e-4 instead of 1e-3"),
    "warmup-500": (RECIPE_MODEL, {"warmup": 500}, "500 linear warm-up steps (the peer's)"),
    "batch-64": (RECIPE_MODEL, {"batch_size": 64}, "batch 64 instead of 128"),
    "unet-6.5M": (
        RECIPE_MODEL,
        {"channels": 64, "channel_mult": [1, 2, 2], "num_res_blocks": 2, "attn": True},
        "the peer's U-Net size (64/128/128, 2 blocks, attention at half resolution)",
    ),
    "fp32": (RECIPE_MODEL, {"precision": "fp32"}, "fp32 instead of bf16 autocast (CUDA only)"),
    "compile": (RECIPE_MODEL, {"compile": True}, "torch.compile of the loss (CUDA only)"),
}
"""Name -> (model, overrides on the recipe, what changes). Sampler ablations (Heun vs DDIM vs
DPM-Solver++) come from the recipe's own rows."""

GENZOO_SAMPLERS = "heun:18,heun:25,dpmpp-2m:10,dpmpp-2m:20,ddim:50"
PEER_SAMPLERS = "ddim:10,ddim:50,ddpm:1000"


# --- data -----------------------------------------------------------------------------------


def padded_size(h: int) -> int:
    """The peer's resolution: the next power of two (at least 8), as diffusers' U-Net halves it
    at every level."""
    return max(8, 1 << (h - 1).bit_length())


def pad_images(x: Tensor, size: int) -> Tensor:
    """(B, C, H, W) in [-1, 1] -> (B, C, size, size), centred, background -1."""
    h, w = x.shape[-2:]
    top, left = (size - h) // 2, (size - w) // 2
    return F.pad(x, (left, size - w - left, top, size - h - top), value=-1.0)


def crop_images(x: Tensor, h: int, w: int) -> Tensor:
    """Inverse of :func:`pad_images`: the centred (h, w) window."""
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[..., top : top + h, left : left + w]


def data_hash(x: Tensor) -> str:
    return hashlib.sha256(x.detach().float().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


# --- the peer: diffusers' unconditional example ------------------------------------------------


def peer_unet(info: DataInfo, tiny: bool) -> nn.Module:
    from diffusers import UNet2DModel

    size = padded_size(info.shape[-1])
    return UNet2DModel(
        sample_size=size,
        in_channels=info.shape[0],
        out_channels=info.shape[0],
        layers_per_block=1 if tiny else 2,
        block_out_channels=(16, 32, 32) if tiny else (64, 128, 128),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8 if tiny else 32,
    )


def train_peer(
    x: Tensor,
    info: DataInfo,
    budget: float,
    unit: str,
    args: argparse.Namespace,
    device: torch.device,
) -> dict[str, Any]:
    """diffusers' train_unconditional.py loop for ``budget`` seconds or steps; returns the EMA
    network, the scheduler config and what was done."""
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    torch.manual_seed(args.seed)
    net = peer_unet(info, args.tiny).to(device).train()
    size = padded_size(info.shape[-1])
    data = pad_images(x, size).to(device)  # (N, C, S, S), kept on the device
    noise_sched = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="linear", prediction_type="epsilon"
    )
    opt = torch.optim.AdamW(
        net.parameters(),
        lr=1e-4,
        betas=(0.95, 0.999),
        weight_decay=1e-6,
        eps=1e-8,
        fused=device.type == "cuda",
    )
    ema = EMAModel(net.parameters(), decay=0.9999, use_ema_warmup=True, inv_gamma=1.0, power=0.75)
    warmup = min(500, args.peer_warmup)
    dtype = amp_dtype(device)
    g = torch.Generator().manual_seed(args.seed)
    n, b = data.shape[0], args.batch
    perm, pos = torch.randperm(n, generator=g), 0
    lr_sched = None
    total = int(budget) if unit == "steps" else 0
    if total:
        lr_sched = get_scheduler("cosine", opt, num_warmup_steps=warmup, num_training_steps=total)
    step = 0
    t0 = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - t0
        if (unit == "steps" and step >= total) or (unit == "s" and elapsed >= budget):
            break
        if lr_sched is None and step == 50:  # time budget: estimate the total from 50 steps
            sync(device)
            est = int(50 * budget / max(time.perf_counter() - t0, 1e-9))
            for group in opt.param_groups:
                group["lr"] = 1e-4  # the schedule's base learning rate
            lr_sched = get_scheduler(
                "cosine", opt, num_warmup_steps=warmup, num_training_steps=max(est, warmup + 1)
            )
            for _ in range(step):
                lr_sched.step()
        elif lr_sched is None:  # the first 50 steps of a time budget: the same linear warm-up
            for group in opt.param_groups:
                group["lr"] = 1e-4 * min(1.0, step / max(warmup, 1))
        if pos + b > n:
            perm, pos = torch.randperm(n, generator=g), 0
        idx = perm[pos : pos + b].to(device)
        pos += b
        clean = data[idx]
        noise = torch.randn_like(clean)
        t = torch.randint(0, 1000, (clean.shape[0],), device=device)
        with autocast(device, dtype):
            pred = net(noise_sched.add_noise(clean, noise, t), t).sample
        loss = F.mse_loss(pred.float(), noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if lr_sched is not None:
            lr_sched.step()
        opt.zero_grad(set_to_none=True)
        ema.step(net.parameters())
        step += 1
    sync(device)
    train_s = time.perf_counter() - t0
    ema_net = copy.deepcopy(net).eval()
    ema.copy_to(ema_net.parameters())
    return {
        "net": ema_net,
        "config": dict(noise_sched.config),
        "steps": step,
        "train_s": train_s,
        "params": n_params(net),
        "data_hash": data_hash(crop_images(data.cpu(), *info.shape[-2:])),
    }


@torch.no_grad()
def sample_peer(
    peer: dict[str, Any], sampler: str, steps: int, n: int, info: DataInfo, args, device
) -> tuple[Tensor, int, float]:
    """DDIMPipeline / DDPMPipeline loops on the EMA network; samples cropped back to the data's
    size. Returns (samples, NFE per image batch, seconds)."""
    from diffusers import DDIMScheduler, DDPMScheduler

    cls = {"ddim": DDIMScheduler, "ddpm": DDPMScheduler}[sampler]
    sched = cls.from_config(peer["config"])
    net = peer["net"]
    size = padded_size(info.shape[-1])
    out = []
    nfe = 0
    sync(device)
    t0 = time.perf_counter()
    with count_nfe(net) as c:
        for i, start in enumerate(range(0, n, args.sample_batch)):
            m = min(args.sample_batch, n - start)
            g = torch.Generator(device).manual_seed(args.seed + 1000 + i)
            x = torch.randn((m, info.shape[0], size, size), generator=g, device=device)
            sched.set_timesteps(steps)
            for t in sched.timesteps:
                x = sched.step(net(x, t).sample, t, x, generator=g).prev_sample
            out.append(crop_images(x.clamp(-1, 1), *info.shape[-2:]).cpu())
            if i == 0:
                nfe = c.nfe
    sync(device)
    return torch.cat(out), nfe, time.perf_counter() - t0


# --- genzoo ------------------------------------------------------------------------------------


def genzoo_overrides(
    info: DataInfo, extra: dict[str, Any], args: argparse.Namespace, device: torch.device
) -> dict[str, Any]:
    over: dict[str, Any] = {
        **MODELS.get(RECIPE_MODEL).default_train,
        **RECIPE,
        "batch_size": args.batch,
        "seed": args.seed,
        "device": str(device),
        "progress": False,
        "tensorboard": False,
        "ckpt_every": 0,
        "ckpt_every_s": 0,
        "n_samples": 16,
        **{k: v for k, v in extra.items() if k != "attn"},
    }
    if extra.get("attn"):  # attention at half the resolution, as the peer
        over["attn_resolutions"] = [(info.shape[-1] + 1) // 2]
    return over


def train_genzoo(
    model: str,
    extra: dict[str, Any],
    spec: str,
    info: DataInfo,
    budget: float,
    unit: str,
    run_dir: Path,
    args: argparse.Namespace,
    device: torch.device,
) -> dict[str, Any]:
    over = genzoo_overrides(info, extra, args, device)
    if run_dir.exists():  # this benchmark's own run from an earlier call: train it again
        shutil.rmtree(run_dir)
    t0 = time.perf_counter()
    kw = {"steps": int(budget)} if unit == "steps" else {"budget": f"{budget}s"}
    run = genzoo.train(model, spec, out=run_dir, overrides=over, **kw)
    wall = time.perf_counter() - t0
    loaded = genzoo.open_run(run, device=str(device))
    net = loaded.model
    return {
        "model": net,
        "steps": loaded.step,
        "train_s": wall,  # includes writing the final checkpoint and sample grid
        "params": n_params(net),
        "data_hash": data_hash(load_dataset(spec, "train").all()["x"]),
    }


@torch.no_grad()
def sample_genzoo(
    model: Any, sampler: str, steps: int, n: int, args, device
) -> tuple[Tensor, int, float]:
    out = []
    # Network calls counted on one eager image, untimed: a replayed CUDA graph runs no hooks.
    with count_nfe(model.net) as c:
        model.sample(1, sampler=sampler, steps=steps, generator=torch.Generator(device))
    nfe = c.nfe
    sync(device)
    t0 = time.perf_counter()
    for i, start in enumerate(range(0, n, args.sample_batch)):
        m = min(args.sample_batch, n - start)
        g = torch.Generator(device).manual_seed(args.seed + 1000 + i)
        x = model.sample(
            m, sampler=sampler, steps=steps, generator=g, cuda_graph=device.type == "cuda"
        )
        out.append(x.clamp(-1, 1).cpu())
    sync(device)
    return torch.cat(out), nfe, time.perf_counter() - t0


# --- measuring ---------------------------------------------------------------------------------


class Yardstick:
    """genzoo's classifier for the dataset and the test split's features."""

    def __init__(self, spec: str, tiny: bool) -> None:
        config = {"epochs": 2} if tiny else None  # a quick classifier for smoke runs only
        self.clf: FeatureClassifier = get_classifier(spec, config=config)
        self.ref = self.features(load_dataset(spec, "test").all()["x"])
        self.k = self.clf.info.n_classes

    def features(self, x: Tensor) -> Tensor:
        return torch.cat([self.clf.features(x[s : s + 1000]) for s in range(0, len(x), 1000)])

    def score(self, x: Tensor) -> dict[str, float]:
        feats = self.features(x)
        pr = prdc(self.ref, feats, k=5)
        pred = torch.cat(
            [self.clf.logits(x[s : s + 1000]).argmax(1) for s in range(0, len(x), 1000)]
        )
        counts = torch.bincount(pred.cpu(), minlength=self.k)
        share = 0.25 * len(x) / self.k
        return {
            "fd": frechet_distance(feats, self.ref),
            "precision": pr["precision"],
            "recall": pr["recall"],
            "classes": int((counts >= share).sum()),
        }


def _parse_samplers(text: str) -> list[tuple[str, int]]:
    out = []
    for item in text.split(","):
        name, _, steps = item.partition(":")
        out.append((name.strip(), int(steps)))
    return out


def _budgets(args: argparse.Namespace) -> tuple[list[float], str]:
    if args.steps:
        return [float(s) for s in args.steps.split(",")], "steps"
    return [parse_duration(b) for b in args.budgets.split(",")], "s"


def _label(budget: float, unit: str) -> str:
    return f"{budget:g} {unit}"


def evaluate_one(
    impl: str,
    variant: str,
    budget: float,
    unit: str,
    trained: dict[str, Any],
    samples: list[tuple[str, int, Tensor, int, float]],
    stick: Yardstick,
) -> list[dict[str, Any]]:
    rows = []
    for sampler, steps, x, nfe, secs in samples:
        rows.append(
            {
                "impl": impl,
                "variant": variant,
                "budget": budget,
                "unit": unit,
                "steps_trained": trained["steps"],
                "train_s": trained["train_s"],
                "params": trained["params"],
                "data_hash": trained["data_hash"],
                "sampler": sampler,
                "sampler_steps": steps,
                "nfe": nfe,
                "n": int(x.shape[0]),
                "sample_s": secs,
                **stick.score(x),
            }
        )
        r = rows[-1]
        print(  # one line per measurement: a run cut short still reports what it measured
            f"[{impl} {variant} {budget:g}{unit}, {trained['steps']} steps] {sampler} {steps} "
            f"({nfe} NFE): FD {r['fd']:.2f}, precision {r['precision']:.2f}, recall "
            f"{r['recall']:.2f}, classes {r['classes']}, {secs:.1f} s",
            flush=True,
        )
    return rows


def run_budget(
    budget: float,
    unit: str,
    spec: str,
    info: DataInfo,
    x_train: Tensor,
    stick: Yardstick,
    args: argparse.Namespace,
    device: torch.device,
    out: Path,
) -> list[dict[str, Any]]:
    rows = []
    label = f"{budget:g}{unit}"
    if not args.skip_peer:
        peer = train_peer(x_train, info, budget, unit, args, device)
        drawn = []
        for sampler, steps in _parse_samplers(args.peer_samplers):
            x, nfe, secs = sample_peer(peer, sampler, steps, args.n, info, args, device)
            drawn.append((sampler, steps, x, nfe, secs))
        save_samples_png(drawn[-1][2][:64], info, out / f"grid-diffusers-{label}.png")
        rows += evaluate_one("diffusers", "example", budget, unit, peer, drawn, stick)
        del peer
        free(device)
    mine = train_genzoo(
        RECIPE_MODEL, {}, spec, info, budget, unit, out / f"genzoo-{label}", args, device
    )
    drawn = []
    for sampler, steps in _parse_samplers(args.genzoo_samplers):
        x, nfe, secs = sample_genzoo(mine["model"], sampler, steps, args.n, args, device)
        drawn.append((sampler, steps, x, nfe, secs))
    g_rows = evaluate_one("genzoo", "recipe", budget, unit, mine, drawn, stick)
    best = min(range(len(g_rows)), key=lambda i: g_rows[i]["fd"])
    save_samples_png(drawn[best][2][:64], info, out / f"grid-genzoo-{label}.png")
    free(device)
    return rows + g_rows


def run_ablations(
    budget: float,
    unit: str,
    spec: str,
    info: DataInfo,
    stick: Yardstick,
    recipe_rows: list[dict[str, Any]],
    args: argparse.Namespace,
    device: torch.device,
    out: Path,
) -> list[dict[str, Any]]:
    """Each ablation at the recipe's best sampler (by FD at this budget)."""
    mine = [r for r in recipe_rows if r["impl"] == "genzoo" and r["budget"] == budget]
    best = min(mine, key=lambda r: r["fd"])
    rows = []
    names = args.ablations.split(",") if args.ablations else list(ABLATIONS)
    for name in names:
        if name not in ABLATIONS:
            raise GenzooError(f"Unknown ablation {name!r}; choose from {', '.join(ABLATIONS)}.")
        model, extra, what = ABLATIONS[name]
        if device.type != "cuda" and name in ("fp32", "compile"):
            continue  # bf16 and compilation are CUDA speed settings
        run_dir = out / f"ablate-{name}-{budget:g}{unit}"
        trained = train_genzoo(model, extra, spec, info, budget, unit, run_dir, args, device)
        ref = best
        if model == "ddpm":  # on its own discrete sigmas: compare DDIM with the recipe's DDIM
            ref = next((r for r in mine if r["sampler"] == "ddim"), best)
        sampler, steps = ref["sampler"], ref["sampler_steps"]
        if model == "ddpm" and sampler != "ddim":
            sampler, steps = "ddim", 50
        x, nfe, secs = sample_genzoo(trained["model"], sampler, steps, args.n, args, device)
        (row,) = evaluate_one(
            "genzoo", name, budget, unit, trained, [(sampler, steps, x, nfe, secs)], stick
        )
        row["change"] = what
        row["fd_recipe"] = ref["fd"] if ref["sampler"] == sampler else None
        row["fd_change"] = row["fd"] - ref["fd"] if ref["sampler"] == sampler else None
        rows.append(row)
        free(device)
    return rows


def plot(rows: list[dict[str, Any]], path: Path, max_nfe: int) -> None:
    """FD against budget: genzoo's best at <= max_nfe, the peer's DDIM-50 and DDPM-1000."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    series: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if r["variant"] not in ("recipe", "example"):
            continue
        if r["impl"] == "genzoo" and r["nfe"] <= max_nfe:
            key = f"genzoo (best sampler, <= {max_nfe} NFE)"
        elif r["impl"] == "diffusers":
            key = f"diffusers {r['sampler'].upper()}-{r['sampler_steps']}"
        else:
            continue
        series.setdefault(key, []).append((r["budget"], r["fd"]))
    for key, pts in series.items():
        best: dict[float, float] = {}
        for b, fd in pts:
            best[b] = min(fd, best.get(b, math.inf))
        xs = sorted(best)
        ax.plot(xs, [best[b] for b in xs], marker="o", label=key)
    unit = rows[0]["unit"] if rows else "s"
    ax.set_xlabel("training budget (" + ("optimizer steps" if unit == "steps" else "s") + ")")
    ax.set_ylabel("Fréchet distance (genzoo classifier features)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _merge(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of earlier calls in the same --out, replaced where this call measured the same."""

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["impl"], r["variant"], r["budget"], r["unit"], r["sampler"], r["sampler_steps"])

    mine = {key(r) for r in new}
    return [r for r in old if key(r) not in mine] + new


def comparisons(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each of the recipe's rows beside each of the peer's samplers at the same budget: FD,
    genzoo / peer (below 1 is better)."""
    out = []
    for r in rows:
        if r["impl"] != "genzoo" or r["variant"] != "recipe":
            continue
        for p in rows:
            if p["impl"] != "diffusers" or (p["budget"], p["unit"]) != (r["budget"], r["unit"]):
                continue
            out.append(
                comparison(
                    "FD",
                    "classifier features",
                    r["fd"],
                    "diffusers example",
                    p["fd"],
                    higher_is_better=False,
                    budget=r["budget"],
                    budget_unit=r["unit"],
                    n=r["n"],
                    sampler=f"{r['sampler']} {r['sampler_steps']}",
                    nfe=r["nfe"],
                    peer_sampler=f"{p['sampler']} {p['sampler_steps']}",
                    peer_nfe=p["nfe"],
                    peer_n=p["n"],
                    steps_trained=r["steps_trained"],
                    peer_steps_trained=p["steps_trained"],
                )
            )
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="dataset (default mnist5k; tiny: digits)")
    p.add_argument("--budgets", default="60,240,900", help="wall-clock budgets, e.g. 60,4m,15m")
    p.add_argument("--steps", default="", help="optimizer-step budgets instead, e.g. 500,2000")
    p.add_argument("--n", type=int, default=0, help="samples per sampler (0: 5000; tiny: 64)")
    p.add_argument("--batch", type=int, default=0, help="training batch (0: 128; tiny: 32)")
    p.add_argument("--sample-batch", type=int, default=1000, help="images per sampling call")
    p.add_argument("--peer-samplers", default=None, help=f"default {PEER_SAMPLERS}")
    p.add_argument("--genzoo-samplers", default=None, help=f"default {GENZOO_SAMPLERS}")
    p.add_argument("--peer-warmup", type=int, default=500, help="the peer's warm-up steps")
    p.add_argument("--ablate", action="store_true", help="also the recipe's ablations")
    p.add_argument("--skip-peer", action="store_true", help="genzoo's recipe (and ablations) alone")
    p.add_argument("--ablations", default="", help=f"subset of {','.join(ABLATIONS)}")
    p.add_argument("--ablate-budget", default="", help="budget of the ablations (default first)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tiny", action="store_true", help="CPU smoke run: digits, step budgets")
    p.add_argument("--out", default="runs/bench-quality", help="output folder")
    p.add_argument(
        "--json",
        default="auto",
        help="folder for this call's JSON record (auto: benchmarks/results on CUDA, none on CPU; "
        "none: no record)",
    )
    args = p.parse_args(argv)
    args.data = args.data or ("digits" if args.tiny else "mnist5k")
    if args.tiny and not args.steps:
        args.steps = "10,20"
    args.n = args.n or (64 if args.tiny else 5000)
    args.batch = args.batch or (32 if args.tiny else 128)
    args.peer_samplers = args.peer_samplers or ("ddim:4,ddpm:8" if args.tiny else PEER_SAMPLERS)
    args.genzoo_samplers = args.genzoo_samplers or (
        "heun:3,dpmpp-2m:4,ddim:4" if args.tiny else GENZOO_SAMPLERS
    )
    if args.tiny:
        args.peer_warmup = min(args.peer_warmup, 5)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import json

    args = parse_args(argv)
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = args.data
    train_set = load_dataset(spec, "train")
    info = train_set.info
    if info.kind != "images":
        raise GenzooError(f"quality_at_budget needs an image dataset; {spec!r} is {info.kind}.")
    x_train = train_set.all()["x"]  # model space, bin centres: what genzoo's Trainer feeds
    stick = Yardstick(spec, args.tiny)
    n_floor = min(args.n, x_train.shape[0])
    floor = stick.score(x_train[torch.randperm(x_train.shape[0])[:n_floor]])
    budgets, unit = _budgets(args)
    rows: list[dict[str, Any]] = []
    where = json_dir(args.json, device)
    record = JsonRows(where, "quality_at_budget", device, argv) if where else None
    if record is not None:
        record.doc.update(data=spec, floor=floor)

    def keep(new: list[dict[str, Any]]) -> None:
        rows.extend(new)
        if record is not None:
            for r in new:
                record.add(r)

    for budget in budgets:
        keep(run_budget(budget, unit, spec, info, x_train, stick, args, device, out))
    if args.ablate:
        b = budgets[0]
        if args.ablate_budget:
            b = float(args.ablate_budget) if unit == "steps" else parse_duration(args.ablate_budget)
        if b not in budgets:
            keep(run_budget(b, unit, spec, info, x_train, stick, args, device, out))
        keep(run_ablations(b, unit, spec, info, stick, rows, args, device, out))
    results_path = out / "results.json"
    old = json.loads(results_path.read_text())["rows"] if results_path.is_file() else []
    all_rows = _merge(old, rows)
    max_nfe = 50
    plot(all_rows, out / "fd_vs_budget.png", max_nfe)
    env = environment(device)
    doc = {
        "env": env,
        "args": vars(args),
        "data": spec,
        "floor": floor,
        "recipe": {"model": RECIPE_MODEL, "overrides": RECIPE},
        "rows": all_rows,
    }
    write_json(results_path, doc)
    print(f"Device: {env.get('gpu', env['device'])}; torch {env['torch']}; {env['date']}")
    if device.type != "cuda":
        print("(CPU run: a smoke test of the code, not a quality or speed claim)")
    print(f"Data: {spec}; FD floor (n real training images vs test): {floor['fd']:.2f}")
    cols = [
        ("impl", "impl"),
        ("variant", "variant"),
        ("budget", "budget"),
        ("unit", "unit"),
        ("steps_trained", "steps"),
        ("params", "params"),
        ("sampler", "sampler"),
        ("sampler_steps", "sampler steps"),
        ("nfe", "NFE"),
        ("fd", "FD"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("classes", "classes"),
        ("sample_s", "sampling s"),
    ]
    main_rows = [r for r in rows if r["variant"] in ("recipe", "example")]
    print(markdown_table(main_rows, cols))
    abl = [r for r in rows if r["variant"] not in ("recipe", "example")]
    if abl:
        print()
        print(
            markdown_table(
                abl,
                [
                    ("variant", "ablation"),
                    ("change", "change from the recipe"),
                    ("sampler", "sampler"),
                    ("nfe", "NFE"),
                    ("fd", "FD"),
                    ("fd_recipe", "recipe FD (same sampler)"),
                    ("fd_change", "FD change"),
                    ("steps_trained", "steps"),
                ],
            )
        )
    print(f"\nWrote {results_path}, {out / 'fd_vs_budget.png'} and sample grids.")
    result = {**doc, "new_rows": rows}
    if record is not None:
        result["json"] = str(record.finish(comparisons(rows)))
        print(f"Wrote {result['json']}")
    return result


if __name__ == "__main__":
    main()
