"""Rebuild a trained model from its run directory: the config through the safe YAML loader, the
class from the registry, its sub-models (:class:`~genzoo.core.protocol.BuiltOnRuns`) from their
own runs, the weights from the latest safetensors checkpoint. Nothing is monkey-patched onto the
model: :func:`open_run` returns it with its checkpoint step and config as a :class:`LoadedRun`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from genzoo.core.config import Config
from genzoo.core.errors import CheckpointError, ConfigError
from genzoo.core.io import load_state_strict
from genzoo.core.protocol import GenerativeModel
from genzoo.core.runs import find_checkpoint, read_checkpoint, read_run_config
from genzoo.core.seeding import auto_device
from genzoo.data.base import DataInfo
from genzoo.models import MODELS
from genzoo.runs.build import BUILD_ERRORS, LoadRun, build


@dataclass(frozen=True)
class LoadedRun:
    """A trained run: its ``model`` (in eval mode), the checkpoint ``step`` the weights are from,
    the run's ``config`` (the parsed ``config.yaml``) and its directory ``path``."""

    model: GenerativeModel
    step: int
    config: dict[str, Any]
    path: Path


def open_run(run: str | Path, *, ema: bool = True, device: str = "cpu") -> LoadedRun:
    """Load a run: its model on ``device`` (``"auto"``: the best available) in eval mode, EMA
    weights when the run has them and ``ema`` is true."""
    if not isinstance(ema, bool):
        raise ConfigError(f"ema = {ema!r} must be True (EMA weights) or False (the raw weights).")
    cfg = read_run_config(run)
    try:
        info = DataInfo.from_dict(cfg["data_info"])
        cls = MODELS.get(cfg["model"])
        model = build(cls, cls.config_class.from_dict(cfg["model_config"]), info, load_part)
    except (ConfigError, *BUILD_ERRORS) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(
            f"Run {str(run)!r} has an invalid model configuration ({reason})."
        ) from None
    ckpt = find_checkpoint(run)
    files, state = read_checkpoint(ckpt)
    key = "ema" if ema and "ema" in files else "model"
    if key not in files:
        raise CheckpointError(f"Checkpoint {str(ckpt)!r} has no model.safetensors.")
    load_state_strict(model, files[key], str(ckpt))
    model.to(auto_device(device)).eval()
    return LoadedRun(model, int(state["step"]), cfg, Path(run))


def load_submodel(run: str, ema: bool) -> GenerativeModel:
    """The model of ``run`` on the CPU in eval mode."""
    return open_run(run, ema=ema, device="cpu").model


def load_part(run: str, ema: bool) -> nn.Module:
    """The ``load_run`` of :meth:`BuiltOnRuns.load_parts`: :func:`load_submodel`, or for
    ``classifier:<dataset>`` genzoo's cached feature classifier of that dataset as a fixed
    :class:`~genzoo.nn.style.FeatureNet` (trained and cached on first use; ``adain``'s encoder)."""
    if run.startswith("classifier:"):
        from genzoo.runs.stylize import feature_net

        return feature_net(run)
    return load_submodel(run, ema)


def load(run: str | Path, *, ema: bool = True, device: str = "auto") -> GenerativeModel:
    """Rebuild a trained model from its run directory (EMA weights when the run has them); its
    checkpoint step is ``open_run(run).step``."""
    return open_run(run, ema=ema, device=device).model


def build_model(
    name: str,
    info: DataInfo,
    model_config: dict[str, Any] | Config,
    load_run: LoadRun = load_part,
) -> GenerativeModel:
    """The model ``name`` for data ``info`` from a config (or its dict), its sub-runs loaded with
    ``load_run``."""
    cls = MODELS.get(name)
    cfg = (
        model_config
        if isinstance(model_config, Config)
        else cls.config_class.from_dict(model_config)
    )
    return build(cls, cfg, info, load_run)
