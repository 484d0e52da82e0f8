"""SIGKILL at random moments, `--resume` after each: the run ends with the same parameters,
optimizer state and metrics as a run that was never interrupted (CPU, bit for bit).

The kill points are drawn at random (the seed is in the failure message): inside an optimizer
step, half-way through writing a checkpoint file, between renaming a checkpoint into place and
pointing ``latest`` at it, while pruning old checkpoints, half-way through a metrics line, and at
a random wall-clock moment from outside. ``tests/train/crashing_train.py`` places the first five.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

import genzoo
from genzoo.core.runs import read_metrics
from genzoo.train.checkpoint import find_checkpoint, read_checkpoint

SCRIPT = Path(__file__).with_name("crashing_train.py")
CKPT, LOG = 4, 2
MODEL, DATA = "vae", "toy2d:moons"
SETTINGS = {
    "progress": False,
    "tensorboard": False,
    "ckpt_every": CKPT,
    "ckpt_every_s": 0,
    "log_every": LOG,
    "batch_size": 32,
    "latent_dim": 2,
    "hidden": [16, 16],
    "n_samples": 4,
}
TIMING = ("time", "steps_per_s")


def _argv(run: Path, steps: int, first: bool) -> list[str]:
    over = [
        f"{k}={json.dumps(v) if isinstance(v, list) else str(v).lower()}"
        for k, v in SETTINGS.items()
    ]
    if first:
        return ["train", MODEL, "--data", DATA, "--steps", str(steps), "--out", str(run), *over]
    return ["train", "--resume", str(run), "--steps", str(steps)]


def _start(run: Path, steps: int, first: bool, kill: str | None) -> subprocess.Popen:
    root = str(Path(genzoo.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    env.pop("GENZOO_TEST_KILL", None)
    if kill:
        env["GENZOO_TEST_KILL"] = kill
    cmd = [sys.executable, str(SCRIPT), *_argv(run, steps, first)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _plan(rng: random.Random, steps: int, modes: list[str]) -> list[tuple[str, int]]:
    """Kill points at increasing steps (so each resumed child reaches its own)."""
    plan = [("step", rng.randint(1, CKPT - 1))]  # before the first checkpoint
    modes = list(modes)
    rng.shuffle(modes)
    for mode in modes:
        prev = plan[-1][1]
        every = {"step": 1, "metrics": LOG}.get(mode, CKPT)
        lowest = max(prev + 1, 3 * CKPT if mode == "prune" else 1)  # pruning starts at the 3rd
        choices = [s for s in range(lowest, lowest + 2 * CKPT) if s % every == 0]
        plan.append((mode, rng.choice(choices)))
    assert plan[-1][1] < steps - 2 * CKPT
    return plan


def _stripped(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows if "event" not in r]


def _assert_same_as_uninterrupted(run: Path, ref: Path, steps: int, why: str) -> None:
    fa, sa = read_checkpoint(find_checkpoint(run))
    fb, sb = read_checkpoint(find_checkpoint(ref))
    assert sa["step"] == sb["step"] == steps, why
    assert set(fa) == set(fb), why
    for kind in fa:  # weights, and optimizer moments, RNG states and data order
        assert set(fa[kind]) == set(fb[kind]), why
        for k in fb[kind]:
            assert torch.equal(fa[kind][k], fb[kind][k]), (why, kind, k)
    assert genzoo.open_run(run).step == steps
    assert _stripped(read_metrics(run)) == _stripped(read_metrics(ref)), why
    leftovers = [p for p in run.rglob(".*") if p.name.endswith(".tmp") or p.name[:5] == ".tmp-"]
    assert not leftovers, (why, leftovers)
    assert (run / ".lock").read_text() == "", why  # released by the clean exit


def _kill_and_resume(tmp_path: Path, plan: list[tuple[str, int]], outside: int, steps: int, seed):
    run = tmp_path / "run"
    why = f"seed {seed}, plan {plan}"
    first = True
    for mode, step in plan:
        proc = _start(run, steps, first, f"{mode}:{step}")
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, (why, mode, step, err[-2000:])
        first = False
    rng = random.Random(seed)
    for _ in range(outside):  # from outside, at a random moment once training is under way
        proc = _start(run, steps, first, None)
        metrics = run / "metrics.jsonl"
        target = (read_metrics(run)[-1]["step"] if metrics.exists() else 0) + LOG
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            with warnings.catch_warnings():  # a line being written is skipped with a warning
                warnings.simplefilter("ignore")
                rows = read_metrics(run) if metrics.exists() else []
            if rows and rows[-1].get("step", 0) >= target:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, -signal.SIGKILL), (why, err[-2000:])
        first = False
    proc = _start(run, steps, first, None)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, (why, err[-2000:])
    assert "Traceback" not in err
    ref = genzoo.train(MODEL, DATA, steps=steps, out=tmp_path / "ref", overrides=SETTINGS)
    _assert_same_as_uninterrupted(run, ref, steps, why)


def test_sigkill_at_random_points_then_resume_is_bit_exact(tmp_path):
    """Five kills at random steps: in a step before the first checkpoint, then in random order
    half-way through a checkpoint file, between a checkpoint's rename and ``latest``, while
    pruning, and half-way through a metrics line."""
    seed = random.randrange(2**32)
    plan = _plan(random.Random(seed), 56, ["ckpt-file", "ckpt-swap", "prune", "metrics"])
    _kill_and_resume(tmp_path, plan, outside=0, steps=56, seed=seed)


@pytest.mark.slow
def test_sigkill_many_times_at_random_moments(tmp_path):
    """Twelve kills: six placed points (one more in a step), six from outside at random."""
    seed = random.randrange(2**32)
    modes = ["step", "ckpt-file", "ckpt-swap", "prune", "metrics"]
    plan = _plan(random.Random(seed), 120, modes)
    _kill_and_resume(tmp_path, plan, outside=6, steps=120, seed=seed)
