"""Runs: the Python API that the command line mirrors.

``train(model, data, ...)`` creates ``runs/<name>/`` with ``config.yaml``, ``checkpoints/``,
``metrics.jsonl``, ``samples/`` and ``events/``; ``load(run)`` rebuilds the model from the run's
config (safe YAML) and its latest checkpoint (safetensors) without touching the data;
``evaluate(run)`` computes test metrics.
"""

from __future__ import annotations

import time
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import yaml

from genzoo.core.config import Config
from genzoo.core.errors import CheckpointError, ConfigError, GenzooError, choices
from genzoo.core.io import atomic_write_text, write_json
from genzoo.core.protocol import GenerativeModel
from genzoo.core.registry import MODELS
from genzoo.core.runs import CONFIG_FILE, find_checkpoint, read_run_config
from genzoo.core.seeding import auto_device, make_generator, seed_everything
from genzoo.data.base import DataInfo
from genzoo.train import distributed
from genzoo.train.safety import RunLock, storage_error
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
    if tcfg.steps == 0 and tcfg.budget_s == 0:  # before anything is written
        raise ConfigError("Give a training length: --steps N or --budget 5m (or both).")
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
    net = _build_checked(cls, mcfg, train_set.info, m_over, data)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise storage_error("to run directory", run_dir, e) from None
    with RunLock(run_dir) if main else nullcontext():  # one training job per run directory
        if resume is None:
            if (run_dir / CONFIG_FILE).exists():  # another process got here first
                raise ConfigError(
                    f"Run directory {str(run_dir)!r} already holds a run; use --resume {run_dir} "
                    "to continue it, or choose another --out."
                )
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
            if _has_checkpoint(run_dir):
                trainer.load_checkpoint()
            else:  # killed before its first checkpoint: start again from step 0
                warnings.warn(
                    f"Run {str(run_dir)!r} has no complete checkpoint yet; training it from "
                    "step 0.",
                    stacklevel=2,
                )
            cfg_doc = read_run_config(run_dir)
            cfg_doc["train"] = tcfg.to_dict()
        try:
            if main:
                atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(cfg_doc, sort_keys=False))
        except OSError as e:
            raise storage_error("run configuration", run_dir / CONFIG_FILE, e) from None
        trainer.fit()
    return run_dir


def _has_checkpoint(run_dir: Path) -> bool:
    try:
        find_checkpoint(run_dir)
    except CheckpointError:
        return False
    return True


def _build_checked(
    cls: type[GenerativeModel], mcfg: Config, info: DataInfo, given: dict[str, Any], data: str
) -> GenerativeModel:
    """Build the model; a failure caused by the settings becomes one clear :class:`ConfigError`."""
    try:
        return cls(mcfg, info)
    except GenzooError:
        raise
    except (ValueError, TypeError, RuntimeError, IndexError, KeyError, ZeroDivisionError) as e:
        settings = ", ".join(f"{k}={v!r}" for k, v in given.items()) or "its default settings"
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(
            f"Model {cls.name!r} cannot be built for {data!r} with {settings} ({reason}); "
            "choose other values."
        ) from None


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
    ode: bool = False,
    ode_n: int = 256,
    ode_steps: int = 64,
) -> dict[str, Any]:
    """Test-set metrics of a run, averaged per example; likelihoods also in bits/dim.

    ``ode`` adds, for diffusion models of images, the probability-flow ODE log-likelihood of
    ``ode_n`` uniformly dequantized test images (Hutchinson divergence, ``ode_steps`` Heun steps;
    arXiv:2011.13456 App. D) as ``ode_log_prob`` and ``ode_log_prob_bpd``: an upper bound on the
    discrete bits/dim, comparable with the flows' numbers. (For points it is always computed.)
    Results are written to ``<run>/eval.json`` and returned.
    """
    from genzoo.data import load_dataset
    from genzoo.metrics.likelihood import bits_per_dim

    cfg = read_run_config(run)
    if n is not None and n < 1:
        raise ConfigError(f"--n {n} must be at least 1 (test examples to evaluate).")
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
        if hasattr(model, "eval_batch"):  # models that read more than x, y (captions, questions)
            vals = model.eval_batch({k: v.to(model.device) for k, v in batch.items()}, generator=g)
        else:
            vals = model.eval_metrics(x, None if y is None else y.to(model.device), generator=g)
        for k, v in vals.items():
            sums[k] = sums.get(k, 0.0) + float(v.double().sum())
    result: dict[str, Any] = {k: v / count for k, v in sums.items()}
    result.update(_diffusion_floor(model, cfg, data_root, seed))
    if ode:
        result.update(_image_ode_log_prob(model, test, min(ode_n, len(test)), ode_steps, seed))
    levels = getattr(model, "bpd_levels", model.info.levels)
    for k in list(result):
        if k in ("elbo", "log_prob", "ode_log_prob") or k.startswith("iwae"):
            lv = model.info.levels if k == "ode_log_prob" else levels  # a density: always L
            result[f"{k}_bpd"] = float(bits_per_dim(-result[k], model.info.dim, lv))
    result.update({"n": count, "seed": seed, "step": getattr(model, "run_step", None)})
    write_json(Path(run) / "eval.json", result)
    return result


def _image_ode_log_prob(
    model: GenerativeModel, test: Any, n: int, steps: int, seed: int, batch_size: int = 64
) -> dict[str, Any]:
    """Mean probability-flow ODE log-likelihood of ``n`` dequantized test images (nats)."""
    from genzoo.core.errors import ConfigError
    from genzoo.models.diffusion.base import DiffusionModel

    if not isinstance(model, DiffusionModel):
        raise ConfigError(
            f"The ODE likelihood needs a diffusion model; {model.name!r} is a {model.family} "
            "model (its own likelihood or bound is reported without --ode)."
        )
    if model.info.kind != "images":
        return {}  # points: eval_metrics computes it with the exact divergence
    g = make_generator(seed + 7, device=model.device)
    total = 0.0
    for i in range(0, n, batch_size):
        idx = torch.arange(i, min(i + batch_size, n))
        x = test.get(idx, dequantize=True, generator=make_generator(seed + 7 + i))["x"]
        lp = model.ode_log_prob(x.to(model.device), steps=steps, generator=g)
        total += float(lp.double().sum())
    return {"ode_log_prob": total / n, "ode_n": n, "ode_steps": steps}


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
    if n < 1:
        raise ConfigError(f"--n {n} must be at least 1 (samples to draw).")
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
