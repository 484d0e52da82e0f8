"""``train(model, data, ...)``: create (or resume) a run and train it with the one Trainer.

A run is a directory ``runs/<name>/`` with ``config.yaml``, ``checkpoints/``, ``metrics.jsonl``,
``samples/`` and ``events/``; ``steps`` and ``budget`` are totals over the run, so a resumed run
continues to them.
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import yaml

from genzoo.core.errors import CheckpointError, ConfigError, DataError, GenzooError
from genzoo.core.io import atomic_write_text
from genzoo.core.protocol import ClosedForm
from genzoo.core.runs import CONFIG_FILE, find_checkpoint, read_run_config
from genzoo.core.seeding import seed_everything
from genzoo.data import load_dataset
from genzoo.models import MODELS
from genzoo.models.autoencoders.vqgan import PerceptualFeatures
from genzoo.runs.build import build_checked, split_overrides, train_config
from genzoo.runs.load import load_part
from genzoo.runs.perceptual import perceptual_network
from genzoo.train import distributed
from genzoo.train.safety import RunLock, storage_error
from genzoo.train.trainer import TrainConfig, Trainer


def _new_run_dir(out: str | Path | None, name: str | None, model: str, data: str) -> Path:
    if out is not None:
        return Path(out)
    base = Path("runs")
    stem = name or f"{model}-{data.replace(':', '-').replace('/', '-')}"
    path = base / stem
    i = 1
    while path.exists():
        i += 1
        path = base / f"{stem}-{i}"
    return path


def _taken(run_dir: Path) -> ConfigError:
    return ConfigError(
        f"Run directory {str(run_dir)!r} already holds a run; use --resume {run_dir} "
        "to continue it, or choose another --out."
    )


def train(
    model: str | None = None,
    data: str | None = None,
    *,
    steps: int | None = None,
    budget: str | float | None = None,
    out: str | Path | None = None,
    name: str | None = None,
    data_root: str | None = None,
    download: bool = False,
    resume: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Train a model (or resume a run) and return the run directory.

    ``train("ddpm", "digits", budget="3m")``; ``train(resume="runs/ddpm-digits", steps=4000)``.
    ``steps`` and ``budget`` are totals over the run, so a resumed run continues to them.
    """
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ConfigError(
            f"overrides = {overrides!r} must be a mapping of settings, e.g. {{'lr': 1e-3}}."
        )
    overrides = dict(overrides or {})
    if resume is not None:
        run_cfg = read_run_config(resume)
        _check_resume(resume, run_cfg, model, data, out, name)
        model = run_cfg["model"]
        data = run_cfg["data"]
        run_dir = Path(resume)
        cls = MODELS.get(model)
        m_over, t_over = split_overrides(cls, overrides)
        if m_over:
            raise ConfigError(
                f"Model settings cannot change on resume (got {sorted(m_over)[0]!r}); "
                "start a new run instead."
            )
        train_dict = {**run_cfg.get("train", {}), **t_over}
        model_dict = run_cfg["model_config"]
    else:
        if model is None or data is None:
            raise ConfigError("Name a model and a dataset, e.g. `genzoo train ddpm --data digits`.")
        cls = MODELS.get(model)
        m_over, t_over = split_overrides(cls, overrides)
        train_dict = {**cls.default_train, **t_over}
        model_dict = m_over
        run_dir = _new_run_dir(out, name, model, data)
        if (run_dir / CONFIG_FILE).exists():
            raise _taken(run_dir)
    closed_form = issubclass(cls, ClosedForm)  # fitted in one pass: no length to give
    tcfg = train_config(train_dict, steps, budget, need_length=not closed_form)
    mcfg = cls.config_class.from_dict(model_dict)
    dist_info, _ = distributed.setup(tcfg.device)  # torchrun: one process per device
    run_dir = distributed.broadcast_path(run_dir, dist_info)  # rank 0 names the run
    main = dist_info.is_main  # only rank 0 locks and writes the run directory
    train_set = load_dataset(data, "train", root=data_root, download=download)
    try:
        test_set = load_dataset(data, "test", root=data_root, download=False)
    except GenzooError:
        test_set = None
    seed_everything(tcfg.seed)
    net = build_checked(cls, mcfg, train_set.info, m_over, data, load_part)
    if isinstance(net, PerceptualFeatures) and net.needs_feature_net:  # e.g. vqgan
        net.set_feature_net(perceptual_network(data, root=data_root))
    before = None if not run_dir.exists() else {p.name for p in run_dir.iterdir()}
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise storage_error("to run directory", run_dir, e) from None
    with RunLock(run_dir) if main else nullcontext():  # one training job per run directory
        if resume is None:
            if (run_dir / CONFIG_FILE).exists():  # another process got here first
                raise _taken(run_dir)
            cfg_doc = {
                "model": model,
                "data": data,
                "model_config": mcfg.to_dict(),
                "train": tcfg.to_dict(),
                "data_info": train_set.info.to_dict(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
        trainer = Trainer(net, train_set, tcfg, run_dir, test_data=test_set)
        if resume is not None:
            if has_checkpoint(run_dir):
                trainer.load_checkpoint()
            else:  # killed before its first checkpoint: start again from step 0
                warnings.warn(
                    f"Run {str(run_dir)!r} has no complete checkpoint yet; training it from "
                    "step 0.",
                    stacklevel=2,
                )
            if not closed_form:
                check_left_to_train(run_dir, tcfg, trainer, steps, budget)
            cfg_doc = read_run_config(run_dir)
            cfg_doc["train"] = tcfg.to_dict()
        try:
            if main:
                atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(cfg_doc, sort_keys=False))
        except OSError as e:
            raise storage_error("run configuration", run_dir / CONFIG_FILE, e) from None
        try:
            trainer.fit()
        except (ConfigError, DataError):  # e.g. a model that finds no captions in its 1st batch
            if main and resume is None and not has_checkpoint(run_dir):
                _discard(run_dir, before)  # refused before its first checkpoint: nothing kept
            raise
    return run_dir


def _discard(run_dir: Path, before: set[str] | None) -> None:
    """Remove what a refused new run wrote (the whole directory where this call made it), so
    that the same command with the input mended starts cleanly instead of finding a run there
    (``--resume`` would only repeat the refusal)."""
    if before is None:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for p in run_dir.iterdir():
        if p.name in before:
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _check_resume(
    resume: str | Path,
    run_cfg: dict[str, Any],
    model: str | None,
    data: str | None,
    out: str | Path | None,
    name: str | None,
) -> None:
    """A model, dataset or run directory given with ``resume`` must be the run's own: anything
    else is one sentence (it would otherwise be ignored without a word)."""
    run = str(resume)
    if model is not None and model != run_cfg["model"]:
        raise ConfigError(
            f"--resume {run} continues a {run_cfg['model']!r} run, not {model!r}; leave the "
            "model out, or start a new run without --resume."
        )
    if data is not None and data != run_cfg["data"]:
        raise ConfigError(
            f"--resume {run} trains on {run_cfg['data']!r}, not --data {data!r}; leave --data "
            "out, or start a new run without --resume."
        )
    if out is not None and Path(out).resolve() != Path(resume).resolve():
        raise ConfigError(
            f"--resume {run} writes into its own directory, not --out {str(out)!r}; leave --out "
            "out (a run cannot be continued into another directory)."
        )
    if name is not None and name != Path(resume).name:
        raise ConfigError(
            f"--resume {run} keeps its own name, not --name {name!r}; leave --name out."
        )


def check_left_to_train(
    run_dir: Path,
    tcfg: TrainConfig,
    trainer: Trainer,
    steps: int | None,
    budget: str | float | None,
) -> None:
    """A resumed run whose step count or time budget (totals over the run) is already reached
    would train nothing: one sentence saying so and how to train more, before anything is
    written. (A budget that ended the run is spent even where the time kept for the last grid
    leaves ``elapsed`` below it.)"""
    run, step, elapsed = str(run_dir), trainer.step, trainer.elapsed
    if tcfg.steps and step >= tcfg.steps:
        how = "--steps" if steps is not None else "its training length (steps)"
        extra = (
            f"; --budget {budget} does not lift it: training stops at whichever total comes first"
            if budget is not None and steps is None
            else ""
        )
        raise ConfigError(
            f"Nothing was trained: run {run!r} is at step {step} and {how} is {tcfg.steps}, a "
            f"total over the run{extra}; give a larger total, e.g. --steps {2 * tcfg.steps}."
        )
    if tcfg.budget_s and (elapsed >= tcfg.budget_s or trainer.budget_spent >= tcfg.budget_s):
        raise ConfigError(
            f"Nothing was trained: run {run!r} has trained for {elapsed:.0f} s and its budget is "
            f"{tcfg.budget}, a total over the run; give a larger total, e.g. --budget "
            f"{int(2 * tcfg.budget_s)}s."
        )


def has_checkpoint(run_dir: Path) -> bool:
    try:
        find_checkpoint(run_dir)
    except CheckpointError:
        return False
    return True
