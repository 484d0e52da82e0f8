"""Runs: the Python API that the command line mirrors.

``train(model, data, ...)`` creates ``runs/<name>/`` with ``config.yaml``, ``checkpoints/``,
``metrics.jsonl``, ``samples/`` and ``events/``; ``load(run)`` rebuilds the model from the run's
config (safe YAML) and its latest checkpoint (safetensors) without touching the data;
``evaluate(run)`` computes test metrics.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import yaml

from genzoo.core.config import Config
from genzoo.core.errors import ConfigError, GenzooError, choices
from genzoo.core.io import atomic_write_text, write_json
from genzoo.core.protocol import GenerativeModel
from genzoo.core.registry import MODELS
from genzoo.core.runs import CONFIG_FILE, read_run_config
from genzoo.core.seeding import auto_device, make_generator, seed_everything
from genzoo.data.base import DataInfo
from genzoo.train.trainer import TrainConfig, Trainer


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


def build_model(
    name: str, info: DataInfo, model_config: dict[str, Any] | Config
) -> GenerativeModel:
    cls = MODELS.get(name)
    cfg = (
        model_config
        if isinstance(model_config, Config)
        else cls.config_class.from_dict(model_config)
    )
    return cls(cfg, info)


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
    from genzoo.data import load_dataset

    overrides = dict(overrides or {})
    if resume is not None:
        run_cfg = read_run_config(resume)
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
            raise ConfigError(
                f"Run directory {str(run_dir)!r} already holds a run; use --resume {run_dir} "
                "to continue it, or choose another --out."
            )
    if steps is not None:
        train_dict["steps"] = steps
    if budget is not None:
        train_dict["budget"] = str(budget)
    tcfg = TrainConfig.from_dict(train_dict)
    mcfg = cls.config_class.from_dict(model_dict)
    train_set = load_dataset(data, "train", root=data_root, download=download)
    try:
        test_set = load_dataset(data, "test", root=data_root, download=False)
    except GenzooError:
        test_set = None
    seed_everything(tcfg.seed)
    net = cls(mcfg, train_set.info)
    run_dir.mkdir(parents=True, exist_ok=True)
    if resume is None:
        cfg_doc = {
            "model": model,
            "data": data,
            "model_config": mcfg.to_dict(),
            "train": tcfg.to_dict(),
            "data_info": train_set.info.to_dict(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(cfg_doc, sort_keys=False))
    trainer = Trainer(net, train_set, tcfg, run_dir, test_data=test_set)
    if resume is not None:
        trainer.load_checkpoint()
        cfg_doc = read_run_config(run_dir)
        cfg_doc["train"] = tcfg.to_dict()
        atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(cfg_doc, sort_keys=False))
    trainer.fit()
    return run_dir


def load(run: str | Path, *, ema: bool = True, device: str = "auto") -> GenerativeModel:
    """Rebuild a trained model from its run directory (EMA weights when the run has them)."""
    from genzoo.models.runs import load_model

    model, step = load_model(run, ema=ema)
    model.to(auto_device(device)).eval()
    model.run_step = step  # type: ignore[attr-defined]
    return model


@torch.no_grad()
def evaluate(
    run: str | Path,
    *,
    n: int | None = None,
    seed: int = 0,
    data_root: str | None = None,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Test-set metrics of a run, averaged per example; likelihoods also in bits/dim.

    Results are written to ``<run>/eval.json`` and returned.
    """
    from genzoo.data import load_dataset
    from genzoo.metrics.likelihood import bits_per_dim

    cfg = read_run_config(run)
    model = load(run)
    test = load_dataset(cfg["data"], "test", root=data_root)
    count = len(test) if n is None else min(n, len(test))
    g = make_generator(seed, device=model.device)
    sums: dict[str, float] = {}
    for i in range(0, count, batch_size):
        idx = torch.arange(i, min(i + batch_size, count))
        batch = test.get(idx, dequantize=model.dequantize, generator=make_generator(seed + i))
        x = batch["x"].to(model.device)
        y = batch.get("y")
        vals = model.eval_metrics(x, None if y is None else y.to(model.device), generator=g)
        for k, v in vals.items():
            sums[k] = sums.get(k, 0.0) + float(v.double().sum())
    result: dict[str, Any] = {k: v / count for k, v in sums.items()}
    result.update(_diffusion_floor(model, cfg, data_root, seed))
    levels = getattr(model, "bpd_levels", model.info.levels)
    for k in list(result):
        if k in ("elbo", "log_prob", "ode_log_prob") or k.startswith("iwae"):
            result[f"{k}_bpd"] = float(bits_per_dim(-result[k], model.info.dim, levels))
    result.update({"n": count, "seed": seed, "step": getattr(model, "run_step", None)})
    write_json(Path(run) / "eval.json", result)
    return result


@torch.no_grad()
def _diffusion_floor(
    model: GenerativeModel, cfg: dict[str, Any], data_root: str | None, seed: int, n: int = 512
) -> dict[str, float]:
    """For diffusion models: the denoising loss on training data beside the ideal denoiser's
    (the exact minimiser of the training loss, so its loss is the floor), same noise draws."""
    from genzoo.data import load_dataset
    from genzoo.diffusion.ideal import IdealDenoiser
    from genzoo.models.diffusion.base import DiffusionModel

    if not isinstance(model, DiffusionModel):
        return {}
    train_set = load_dataset(cfg["data"], "train", root=data_root)
    if train_set.x is None or len(train_set) > 200_000:
        return {}
    ideal = IdealDenoiser(train_set.all()["x"].to(model.device))
    idx = torch.randperm(len(train_set), generator=make_generator(seed))[:n]
    x0 = train_set.get(idx)["x"].to(model.device)
    ours = model.per_example_loss(x0, generator=make_generator(seed + 1, model.device))
    floor = model.per_example_loss(
        x0, generator=make_generator(seed + 1, model.device), denoiser=ideal
    )
    return {"train_loss": float(ours.mean()), "ideal_train_loss": float(floor.mean())}


def sample(
    run: str | Path,
    n: int = 64,
    *,
    seed: int = 0,
    sampler: str | None = None,
    steps: int | None = None,
    batch_size: int = 1000,
    **options: Any,
) -> torch.Tensor:
    """``n`` samples from a run, in the dataset's model range, on the CPU."""
    model = load(run)
    g = make_generator(seed, device=model.device)
    extra = dict(options)
    if sampler is not None:
        extra["sampler"] = sampler
    if steps is not None:
        extra["steps"] = steps
    cond = extra.pop("cond", None)
    out = []
    for i in range(0, n, batch_size):
        m = min(batch_size, n - i)
        part = cond[i : i + m] if cond is not None else None  # labels of this chunk
        if part is not None:
            extra["cond"] = part
        out.append(model.sample(m, generator=g, **extra).cpu())
    return torch.cat(out)
