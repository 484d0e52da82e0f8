"""Training throughput and model FLOP utilisation (MFU): genzoo against its peers, same process.

Reference configurations (``--configs``, default all three):

- ``unet``: the DDPM CIFAR-10 U-Net (Ho et al., arXiv:2006.11239; 35.7M parameters, 32x32x3).
  genzoo: ``ddpm`` with channels 128, multipliers 1-2-2-2, two residual blocks per level,
  attention at 16x16, dropout 0.1. Peer: diffusers ``UNet2DModel`` in the configuration of the
  ``ddpm-cifar10-32`` checkpoint, trained as in diffusers' unconditional example (ε-prediction on
  ``DDPMScheduler.add_noise`` with linear betas, MSE). Both have exactly 35,746,307 parameters.
- ``dit``: DiT-S/2 (Peebles & Xie, arXiv:2212.09748) on 32x32x4 latents with 1,000 classes.
  genzoo: ``dit`` (width 384, depth 12, 6 heads, patch 2; 32.9M parameters, the paper's DiT-S).
  Peer: diffusers ``DiTTransformer2DModel`` (39.8M: it keeps a timestep and class embedder in every
  block).
- ``gpt2``: GPT-2 124M (12 layers, 12 heads, width 768, block 1024, vocabulary padded to 50,304).
  genzoo: ``gpt`` on text windows. Peers: Hugging Face transformers ``GPT2LMHeadModel`` (SDPA
  attention) and nanoGPT's ``model.py`` when ``--nanogpt PATH`` names a copy of it (fetched at
  benchmark time, never part of genzoo; without it that peer is skipped with a note).

One training step is the same on every side: forward and loss under autocast (bf16 on CUDA, fp32
on the CPU), backward, gradient clipping at norm 1, AdamW (fused on CUDA), and an EMA of the
weights for the diffusion models. genzoo's step is ``genzoo.train.Trainer.train_step``, the step
``genzoo train`` runs; the peers' step is written out as in their own examples. Every side
trains on the same batch (seeded synthetic images / tokens). Variants: ``eager`` always;
``--channels-last`` (convolutional configs) and ``--compile`` add those and their combination.
``--variants`` names the variants to run, in the order given, from ``eager`` and any
combination of ``compile``, ``channels_last`` and ``graph`` joined by ``+`` (e.g.
``eager,graph,compile+channels_last+graph``). ``graph`` is genzoo's whole training step (forward,
backward, clipping, fused AdamW, EMA) captured in one CUDA graph
(:class:`genzoo.train.graphed.GraphedStep`); the peers train as their examples do, without one, so
graph variants have genzoo rows only. Off CUDA a graph variant runs the same step without a graph
and says so in a note.

FLOPs per step are counted once per model by ``torch.utils.flop_counter.FlopCounterMode`` on an
eager forward + backward; MFU = FLOPs per step x steps per second / (``--peak-tflops`` x 1e12),
with the H100's dense bf16 peak (989 TFLOP/s) as the default.

    python benchmarks/train_throughput.py --batch 128 --compile --channels-last \\
        --nanogpt /tmp/nanoGPT/model.py
    python benchmarks/train_throughput.py --tiny          # CPU-sized smoke run

Prints markdown tables; ``--out FILE`` also writes the rows as JSON, and ``--json DIR`` writes the
run's record (device, date, torch, git commit, command, rows, and each genzoo figure beside its
peers' figures from the same run) to ``DIR/train_throughput-<time>-<device>.json``, rewritten after
every row; by default (``auto``) runs on CUDA write it to ``benchmarks/results/``, CPU runs do not.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import (
    H100_BF16_DENSE_TFLOPS,
    JsonRows,
    amp_dtype,
    autocast,
    comparison,
    count_flops,
    environment,
    free,
    json_dir,
    load_module_from_path,
    markdown_table,
    n_params,
    optional,
    resolve_device,
    time_calls,
    write_json,
)

from genzoo.data.base import DataInfo, Dataset, levels_to_model
from genzoo.models import MODELS  # importing genzoo.models registers every model
from genzoo.train.graphed import GraphedStep
from genzoo.train.trainer import TrainConfig, Trainer

CONFIGS = ("unet", "dit", "gpt2")
FEATURES = ("compile", "channels_last", "graph")  # the parts of a variant's name, in this order
GRAPH_WARMUP = 2  # eager steps before a graph variant captures its step


@dataclass
class Peer:
    """A peer implementation: how to build it (on the CPU) and its loss on the shared batch."""

    name: str
    build: Callable[[], nn.Module]
    loss: Callable[[nn.Module, dict[str, Tensor]], Tensor]
    ema: Callable[[nn.Module], Any] | None = None  # the peer's own EMA, if it has one


@dataclass
class Workload:
    name: str
    unit: str  # "img/s" or "tok/s"
    items: int  # images or tokens per step
    batch: dict[str, Tensor]  # on the CPU; moved to the device by the runner
    genzoo_model: str
    genzoo_config: dict[str, Any]
    info: DataInfo
    train: dict[str, Any]  # genzoo TrainConfig settings (lr, ema_decay)
    conv: bool  # channels_last applies
    peers: list[Peer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- the reference configurations ------------------------------------------------------------


def _image_batch(b: int, shape: tuple[int, ...], n_classes: int = 0) -> dict[str, Tensor]:
    """Seeded images on 256 levels, in model space, with labels if asked: the one batch that
    genzoo and its peers all train on."""
    g = torch.Generator().manual_seed(0)
    levels = torch.randint(0, 256, (b, *shape), generator=g, dtype=torch.uint8)
    batch = {"x": levels_to_model(levels, 256)}
    if n_classes:
        batch["y"] = torch.randint(0, n_classes, (b,), generator=g)
    return batch


def _diffusers_ema(net: nn.Module) -> Any:
    from diffusers.training_utils import EMAModel

    kw = {"foreach": True} if "foreach" in inspect.signature(EMAModel.__init__).parameters else {}
    return EMAModel(net.parameters(), decay=0.9999, **kw)


def unet_workload(batch: int, tiny: bool) -> Workload:
    """The DDPM CIFAR-10 U-Net (or a CPU-sized one with the same structure)."""
    if tiny:
        res, ch, mult, blocks, attn = 8, 32, (1, 2), 1, (4,)
        down = ("DownBlock2D", "AttnDownBlock2D")
        up = ("AttnUpBlock2D", "UpBlock2D")
    else:
        res, ch, mult, blocks, attn = 32, 128, (1, 2, 2, 2), 2, (16,)
        down = ("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D")
        up = ("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D")
    info = DataInfo(name="synthetic-cifar10", kind="images", shape=(3, res, res), levels=256)
    w = Workload(
        name="unet",
        unit="img/s",
        items=batch,
        batch=_image_batch(batch, info.shape),
        genzoo_model="ddpm",
        genzoo_config={
            "channels": ch,
            "channel_mult": mult,
            "num_res_blocks": blocks,
            "attn_resolutions": attn,
            "dropout": 0.1,
        },
        info=info,
        train={"lr": 2e-4, "ema_decay": 0.9999},
        conv=True,
    )
    diffusers = optional("diffusers")
    if diffusers is None:
        w.notes.append("diffusers is not installed (pip install 'genzoo[bench]'): peer skipped")
        return w

    def build() -> nn.Module:
        # the ddpm-cifar10-32 checkpoint's configuration (block types, one attention head)
        return diffusers.UNet2DModel(
            sample_size=res,
            in_channels=3,
            out_channels=3,
            layers_per_block=blocks,
            block_out_channels=tuple(ch * m for m in mult),
            down_block_types=down,
            up_block_types=up,
            attention_head_dim=None,
            dropout=0.1,
            freq_shift=1,
            flip_sin_to_cos=False,
            downsample_padding=0,
            norm_eps=1e-6,
        )

    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")

    def loss(net: nn.Module, b: dict[str, Tensor]) -> Tensor:
        # diffusers' train_unconditional.py: eps-prediction at a uniform timestep
        x = b["x"]
        noise = torch.randn_like(x)
        t = torch.randint(0, 1000, (x.shape[0],), device=x.device)
        pred = net(sched.add_noise(x, noise, t), t).sample
        return F.mse_loss(pred.float(), noise.float())

    w.peers.append(Peer("diffusers", build, loss, _diffusers_ema))
    return w


def dit_workload(batch: int, tiny: bool) -> Workload:
    """DiT-S/2 at 32x32x4 (latent-sized), class-conditional on 1,000 classes."""
    if tiny:
        res, width, depth, heads, classes = 8, 64, 2, 2, 10
    else:
        res, width, depth, heads, classes = 32, 384, 12, 6, 1000
    info = DataInfo(
        name="synthetic-latents", kind="images", shape=(4, res, res), levels=256, n_classes=classes
    )
    w = Workload(
        name="dit",
        unit="img/s",
        items=batch,
        batch=_image_batch(batch, info.shape, classes),
        genzoo_model="dit",
        genzoo_config={
            "patch": 2,
            "width": width,
            "depth": depth,
            "heads": heads,
            "class_conditional": True,
        },
        info=info,
        train={"lr": 1e-4, "ema_decay": 0.9999},
        conv=False,
    )
    diffusers = optional("diffusers")
    if diffusers is None or not hasattr(diffusers, "DiTTransformer2DModel"):
        w.notes.append("diffusers' DiTTransformer2DModel is not available: peer skipped")
        return w

    def build() -> nn.Module:
        return diffusers.DiTTransformer2DModel(
            num_attention_heads=heads,
            attention_head_dim=width // heads,
            in_channels=4,
            out_channels=4,
            num_layers=depth,
            sample_size=res,
            patch_size=2,
            num_embeds_ada_norm=classes,
        )

    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")

    def loss(net: nn.Module, b: dict[str, Tensor]) -> Tensor:
        x = b["x"]
        noise = torch.randn_like(x)
        t = torch.randint(0, 1000, (x.shape[0],), device=x.device)
        pred = net(sched.add_noise(x, noise, t), timestep=t, class_labels=b["y"]).sample
        return F.mse_loss(pred.float(), noise.float())

    w.peers.append(Peer("diffusers", build, loss, _diffusers_ema))
    return w


def gpt2_workload(batch: int, tiny: bool, nanogpt: str | None) -> Workload:
    """GPT-2 124M at block 1024 (or a 2-layer one at block 64)."""
    if tiny:
        layers, heads, width, block, vocab, padded = 2, 2, 64, 32, 250, 256
    else:
        layers, heads, width, block, vocab, padded = 12, 12, 768, 1024, 50257, 50304
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, vocab, (batch, block), generator=g)  # (B, T)
    info = DataInfo(name="synthetic-tokens", kind="text", shape=(block,), levels=vocab)
    w = Workload(
        name="gpt2",
        unit="tok/s",
        items=batch * block,
        batch={"x": tokens},
        genzoo_model="gpt",
        genzoo_config={
            "n_layer": layers,
            "n_head": heads,
            "n_embd": width,
            "dropout": 0.0,
            "bias": True,
            "vocab_size": padded,
        },
        info=info,
        train={"lr": 6e-4, "ema_decay": 0.0},
        conv=False,
    )
    transformers = optional("transformers")
    if transformers is None:
        w.notes.append("transformers is not installed (pip install 'genzoo[bench]'): skipped")
    else:

        def build_hf() -> nn.Module:
            cfg = transformers.GPT2Config(
                vocab_size=vocab,
                n_positions=block,
                n_embd=width,
                n_layer=layers,
                n_head=heads,
                resid_pdrop=0.0,
                embd_pdrop=0.0,
                attn_pdrop=0.0,
                bos_token_id=None,
                eos_token_id=None,
                attn_implementation="sdpa",
            )
            return transformers.GPT2LMHeadModel(cfg)

        def loss_hf(net: nn.Module, b: dict[str, Tensor]) -> Tensor:
            return net(input_ids=b["x"], labels=b["x"]).loss

        w.peers.append(Peer("transformers", build_hf, loss_hf))
    if nanogpt is None:
        w.notes.append("nanoGPT skipped: pass --nanogpt PATH to a copy of its model.py")
    else:
        mod = load_module_from_path(nanogpt, "nanogpt_model")

        def build_nano() -> nn.Module:
            cfg = mod.GPTConfig(
                block_size=block,
                vocab_size=padded,
                n_layer=layers,
                n_head=heads,
                n_embd=width,
                dropout=0.0,
                bias=True,
            )
            return mod.GPT(cfg)

        def loss_nano(net: nn.Module, b: dict[str, Tensor]) -> Tensor:
            x = b["x"]
            targets = torch.cat([x[:, 1:], torch.full_like(x[:, :1], -1)], dim=1)  # -1: ignored
            return net(x, targets)[1]

        w.peers.append(Peer("nanoGPT", build_nano, loss_nano))
    return w


# --- running one implementation ----------------------------------------------------------------


Variant = tuple[str, bool, bool, bool]  # (name, compile, channels_last, graph)


def parse_variant(name: str) -> Variant:
    """``"compile+channels_last+graph"`` -> (canonical name, compile, channels_last, graph);
    ``"eager"`` is none of them. Raises ``ValueError`` naming the valid parts."""
    parts = {t.strip() for t in name.split("+") if t.strip()} - {"eager"}
    bad = sorted(parts - set(FEATURES))
    if bad:
        raise ValueError(
            f"unknown variant part {bad[0]!r} in {name!r}; use eager or a '+'-joined "
            f"combination of {', '.join(FEATURES)}"
        )
    flags = [f in parts for f in FEATURES]
    canonical = "+".join(f for f in FEATURES if f in parts) or "eager"
    return (canonical, *flags)  # type: ignore[return-value]


def _variants(w: Workload, args: argparse.Namespace) -> list[Variant]:
    """The variants to run on ``w``: ``--variants`` in its order, else eager and what
    ``--compile`` / ``--channels-last`` add; channels_last only for convolutional configs."""
    if args.variants:
        out = [parse_variant(v) for v in args.variants.split(",")]
    else:
        out = [parse_variant("eager")]
        if args.channels_last:
            out.append(parse_variant("channels_last"))
        if args.compile:
            out.append(parse_variant("compile"))
        if args.compile and args.channels_last:
            out.append(parse_variant("compile+channels_last"))
    return [v for v in out if w.conv or not v[2]]


def _to_device(batch: dict[str, Tensor], device: torch.device, cl: bool) -> dict[str, Tensor]:
    out = {k: v.to(device) for k, v in batch.items()}
    if cl and out["x"].ndim == 4:
        out["x"] = out["x"].contiguous(memory_format=torch.channels_last)
    return out


def _fingerprint(batch: dict[str, Tensor]) -> float:
    return float(batch["x"].double().sum())


def _genzoo_model(w: Workload) -> Any:
    cls = MODELS.get(w.genzoo_model)
    return cls(cls.config_class.from_dict(w.genzoo_config), w.info)


def _stored(w: Workload) -> Dataset:
    """The batch as a genzoo Dataset (levels / tokens), for the Trainer's constructor."""
    x = w.batch["x"]
    if w.info.kind == "images":
        x = torch.floor((x + 1) * 128).clamp(0, 255).to(torch.uint8)  # bin centres -> levels
    return Dataset(w.info, x, w.batch.get("y"))


def run_genzoo(
    w: Workload,
    variant: Variant,
    args: argparse.Namespace,
    device: torch.device,
    flops_cache: dict[str, int],
    notes: list[str] | None = None,
) -> dict[str, Any]:
    name, compile, cl, graph = variant
    dtype = amp_dtype(device, args.precision)
    model = _genzoo_model(w).to(device)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    batch = _to_device(w.batch, device, cl)
    if "genzoo" not in flops_cache:  # a property of the model: counted once, eagerly
        flops_cache["genzoo"] = count_flops(
            lambda: _backward(lambda: model.loss(batch).loss, device, dtype)
        )
        model.zero_grad(set_to_none=True)
    flops = flops_cache["genzoo"]
    precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    settings = {
        **w.train,
        "steps": 1,
        "batch_size": int(w.batch["x"].shape[0]),
        "grad_clip": 1.0,
        "precision": precision,
        "compile": compile,
        "device": str(device),
        "progress": False,
        "tensorboard": False,
    }
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(model, _stored(w), TrainConfig.from_dict(settings), run_dir)
        step: Callable[..., Any] = trainer.train_step
        warmup = args.warmup
        if graph:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the fallback sentence goes into the notes
                step = GraphedStep(trainer, warmup=GRAPH_WARMUP)
            if step.fallback and notes is not None and step.fallback not in notes:
                notes.append(step.fallback)
            warmup = max(warmup, GRAPH_WARMUP + 1)  # the capture happens before the timing
        sec = time_calls(lambda: step(batch), args.steps, warmup, device)
    row = _row(w, "genzoo", name, n_params(model), sec, flops, args, _fingerprint(batch))
    return row


def _backward(loss_fn: Callable[[], Tensor], device: torch.device, dtype: Any) -> None:
    with autocast(device, dtype):
        loss = loss_fn()
    loss.backward()


def run_peer(
    w: Workload,
    peer: Peer,
    variant: Variant,
    args: argparse.Namespace,
    device: torch.device,
    flops_cache: dict[str, int],
) -> dict[str, Any]:
    name, compile, cl, _graph = variant
    dtype = amp_dtype(device, args.precision)
    torch.manual_seed(0)
    net = peer.build().to(device).train()
    if cl:
        net = net.to(memory_format=torch.channels_last)
    batch = _to_device(w.batch, device, cl)
    if peer.name not in flops_cache:
        flops_cache[peer.name] = count_flops(
            lambda: _backward(lambda: peer.loss(net, batch), device, dtype)
        )
        net.zero_grad(set_to_none=True)
    flops = flops_cache[peer.name]
    fwd = torch.compile(net) if compile else net
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=w.train["lr"], fused=device.type == "cuda")
    ema = peer.ema(net) if (peer.ema is not None and w.train["ema_decay"] > 0) else None

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        _backward(lambda: peer.loss(fwd, batch), device, dtype)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if ema is not None:
            ema.step(params)

    sec = time_calls(step, args.steps, args.warmup, device)
    row = _row(w, peer.name, name, n_params(net), sec, flops, args, _fingerprint(batch))
    return row


def _row(
    w: Workload,
    impl: str,
    variant: str,
    params: int,
    sec: float,
    flops: int,
    args: argparse.Namespace,
    fingerprint: float,
) -> dict[str, Any]:
    tflops = flops / sec / 1e12
    return {
        "config": w.name,
        "impl": impl,
        "variant": variant,
        "batch": int(w.batch["x"].shape[0]),
        "params": params,
        "step_ms": 1000 * sec,
        "throughput": w.items / sec,
        "unit": w.unit,
        "gflops_per_step": flops / 1e9,
        "tflops": tflops,
        "mfu": tflops / args.peak_tflops,
        "data": fingerprint,
    }


def _progress(row: dict[str, Any]) -> None:
    """One line per finished measurement, so a run cut short still reports what it measured."""
    print(
        f"[{row['config']}] {row['impl']} {row['variant']}: {row['step_ms']:.1f} ms/step, "
        f"{row['throughput']:,.0f} {row['unit']}, MFU {row['mfu']:.1%}",
        flush=True,
    )


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per config and peer: genzoo's best against the peer's eager and best throughput."""
    out = []
    for cfg in dict.fromkeys(r["config"] for r in rows):
        mine = [r for r in rows if r["config"] == cfg and r["impl"] == "genzoo"]
        if not mine:
            continue
        best = max(mine, key=lambda r: r["throughput"])
        for r in rows:  # each row: its ratio to the best peer of the same variant
            if r["config"] == cfg and r["impl"] == "genzoo":
                same = [
                    p["throughput"]
                    for p in rows
                    if p["config"] == cfg and p["impl"] != "genzoo" and p["variant"] == r["variant"]
                ]
                r["vs_peer"] = r["throughput"] / max(same) if same else None
        for peer in dict.fromkeys(
            r["impl"] for r in rows if r["config"] == cfg and r["impl"] != "genzoo"
        ):
            theirs = [r for r in rows if r["config"] == cfg and r["impl"] == peer]
            eager = next((r for r in theirs if r["variant"] == "eager"), theirs[0])
            top = max(theirs, key=lambda r: r["throughput"])
            out.append(
                {
                    "config": cfg,
                    "peer": peer,
                    "genzoo_best": f"{best['variant']}: {best['throughput']:,.0f} {best['unit']}",
                    "peer_eager": eager["throughput"],
                    "peer_best": f"{top['variant']}: {top['throughput']:,.0f} {top['unit']}",
                    "ratio_vs_eager": best["throughput"] / eager["throughput"],
                    "ratio_vs_best": best["throughput"] / top["throughput"],
                    "genzoo_best_mfu": best["mfu"],
                    "params": f"{best['params']:,} vs {top['params']:,}",
                }
            )
    return out


def comparisons(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each genzoo row beside each peer's row of the same config: the same variant (when the peer
    ran it), the peer's eager row and its best row; throughput ratios genzoo / peer."""
    out = []
    for r in rows:
        if r["impl"] != "genzoo":
            continue
        for peer in dict.fromkeys(
            p["impl"] for p in rows if p["config"] == r["config"] and p["impl"] != "genzoo"
        ):
            theirs = [p for p in rows if p["config"] == r["config"] and p["impl"] == peer]
            picks = {
                "same variant": next((p for p in theirs if p["variant"] == r["variant"]), None),
                "peer eager": next((p for p in theirs if p["variant"] == "eager"), None),
                "peer best": max(theirs, key=lambda p: p["throughput"]),
            }
            used: list[dict[str, Any]] = []
            for against, p in picks.items():
                if p is None or any(p is u for u in used):  # one comparison per peer row
                    continue
                used.append(p)
                out.append(
                    comparison(
                        "training throughput",
                        r["unit"],
                        r["throughput"],
                        peer,
                        p["throughput"],
                        config=r["config"],
                        batch=r["batch"],
                        variant=r["variant"],
                        against=against,
                        peer_variant=p["variant"],
                        genzoo_mfu=r["mfu"],
                        peer_mfu=p["mfu"],
                    )
                )
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated: unet,dit,gpt2")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cuda, cuda:1, cpu")
    p.add_argument("--batch", type=int, default=0, help="images per step (0: 128; tiny: 4)")
    p.add_argument("--gpt-batch", type=int, default=0, help="GPT-2 sequences (0: 12; tiny: 2)")
    p.add_argument("--steps", type=int, default=0, help="timed steps (0: 20; tiny: 2)")
    p.add_argument("--warmup", type=int, default=-1, help="untimed steps first (-1: 5; tiny: 1)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--compile", action="store_true", help="also run torch.compile variants")
    p.add_argument("--channels-last", action="store_true", help="also run channels_last (U-Net)")
    p.add_argument("--nanogpt", default=None, help="path to nanoGPT's model.py (GPT-2 peer)")
    p.add_argument(
        "--variants",
        default="",
        help="these variants in this order: eager or '+'-joined compile, channels_last, graph "
        "(e.g. eager,graph,compile+channels_last+graph); default: eager and what --compile / "
        "--channels-last add",
    )
    p.add_argument("--impls", default="", help="only these, e.g. genzoo,nanoGPT (default all)")
    p.add_argument("--peak-tflops", type=float, default=H100_BF16_DENSE_TFLOPS)
    p.add_argument("--tiny", action="store_true", help="CPU-sized configurations (smoke test)")
    p.add_argument("--out", default=None, help="write the rows as JSON to this file")
    p.add_argument(
        "--json",
        default="auto",
        help="folder for the run's JSON record (auto: benchmarks/results on CUDA, none on CPU; "
        "none: no record)",
    )
    args = p.parse_args(argv)
    for v in filter(None, args.variants.split(",")):
        try:
            parse_variant(v)
        except ValueError as e:
            p.error(str(e))
    args.batch = args.batch or (4 if args.tiny else 128)
    args.gpt_batch = args.gpt_batch or (2 if args.tiny else 12)
    args.steps = args.steps or (2 if args.tiny else 20)
    args.warmup = args.warmup if args.warmup >= 0 else (1 if args.tiny else 5)
    bad = [c for c in args.configs.split(",") if c not in CONFIGS]
    if bad:
        p.error(f"unknown config {bad[0]!r}; choose from {', '.join(CONFIGS)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    builders = {
        "unet": lambda: unet_workload(args.batch, args.tiny),
        "dit": lambda: dit_workload(args.batch, args.tiny),
        "gpt2": lambda: gpt2_workload(args.gpt_batch, args.tiny, args.nanogpt),
    }
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    where = json_dir(args.json, device)
    record = JsonRows(where, "train_throughput", device, argv) if where else None

    def keep(row: dict[str, Any]) -> None:
        rows.append(row)
        _progress(row)
        if record is not None:
            record.add(row)
        free(device)

    for cfg in args.configs.split(","):
        w = builders[cfg]()
        notes += [f"{cfg}: {n}" for n in w.notes]
        flops: dict[str, int] = {}
        impls = set(args.impls.split(",")) if args.impls else None
        for variant in _variants(w, args):
            if impls is None or "genzoo" in impls:
                keep(run_genzoo(w, variant, args, device, flops, notes))
            for peer in w.peers:
                if variant[3]:  # graph: the peers' examples train without one
                    continue
                if impls is None or peer.name in impls:
                    keep(run_peer(w, peer, variant, args, device, flops))
    summary = summarize(rows)
    env = environment(device)
    print(f"Device: {env.get('gpu', env['device'])}; torch {env['torch']}; {env['date']}")
    if device.type != "cuda":
        print("(CPU run: a smoke test of the code, not a speed claim)")
    cols = [
        ("config", "config"),
        ("impl", "impl"),
        ("variant", "variant"),
        ("batch", "batch"),
        ("params", "params"),
        ("step_ms", "step ms"),
        ("throughput", "items/s"),
        ("unit", "unit"),
        ("gflops_per_step", "GFLOP/step"),
        ("tflops", "TFLOP/s"),
        ("mfu", "MFU"),
        ("vs_peer", "genzoo / best peer (same variant)"),
    ]
    print(markdown_table(rows, cols))
    print()
    print(
        markdown_table(
            summary,
            [
                ("config", "config"),
                ("peer", "peer"),
                ("genzoo_best", "genzoo best"),
                ("peer_eager", "peer eager"),
                ("peer_best", "peer best"),
                ("ratio_vs_eager", "genzoo / peer eager"),
                ("ratio_vs_best", "genzoo / peer best"),
                ("genzoo_best_mfu", "genzoo MFU"),
                ("params", "params genzoo vs peer"),
            ],
        )
    )
    for n in notes:
        print(f"- {n}")
    result = {
        "env": env,
        "args": vars(args),
        "rows": rows,
        "summary": summary,
        "notes": notes,
    }
    if args.out:
        write_json(args.out, result)
    if record is not None:
        result["json"] = str(record.finish(comparisons(rows), summary=summary, notes=notes))
        print(f"Wrote {result['json']}")
    return result


if __name__ == "__main__":
    main()
