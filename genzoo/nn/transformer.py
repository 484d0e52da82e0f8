"""Decoder-only transformer blocks: causal self-attention, pre-LN blocks, a KV cache, rotary.

The architecture of GPT-2 (Radford et al. 2019) as written in nanoGPT: pre-LayerNorm residual
blocks ``x + attn(ln(x))``, ``x + mlp(ln(x))`` (Xiong et al., "On Layer Normalization in the
Transformer Architecture", arXiv:2002.04745), multi-head attention of Vaswani et al., "Attention
Is All You Need", arXiv:1706.03762, Eq. (1), through
:func:`~genzoo.nn.attention.multi_head_attention` with a causal mask, and optionally rotary
position embeddings (Su et al., "RoFormer", arXiv:2104.09864).

:class:`~genzoo.nn.attention.KVCache` (re-exported here) keeps the keys and values of past
positions so that generation costs one position per step; :class:`Transformer` takes token
embeddings ``(B, T, C)`` and returns features ``(B, T, C)``, continuing at the cache's position
when given one.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from genzoo.nn.attention import (
    KVCache,
    LayerKV,
    apply_rotary,
    multi_head_attention,
    rotary_tables,
)

__all__ = [
    "Block",
    "CausalSelfAttention",
    "KVCache",
    "LayerKV",
    "Transformer",
    "apply_rotary",
    "init_gpt_weights",
    "rotary_tables",
]


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with an optional KV cache and rotary positions
    (``causal=False``: full self-attention, every position sees every other, as in a ViT)."""

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        dropout: float = 0.0,
        bias: bool = True,
        rotary: bool = False,
        max_len: int = 1024,
        causal: bool = True,
    ) -> None:
        super().__init__()
        self.causal = causal
        if n_embd % n_head:
            raise ValueError(f"n_embd = {n_embd} must be divisible by n_head = {n_head}")
        self.n_head = n_head
        self.head_dim = n_embd // n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.dropout = dropout
        self.resid_drop = nn.Dropout(dropout)
        self.rotary = rotary
        if rotary:
            cos, sin = rotary_tables(self.head_dim, max_len)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)

    def forward(
        self, x: Tensor, kv: LayerKV | None = None, key_mask: Tensor | None = None
    ) -> Tensor:
        """``(B, T, C) -> (B, T, C)``; with ``kv`` the T positions continue after ``kv.length``;
        ``key_mask`` ``(B, T)`` or ``(B, T, T)`` (True: a key that may be seen; only without
        ``causal``), see :func:`~genzoo.nn.attention.multi_head_attention`."""
        q, k, v = self.qkv(x).split(x.shape[2], dim=2)  # 3 x (B, T, C)
        y = multi_head_attention(
            q,
            k,
            v,
            self.n_head,
            causal=self.causal,
            key_mask=key_mask,
            dropout=self.dropout if self.training else 0.0,
            rotary=(self.rope_cos, self.rope_sin) if self.rotary else None,
            cache=kv,
            project=self.proj,
        )
        return self.resid_drop(y)


class Block(nn.Module):
    """Pre-LN transformer block: ``x + attn(ln1(x))`` then ``x + mlp(ln2(x))`` (GELU, 4x wide)."""

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        dropout: float = 0.0,
        bias: bool = True,
        rotary: bool = False,
        max_len: int = 1024,
        causal: bool = True,
    ) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias, rotary, max_len, causal)
        self.ln2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd, bias=bias),
            nn.GELU(),
            nn.Linear(4 * n_embd, n_embd, bias=bias),
            nn.Dropout(dropout),
        )

    def forward(
        self, x: Tensor, kv: LayerKV | None = None, key_mask: Tensor | None = None
    ) -> Tensor:  # (B, T, C) -> (B, T, C)
        x = x + self.attn(self.ln1(x), kv, key_mask)
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """A stack of causal pre-LN :class:`Block` s and a final LayerNorm: ``(B, T, C) -> (B, T, C)``
    (``causal=False``: full self-attention, the encoder of a ViT).

    Position information is the caller's (learned embeddings added to the input) unless
    ``rotary=True``. Weights are initialised as in GPT-2: N(0, 0.02), with the residual output
    projections scaled by ``1 / sqrt(2 n_layer)``.
    """

    def __init__(
        self,
        n_layer: int,
        n_embd: int,
        n_head: int,
        dropout: float = 0.0,
        bias: bool = True,
        rotary: bool = False,
        max_len: int = 1024,
        causal: bool = True,
    ) -> None:
        super().__init__()
        self.n_head = n_head
        self.head_dim = n_embd // n_head
        self.max_len = max_len
        self.blocks = nn.ModuleList(
            Block(n_embd, n_head, dropout, bias, rotary, max_len, causal) for _ in range(n_layer)
        )
        self.ln_f = nn.LayerNorm(n_embd, bias=bias)
        self.apply(init_gpt_weights)
        for blk in self.blocks:
            for lin in (blk.attn.proj, blk.mlp[2]):
                nn.init.normal_(lin.weight, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    def new_cache(self, max_len: int | None = None) -> KVCache:
        """An empty cache for sequences of up to ``max_len`` positions (default ``max_len`` of the
        transformer); batch size, dtype and device come from the first call that uses it."""
        return KVCache(len(self.blocks), max_len or self.max_len)

    def forward(
        self, x: Tensor, cache: KVCache | None = None, key_mask: Tensor | None = None
    ) -> Tensor:
        """``key_mask`` ``(B, T)`` or ``(B, T, T)``: the keys each position may attend to (True),
        for ``causal=False`` (padding, or a block mask between segments)."""
        for i, blk in enumerate(self.blocks):
            x = blk(x, cache.layers[i] if cache is not None else None, key_mask)
        return self.ln_f(x)


def init_gpt_weights(m: nn.Module) -> None:
    """GPT-2 initialisation: linear and embedding weights N(0, 0.02), biases zero."""
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Embedding):
        nn.init.normal_(m.weight, mean=0.0, std=0.02)
