"""Procedural tasks with exact verifiers, for language-model post-training (nothing downloaded).

A task draws problems at a difficulty level and checks any answer exactly:

========================  ==========================  ==========  ==============================
task                      question (difficulty d)      answer      d is
========================  ==========================  ==========  ==============================
``addition``              ``"482+919"``                ``"1401"``  digits of each operand (carries)
``subtraction``           ``"482-119"``                ``"363"``   digits of each operand (borrows)
``reverse``               ``"rev kqzt"``               ``"tzqk"``  letters - 1 (d + 1 letters)
``sort``                  ``"sort 3912"``              ``"1239"``  digits in the list - 1
``count``                 ``"count a baab"``           ``"2"``     letters - 2 (d + 2 letters)
========================  ==========================  ==========  ==============================

**The instruction template** is ``"{question}="`` for the prompt and ``"{answer}\\n"`` for the
response: the newline ends an answer (it is the end-of-sequence token). Text is tokenized one
character per token with the alphabet of genzoo's text corpus
(:data:`~genzoo.data.text.PYSTDLIB_ALPHABET`, 97 symbols): the same tokenizer as a GPT trained on
``text:pystdlib`` or on a task's own text (``task:addition?digits=2``), so a base GPT and the
task data speak the same tokens.

**Train, validation and test are disjoint by construction**: a problem belongs to the test split
when the SHA-256 of its question is 0 modulo 10, to the validation split (``"val"``, for choosing
settings without looking at the test problems) when it is 1 modulo 10, and to the train split
otherwise, whatever seed or count drew it.

What the post-training methods read: :func:`sft_examples` (prompt, response) pairs,
:func:`preference_pairs` (prompt, chosen = the verified answer, rejected = a plausible wrong one:
a dropped carry, an off-by-one digit, two letters swapped), prompts and :func:`reward`, a
rule-based reward (1 for an exact answer, 0 otherwise). :class:`PackedSFT`, :class:`PairData` and
:class:`PromptData` hold them as token tensors for the Trainer.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from genzoo.core.errors import ConfigError, DataError, choices
from genzoo.data.base import DataInfo, Dataset
from genzoo.data.text import PYSTDLIB_ALPHABET, CharTokenizer

TASKS = ("addition", "subtraction", "reverse", "sort", "count")
EOS = "\n"  # ends every answer
TEMPLATE = "{question}="  # the instruction template of the prompt
TEST_BUCKETS = 10  # a problem is in the test split when its hash is 0 modulo this, val when 1
SPLITS = ("train", "val", "test")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@functools.cache
def tokenizer() -> CharTokenizer:
    """The character tokenizer shared with genzoo's text GPTs (token 0 is the newline, EOS)."""
    return CharTokenizer(PYSTDLIB_ALPHABET)


def check_task(task: str, digits: int) -> None:
    if task not in TASKS:
        raise ConfigError(f"Unknown task {task!r}; choose {choices(TASKS)}.")
    if not 1 <= digits <= 8:
        raise ConfigError(f"digits = {digits} must be between 1 and 8 (the difficulty level).")


@dataclass(frozen=True)
class Problem:
    """One problem: its ``question`` and the verified ``answer``."""

    question: str
    answer: str

    @property
    def prompt(self) -> str:
        return TEMPLATE.format(question=self.question)

    @property
    def response(self) -> str:
        return self.answer + EOS


def split_of(question: str) -> str:
    """``"test"``, ``"val"`` or ``"train"``: a fixed function of the question (the three are
    disjoint by construction)."""
    h = int(hashlib.sha256(question.encode()).hexdigest()[:8], 16) % TEST_BUCKETS
    return "test" if h == 0 else "val" if h == 1 else "train"


def solve(task: str, question: str) -> str | None:
    """The exact answer of ``question`` (``None`` if it is not a question of ``task``)."""
    try:
        if task == "addition":
            a, b = question.split("+")
            return str(int(a) + int(b))
        if task == "subtraction":
            a, b = question.split("-")
            return str(int(a) - int(b))
        word, arg = question.split(" ", 1)
        if task == "reverse" and word == "rev":
            return arg[::-1]
        if task == "sort" and word == "sort":
            return "".join(sorted(arg))
        if task == "count" and word == "count":
            ch, s = arg.split(" ")
            return str(s.count(ch))
    except ValueError:
        return None
    return None


def answer_of(completion: str) -> str:
    """The answer a completion gives: the text before its first EOS (all of it if none)."""
    return completion.split(EOS, 1)[0]


def reward(task: str, question: str, completion: str) -> float:
    """Rule-based reward: 1 when the completion's answer is exactly right, else 0."""
    truth = solve(task, question)
    return float(truth is not None and answer_of(completion) == truth)


def partial_reward(task: str, question: str, completion: str) -> float:
    """Rule-based reward with partial credit: the fraction of the true answer's characters that
    the answer gets right in place, over the longer of the two lengths (1 exactly when the
    answer is exact; an answer of the wrong length loses the positions it lacks or adds).
    For numbers the places are aligned on the units digit (the last character), so ``"147"``
    for ``"157"`` earns 2/3 and ``"57"`` for ``"157"`` earns 2/3."""
    truth = solve(task, question)
    if truth is None:
        return 0.0
    ans = answer_of(completion)
    if task in ("addition", "subtraction", "count"):  # numbers: align on the units digit
        a, t = ans[::-1], truth[::-1]
    else:
        a, t = ans, truth
    right = sum(x == y for x, y in zip(a, t, strict=False))
    return right / max(len(a), len(t))


REWARDS = {"exact": reward, "partial": partial_reward}  # GRPO's rule-based rewards


def _draw(task: str, d: int, rng: random.Random) -> str:
    if task in ("addition", "subtraction"):
        lo, hi = (0 if d == 1 else 10 ** (d - 1)), 10**d
        a, b = rng.randrange(lo, hi), rng.randrange(lo, hi)
        if task == "subtraction":
            a, b = max(a, b), min(a, b)  # answers are never negative
            return f"{a}-{b}"
        return f"{a}+{b}"
    if task == "reverse":
        return "rev " + "".join(rng.choices(LETTERS, k=d + 1))
    if task == "sort":
        return "sort " + "".join(rng.choices("0123456789", k=d + 1))
    letters = LETTERS[: max(2, d + 1)]
    word = "".join(rng.choices(letters, k=d + 2))
    return f"count {rng.choice(letters)} {word}"


def problems(
    task: str, digits: int, split: str, n: int, seed: int = 0, *, skip: int = 0
) -> list[Problem]:
    """``n`` problems of ``task`` at difficulty ``digits`` from ``split`` (``"train"``,
    ``"val"`` or ``"test"``; val and test problems are distinct, train problems may repeat).
    Fewer when the split has fewer distinct problems.

    ``skip``: leave out the first ``skip`` problems of the same draw (``problems(task, digits,
    split, skip, seed)``, e.g. the demonstrations an SFT run of this seed learned from) and every
    repeat of their questions, so the ``n`` problems returned are fresh: none of their questions
    is among those ``skip``."""
    check_task(task, digits)
    if split not in SPLITS:
        raise DataError(f"Unknown split {split!r}; choose {choices(SPLITS)}.")
    if skip < 0:
        raise ConfigError(f"skip = {skip} must be at least 0.")
    rng = random.Random(f"{seed}/{task}/{digits}/{split}")
    out: list[Problem] = []
    seen: set[str] = set()
    left_out: set[str] = set()  # the questions of the first `skip` problems
    misses = 0  # draws since the last new problem: the split is exhausted after many
    while len(out) < n and misses < 5000:
        q = _draw(task, digits, rng)
        if (
            split_of(q) != split
            or (split != "train" and q in seen)
            or (skip == 0 and q in left_out)
        ):
            misses += 1
            continue
        misses = 0
        seen.add(q)
        if skip > 0:
            skip -= 1
            left_out.add(q)
            continue
        out.append(Problem(q, str(solve(task, q))))
    return out


def sft_examples(
    task: str, digits: int, split: str, n: int, seed: int = 0, *, skip: int = 0
) -> list[tuple[str, str]]:
    """``n`` (prompt, response) pairs: ``("12+35=", "47\\n")`` (``skip``: as in
    :func:`problems`)."""
    return [(p.prompt, p.response) for p in problems(task, digits, split, n, seed, skip=skip)]


def wrong_answer(task: str, answer: str, rng: random.Random) -> str:
    """A plausible wrong answer: numbers off by 1 or 10 (a dropped carry), strings with two
    different letters swapped or one letter changed."""
    if task in ("addition", "subtraction", "count"):
        v = int(answer)
        for _ in range(20):
            w = v + rng.choice([-10, -1, 1, 10])
            if w >= 0 and w != v:
                return str(w)
        return str(v + 1)
    chars = list(answer)
    i, j = rng.sample(range(len(chars)), 2)
    if chars[i] != chars[j]:
        chars[i], chars[j] = chars[j], chars[i]
    else:
        pool = "0123456789" if task == "sort" else LETTERS
        chars[i] = rng.choice([c for c in pool if c != chars[i]])
    return "".join(chars)


def preference_pairs(
    task: str, digits: int, split: str, n: int, seed: int = 0
) -> list[tuple[str, str, str]]:
    """``n`` (prompt, chosen, rejected): the verified answer preferred to a wrong one."""
    rng = random.Random(f"{seed}/{task}/{digits}/{split}/wrong")
    out = []
    for p in problems(task, digits, split, n, seed):
        bad = wrong_answer(task, p.answer, rng)
        assert reward(task, p.question, bad) == 0.0
        out.append((p.prompt, p.response, bad + EOS))
    return out


def read_preference_file(path: str | Path) -> list[tuple[str, str, str]]:
    """Preference pairs from a JSON-lines file, one ``{"prompt", "chosen", "rejected"}`` object
    (strings) per line; a malformed line is one error that names its number."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"Cannot read preference file {str(path)!r} ({e}).") from None
    out = []
    alphabet = set(PYSTDLIB_ALPHABET)
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row: Any = json.loads(line)
        except json.JSONDecodeError:
            row = None
        keys = ("prompt", "chosen", "rejected")
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in keys):
            raise DataError(
                f"Line {i} of preference file {str(path)!r} is not a JSON object with string "
                'fields "prompt", "chosen" and "rejected".'
            )
        text = row["prompt"] + row["chosen"] + row["rejected"]
        if not set(text) <= alphabet or not row["chosen"] or not row["rejected"]:
            raise DataError(
                f"Line {i} of preference file {str(path)!r} has an empty response or a character "
                "outside the tokenizer's alphabet (printable ASCII, tab, newline)."
            )
        out.append((row["prompt"], row["chosen"], row["rejected"]))
    if not out:
        raise DataError(f"Preference file {str(path)!r} holds no pairs.")
    return out


# --- token tensors for the Trainer ---------------------------------------------------------------


def task_info(name: str, length: int) -> DataInfo:
    """A text ``DataInfo`` over the shared character vocabulary (97 tokens)."""
    return DataInfo(name=name, kind="text", shape=(length,), levels=len(PYSTDLIB_ALPHABET))


def _pad(seqs: Sequence[Sequence[int]], length: int) -> Tensor:
    out = torch.zeros(len(seqs), length, dtype=torch.long)  # pads with token 0, EOS (masked)
    for i, row in enumerate(seqs):
        out[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
    return out


def encode_pair(prompt: str, response: str) -> tuple[list[int], list[int]]:
    """Token ids of ``prompt + response`` and the response mask (1 on the response's tokens,
    the ones the loss sees), as lists of length ``len(prompt) + len(response)``."""
    ids = tokenizer().encode(prompt + response).tolist()
    return ids, [0] * len(prompt) + [1] * len(response)


class PackedSFT(Dataset):
    """SFT examples packed into windows of ``block`` tokens: whole examples side by side (never
    cut), the rest padded; ``x`` ``(N, block)`` and ``mask`` ``(N, block)`` (True on response
    tokens). A window starts after the start token, as a text GPT's windows do."""

    def __init__(self, name: str, pairs: Sequence[tuple[str, str]], block: int) -> None:
        windows: list[list[int]] = [[]]
        masks: list[list[int]] = [[]]
        for prompt, response in pairs:
            t, m = encode_pair(prompt, response)
            if len(t) > block:
                raise DataError(f"An example of {len(t)} tokens does not fit block {block}.")
            if len(windows[-1]) + len(t) > block:
                windows.append([])
                masks.append([])
            windows[-1].extend(t)
            masks[-1].extend(m)
        super().__init__(task_info(name, block), _pad(windows, block))
        self.mask = _pad(masks, block).bool()

    def extra(self, idx: Tensor, **kw: Any) -> dict[str, Tensor]:
        return {"mask": self.mask[idx.cpu()].to(idx.device)}


class PairData(Dataset):
    """Preference pairs: ``x`` = prompt + chosen ``(N, L)``, ``rejected`` = prompt + rejected,
    and their response masks ``mask`` / ``rejected_mask``; right-padded (causal: padding never
    changes the log-probabilities of the tokens before it)."""

    def __init__(self, name: str, pairs: Sequence[tuple[str, str, str]]) -> None:
        enc_c = [encode_pair(p, c) for p, c, _ in pairs]
        enc_r = [encode_pair(p, r) for p, _, r in pairs]
        length = max(len(t) for t, _ in enc_c + enc_r)
        super().__init__(task_info(name, length), _pad([t for t, _ in enc_c], length))
        self.mask = _pad([m for _, m in enc_c], length).bool()
        self.rejected = _pad([t for t, _ in enc_r], length)
        self.rejected_mask = _pad([m for _, m in enc_r], length).bool()

    def extra(self, idx: Tensor, **kw: Any) -> dict[str, Tensor]:
        i = idx.cpu()
        return {
            k: v[i].to(idx.device)
            for k, v in (
                ("mask", self.mask),
                ("rejected", self.rejected),
                ("rejected_mask", self.rejected_mask),
            )
        }


class PromptData(Dataset):
    """Prompts of one task and difficulty (all of one length): ``x`` ``(N, P)`` token ids; the
    rewards come from the task's verifier."""

    def __init__(self, name: str, prompts: Sequence[str]) -> None:
        tok = tokenizer()
        enc = [tok.encode(p) for p in prompts]
        if len({t.numel() for t in enc}) != 1:
            raise DataError("The prompts of a GRPO batch must all have one length.")
        super().__init__(task_info(name, enc[0].numel()), torch.stack(enc))


def parse_task_spec(spec: str) -> tuple[str, int]:
    """``"task:addition?digits=2"`` -> ``("addition", 2)`` (digits default 2)."""
    body = spec.removeprefix("task:")
    name, _, query = body.partition("?")
    digits = 2
    for part in filter(None, query.split("&")):
        key, _, val = part.partition("=")
        if key != "digits" or not val.isdigit():
            raise DataError(f"Unknown option {part!r} of {spec!r}; the only one is digits=<n>.")
        digits = int(val)
    check_task(name, digits)
    return name, digits


TASK_TEXT_PROBLEMS = {"train": 20_000, "test": 500}  # problems in a task's pre-training text
TASK_BLOCK = 64  # tokens per window of a task's pre-training text


def task_text_info(spec: str) -> DataInfo:
    parse_task_spec(spec)
    return task_info(spec, TASK_BLOCK)


def load_task_text(spec: str, split: str) -> PackedSFT:
    """``task:<name>?digits=<d>``: a task's problems and answers as plain text windows (for
    pre-training a base GPT on the task's language; the mask is not used by ``gpt``)."""
    task, digits = parse_task_spec(spec)
    pairs = sft_examples(task, digits, split, TASK_TEXT_PROBLEMS[split], seed=1)
    return PackedSFT(spec, pairs, TASK_BLOCK)
