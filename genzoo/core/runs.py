"""Reading a run directory with safe formats only: ``config.yaml`` through the safe YAML loader,
checkpoint folders of safetensors + JSON (a pickle is refused without being read past its first
bytes). The trainer writes these; models (e.g. latent diffusion over an autoencoder run) and the
command line read them.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml

from genzoo.core.errors import CheckpointError
from genzoo.core.io import load_tensors, read_json, refuse_pickle

CONFIG_FILE = "config.yaml"
STATE_FILE = "state.json"
METRICS_FILE = "metrics.jsonl"


def read_run_config(run: str | Path) -> dict[str, Any]:
    """The run's ``config.yaml`` (safe loader only)."""
    p = Path(run)
    if p.is_file():
        refuse_pickle(p)
        raise CheckpointError(f"{str(p)!r} is a file; pass the run directory (runs/<name>).")
    if not p.exists():
        raise CheckpointError(f"Run directory {str(p)!r} does not exist.")
    cfg_path = p / CONFIG_FILE
    if not cfg_path.is_file():
        raise CheckpointError(f"{str(p)!r} is not a genzoo run (no {CONFIG_FILE}).")
    try:
        data = yaml.safe_load(cfg_path.read_text())
    except yaml.YAMLError as e:
        raise CheckpointError(f"{str(cfg_path)!r} is not valid YAML ({yaml_problem(e)}).") from None
    if not isinstance(data, dict) or not {"model", "data_info", "model_config"} <= set(data):
        raise CheckpointError(f"{str(cfg_path)!r} is not a genzoo run configuration.")
    return data


def yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (a python/object tag, for example)."""
    problem = getattr(err, "problem", None) or (str(err).splitlines() or ["unreadable"])[0]
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())


def _complete(path: Path) -> bool:
    return (path / STATE_FILE).is_file() and (path / "model.safetensors").is_file()


def find_checkpoint(run_or_ckpt: str | Path) -> Path:
    """The checkpoint folder of a run (``latest``, else the newest complete one), or the folder
    itself if given one. A pickle file is refused without being read past its first bytes.
    """
    p = Path(run_or_ckpt)
    if p.is_file():
        refuse_pickle(p)
        if p.suffix == ".safetensors":
            return p.parent
        raise CheckpointError(
            f"{str(p)!r} is not a genzoo run or checkpoint; pass a run directory (runs/<name>)."
        )
    if not p.exists():
        raise CheckpointError(f"Run or checkpoint {str(p)!r} does not exist.")
    if _complete(p):
        return p
    root = p / "checkpoints"
    if not root.is_dir():
        raise CheckpointError(f"{str(p)!r} holds no checkpoints (no {str(root)!r} folder).")
    latest = root / "latest"
    if latest.is_file():
        cand = root / latest.read_text().strip()
        if cand.parent == root and _complete(cand):
            return cand
    done = sorted(c for c in root.glob("step_*") if c.is_dir() and _complete(c))
    if not done:
        raise CheckpointError(f"Run {str(p)!r} has no complete checkpoint yet.")
    return done[-1]


def read_checkpoint(ckpt: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """All safetensors files of a checkpoint folder (by stem) and its JSON state."""
    files = {f.stem: load_tensors(f) for f in sorted(ckpt.glob("*.safetensors"))}
    for bad in ckpt.iterdir():
        if bad.suffix.lower() in (".pt", ".pth", ".pkl", ".pickle", ".ckpt"):
            refuse_pickle(bad)
    state = read_json(ckpt / STATE_FILE)
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"Checkpoint {str(ckpt)!r} has a malformed {STATE_FILE}.")
    return files, state


def read_metrics(run: str | Path) -> list[dict[str, Any]]:
    """The rows of a run's ``metrics.jsonl``. A line cut short by a crash (or otherwise not a JSON
    object) is skipped with a warning naming it; the other rows are returned."""
    path = Path(run) / METRICS_FILE
    if not path.is_file():
        raise CheckpointError(f"Run {str(run)!r} has no {METRICS_FILE} yet.")
    rows: list[dict[str, Any]] = []
    for n, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            row = None
        if not isinstance(row, dict):
            warnings.warn(
                f"Skipping line {n} of {str(path)!r}, which is not a complete JSON row "
                f"({line[:60]!r}; a crash cut it short?).",
                stacklevel=2,
            )
            continue
        rows.append(row)
    return rows
