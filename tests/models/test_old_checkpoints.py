"""Checkpoints of the autoencoder and autoregressive runs saved before the model contract
(tests/fixtures/old_runs) load strictly into today's classes and draw the same samples: the
state-dict keys, the config keys and the order of the random draws are unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import genzoo.models  # noqa: F401  (registers the models)
from genzoo.core.io import load_state_strict
from genzoo.core.protocol import BuiltOnRuns, GenerativeModel, Samples
from genzoo.core.registry import MODELS
from genzoo.core.runs import find_checkpoint, read_checkpoint, read_run_config
from genzoo.data.base import DataInfo

OLD_RUNS = Path(__file__).resolve().parents[1] / "fixtures" / "old_runs"
RUNS = ["gpt-text", "gpt-digits", "gpt-points", "vae-bern", "vae-gauss", "vqvae", "pixelcnn"]
RUNS += ["vqvae-prior"]


@pytest.fixture(scope="module")
def old_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixtures copied, with the ``OLD_RUNS`` placeholder of sub-run paths filled in."""
    out = tmp_path_factory.mktemp("old") / "old_runs"
    shutil.copytree(OLD_RUNS, out)
    for cfg in out.glob("*/config.yaml"):
        cfg.write_text(cfg.read_text().replace("OLD_RUNS", str(out)))
    return out


def build(run: Path, ema: bool = True) -> GenerativeModel:
    """What the runs layer does: config, sub-runs through ``load_parts``, strict weights."""
    cfg = read_run_config(run)
    cls = MODELS.get(cfg["model"])
    config = cls.config_class.from_dict(cfg["model_config"])
    parts = (
        cls.load_parts(config, lambda r, e: build(Path(r), e))
        if issubclass(cls, BuiltOnRuns)
        else {}
    )
    model = cls(config, DataInfo.from_dict(cfg["data_info"]), **parts)
    files, _ = read_checkpoint(find_checkpoint(run))
    load_state_strict(model, files["ema" if ema and "ema" in files else "model"], str(run))
    return model.eval()


@pytest.mark.parametrize("name", RUNS)
def test_old_run_loads_strictly_and_samples_as_before(old_runs: Path, name: str) -> None:
    model = build(old_runs / name)
    assert isinstance(model, Samples)
    want = load_file(str(old_runs / "expected_samples.safetensors"))[name]
    got = model.sample(6, generator=torch.Generator().manual_seed(3))
    assert got.shape == want.shape and got.dtype == want.dtype
    if want.is_floating_point():  # the same draws; float32 rounding may differ with threads
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    else:
        assert torch.equal(got, want)
