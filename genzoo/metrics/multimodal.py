"""Multimodal metrics: retrieval recall@k, caption attributes against the truth, BLEU.

- :func:`recall_at_k`: the fraction of queries with a relevant item among the k most similar
  (image -> text and text -> image retrieval, as in CLIP, arXiv:2103.00020, Table 13).
- :func:`parse_caption` / :func:`caption_matches`: read the objects (size, colour, shape), the
  position and the relation out of a ``shapes`` caption and compare them with a scene's
  attributes: the caption is an exact match when everything it says is true and it names exactly
  the objects of the image.
- :func:`bleu`: corpus BLEU (Papineni et al. 2002) with several references per caption, computed
  by ``sacrebleu`` (Post, arXiv:1804.08771) so the number is the standard one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from genzoo.core.errors import ConfigError


def recall_at_k(sim: Tensor, relevant: Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[int, float]:
    """``{k: recall@k}`` for similarities ``sim`` ``(Q, G)`` (queries x gallery) and a boolean
    ``relevant`` ``(Q, G)``: a query counts when one of its ``k`` highest-scoring gallery items is
    relevant. Ties are broken by gallery order (``torch.topk`` is stable on CPU for distinct
    values; exact ties are measure-zero for learned embeddings)."""
    if sim.shape != relevant.shape:
        raise ValueError(f"sim {tuple(sim.shape)} and relevant {tuple(relevant.shape)} differ")
    out = {}
    kmax = min(max(ks), sim.shape[1])
    top = sim.topk(kmax, dim=1).indices  # (Q, kmax)
    hit = relevant.gather(1, top)  # (Q, kmax)
    for k in ks:
        out[k] = float(hit[:, : min(k, kmax)].any(1).float().mean())
    return out


@dataclass(frozen=True)
class ParsedObject:
    shape: int
    colour: int | None
    size: int | None


@dataclass(frozen=True)
class ParsedCaption:
    objects: tuple[ParsedObject, ...]
    position: int | None  # index into POSITIONS, when the caption says where
    relation: int | None  # index into RELATIONS, when it relates two objects


def parse_caption(text: str) -> ParsedCaption:
    """The objects, position and relation a ``shapes`` caption states (words it does not know
    are ignored; an object is a shape word with the size and colour words before it)."""
    from genzoo.data.shapes import (
        COLOUR_NAMES,
        POSITION_PHRASES,
        RELATION_PHRASES,
        SHAPES,
        SIZES,
    )

    words = text.lower().replace("?", " ").replace(".", " ").split()
    objs: list[ParsedObject] = []
    size = colour = None
    for w in words:
        if w in SIZES:
            size = SIZES.index(w)
        elif w in COLOUR_NAMES:
            colour = COLOUR_NAMES.index(w)
        elif w in SHAPES:
            objs.append(ParsedObject(SHAPES.index(w), colour, size))
            size = colour = None
    padded = " " + " ".join(words) + " "
    position = next((i for i, p in enumerate(POSITION_PHRASES) if f" {p} " in padded), None)
    relation = next((i for i, p in enumerate(RELATION_PHRASES) if f" {p} " in padded), None)
    return ParsedCaption(tuple(objs), position, relation)


def _object_ok(p: ParsedObject, attrs: Sequence[int]) -> bool:
    shape, colour, size, _ = (int(a) for a in attrs)
    return (
        p.shape == shape
        and p.colour is not None
        and p.colour == colour
        and (p.size is None or p.size == size)
    )


def caption_matches(text: str, attrs: Tensor | Sequence[Sequence[int]], relation: int) -> bool:
    """Whether ``text`` is an exact description of a scene with attributes ``attrs`` ``(2, 4)``
    (shape, colour, size, position per object; -1 rows for no second object) and ``relation``
    (-1 for one object): it names every object with its right colour and shape (and size, if it
    gives one), and any position or relation it states is right."""
    from genzoo.data.shapes import CONVERSE

    rows = [list(map(int, r)) for r in (attrs.tolist() if isinstance(attrs, Tensor) else attrs)]
    rows = [r for r in rows if r[0] >= 0]
    p = parse_caption(text)
    if len(p.objects) != len(rows):
        return False
    if len(rows) == 1:
        return (
            _object_ok(p.objects[0], rows[0])
            and (p.position is None or p.position == rows[0][3])
            and p.relation is None
        )
    if p.position is not None:
        return False
    forward = all(_object_ok(o, r) for o, r in zip(p.objects, rows, strict=True))
    swapped = all(_object_ok(o, r) for o, r in zip(p.objects, rows[::-1], strict=True))
    return (forward and p.relation in (None, relation)) or (
        swapped and p.relation in (None, CONVERSE[relation])
    )


def bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 in [0, 100] of ``hypotheses`` against a list of references each
    (``references[i]`` are the references of ``hypotheses[i]``), by ``sacrebleu``.

    Reference lists are padded to one length by repeating their first entry, which changes
    nothing: BLEU clips n-gram counts by the maximum over references and picks the closest length.
    """
    try:
        import sacrebleu
    except ImportError:
        raise ConfigError("BLEU needs the 'sacrebleu' package (pip install sacrebleu).") from None
    if len(hypotheses) != len(references):
        raise ValueError("one list of references per hypothesis is needed")
    if not hypotheses:
        return 0.0
    n = max(len(r) for r in references)
    streams = [[r[j] if j < len(r) else r[0] for r in references] for j in range(n)]
    return float(sacrebleu.corpus_bleu(list(hypotheses), streams).score)


def accuracy(pred: Tensor, target: Tensor) -> float:
    """Fraction of equal entries."""
    return float((pred == target).float().mean()) if target.numel() else float("nan")


__all__ = [
    "ParsedCaption",
    "ParsedObject",
    "accuracy",
    "bleu",
    "caption_matches",
    "parse_caption",
    "recall_at_k",
]
