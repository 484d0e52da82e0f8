"""Image captioning with an image-prefix GPT: the image encoder's tokens are a prefix of the
decoder's input, and a decoder-only transformer continues it with the caption.

The prefix idea of ClipCap (Mokady, Hertz & Bermano, arXiv:2111.09734): a grid of image features
``(B, N, C)`` (:class:`~genzoo.nn.encoders.ImageEncoder`) is mapped linearly into the decoder's
width and placed before ``[BOS] w_1 .. w_n [EOS]``; the GPT of Radford et al. (2019) — the same
causal pre-LN :class:`~genzoo.nn.transformer.Transformer` and tied read-out as
:class:`~genzoo.models.autoregressive.gpt.GPT` — models
``log p(w | image) = sum_i log p(w_i | image, w_<i)`` and is trained end to end (encoder
included) on the caption tokens only (the prefix positions have no targets).

Decoding (:meth:`Captioner.generate`), all with a KV cache so each new token costs one position:

- ``greedy``: the most likely token at each step;
- ``beam``: beam search keeping the ``beam_size`` most likely partial captions, finished ones
  scored by ``log p / length^length_penalty`` (Wu et al., arXiv:1609.08144, Sec. 7, with
  ``lp = length^alpha``);
- ``top_k``: sampling from the ``top_k`` most likely tokens at ``temperature`` (Fan et al.,
  arXiv:1805.04833, Sec. 5.4), reproducible with a generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError, choices
from genzoo.core.protocol import Batch, LossOutput, check_images
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.data.captions import MAX_LEN, caption_matches, class_word
from genzoo.models.autoregressive.sampling import sample_logits
from genzoo.models.multimodal.base import MultimodalModel
from genzoo.nn.transformer import KVCache, Transformer, init_gpt_weights

DECODINGS = ("greedy", "beam", "top_k")


@dataclass(frozen=True)
class CaptionerConfig(Config):
    """Configuration of :class:`Captioner` (defaults fit 32x32 ``shapes`` on a CPU)."""

    width: int = bounded(32, ge=1)  # channels of the image encoder's first stage
    n_embd: int = bounded(128, ge=1)  # width of the decoder's residual stream
    n_layer: int = bounded(3, ge=1)  # decoder blocks
    n_head: int = bounded(4, ge=1)  # attention heads per block
    dropout: float = bounded(0.1, ge=0.0, lt=1.0)  # dropout in the decoder
    decoding: Literal["greedy", "beam", "top_k"] = "greedy"  # default decoding of captions
    beam_size: int = bounded(4, ge=1)  # beams of beam search
    length_penalty: float = 0.0  # beam search ranks log p / length^alpha (0: plain log p)
    top_k: int = bounded(5, ge=1)  # candidates of top-k sampling
    temperature: float = bounded(1.0, ge=0.0)  # temperature of top-k sampling

    def validate(self) -> None:
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"n_embd = {self.n_embd} must be divisible by n_head = {self.n_head}."
            )


@register_model("captioner")
class Captioner(MultimodalModel):
    """Image-prefix GPT captioner: greedy, beam and top-k decoding of captions."""

    config_class: ClassVar[type[Config]] = CaptionerConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 64, "warmup": 100}
    config: CaptionerConfig

    def __init__(self, config: CaptionerConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.n_prefix = self.image_encoder.grid**2
        self.block_size = self.n_prefix + MAX_LEN
        self.prefix_proj = nn.Linear(self.image_encoder.out_dim, c.n_embd)
        self.tok_emb = nn.Embedding(self.vocab_size, c.n_embd)
        self.pos_emb = nn.Embedding(self.block_size, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.transformer = Transformer(
            c.n_layer, c.n_embd, c.n_head, c.dropout, max_len=self.block_size
        )
        for m in (self.tok_emb, self.pos_emb, self.prefix_proj):
            init_gpt_weights(m)

    # --- the network ------------------------------------------------------------------------------
    def prefix(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` -> prefix embeddings ``(B, N, n_embd)`` (with positions)."""
        p = self.prefix_proj(self.image_encoder(x).tokens)  # (B, N, E)
        return p + self.pos_emb(torch.arange(self.n_prefix, device=x.device))

    def _tokens(self, tok: Tensor, start: int) -> Tensor:
        """Token embeddings ``(B, T, E)`` at positions ``start ..`` of the sequence."""
        pos = torch.arange(start, start + tok.shape[1], device=tok.device)
        return self.tok_emb(tok) + self.pos_emb(pos)

    def _logits(self, h: Tensor, cache: KVCache | None = None) -> Tensor:
        """Input embeddings ``(B, T, E)`` -> next-token logits ``(B, T, V)`` (tied read-out)."""
        return F.linear(self.transformer(self.drop(h), cache), self.tok_emb.weight)

    def forward(self, x: Tensor, tokens: Tensor) -> Tensor:
        """Logits ``(B, L, V)`` of the next caption token after each of ``tokens`` ``(B, L)``
        (``tokens`` start with ``[BOS]``), given the images ``x``."""
        h = torch.cat([self.prefix(x), self._tokens(tokens, self.n_prefix)], dim=1)  # (B, N+L, E)
        return self._logits(h)[:, self.n_prefix :]  # (B, L, V): the text positions

    def token_nll(self, x: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """``-log p(w_i | image, w_<i)`` ``(B, L-1)`` of every caption token after ``[BOS]``
        (``[EOS]`` included) and the mask ``(B, L-1)`` of real (not padding) targets."""
        logits = self.forward(x, tokens[:, :-1])  # (B, L-1, V)
        tgt = tokens[:, 1:]  # (B, L-1)
        nll = F.cross_entropy(logits.float().transpose(1, 2), tgt, reduction="none")
        return nll, tgt != self.tokenizer.pad_id

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """Mean cross-entropy per caption token (padding excluded), in nats."""
        nll, mask = self.token_nll(batch["x"], self.batch_text(batch))
        loss = (nll * mask).sum() / mask.sum()  # the one reduction
        return LossOutput(loss, {"nll_token": loss.detach()})

    # --- decoding ---------------------------------------------------------------------------------
    def _start(self, x: Tensor) -> tuple[Tensor, KVCache]:
        """Run prefix + ``[BOS]`` through a fresh cache: logits ``(B, V)`` of the first word."""
        cache = self.transformer.new_cache(self.block_size)
        bos = torch.full((x.shape[0], 1), self.tokenizer.bos_id, device=x.device)
        h = torch.cat([self.prefix(x), self._tokens(bos, self.n_prefix)], dim=1)
        return self._logits(h, cache)[:, -1], cache

    def _step(self, tok: Tensor, cache: KVCache) -> Tensor:
        """Feed one token per row ``(B,)``; logits ``(B, V)`` of the next."""
        return self._logits(self._tokens(tok[:, None], cache.length), cache)[:, -1]

    @torch.no_grad()
    def generate(
        self,
        x: Tensor,
        method: str | None = None,
        *,
        max_len: int = MAX_LEN - 1,
        beam_size: int | None = None,
        top_k: int | None = None,
        temperature: float | None = None,
        length_penalty: float | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Caption tokens ``(B, T)`` (words, then ``[EOS]``, then padding; no ``[BOS]``) of images
        ``x`` by ``method`` (default: the config's ``decoding``); ``T <= max_len``."""
        c = self.config
        method = method or c.decoding
        if method not in DECODINGS:
            raise ConfigError(f"Decoding {method!r} is not known; choose {choices(DECODINGS)}.")
        for name, value, owner in (("beam_size", beam_size, "beam"), ("top_k", top_k, "top_k")):
            if value is not None and value < 1:  # 0 would read as the config's value below
                raise ConfigError(f"{name} = {value} must be at least 1.")
            if value is not None and method != owner:
                raise ConfigError(
                    f"{name} is an option of decoding {owner!r}, not of {method!r}; "
                    f"choose --method {owner} to use it."
                )
        max_len = min(max_len, MAX_LEN - 1)
        if method == "beam":
            return self._beam(
                x,
                beam_size or c.beam_size,
                max_len,
                c.length_penalty if length_penalty is None else length_penalty,
            )
        temp = (
            0.0 if method == "greedy" else (c.temperature if temperature is None else temperature)
        )
        k = 0 if method == "greedy" else (top_k or c.top_k)
        pad, eos = self.tokenizer.pad_id, self.tokenizer.eos_id
        logits, cache = self._start(x)
        done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        out = []
        for _ in range(max_len):
            tok = sample_logits(logits, temperature=temp, top_k=k, generator=generator)  # (B,)
            tok = torch.where(done, torch.full_like(tok, pad), tok)
            out.append(tok)
            done = done | (tok == eos)
            if bool(done.all()) or cache.length >= self.block_size:
                break
            logits = self._step(tok, cache)
        return torch.stack(out, 1)

    def _beam(self, x: Tensor, k: int, max_len: int, alpha: float) -> Tensor:
        """Beam search with ``k`` beams per image; finished beams keep their score and are ranked
        by ``log p / length^alpha``."""
        b = x.shape[0]
        pad, eos = self.tokenizer.pad_id, self.tokenizer.eos_id
        logits, cache = self._start(x.repeat_interleave(k, 0))  # (B*k, V)
        v = logits.shape[-1]
        score = torch.full((b, k), float("-inf"), device=x.device)
        score[:, 0] = 0.0  # all beams start equal: keep one
        seqs = torch.zeros(b * k, 0, dtype=torch.long, device=x.device)
        done = torch.zeros(b * k, dtype=torch.bool, device=x.device)
        length = torch.zeros(b * k, device=x.device)
        for _ in range(max_len):
            logp = logits.float().log_softmax(-1)  # (B*k, V)
            stay = torch.full_like(logp, float("-inf"))
            stay[:, pad] = 0.0  # a finished beam continues with padding at no cost
            logp = torch.where(done[:, None], stay, logp)
            cand = (score.view(b * k, 1) + logp).view(b, k * v)  # (B, k*V)
            score, flat = cand.topk(k, dim=1)  # (B, k)
            origin = (flat // v + torch.arange(b, device=x.device)[:, None] * k).view(-1)  # (B*k,)
            tok = (flat % v).view(-1)  # (B*k,)
            seqs = torch.cat([seqs[origin], tok[:, None]], 1)
            length = length[origin] + (~done[origin]).float()
            done = done[origin] | (tok == eos)
            for layer in cache.layers:  # follow the surviving beams
                assert layer.k is not None and layer.v is not None
                layer.k, layer.v = layer.k[origin], layer.v[origin]
            if bool(done.all()) or cache.length >= self.block_size:
                break
            logits = self._step(tok, cache)
        ranked = score.view(-1) / length.clamp_min(1.0) ** alpha  # (B*k,)
        best = ranked.view(b, k).argmax(1) + torch.arange(b, device=x.device) * k  # (B,)
        return seqs[best]

    @torch.no_grad()
    def caption(self, x: Tensor, method: str | None = None, **options: Any) -> list[str]:
        """Captions of images ``x`` ``(B, C, H, W)`` as text (images of another shape, or
        with NaN values, are one sentence)."""
        check_images(self, x, "images", finite=True)
        return self.tokenizer.decode_batch(self.generate(x, method, **options).cpu())

    # --- evaluation -------------------------------------------------------------------------------
    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per image: ``nll_token`` (nats per caption token) and ``attr_match`` (the greedy
        caption states the image's attributes exactly; for labelled sets: names its class)."""
        nll, mask = self.token_nll(batch["x"], self.batch_text(batch, generator))
        per = (nll * mask).sum(1) / mask.sum(1)
        texts = self.caption(batch["x"], "greedy")
        return {"nll_token": per, "attr_match": attribute_match(texts, batch, self.info)}


def attribute_match(texts: list[str], batch: Batch, info: DataInfo) -> Tensor:
    """``(B,)`` floats: 1 where a caption is an exact description of its image (``shapes``:
    :func:`~genzoo.data.captions.caption_matches`), or names its class (labelled sets)."""
    if "attrs" in batch:
        attrs, rel = batch["attrs"].cpu(), batch["relation"].cpu()
        ok = [caption_matches(t, attrs[i], int(rel[i])) for i, t in enumerate(texts)]
    else:
        words = [class_word(info.class_names[int(c)]) for c in batch["y"].cpu()]
        ok = [f" {w} " in f" {t} " for t, w in zip(texts, words, strict=True)]
    return torch.tensor(ok, dtype=torch.float32, device=batch["x"].device)
