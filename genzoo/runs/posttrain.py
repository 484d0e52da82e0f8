"""``finetune(base_run, method, task)``: post-train a trained GPT run into a new run, and measure
it on the task's held-out problems (``evaluate_task``, what ``genzoo eval`` prints for these runs).

Methods: ``sft`` (every weight), ``lora`` and ``prefix`` (SFT of an adapter), ``dpo`` (with
``loss_type=ipo`` for IPO) and ``grpo``. The new run's ``config.yaml`` names the base run (the
model config's ``base_run``); its checkpoints hold only what was trained. The base run is only
read. Everything that can be wrong with the input (the base run, the task, the settings, a
preference file) is checked before the new run directory is created, so nothing is written half.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import yaml

from genzoo.core.errors import ConfigError, choices
from genzoo.core.io import atomic_write_text
from genzoo.core.runs import CONFIG_FILE
from genzoo.core.seeding import make_generator, seed_everything
from genzoo.data import tasks
from genzoo.data.base import Dataset
from genzoo.models import MODELS
from genzoo.models.autoregressive.gpt import GPT
from genzoo.models.posttrain import PostTrained
from genzoo.runs.build import build_checked, split_overrides, train_config
from genzoo.runs.load import load_submodel, open_run
from genzoo.train.safety import RunLock, storage_error
from genzoo.train.trainer import Trainer

METHODS = {  # method -> (model, adapter)
    "sft": ("sft", "full"),
    "lora": ("sft", "lora"),
    "prefix": ("sft", "prefix"),
    "dpo": ("dpo", None),
    "grpo": ("grpo", None),
}
N_TRAIN = {"sft": 20_000, "dpo": 5_000, "grpo": 5_000}  # training problems per model


def _train_data(
    model: str, task: str, digits: int, block: int, n: int, pairs_file: str | None, seed: int
) -> Dataset:
    name = f"task:{task}?digits={digits}"
    if model == "sft":
        return tasks.PackedSFT(name, tasks.sft_examples(task, digits, "train", n, seed), block)
    if model == "dpo":
        pairs = (
            tasks.read_preference_file(pairs_file)
            if pairs_file
            else tasks.preference_pairs(task, digits, "train", n, seed)
        )
        return tasks.PairData(name, pairs)
    prompts = [p.prompt for p in tasks.problems(task, digits, "train", n, seed)]
    return tasks.PromptData(name, prompts)


def finetune(
    base_run: str | Path,
    method: str,
    task: str = "addition",
    *,
    steps: int | None = None,
    budget: str | float | None = None,
    out: str | Path | None = None,
    n_train: int | None = None,
    pairs_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Post-train the GPT of ``base_run`` with ``method`` on ``task``; returns the new run.

    ``finetune("runs/gpt-task", "grpo", "addition", steps=200, overrides={"digits": 2})``.
    ``pairs_file``: DPO's preference pairs as JSON lines (default: generated from the task).
    """
    if method not in METHODS:
        raise ConfigError(f"Unknown method {method!r}; choose {choices(METHODS)}.")
    name, adapter = METHODS[method]
    if pairs_file is not None and name != "dpo":
        raise ConfigError(f"--pairs is for --method dpo, not {method!r}.")
    cls = MODELS.get(name)
    m_over, t_over = split_overrides(cls, dict(overrides or {}))
    for key in ("base_run", "task"):
        if key in m_over:
            raise ConfigError(f"Give {key} as the command's argument, not as {key}=...")
    if adapter is not None:
        if m_over.get("adapter", adapter) != adapter:
            raise ConfigError(
                f"--method {method} trains adapter {adapter!r}; drop adapter="
                f"{m_over['adapter']!r} (or use --method sft/dpo/grpo adapter=...)."
            )
        m_over["adapter"] = adapter
    m_over.update(base_run=str(base_run), task=task)
    mcfg = cls.config_class.from_dict(m_over)
    train_dict = {**cls.default_train, **t_over}
    tcfg = train_config(train_dict, steps, budget)
    if n_train is not None and n_train < 1:
        raise ConfigError(f"--n-train {n_train} must be at least 1.")
    base = load_submodel(str(base_run), mcfg.base_ema)  # type: ignore[attr-defined]
    # (a base that is no GPT gets its one-sentence error from the model's constructor)
    gpt = base.policy if isinstance(base, PostTrained) else base  # a stage after a stage
    block = gpt.block_size if isinstance(gpt, GPT) else tasks.TASK_BLOCK
    if mcfg.adapter == "prefix":  # type: ignore[attr-defined]
        block -= mcfg.prefix_len  # type: ignore[attr-defined]  # the prefix takes positions
    digits = mcfg.digits  # type: ignore[attr-defined]
    data = _train_data(
        name,
        task,
        digits,
        block,
        n_train or N_TRAIN[name],
        pairs_file and str(pairs_file),
        tcfg.seed,
    )
    seed_everything(tcfg.seed)
    net = build_checked(cls, mcfg, data.info, m_over, data.info.name, lambda r, e: base)
    run_dir = Path(out) if out is not None else _new_dir(method, task)
    if (run_dir / CONFIG_FILE).exists():
        raise ConfigError(
            f"Run directory {str(run_dir)!r} already holds a run; choose another --out."
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise storage_error("to run directory", run_dir, e) from None
    with RunLock(run_dir):
        doc = {
            "model": name,
            "data": data.info.name,
            "method": method,
            "model_config": mcfg.to_dict(),
            "train": tcfg.to_dict(),
            "data_info": data.info.to_dict(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(doc, sort_keys=False))
        Trainer(net, data, tcfg, run_dir).fit()
    return run_dir


def _new_dir(method: str, task: str) -> Path:
    stem = Path("runs") / f"{method}-{task}"
    path, i = stem, 1
    while path.exists():
        i += 1
        path = Path(f"{stem}-{i}")
    return path


@torch.no_grad()
def evaluate_task(
    model: PostTrained, n: int = 256, seed: int = 0, batch_size: int = 128
) -> dict[str, Any]:
    """Held-out metrics of a post-trained model on ``n`` test problems of its task: exact match
    and reward of greedy answers, KL to the reference (nats per answer), and on ``n`` test
    preference pairs the preference accuracies (see ``PostTrained.eval_metrics``)."""
    c = model.config
    probs = tasks.problems(c.task, c.digits, "test", n, seed)
    prompts = tasks.PromptData("prompts", [p.prompt for p in probs])
    pairs = tasks.PairData("pairs", tasks.preference_pairs(c.task, c.digits, "test", n, seed))
    g = make_generator(seed, device=model.device)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for data in (prompts, pairs):
        for i in range(0, len(data), batch_size):
            batch = data.get(torch.arange(i, min(i + batch_size, len(data))))
            vals = model.eval_metrics({k: v.to(model.device) for k, v in batch.items()}, g)
            for k, v in vals.items():
                sums[k] = sums.get(k, 0.0) + float(v.double().sum())
                counts[k] = counts.get(k, 0) + v.numel()
    return {k: sums[k] / counts[k] for k in sums} | {"n": len(probs)}


def complete(
    run: str | Path, prompts: list[str], *, temperature: float = 0.0, seed: int = 0
) -> list[str]:
    """The answers of a post-trained run to text prompts (``"12+35="``)."""
    model = open_run(run, device="cpu").model
    if not isinstance(model, PostTrained):
        raise ConfigError(
            f"--prompt with a text answer needs a post-trained run (sft, dpo, grpo); "
            f"{str(run)!r} holds {model.name!r}."
        )
    return model.complete(prompts, temperature=temperature, generator=make_generator(seed))
