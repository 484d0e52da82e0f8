"""GPT: a decoder-only transformer language model (Radford et al. 2018/2019: "Improving Language
Understanding by Generative Pre-Training", "Language Models are Unsupervised Multitask Learners"),
written in the spirit of nanoGPT.

A sequence of tokens ``t_1 .. t_T`` gets the exact factorisation
``log p(t) = sum_i log p(t_i | t_<i)``: token embeddings plus learned positions (or rotary
positions, arXiv:2104.09864), pre-LN blocks of causal self-attention (arXiv:1706.03762) and MLPs,
a final LayerNorm and a linear read-out tied to the token embedding (Press & Wolf,
arXiv:1608.05859). Generation keeps a KV cache, so each new token costs one position; it supports
temperature, top-k and nucleus (top-p) sampling.

What the tokens are depends on the data:

- images: the integer levels ``0 .. L-1`` of the sub-pixels in raster order (channels within a
  pixel), after a start token: ``BOS = L``, or the class token ``L + 1 + y`` when
  ``class_conditional``. ``log_prob`` is the exact discrete ``log P(k)`` (``bpd_levels = None``).
- points: each coordinate quantized to one of ``point_bins`` bins over the data's value range,
  after ``BOS``. The model is a density, uniform within each bin:
  ``log p(x) = log P(bins) - D log(width)``.
- text (``kind = "text"``, windows of T tokens cut from a token stream): the tokens themselves
  after ``BOS`` (which reads "a window starts here"); ``log_prob`` is the exact ``log P`` of the
  whole window.

In every case one example of D values is D tokens after a start token, and ``log_prob`` is its
exact log-likelihood, so ``bits/dim = -log_prob / (D ln 2)`` (``bpd_levels = None``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config
from genzoo.core.errors import ConfigError, choices
from genzoo.core.protocol import Batch, GenerativeModel, LossOutput
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand
from genzoo.data.base import DataInfo, levels_to_model, model_to_levels
from genzoo.models.autoregressive.sampling import (
    at_least_float32,
    check_sampling_options,
    sample_logits,
)
from genzoo.nn.transformer import KVCache, Transformer, init_gpt_weights

SAMPLE_OPTIONS = ("temperature", "top_k", "top_p", "prompt", "length")


@dataclass(frozen=True)
class GPTConfig(Config):
    """Configuration of :class:`GPT` (defaults fit 8x8 digits on a CPU in a few minutes)."""

    vocab_size: int = 0  # token vocabulary; 0: from the data (levels + start tokens, or tokenizer)
    block_size: int = 0  # longest context in tokens; 0: from the data (D values of one example)
    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # attention heads per block
    n_embd: int = 128  # width of the residual stream (divisible by n_head)
    dropout: float = 0.1  # dropout on embeddings, attention weights and residual branches
    bias: bool = True  # biases in linear layers and LayerNorms (as GPT-2)
    pos_emb: Literal["learned", "rotary"] = "learned"  # absolute learned positions, or rotary
    tie_weights: bool = True  # the output layer reuses the token embedding matrix
    class_conditional: bool = False  # labelled images: start with a class token instead of BOS
    point_bins: int = 128  # points: bins per coordinate over the data's value range
    temperature: float = 1.0  # default sampling temperature (0: greedy, the argmax path)
    top_k: int = 0  # default top-k filtering when sampling (0: off)
    top_p: float = 1.0  # default nucleus (top-p) filtering when sampling (1: off)

    def validate(self) -> None:
        for key in ("n_layer", "n_head", "n_embd", "point_bins"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} = {getattr(self, key)} must be >= 1.")
        if self.vocab_size < 0 or self.block_size < 0:
            raise ConfigError("vocab_size and block_size must be >= 0 (0: from the data).")
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"n_embd = {self.n_embd} must be divisible by n_head = {self.n_head}."
            )
        if self.pos_emb == "rotary" and (self.n_embd // self.n_head) % 2:
            raise ConfigError("pos_emb = 'rotary' needs an even head width n_embd / n_head.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout = {self.dropout} must be in [0, 1).")
        check_sampling_options(self.temperature, self.top_k, self.top_p)


@register_model("gpt")
class GPT(GenerativeModel):
    """Decoder-only transformer over image levels, quantized points or text tokens.

    ``forward(idx, cache=None) -> logits`` ``(B, T, n_out)`` over the tokens that can be targets
    (levels, bins or text tokens; never the start tokens). ``generate`` continues token sequences
    with a KV cache; ``sample`` returns data in model space (images, points) or tokens (text).
    """

    family: ClassVar[str] = "autoregressive"
    likelihood: ClassVar[str] = "exact"
    dequantize: ClassVar[bool] = False
    config_class: ClassVar[type[Config]] = GPTConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 64, "warmup": 100}
    config: GPTConfig
    info: DataInfo

    def __init__(self, config: GPTConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        cfg = config
        kind = info.kind
        if kind == "images":
            if info.levels is None:
                raise ConfigError(f"Dataset {info.name!r} declares no intensity levels.")
            if cfg.class_conditional and info.n_classes < 1:
                raise ConfigError(
                    f"class_conditional = true needs labelled data, but {info.name!r} has none."
                )
            self.n_out = int(info.levels)  # targets: levels 0..L-1
            self.seq_len = info.dim  # BOS + the first D-1 levels predict the D levels
            n_start = 1 + (info.n_classes if cfg.class_conditional else 0)
        elif kind == "points":
            if cfg.class_conditional:
                raise ConfigError(f"class_conditional needs labelled images; {info.name!r} is not.")
            self.n_out = cfg.point_bins
            self.seq_len = info.dim
            n_start = 1
        elif kind == "text":
            if info.levels is None:
                raise ConfigError(f"Text dataset {info.name!r} declares no vocabulary size.")
            if cfg.class_conditional:
                raise ConfigError(f"class_conditional needs labelled images; {info.name!r} is not.")
            self.n_out = int(info.levels)  # the tokenizer's vocabulary
            self.seq_len = info.dim  # a window of T tokens
            n_start = 1
        else:
            raise ConfigError(f"gpt models images, points or text, not {kind!r} ({info.name!r}).")
        self.kind = kind
        self.bos = self.n_out  # the start token; class tokens follow it
        need_vocab = self.n_out + n_start
        vocab = cfg.vocab_size or need_vocab
        if vocab < need_vocab:
            raise ConfigError(
                f"vocab_size = {cfg.vocab_size} is too small for {info.name!r}; it needs at "
                f"least {need_vocab} tokens (0 picks that)."
            )
        block = cfg.block_size or self.seq_len
        if block < self.seq_len:
            raise ConfigError(
                f"block_size = {cfg.block_size} is too short for {info.name!r}: one example is "
                f"{self.seq_len} tokens (0 picks that)."
            )
        self.vocab_size = vocab
        self.block_size = block
        # rows of the read-out that are computed: the n_out targets, rounded up to a multiple of 64
        # within the vocabulary, so the largest matmul has aligned sizes (50,257 -> 50,304 for
        # GPT-2's padded vocabulary); the extra columns are sliced off before any softmax
        self.n_logits = min(vocab, -(-self.n_out // 64) * 64)
        self.tok_emb = nn.Embedding(vocab, cfg.n_embd)
        self.pos = nn.Embedding(block, cfg.n_embd) if cfg.pos_emb == "learned" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.transformer = Transformer(
            cfg.n_layer,
            cfg.n_embd,
            cfg.n_head,
            cfg.dropout,
            cfg.bias,
            rotary=cfg.pos_emb == "rotary",
            max_len=block,
        )
        # tied: the read-out is tok_emb.weight itself (one tensor, so checkpoints hold it once)
        self.lm_head = None if cfg.tie_weights else nn.Linear(cfg.n_embd, vocab, bias=False)
        for m in (self.tok_emb, self.pos, self.lm_head):
            if m is not None:
                init_gpt_weights(m)

    @property
    def bpd_levels(self) -> int | None:
        """``None``: ``log_prob`` is a discrete log-probability (images, text) or a density on the
        points' own space, so bits/dim need no change of variables."""
        return None

    # --- the network ------------------------------------------------------------------------------
    def forward(self, idx: Tensor, cache: KVCache | None = None) -> Tensor:
        """Token ids ``(B, T) -> logits (B, T, n_out)`` of the next token at each position.

        With ``cache`` the ``T`` tokens continue after the ``cache.length`` positions it holds.
        """
        t = idx.shape[1]
        past = cache.length if cache is not None else 0
        if past + t > self.block_size:
            raise ValueError(f"{past + t} positions exceed block_size = {self.block_size}")
        h = self.tok_emb(idx)  # (B, T, C)
        if self.pos is not None:
            h = h + self.pos(torch.arange(past, past + t, device=idx.device))  # (T, C) broadcast
        h = self.transformer(self.drop(h), cache)  # (B, T, C)
        weight = self.tok_emb.weight if self.lm_head is None else self.lm_head.weight  # (V, C)
        logits = F.linear(h, weight[: self.n_logits])  # (B, T, n_logits): an aligned matmul
        return logits[..., : self.n_out]  # (B, T, n_out): only tokens that are targets

    def new_cache(self) -> KVCache:
        """An empty KV cache for sequences of up to ``block_size`` tokens."""
        return self.transformer.new_cache(self.block_size)

    # --- data <-> tokens -------------------------------------------------------------------------
    def _start_tokens(self, b: int, y: Tensor | None) -> Tensor:  # -> (B, 1)
        if self.config.class_conditional:
            if y is None:
                raise ConfigError("This GPT is class-conditional; pass the labels y.")
            return (self.bos + 1 + y.long()).view(b, 1).to(self.device)
        return torch.full((b, 1), self.bos, dtype=torch.long, device=self.device)

    def tokenize(self, x: Tensor) -> Tensor:
        """Data in model space -> target tokens ``(B, D)`` (images: raster order, channels last)."""
        if self.kind == "images":
            k = model_to_levels(x, self.n_out)  # (B, C, H, W)
            return k.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # (B, H, W, C) -> (B, D)
        if self.kind == "points":
            lo, hi = self.info.value_range
            u = (x.double() - lo) / (hi - lo) * self.n_out
            return u.floor().clamp(0, self.n_out - 1).long()  # (B, D)
        return x.long()

    def detokenize(self, tok: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Target tokens ``(B, D)`` -> data in model space (points: uniform within their bin)."""
        if self.kind == "images":
            c, h, w = self.info.shape
            k = tok.view(-1, h, w, c).permute(0, 3, 1, 2)  # (B, D) -> (B, H, W, C) -> (B, C, H, W)
            return levels_to_model(k, self.n_out)
        if self.kind == "points":
            lo, hi = self.info.value_range
            u = rand(tok.shape, generator=generator, device=tok.device)
            return lo + (tok.float() + u) * ((hi - lo) / self.n_out)  # (B, D)
        return tok

    def _token_log_probs(self, x: Tensor, y: Tensor | None) -> Tensor:
        """``log p(t_i | t_<i)`` of every token of the examples: ``(B, D)``."""
        tgt = self.tokenize(x)  # (B, D)
        inp = torch.cat([self._start_tokens(x.shape[0], y), tgt[:, :-1]], dim=1)  # (B, D)
        logits = at_least_float32(self.forward(inp))  # (B, T, n_out)
        # (B*T, n_out) rows, classes along the contiguous last dimension (a view, no copy)
        nll = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), reduction="none")
        return -nll.view(tgt.shape)  # (B, T)

    # --- likelihood -----------------------------------------------------------------------------
    def log_prob(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Exact log-likelihood in nats per example ``(B,)``: ``sum_i log p(t_i | t_<i)``; points
        add ``-D log(bin width)`` to make it a density."""
        lp = self._token_log_probs(x, y).sum(1)  # (B,)
        if self.kind == "points":
            lo, hi = self.info.value_range
            lp = lp - self.info.dim * math.log((hi - lo) / self.n_out)
        return lp

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """Mean next-token cross-entropy in nats; logs ``bpd`` (bits per token)."""
        per_token = -self._token_log_probs(batch["x"], batch.get("y"))  # (B, T)
        loss = per_token.mean()  # the one reduction
        return LossOutput(loss, {"bpd": loss.detach() / math.log(2)})

    @torch.no_grad()
    def eval_metrics(
        self, x: Tensor, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """``{"log_prob"}`` in nats per example (bits/dim via ``bpd_levels = None``)."""
        return {"log_prob": self.log_prob(x, y)}

    # --- generation -----------------------------------------------------------------------------
    def _context(self, seq: Tensor, keep: int) -> Tensor:
        """The last ``block_size`` tokens of ``seq`` ``(B, T)``, its first ``keep`` tokens kept."""
        if seq.shape[1] <= self.block_size:
            return seq
        return torch.cat([seq[:, :keep], seq[:, seq.shape[1] - self.block_size + keep :]], dim=1)

    @torch.no_grad()
    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        uncond: Tensor | None = None,
        guidance: float = 1.0,
    ) -> Tensor:
        """Continue ``idx`` ``(B, T0)`` by ``max_new_tokens`` tokens: ``-> (B, max_new_tokens)``.

        With the KV cache each step feeds one token. Beyond ``block_size`` the context is the start
        token (when ``idx`` begins with one) and the latest tokens, ``block_size`` in all,
        recomputed each step (as without a cache): the window a model trained on windows expects.

        Classifier-free guidance (Ho & Salimans, arXiv:2207.12598, Eq. 6, applied to next-token
        logits as in Parti, arXiv:2206.10789, Sec. 3.2): with an unconditional prefix ``uncond``
        (same shape as ``idx``, e.g. the null caption) and ``guidance = w``, both prefixes run in
        one batch and every token is drawn from ``l_u + w (l_c - l_u)`` of the log-probabilities;
        the drawn token extends both.
        """
        check_sampling_options(temperature, top_k, top_p)
        seq = idx.to(self.device).long()
        b = seq.shape[0]
        if uncond is None and guidance != 1.0:
            raise ConfigError(f"guidance = {guidance} needs an unconditional prefix (uncond).")
        guided = uncond is not None and guidance != 1.0
        if guided:
            if uncond.shape != idx.shape:
                raise ConfigError(
                    f"The unconditional prefix has shape {tuple(uncond.shape)}; it must match "
                    f"the prefix, {tuple(idx.shape)}."
                )
            seq = torch.cat([seq, uncond.to(self.device).long()])  # (2B, T0)
        keep = int(seq.shape[1] > 0 and bool((seq[:, 0] >= self.n_out).all()))  # a start token

        def pick(logits: Tensor) -> Tensor:
            if guided:
                lc, lu = logits.float().log_softmax(-1).chunk(2)
                logits = lu + guidance * (lc - lu)  # Eq. (6) on log-probabilities
            tok = sample_logits(
                logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
            )  # (B,)
            return torch.cat([tok, tok]) if guided else tok

        new: list[Tensor] = []
        cache = self.new_cache() if use_cache else None
        logits = self.forward(self._context(seq, keep), cache)[:, -1]  # (B or 2B, n_out)
        for s in range(max_new_tokens):
            tok = pick(logits)
            new.append(tok[:b])
            seq = torch.cat([seq, tok[:, None]], dim=1)  # (B or 2B, T0 + s + 1)
            if s == max_new_tokens - 1:
                break
            if cache is not None and cache.length < self.block_size:
                logits = self.forward(tok[:, None], cache)[:, -1]  # one position
            else:  # no cache, or a full one: recompute over the context window
                cache = self.new_cache() if cache is not None else None
                logits = self.forward(self._context(seq, keep), cache)[:, -1]
        return torch.stack(new, dim=1) if new else seq[:b, :0]

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` samples in model space (images ``(n, C, H, W)``, points ``(n, D)``), or for text
        ``(n, P + length)`` tokens: the prompt followed by ``length`` new tokens.

        ``cond``: labels ``(n,)`` of a class-conditional model (default ``arange(n) % classes``).
        Options: ``temperature``, ``top_k``, ``top_p`` (defaults from the config); text only:
        ``prompt`` (token ids ``(P,)`` or ``(n, P)``; default none: start after ``BOS``) and
        ``length`` (default ``block_size``).
        """
        unknown = [key for key in options if key not in SAMPLE_OPTIONS]
        if unknown:
            raise ConfigError(
                f"Unknown sampling option {unknown[0]!r} for 'gpt'; valid options are "
                f"{choices(SAMPLE_OPTIONS)}."
            )
        cfg = self.config
        kw = {
            "temperature": float(options.get("temperature", cfg.temperature)),
            "top_k": int(options.get("top_k", cfg.top_k)),
            "top_p": float(options.get("top_p", cfg.top_p)),
            "generator": generator,
        }
        if self.kind == "text":
            if cond is not None:
                raise ConfigError("A text GPT takes no cond; give a prompt instead.")
            prompt = torch.as_tensor(options.get("prompt", []), dtype=torch.long).to(self.device)
            prompt = prompt.expand(n, -1) if prompt.ndim == 1 else prompt  # (n, P)
            length = int(options.get("length", self.block_size))
            out = self.generate(torch.cat([self._start_tokens(n, None), prompt], 1), length, **kw)
            return torch.cat([prompt, out], dim=1)  # (n, P + length)
        for key in ("prompt", "length"):
            if key in options:
                raise ConfigError(f"Sampling option {key!r} is for text models only.")
        y = None
        if cfg.class_conditional:
            y = cond if cond is not None else torch.arange(n) % self.info.n_classes
        elif cond is not None:
            raise ConfigError("This GPT is unconditional; sample it without cond.")
        tok = self.generate(self._start_tokens(n, y), self.info.dim, **kw)  # (n, D)
        return self.detokenize(tok, generator)
