"""Rebuild a trained model from its run directory: the config through the safe YAML loader, the
class from the registry, the weights from the latest safetensors checkpoint. Used by
``genzoo.load`` and by models built on other runs (latent diffusion over an autoencoder)."""

from __future__ import annotations

from pathlib import Path

from genzoo.core.errors import CheckpointError, ConfigError
from genzoo.core.io import load_state_strict
from genzoo.core.protocol import GenerativeModel
from genzoo.core.registry import MODELS
from genzoo.core.runs import find_checkpoint, read_checkpoint, read_run_config
from genzoo.data.base import DataInfo


def load_model(run: str | Path, *, ema: bool = True) -> tuple[GenerativeModel, int]:
    """``(model on the CPU in eval mode, checkpoint step)``; EMA weights when the run has them."""
    cfg = read_run_config(run)
    try:
        info = DataInfo.from_dict(cfg["data_info"])
        cls = MODELS.get(cfg["model"])
        model = cls(cls.config_class.from_dict(cfg["model_config"]), info)
    except (ConfigError, ValueError, TypeError, KeyError, IndexError, RuntimeError) as e:
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
    return model.eval(), int(state["step"])
