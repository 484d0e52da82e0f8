"""GPT: a decoder-only transformer language model (Radford et al. 2018/2019: "Improving Language
Understanding by Generative Pre-Training", "Language Models are Unsupervised Multitask Learners"),
written in the spirit of nanoGPT.

A sequence of tokens ``t_1 .. t_T`` gets the exact factorisation
``log p(t) = sum_i log p(t_i | t_<i)``: token embeddings plus learned positions (or rotary
positions, arXiv:2104.09864), pre-LN blocks of causal self-attention (arXiv:1706.03762) and MLPs,
a final LayerNorm and a linear read-out tied to the token embedding (Press & Wolf,
arXiv:1608.05859). Generation keeps a KV cache, so each new token costs one position; it supports
temperature, top-k and nucleus (top-p) sampling.

What the tokens are depends on the data, and is chosen once in the constructor (a
:class:`Tokenization`: :class:`PixelTokens`, :class:`PointBins` or :class:`TextTokens`):

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
``sample`` returns data in the dataset's model range for every kind: bin centres of images,
points, and for text the token ids that a text dataset's windows hold (``(n, block_size)`` by
default; ``prompt`` and ``length`` change that).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.options import check_output_memory, option
from genzoo.core.protocol import Batch, ExactLikelihood, GenerativeModel, LossOutput, Samples
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand
from genzoo.data.base import DataInfo, levels_to_model, model_to_levels
from genzoo.data.text import tokenizer_of
from genzoo.models.autoencoders.base import check_sample_args
from genzoo.models.autoregressive.sampling import (
    SAMPLING_OPTIONS,
    at_least_float32,
    check_sampling_options,
    sample_logits,
    sampling_kwargs,
)
from genzoo.nn.transformer import KVCache, Transformer, init_gpt_weights

TEXT_OPTIONS = ("prompt", "length")  # the extra sampling options of a GPT over text


@dataclass(frozen=True)
class TransformerConfig(Config):
    """The decoder-only transformer and its default sampling settings: the fields that
    :class:`GPTConfig` and :class:`~genzoo.models.autoregressive.vq_prior.VQPriorConfig` share."""

    n_layer: int = bounded(4, ge=1)  # transformer blocks
    n_head: int = bounded(4, ge=1)  # attention heads per block
    n_embd: int = bounded(128, ge=1)  # width of the residual stream (divisible by n_head)
    dropout: float = bounded(0.1, ge=0.0, lt=1.0)  # dropout on embeddings, attention weights and
    # residual branches
    bias: bool = True  # biases in linear layers and LayerNorms (as GPT-2)
    pos_emb: Literal["learned", "rotary"] = "learned"  # absolute learned positions, or rotary
    tie_weights: bool = True  # the output layer reuses the token embedding matrix
    temperature: float = bounded(1.0, ge=0.0)  # default sampling temperature (0: greedy, the
    # argmax path)
    top_k: int = bounded(0, ge=0)  # default top-k filtering when sampling (0: off)
    top_p: float = bounded(1.0, gt=0.0, le=1.0)  # default nucleus (top-p) filtering when
    # sampling (1: off)

    def validate(self) -> None:
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"n_embd = {self.n_embd} must be divisible by n_head = {self.n_head}."
            )
        if self.pos_emb == "rotary" and (self.n_embd // self.n_head) % 2:
            raise ConfigError("pos_emb = 'rotary' needs an even head width n_embd / n_head.")

    def transformer_fields(self) -> dict[str, Any]:
        """The fields of :class:`TransformerConfig` alone, e.g. to build a :class:`GPTConfig`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(TransformerConfig)}


@dataclass(frozen=True)
class GPTConfig(TransformerConfig):
    """Configuration of :class:`GPT` (defaults fit 8x8 digits on a CPU in a few minutes); the
    transformer's fields are :class:`TransformerConfig`'s."""

    vocab_size: int = bounded(0, ge=0)  # token vocabulary; 0: from the data (levels + start
    # tokens, or tokenizer)
    block_size: int = bounded(0, ge=0)  # longest context in tokens; 0: from the data (D values
    # of one example)
    class_conditional: bool = False  # labelled images: start with a class token instead of BOS
    point_bins: int = bounded(128, ge=1)  # points: bins per coordinate over the data's value range


# --- tokenizations: one example of the data <-> D target tokens --------------------------------


class Tokenization:
    """How one example of D values is D target tokens ``0 .. n_out - 1`` (chosen once, from the
    data, by :func:`tokenization_for`). ``n_start`` start tokens follow the targets in the
    vocabulary (BOS, then the class tokens of a class-conditional model)."""

    n_out: int
    n_start: int = 1
    options: tuple[str, ...] = ()  # the extra sampling options it takes

    def __init__(self, info: DataInfo) -> None:
        self.info = info
        self.seq_len = info.dim  # BOS + the first D-1 tokens predict the D tokens

    def tokenize(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Data in model space ``(B, *shape)`` -> target tokens ``(B, D)`` long."""
        raise NotImplementedError

    def detokenize(self, tok: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Target tokens ``(B, D)`` -> data ``(B, *shape)`` in model space."""
        raise NotImplementedError  # pragma: no cover - abstract

    def log_density_offset(self) -> float:
        """What ``log P(tokens)`` needs to become ``log p(x)``: 0 for discrete data."""
        return 0.0

    def sample_length(self, block_size: int) -> int:
        """Tokens that ``sample`` draws by default: one example, D tokens."""
        return self.seq_len


class PixelTokens(Tokenization):
    """Images: the integer levels ``0 .. L-1`` of the sub-pixels in raster order (channels within
    a pixel); ``log P`` is the exact discrete likelihood of the levels."""

    def __init__(self, info: DataInfo, class_conditional: bool) -> None:
        if info.levels is None:
            raise ConfigError(f"Dataset {info.name!r} declares no intensity levels.")
        if class_conditional and info.n_classes < 1:
            raise ConfigError(
                f"class_conditional = true needs labelled data, but {info.name!r} has none."
            )
        super().__init__(info)
        self.n_out = int(info.levels)  # targets: levels 0..L-1
        self.n_start = 1 + (info.n_classes if class_conditional else 0)

    def tokenize(self, x: Tensor) -> Tensor:
        k = model_to_levels(x, self.n_out)  # (B, C, H, W)
        return k.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # (B, H, W, C) -> (B, D)

    def detokenize(self, tok: Tensor, generator: torch.Generator | None = None) -> Tensor:
        c, h, w = self.info.shape
        k = tok.view(-1, h, w, c).permute(0, 3, 1, 2)  # (B, D) -> (B, H, W, C) -> (B, C, H, W)
        return levels_to_model(k, self.n_out)


class PointBins(Tokenization):
    """Points: each coordinate quantized to one of ``bins`` bins over the data's value range; the
    model is a density, uniform within each bin: ``log p(x) = log P(bins) - D log(width)``."""

    def __init__(self, info: DataInfo, bins: int) -> None:
        super().__init__(info)
        self.n_out = bins

    def tokenize(self, x: Tensor) -> Tensor:
        lo, hi = self.info.value_range
        u = (x.double() - lo) / (hi - lo) * self.n_out
        return u.floor().clamp(0, self.n_out - 1).long()  # (B, D)

    def detokenize(self, tok: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Uniform within each token's bin (one ``rand`` draw per value)."""
        lo, hi = self.info.value_range
        u = rand(tok.shape, generator=generator, device=tok.device)
        return lo + (tok.float() + u) * ((hi - lo) / self.n_out)  # (B, D)

    def log_density_offset(self) -> float:
        lo, hi = self.info.value_range
        return -self.info.dim * math.log((hi - lo) / self.n_out)  # -D log(bin width)


class TextTokens(Tokenization):
    """Text: the dataset's examples are windows of token ids already (:mod:`genzoo.data.text`),
    so tokens are the data; sampling takes a ``prompt`` and a ``length``."""

    options = TEXT_OPTIONS

    def __init__(self, info: DataInfo) -> None:
        if info.levels is None:
            raise ConfigError(f"Text dataset {info.name!r} declares no vocabulary size.")
        super().__init__(info)
        self.n_out = int(info.levels)  # the tokenizer's vocabulary

    def tokenize(self, x: Tensor) -> Tensor:
        return x.long()

    def detokenize(self, tok: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return tok

    def sample_length(self, block_size: int) -> int:
        """A whole context, ``block_size`` tokens (one window when ``block_size`` is 0)."""
        return block_size


def tokenization_for(info: DataInfo, config: GPTConfig) -> Tokenization:
    """The tokenization of ``info``'s data (a one-sentence error for data GPT cannot model)."""
    if info.kind == "images":
        return PixelTokens(info, config.class_conditional)
    if info.kind not in ("points", "text"):
        raise ConfigError(f"gpt models images, points or text, not {info.kind!r} ({info.name!r}).")
    if config.class_conditional:
        raise ConfigError(f"class_conditional needs labelled images; {info.name!r} is not.")
    return PointBins(info, config.point_bins) if info.kind == "points" else TextTokens(info)


class TokenLM(GenerativeModel, Samples, ExactLikelihood):
    """What every model over a :class:`Tokenization`'s tokens shares (GPT, the LSTM and GRU):
    data <-> tokens, the exact ``log_prob`` by the chain rule, the next-token loss, and
    ``sample`` in the dataset's model range. A network is two hooks: ``next_token_logits(idx)``
    ``(B, T) -> (B, T, n_out)`` and ``generate(idx, max_new_tokens, ...)``. Subclasses set
    ``tokenization``, ``n_out``, ``bos`` and ``block_size`` in their constructor."""

    family: ClassVar[str] = "autoregressive"
    dequantize: ClassVar[bool] = False
    tokenization: Tokenization
    n_out: int
    bos: int
    block_size: int

    @property
    def bpd_levels(self) -> int | None:
        """``None``: ``log_prob`` is a discrete log-probability (images, text) or a density on the
        points' own space, so bits/dim need no change of variables."""
        return None

    def next_token_logits(self, idx: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Token ids ``(B, T)`` -> logits ``(B, T, n_out)`` of the next token at each position."""
        raise NotImplementedError

    def generate(
        self, idx: Tensor, max_new_tokens: int, **kwargs: Any
    ) -> Tensor:  # pragma: no cover - abstract
        """Continue ``idx`` ``(B, T0)`` by ``max_new_tokens`` tokens ``-> (B, max_new_tokens)``."""
        raise NotImplementedError

    # --- data <-> tokens -------------------------------------------------------------------------
    def _start_tokens(self, b: int, y: Tensor | None) -> Tensor:  # -> (B, 1)
        if self.config.class_conditional:
            if y is None:
                raise ConfigError(f"This {self.name} is class-conditional; pass the labels y.")
            return (self.bos + 1 + y.long()).view(b, 1).to(self.device)
        return torch.full((b, 1), self.bos, dtype=torch.long, device=self.device)

    def tokenize(self, x: Tensor) -> Tensor:
        """Data in model space -> target tokens ``(B, D)`` (images: raster order, channels last)."""
        return self.tokenization.tokenize(x)

    def detokenize(self, tok: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Target tokens ``(B, D)`` -> data in model space (points: uniform within their bin)."""
        return self.tokenization.detokenize(tok, generator)

    def _token_log_probs(self, x: Tensor, y: Tensor | None) -> Tensor:
        """``log p(t_i | t_<i)`` of every token of the examples: ``(B, D)``."""
        tgt = self.tokenize(x)  # (B, D)
        inp = torch.cat([self._start_tokens(x.shape[0], y), tgt[:, :-1]], dim=1)  # (B, D)
        logits = at_least_float32(self.next_token_logits(inp))  # (B, T, n_out)
        # (B*T, n_out) rows, classes along the contiguous last dimension (a view, no copy)
        nll = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), reduction="none")
        return -nll.view(tgt.shape)  # (B, T)

    # --- likelihood -----------------------------------------------------------------------------
    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Exact log-likelihood in nats per example ``(B,)``: ``sum_i log p(t_i | t_<i)``; points
        add ``-D log(bin width)`` to make it a density. ``cond``: the labels of a
        class-conditional model."""
        lp = self._token_log_probs(x, cond).sum(1)  # (B,)
        offset = self.tokenization.log_density_offset()
        return lp + offset if offset else lp

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """Mean next-token cross-entropy in nats; logs ``bpd`` (bits per token)."""
        per_token = -self._token_log_probs(batch["x"], batch.get("y"))  # (B, T)
        loss = per_token.mean()  # the one reduction
        return LossOutput(loss, {"bpd": loss.detach() / math.log(2)})

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """``{"log_prob"}`` in nats per example (bits/dim via ``bpd_levels = None``)."""
        return {"log_prob": self.log_prob(batch["x"], batch.get("y"))}

    def prompt_ids(self, prompt: Any) -> Tensor:
        """A text prompt as token ids ``(P,)`` or ``(n, P)``: a string is encoded with the
        dataset's tokenizer; ids must be whole numbers in the vocabulary."""
        if isinstance(prompt, (int, float)) and not isinstance(prompt, bool):
            prompt = str(prompt)  # `prompt=5` on the command line is the text "5"
        if isinstance(prompt, str):
            return tokenizer_of(self.info).encode(prompt)
        try:
            ids = torch.as_tensor(prompt)
        except (TypeError, ValueError, RuntimeError):
            ids = None
        if ids is not None and ids.numel() == 0:
            return torch.zeros(0, dtype=torch.long)  # no prompt: start after BOS
        if ids is None or ids.ndim > 2 or ids.is_floating_point() or ids.is_complex():
            raise ConfigError(
                f"prompt = {prompt!r} must be a text or a list of token ids (whole numbers)."
            )
        if not (0 <= int(ids.min()) and int(ids.max()) < self.n_out):  # ids.numel() > 0
            raise ConfigError(
                f"prompt token ids must lie in 0..{self.n_out - 1} (the vocabulary); got "
                f"{int(ids.min())}..{int(ids.max())}."
            )
        return ids.long()

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` samples in the dataset's model range: images ``(n, C, H, W)`` (bin centres),
        points ``(n, D)``, text ``(n, P + length)`` token ids (the prompt followed by ``length``
        new tokens; by default ``(n, block_size)``, the shape of a text dataset's windows).

        ``cond``: labels ``(n,)`` of a class-conditional model (default ``arange(n) % classes``).
        Options: ``temperature``, ``top_k``, ``top_p`` (defaults from the config); text only:
        ``prompt`` (a text, or token ids ``(P,)`` or ``(n, P)``; default none: start after
        ``BOS``) and
        ``length`` (default ``block_size``).
        """
        tokens = self.tokenization
        cfg = self.config
        check_sample_args(
            self.name,
            cond,
            options,
            SAMPLING_OPTIONS + tokens.options,
            conditional=cfg.class_conditional,
        )
        y = None
        if cfg.class_conditional:
            y = cond if cond is not None else torch.arange(n) % self.info.n_classes
        # a text prompt (n, P); other data start from the start token alone (P = 0)
        prompt = self.prompt_ids(options.get("prompt", [])).to(self.device)
        prompt = prompt.expand(n, -1) if prompt.ndim == 1 else prompt  # (n, P)
        length = option(options, "length", int(tokens.sample_length(self.block_size)), ge=1)
        check_output_memory(n * (prompt.shape[1] + length), 8, f"length = {length} for n = {n}")
        start = torch.cat([self._start_tokens(n, y), prompt], dim=1)  # (n, 1 + P)
        out = self.generate(start, length, **sampling_kwargs(cfg, options), generator=generator)
        return tokens.detokenize(torch.cat([prompt, out], dim=1), generator)  # (n, P + length)


@register_model("gpt")
class GPT(TokenLM):
    """Decoder-only transformer over image levels, quantized points or text tokens.

    ``forward(idx, cache=None) -> logits`` ``(B, T, n_out)`` over the tokens that can be targets
    (levels, bins or text tokens; never the start tokens). ``generate`` continues token sequences
    with a KV cache; ``sample`` returns data in the dataset's model range: images, points, or for
    text the token ids that text datasets hold. ``tokenization`` (chosen once from the data) maps
    data to tokens and back.
    """

    config_class: ClassVar[type[Config]] = GPTConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 64, "warmup": 100}
    config: GPTConfig
    info: DataInfo

    def __init__(self, config: GPTConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        cfg = config
        self.tokenization = tokenization_for(info, cfg)
        self.n_out = self.tokenization.n_out
        self.seq_len = self.tokenization.seq_len
        self.bos = self.n_out  # the start token; class tokens follow it
        need_vocab = self.n_out + self.tokenization.n_start
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

    def next_token_logits(self, idx: Tensor) -> Tensor:
        return self.forward(idx)  # (B, T, n_out)

    def new_cache(self) -> KVCache:
        """An empty KV cache for sequences of up to ``block_size`` tokens."""
        return self.transformer.new_cache(self.block_size)

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
