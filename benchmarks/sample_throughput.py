"""Sampling throughput: genzoo's samplers against diffusers' DDIM (and DDPM) loops, same U-Net.

The network is the DDPM CIFAR-10 U-Net of ``train_throughput.py`` (35.7M parameters, 32x32x3) on
both sides: genzoo's ``ddpm`` model and diffusers' ``UNet2DModel`` in the ``ddpm-cifar10-32``
configuration, with freshly initialised weights (throughput does not depend on them). A batch of
``--batch`` images (default 256) is drawn in ``--steps`` steps (default 50):

- genzoo: ``model.sample(B, sampler=..., steps=...)`` with DDIM, Heun (2 steps - 1 network
  evaluations) and DPM-Solver++(2M), each eager and with the speed-ups asked for:
  ``--channels-last``, ``--compile`` (``torch.compile`` of the denoiser), ``--cuda-graph``
  (every denoiser call replayed from a recorded CUDA graph; off CUDA it runs without one);
- diffusers: the loop of its ``DDIMPipeline`` (``UNet2DModel`` + ``DDIMScheduler.step``, linear
  betas, 1,000 training steps), eager, channels_last, compiled, and compiled + channels_last;
- with ``--ddpm``: also the 1,000-step ancestral sampler of both (``DDPMPipeline``'s loop).

Everything runs under bf16 autocast on CUDA (fp32 on the CPU). Each row is the median of
``--repeats`` timed calls after one untimed call (compilation, graph capture, cuDNN autotuning);
NFE is counted with forward hooks on the network during the untimed call of the eager variant.
Compiled and graph variants of genzoo are checked against the eager samples (same seed).

    python benchmarks/sample_throughput.py --batch 256 --compile --channels-last --cuda-graph
    python benchmarks/sample_throughput.py --batch 256 --samplers ddim \
        --variants channels-last+compile+cuda-graph,channels-last+compile   # only these (+ eager)
    python benchmarks/sample_throughput.py --tiny          # CPU-sized smoke run

``--variants`` runs only the named variants (``+``-joined ``channels-last``, ``compile``,
``cuda-graph``; each side runs those it has) besides eager, which always runs (it counts the NFE
and is the reference of the graph and compiled samples). ``--json DIR`` writes the run's record
(device, date, torch, git commit, command, rows, and each genzoo row beside diffusers' DDIM rows
of the same run) to ``DIR/sample_throughput-<time>-<device>.json``, rewritten after every row; by
default (``auto``) runs on CUDA write it to ``benchmarks/results/``, CPU runs do not.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

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
    optional,
    resolve_device,
    write_json,
)
from train_throughput import _genzoo_model, unet_workload

from genzoo.metrics import count_nfe, measure_throughput

GENZOO_SAMPLERS = {"ddim": 1.0, "heun": 0.5, "dpmpp-2m": 1.0}  # steps per requested step
FEATURES = ("channels-last", "compile", "cuda-graph")


def _variants(args: argparse.Namespace, features: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Eager, each asked-for speed-up alone, and all of them together; with ``--variants``,
    eager and those of the named variants made of ``features`` only."""
    if args.variants:
        chosen: list[tuple[str, ...]] = [()]
        for name in args.variants.split(","):
            parts = set(name.split("+")) - {"eager"}
            v = tuple(f for f in features if f in parts)
            if parts <= set(features) and v not in chosen:
                chosen.append(v)
        return chosen
    asked = [f for f in features if getattr(args, f.replace("-", "_").replace("+", "_"))]
    out: list[tuple[str, ...]] = [()]
    out += [(f,) for f in asked]
    if len(asked) > 1:
        out.append(tuple(asked))
    return out


def _progress(row: dict[str, Any]) -> None:
    """One line per finished measurement, so a run cut short still reports what it measured."""
    print(
        f"{row['impl']} {row['sampler']} {row['steps']} ({row['nfe']} NFE) {row['variant']}: "
        f"{row['img_s']:,.1f} img/s",
        flush=True,
    )


def _label(v: tuple[str, ...]) -> str:
    return "+".join(v) if v else "eager"


def genzoo_rows(
    args: argparse.Namespace,
    device: torch.device,
    on_row: Callable[[dict[str, Any]], None] = _progress,
) -> list[dict[str, Any]]:
    w = unet_workload(args.batch, args.tiny)
    dtype = amp_dtype(device, args.precision)
    model = _genzoo_model(w).to(device).eval()
    params = n_params(model)
    plan = [
        (name, max(1, round(args.steps * f)))
        for name, f in GENZOO_SAMPLERS.items()
        if not args.samplers or name in args.samplers.split(",")
    ]
    if args.ddpm:
        plan.append(("ancestral", args.ddpm_steps))
    rows = []
    for sampler, steps in plan:
        reference = None
        nfe = 0
        for v in _variants(args, FEATURES):
            cl = "channels-last" in v
            model.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
            opts = {"compile": "compile" in v, "cuda_graph": "cuda-graph" in v}

            def call(
                model: nn.Module = model,
                opts: dict[str, bool] = opts,
                sampler: str = sampler,
                steps: int = steps,
            ) -> torch.Tensor:
                g = torch.Generator(device).manual_seed(0)
                with autocast(device, dtype):
                    return model.sample(
                        args.batch, sampler=sampler, steps=steps, generator=g, **opts
                    )

            if not v:  # eager: count the network calls during the untimed call
                with count_nfe(model.net) as c:
                    reference = call()
                nfe = c.nfe
            else:
                out = call()  # compile / capture outside the timing
            t = measure_throughput(call, args.batch, device=device, warmup=0, repeats=args.repeats)
            diff = 0.0 if not v else float((out.float() - reference.float()).abs().max())
            rows.append(
                {
                    "impl": "genzoo",
                    "sampler": sampler,
                    "steps": steps,
                    "nfe": nfe,
                    "variant": _label(v),
                    "img_s": t["samples_per_s"],
                    "seconds": t["seconds_per_call"],
                    "max_diff_vs_eager": diff,
                    "params": params,
                }
            )
            on_row(rows[-1])
    return rows


def diffusers_rows(
    args: argparse.Namespace,
    device: torch.device,
    on_row: Callable[[dict[str, Any]], None] = _progress,
) -> list[dict[str, Any]]:
    diffusers = optional("diffusers")
    if diffusers is None:
        return []
    w = unet_workload(args.batch, args.tiny)
    dtype = amp_dtype(device, args.precision)
    torch.manual_seed(0)
    unet = w.peers[0].build().to(device).eval()
    params = n_params(unet)
    shape = (args.batch, *w.info.shape)
    plan: list[tuple[str, Any, int]] = [
        (
            "ddim",
            diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear"),
            args.steps,
        )
    ]
    if args.ddpm:
        sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
        plan.append(("ddpm", sched, args.ddpm_steps))
    rows = []
    for name, scheduler, steps in plan:
        nfe = 0
        for v in _variants(args, ("channels-last", "compile")):
            cl = "channels-last" in v
            unet.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
            net = torch.compile(unet) if "compile" in v else unet

            def call(net: nn.Module = net, scheduler: Any = scheduler, steps: int = steps) -> Any:
                # DDIMPipeline / DDPMPipeline.__call__, without the conversion to PIL
                g = torch.Generator(device).manual_seed(0)
                x = torch.randn(shape, generator=g, device=device)
                scheduler.set_timesteps(steps)
                with torch.no_grad(), autocast(device, dtype):
                    for t in scheduler.timesteps:
                        eps = net(x, t).sample
                        x = scheduler.step(eps, t, x, generator=g).prev_sample
                return x

            if not v:
                with count_nfe(unet) as c:
                    call()
                nfe = c.nfe
            else:
                call()
            t = measure_throughput(call, args.batch, device=device, warmup=0, repeats=args.repeats)
            rows.append(
                {
                    "impl": "diffusers",
                    "sampler": name,
                    "steps": steps,
                    "nfe": nfe,
                    "variant": _label(v),
                    "img_s": t["samples_per_s"],
                    "seconds": t["seconds_per_call"],
                    "params": params,
                }
            )
            on_row(rows[-1])
    return rows


def summarize(rows: list[dict[str, Any]], max_nfe: int) -> list[dict[str, Any]]:
    """genzoo's best at <= ``max_nfe`` (and its DDIM alone) against diffusers' DDIM, eager and
    best; ratios of images per second."""
    peer = [r for r in rows if r["impl"] == "diffusers" and r["sampler"] == "ddim"]
    if not peer:
        return []
    p_eager = next(r for r in peer if r["variant"] == "eager")
    p_best = max(peer, key=lambda r: r["img_s"])
    out = []
    for label, pick in (
        ("genzoo ddim", lambda r: r["sampler"] == "ddim"),
        (f"genzoo any sampler, NFE <= {max_nfe}", lambda r: r["nfe"] <= max_nfe),
    ):
        mine = [r for r in rows if r["impl"] == "genzoo" and pick(r)]
        if not mine:
            continue
        best = max(mine, key=lambda r: r["img_s"])
        out.append(
            {
                "what": label,
                "genzoo_best": f"{best['sampler']} {best['steps']} ({best['nfe']} NFE), "
                f"{best['variant']}: {best['img_s']:,.1f} img/s",
                "peer_eager": p_eager["img_s"],
                "peer_best": f"{p_best['variant']}: {p_best['img_s']:,.1f} img/s",
                "ratio_vs_eager": best["img_s"] / p_eager["img_s"],
                "ratio_vs_best": best["img_s"] / p_best["img_s"],
            }
        )
    return out


def comparisons(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each genzoo row beside diffusers' DDIM rows of the same run: the same variant (when
    diffusers ran it), its eager row and its best row; images per second, genzoo / diffusers."""
    peer = [r for r in rows if r["impl"] == "diffusers" and r["sampler"] == "ddim"]
    if not peer:
        return []
    out = []
    for r in rows:
        if r["impl"] != "genzoo":
            continue
        picks = {
            "same variant": next((p for p in peer if p["variant"] == r["variant"]), None),
            "peer eager": next((p for p in peer if p["variant"] == "eager"), None),
            "peer best": max(peer, key=lambda p: p["img_s"]),
        }
        used: list[dict[str, Any]] = []
        for against, p in picks.items():
            if p is None or any(p is u for u in used):
                continue
            used.append(p)
            out.append(
                comparison(
                    "sampling throughput",
                    "img/s",
                    r["img_s"],
                    "diffusers",
                    p["img_s"],
                    sampler=f"{r['sampler']} {r['steps']}",
                    nfe=r["nfe"],
                    variant=r["variant"],
                    against=against,
                    peer_sampler=f"ddim {p['steps']}",
                    peer_nfe=p["nfe"],
                    peer_variant=p["variant"],
                )
            )
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cuda, cpu")
    p.add_argument("--batch", type=int, default=0, help="images per call (0: 256; tiny: 2)")
    p.add_argument("--steps", type=int, default=0, help="DDIM steps (0: 50; tiny: 4)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls (median reported)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--compile", action="store_true", help="also torch.compile variants")
    p.add_argument("--channels-last", action="store_true", help="also channels_last variants")
    p.add_argument("--cuda-graph", action="store_true", help="genzoo: also CUDA-graph replay")
    p.add_argument("--samplers", default="", help="genzoo's samplers to run (default all)")
    p.add_argument("--ddpm", action="store_true", help="also the ancestral (DDPM) samplers")
    p.add_argument("--ddpm-steps", type=int, default=0, help="their steps (0: 1000; tiny: 8)")
    p.add_argument("--tiny", action="store_true", help="CPU-sized U-Net (smoke test)")
    p.add_argument(
        "--variants",
        default="",
        help="only these besides eager: '+'-joined channels-last, compile, cuda-graph "
        "(e.g. channels-last+compile+cuda-graph,channels-last+compile); default: eager, each of "
        "--channels-last / --compile / --cuda-graph alone and all together",
    )
    p.add_argument("--out", default=None, help="write the rows as JSON to this file")
    p.add_argument(
        "--json",
        default="auto",
        help="folder for the run's JSON record (auto: benchmarks/results on CUDA, none on CPU; "
        "none: no record)",
    )
    args = p.parse_args(argv)
    for name in filter(None, args.variants.split(",")):
        bad = sorted(set(name.split("+")) - {"eager", *FEATURES})
        if bad:
            p.error(
                f"unknown variant part {bad[0]!r} in {name!r}; use eager or a '+'-joined "
                f"combination of {', '.join(FEATURES)}"
            )
    args.batch = args.batch or (2 if args.tiny else 256)
    args.steps = args.steps or (4 if args.tiny else 50)
    args.ddpm_steps = args.ddpm_steps or (8 if args.tiny else 1000)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    where = json_dir(args.json, device)
    record = JsonRows(where, "sample_throughput", device, argv) if where else None

    def on_row(row: dict[str, Any]) -> None:
        _progress(row)
        if record is not None:
            record.add(row)

    rows = genzoo_rows(args, device, on_row)
    free(device)
    peer_rows = diffusers_rows(args, device, on_row)
    notes = [] if peer_rows else ["diffusers is not installed: peer rows skipped"]
    rows += peer_rows
    for r in rows:
        p_best = max((p["img_s"] for p in peer_rows if p["sampler"] == "ddim"), default=None)
        r["vs_diffusers_ddim_best"] = r["img_s"] / p_best if p_best else None
    summary = summarize(rows, max_nfe=args.steps)
    env = environment(device)
    print(f"Device: {env.get('gpu', env['device'])}; torch {env['torch']}; {env['date']}")
    if device.type != "cuda":
        print("(CPU run: a smoke test of the code, not a speed claim)")
    print(f"U-Net parameters: genzoo {rows[0]['params']:,}", end="")
    print(f", diffusers {peer_rows[0]['params']:,}" if peer_rows else "")
    cols = [
        ("impl", "impl"),
        ("sampler", "sampler"),
        ("steps", "steps"),
        ("nfe", "NFE"),
        ("variant", "variant"),
        ("img_s", "img/s"),
        ("seconds", "s per batch"),
        ("max_diff_vs_eager", "max |x - x_eager|"),
        ("vs_diffusers_ddim_best", "/ diffusers DDIM best"),
    ]
    print(markdown_table(rows, cols))
    if summary:
        print()
        cols = [
            ("what", "genzoo"),
            ("genzoo_best", "genzoo best"),
            ("peer_eager", "diffusers DDIM eager img/s"),
            ("peer_best", "diffusers DDIM best"),
            ("ratio_vs_eager", "genzoo / diffusers eager"),
            ("ratio_vs_best", "genzoo / diffusers best"),
        ]
        print(markdown_table(summary, cols))
    for n in notes:
        print(f"- {n}")
    result = {"env": env, "args": vars(args), "rows": rows, "summary": summary, "notes": notes}
    if args.out:
        write_json(args.out, result)
    if record is not None:
        record.doc["rows"] = rows  # with their ratios to diffusers' best
        result["json"] = str(record.finish(comparisons(rows), summary=summary, notes=notes))
        print(f"Wrote {result['json']}")
    return result


if __name__ == "__main__":
    main()
