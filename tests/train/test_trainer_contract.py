"""The Trainer against the model contract and its own promises: it draws grids only for
``Samples`` models (with their ``preview_options``), fits only ``ClosedForm`` models in closed
form, leaves the dataset and the config it is given as they are, resumes runs saved by the old
code, and its collaborators (cadence, NaN guard, metrics log) keep their schedules."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
import torch.distributed as dist
import yaml
from torch import nn

from genzoo.core.errors import ConfigError, TrainingDiverged
from genzoo.core.protocol import ClosedForm, GenerativeModel, LossOutput, Samples
from genzoo.core.runs import read_metrics
from genzoo.data import load_dataset
from genzoo.models import MODELS
from genzoo.train.batches import BatchSource
from genzoo.train.cadence import Cadence
from genzoo.train.checkpoint import find_checkpoint, read_checkpoint
from genzoo.train.distributed import DistInfo
from genzoo.train.metrics_log import MetricsLog
from genzoo.train.nan_guard import NaNGuard
from genzoo.train.trainer import TrainConfig, Trainer

OLD_RUNS = Path(__file__).parents[1] / "fixtures" / "old_runs"
FAST = {"progress": False, "tensorboard": False, "ckpt_every_s": 0}


class Gaussian(GenerativeModel):
    """A diagonal Gaussian of the data fitted by gradient descent (no capabilities)."""

    def __init__(self, info) -> None:
        super().__init__(None, info)
        self.mu = nn.Parameter(torch.zeros(info.dim))
        self.log_s = nn.Parameter(torch.zeros(info.dim))

    def loss(self, batch, group="main"):
        x = batch["x"].flatten(1)  # (B, D)
        nll = ((x - self.mu) / self.log_s.exp()) ** 2 / 2 + self.log_s
        return LossOutput(nll.sum(1).mean(), {"mu0": self.mu[0].detach()})

    def fit_data(self, batches):  # a method of that name, but not the ClosedForm capability
        raise AssertionError("fit_data called on a model that is not ClosedForm")

    def sample(self, n, *, cond=None, generator=None, **options):
        raise AssertionError("sample called on a model that is not Samples")


class SampledGaussian(Gaussian, Samples):
    preview_options: ClassVar[dict[str, Any]] = {"temperature": 0.5}

    def __init__(self, info) -> None:
        super().__init__(info)
        self.calls: list[tuple[int, dict, bool]] = []

    @torch.no_grad()
    def sample(self, n, *, cond=None, generator=None, temperature=1.0, **options):
        self.calls.append((n, {"temperature": temperature, **options}, self.training))
        eps = torch.randn(n, self.mu.numel(), generator=generator, device=self.mu.device)
        return (self.mu + temperature * self.log_s.exp() * eps).view(n, *self.info.shape)


class Mean(GenerativeModel, ClosedForm):
    """The data mean in closed form (no parameters to optimise)."""

    def __init__(self, info) -> None:
        super().__init__(None, info)
        self.register_buffer("mean", torch.zeros(info.dim))
        self.seen: list[torch.Tensor] = []

    def fit_data(self, batches):
        self.seen.extend(x.clone() for x in batches)
        self.mean.copy_(torch.cat(self.seen).flatten(1).mean(0))

    def loss(self, batch, group="main"):
        return LossOutput(((batch["x"].flatten(1) - self.mean) ** 2).sum(1).mean(), {})


def _cfg(**kw) -> TrainConfig:
    return TrainConfig.from_dict({**FAST, "batch_size": 16, **kw})


# --- the contract -----------------------------------------------------------------------------


def test_grids_only_for_samples_models_with_their_preview_options(tmp_path):
    data = load_dataset("toy2d:moons", "train")
    cfg = _cfg(steps=7, sample_every=3, n_samples=5, log_every=2)
    model = SampledGaussian(data.info)
    Trainer(model, data, cfg, tmp_path / "s").fit()
    grids = sorted(p.name for p in (tmp_path / "s" / "samples").glob("*.png"))
    assert grids == [f"step_{s:09d}.png" for s in (3, 6, 7)]  # every 3 steps and at the end
    assert model.calls == [(5, {"temperature": 0.5}, False)] * 3  # in eval mode
    assert model.training  # and back to training afterwards
    plain = Gaussian(data.info)
    Trainer(plain, data, cfg, tmp_path / "p").fit()  # would raise in sample()
    assert not (tmp_path / "p" / "samples").exists()


def test_grids_of_an_ema_model_are_drawn_from_the_ema_weights(tmp_path):
    data = load_dataset("toy2d:moons", "train")
    model = SampledGaussian(data.info)
    tr = Trainer(model, data, _cfg(steps=3, ema_decay=0.9), tmp_path / "r")
    tr.fit()
    assert model.calls == [] and len(tr.ema.model.calls) == 1  # the EMA copy drew the grid


def test_closed_form_fit_sees_the_whole_training_set_once_and_only_for_closed_form(tmp_path):
    data = load_dataset("toy2d:moons", "train")
    model = Mean(data.info)
    tr = Trainer(model, data, _cfg(steps=50, log_every=10), tmp_path / "r")
    tr.fit()
    assert torch.equal(torch.cat(model.seen), data.all()["x"])  # all of it, in order, once
    assert tr.step == 1  # one logged step, however many were asked for
    assert torch.allclose(model.mean, data.x.mean(0))
    rows = [r for r in read_metrics(tmp_path / "r") if "event" not in r]
    assert [r["step"] for r in rows] == [1]
    again = Trainer(Mean(data.info), data, _cfg(steps=50), tmp_path / "r")
    again.load_checkpoint()
    again.fit()
    assert again.model.seen == []  # a resumed closed-form run is not fitted again
    # a model with a fit_data method that is not ClosedForm is trained by gradient steps
    tr = Trainer(Gaussian(data.info), data, _cfg(steps=4), tmp_path / "g")
    tr.fit()
    assert tr.step == 4


# --- the Trainer leaves what it is given as it is -----------------------------------------------


@pytest.mark.parametrize("spec", ["digits", "toy2d:moons"])
def test_fit_leaves_the_dataset_and_the_config_as_given(tmp_path, monkeypatch, spec):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails: JSONL only
    data = load_dataset(spec, "train")
    x, y = data.x, data.y
    x0 = x.clone()
    y0 = None if y is None else y.clone()
    attrs = dict(vars(data))
    cfg = TrainConfig.from_dict({**FAST, "tensorboard": True, "steps": 5, "batch_size": 8})
    before = cfg.to_dict()
    model = SampledGaussian(data.info)
    tr = Trainer(model, data, cfg, tmp_path / "r")
    tr.fit()
    assert vars(data).keys() == attrs.keys()
    assert all(vars(data)[k] is v for k, v in attrs.items())  # no attribute replaced
    assert torch.equal(data.x, x0) and data.x.device == x0.device
    assert (y0 is None and data.y is None) or torch.equal(data.y, y0)
    assert tr.cfg is cfg and cfg.to_dict() == before  # tensorboard stays as asked for
    assert not tr.log.tensorboard and not (tmp_path / "r" / "events").exists()
    assert [r["step"] for r in read_metrics(tmp_path / "r")] == [5]


def test_batches_on_another_device_come_from_a_copy_of_the_dataset():
    data = load_dataset("digits", "train")
    x, y = data.x, data.y
    src = BatchSource(
        data,
        batch_size=4,
        seed=0,
        device=torch.device("meta"),  # a device the data is not on (no CUDA needed)
        dist=DistInfo(),
        dequantize=False,
        channels_last=False,
    )
    assert src.on_device and src.data is not data
    assert src.data.x.device.type == "meta" and src.data.y.device.type == "meta"
    assert data.x is x and data.y is y and x.device.type == "cpu"


def test_closed_form_budget_run_leaves_the_config_as_given(tmp_path):
    data = load_dataset("toy2d:moons", "train")
    cfg = _cfg(budget="1h")
    before = cfg.to_dict()
    tr = Trainer(Mean(data.info), data, cfg, tmp_path / "r")
    tr.fit()  # one step, not an hour
    assert tr.step == 1 and tr.cfg is cfg and cfg.to_dict() == before


# --- runs saved by the old code resume ----------------------------------------------------------


@pytest.mark.parametrize("name", ["ddpm-unet", "gpt-text", "dcgan"])
def test_runs_saved_by_the_old_code_resume(tmp_path, name):
    run = tmp_path / name
    shutil.copytree(OLD_RUNS / name, run)
    doc = yaml.safe_load((run / "config.yaml").read_text())
    data = load_dataset(doc["data"], "train")
    cls = MODELS.get(doc["model"])
    model = cls(cls.config_class.from_dict(doc["model_config"]), data.info)
    cfg = TrainConfig.from_dict({**doc["train"], **FAST, "steps": 4, "log_every": 1})
    old_files, old_state = read_checkpoint(find_checkpoint(run))
    tr = Trainer(model, data, cfg, run)
    tr.load_checkpoint()
    assert tr.step == old_state["step"] == 2
    # what was loaded is what was saved: weights, EMA, optimizer moments, RNG and data order
    tr.save_checkpoint()
    new_files, new_state = read_checkpoint(find_checkpoint(run))
    assert set(new_files) == set(old_files)
    for kind, tensors in old_files.items():
        assert set(new_files[kind]) == set(tensors), kind
        for k, v in tensors.items():
            assert torch.equal(new_files[kind][k], v), (kind, k)
    assert {k: v for k, v in new_state.items() if k != "elapsed"} == {
        k: v for k, v in old_state.items() if k != "elapsed"
    }
    # the data order goes on where it stopped
    perm, pos = old_files["trainer"]["data.perm"], old_state["data_pos"]
    assert torch.equal(tr.batches.next_indices(), perm[pos : pos + cfg.batch_size])
    tr.batches.load_state(old_files["trainer"], pos)
    tr.fit()
    assert tr.step == 4 and read_checkpoint(find_checkpoint(run))[1]["step"] == 4
    rows = [r for r in read_metrics(run) if "event" not in r]
    assert [r["step"] for r in rows][-2:] == [3, 4]
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())


# --- the collaborators ------------------------------------------------------------------------


def _cadence(ranks: DistInfo | None = None, **kw) -> Cadence:
    args = dict(total=10, budget=0.0, log_every=4, sample_every=3, ckpt_every=5, ckpt_every_s=0.0)
    args.update(kw)
    ranks = ranks or DistInfo()
    return Cadence(**args, step=0, elapsed=0.0, dist=ranks, device=torch.device("cpu"))


def test_cadence_schedules_logs_samples_checkpoints_and_the_end():
    c = _cadence()
    due = {s: c.due(s) for s in range(1, 11)}
    assert [s for s, d in due.items() if d.log] == [4, 8, 10]  # and at the last step
    assert [s for s, d in due.items() if d.sample] == [3, 6, 9]
    assert [s for s, d in due.items() if d.ckpt] == [5, 10]
    assert not due[1] and due[3]
    assert [s for s in range(12) if c.finished(s, 0.0)] == [10, 11]
    budget = _cadence(total=None, budget=2.0)
    assert not budget.finished(10**6, 1.99) and budget.finished(0, 2.0)
    budget.stop.append("SIGTERM")
    assert budget.finished(0, 0.0)
    timed = _cadence(ckpt_every=0, ckpt_every_s=1e-9)
    assert timed.due(1).ckpt
    timed = _cadence(ckpt_every=0, ckpt_every_s=3600.0)
    assert not timed.due(5).ckpt


def test_cadence_under_torchrun_agrees_every_ten_steps(tmp_path):
    """Ranks leave the loop, and take timed checkpoints, only at steps where they all agreed
    (every 10 steps and at the step limit); a process group of one stands in for the ranks."""
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        ranks = DistInfo(0, 2)
        spent = _cadence(total=None, budget=1.0, ranks=ranks)
        assert not spent.finished(5, 2.0)  # over budget, but no agreement at step 5
        assert spent.finished(10, 2.0)
        limit = _cadence(total=7, ranks=ranks)
        assert limit.finished(7, 0.0)  # the step limit is agreed at once
        timed = _cadence(total=None, budget=0.0, ckpt_every=0, ckpt_every_s=1e-9, ranks=ranks)
        assert not timed.finished(9, 0.0) and not timed.due(10).ckpt
        assert not timed.finished(10, 0.0) and timed.due(11).ckpt  # agreed at step 10
        assert not timed.finished(11, 0.0) and not timed.due(12).ckpt
    finally:
        dist.destroy_process_group()


def test_cadence_restores_signal_handlers():
    import signal

    before = signal.getsignal(signal.SIGTERM)
    c = _cadence()
    with c.catch_signals():
        assert signal.getsignal(signal.SIGTERM) is not before
        signal.raise_signal(signal.SIGTERM)  # caught: a flag, not an exit
        assert c.stop == ["SIGTERM"]
    assert signal.getsignal(signal.SIGTERM) is before


def _guard(tmp_path, policy="stop", limit=2):
    log = MetricsLog(tmp_path, DistInfo(), torch.device("cpu"), tensorboard=False)
    return (
        NaNGuard(
            policy=policy,
            limit=limit,
            lr_factor=0.5,
            ckpt_dir=tmp_path / "checkpoints",
            log=log,
            dist=DistInfo(),
            device=torch.device("cpu"),
        ),
        log,
    )


def test_nan_guard_reports_the_first_bad_step_and_rolls_back_within_its_limit(tmp_path):
    guard, _ = _guard(tmp_path / "a")
    (tmp_path / "a").mkdir()
    ok, bad = torch.tensor(True), torch.tensor(False)
    guard.note(ok, 1)
    assert not guard.check(1, restore=None)  # all finite: nothing to do
    for step, flag in [(2, ok), (3, bad), (4, ok), (5, bad)]:
        guard.note(flag, step)
    with pytest.raises(TrainingDiverged, match=r"NaN/Inf at step 3;"):
        guard.check(5, restore=None)
    assert [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").open()] == [
        {"step": 5, "event": "nan_stop", "bad_step": 3}
    ]
    guard, _ = _guard(tmp_path / "b", policy="rollback", limit=1)
    (tmp_path / "b").mkdir()
    calls = []

    def restore(factor):
        calls.append(factor)
        return 2, factor, 1e-3 * factor

    guard.note(bad, 4)
    with pytest.warns(RuntimeWarning, match="rolled back to the checkpoint of step 2"):
        assert guard.check(4, restore)
    assert calls == [0.5]
    guard.note(bad, 3)
    with pytest.raises(TrainingDiverged, match="after 1 rollback attempts"):
        guard.check(3, restore)
    assert calls == [0.5]  # no second rollback past the limit


def test_metrics_log_writes_the_mean_of_the_steps_since_the_last_line(tmp_path):
    log = MetricsLog(tmp_path, DistInfo(), torch.device("cpu"), tensorboard=False)
    log.start(0)
    for v in (1.0, 2.0, 6.0):
        log.add({"loss": torch.tensor(v), "n": torch.tensor(2 * v)})
    assert log.flush(3, 0.5, 1e-3) == {"loss": 3.0, "n": 6.0}
    assert log.flush(4, 0.6, 1e-3) is None  # nothing pending: no line
    log.add({"loss": torch.tensor(5.0), "n": torch.tensor(0.0)})
    log.flush_rest(4, 0.7, 1e-3)
    rows = read_metrics(tmp_path)
    assert [(r["step"], r["loss"], "steps_per_s" in r) for r in rows] == [
        (3, 3.0, True),
        (4, 5.0, False),
    ]
    assert log.last == {"loss": 5.0, "n": 0.0}


# --- the config's ranges ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key,bad,message",
    [
        ("steps", -1, r"steps = -1 must be >= 0\."),
        ("batch_size", 0, r"batch_size = 0 must be >= 1\."),
        ("log_every", 0, r"log_every = 0 must be >= 1\."),
        ("n_samples", 0, r"n_samples = 0 must be >= 1\."),
        ("keep", -1, r"keep = -1 must be >= 0\."),
        ("warmup", -2, r"warmup = -2 must be >= 0\."),
        ("nan_limit", -1, r"nan_limit = -1 must be >= 0\."),
        ("sample_every", -1, r"sample_every = -1 must be >= 0\."),
        ("ckpt_every", -1, r"ckpt_every = -1 must be >= 0\."),
        ("lr", 0.0, r"lr = 0\.0 must be a finite number > 0\."),
        ("grad_clip", -1.0, r"grad_clip = -1\.0 must be a finite number >= 0\."),
        ("ema_decay", 1.0, r"ema_decay = 1\.0 must be a finite number in \[0, 1\)\."),
        ("nan_lr_factor", 0.0, r"nan_lr_factor = 0\.0 must be a finite number in \(0, 1\]\."),
        ("betas", [0.9, 1.0], r"betas = \[0\.9, 1\.0\] must be a finite number in \[0, 1\)\."),
    ],
)
def test_train_config_ranges_name_the_field_value_and_range(key, bad, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict({key: bad})


def test_train_config_ranges_include_their_edges():
    edges = {"steps": 0, "batch_size": 1, "log_every": 1, "keep": 0, "ema_decay": 0.0}
    edges.update(nan_lr_factor=1.0, betas=[0.0, 0.0], grad_clip=0.0, ckpt_every_s=0.0)
    cfg = TrainConfig.from_dict(edges)
    assert cfg.nan_lr_factor == 1.0 and cfg.betas == (0.0, 0.0)
