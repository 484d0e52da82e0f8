"""Prefix-tuning (Li & Liang, "Prefix-Tuning: Optimizing Continuous Prompts for Generation",
arXiv:2101.00190).

A frozen transformer gets ``length`` trainable *virtual tokens* in front of every sequence: at
every layer their keys and values ``P_theta[i, :]`` are free parameters, so each real token
attends to them as it would to past tokens (Sec. 4.2, ``h_i = P_theta[i, :]`` for ``i`` in the
prefix). As in the paper (Sec. 4.3), ``P_theta`` is reparametrised as ``MLP(P'_theta)`` of a
smaller matrix ``P'`` ``(length, n_embd)`` for stable optimisation; after training only the
result is needed.

Here the prefix is a pre-filled :class:`~genzoo.nn.attention.KVCache`: :meth:`PrefixKV.cache`
returns a cache that already holds the ``length`` positions, and the transformer continues after
them, exactly as it continues after cached past tokens (positions shift by ``length``, as in
PEFT's prefix tuning). Gradients flow into the prefix through the cache. With ``length = 0`` the
cache is empty and the model is the base model.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genzoo.nn.attention import KVCache


class PrefixKV(nn.Module):
    """Trainable keys and values of ``length`` virtual tokens at each of ``n_layer`` layers."""

    def __init__(
        self, n_layer: int, n_head: int, n_embd: int, length: int, hidden: int = 64
    ) -> None:
        super().__init__()
        self.n_layer, self.n_head, self.n_embd, self.length = n_layer, n_head, n_embd, length
        self.prefix = nn.Parameter(0.02 * torch.randn(length, n_embd))  # P'_theta
        self.mlp = nn.Sequential(  # Sec. 4.3: P_theta = MLP(P'_theta)
            nn.Linear(n_embd, hidden), nn.Tanh(), nn.Linear(hidden, n_layer * 2 * n_embd)
        )
        nn.init.normal_(self.mlp[2].weight, std=0.02)
        nn.init.zeros_(self.mlp[2].bias)

    def key_values(self) -> Tensor:
        """``(n_layer, 2, n_head, length, head_dim)``: keys and values of the prefix per layer."""
        hd = self.n_embd // self.n_head
        kv = self.mlp(self.prefix)  # (P, L * 2 * C)
        kv = kv.view(self.length, self.n_layer, 2, self.n_head, hd)  # (P, L, 2, H, hd)
        return kv.permute(1, 2, 3, 0, 4)  # (L, 2, H, P, hd)

    def cache(self, batch: int, max_len: int) -> KVCache:
        """A cache of ``max_len`` positions for ``batch`` sequences that holds the prefix."""
        cache = KVCache(self.n_layer, max_len)
        if self.length == 0:
            return cache
        kv = self.key_values()
        hd = self.n_embd // self.n_head
        for layer, (k, v) in zip(cache.layers, kv, strict=True):
            rest = k.new_zeros(batch, self.n_head, max_len - self.length, hd)
            layer.k = torch.cat([k.expand(batch, -1, -1, -1), rest], dim=2)  # (B, H, max_len, hd)
            layer.v = torch.cat([v.expand(batch, -1, -1, -1), rest], dim=2)
            layer.length = self.length
        return cache
