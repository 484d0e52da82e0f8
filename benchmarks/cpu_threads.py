"""Training steps per second of each family's default configuration at 1..N CPU threads, on a
quiet machine and beside one competing process: the measurements behind genzoo's default thread
count (``genzoo.core.seeding.default_threads``).

    python benchmarks/cpu_threads.py [--models ddpm,vae] [--steps 30] [--out runs/cpu-threads]

Each model is built with its default configuration on its default small data (``digits``; the
2-D models on ``toy2d:8gaussians``), then trained with AdamW for ``--steps`` steps (after
``--warmup`` steps) at each thread count, first alone and then with one other process spinning a
core (a pure-Python loop, as another job on a shared machine). The table gives steps/s, the best
count per condition, and how far the default policy's count (``default_threads()``, read while
the competitor runs) is from it. Run it with ``GENZOO_THREADS`` unset.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import torch

from genzoo.core.threads import default_threads
from genzoo.data import load_dataset
from genzoo.models import MODELS

DEFAULT_MODELS = {
    "ppca": "digits",
    "vae": "digits",
    "ddpm": "digits",
    "edm": "digits",
    "flow-matching": "digits",
    "realnvp": "digits",
    "pixelcnn": "digits",
    "dcgan": "digits",
    "gpt": "digits",
    "ddpm@toy": "toy2d:8gaussians",
}


def _spin(stop: mp.Event) -> None:  # type: ignore[valid-type]
    x = 0
    while not stop.is_set():  # type: ignore[attr-defined]
        for _ in range(100_000):
            x += 1


def _build(name: str, data: str) -> tuple[torch.nn.Module, object, int]:
    cls = MODELS.get(name)
    train = load_dataset(data, "train")
    model = cls(cls.config_class(), train.info)
    batch_size = int(cls.default_train.get("batch_size", 128))
    return model, train, batch_size


def steps_per_second(name: str, data: str, threads: int, steps: int, warmup: int) -> float:
    """Optimizer steps per second of ``name`` on ``data`` at ``threads`` intra-op threads."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, train, bs = _build(name, data)
    groups = model.param_groups()
    opts = {g: torch.optim.AdamW(ps, lr=1e-4) for g, ps in groups.items() if ps}
    g = torch.Generator().manual_seed(0)
    n = len(train)  # type: ignore[arg-type]

    def step() -> None:
        for group, opt in opts.items():
            idx = torch.randint(0, n, (bs,), generator=g)
            batch = train.get(idx, dequantize=model.dequantize, generator=g)  # type: ignore[attr-defined]
            opt.zero_grad(set_to_none=True)
            model.loss(batch, group).loss.backward()
            opt.step()

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(DEFAULT_MODELS))
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--max-threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--out", default="runs/cpu-threads")
    args = p.parse_args()
    names = [m for m in args.models.split(",") if m]
    counts = list(range(1, args.max_threads + 1))
    rows = []
    for key in names:
        name, data = key.split("@")[0], DEFAULT_MODELS.get(key, "digits")
        model, _, _ = _build(name, data)  # (B, ...) batches come from the dataset itself
        params = sum(p.numel() for p in model.parameters())
        if params == 0:  # closed-form fits (PCA, PPCA) take no gradient steps
            continue
        row: dict[str, object] = {"model": key, "data": data, "params": params}
        for cond in ("quiet", "loaded"):
            stop = mp.Event()
            proc = mp.Process(target=_spin, args=(stop,)) if cond == "loaded" else None
            if proc is not None:
                proc.start()
                time.sleep(0.5)  # the competitor is running before the policy looks
            chosen = min(default_threads(), args.max_threads)  # what the Trainer would choose
            try:
                rates = {
                    t: steps_per_second(name, data, t, args.steps, args.warmup) for t in counts
                }
            finally:
                if proc is not None:
                    stop.set()
                    proc.join()
            best = max(rates, key=rates.__getitem__)
            row[cond] = {
                "steps_per_s": rates,
                "best": best,
                "default": chosen,
                "default_vs_best": rates[chosen] / rates[best],
            }
            print(f"{key:<14} {cond:<6} " + "  ".join(f"{t}: {r:7.2f}" for t, r in rates.items()))
        rows.append(row)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    head = "| model | params | " + " | ".join(
        f"{c} {t} thr" for c in ("quiet", "loaded") for t in counts
    )
    print()
    print(head + " | default quiet / loaded | quiet: default/best | loaded: default/best |")
    print("|---|---:|" + "---:|" * (2 * len(counts)) + "---:|---:|---:|")
    for r in rows:
        cells = [f"{r[c]['steps_per_s'][t]:.2f}" for c in ("quiet", "loaded") for t in counts]  # type: ignore[index]
        q, ld = r["quiet"], r["loaded"]
        print(
            f"| {r['model']} | {r['params']:,} | "
            + " | ".join(cells)
            + f" | {q['default']} / {ld['default']} | {q['default_vs_best']:.2f}"  # type: ignore[index]
            + f" | {ld['default_vs_best']:.2f} |"  # type: ignore[index]
        )


if __name__ == "__main__":
    main()
