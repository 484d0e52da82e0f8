"""Decoder-only transformer blocks: causal self-attention, pre-LN blocks, a KV cache, rotary.

The architecture of GPT-2 (Radford et al. 2019) as written in nanoGPT: pre-LayerNorm residual
blocks ``x + attn(ln(x))``, ``x + mlp(ln(x))`` (Xiong et al., "On Layer Normalization in the
Transformer Architecture", arXiv:2002.04745), multi-head attention of Vaswani et al., "Attention
Is All You Need", arXiv:1706.03762, Eq. (1), through
``torch.nn.functional.scaled_dot_product_attention`` with a causal mask, and optionally rotary
position embeddings (Su et al., "RoFormer", arXiv:2104.09864).

:class:`KVCache` keeps the keys and values of past positions so that generation costs one position
per step; :class:`Transformer` takes token embeddings ``(B, T, C)`` and returns features
``(B, T, C)``, continuing at the cache's position when given one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerKV:
    """Keys and values ``(B, n_head, max_len, head_dim)`` of one attention layer, allocated at the
    first :meth:`append` with the dtype and device of the keys (so it works under autocast)."""

    def __init__(self, max_len: int) -> None:
        self.max_len = max_len
        self.k: Tensor | None = None
        self.v: Tensor | None = None
        self.length = 0

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store new keys/values ``(B, H, T, hd)``; return all so far, ``(B, H, L, hd)`` each."""
        t0, t1 = self.length, self.length + k.shape[2]
        if t1 > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} positions; {t1} needed")
        if self.k is None or self.v is None:
            b, h, _, hd = k.shape
            self.k = k.new_empty(b, h, self.max_len, hd)
            self.v = v.new_empty(b, h, self.max_len, hd)
        self.k[:, :, t0:t1] = k
        self.v[:, :, t0:t1] = v
        self.length = t1
        return self.k[:, :, :t1], self.v[:, :, :t1]


class KVCache:
    """Keys and values of past positions for every layer of a :class:`Transformer`.

    ``length`` is the number of positions already processed; the next call continues there.
    """

    def __init__(self, n_layer: int, max_len: int) -> None:
        self.layers = [LayerKV(max_len) for _ in range(n_layer)]
        self.max_len = max_len

    @property
    def length(self) -> int:
        return self.layers[0].length if self.layers else 0


def rotary_tables(
    head_dim: int, max_len: int, base: float = 10000.0
) -> tuple[Tensor, Tensor]:  # -> 2 x (max_len, head_dim // 2)
    """cos, sin of the rotary angles ``m theta_i``, ``theta_i = base^(-2i/d)``; RoFormer, Sec. 3."""
    if head_dim % 2:
        raise ValueError(f"rotary embeddings need an even head dimension, got {head_dim}")
    theta = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    ang = torch.arange(max_len, dtype=torch.float64)[:, None] * theta[None]  # (max_len, hd/2)
    return ang.cos().float(), ang.sin().float()


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate consecutive pairs of ``x`` ``(B, H, T, hd)`` by the angles of ``cos, sin``
    ``(T, hd/2)``.

    RoFormer, Sec. 3: ``(x1, x2) -> (x1 cos - x2 sin, x1 sin + x2 cos)`` per pair.
    """
    x1, x2 = x.float().unflatten(-1, (-1, 2)).unbind(-1)  # 2 x (B, H, T, hd/2)
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (B, H, T, hd/2, 2)
    return out.flatten(-2).to(x.dtype)  # (B, H, T, hd)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with an optional KV cache and rotary positions."""

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        dropout: float = 0.0,
        bias: bool = True,
        rotary: bool = False,
        max_len: int = 1024,
    ) -> None:
        super().__init__()
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

    def forward(self, x: Tensor, kv: LayerKV | None = None) -> Tensor:
        """``(B, T, C) -> (B, T, C)``; with ``kv`` the T positions continue after ``kv.length``."""
        b, t, c = x.shape
        past = kv.length if kv is not None else 0
        q, k, v = self.qkv(x).split(c, dim=2)  # 3 x (B, T, C)
        q = q.view(b, t, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = k.view(b, t, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        v = v.view(b, t, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        if self.rotary:
            cos, sin = self.rope_cos[past : past + t], self.rope_sin[past : past + t]
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if kv is not None:
            k, v = kv.append(k, v)  # (B, H, past + T, hd)
        drop = self.dropout if self.training else 0.0
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True)
        elif t == 1:  # one new position sees every cached one
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        else:  # several new positions after a cache: query past + i sees keys 0 .. past + i
            qpos = torch.arange(past, past + t, device=x.device)[:, None]
            kpos = torch.arange(past + t, device=x.device)[None, :]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=kpos <= qpos, dropout_p=drop)
        y = y.transpose(1, 2).reshape(b, t, c)  # (B, H, T, hd) -> (B, T, C)
        return self.resid_drop(self.proj(y))


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
    ) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias, rotary, max_len)
        self.ln2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd, bias=bias),
            nn.GELU(),
            nn.Linear(4 * n_embd, n_embd, bias=bias),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor, kv: LayerKV | None = None) -> Tensor:  # (B, T, C) -> (B, T, C)
        x = x + self.attn(self.ln1(x), kv)
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """A stack of causal pre-LN :class:`Block` s and a final LayerNorm: ``(B, T, C) -> (B, T, C)``.

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
    ) -> None:
        super().__init__()
        self.n_head = n_head
        self.head_dim = n_embd // n_head
        self.max_len = max_len
        self.blocks = nn.ModuleList(
            Block(n_embd, n_head, dropout, bias, rotary, max_len) for _ in range(n_layer)
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

    def forward(self, x: Tensor, cache: KVCache | None = None) -> Tensor:
        for i, blk in enumerate(self.blocks):
            x = blk(x, cache.layers[i] if cache is not None else None)
        return self.ln_f(x)


def init_gpt_weights(m: nn.Module) -> None:
    """GPT-2 initialisation: linear and embedding weights N(0, 0.02), biases zero."""
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Embedding):
        nn.init.normal_(m.weight, mean=0.0, std=0.02)
