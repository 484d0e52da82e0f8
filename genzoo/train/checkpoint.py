"""Checkpoints: safetensors (weights, EMA, optimizer state, RNG states) plus JSON, never pickle.

A checkpoint is a folder ``checkpoints/step_00001000/`` holding ``model.safetensors``,
``ema.safetensors`` (if EMA is on), ``trainer.safetensors`` (optimizer tensors and RNG states) and
``state.json`` (step, elapsed time, optimizer hyper-parameters). It is written into a hidden
temporary folder and renamed into place in one step, then ``checkpoints/latest`` is atomically
pointed at it: a crash at any moment leaves the previous checkpoint whole and loadable.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from genzoo.core.errors import CheckpointError, StorageError
from genzoo.core.io import atomic_write_text, save_tensors, write_json
from genzoo.core.runs import STATE_FILE, find_checkpoint, read_checkpoint

__all__ = ["STATE_FILE", "find_checkpoint", "read_checkpoint", "write_checkpoint"]


def optimizer_to_flat(
    opt: torch.optim.Optimizer, prefix: str
) -> tuple[dict[str, torch.Tensor], Any]:
    """Split an optimizer state dict into tensors (for safetensors) and JSON-able values."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}.state.{idx}.{k}"] = v
            else:
                scalars.setdefault(str(idx), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: Any, prefix: str
) -> None:
    state: dict[int, dict[str, Any]] = {}
    head = f"{prefix}.state."
    for key, v in tensors.items():
        if key.startswith(head):
            idx, k = key[len(head) :].split(".", 1)
            state.setdefault(int(idx), {})[k] = v
    for idx, st in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(st)
    try:
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    except (ValueError, KeyError) as e:
        raise CheckpointError(
            f"Optimizer state in the checkpoint does not fit the model ({e})."
        ) from None


def rng_state() -> dict[str, torch.Tensor]:
    out = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"rng.cuda.{i}"] = s
    return out


def set_rng_state(tensors: dict[str, torch.Tensor]) -> None:
    if "rng.cpu" in tensors:
        torch.set_rng_state(tensors["rng.cpu"].to(torch.uint8))
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.to(torch.uint8) for s in states])


def _write_failed(ckpt_root: Path, name: str, err: OSError) -> StorageError:
    try:
        prev = f"the previous checkpoint {find_checkpoint(ckpt_root.parent).name!r} is intact"
    except CheckpointError:
        prev = "there is no earlier checkpoint"
    hint = (
        "free some disk space"
        if err.errno in (errno.ENOSPC, errno.EDQUOT)
        else "make the run directory writable"
    )
    return StorageError(
        f"Could not write checkpoint {name!r} into {str(ckpt_root)!r} "
        f"({err.strerror or err}); {prev}; {hint}, then continue with "
        f"--resume {ckpt_root.parent}."
    )


def write_checkpoint(
    ckpt_root: Path,
    step: int,
    files: dict[str, dict[str, torch.Tensor]],
    state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write one checkpoint folder atomically and point ``latest`` at it; prune old ones.

    A failed write (disk full, read-only folder) raises :class:`StorageError` and leaves the
    previous checkpoint, and ``latest``, as they were.
    """
    name = f"step_{step:09d}"
    final = ckpt_root / name
    tmp = ckpt_root / f".tmp-{name}-{os.getpid()}"
    try:
        ckpt_root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        for fname, tensors in files.items():
            save_tensors(tmp / f"{fname}.safetensors", tensors)
        write_json(tmp / STATE_FILE, state)
        stale = None
        if final.exists():  # the same step saved again: swap it out in two quick renames
            stale = ckpt_root / f".tmp-old-{name}-{os.getpid()}"
            shutil.rmtree(stale, ignore_errors=True)
            os.replace(final, stale)
        os.replace(tmp, final)
        atomic_write_text(ckpt_root / "latest", name + "\n")
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_failed(ckpt_root, name, e) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep > 0:
        old = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir() and p != final)
        for p in old[: max(len(old) - (keep - 1), 0)]:
            shutil.rmtree(p, ignore_errors=True)
    return final
