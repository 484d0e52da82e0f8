"""``genzoo train MODEL --base RUN``: a model built on one trained run (an LDM over an autoencoder,
a prior over a VQ-VAE) names that run with ``--base`` instead of its config key
(``autoencoder_run=RUN``, ``vqvae_run=RUN``) and trains on the base run's dataset unless ``--data``
says otherwise. A ``controlnet`` has its own route (:mod:`genzoo.runs.controlnet`).

What can be wrong (a model built on no run, a base run that is missing or of the wrong family, the
key given twice) is one sentence before a run directory is created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genzoo.core.errors import ConfigError, choices
from genzoo.core.protocol import BuiltOnRuns, SubRun
from genzoo.core.runs import read_run_config
from genzoo.models import MODELS
from genzoo.nn.partial_state import SavesTrainedOnly


def base_sub_run(model: str) -> SubRun:
    """The one :class:`SubRun` that ``--base`` fills for ``model``; one sentence if it has none
    or several."""
    cls = MODELS.get(model)
    if issubclass(cls, SavesTrainedOnly) and model != "controlnet":
        raise ConfigError(
            f"Model {model!r} fine-tunes a trained run: use `genzoo finetune RUN` "
            f"(`--dreambooth DIR` or `--method {model}`), not `genzoo train --base`."
        )
    subs = cls.sub_runs if issubclass(cls, BuiltOnRuns) else ()
    if len(subs) != 1 or model == "controlnet":
        takers = [n for n in MODELS.names() if n != "controlnet" and _one_sub_run(n)]
        raise ConfigError(
            f"--base RUN names the one run a model is built on, and model {model!r} "
            f"{'is built on none' if not subs else 'is not one of them'}; models that take "
            f"--base: {choices([*takers, 'controlnet'])}."
        )
    return subs[0]


def _one_sub_run(name: str) -> bool:
    cls = MODELS.get(name)
    one = issubclass(cls, BuiltOnRuns) and len(cls.sub_runs) == 1
    return one and not issubclass(cls, SavesTrainedOnly)


def base_settings(
    model: str, base: str | Path, overrides: dict[str, Any] | None = None
) -> tuple[dict[str, Any], str]:
    """``(overrides with the base run's key set, the base run's dataset)`` for
    ``genzoo train MODEL --base RUN``; checks the base run's family against the sub-run's
    ``needs``."""
    sub = base_sub_run(model)
    over = dict(overrides or {})
    if sub.run_field in over:
        raise ConfigError(
            f"Give the base run once: --base {base} or {sub.run_field}=..., not both."
        )
    cfg = read_run_config(base)
    base_model = str(cfg["model"])
    base_cls = MODELS.get(base_model)
    if sub.needs and not issubclass(base_cls, sub.needs):
        fits = [n for n in MODELS.names() if issubclass(MODELS.get(n), sub.needs)]
        raise ConfigError(
            f"Base run {str(base)!r} is a {base_model!r} run; {model!r} is built on a run of "
            f"{choices(fits)}."
        )
    over[sub.run_field] = str(base)
    return over, str(cfg["data"])
