"""Recurrent autoregressive models: LSTM and GRU language models over the tokens GPT uses.

- LSTM: Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural Computation 9(8), 1997;
- GRU: Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder for Statistical
  Machine Translation", arXiv:1406.1078, Sec. 2.3.

The cells are torch's ``nn.LSTM`` / ``nn.GRU`` (cuDNN kernels on a GPU). A sequence ``t_1 .. t_T``
gets the exact factorisation ``log p(t) = sum_i log p(t_i | t_<i)`` (Eq. 1 of arXiv:1406.1078's
Sec. 2.1): the token embeddings run through a stack of recurrent layers, and a linear read-out of
the hidden state ``h_i`` (which has seen ``start, t_1 .. t_i``) gives the logits of ``t_{i+1}``.
"Sequential memory" against GPT's self-attention: the whole past is squeezed into a fixed-size
state, and generation carries that state forward, one token per step, with no context limit.

The tokens are GPT's (:func:`~genzoo.models.autoregressive.gpt.tokenization_for`: image levels
in raster order, quantized point coordinates, or text token ids, after a start token, or a class
token when ``class_conditional``), so ``log_prob`` is exact and bits/dim comparable with GPT's
and PixelCNN's; sampling takes the same temperature / top-k / top-p options
(:mod:`~genzoo.models.autoregressive.sampling`).

One class; the cell is the config field ``cell``. It is registered twice, as ``lstm`` and
``gru``: two presets of the one config, different only in the default cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, ExactLikelihood, GenerativeModel, LossOutput, Samples
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.models.autoencoders.base import check_sample_args
from genzoo.models.autoregressive.gpt import tokenization_for
from genzoo.models.autoregressive.sampling import (
    SAMPLING_OPTIONS,
    at_least_float32,
    check_sampling_options,
    sample_logits,
    sampling_kwargs,
)

State = Any  # the recurrent state: (h, c) of an LSTM, h of a GRU; each (layers, B, hidden)


@dataclass(frozen=True)
class RNNConfig(Config):
    """Configuration of :class:`RecurrentLM` (the ``lstm`` preset)."""

    cell: Literal["lstm", "gru"] = "lstm"  # recurrent cell: torch's nn.LSTM or nn.GRU
    n_layer: int = bounded(2, ge=1)  # stacked recurrent layers
    n_embd: int = bounded(64, ge=1)  # width of the token embedding (the cells' input)
    hidden: int = bounded(256, ge=1)  # width of the recurrent state of each layer
    dropout: float = bounded(0.0, ge=0.0, lt=1.0)  # dropout on embeddings, between layers and
    # before the read-out
    block_size: int = bounded(0, ge=0)  # text: tokens drawn by default by ``sample`` (0: one
    # window of the data); the model itself has no context limit
    class_conditional: bool = False  # labelled images: start with a class token instead of BOS
    point_bins: int = bounded(128, ge=1)  # points: bins per coordinate over the data's range
    temperature: float = bounded(1.0, ge=0.0)  # default sampling temperature (0: greedy)
    top_k: int = bounded(0, ge=0)  # default top-k filtering when sampling (0: off)
    top_p: float = bounded(1.0, gt=0.0, le=1.0)  # default nucleus filtering (1: off)


@dataclass(frozen=True)
class GRUConfig(RNNConfig):
    """The ``gru`` preset of :class:`RNNConfig`."""

    cell: Literal["lstm", "gru"] = "gru"  # recurrent cell: torch's nn.LSTM or nn.GRU


@register_model("lstm")
class RecurrentLM(GenerativeModel, Samples, ExactLikelihood):
    """LSTM language model (``cell=gru``: GRU) over image levels, point bins or text tokens.

    ``forward(idx, state=None) -> (logits (B, T, n_out), state)``: the logits of the next token
    at each position, and the state after the last one (pass it back in to continue). ``generate``
    continues token sequences one token per step from the carried state; ``sample`` returns data
    in the dataset's model range, as :class:`~genzoo.models.autoregressive.gpt.GPT`'s does.
    """

    family: ClassVar[str] = "autoregressive"
    dequantize: ClassVar[bool] = False
    config_class: ClassVar[type[Config]] = RNNConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 3e-3, "batch_size": 64, "grad_clip": 1.0}
    config: RNNConfig
    info: DataInfo

    def __init__(self, config: RNNConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        cfg = config
        # the GPT's tokenization reads class_conditional and point_bins, which this config shares
        self.tokenization = tokenization_for(info, cfg)  # type: ignore[arg-type]
        self.n_out = self.tokenization.n_out
        self.seq_len = self.tokenization.seq_len
        self.bos = self.n_out  # the start token; class tokens follow it
        self.block_size = cfg.block_size or self.seq_len
        self.tok_emb = nn.Embedding(self.n_out + self.tokenization.n_start, cfg.n_embd)
        rnn = nn.LSTM if cfg.cell == "lstm" else nn.GRU
        self.rnn = rnn(
            cfg.n_embd,
            cfg.hidden,
            cfg.n_layer,
            batch_first=True,
            dropout=cfg.dropout if cfg.n_layer > 1 else 0.0,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, self.n_out)

    @property
    def bpd_levels(self) -> int | None:
        """``None``: ``log_prob`` is discrete (images, text) or a density on the points' space."""
        return None

    # --- the network ------------------------------------------------------------------------------
    def forward(self, idx: Tensor, state: State = None) -> tuple[Tensor, State]:
        """Token ids ``(B, T)`` -> ``(logits (B, T, n_out), state)``; ``state`` continues a
        sequence whose earlier tokens were fed before (``None``: a fresh sequence)."""
        h = self.drop(self.tok_emb(idx))  # (B, T, E)
        out, state = self.rnn(h, state)  # (B, T, H)
        return self.head(self.drop(out)), state  # (B, T, n_out)

    # --- data <-> tokens -------------------------------------------------------------------------
    def _start_tokens(self, b: int, y: Tensor | None) -> Tensor:  # -> (B, 1)
        if self.config.class_conditional:
            if y is None:
                raise ConfigError(f"This {self.name} is class-conditional; pass the labels y.")
            return (self.bos + 1 + y.long()).view(b, 1).to(self.device)
        return torch.full((b, 1), self.bos, dtype=torch.long, device=self.device)

    def tokenize(self, x: Tensor) -> Tensor:
        """Data in model space -> target tokens ``(B, D)`` (the GPT's tokenization)."""
        return self.tokenization.tokenize(x)

    def detokenize(self, tok: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Target tokens ``(B, D)`` -> data in model space."""
        return self.tokenization.detokenize(tok, generator)

    def _token_log_probs(self, x: Tensor, y: Tensor | None) -> Tensor:
        """``log p(t_i | t_<i)`` of every token of the examples: ``(B, D)``."""
        tgt = self.tokenize(x)  # (B, D)
        inp = torch.cat([self._start_tokens(x.shape[0], y), tgt[:, :-1]], dim=1)  # (B, D)
        logits = at_least_float32(self.forward(inp)[0])  # (B, D, n_out)
        nll = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), reduction="none")
        return -nll.view(tgt.shape)  # (B*D,) -> (B, D)

    # --- likelihood -----------------------------------------------------------------------------
    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Exact log-likelihood in nats per example ``(B,)``; points add ``-D log(bin width)``.
        ``cond``: the labels of a class-conditional model."""
        lp = self._token_log_probs(x, cond).sum(1)  # (B,): sum_i log p(t_i | t_<i), the chain rule
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

    # --- generation -----------------------------------------------------------------------------
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
        use_state: bool = True,
    ) -> Tensor:
        """Continue ``idx`` ``(B, T0)`` by ``max_new_tokens`` tokens: ``-> (B, max_new_tokens)``.

        With ``use_state`` each step feeds one token to the carried recurrent state; without it,
        each step reruns the whole sequence (the reference the state path must equal).
        """
        check_sampling_options(temperature, top_k, top_p)
        seq = idx.to(self.device).long()
        logits, state = self.forward(seq)
        new: list[Tensor] = []
        for s in range(max_new_tokens):
            tok = sample_logits(
                logits[:, -1],
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                generator=generator,
            )  # (B,)
            new.append(tok)
            seq = torch.cat([seq, tok[:, None]], dim=1)  # (B, T0 + s + 1)
            if s == max_new_tokens - 1:
                break
            if use_state:
                logits, state = self.forward(tok[:, None], state)  # one step
            else:
                logits, _ = self.forward(seq)
        return torch.stack(new, dim=1) if new else seq[:, :0]

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` samples in the dataset's model range: images ``(n, C, H, W)``, points ``(n, D)``,
        text ``(n, P + length)`` token ids (by default ``(n, block_size)``).

        ``cond``: labels ``(n,)`` of a class-conditional model (default ``arange(n) % classes``).
        Options: ``temperature``, ``top_k``, ``top_p`` (defaults from the config); text only:
        ``prompt`` (token ids ``(P,)`` or ``(n, P)``) and ``length`` (default ``block_size``).
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
        prompt = torch.as_tensor(options.get("prompt", []), dtype=torch.long).to(self.device)
        prompt = prompt.expand(n, -1) if prompt.ndim == 1 else prompt  # (n, P)
        length = int(options.get("length", tokens.sample_length(self.block_size)))
        start = torch.cat([self._start_tokens(n, y), prompt], dim=1)  # (n, 1 + P)
        out = self.generate(start, length, **sampling_kwargs(cfg, options), generator=generator)
        return tokens.detokenize(torch.cat([prompt, out], dim=1), generator)  # (n, P + length)


@register_model("gru")
class GRULM(RecurrentLM):
    """GRU language model (arXiv:1406.1078): the ``gru`` preset of :class:`RecurrentLM`."""

    config_class: ClassVar[type[Config]] = GRUConfig
