"""`genzoo finetune`: runs built on a base GPT run, adapters saved alone, bad input refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genzoo.cli import main
from genzoo.core.errors import ConfigError, DataError
from genzoo.core.runs import read_run_config
from genzoo.data import tasks
from genzoo.models.posttrain import SFT, PostTrainConfig
from genzoo.runs import evaluate, open_run, train
from genzoo.runs.posttrain import (
    _train_data,
    finetune,
    policy_preference_pairs,
    resume_finetune,
)

QUIET = {"progress": False, "tensorboard": False}


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("base") / "gpt"
    over = {"n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.0, "batch_size": 8, **QUIET}
    return train("gpt", "task:addition?digits=2", steps=2, out=out, overrides=over)


def _digest(run: Path) -> dict[str, str]:
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*"))
        if p.is_file()
    }


def test_lora_and_grpo_runs_leave_the_base_alone(base_run: Path, tmp_path: Path, capsys) -> None:
    before = _digest(base_run)
    over = {"lora_rank": 2, "batch_size": 4, **QUIET}
    lora = finetune(base_run, "lora", steps=2, out=tmp_path / "lora", n_train=40, overrides=over)
    ckpt = next((lora / "checkpoints").glob("step_*"))
    keys = set(load_file(ckpt / "model.safetensors"))
    assert keys and all(k.endswith(("lora_A", "lora_B")) for k in keys)
    loaded = open_run(lora).model
    assert str(base_run) == loaded.config.base_run
    over = {"group_size": 2, "batch_size": 2, "inner_iters": 2, "adapter": "lora", **QUIET}
    grpo = finetune(base_run, "grpo", steps=3, out=tmp_path / "grpo", n_train=8, overrides=over)
    rows = [json.loads(line) for line in (grpo / "metrics.jsonl").read_text().splitlines()]
    assert any("reward" in r and "kl" in r for r in rows)
    assert _digest(base_run) == before  # the base run is only read
    res = evaluate(grpo, n=6)
    assert set(res) >= {"exact_match", "reward", "kl_ref", "pref_acc", "reward_acc"}
    assert 0 <= res["exact_match"] <= 1 and res["n"] == 6
    assert main(["sample", str(lora), "--prompt", "12+35=", "--prompt", "3+4="]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("12+35=") and lines[1].startswith("3+4=")


def test_bad_input_is_one_sentence_and_writes_nothing(base_run: Path, tmp_path: Path) -> None:
    pca = train(
        "pca", "toy2d:moons", steps=1, out=tmp_path / "pca", overrides={"latent_dim": 1, **QUIET}
    )
    with pytest.raises(ConfigError, match="must be a language model"):
        finetune(pca, "sft", steps=1, out=tmp_path / "a", n_train=4)
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"prompt": "1+1=", "chosen": "2\\n", "rejected": "3\\n"}\nnot json\n')
    with pytest.raises(DataError, match="Line 2"):
        finetune(base_run, "dpo", steps=1, out=tmp_path / "b", pairs_file=bad)
    with pytest.raises(ConfigError, match="Unknown method"):
        finetune(base_run, "ppo", steps=1, out=tmp_path / "c")
    with pytest.raises(ConfigError, match="drop adapter"):
        finetune(base_run, "lora", steps=1, out=tmp_path / "d", overrides={"adapter": "prefix"})
    assert not any((tmp_path / n).exists() for n in "abcd")
    assert main(["finetune", str(base_run), "--method", "dpo", "--pairs", str(bad)]) == 2


def _weights(run: Path) -> dict[str, torch.Tensor]:
    ckpt = sorted((run / "checkpoints").glob("step_*"))[-1]
    return load_file(ckpt / "model.safetensors")


def test_grpo_after_sft_on_few_demonstrations_gets_fresh_problems(
    base_run: Path, tmp_path: Path
) -> None:
    # the SFT run's demonstrations and the GRPO run's prompts, as each run builds its data
    sft = _train_data("sft", "addition", 2, 64, 300, None, seed=5)
    tok = tasks.tokenizer()
    shown = {q for w in sft.x for q in tok.decode(w.tolist()).split("\n") if "=" in q}
    shown = {q.split("=")[0] for q in shown}
    assert len(shown) > 250  # (2-digit training problems repeat a little)
    grpo = _train_data("grpo", "addition", 2, 64, 2000, None, seed=5, skip=300)
    prompts = {tok.decode(row.tolist()).rstrip("=") for row in grpo.x}
    assert len(grpo.x) == 2000 and not shown & prompts
    same = _train_data("grpo", "addition", 2, 64, 2000, None, seed=5)  # without skip: overlap
    assert shown & {tok.decode(row.tolist()).rstrip("=") for row in same.x}
    over = {"group_size": 2, "batch_size": 2, **QUIET}
    run = finetune(
        base_run, "grpo", steps=1, out=tmp_path / "g", n_train=8, skip_train=300, overrides=over
    )
    assert read_run_config(run)["finetune"]["skip_train"] == 300
    with pytest.raises(ConfigError, match="pairs-from policy"):
        finetune(base_run, "dpo", steps=1, out=tmp_path / "d", skip_train=300)
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("method", ["sft", "grpo"])
def test_a_resumed_finetune_run_equals_one_trained_without_a_stop(
    base_run: Path, tmp_path: Path, method: str
) -> None:
    over = {"batch_size": 4, "lr": 1e-2, **QUIET}
    if method == "grpo":  # rollouts drawn from the restored random state
        over |= {"group_size": 2, "inner_iters": 2, "reward": "partial"}
    straight = finetune(base_run, method, steps=4, out=tmp_path / "a", n_train=16, overrides=over)
    half = finetune(base_run, method, steps=2, out=tmp_path / "b", n_train=16, overrides=over)
    if method == "sft":
        assert main(["finetune", "--resume", str(half), "--steps", "4"]) == 0
    else:
        resume_finetune(half, steps=4)
    a, b = _weights(straight), _weights(half)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_bad_input_is_one_sentence(base_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no `genzoo finetune` run"):
        resume_finetune(base_run, steps=5)
    run = finetune(base_run, "sft", steps=1, out=tmp_path / "s", n_train=8, overrides=QUIET)
    with pytest.raises(ConfigError, match="Model settings cannot change"):
        resume_finetune(run, steps=2, overrides={"lora_rank": 4})
    with pytest.raises(ConfigError, match="Nothing was trained"):
        resume_finetune(run, steps=1)
    assert main(["finetune", "--resume", str(run), "--method", "dpo"]) == 2


def test_policy_pairs_reject_the_policys_own_wrong_answers(base_run: Path) -> None:
    gpt = open_run(base_run).model
    policy = SFT(PostTrainConfig(base_run=str(base_run)), tasks.task_info("t", 64), gpt)
    probs = tasks.problems("addition", 2, "val", 24)
    pairs = policy_preference_pairs(policy, "addition", probs, seed=3, tries=2)
    greedy = policy.complete([p.prompt for p in probs])
    assert pairs  # an untrained GPT errs
    by_prompt = {p.prompt: (p, g) for p, g in zip(probs, greedy, strict=True)}
    for prompt, chosen, rejected in pairs:
        p, g = by_prompt[prompt]
        assert chosen == p.response and tasks.reward("addition", p.question, rejected) == 0.0
        if g != p.answer:  # its greedy answer is wrong: that is the rejected one
            assert rejected == g + tasks.EOS


def test_a_reward_function_that_raises_is_one_sentence_and_writes_nothing(
    base_run: Path, tmp_path: Path
) -> None:
    def boom(question: str, answer: str) -> float:
        raise KeyError("no score")

    over = {"group_size": 2, "batch_size": 2, **QUIET}
    with pytest.raises(ConfigError, match=r"raised KeyError.*on question '\d+\+\d+'"):
        finetune(base_run, "grpo", steps=1, out=tmp_path / "a", n_train=4, reward_fn=boom)
    with pytest.raises(ConfigError, match="finite number"):
        finetune(base_run, "grpo", steps=1, out=tmp_path / "b", reward_fn=lambda q, a: float("nan"))
    with pytest.raises(ConfigError, match="for method 'grpo'"):
        finetune(base_run, "sft", steps=1, out=tmp_path / "c", reward_fn=lambda q, a: 1.0)
    assert not any((tmp_path / n).exists() for n in "abc")
    # a reward that works: the rollouts are scored by it (here: the answer's length)
    seen: list[tuple[str, str]] = []

    def length(question: str, answer: str) -> float:
        seen.append((question, answer))
        return float(len(answer))

    run = finetune(
        base_run, "grpo", steps=2, out=tmp_path / "d", n_train=4, reward_fn=length, overrides=over
    )
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    # the two probes, then one rollout (it serves inner_iters = 2 steps) of 2 prompts x G = 2
    assert len(seen) == 2 + 2 * 2
    logged = [r["reward"] for r in rows if "reward" in r]
    assert logged and all(0 <= r <= 6 for r in logged)
    with pytest.raises(ConfigError, match="resume it with the same one"):
        resume_finetune(run, steps=3)
