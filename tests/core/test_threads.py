"""The CPU thread policy: the idle cores when training starts, unless the user fixes the count."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

import genzoo
from genzoo.core import threads
from genzoo.core.errors import ConfigError


def test_env_fixes_the_count_and_bad_values_are_one_sentence(monkeypatch):
    monkeypatch.setenv(threads.THREADS_ENV, "3")
    assert threads.default_threads() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(threads.THREADS_ENV, bad)
        with pytest.raises(ConfigError, match=threads.THREADS_ENV):
            threads.default_threads()


def test_idle_cores_from_the_kernel_counters(monkeypatch):
    """The machine's idle share times its CPU count: half of 2 CPUs idle is 1 core, all idle
    is 2 (this process sleeps meanwhile, so its own CPU time adds ~0)."""
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    for after, want in (((150.0, 300.0, 2), 1), ((200.0, 300.0, 2), 2), ((100.0, 300.0, 2), 1)):
        reads = iter([(100.0, 200.0, 2), after])
        monkeypatch.setattr(threads, "_cpu_times", lambda reads=reads: next(reads))
        assert threads.default_threads() == want


def test_a_busy_process_takes_a_core_from_the_policy(monkeypatch):
    if threads._cpu_times() is None:
        pytest.skip("no /proc/stat on this system")
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    cores = threads.available_cores()
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        loaded = threads.idle_cores(0.3)
        chosen = threads.default_threads()
    finally:
        spin.kill()
        spin.wait()
    assert loaded is not None and loaded <= cores - 0.5  # the spinner holds about one core
    assert 1 <= chosen <= max(1, cores - 1)


def test_trainer_trains_with_the_policy_count_and_restores_the_caller_s(tmp_path, monkeypatch):
    monkeypatch.setenv(threads.THREADS_ENV, "2")
    torch.set_num_threads(1)
    seen = []
    orig = torch.set_num_threads

    def record(n):
        seen.append(n)
        orig(n)

    monkeypatch.setattr(torch, "set_num_threads", record)
    genzoo.train(
        "vae",
        "toy2d:moons",
        steps=2,
        out=tmp_path / "r",
        overrides={"progress": False, "tensorboard": False, "n_samples": 4},
    )
    assert seen[:1] == [2] and seen[-1] == 1  # trained with 2, then gave the caller back 1
    assert torch.get_num_threads() == 1


def test_cli_threads_option(capsys, monkeypatch):
    from genzoo.cli import main

    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    assert main(["--threads", "0", "list", "samplers"]) == 2
    assert "--threads 0 must be at least 1" in capsys.readouterr().err
    assert main(["--threads", "3", "list", "samplers"]) == 0
    assert os.environ[threads.THREADS_ENV] == "3"
