"""``finetune(base_run, method, task)``: post-train a trained GPT run into a new run, and measure
it on the task's held-out problems (``evaluate_task``, what ``genzoo eval`` prints for these runs).

Methods: ``sft`` (every weight), ``lora`` and ``prefix`` (SFT of an adapter), ``dpo`` (with
``loss_type=ipo`` for IPO) and ``grpo``. The new run's ``config.yaml`` names the base run (the
model config's ``base_run``); its checkpoints hold only what was trained. The base run is only
read. Everything that can be wrong with the input (the base run, the task, the settings, a
preference file) is checked before the new run directory is created, so nothing is written half.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from genzoo.core.errors import ConfigError, DataError, choices
from genzoo.core.io import atomic_write_text
from genzoo.core.runs import CONFIG_FILE, read_run_config
from genzoo.core.seeding import make_generator, seed_everything
from genzoo.data import tasks
from genzoo.data.base import Dataset
from genzoo.models import MODELS
from genzoo.models.autoregressive.gpt import GPT
from genzoo.models.posttrain import GRPO, PostTrained
from genzoo.models.posttrain.grpo import call_reward
from genzoo.runs.build import build_checked, split_overrides, train_config
from genzoo.runs.load import load_submodel, open_run
from genzoo.runs.train import check_left_to_train, has_checkpoint
from genzoo.train.safety import RunLock, storage_error
from genzoo.train.trainer import TrainConfig, Trainer

METHODS = {  # method -> (model, adapter)
    "sft": ("sft", "full"),
    "lora": ("sft", "lora"),
    "prefix": ("sft", "prefix"),
    "dpo": ("dpo", None),
    "grpo": ("grpo", None),
}
PAIR_SOURCES = ("task", "policy")  # DPO's generated pairs: task distractors or own mistakes
N_TRAIN = {"sft": 20_000, "dpo": 5_000, "grpo": 5_000}  # training problems per model


def _train_data(
    model: str,
    task: str,
    digits: int,
    block: int,
    n: int,
    pairs_file: str | None,
    seed: int,
    policy: PostTrained | None = None,
    skip: int = 0,
) -> Dataset:
    name = f"task:{task}?digits={digits}"
    if model == "sft":
        pairs_sft = tasks.sft_examples(task, digits, "train", n, seed, skip=skip)
        return tasks.PackedSFT(name, pairs_sft, block)
    if model == "dpo":
        if pairs_file:
            pairs = tasks.read_preference_file(pairs_file)
        elif policy is not None:
            probs = tasks.problems(task, digits, "train", n, seed, skip=skip)
            pairs = policy_preference_pairs(policy, task, probs, seed=seed)
            if not pairs:
                raise DataError(
                    f"The base policy answers all {len(probs)} training problems right: no "
                    "pair of its own mistakes to learn from; use pairs=task."
                )
        else:
            pairs = tasks.preference_pairs(task, digits, "train", n, seed)
        return tasks.PairData(name, pairs)
    prompts = [p.prompt for p in tasks.problems(task, digits, "train", n, seed, skip=skip)]
    return tasks.PromptData(name, prompts)


@torch.no_grad()
def policy_preference_pairs(
    policy: PostTrained,
    task: str,
    problems: list[tasks.Problem],
    *,
    seed: int = 0,
    tries: int = 4,
    temperature: float = 1.0,
    batch_size: int = 256,
) -> list[tuple[str, str, str]]:
    """On-policy preference pairs (prompt, the verified answer, the policy's own wrong answer):
    for each problem, the policy's greedy answer when it is wrong, else the first wrong one of
    ``tries`` answers sampled at ``temperature``; problems it never gets wrong give no pair.
    (The pairs DPO learns most from are the mistakes its reference policy makes.)"""
    tok = tasks.tokenizer()
    g = make_generator(seed, device=policy.device)
    out = []
    for i in range(0, len(problems), batch_size):
        chunk = problems[i : i + batch_size]
        prompts = torch.stack([tok.encode(p.prompt) for p in chunk]).to(policy.device)  # (B, P)
        answers: list[list[str]] = [[] for _ in chunk]
        for t in range(tries + 1):  # first the greedy answer, then samples
            new, mask = policy.generate(
                prompts, temperature=0.0 if t == 0 else temperature, generator=g
            )
            for j, (row, m) in enumerate(zip(new.tolist(), mask.tolist(), strict=True)):
                answers[j].append(
                    tasks.answer_of(tok.decode([a for a, k in zip(row, m, strict=True) if k]))
                )
        for p, cands in zip(chunk, answers, strict=True):
            wrong = [a for a in cands if tasks.reward(task, p.question, a) == 0.0]
            if wrong:
                out.append((p.prompt, p.response, wrong[0] + tasks.EOS))
    return out


def finetune(
    base_run: str | Path,
    method: str,
    task: str = "addition",
    *,
    steps: int | None = None,
    budget: str | float | None = None,
    out: str | Path | None = None,
    n_train: int | None = None,
    skip_train: int = 0,
    pairs_file: str | Path | None = None,
    pairs: str = "task",
    reward_fn: Callable[[str, str], float] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Post-train the GPT of ``base_run`` with ``method`` on ``task``; returns the new run.

    ``finetune("runs/gpt-task", "grpo", "addition", steps=200, overrides={"digits": 2})``.
    ``pairs_file``: DPO's preference pairs as JSON lines (default: generated). ``pairs``: how
    DPO's pairs are generated: ``"task"`` (the verified answer vs. a plausible wrong one, see
    :func:`genzoo.data.tasks.preference_pairs`) or ``"policy"`` (vs. the base policy's own
    wrong answers, :func:`policy_preference_pairs`). ``reward_fn``: GRPO's reward,
    ``fn(question, answer) -> float``, in place of the task's rule-based one; it is tried on a
    right and a wrong answer before anything is written (one that raises is one sentence).
    ``skip_train``: leave out the first ``skip_train`` training problems of the run's seed and
    every repeat of them (:func:`genzoo.data.tasks.problems` with ``skip``): a GRPO run after an
    SFT run of the same seed on ``n_train = skip_train`` demonstrations then trains on problems
    it was never shown solved.
    """
    if method not in METHODS:
        raise ConfigError(f"Unknown method {method!r}; choose {choices(METHODS)}.")
    name, adapter = METHODS[method]
    if pairs_file is not None and name != "dpo":
        raise ConfigError(f"--pairs is for --method dpo, not {method!r}.")
    if pairs not in PAIR_SOURCES:
        raise ConfigError(f"Unknown pair source {pairs!r}; choose {choices(PAIR_SOURCES)}.")
    if pairs != "task" and (name != "dpo" or pairs_file is not None):
        raise ConfigError(f"--pairs-from {pairs} is for --method dpo without a --pairs file.")
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
    if reward_fn is not None:
        if name != "grpo":
            raise ConfigError(f"reward_fn is for method 'grpo', not {method!r}.")
        p = tasks.problems(task, mcfg.digits, "train", 1)[0]
        for answer in (p.answer, tasks.wrong_answer(task, p.answer, random.Random(0))):
            call_reward(reward_fn, p.question, answer)  # raises one sentence, nothing written
    train_dict = {**cls.default_train, **t_over}
    tcfg = train_config(train_dict, steps, budget)
    if n_train is not None and n_train < 1:
        raise ConfigError(f"--n-train {n_train} must be at least 1.")
    if skip_train < 0:
        raise ConfigError(f"skip_train = {skip_train} must be at least 0.")
    if skip_train and name == "dpo" and pairs != "policy":
        raise ConfigError(
            "skip_train leaves out generated problems: for --method dpo it needs --pairs-from "
            f"policy (got {'a --pairs file' if pairs_file else 'task pairs'})."
        )
    job = {
        "task": task,
        "n_train": n_train or N_TRAIN[name],
        "skip_train": skip_train,
        "pairs_file": pairs_file and str(Path(pairs_file).resolve()),
        "pairs_sha256": pairs_file and _sha256(pairs_file),
        "pairs": pairs,
        "reward_fn": reward_fn and f"{reward_fn.__module__}.{reward_fn.__qualname__}",
    }
    net, data = _build(name, mcfg, tcfg, job, m_over)
    if isinstance(net, GRPO):
        net.set_reward_fn(reward_fn)
    run_dir = Path(out) if out is not None else _new_dir(method, task)
    if (run_dir / CONFIG_FILE).exists():
        raise ConfigError(
            f"Run directory {str(run_dir)!r} already holds a run; choose another --out "
            f"(or continue it with --resume {run_dir})."
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
            "finetune": job,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(doc, sort_keys=False))
        Trainer(net, data, tcfg, run_dir).fit()
    return run_dir


def _sha256(path: str | Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as e:
        raise DataError(f"Cannot read preference file {str(path)!r} ({e}).") from None


def _build(
    name: str, mcfg: Any, tcfg: TrainConfig, job: dict[str, Any], m_over: dict[str, Any]
) -> tuple[PostTrained, Dataset]:
    """The model (its base loaded, only read) and the training data of a finetune run."""
    base = load_submodel(str(mcfg.base_run), mcfg.base_ema)
    # (a base that is no GPT gets its one-sentence error from the model's constructor)
    gpt = base.policy if isinstance(base, PostTrained) else base  # a stage after a stage
    block = gpt.block_size if isinstance(gpt, GPT) else tasks.TASK_BLOCK
    if mcfg.adapter == "prefix":
        block -= mcfg.prefix_len  # the prefix takes positions
    policy = None
    if job.get("pairs", "task") == "policy":  # the base's own answers, as a policy
        policy = base if isinstance(base, PostTrained) else _wrap(base, mcfg)
    data = _train_data(
        name,
        job["task"],
        mcfg.digits,
        block,
        job["n_train"],
        job["pairs_file"],
        tcfg.seed,
        policy,
        job.get("skip_train", 0),  # (0 in runs written before the option)
    )
    seed_everything(tcfg.seed)
    cls = MODELS.get(name)
    net = build_checked(cls, mcfg, data.info, m_over, data.info.name, lambda r, e: base)
    return net, data  # type: ignore[return-value]


def _wrap(gpt: Any, mcfg: Any) -> PostTrained:
    """A plain GPT base as a policy that can answer (an SFT wrapper of 0 steps)."""
    cls = MODELS.get("sft")
    cfg = cls.config_class.from_dict(
        {"base_run": mcfg.base_run, "task": mcfg.task, "digits": mcfg.digits}
    )
    return cls(cfg, tasks.task_info("policy", tasks.TASK_BLOCK), gpt)  # type: ignore[call-arg]


def resume_finetune(
    run: str | Path,
    *,
    steps: int | None = None,
    budget: str | float | None = None,
    reward_fn: Callable[[str, str], float] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Continue a ``finetune`` run from its last checkpoint (weights, optimizer, random state
    and data order), to ``steps`` / ``budget`` (totals over the run) or its own length: the
    result is the run trained without a stop. Training settings may change (e.g. ``lr``);
    model settings may not. A GRPO run trained with a ``reward_fn`` needs it given again.
    Everything is checked before anything is written."""
    run_dir = Path(run)
    doc = read_run_config(run_dir)
    job = doc.get("finetune")
    if doc.get("method") not in METHODS or not isinstance(job, dict):
        raise ConfigError(
            f"--resume {run_dir} is no `genzoo finetune` run of a language model (it holds "
            f"{doc.get('model')!r}); continue it with `genzoo train --resume {run_dir}`."
        )
    name = doc["model"]
    cls = MODELS.get(name)
    m_over, t_over = split_overrides(cls, dict(overrides or {}))
    if m_over:
        raise ConfigError(
            f"Model settings cannot change on resume (got {sorted(m_over)[0]!r}); start a new "
            "run instead."
        )
    mcfg = cls.config_class.from_dict(doc["model_config"])
    tcfg = train_config({**doc["train"], **t_over}, steps, budget)
    if job["pairs_file"] and _sha256(job["pairs_file"]) != job["pairs_sha256"]:
        raise DataError(
            f"The preference file {job['pairs_file']!r} of run {str(run_dir)!r} changed since "
            "the run started; start a new run on the new file."
        )
    if bool(job.get("reward_fn")) != (reward_fn is not None):
        raise ConfigError(
            f"Run {str(run_dir)!r} was trained with reward function {job.get('reward_fn')!r}; "
            "resume it with the same one (reward_fn=..., None for the rule-based reward)."
        )
    net, data = _build(name, mcfg, tcfg, job, {})
    if isinstance(net, GRPO):
        net.set_reward_fn(reward_fn)
    with RunLock(run_dir):
        trainer = Trainer(net, data, tcfg, run_dir)
        if has_checkpoint(run_dir):
            trainer.load_checkpoint()
        check_left_to_train(run_dir, tcfg, trainer, steps, budget)
        doc["train"] = tcfg.to_dict()
        atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(doc, sort_keys=False))
        trainer.fit()
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
    model: PostTrained, n: int = 256, seed: int = 0, batch_size: int = 128, split: str = "test"
) -> dict[str, Any]:
    """Held-out metrics of a post-trained model on ``n`` problems of its task's ``split``
    (``"test"``; ``"val"`` to choose settings without looking at the test problems): exact match
    and reward of greedy answers, KL to the reference (nats per answer), and on ``n`` preference
    pairs of the split the preference accuracies (see ``PostTrained.eval_metrics``)."""
    c = model.config
    probs = tasks.problems(c.task, c.digits, split, n, seed)
    prompts = tasks.PromptData("prompts", [p.prompt for p in probs])
    pairs = tasks.PairData("pairs", tasks.preference_pairs(c.task, c.digits, split, n, seed))
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
