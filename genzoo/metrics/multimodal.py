"""Multimodal metrics: retrieval recall@k, caption attributes against the truth, BLEU.

- :func:`recall_at_k`: the fraction of queries with a relevant item among the k most similar
  (image -> text and text -> image retrieval, as in CLIP, arXiv:2103.00020, Table 13).
- :func:`parse_caption` / :func:`caption_matches`: read the objects (size, colour, shape), the
  position and the relation out of a ``shapes`` caption and compare them with a scene's
  attributes: the caption is an exact match when everything it says is true and it names exactly
  the objects of the image (they live with the captions, :mod:`genzoo.data.captions`, and are
  re-exported here).
- :func:`bleu`: corpus BLEU (Papineni et al. 2002) with several references per caption, computed
  by ``sacrebleu`` (Post, arXiv:1804.08771) so the number is the standard one.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from genzoo.core.errors import ConfigError
from genzoo.data.captions import ParsedCaption, ParsedObject, caption_matches, parse_caption


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
