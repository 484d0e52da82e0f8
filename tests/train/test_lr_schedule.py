"""The learning-rate schedule of the one Trainer: linear warm-up and cosine decay to zero."""

import itertools
import json
import math

import pytest

import genzoo
from genzoo.core.errors import ConfigError

TINY = {"couplings": 2, "hidden": [8], "batch_size": 32, "ckpt_every": 0, "log_every": 1}


def _lrs(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["lr"]) for r in rows if "lr" in r]


def test_cosine_decay_follows_half_a_cosine_to_zero(tmp_path, fast_train):
    over = {**fast_train, **TINY, "lr": 1e-2, "lr_decay": "cosine", "warmup": 4}
    run = genzoo.train("realnvp", "toy2d:moons", steps=40, out=tmp_path / "r", overrides=over)
    lrs = _lrs(run)
    assert len(lrs) >= 30
    for step, lr in lrs:
        cos = 0.5 * (1 + math.cos(math.pi * min(step / 40, 1.0)))
        assert lr == pytest.approx(1e-2 * cos * min(1.0, (step + 1) / 4), rel=1e-6), step
    after = [lr for step, lr in lrs if step >= 4]
    assert all(b < a for a, b in itertools.pairwise(after))  # decreasing after warm-up
    assert after[-1] < 1e-2 * 0.01  # close to zero at the end
    flat = genzoo.train(
        "realnvp", "toy2d:moons", steps=10, out=tmp_path / "f", overrides={**fast_train, **TINY}
    )
    assert {lr for _, lr in _lrs(flat)} == {1e-3}  # the default: a constant rate


def test_cosine_decay_needs_a_step_count():
    with pytest.raises(ConfigError, match="steps > 0"):
        genzoo.train("realnvp", "toy2d:moons", budget="1s", overrides={"lr_decay": "cosine"})
