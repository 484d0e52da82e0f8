"""Exact resume, atomic checkpoints and the NaN guard, through the one Trainer."""

import pytest
import torch

import genzoo
from genzoo.core.errors import CheckpointError, TrainingDiverged
from genzoo.train import checkpoint as ckpt_mod
from genzoo.train.checkpoint import find_checkpoint, read_checkpoint


def _weights(run):
    files, state = read_checkpoint(find_checkpoint(run))
    return files, state


@pytest.mark.parametrize(
    "model,data,extra",
    [
        ("ddpm", "toy2d:moons", {"ema_decay": 0.99, "batch_size": 64}),
        ("vae", "digits", {"batch_size": 32, "latent_dim": 4, "channels": [8, 16]}),
    ],
)
def test_resume_is_bit_exact(tmp_path, fast_train, model, data, extra):
    common = {**fast_train, **extra, "ckpt_every": 1000, "log_every": 5}
    straight = genzoo.train(model, data, steps=20, out=tmp_path / "a", overrides=common)
    half = genzoo.train(model, data, steps=10, out=tmp_path / "b", overrides=common)
    genzoo.train(resume=half, steps=20, overrides=fast_train)
    fa, sa = _weights(straight)
    fb, sb = _weights(half)
    assert sa["step"] == sb["step"] == 20
    for kind in fa:
        if kind == "trainer":
            continue
        for k in fa[kind]:
            assert torch.equal(fa[kind][k], fb[kind][k]), (kind, k)
    # Optimizer moments are identical too.
    for k, v in fa["trainer"].items():
        if k.startswith("opt."):
            assert torch.equal(v, fb["trainer"][k]), k


def test_failed_checkpoint_write_keeps_previous_checkpoint(tmp_path, fast_train, monkeypatch):
    run = genzoo.train("ddpm", "toy2d:moons", steps=5, out=tmp_path / "r", overrides=fast_train)
    before = find_checkpoint(run)
    calls = {"n": 0}
    real = ckpt_mod.save_tensors

    def flaky(path, tensors, metadata=None):
        calls["n"] += 1
        if calls["n"] == 2:  # the second file of the new checkpoint: disk full half-way
            raise OSError(28, "No space left on device")
        real(path, tensors, metadata)

    monkeypatch.setattr(ckpt_mod, "save_tensors", flaky)
    with pytest.raises(OSError):
        genzoo.train(resume=run, steps=10, overrides=fast_train)
    monkeypatch.setattr(ckpt_mod, "save_tensors", real)
    assert find_checkpoint(run) == before
    assert genzoo.open_run(run).step == 5
    assert not list((run / "checkpoints").glob(".tmp-*"))


def test_nan_guard_stops_with_step_and_keeps_last_good_checkpoint(tmp_path, fast_train):
    run = genzoo.train("vae", "digits", steps=10, out=tmp_path / "nan", overrides=fast_train)
    absurd = {**fast_train, "lr": 1e6, "grad_clip": 0.0, "ckpt_every": 2, "log_every": 1}
    with pytest.raises(TrainingDiverged, match=r"NaN/Inf at step (1[1-9]|[2-9]\d|\d{3})\b"):
        genzoo.train(resume=run, steps=500, overrides=absurd)
    model = genzoo.load(run)  # the last good checkpoint still loads, and is finite
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert genzoo.open_run(run).step >= 10


def test_missing_or_corrupt_checkpoints_are_clear_errors(tmp_path, fast_train):
    with pytest.raises(CheckpointError, match="does not exist"):
        genzoo.load(tmp_path / "nowhere")
    run = genzoo.train("ddpm", "toy2d:moons", steps=2, out=tmp_path / "r", overrides=fast_train)
    ck = find_checkpoint(run)
    (ck / "model.safetensors").write_bytes(b"garbage that is not safetensors")
    with pytest.raises(CheckpointError, match="corrupt"):
        genzoo.load(run)


def test_compiled_channels_last_training_saves_plain_weights_and_resumes(
    tmp_path, fast_train, monkeypatch
):
    """compile=true and channels_last=true change how steps run, not what they compute: the
    checkpoint holds the model's own keys (no ``_orig_mod.`` wrappers), the run resumes, and the
    weights equal a plain run's. (Dynamo's eager backend keeps the test free of a C++ build.)"""
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: real(fn, backend="eager"))
    extra = {"batch_size": 32, "latent_dim": 4, "channels": [8, 16], "log_every": 5}
    plain = genzoo.train(
        "vae", "digits", steps=12, out=tmp_path / "a", overrides={**fast_train, **extra}
    )
    fast = {**fast_train, **extra, "compile": True, "channels_last": True}
    half = genzoo.train("vae", "digits", steps=6, out=tmp_path / "b", overrides=fast)
    genzoo.train(resume=half, steps=12, overrides=fast_train)
    fa, _ = _weights(plain)
    fb, sb = _weights(half)
    assert sb["step"] == 12
    model = genzoo.load(half)
    assert set(fb["model"]) == set(model.state_dict()) == set(fa["model"])
    assert not any("_orig_mod" in k for k in fb["model"])
    for k in fa["model"]:
        assert torch.allclose(fa["model"][k], fb["model"][k], atol=1e-5, rtol=1e-4), k
