"""Caption text: the tokenizer of genzoo's captioned data, and captions for labelled image sets.

:class:`CaptionTokenizer` is a word-level tokenizer from the Hugging Face ``tokenizers`` library
(lower-cased, split on white space and punctuation), trained on a fixed corpus: captions and
questions of the ``shapes`` train split, every ``shapes`` word, and the class captions of the
labelled image sets (``digits``: "the digit seven", ...); ``moving-shapes`` clips use the same
corpus plus their motion words ("moving left", ..., "moving down"), a vocabulary of its own, so
that the caption models trained before the clips existed keep theirs. The corpus is the same on
every machine and the caption language is closed, so the vocabulary is too;
:meth:`CaptionTokenizer.fingerprint` says which one a model was trained with. Special tokens:
``[PAD] = 0``, ``[BOS] = 1``, ``[EOS] = 2``, ``[UNK] = 3``. A caption of ``n`` words becomes
``[BOS] w_1 .. w_n [EOS]`` and is right-padded with ``[PAD]`` to :data:`MAX_LEN` tokens.

:func:`label_captions` gives captions from class labels for any labelled image set, so the
multimodal models also train on ``digits`` and ``mnist5k`` (their batches carry labels, not text).

:func:`parse_caption` and :func:`caption_matches` read a ``shapes`` caption back (its objects,
position and relation) and check it against a scene's attributes; the captioner scores its own
captions with them and :mod:`genzoo.metrics.multimodal` re-exports them.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genzoo.core.errors import ConfigError, DataError, GenzooWarning
from genzoo.data import shapes as sh
from genzoo.data.images import DIGIT_NAMES
from genzoo.data.video import SHAPE_DIRECTIONS
from genzoo.data.vision import CIFAR10_NAMES, FASHION_NAMES

PAD, BOS, EOS, UNK = "[PAD]", "[BOS]", "[EOS]", "[UNK]"
SPECIALS = (PAD, BOS, EOS, UNK)  # ids 0, 1, 2, 3
MAX_LEN = 24  # tokens of a caption or question, [BOS] and [EOS] included

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGIT_TEMPLATES = ("the digit {w}", "a handwritten {w}", "{a} {w}", "the number {w}")
GENERIC_TEMPLATES = ("{a} {w}", "a picture of {a} {w}", "there is {a} {w}")


def _lib() -> Any:
    try:
        import tokenizers
    except ImportError:
        raise ConfigError(
            "Captions need the 'tokenizers' package (pip install tokenizers)."
        ) from None
    return tokenizers


class CaptionTokenizer:
    """Word-level tokenizer (``tokenizers.models.WordLevel``) with ``[BOS]``/``[EOS]``/``[PAD]``.

    ``encode_batch(texts) -> (B, MAX_LEN)`` long; ``decode(ids) -> str`` stops at ``[EOS]``.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tok = tokenizer
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = (
            int(tokenizer.token_to_id(t)) for t in SPECIALS
        )
        if (self.pad_id, self.bos_id, self.eos_id, self.unk_id) != (0, 1, 2, 3):
            raise ValueError("special tokens must have ids 0..3")

    @classmethod
    def train(cls, texts: Sequence[str]) -> CaptionTokenizer:
        """Learn the vocabulary of ``texts`` (every word that occurs)."""
        lib = _lib()
        tok = lib.Tokenizer(lib.models.WordLevel(unk_token=UNK))
        tok.normalizer = lib.normalizers.Lowercase()
        tok.pre_tokenizer = lib.pre_tokenizers.Whitespace()
        trainer = lib.trainers.WordLevelTrainer(special_tokens=list(SPECIALS), show_progress=False)
        tok.train_from_iterator(list(texts), trainer=trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return int(self.tok.get_vocab_size())

    def fingerprint(self) -> int:
        """A 62-bit hash of the vocabulary (token -> id), stored with models to check it."""
        items = sorted(self.tok.get_vocab().items(), key=lambda kv: kv[1])
        digest = hashlib.sha256(repr(items).encode()).digest()
        return int.from_bytes(digest[:8], "little") >> 2

    def encode(self, text: str) -> list[int]:
        """The word ids of ``text`` (no special tokens)."""
        return list(self.tok.encode(text, add_special_tokens=False).ids)

    def unknown_words(self, texts: Sequence[str]) -> list[str]:
        """The words of ``texts`` outside the vocabulary (each read as ``[UNK]``), in order of
        first appearance, each once."""
        found: dict[str, None] = {}
        encs = self.tok.encode_batch(list(texts), add_special_tokens=False)
        for text, enc in zip(texts, encs, strict=True):
            for i, (a, b) in zip(enc.ids, enc.offsets, strict=True):
                if i == self.unk_id:
                    found.setdefault(text[a:b], None)
        return list(found)

    def warn_unknown_words(self, texts: Sequence[str]) -> None:
        """One :class:`GenzooWarning` naming the words of ``texts`` that become ``[UNK]``."""
        unknown = self.unknown_words(texts)
        if unknown:
            shown = ", ".join(repr(w) for w in unknown[:8]) + (" ..." if len(unknown) > 8 else "")
            warnings.warn(
                f"Prompt words outside the caption vocabulary ({self.vocab_size - 4} words) are "
                f"read as [UNK]: {shown}.",
                GenzooWarning,
                stacklevel=3,
            )

    def encode_batch(self, texts: Sequence[str], max_len: int = MAX_LEN) -> Tensor:
        """``[BOS] words [EOS] [PAD]...`` of each text: ``(B, max_len)`` long."""
        rows = [
            [self.bos_id, *enc.ids, self.eos_id]
            for enc in self.tok.encode_batch(list(texts), add_special_tokens=False)
        ]
        longest = max((len(r) for r in rows), default=0)
        if longest > max_len:
            i = next(i for i, r in enumerate(rows) if len(r) == longest)
            raise DataError(f"Text {texts[i]!r} is {longest} tokens long; at most {max_len} fit.")
        out = np.full((len(rows), max_len), self.pad_id, dtype=np.int64)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
        return torch.from_numpy(out)

    def decode(self, ids: Tensor | Sequence[int]) -> str:
        """Token ids -> text: words up to the first ``[EOS]``, specials dropped; punctuation is
        attached to the word before it ("what colour is the square?")."""
        vals = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        words: list[str] = []
        for i in vals:
            i = int(i)
            if i == self.eos_id:
                break
            if i in (self.pad_id, self.bos_id):
                continue
            w = self.tok.id_to_token(i) or UNK
            if words and not w[0].isalnum() and w != UNK:
                words[-1] += w
            else:
                words.append(w)
        return " ".join(words)

    def decode_batch(self, ids: Tensor) -> list[str]:
        """``(B, T)`` token ids -> B texts."""
        return [self.decode(row) for row in ids]


def caption_corpus(motion: bool = False) -> list[str]:
    """The fixed training corpus of :func:`get_caption_tokenizer` (``motion``: with the motion
    words of ``moving-shapes``)."""
    scenes = sh.make_scenes(2000, seed=sh.SEEDS["train"], split="train")
    rng = np.random.default_rng(0)
    texts = [c for s in scenes for c in s.all_captions()]
    texts += [q for s in scenes for q, _, _ in sh.make_questions(s, rng)]
    words = [*sh.SHAPES, *sh.PLURALS.values(), *sh.COLOUR_NAMES, *sh.SIZES, *sh.POSITIONS,
             *sh.POSITION_PHRASES, *sh.RELATION_PHRASES, *sh.ANSWERS]  # fmt: skip
    texts.append(" ".join(words))
    if motion:  # moving-shapes: "a red circle moving up"
        texts += [f"moving {d}" for d in SHAPE_DIRECTIONS]
    for names in (DIGIT_NAMES, CIFAR10_NAMES, FASHION_NAMES):
        texts += label_caption_texts(names)
    return texts


@functools.lru_cache(maxsize=2)
def get_caption_tokenizer(motion: bool = False) -> CaptionTokenizer:
    """The caption tokenizer, trained once per process on :func:`caption_corpus` (``motion``:
    the ``moving-shapes`` vocabulary, with the motion words)."""
    return CaptionTokenizer.train(caption_corpus(motion))


def class_word(name: str) -> str:
    """A class name as caption words: digits spelled out ("7" -> "seven"), "/" as "or"."""
    if name.isdigit() and len(name) == 1:
        return NUMBER_WORDS[int(name)]
    return name.lower().replace("/", " or ").replace("-", " ")


def _templates(names: Sequence[str]) -> tuple[str, ...]:
    return DIGIT_TEMPLATES if all(n.isdigit() for n in names) else GENERIC_TEMPLATES


def label_caption_texts(names: Sequence[str]) -> list[str]:
    """Every caption of every class: ``len(names) * n_templates`` texts, class-major."""
    out = []
    for n in names:
        w = class_word(n)
        out += [t.format(w=w, a=sh.article(w)) for t in _templates(names)]
    return out


def label_caption_tokens(names: Sequence[str]) -> Tensor:
    """Tokens of :func:`label_caption_texts`: ``(n_classes, n_templates, MAX_LEN)`` long."""
    texts = label_caption_texts(names)
    tok = get_caption_tokenizer().encode_batch(texts)  # (C * K, L)
    return tok.view(len(names), -1, tok.shape[-1])


def label_captions(
    names: Sequence[str], y: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """A caption per label ``y`` ``(B,)`` (a random template each): ``(B, MAX_LEN)`` tokens."""
    if not names:
        raise DataError("Captions from labels need a labelled dataset (class names).")
    table = label_caption_tokens(tuple(names)).to(y.device)  # (C, K, L)
    k = torch.randint(table.shape[1], y.shape, generator=generator, device=y.device)
    return table[y, k]  # (B, L)


# --------------------------------------------------------------------------------------------------
# reading ``shapes`` captions back: what a caption states, and whether it is true of a scene


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
    words = text.lower().replace("?", " ").replace(".", " ").split()
    objs: list[ParsedObject] = []
    size = colour = None
    for w in words:
        if w in sh.SIZES:
            size = sh.SIZES.index(w)
        elif w in sh.COLOUR_NAMES:
            colour = sh.COLOUR_NAMES.index(w)
        elif w in sh.SHAPES:
            objs.append(ParsedObject(sh.SHAPES.index(w), colour, size))
            size = colour = None
    padded = " " + " ".join(words) + " "
    position = next((i for i, p in enumerate(sh.POSITION_PHRASES) if f" {p} " in padded), None)
    relation = next((i for i, p in enumerate(sh.RELATION_PHRASES) if f" {p} " in padded), None)
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
        swapped and p.relation in (None, sh.CONVERSE[relation])
    )
