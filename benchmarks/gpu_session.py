"""Issue 23's measurements for one short GPU lease: the parts in priority order, each under its own
timeout, every figure written as a JSON record and a log under ``--out`` (the device's ``$OUT``).

A lease is 15 minutes of device time in all and 10 minutes per command, the machine's start
included, so each mode is one command whose parts' timeouts add up to less than 9 minutes; a part
that runs out of time is stopped and the next one starts, and the rows it measured before are
kept (the benchmarks rewrite their JSON record after every row and print a line per row).

``speed`` (timeouts 535 s in all; issue 8's re-measurement and the U-Net step work):

0. ``graph-check``: the CUDA-graph training step against the eager step on the GPU
   (``tests/train/test_graphed_step.py -k cuda``: replays follow the eager steps to fp32 rounding,
   compiled and not; the diffusion loss draws new noise at every replay), so that the graph
   rows below are known to train the same model;
1. ``gpt2``: GPT-2 124M, block 1024, batch 12, genzoo against nanoGPT, both compiled (the two
   read-out fixes of issue 8, never re-measured);
2. ``unet128``: the DDPM CIFAR-10 U-Net step at batch 128: genzoo eager, whole-step CUDA graph,
   compiled + channels_last + graph, compiled + channels_last; diffusers eager and compiled +
   channels_last (the goals: 2x diffusers' eager, 1.5x its best);
3. ``unet512``: genzoo's U-Net step at batch 512, compiled + channels_last + graph (the 25% MFU
   goal);
4. ``sample``: DDIM-50 at batch 256: genzoo compiled + channels_last + CUDA graph (the fix of
   issue 8, never re-measured) and diffusers compiled + channels_last, each with its eager row;
5. ``unet128-peer-compile``: diffusers' U-Net step compiled without channels_last (its best in
   issue 8's run), last because the other parts matter more.

``quality`` (one part, 580 s): quality at a 240 s budget on mnist5k, 5,000 samples per sampler:
diffusers' example (DDIM 50) against genzoo's recipe (Heun 18 = 35 NFE, DDIM 50), FD-against-budget
plot and grids. (The peer's DDPM-1000 row at 5,000 samples takes about 9 minutes on an H100 by
itself and the 900 s budget 30 minutes: each needs a lease of its own.)

``--smoke`` runs every part of the mode at CPU sizes (``--tiny``, ``--device cpu``, a step or two)
with ``TORCH_COMPILE_DISABLE=1`` (compiled variants run eagerly: compiling on a shared CPU takes
many minutes), to check the commands before device time is spent on them; ``--dry-run`` prints the
commands. Set ``GENZOO_GIT_COMMIT`` where the working tree has no ``.git`` (the device machine):
the records name that commit.

    python benchmarks/gpu_session.py speed --out "$OUT" --nanogpt .nanogpt/model.py --wheels .whl
    python benchmarks/gpu_session.py quality --out "$OUT" --wheels .whl
    python benchmarks/gpu_session.py speed --smoke --out /tmp/smoke --nanogpt .nanogpt/model.py

Writes ``OUT/session.log`` (everything printed), ``OUT/session.json`` (each part's command, exit
status, seconds and whether it timed out) and ``OUT/results/*.json`` (the benchmarks' records),
and for ``quality`` ``OUT/qab/`` (the plot and the two grids): at most 8 files, as the device tool
returns.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SPEED_LIMIT_S = 540  # the parts of one mode together: under 9 minutes
QUALITY_LIMIT_S = 590


@dataclass(frozen=True)
class Part:
    name: str
    timeout_s: int
    script: str  # a benchmark in benchmarks/
    args: tuple[str, ...]  # on the GPU
    smoke: tuple[str, ...] = ()  # appended for --smoke (later flags win in argparse)
    needs: tuple[str, ...] = field(default=())  # "nanogpt": the part needs --nanogpt


def speed_parts(nanogpt: str) -> list[Part]:
    tt = "train_throughput.py"
    tiny_train = ("--tiny", "--device", "cpu", "--steps", "1", "--warmup", "1")
    return [
        Part(
            "graph-check",
            40,
            "pytest",
            (
                "tests/train/test_graphed_step.py",
                "-k",
                "cuda",
                "-n",
                "0",
                "-q",
                "-p",
                "no:cacheprovider",
            ),
        ),
        Part(
            "gpt2",
            100,
            tt,
            (
                *("--configs", "gpt2", "--gpt-batch", "12", "--impls", "genzoo,nanoGPT"),
                *("--variants", "compile", "--nanogpt", nanogpt),
            ),
            (*tiny_train, "--gpt-batch", "2"),
            needs=("nanogpt",),
        ),
        Part(
            "unet128",
            195,
            tt,
            (
                *("--configs", "unet", "--batch", "128", "--impls", "genzoo,diffusers"),
                *("--variants", "eager,graph,compile+channels_last+graph,compile+channels_last"),
            ),
            (*tiny_train, "--batch", "4"),
        ),
        Part(
            "unet512",
            70,
            tt,
            (
                *("--configs", "unet", "--batch", "512", "--impls", "genzoo"),
                *("--variants", "compile+channels_last+graph", "--steps", "10"),
            ),
            (*tiny_train, "--batch", "4"),
        ),
        Part(
            "sample",
            85,
            "sample_throughput.py",
            (
                *("--batch", "256", "--steps", "50", "--samplers", "ddim", "--repeats", "3"),
                *("--variants", "channels-last+compile+cuda-graph,channels-last+compile"),
            ),
            ("--tiny", "--device", "cpu", "--batch", "2", "--steps", "2", "--repeats", "1"),
        ),
        Part(
            "unet128-peer-compile",
            45,
            tt,
            (
                *("--configs", "unet", "--batch", "128", "--impls", "diffusers"),
                *("--variants", "compile"),
            ),
            (*tiny_train, "--batch", "4"),
        ),
    ]


def quality_parts(qab_dir: str) -> list[Part]:
    return [
        Part(
            "quality240",
            580,
            "quality_at_budget.py",
            (
                *("--data", "mnist5k", "--budgets", "240", "--n", "5000", "--sample-batch", "1000"),
                *("--peer-samplers", "ddim:50", "--genzoo-samplers", "heun:18,ddim:50"),
                *("--out", qab_dir),
            ),
            (
                *("--tiny", "--device", "cpu", "--steps", "4", "--n", "32"),
                *("--peer-samplers", "ddim:2", "--genzoo-samplers", "heun:2,ddim:2"),
            ),
        )
    ]


def command(part: Part, json_dir: Path, smoke: bool) -> list[str]:
    if part.script == "pytest":  # a check, not a benchmark: no record
        return [sys.executable, "-m", "pytest", *part.args]
    args = [*part.args, "--json", str(json_dir)]
    if smoke:
        args += part.smoke
    return [sys.executable, str(BENCH / part.script), *args]


def install_wheels(wheels: Path, target: Path, log: TextIO) -> str | None:
    """Install the carried wheels (diffusers and what it needs, mlxtend) into ``target`` for the
    parts' Python path; None when there are none (or diffusers is already importable)."""
    files = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    if not files:
        return None
    cmd = [
        *(sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps"),
        *("--no-compile", "--no-cache-dir", "--upgrade", "--target", str(target)),
        *map(str, files),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True)
    log.write(f"$ pip install {' '.join(f.name for f in files)} -> {out.returncode}\n")
    log.write(out.stdout + out.stderr)
    return str(target) if out.returncode == 0 else None


def _tee(stream: Any, sinks: list[TextIO]) -> None:
    for line in iter(stream.readline, ""):
        for s in sinks:
            s.write(line)
            s.flush()


def run_part(
    part: Part, cmd: list[str], env: dict[str, str], timeout: float, log: TextIO
) -> dict[str, Any]:
    """Run one part under ``timeout`` seconds (its process group is stopped at the limit)."""
    banner = f"\n=== {part.name} (timeout {timeout:.0f} s): {' '.join(cmd[1:])}\n"
    for s in (sys.stdout, log):
        s.write(banner)
        s.flush()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: compile workers stop with it
    )
    reader = threading.Thread(target=_tee, args=(proc.stdout, [sys.stdout, log]), daemon=True)
    reader.start()
    timed_out = False
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
    reader.join(timeout=5)
    secs = time.perf_counter() - t0
    end = f"=== {part.name}: exit {rc}{' (timed out)' * timed_out} after {secs:.0f} s\n"
    for s in (sys.stdout, log):
        s.write(end)
        s.flush()
    return {
        "part": part.name,
        "command": " ".join(["python", f"benchmarks/{part.script}", *cmd[2:]]),
        "timeout_s": timeout,
        "exit": rc,
        "timed_out": timed_out,
        "seconds": round(secs, 1),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", nargs="?", default="speed", choices=["speed", "quality"])
    p.add_argument("--out", default=os.environ.get("OUT", "runs/gpu-session"), help="folder")
    p.add_argument("--nanogpt", default=".nanogpt/model.py", help="a copy of nanoGPT's model.py")
    p.add_argument("--wheels", default="", help="folder of wheels to install first (.whl)")
    p.add_argument("--parts", default="", help="only these parts (comma-separated names)")
    p.add_argument("--smoke", action="store_true", help="every part at CPU sizes")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    return p.parse_args(argv)


def plan(args: argparse.Namespace) -> list[Part]:
    if args.mode == "speed":
        parts = speed_parts(args.nanogpt)
    else:
        parts = quality_parts(str(qab_dir(args.smoke)))
    if args.parts:
        names = args.parts.split(",")
        bad = [n for n in names if n not in {p.name for p in parts}]
        if bad:
            raise SystemExit(
                f"Unknown part {bad[0]!r} of mode {args.mode}; choose from "
                f"{', '.join(p.name for p in parts)}."
            )
        parts = [p for p in parts if p.name in names]
    return parts


def qab_dir(smoke: bool) -> Path:
    """Where quality_at_budget's own output (runs, checkpoints) goes: outside ``--out``, whose
    files all travel back."""
    return Path("/tmp/genzoo-qab-smoke" if smoke else "/tmp/genzoo-qab")


def collect_quality_files(src: Path, dst: Path) -> list[str]:
    """The FD-against-budget plot and the sample grids of ``src`` copied to ``dst`` (3 files at
    most: the device tool returns 8 in all)."""
    files = [f for f in [src / "fd_vs_budget.png", *sorted(src.glob("grid-*.png"))] if f.is_file()]
    dst.mkdir(parents=True, exist_ok=True)
    for f in files[:3]:
        shutil.copy(f, dst / f.name)
    return [f.name for f in files[:3]]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    out = Path(args.out)
    parts = plan(args)
    json_dir = out / "results"
    if args.dry_run:
        for part in parts:
            print(f"[{part.timeout_s:>3} s] {' '.join(command(part, json_dir, args.smoke)[1:])}")
        print(f"total {sum(p.timeout_s for p in parts)} s")
        return {"parts": [p.name for p in parts]}
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    if args.smoke:
        env.update(TORCH_COMPILE_DISABLE="1", GENZOO_THREADS="1", OMP_NUM_THREADS="1")
    summary: dict[str, Any] = {"mode": args.mode, "smoke": args.smoke, "parts": []}
    with open(out / "session.log", "a") as log:
        log.write(f"genzoo gpu_session {args.mode} {time.strftime('%Y-%m-%dT%H:%M:%SZ')}\n")
        if shutil.which("nvidia-smi"):
            smi = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv"],
                capture_output=True,
                text=True,
            )
            log.write(smi.stdout)
            summary["nvidia_smi"] = smi.stdout.strip()
        if args.wheels:
            site = install_wheels(Path(args.wheels), Path("/tmp/genzoo-site"), log)
            if site:
                env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], site])
        for part in parts:
            if "nanogpt" in part.needs and not Path(args.nanogpt).is_file():
                log.write(f"=== {part.name}: skipped, no nanoGPT model.py at {args.nanogpt}\n")
                summary["parts"].append({"part": part.name, "skipped": "no nanoGPT model.py"})
                continue
            cmd = command(part, json_dir, args.smoke)
            timeout = part.timeout_s * (4 if args.smoke else 1)
            summary["parts"].append(run_part(part, cmd, env, timeout, log))
            (out / "session.json").write_text(json.dumps(summary, indent=1) + "\n")
    if args.mode == "quality":  # the plot and the grids travel back
        summary["returned"] = collect_quality_files(qab_dir(args.smoke), out / "qab")
    (out / "session.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


if __name__ == "__main__":
    main()
