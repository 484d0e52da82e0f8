"""SIGTERM / SIGINT during training: a checkpoint is saved, the process says how to resume, and
the resumed run continues from that step."""

import json
import signal
import subprocess
import sys
import time

import pytest

import genzoo


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_checkpoint_and_resume_continues(tmp_path, sig):
    run = tmp_path / "r"
    cmd = [sys.executable, "-m", "genzoo", "train", "ddpm", "--data", "toy2d:moons"]
    cmd += ["--steps", "1000000", "--out", str(run), "progress=false", "log_every=5"]
    cmd += ["tensorboard=false", "ckpt_every=0", "ckpt_every_s=0", "timesteps=50"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size > 0):
        time.sleep(0.2)
    assert metrics.exists(), "training never started"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "checkpoint saved" in err and "--resume" in err and "Traceback" not in err
    step = genzoo.open_run(run).step
    assert step >= 5
    genzoo.train(resume=run, steps=step + 10, overrides={"progress": False})
    last = json.loads(metrics.read_text().strip().splitlines()[-1])
    assert last["step"] == step + 10
