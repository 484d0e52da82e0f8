"""Safe file I/O: safetensors for tensors, JSON/YAML for everything else, atomic writes.

genzoo never unpickles a file it is handed. A checkpoint is a safetensors file (tensors only, no
code) plus JSON. Files are written to a temporary name in the same folder, flushed to disk and
renamed over the target, so a crash or a full disk mid-write leaves the previous file intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from genzoo.core.errors import CheckpointError

PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar")
# The first bytes of a pickle (protocol 2+), and of the zip container torch.save writes.
_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05", b"PK\x03\x04")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)``, fsync, then rename ``tmp_path`` over ``path``.

    If ``write`` raises (disk full, killed, ...), the temporary file is removed and ``path`` is
    left exactly as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"File {str(path)!r} does not exist.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"File {str(path)!r} is not valid JSON ({e}).") from None


def refuse_pickle(path: str | Path) -> None:
    """Raise :class:`CheckpointError` if ``path`` looks like a pickle / ``torch.save`` file.

    Only the first bytes are read; nothing is unpickled.
    """
    path = Path(path)
    head = b""
    size = 0
    if path.is_file():
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(9)
    # a safetensors file starts with its JSON header's length (u64, little endian), then "{":
    # a length of 0x0280..0x05ff bytes begins with a pickle protocol marker, so test that first
    n = int.from_bytes(head[:8], "little") if len(head) == 9 else -1
    safetensors = 0 < n <= size - 8 and head[8:9] == b"{"
    pickled = head.startswith(_PICKLE_MAGIC) and not safetensors
    if path.suffix.lower() in PICKLE_SUFFIXES or pickled:
        raise CheckpointError(
            f"Refusing to load {str(path)!r}: it is a pickle/torch.save file, which can run code "
            "when loaded; genzoo reads safetensors only (convert a state dict you trust with "
            "`safetensors.torch.save_file(torch.load(f, weights_only=True), 'model.safetensors')`)."
        )


def save_tensors(
    path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """Atomically write tensors to a safetensors file (contiguous CPU copies)."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda p: save_file(flat, str(p), metadata=metadata))


def load_tensors(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file; pickles and corrupt files raise :class:`CheckpointError`."""
    path = Path(path)
    refuse_pickle(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint file {str(path)!r} does not exist.")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"Checkpoint file {str(path)!r} is corrupt or not a safetensors file ({e})."
        ) from None


def load_state_strict(
    module: torch.nn.Module, tensors: Mapping[str, torch.Tensor], src: str
) -> None:
    """Copy tensors into ``module``; every key, shape and dtype must match the module exactly."""
    own = module.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    if missing:
        raise CheckpointError(f"Checkpoint {src!r} lacks tensor {missing[0]!r} the model needs.")
    if extra:
        raise CheckpointError(
            f"Checkpoint {src!r} has tensor {extra[0]!r} the model does not have."
        )
    for k, v in own.items():
        t = tensors[k]
        if t.shape != v.shape or t.dtype != v.dtype:
            raise CheckpointError(
                f"Checkpoint {src!r}: tensor {k!r} has shape {tuple(t.shape)} and dtype {t.dtype}, "
                f"the model expects {tuple(v.shape)} and {v.dtype}."
            )
    module.load_state_dict(dict(tensors), strict=True)
