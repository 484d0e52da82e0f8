"""The NaN/Inf guard's policies (stop, skip, rollback) on a model forced to fail at a given step."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest
import torch

from genzoo.core.errors import TrainingDiverged
from genzoo.core.registry import MODELS
from genzoo.core.runs import read_metrics
from genzoo.core.seeding import seed_everything
from genzoo.data import load_dataset
from genzoo.train.checkpoint import find_checkpoint, read_checkpoint
from genzoo.train.trainer import TrainConfig, Trainer


class _NaNGrad(torch.autograd.Function):
    """Identity forward (a finite loss), NaN gradient backward."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return g * float("nan")


def _trainer(run_dir: Path, bad_calls=(), kind: str = "loss", **train) -> Trainer:
    """A tiny VAE on digits whose ``bad_calls``-th loss evaluations (1-based, counted over the
    trainer's life, so a step trained again after a rollback is a new call) are NaN (``loss``)
    or have a finite value with NaN gradients (``grad``)."""
    seed_everything(0)
    data = load_dataset("digits", "train")
    cls = MODELS.get("vae")
    model = cls(cls.config_class.from_dict({"latent_dim": 4, "channels": [8, 16]}), data.info)
    real = model.loss
    calls = {"n": 0}

    def loss(batch, *args):
        calls["n"] += 1
        out = real(batch, *args)
        if bad_calls(calls["n"]) if callable(bad_calls) else calls["n"] in bad_calls:
            bad = out.loss * float("nan") if kind == "loss" else _NaNGrad.apply(out.loss)
            out = dataclasses.replace(out, loss=bad)
        return out

    model.loss = loss
    settings = {"progress": False, "tensorboard": False, "batch_size": 32, "log_every": 1}
    settings.update(ckpt_every_s=0, n_samples=4)
    cfg = TrainConfig.from_dict({**settings, **train})
    return Trainer(model, data, cfg, run_dir)


def _events(run: Path) -> list[dict]:
    return [r for r in read_metrics(run) if "event" in r]


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_stop_catches_nan_gradients_even_without_clipping(tmp_path):
    tr = _trainer(tmp_path / "r", bad_calls={7}, kind="grad", grad_clip=0.0, ckpt_every=5, steps=12)
    with pytest.raises(TrainingDiverged, match=r"NaN/Inf at step 7\b"):
        tr.fit()
    assert read_checkpoint(find_checkpoint(tmp_path / "r"))[1]["step"] == 5
    assert _events(tmp_path / "r") == [{"step": 7, "event": "nan_stop", "bad_step": 7}]


@pytest.mark.parametrize("kind,clip", [("loss", 1.0), ("grad", 0.0)])
def test_skip_drops_exactly_the_bad_update(tmp_path, kind, clip):
    tr = _trainer(
        tmp_path / "r", bad_calls={4}, kind=kind, grad_clip=clip, steps=8, nan_policy="skip"
    )
    after: list[list[torch.Tensor]] = []
    step = tr.train_step

    def recording(batch):
        out = step(batch)
        after.append(_params(tr.model))
        return out

    tr.train_step = recording
    with pytest.warns(RuntimeWarning, match=r"NaN/Inf at step 4: skipped the update of main"):
        tr.fit()
    assert len(after) == 8
    same = [
        all(torch.equal(a, b) for a, b in zip(after[i], after[i - 1], strict=True))
        for i in range(1, 8)
    ]
    assert same == [False, False, True, False, False, False, False]  # only step 4 changed nothing
    opt = tr.optimizers["main"]
    assert all(opt.state[p]["step"] == 7 for p in tr.model.parameters())  # 8 steps, 1 skipped
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())
    assert _events(tmp_path / "r") == [
        {"step": 4, "event": "nan_skip", "bad_step": 4, "groups": ["main"]}
    ]
    rows = [r for r in read_metrics(tmp_path / "r") if "event" not in r]
    assert [r["step"] for r in rows] == [1, 2, 3, 5, 6, 7, 8]  # the skipped step logs nothing
    assert all(v == v for r in rows for v in r.values())  # no NaN averaged into the logs


def test_skip_gives_up_after_nan_limit(tmp_path):
    tr = _trainer(
        tmp_path / "r", bad_calls=lambda n: n >= 3, steps=20, nan_policy="skip", nan_limit=2
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(TrainingDiverged, match=r"step 5 after 3 skip attempts"):
            tr.fit()
    assert [e["bad_step"] for e in _events(tmp_path / "r")] == [3, 4, 5]


def test_rollback_reloads_last_checkpoint_and_lowers_lr_bit_exactly(tmp_path):
    lr, factor = 2e-3, 0.25
    common = {"steps": 10, "ckpt_every": 4, "lr": lr, "nan_policy": "rollback"}
    tr = _trainer(tmp_path / "r", bad_calls={7}, nan_lr_factor=factor, **common)
    with pytest.warns(RuntimeWarning, match=r"NaN/Inf at step 7: rolled back to .* step 4"):
        tr.fit()
    # Reference: train 4 steps at lr, then continue from that checkpoint at lr * factor.
    ref = _trainer(tmp_path / "ref", **{**common, "steps": 4})
    ref.fit()
    ref2 = _trainer(tmp_path / "ref", **{**common, "lr": lr * factor})
    ref2.load_checkpoint()
    ref2.fit()
    for a, b in zip(tr.model.parameters(), ref2.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert tr.optimizers["main"].param_groups[0]["lr"] == lr * factor
    assert _events(tmp_path / "r") == [
        {"step": 4, "event": "nan_rollback", "bad_step": 7, "to_step": 4, "lr_scale": factor}
    ]
    rows = [r for r in read_metrics(tmp_path / "r") if "event" not in r]
    assert [r["step"] for r in rows] == list(range(1, 11))  # steps 5-7 logged once, after
    ref_rows = [r for r in read_metrics(tmp_path / "ref") if "event" not in r]
    timing = ("time", "steps_per_s")
    for a, b in zip(rows, ref_rows, strict=True):
        assert {k: v for k, v in a.items() if k not in timing} == {
            k: v for k, v in b.items() if k not in timing
        }
    # The lowered rate is part of the run: a resumed trainer continues with it.
    state = json.loads((find_checkpoint(tmp_path / "r") / "state.json").read_text())
    assert state["lr_scale"] == factor
    again = _trainer(tmp_path / "r", **{**common, "steps": 12})
    again.load_checkpoint()
    assert again.lr_scale == factor and again._lr() == lr * factor


def test_rollback_before_any_checkpoint_and_limit(tmp_path):
    tr = _trainer(
        tmp_path / "r",
        bad_calls=lambda n: n >= 2,  # fails at step 2, every time
        steps=20,
        ckpt_every=100,
        nan_policy="rollback",
        nan_limit=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(TrainingDiverged, match=r"after 2 rollback attempts"):
            tr.fit()
    ev = _events(tmp_path / "r")
    assert [(e["event"], e.get("to_step"), e.get("lr_scale")) for e in ev] == [
        ("nan_rollback", 0, 0.5),
        ("nan_rollback", 0, 0.25),
        ("nan_stop", None, None),
    ]
    assert read_checkpoint(find_checkpoint(tmp_path / "r"))[1]["step"] == 0
