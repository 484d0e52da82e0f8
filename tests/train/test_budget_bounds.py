"""A time budget bounds the whole run: the Trainer keeps part of it for the end-of-run checkpoint
and grid (drawn with the model's preview sampler), says so up front, and shows the time left.
Tested with a fake clock, not by timing."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from genzoo.core.protocol import GenerativeModel, LossOutput, Samples
from genzoo.data import load_dataset
from genzoo.train.cadence import Cadence
from genzoo.train.distributed import DistInfo
from genzoo.train.trainer import TrainConfig, Trainer, end_reserve


class SampledGaussian(GenerativeModel, Samples):
    """A diagonal Gaussian fitted by gradient descent that records its ``sample`` calls."""

    preview_options: ClassVar[dict[str, Any]] = {"temperature": 0.5}

    def __init__(self, info) -> None:
        super().__init__(None, info)
        self.mu = nn.Parameter(torch.zeros(info.dim))
        self.calls: list[tuple[int, dict, bool]] = []

    def loss(self, batch, group="main"):
        return LossOutput(((batch["x"].flatten(1) - self.mu) ** 2).sum(1).mean(), {})

    @torch.no_grad()
    def sample(self, n, *, cond=None, generator=None, temperature=1.0, **options):
        self.calls.append((n, {"temperature": temperature, **options}, self.training))
        eps = torch.randn(n, self.mu.numel(), generator=generator)
        return (self.mu + temperature * eps).view(n, *self.info.shape)


def _cadence(**kw) -> Cadence:
    args = dict(total=None, budget=30.0, log_every=4, sample_every=0, ckpt_every=0)
    args.update(kw)
    return Cadence(
        **args,
        ckpt_every_s=0.0,
        step=0,
        elapsed=0.0,
        dist=DistInfo(),
        device=torch.device("cpu"),
    )


def test_cadence_stops_a_budget_run_at_the_budget_less_its_reserve():
    c = _cadence(reserve=5.0)
    assert not c.finished(10**6, 24.99) and c.finished(0, 25.0)
    assert c.left(20.0) == pytest.approx(5.0) and c.left(40.0) == 0.0
    assert _cadence(reserve=100.0).reserve == 30.0  # never more than the budget
    assert _cadence(total=10, budget=0.0, reserve=3.0).left(1.0) is None  # steps: no clock
    assert not _cadence(total=10, budget=0.0, reserve=3.0).finished(9, 1e9)


def test_end_reserve_scales_the_trial_grid_and_shrinks_it_to_half_the_budget():
    # a grid of 8 took 0.5 s: 64 take at most 4 s; a 10 MB checkpoint 0.5 + 0.1 s
    reserve, n = end_reserve(0.5, 8, 64, 10_000_000, 30.0)
    assert reserve == pytest.approx(4.6) and n == 64
    # 1.25 s a sample: 64 would take 80 s; 11 fit in half the budget less the checkpoint
    reserve, n = end_reserve(10.0, 8, 64, 0, 30.0)
    assert n == 11 and reserve == pytest.approx(11 * 1.25 + 0.5) and reserve <= 15.0
    assert end_reserve(100.0, 8, 64, 0, 30.0) == (13.0, 1)  # 12.5 s a sample: 1 fits
    assert end_reserve(200.0, 8, 64, 0, 30.0) == (15.0, 1)  # none fits: one, in half


def test_budget_run_times_a_preview_grid_keeps_its_reserve_and_says_so(
    tmp_path, monkeypatch, capsys
):
    clock = [1000.0]

    def fake_clock() -> float:  # every reading of the clock takes 10 ms
        clock[0] += 0.01
        return clock[0]

    monkeypatch.setattr(time, "perf_counter", fake_clock)
    data = load_dataset("toy2d:moons", "train")
    model = SampledGaussian(data.info)
    cfg = TrainConfig.from_dict(
        {"budget": "2s", "batch_size": 16, "n_samples": 16, "tensorboard": False}
    )
    tr = Trainer(model, data, cfg, tmp_path / "r")
    tr.fit()
    # the trial grid (8 samples) and the end-of-run grid, both with the preview options
    assert model.calls[0] == (8, {"temperature": 0.5}, False)
    assert model.calls[-1] == (16, {"temperature": 0.5}, False)
    assert len(model.calls) == 2
    # the trial took one tick: the reserve is 16/8 ticks for the grid + 0.5 s + the checkpoint
    assert 0 < tr.step and tr.elapsed < 2.0 - 0.5
    err = capsys.readouterr().err
    assert "budget 2 s: training stops at 1.5 s, keeping 0.5 s" in err
    assert "16-sample grid (temperature=0.5)" in err
    assert "left=" in err  # the progress bar shows the time left
