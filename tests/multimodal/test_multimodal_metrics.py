"""Retrieval recall@k against scikit-learn, caption parsing by hand, BLEU against sacrebleu."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import top_k_accuracy_score

from genzoo.data import captions
from genzoo.data import shapes as sh
from genzoo.metrics.multimodal import bleu, caption_matches, parse_caption, recall_at_k


def test_recall_at_k_equals_sklearn_top_k_accuracy() -> None:
    g = torch.Generator().manual_seed(0)
    sim = torch.randn(50, 50, generator=g, dtype=torch.float64) + 2 * torch.eye(50)
    got = recall_at_k(sim, torch.eye(50, dtype=torch.bool), ks=(1, 5, 10))
    for k in (1, 5, 10):
        ref = top_k_accuracy_score(range(50), sim.numpy(), k=k, labels=range(50))
        assert got[k] == pytest.approx(ref)
    assert got[1] <= got[5] <= got[10]
    # several relevant items: a hit on any of them counts
    rel = torch.zeros(3, 4, dtype=torch.bool)
    rel[0, 3] = rel[1, 1] = rel[1, 2] = rel[2, 0] = True
    s = torch.tensor([[4.0, 3, 2, 1], [4.0, 3, 2, 1], [1.0, 2, 3, 4]])
    assert recall_at_k(s, rel, ks=(1, 2, 4)) == {1: 0.0, 2: pytest.approx(1 / 3), 4: 1.0}


def test_parse_caption_by_hand() -> None:
    p = parse_caption("a small red circle to the left of an orange cross")
    assert [(o.shape, o.colour, o.size) for o in p.objects] == [
        (sh.SHAPES.index("circle"), sh.COLOUR_NAMES.index("red"), 0),
        (sh.SHAPES.index("cross"), sh.COLOUR_NAMES.index("orange"), None),
    ]
    assert p.relation == sh.RELATIONS.index("left of") and p.position is None
    q = parse_caption("a large blue triangle in the top left")
    assert q.position == sh.POSITIONS.index("top left") and q.relation is None
    assert parse_caption("there is a green diamond at the top").position == 1


def test_caption_parsing_lives_with_the_captions_and_is_re_exported() -> None:
    assert caption_matches is captions.caption_matches and parse_caption is captions.parse_caption


def test_caption_matches() -> None:
    # one object: a small (0) red (0) circle (0) in the top left (0)
    one = [[0, 0, 0, 0], [-1, -1, -1, -1]]
    assert caption_matches("a red circle", one, -1)
    assert caption_matches("a small red circle in the top left", one, -1)
    assert not caption_matches("a large red circle", one, -1)  # wrong size
    assert not caption_matches("a red circle on the right", one, -1)  # wrong place
    assert not caption_matches("a blue circle", one, -1)
    assert not caption_matches("a circle", one, -1)  # the colour must be named
    assert not caption_matches("a red circle and a red circle", one, -1)
    # two objects: red circle left of (0) a blue (4) square (1)
    two = [[0, 0, 0, 0], [1, 4, 1, 2]]
    assert caption_matches("a red circle to the left of a blue square", two, 0)
    assert caption_matches("a blue square to the right of a red circle", two, 0)  # converse
    assert caption_matches("a blue square and a red circle", two, 0)
    assert not caption_matches("a red circle to the right of a blue square", two, 0)
    assert not caption_matches("a red circle", two, 0)


def test_bleu_equals_sacrebleu_and_ignores_padding_of_references() -> None:
    sacrebleu = pytest.importorskip("sacrebleu")
    hyps = ["a red circle in the middle", "there is a blue square", "a small green cross"]
    refs = [
        ["a red circle on the left", "a small red circle", "a red circle"],
        ["a blue square", "a large blue square", "there is a blue square at the top"],
        ["a small green cross in the centre", "a green cross", "there is a green cross"],
    ]
    ours = bleu(hyps, refs)
    streams = [[r[j] for r in refs] for j in range(3)]  # sacrebleu: one stream per reference
    assert ours == pytest.approx(sacrebleu.corpus_bleu(hyps, streams).score)
    assert 0 < ours < 100
    # fewer references for some captions: padding by repetition changes nothing
    short = [refs[0][:1], refs[1], refs[2][:2]]
    assert bleu(hyps, short) == pytest.approx(bleu(hyps, [r + r[:1] * 3 for r in short]))
    assert bleu(["a red circle"], [["a red circle"]]) == pytest.approx(
        sacrebleu.corpus_bleu(["a red circle"], [["a red circle"]]).score
    )
