"""Helpers shared by the speed and quality benchmarks: devices, precision, FLOP counting, timing,
peer libraries (imported only when present), markdown tables and the JSON record of a run.

The JSON record (:class:`JsonRows`): every measured run writes its rows to
``benchmarks/results/<benchmark>-<UTC time>-<device>.json`` (``--json DIR`` elsewhere; by default
only runs on CUDA write one, CPU runs being smoke runs unless ``--json DIR`` asks): the device, the
date, the torch version, the git commit, the command line, every row, and ``comparisons``: each of
genzoo's figures beside its peer's figure from the same run and their ratio. The file is rewritten
after every row, so a run stopped by a timeout keeps what it measured."""

from __future__ import annotations

import contextlib
import datetime
import importlib
import importlib.util
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/x.py` from a checkout without an install
    sys.path.insert(0, str(ROOT))

H100_BF16_DENSE_TFLOPS = 989.0  # NVIDIA H100 SXM, dense bf16 tensor-core peak


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def amp_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """bf16 autocast on CUDA by default, none (fp32) on the CPU."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    return (
        torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_flops(fn: Callable[[], Any]) -> int:
    """Floating-point operations of ``fn()`` as counted by ``torch.utils.flop_counter`` (matrix
    products, convolutions and attention; 2 per multiply-add)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def time_calls(fn: Callable[[], Any], calls: int, warmup: int, device: torch.device) -> float:
    """Seconds per call of ``fn`` over ``calls`` calls after ``warmup`` untimed ones, between
    device synchronisations (asynchronous GPU work is inside the timing)."""
    for _ in range(warmup):
        fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / calls


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def optional(name: str) -> ModuleType | None:
    """The module ``name`` if installed (the peers are optional: ``pip install genzoo[bench]``)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def load_module_from_path(path: str | Path, name: str) -> ModuleType:
    """Import a Python file by path (nanoGPT's ``model.py``, fetched at benchmark time)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No file {str(path)!r} to import {name} from.")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def environment(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on."""
    env: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    else:
        env["cpu_threads"] = torch.get_num_threads()
    for peer in ("diffusers", "transformers"):
        mod = sys.modules.get(peer)
        if mod is not None:
            env[peer] = getattr(mod, "__version__", "?")
    return env


def fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v.is_integer() and abs(v) < 1e6:  # budgets, step counts
            return f"{int(v):,}"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 1:
            return f"{v:.2f}"
        return f"{v:.3g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A markdown table of ``rows`` with ``columns`` = [(key, header), ...]."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(fmt(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def write_json(path: str | Path, doc: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Limit torch's CPU threads inside the block (``None``: unchanged)."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# --- the JSON record of a measured run --------------------------------------------------------

RESULTS_DIR = ROOT / "benchmarks" / "results"
JSON_SCHEMA = 1


def git_commit() -> str:
    """The checkout's commit (``+dirty`` when files differ from it); ``GENZOO_GIT_COMMIT`` where
    there is no git repository (a copied working tree); else ``"unknown"``."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        if head.returncode == 0:
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=10,
            )
            return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("GENZOO_GIT_COMMIT", "") or "unknown"


def device_name(device: torch.device) -> str:
    """The device in words: the GPU's name, or the CPU with its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    return f"CPU ({cpu}, {torch.get_num_threads()} threads)"


def json_dir(option: str | None, device: torch.device) -> Path | None:
    """Where ``--json`` puts the record: ``auto`` (the default) is :data:`RESULTS_DIR` on CUDA and
    nothing on other devices (smoke runs), ``none`` is nothing, anything else a folder."""
    if option is None or option == "none":
        return None
    if option == "auto":
        return RESULTS_DIR if device.type == "cuda" else None
    return Path(option)


def comparison(
    figure: str,
    unit: str,
    genzoo: float,
    peer: str,
    peer_value: float,
    *,
    higher_is_better: bool = True,
    **where: Any,
) -> dict[str, Any]:
    """One of genzoo's figures beside its peer's from the same run; ``ratio`` is genzoo / peer
    (above 1 is better for throughput, below 1 for a distance)."""
    return {
        **where,
        "figure": figure,
        "unit": unit,
        "genzoo": genzoo,
        "peer": peer,
        "peer_value": peer_value,
        "ratio": genzoo / peer_value if peer_value else None,
        "higher_is_better": higher_is_better,
    }


def _without_json(args: list[str]) -> list[str]:
    """The command line less ``--json DIR``: where the record went is no part of the run (and a
    machine's folder no part of a committed file)."""
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a == "--json":
            skip = True
        elif not a.startswith("--json="):
            out.append(a)
    return out


class JsonRows:
    """The JSON record of one benchmark run under ``directory`` (see the module's docstring).

    ``add(row)`` appends a row and rewrites the file (atomically: a reader never sees half a
    file); ``finish(comparisons, **extra)`` adds the comparisons and anything else.
    """

    def __init__(
        self,
        directory: str | Path,
        benchmark: str,
        device: torch.device,
        argv: Sequence[str] | None = None,
    ) -> None:
        now = datetime.datetime.now(datetime.timezone.utc)
        name = device_name(device)
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or device.type
        args = _without_json(list(sys.argv[1:] if argv is None else argv))
        self.path = Path(directory) / f"{benchmark}-{now:%Y%m%dT%H%M%SZ}-{slug}.json"
        self.doc: dict[str, Any] = {
            "schema": JSON_SCHEMA,
            "benchmark": benchmark,
            "command": shlex.join(["python", f"benchmarks/{benchmark}.py", *args]),
            "device": name,
            "date": now.isoformat(timespec="seconds"),
            "torch": torch.__version__,
            "git_commit": git_commit(),
            "env": environment(device),
            "complete": False,
            "rows": [],
            "comparisons": [],
        }
        self.write()

    def add(self, row: dict[str, Any]) -> None:
        self.doc["rows"].append(row)
        self.write()

    def finish(self, comparisons: Sequence[dict[str, Any]] = (), **extra: Any) -> Path:
        self.doc["comparisons"] = list(comparisons)
        self.doc.update(extra)
        self.doc["complete"] = True
        self.write()
        return self.path

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.doc, indent=1, default=str) + "\n")
        tmp.replace(self.path)


def read_json_rows(path: str | Path) -> dict[str, Any]:
    """A record written by :class:`JsonRows`, checked for the fields every record has."""
    doc = json.loads(Path(path).read_text())
    need = ("schema", "benchmark", "command", "device", "date", "torch", "git_commit", "rows")
    missing = [k for k in need if k not in doc]
    if missing:
        raise ValueError(f"{str(path)!r} is not a benchmark record: it lacks {', '.join(missing)}.")
    return doc
