"""One training process per run directory (a lock), a metrics log that survives a crash, and a
full or read-only disk: a clear error and the previous checkpoint untouched."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

import genzoo
from genzoo.cli import main
from genzoo.core.errors import StorageError
from genzoo.core.runs import read_metrics
from genzoo.train import metrics_log, safety
from genzoo.train.checkpoint import find_checkpoint

TINY = {"progress": False, "tensorboard": False, "latent_dim": 2, "hidden": [16, 16]}
TINY.update(batch_size=32, n_samples=4, ckpt_every_s=0)


def _one_line_error(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert code == 2 and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("genzoo: error: "), err
    return lines[0]


def _files(ckpt: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(ckpt.iterdir())}


def _train(tmp_path: Path, steps: int, name: str = "r", **extra) -> Path:
    over = {**TINY, **extra}
    return genzoo.train("vae", "toy2d:moons", steps=steps, out=tmp_path / name, overrides=over)


# --- the lock ------------------------------------------------------------------------------------
def test_second_trainer_is_refused_naming_dir_and_pid_then_stale_lock_is_taken_over(
    tmp_path, capsys
):
    run = tmp_path / "r"
    over = [f"{k}={json.dumps(v)}" for k, v in {**TINY, "ckpt_every": 5, "log_every": 5}.items()]
    cmd = [sys.executable, "-m", "genzoo", "train", "vae", "--data", "toy2d:moons"]
    root = str(Path(genzoo.__file__).resolve().parents[1])
    proc = subprocess.Popen(
        [*cmd, "--steps", "10000000", "--out", str(run), *over],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / "checkpoints" / "latest").exists():
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.1)
        err = _one_line_error(capsys, "train", "--resume", run, "--steps", 3)
        assert repr(str(run)) in err and f"PID {proc.pid}" in err and "in use" in err
        with pytest.raises(StorageError, match=f"PID {proc.pid}"):
            genzoo.train(resume=run, steps=3, overrides={"progress": False})
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    assert (run / ".lock").read_text().split() == [str(proc.pid)]  # left behind by SIGKILL
    step = genzoo.open_run(run).step
    with pytest.warns(UserWarning, match=rf"locked by PID {proc.pid}, which is no longer running"):
        genzoo.train(resume=run, steps=step + 2, overrides={"progress": False})
    assert genzoo.open_run(run).step == step + 2
    assert (run / ".lock").read_text() == ""  # a clean exit leaves no PID


def test_lock_is_reentrant_in_one_thread_and_exclusive_across_threads(tmp_path):
    import threading

    a, b = safety.RunLock(tmp_path), safety.RunLock(tmp_path)
    with a, b:  # the same thread (train() and then Trainer.fit) may take it twice
        assert (tmp_path / ".lock").read_text().split() == [str(os.getpid())]
        errors: list[BaseException] = []

        def other() -> None:
            try:
                safety.RunLock(tmp_path).acquire()
            except StorageError as e:
                errors.append(e)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert len(errors) == 1 and "another thread" in str(errors[0])
    assert (tmp_path / ".lock").read_text() == ""


# --- metrics.jsonl after a crash -----------------------------------------------------------------
def test_truncated_metrics_line_is_skipped_by_reader_and_repaired_on_resume(tmp_path):
    ref = _train(tmp_path, 10, "ref", log_every=2, ckpt_every=4)
    run = _train(tmp_path, 6, "r", log_every=2, ckpt_every=4)
    # A crash after step 6 was logged but before its checkpoint, in the middle of step 8's line:
    ckpts = run / "checkpoints"
    for p in (ckpts / "step_000000006").iterdir():
        p.unlink()
    (ckpts / "step_000000006").rmdir()
    (ckpts / "latest").write_text("step_000000004\n")
    metrics = run / "metrics.jsonl"
    with open(metrics, "a") as f:
        f.write('{"step": 8, "time": 0.1, "lr": 0.00')
    with pytest.warns(UserWarning, match=r"line 4 of .*metrics.jsonl.* not a complete JSON row"):
        rows = read_metrics(run)
    assert [r["step"] for r in rows] == [2, 4, 6]
    with pytest.warns(UserWarning, match="dropped a truncated line"):
        genzoo.train(resume=run, steps=10, overrides={"progress": False})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the file is whole again
        rows, ref_rows = read_metrics(run), read_metrics(ref)
    assert [r["step"] for r in rows] == [2, 4, 6, 8, 10]  # step 6 (after the checkpoint) once
    timing = ("time", "steps_per_s")
    strip = [{k: v for k, v in r.items() if k not in timing} for r in rows]
    assert strip == [{k: v for k, v in r.items() if k not in timing} for r in ref_rows]


# --- full or read-only disks ---------------------------------------------------------------------
def test_disk_full_during_checkpoint_is_one_clear_error_and_keeps_checkpoint(
    tmp_path, capsys, monkeypatch
):
    from genzoo.core import io as io_mod

    run = _train(tmp_path, 4, ckpt_every=4)
    before = find_checkpoint(run)
    saved = _files(before)
    real = io_mod.save_file
    calls = {"n": 0}

    def full(tensors, path, metadata=None):
        calls["n"] += 1
        if calls["n"] >= 2:  # the second file of the next checkpoint: the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real(tensors, path, metadata=metadata)

    monkeypatch.setattr(io_mod, "save_file", full)
    err = _one_line_error(capsys, "train", "--resume", run, "--steps", 8)
    assert "No space left on device" in err and "step_000000008" in err
    assert "'step_000000004' is intact" in err and f"--resume {run}" in err
    monkeypatch.setattr(io_mod, "save_file", real)
    assert find_checkpoint(run) == before and _files(before) == saved
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    assert genzoo.open_run(run).step == 4


def test_disk_full_while_logging_is_one_clear_error(tmp_path, capsys, monkeypatch):
    run = _train(tmp_path, 4, ckpt_every=4, log_every=2)
    saved = _files(find_checkpoint(run))

    def full_open(path, mode="r", *args, **kwargs):
        if Path(path).name == "metrics.jsonl" and "a" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(metrics_log, "open", full_open, raising=False)
    err = _one_line_error(capsys, "train", "--resume", run, "--steps", 8)
    assert "metrics file" in err and "metrics.jsonl" in err and "No space left on device" in err
    assert "free some disk space" in err
    assert _files(find_checkpoint(run)) == saved


def test_read_only_run_directory_is_one_clear_error(tmp_path, capsys, monkeypatch):
    run = _train(tmp_path, 4, ckpt_every=4)
    saved = _files(find_checkpoint(run))
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and str(path).startswith(str(run)):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    err = _one_line_error(capsys, "train", "--resume", run, "--steps", 8)
    assert "Read-only file system" in err and repr(str(run)) in err
    monkeypatch.setattr(os, "open", real_open)
    assert _files(find_checkpoint(run)) == saved
    if os.geteuid() != 0:  # the real thing (root ignores permissions)
        os.chmod(run, 0o555)
        try:
            err = _one_line_error(capsys, "train", "--resume", run, "--steps", 8)
            assert "Permission denied" in err and repr(str(run)) in err
        finally:
            os.chmod(run, 0o755)
        assert _files(find_checkpoint(run)) == saved


# --- a run refused in its first step ------------------------------------------------------------


def test_a_run_refused_in_its_first_step_leaves_nothing_and_the_mended_command_trains(
    tmp_path, capsys, monkeypatch
) -> None:
    """A model that finds its input wrong only in its first batch (t2i-diffusion on a dataset
    without captions) left ``config.yaml`` behind, so the mended command was told the directory
    "already holds a run" and ``--resume`` would only repeat the refusal. Now what the refused
    call wrote is removed (the directory where it made it; only its own files where the
    directory existed), and the same ``--out`` trains."""
    from genzoo.core.errors import DataError
    from genzoo.models.autoencoders.vae import VAE

    real_loss = VAE.loss

    def refused(self, batch, group="main"):
        raise DataError("this batch has no captions")

    monkeypatch.setattr(VAE, "loss", refused)
    with pytest.raises(DataError, match="no captions"):
        _train(tmp_path, 3, "new")
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    with pytest.raises(DataError):
        _train(tmp_path, 3, "kept")
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]
    cli = tmp_path / "cli"
    argv = ["train", "vae", "progress=false", "--data", "toy2d:moons", "--steps", 3, "--out", cli]
    line = _one_line_error(capsys, *argv)
    assert "no captions" in line and not (tmp_path / "cli").exists()
    monkeypatch.setattr(VAE, "loss", real_loss)  # the input mended: the same --out trains
    run = _train(tmp_path, 3, "kept")
    assert find_checkpoint(run) is not None and (kept / "notes.txt").read_text() == "mine"
