"""What genzoo holds, as ``genzoo list`` prints it: models (family, likelihood, the first sentence
of the docstring), datasets and samplers."""

from __future__ import annotations

import re

from genzoo.core.protocol import likelihood_kind
from genzoo.data import list_datasets
from genzoo.diffusion.samplers import SAMPLERS
from genzoo.models import MODELS

_ABBREVIATIONS = ("al", "e.g", "i.e", "eq", "eqs", "sec", "fig", "cf", "vs", "etc", "approx")
_END = re.compile(r"[.!?](?=\s|$)")


def first_sentence(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph, whole (its lines joined; a full
    stop after an abbreviation such as "et al." or "Eq." does not end it; a paragraph that ends
    in a colon ends there). Double backquotes become single ones."""
    para = (doc or "").strip().split("\n\n")[0]
    text = " ".join(para.split()).replace("``", "`")
    for m in _END.finditer(text):
        word = re.findall(r"[\w.]+$", text[: m.start()])
        if word and word[0].lower() in _ABBREVIATIONS:
            continue
        return text[: m.end()]
    return text.rstrip(":") + ("." if text.endswith(":") else "")


def catalog(what: str = "all") -> list[str]:
    """The lines of ``genzoo list WHAT`` (``all``, ``models``, ``datasets`` or ``samplers``)."""
    lines: list[str] = []
    if what in ("models", "all"):
        lines.append("models:")
        for name in MODELS.names():
            cls = MODELS.get(name)
            doc = first_sentence(cls.__doc__)
            lines.append(
                f"  {name:<16} {cls.family:<14} likelihood: {likelihood_kind(cls):<6} {doc}"
            )
    if what in ("datasets", "all"):
        lines.append("datasets:")
        lines.extend(f"  {name}" for name in list_datasets())
    if what in ("samplers", "all"):
        lines.append("samplers:")
        width = max(len(n) for n in SAMPLERS) + 1
        lines.extend(f"  {n:<{width}} {first_sentence(fn.__doc__)}" for n, fn in SAMPLERS.items())
    return lines
