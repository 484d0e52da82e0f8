"""Procedural tasks: exact verifiers, disjoint splits, preference pairs, packing, bad files."""

from __future__ import annotations

import json

import pytest

from genzoo.core.errors import DataError
from genzoo.data import tasks


@pytest.mark.parametrize("task", tasks.TASKS)
def test_verifier_matches_an_independent_solution(task: str) -> None:
    for p in tasks.problems(task, 3, "train", 100, seed=4):
        q = p.question
        if task == "addition":
            a, b = q.split("+")
            want = str(int(a) + int(b))
        elif task == "subtraction":
            a, b = q.split("-")
            want = str(int(a) - int(b))
            assert int(want) >= 0
        elif task == "reverse":
            want = "".join(reversed(q[4:]))
        elif task == "sort":
            want = "".join(map(str, sorted(int(c) for c in q[5:])))
        else:
            _, ch, word = q.split(" ")
            want = str(sum(c == ch for c in word))
        assert p.answer == want
        assert tasks.reward(task, q, p.response) == 1.0
        assert tasks.reward(task, q, p.answer + "7\n") == 0.0


def test_addition_difficulty_has_carries() -> None:
    probs = tasks.problems("addition", 3, "train", 400)
    ops = [tuple(map(int, p.question.split("+"))) for p in probs]
    assert all(100 <= a < 1000 and 100 <= b < 1000 for a, b in ops)
    assert any((a % 10) + (b % 10) >= 10 for a, b in ops)  # carries occur
    assert any(a + b >= 1000 for a, b in ops)  # and a carry into a new digit


@pytest.mark.parametrize("task", ["addition", "reverse"])
def test_train_val_and_test_are_disjoint_by_construction(task: str) -> None:
    test = {p.question for p in tasks.problems(task, 2, "test", 300, seed=0)}
    val = {p.question for p in tasks.problems(task, 2, "val", 300, seed=0)}
    train = {p.question for s in (0, 1) for p in tasks.problems(task, 2, "train", 2000, seed=s)}
    assert len(test) == 300 and len(val) == 300
    assert not test & train and not val & train and not val & test
    assert all(tasks.split_of(q) == "test" for q in test)
    assert all(tasks.split_of(q) == "val" for q in val)
    # about a tenth of all 2-digit additions each (the hash buckets are uniform)
    every = [f"{a}+{b}" for a in range(10, 100) for b in range(10, 100)]
    share = {s: sum(tasks.split_of(q) == s for q in every) / len(every) for s in tasks.SPLITS}
    assert 0.08 < share["test"] < 0.12 and 0.08 < share["val"] < 0.12


def test_skip_leaves_out_the_first_problems_and_every_repeat_of_them() -> None:
    # 2-digit addition has about 6,500 training questions, so 3,000 draws repeat many of the
    # first 300: a plain continuation of the draw would not be fresh
    first = tasks.problems("addition", 2, "train", 300, seed=3)
    later = tasks.problems("addition", 2, "train", 3000, seed=3)[300:]
    assert {p.question for p in first} & {p.question for p in later}
    fresh = tasks.problems("addition", 2, "train", 3000, seed=3, skip=300)
    assert len(fresh) == 3000
    assert not {p.question for p in first} & {p.question for p in fresh}
    assert all(tasks.split_of(p.question) == "train" for p in fresh)
    # the rest of the same draw, in order, with the repeats of the first 300 taken out
    left = {p.question for p in first}
    assert fresh[:100] == [p for p in later if p.question not in left][:100]
    assert tasks.problems("addition", 2, "train", 300, seed=3, skip=0) == first


def test_partial_reward_counts_places_and_is_one_only_when_exact() -> None:
    pr = tasks.partial_reward
    assert pr("addition", "80+77", "157\n") == 1.0
    assert pr("addition", "80+77", "147\n") == pytest.approx(2 / 3)  # tens digit wrong
    assert pr("addition", "80+77", "57\n") == pytest.approx(2 / 3)  # aligned on the units
    assert pr("addition", "80+77", "1157\n") == pytest.approx(3 / 4)  # one digit too many
    assert pr("addition", "80+77", "\n") == 0.0 and pr("addition", "8+", "1") == 0.0
    assert pr("reverse", "rev abc", "cbx") == pytest.approx(2 / 3)  # strings: from the left
    rng = __import__("random").Random(0)
    for p in tasks.problems("addition", 2, "train", 200):
        guess = str(int(p.answer) + rng.choice([0, 0, 1, 10, 90, -5])) + "\n"
        r, part = tasks.reward("addition", p.question, guess), pr("addition", p.question, guess)
        assert 0.0 <= part <= 1.0 and (part == 1.0) == (r == 1.0)


def test_preference_pairs_prefer_the_verified_answer() -> None:
    for task in tasks.TASKS:
        for prompt, chosen, rejected in tasks.preference_pairs(task, 2, "train", 50):
            q = prompt.removesuffix("=")
            assert tasks.reward(task, q, chosen) == 1.0
            assert tasks.reward(task, q, rejected) == 0.0


def test_packing_keeps_examples_whole_and_masks_the_prompts() -> None:
    pairs = tasks.sft_examples("addition", 2, "train", 40)
    data = tasks.PackedSFT("t", pairs, block=32)
    tok = tasks.tokenizer()
    text = "".join(tok.decode(row[m]) for row, m in zip(data.x, data.mask, strict=True))
    assert text == "".join(r for _, r in pairs)  # the masked tokens are exactly the responses
    whole = "".join(tok.decode(row).rstrip("\n") + "\n" for row in data.x)
    assert whole.replace("\n", "") == "".join(p + r for p, r in pairs).replace("\n", "")


def test_malformed_preference_file_names_the_line(tmp_path) -> None:
    good = json.dumps({"prompt": "1+1=", "chosen": "2\n", "rejected": "3\n"})
    path = tmp_path / "pairs.jsonl"
    path.write_text(f"{good}\n{good}\n{{'prompt': 1}}\n")
    with pytest.raises(DataError, match="Line 3"):
        tasks.read_preference_file(path)
    path.write_text(f"{good}\n" + json.dumps({"prompt": "1+1=", "chosen": "2", "rejected": "é"}))
    with pytest.raises(DataError, match="Line 2"):
        tasks.read_preference_file(path)
    path.write_text(good + "\n")
    assert tasks.read_preference_file(path) == [("1+1=", "2\n", "3\n")]
