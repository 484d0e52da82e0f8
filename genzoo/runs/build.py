"""Building a model for a run: settings split between model and trainer, sub-models loaded.

A model class is built as ``cls(config, info, **parts)``. ``parts`` is empty unless the class is
:class:`~genzoo.core.protocol.BuiltOnRuns` (an LDM over an autoencoder, a prior over a VQ-VAE, a
text-to-image model over a CLIP text encoder): then ``cls.load_parts(config, load_run)`` loads
the trained runs it names, with the ``load_run(run_dir, ema)`` that the caller gives (the runs
layer's :func:`genzoo.runs.load.load_part`). Training and loading go through the same
:func:`build`, so a run is rebuilt exactly as it was trained.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from genzoo.core.config import Config
from genzoo.core.errors import ConfigError, GenzooError, choices
from genzoo.core.options import count
from genzoo.core.protocol import BuiltOnRuns, GenerativeModel
from genzoo.data.base import DataInfo
from genzoo.train.trainer import TrainConfig, parse_duration

LoadRun = Callable[[str, bool], nn.Module]
"""``load_run(run_dir, ema)`` -> the trained model of a run, on the CPU in eval mode."""

BUILD_ERRORS = (ValueError, TypeError, RuntimeError, IndexError, KeyError, ZeroDivisionError)
"""What a constructor raises on settings it cannot build (turned into one clear sentence)."""


def split_overrides(
    model_cls: type[GenerativeModel], overrides: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send each ``key=value`` to the model config or the trainer config (``model.``/``train.``
    prefixes force one); unknown keys are an error listing both sets of valid keys."""
    mkeys = set(model_cls.config_class.field_names())
    tkeys = set(TrainConfig.field_names())
    m: dict[str, Any] = {}
    t: dict[str, Any] = {}
    for key, val in overrides.items():
        if key.startswith("model."):
            m[key[6:]] = val
        elif key.startswith("train."):
            t[key[6:]] = val
        elif key in mkeys:
            m[key] = val
        elif key in tkeys:
            t[key] = val
        else:
            raise ConfigError(
                f"Unknown config key {key!r} for model {model_cls.name!r}; valid model keys are "
                f"{choices(mkeys)}; valid training keys are {choices(tkeys)}."
            )
    return m, t


def build(
    cls: type[GenerativeModel], config: Config, info: DataInfo, load_run: LoadRun
) -> GenerativeModel:
    """``cls(config, info, **parts)``, the parts of a :class:`BuiltOnRuns` model loaded with
    ``load_run``."""
    parts = cls.load_parts(config, load_run) if issubclass(cls, BuiltOnRuns) else {}
    return cls(config, info, **parts)


def build_checked(
    cls: type[GenerativeModel],
    mcfg: Config,
    info: DataInfo,
    given: dict[str, Any],
    data: str,
    load_run: LoadRun,
) -> GenerativeModel:
    """Build the model; a failure caused by the settings becomes one clear :class:`ConfigError`."""
    try:
        return build(cls, mcfg, info, load_run)
    except GenzooError:
        raise
    except BUILD_ERRORS as e:
        settings = ", ".join(f"{k}={v!r}" for k, v in given.items()) or "its default settings"
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(
            f"Model {cls.name!r} cannot be built for {data!r} with {settings} ({reason}); "
            "choose other values."
        ) from None


def train_config(
    train: dict[str, Any],
    steps: int | None = None,
    budget: str | None = None,
    *,
    need_length: bool = True,
) -> TrainConfig:
    """The run's :class:`TrainConfig` from its settings ``train`` and the command line's
    ``--steps``/``--budget`` (which win); a bad length, or none where ``need_length``, is one
    sentence, before anything is written."""
    train = dict(train)
    if steps is not None:
        train["steps"] = count(steps, "--steps", "optimizer steps; or leave it out")
    if budget is not None:
        if not parse_duration(budget) > 0:
            raise ConfigError(
                f"--budget {budget!r} must be a positive duration, e.g. '90s' or '5m'."
            )
        train["budget"] = str(budget)
    tcfg = TrainConfig.from_dict(train)
    if need_length and tcfg.steps == 0 and tcfg.budget_s == 0:
        raise ConfigError("Give a training length: --steps N or --budget 5m (or both).")
    return tcfg
