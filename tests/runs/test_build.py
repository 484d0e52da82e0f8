"""The runs layer builds models with their parts (``BuiltOnRuns.load_parts``) and loads runs
without patching anything onto the model: the checkpoint step comes with ``open_run``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from torch import nn

import genzoo
from genzoo.core.config import Config
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import BuiltOnRuns, GenerativeModel, SubRun
from genzoo.core.runs import find_checkpoint, read_checkpoint
from genzoo.data.base import DataInfo
from genzoo.models import MODELS
from genzoo.runs.build import build, build_checked
from genzoo.runs.load import load_submodel

INFO = DataInfo("pts", "points", (2,))


@dataclasses.dataclass(frozen=True)
class OnTopConfig(Config):
    base_run: str = ""
    base_ema: bool = True
    other_run: str = ""


class OnTop(GenerativeModel, BuiltOnRuns):
    """A model built on two runs, as an LDM is on its autoencoder."""

    config_class: ClassVar[type[Config]] = OnTopConfig
    sub_runs = (SubRun("base", "base_run", "base_ema"), SubRun("other", "other_run"))

    def __init__(
        self,
        config: OnTopConfig,
        info: DataInfo,
        base: nn.Module | None = None,
        other: nn.Module | None = None,
    ) -> None:
        if base is None:
            raise ConfigError("on-top needs base_run=<run directory>.")
        super().__init__(config, info)
        self.base, self.other = base, other


def test_build_passes_the_loaded_sub_runs_as_keywords() -> None:
    calls: list[tuple[str, bool]] = []

    def fake_load(run: str, ema: bool) -> nn.Module:
        calls.append((run, ema))
        return nn.Linear(2, 2)

    model = build(OnTop, OnTopConfig(base_run="runs/a", base_ema=False), INFO, fake_load)
    assert calls == [("runs/a", False)]  # the unset other_run is not loaded
    assert isinstance(model.base, nn.Linear) and model.other is None
    calls.clear()
    model = build(OnTop, OnTopConfig(base_run="a", other_run="b"), INFO, fake_load)
    assert calls == [("a", True), ("b", True)]  # no ema field: the EMA weights
    assert isinstance(model.other, nn.Linear)
    with pytest.raises(ConfigError, match="on-top needs base_run"):  # one sentence, no traceback
        build_checked(OnTop, OnTopConfig(), INFO, {}, "toy2d:moons", fake_load)
    assert calls == [("a", True), ("b", True)]


def test_a_plain_model_is_built_without_parts() -> None:
    def never(run: str, ema: bool) -> nn.Module:  # pragma: no cover - must not be called
        raise AssertionError("a model that is not BuiltOnRuns loads no runs")

    cls = MODELS.get("realnvp")
    model = build(cls, cls.config_class(), INFO, never)
    assert isinstance(model, cls)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    over = {"progress": False, "tensorboard": False, "latent_dim": 2, "hidden": [8]}
    over.update(ema_decay=0.5, batch_size=8)
    out = tmp_path_factory.mktemp("vae") / "run"
    return genzoo.train("vae", "toy2d:moons", steps=3, out=out, overrides=over)


def test_open_run_gives_the_step_and_load_patches_nothing(vae_run: Path) -> None:
    loaded = genzoo.open_run(vae_run)
    assert loaded.step == 3 and loaded.config["model"] == "vae" and loaded.path == vae_run
    assert not hasattr(loaded.model, "run_step") and not hasattr(genzoo.load(vae_run), "run_step")
    res = genzoo.evaluate(vae_run, n=8)
    assert res["step"] == 3


@pytest.mark.parametrize("ema", [True, False])
def test_load_submodel_is_the_checkpoint_on_the_cpu_in_eval_mode(vae_run: Path, ema: bool) -> None:
    files, _ = read_checkpoint(find_checkpoint(vae_run))
    model = load_submodel(str(vae_run), ema)
    assert not model.training and model.device == torch.device("cpu")
    want = files["ema" if ema else "model"]
    assert files["ema"].keys() == files["model"].keys()
    assert any(not torch.equal(files["ema"][k], files["model"][k]) for k in want)  # they differ
    for k, v in model.state_dict().items():
        assert torch.equal(v, want[k]), k
