"""Text data: a small corpus that every machine has, and tokenizers.

``pystdlib`` is Python source code from the standard library of the Python that runs genzoo: the
public top-level modules (``<stdlib>/*.py`` not starting with ``_``) in sorted file-name order,
keeping only files written entirely in the 97-symbol alphabet ``"\\n", "\\t"`` and printable ASCII,
joined by a blank line and cut at :data:`PYSTDLIB_CHARS` characters. Nothing is downloaded; the
text is the same on every machine with the same Python version (:func:`corpus_fingerprint` says
which text a run saw). The first 90% is the train split, the last 10% the test split.

Tokenizers:

- :class:`CharTokenizer`: one token per character of a fixed alphabet (for ``pystdlib`` the alphabet
  above, so token 0 is the newline and nothing needs storing with a run);
- :class:`BPETokenizer`: byte-level BPE (Sennrich et al., arXiv:1508.07909) trained on the train
  split with the Hugging Face ``tokenizers`` library, when it is installed.

``load_text("pystdlib", split, block_size=128)`` returns a :class:`TextDataset`: the split's token
stream cut into windows of ``block_size`` tokens (one example each), stored as ``x``
``(N, block_size)`` long. Its :class:`DataInfo` has ``kind="text"``, ``shape=(block_size,)`` and
``levels`` = the vocabulary size (the number of values each position takes), so bits/dim of a
model's exact ``log_prob`` are bits per token.
"""

from __future__ import annotations

import functools
import hashlib
import sysconfig
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from genzoo.core.errors import ConfigError, DataError, choices
from genzoo.data.base import DataInfo, Dataset

PYSTDLIB_ALPHABET = "\n\t" + "".join(chr(i) for i in range(32, 127))  # 97 symbols, "\n" = 0
PYSTDLIB_CHARS = 600_000  # characters of the pystdlib corpus (train + test)
TEST_FRACTION = 0.1  # the last 10% of the corpus is the test split
TEXT_CORPORA = ("pystdlib",)
TOKENIZERS = ("char", "bpe")


class CharTokenizer:
    """Characters <-> token ids over a fixed alphabet (id = position in ``alphabet``)."""

    def __init__(self, alphabet: str) -> None:
        if len(set(alphabet)) != len(alphabet):
            raise ValueError("the alphabet of a CharTokenizer must not repeat characters")
        self.alphabet = alphabet
        self._ids = {ch: i for i, ch in enumerate(alphabet)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The sorted characters of ``text`` as the alphabet."""
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet)

    def encode(self, text: str) -> Tensor:
        """``str -> (N,)`` long token ids; characters outside the alphabet are an error."""
        try:
            return torch.tensor([self._ids[ch] for ch in text], dtype=torch.long)
        except KeyError as e:
            raise DataError(
                f"Character {e.args[0]!r} is not in the tokenizer's alphabet."
            ) from None

    def decode(self, tokens: Tensor | list[int]) -> str:
        """Token ids ``(N,)`` -> text."""
        ids = tokens.tolist() if isinstance(tokens, Tensor) else tokens
        return "".join(self.alphabet[int(i)] for i in ids)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "char", "alphabet": self.alphabet}


class BPETokenizer:
    """Byte-level BPE (arXiv:1508.07909) from the ``tokenizers`` library (``pip install
    tokenizers``), trained on a text; :meth:`to_dict` / :meth:`from_dict` round-trip it as JSON."""

    def __init__(self, tokenizer: Any) -> None:
        self.tok = tokenizer

    @staticmethod
    def _lib() -> Any:
        try:
            import tokenizers
        except ImportError:
            raise ConfigError(
                "tokenizer = 'bpe' needs the 'tokenizers' package (pip install tokenizers); "
                "or use tokenizer = 'char'."
            ) from None
        return tokenizers

    @classmethod
    def train(cls, text: str, vocab_size: int = 512) -> BPETokenizer:
        """Learn ``vocab_size`` tokens (the 256 bytes and merges) from ``text``."""
        lib = cls._lib()
        tok = lib.Tokenizer(lib.models.BPE())
        tok.pre_tokenizer = lib.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = lib.decoders.ByteLevel()
        trainer = lib.trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=lib.pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(text.split("\n\n"), trainer=trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return int(self.tok.get_vocab_size())

    def encode(self, text: str) -> Tensor:
        return torch.tensor(self.tok.encode(text).ids, dtype=torch.long)

    def decode(self, tokens: Tensor | list[int]) -> str:
        ids = tokens.tolist() if isinstance(tokens, Tensor) else list(tokens)
        return str(self.tok.decode([int(i) for i in ids]))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "bpe", "json": self.tok.to_str()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BPETokenizer:
        return cls(cls._lib().Tokenizer.from_str(d["json"]))


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in root.glob("*.py") if not p.name.startswith("_"))


@functools.lru_cache(maxsize=2)
def pystdlib_text(max_chars: int = PYSTDLIB_CHARS) -> str:
    """The pystdlib corpus: ``max_chars`` characters of standard-library source (see module doc)."""
    allowed = set(PYSTDLIB_ALPHABET)
    parts: list[str] = []
    total = 0
    for path in _stdlib_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if not text or not set(text) <= allowed:
            continue
        parts.append(text.rstrip("\n") + "\n\n")
        total += len(parts[-1])
        if total >= max_chars:
            break
    corpus = "".join(parts)[:max_chars]
    if len(corpus) < 10_000:
        raise DataError(
            "The Python standard library sources were not found, so 'text:pystdlib' is unavailable."
        )
    return corpus


def corpus_fingerprint(name: str = "pystdlib") -> str:
    """SHA-256 (first 16 hex digits) of a corpus: which text a run was trained on."""
    _check_name(name)
    return hashlib.sha256(pystdlib_text().encode()).hexdigest()[:16]


def _check_name(name: str) -> None:
    if name not in TEXT_CORPORA:
        raise DataError(
            f"Unknown text corpus {name!r}; choose {choices(f'text:{c}' for c in TEXT_CORPORA)}."
        )


def split_text(text: str, split: str) -> str:
    """The train (first 90%) or test (last 10%) part of ``text``."""
    cut = int(len(text) * (1.0 - TEST_FRACTION))
    if split == "train":
        return text[:cut]
    if split == "test":
        return text[cut:]
    raise DataError(f"Unknown split {split!r} of a text corpus; choose 'test' or 'train'.")


@functools.lru_cache(maxsize=4)
def get_tokenizer(
    name: str = "pystdlib", tokenizer: Literal["char", "bpe"] = "char", vocab_size: int = 512
) -> CharTokenizer | BPETokenizer:
    """The tokenizer of corpus ``name``: the fixed character alphabet, or BPE learned on its train
    split (deterministic, cached)."""
    _check_name(name)
    if tokenizer == "char":
        return CharTokenizer(PYSTDLIB_ALPHABET)
    if tokenizer == "bpe":
        return BPETokenizer.train(split_text(pystdlib_text(), "train"), vocab_size)
    raise ConfigError(f"tokenizer = {tokenizer!r} is not valid; choose {choices(TOKENIZERS)}.")


def tokenizer_of(info: DataInfo) -> CharTokenizer | BPETokenizer:
    """The tokenizer of a text dataset's token ids (``text:<corpus>[?tokenizer=bpe]``; the task
    texts ``task:...`` share pystdlib's character alphabet)."""
    name = info.name.removeprefix("text:")
    kind: Literal["char", "bpe"] = "bpe" if "tokenizer=bpe" in name else "char"
    return get_tokenizer("pystdlib" if name.startswith("task:") else name.split("?")[0], kind)


def text_info(
    name: str = "pystdlib",
    block_size: int = 128,
    tokenizer: Literal["char", "bpe"] = "char",
    vocab_size: int = 512,
) -> DataInfo:
    """What a text dataset declares: ``kind="text"``, ``shape=(block_size,)``, ``levels`` =
    vocabulary size. (The char vocabulary is fixed, so this needs no data for ``"char"``.)"""
    _check_name(name)
    vocab = (
        len(PYSTDLIB_ALPHABET)
        if tokenizer == "char"
        else get_tokenizer(name, tokenizer, vocab_size).vocab_size
    )
    spec = f"text:{name}" if tokenizer == "char" else f"text:{name}?tokenizer=bpe"
    return DataInfo(
        name=spec,
        kind="text",
        shape=(block_size,),
        levels=vocab,
    )


class TextDataset(Dataset):
    """Token windows ``x`` ``(N, block_size)`` long of one split; ``tokens`` is the whole split's
    stream ``(n_tokens,)`` and ``tokenizer`` turns ids back into text."""

    def __init__(
        self, info: DataInfo, tokens: Tensor, tokenizer: CharTokenizer | BPETokenizer, stride: int
    ) -> None:
        window = info.shape[0]
        if tokens.numel() < window:
            raise DataError(f"{info.name!r} has only {tokens.numel()} tokens, fewer than {window}.")
        starts = torch.arange(0, tokens.numel() - window + 1, stride)
        x = tokens[starts[:, None] + torch.arange(window)[None]]  # (N, window)
        super().__init__(info, x, None)
        self.tokens = tokens
        self.tokenizer = tokenizer


def load_text(
    name: str = "pystdlib",
    split: str = "train",
    *,
    block_size: int = 128,
    stride: int | None = None,
    tokenizer: Literal["char", "bpe"] = "char",
    vocab_size: int = 512,
) -> TextDataset:
    """Split ``split`` of corpus ``name`` as windows of ``block_size`` tokens every ``stride``
    tokens (default ``block_size``: windows side by side, each token in one window)."""
    if block_size < 1:
        raise ConfigError(f"block_size = {block_size} must be >= 1.")
    info = text_info(name, block_size, tokenizer, vocab_size)
    tok = get_tokenizer(name, tokenizer, vocab_size)
    tokens = tok.encode(split_text(pystdlib_text(), split))  # (n_tokens,)
    return TextDataset(info, tokens, tok, stride or block_size)
