"""Keeping a run directory whole: one training process at a time, repaired logs, no stale files.

- :class:`RunLock`: an exclusive ``flock`` on ``<run>/.lock`` for as long as a process trains into
  the run. A second process gets a :class:`StorageError` naming the directory and the PID that
  holds it. The kernel drops the lock when its holder dies (even by SIGKILL), so the lock of a
  dead process is simply taken over; the PID left in the file is reported in a warning.
- :func:`repair_metrics`: after a crash ``metrics.jsonl`` may end in a half-written line, and may
  hold rows for steps after the checkpoint the run continues from (they will be trained again).
  Both are removed before the resumed run appends to it (event rows are kept).
- :func:`clean_temp_files`: temporary files and checkpoint folders that a killed process left
  behind (``.*.tmp``, ``checkpoints/.tmp-*``); only called while holding the lock.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
import warnings
from pathlib import Path
from typing import Any

from genzoo.core.errors import StorageError
from genzoo.core.io import atomic_write_text
from genzoo.core.runs import METRICS_FILE

try:  # POSIX; elsewhere the lock falls back to a PID check
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"

_held: dict[str, list[Any]] = {}  # resolved run dir -> [fd, count, thread id]
_held_guard = threading.Lock()


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").split()
        return int(text[0]) if text else None
    except (OSError, ValueError):
        return None


def storage_error(what: str, path: str | Path, err: OSError) -> StorageError:
    """A one-sentence :class:`StorageError` for an ``OSError`` while writing ``path``."""
    reason = err.strerror or str(err)
    hint = {
        errno.ENOSPC: "free some disk space",
        errno.EDQUOT: "free some disk space",
        errno.EROFS: "use a writable location (--out) or remount it read-write",
        errno.EACCES: "fix its permissions or use another location (--out)",
        errno.EPERM: "fix its permissions or use another location (--out)",
    }.get(err.errno or 0, "fix the problem")
    return StorageError(f"Could not write {what} {str(path)!r} ({reason}); {hint}.")


class RunLock:
    """Exclusive lock on a run directory (re-entrant within one thread of one process)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.key = str(self.run_dir.resolve())

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        with _held_guard:
            held = _held.get(self.key)
            if held is not None:
                if held[2] != threading.get_ident():
                    raise StorageError(
                        f"Run directory {str(self.run_dir)!r} is in use by another thread of this "
                        f"process (PID {os.getpid()}); train into another directory."
                    )
                held[1] += 1
                return
            fd = self._open_and_lock()
            _held[self.key] = [fd, 1, threading.get_ident()]

    def _open_and_lock(self) -> int:
        path = self.run_dir / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise storage_error("to run directory", self.run_dir, e) from None
        try:
            previous = _read_pid(fd)
            locked = False
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    locked = True
                except BlockingIOError:
                    self._in_use(previous)
                except OSError:  # no flock on this file system: PID check only
                    pass
            if not locked and previous not in (None, os.getpid()) and _pid_alive(previous):
                self._in_use(previous)
            if previous not in (None, os.getpid()):
                warnings.warn(
                    f"Run directory {str(self.run_dir)!r} was locked by PID {previous}, which is "
                    "no longer running (it crashed or was killed); taking the lock over.",
                    stacklevel=4,
                )
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as e:
            os.close(fd)
            raise storage_error("to run directory", self.run_dir, e) from None
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _in_use(self, pid: int | None) -> None:
        who = f"PID {pid}" if pid is not None else "another process"
        raise StorageError(
            f"Run directory {str(self.run_dir)!r} is in use by another training process "
            f"({who}); wait for it to finish or stop it, or train into another directory."
        )

    def release(self) -> None:
        with _held_guard:
            held = _held.get(self.key)
            if held is None:
                return
            held[1] -= 1
            if held[1] > 0:
                return
            del _held[self.key]
            fd = held[0]
        try:
            os.ftruncate(fd, 0)  # a clean exit leaves no PID behind
        except OSError:
            pass
        finally:
            os.close(fd)  # closing drops the flock


def clean_temp_files(run_dir: str | Path) -> None:
    """Remove temporary files a killed process left in the run (call only under the lock)."""
    run_dir = Path(run_dir)
    for folder in (run_dir, run_dir / "checkpoints"):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file():
                p.unlink(missing_ok=True)
            elif p.name.startswith(".tmp-") and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)


def repair_metrics(run_dir: str | Path, up_to_step: int | None = None) -> int:
    """Drop a truncated last line of ``metrics.jsonl`` (with a warning), and rows for steps after
    ``up_to_step`` (rows with an ``event`` key are kept). Returns the number of rows dropped."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return 0
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    keep: list[bytes] = []
    dropped = 0
    for line in [*lines, tail]:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            ok = isinstance(row, dict)
        except (ValueError, UnicodeDecodeError):
            ok = False
        if not ok:  # cut short by a crash (or otherwise damaged)
            warnings.warn(
                f"{str(path)!r}: dropped a truncated line {line[:60]!r} (left by a crash).",
                stacklevel=2,
            )
            dropped += 1
            continue
        if up_to_step is not None and "event" not in row and row.get("step", 0) > up_to_step:
            dropped += 1
            continue
        keep.append(line)
    if dropped or tail:  # (a complete last row may still lack its newline)
        text = b"".join(line + b"\n" for line in keep).decode("utf-8", "replace")
        atomic_write_text(path, text)
    return dropped
