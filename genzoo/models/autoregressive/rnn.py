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

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.models.autoregressive.gpt import TokenLM, tokenization_for
from genzoo.models.autoregressive.sampling import (
    check_sampling_options,
    sample_logits,
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
class RecurrentLM(TokenLM):
    """LSTM language model (``cell=gru``: GRU) over image levels, point bins or text tokens.

    ``forward(idx, state=None) -> (logits (B, T, n_out), state)``: the logits of the next token
    at each position, and the state after the last one (pass it back in to continue). ``generate``
    continues token sequences one token per step from the carried state; ``sample`` returns data
    in the dataset's model range, as :class:`~genzoo.models.autoregressive.gpt.GPT`'s does.
    """

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

    # --- the network ------------------------------------------------------------------------------
    def forward(self, idx: Tensor, state: State = None) -> tuple[Tensor, State]:
        """Token ids ``(B, T)`` -> ``(logits (B, T, n_out), state)``; ``state`` continues a
        sequence whose earlier tokens were fed before (``None``: a fresh sequence)."""
        h = self.drop(self.tok_emb(idx))  # (B, T, E)
        out, state = self.rnn(h, state)  # (B, T, H)
        return self.head(self.drop(out)), state  # (B, T, n_out)

    def next_token_logits(self, idx: Tensor) -> Tensor:
        return self.forward(idx)[0]  # (B, T, n_out), from a fresh state

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


@register_model("gru")
class GRULM(RecurrentLM):
    """GRU language model (arXiv:1406.1078): the ``gru`` preset of :class:`RecurrentLM`."""

    config_class: ClassVar[type[Config]] = GRUConfig
