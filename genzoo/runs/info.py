"""``run_info(run)``: what a run holds, in one dict (``genzoo info RUN`` prints it): the model
and its data, the settings, the parameter count, the steps trained, the checkpoints, what the
model can do (its capabilities) and the last logged metrics."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from genzoo.core.errors import CheckpointError
from genzoo.core.protocol import (
    BuiltOnRuns,
    ClosedForm,
    ExactLikelihood,
    LatentSpace,
    LikelihoodBound,
    PromptConditioned,
    Samples,
    Translates,
)
from genzoo.core.runs import read_metrics
from genzoo.models import MODELS
from genzoo.runs.load import open_run
from genzoo.train.trainer import TrainConfig

CAPABILITIES = (
    Samples,
    ExactLikelihood,
    LikelihoodBound,
    LatentSpace,
    PromptConditioned,
    ClosedForm,
    Translates,
    BuiltOnRuns,
)
"""The capability mixins of :mod:`genzoo.core.protocol`, in the order ``info`` lists them."""


def run_info(run: str | Path) -> dict[str, Any]:
    """A summary of run ``run``: ``model``, ``family``, ``data``, ``created``, ``model_config``
    and ``train`` (the settings that differ from the defaults, sub-configs as dotted keys),
    ``parameters``, ``step`` (of the latest checkpoint), ``checkpoints`` (their steps),
    ``capabilities`` and ``last_metrics`` (the last line of ``metrics.jsonl``)."""
    loaded = open_run(run, device="cpu")
    model, cfg = loaded.model, loaded.config
    cls = MODELS.get(cfg["model"])
    parsed = cls.config_class.from_dict(cfg["model_config"]).to_dict()  # old flat keys read too
    changed = _changed(_flat(parsed), _flat(cls.config_class().to_dict()))
    train = _flat(cfg.get("train", {}))
    train = {
        k: v
        for k, v in _changed(train, _flat(TrainConfig().to_dict())).items()
        if k not in ("progress", "tensorboard")
    }
    root = Path(run) / "checkpoints"
    ckpts = sorted(int(p.name.removeprefix("step_")) for p in root.glob("step_*") if p.is_dir())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a line cut short by a crash: just skipped here
            rows = [r for r in read_metrics(run) if "event" not in r]
    except CheckpointError:
        rows = []
    return {
        "run": str(run),
        "model": cfg["model"],
        "family": cls.family,
        "data": cfg["data"],
        "created": cfg.get("created"),
        "model_config": changed,
        "train": train,
        "parameters": sum(p.numel() for p in model.parameters()),
        "step": loaded.step,
        "checkpoints": ckpts,
        "capabilities": [c.__name__ for c in CAPABILITIES if isinstance(model, c)],
        "last_metrics": rows[-1] if rows else {},
    }


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sub-configs as dotted keys (``dit.width``), as ``key=value`` settings name them."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _changed(d: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in defaults or defaults[k] != v}


def format_info(info: dict[str, Any]) -> str:
    """:func:`run_info` as text, one item a line."""

    def settings(d: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v}" for k, v in d.items()) or "(defaults)"

    metrics = {k: v for k, v in info["last_metrics"].items() if k != "step"}
    shown = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
    )
    lines = [
        f"run           {info['run']}",
        f"model         {info['model']} ({info['family']})",
        f"data          {info['data']}",
        f"created       {info['created'] or 'unknown'}",
        f"parameters    {info['parameters']:,}",
        f"steps trained {info['step']}",
        f"checkpoints   {', '.join(f'step {s}' for s in info['checkpoints']) or 'none'}",
        f"capabilities  {', '.join(info['capabilities']) or 'none'}",
        f"model config  {settings(info['model_config'])}",
        f"training      {settings(info['train'])}",
        f"last metrics  {shown or 'none'}"
        + (f" (step {info['last_metrics']['step']})" if "step" in info["last_metrics"] else ""),
    ]
    return "\n".join(lines)
