"""No silent waits: the training bar shows the loss from the first step (not only after the
first log line, 50 steps in), and `eval --ode` shows what it is computing."""

import json
import shutil
from pathlib import Path

from genzoo.cli import main

RUNS = Path(__file__).parents[1] / "fixtures" / "old_runs"


def test_progress_bar_shows_the_loss_before_the_first_log_line(capsys, tmp_path):
    argv = ["train", "ddpm", "--data", "toy2d:moons", "--steps", "3", "--out", str(tmp_path / "r")]
    assert main([*argv, "tensorboard=false", "log_every=50", "n_samples=16"]) == 0
    renders = capsys.readouterr().err.replace("\r", "\n").splitlines()
    early = [r for r in renders if "train ddpm" in r and (" 1/3 " in r or " 2/3 " in r)]
    assert any("loss=" in r for r in early), renders
    rows = [json.loads(ln) for ln in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [3]  # the log itself is unchanged


def test_eval_ode_says_what_it_computes(capsys, tmp_path):
    run = tmp_path / "edm"
    shutil.copytree(RUNS / "edm-dit", run)  # eval writes eval.json into the run
    assert main(["eval", str(run), "--n", "4", "--ode", "--ode-n", "2"]) == 0
    out = capsys.readouterr()
    assert "probability-flow ODE likelihood (64 Heun steps)" in out.err
    assert "2/2" in out.err and "eval edm" in out.err
    assert "ode_log_prob_bpd" in out.out
