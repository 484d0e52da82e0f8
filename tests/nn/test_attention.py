"""The one multi-head attention of genzoo.nn: parity with the textbook formula, the KV cache,
rotary positions, key masks, and the small shared modules (class embedding, freezing)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from genzoo.nn.attention import (
    KVCache,
    apply_rotary,
    merge_heads,
    multi_head_attention,
    rotary_tables,
    split_heads,
)
from genzoo.nn.embeddings import ClassEmbedding
from genzoo.nn.gan_nets import frozen


def naive(q: Tensor, k: Tensor, v: Tensor, n_head: int, allowed: Tensor | None = None) -> Tensor:
    """softmax(Q K^T / sqrt(d)) V per head, in float64, with a (B, N, L) boolean mask."""
    b, n, c = q.shape
    hd = c // n_head
    out = torch.empty(b, n, c, dtype=torch.float64)
    for h in range(n_head):
        sl = slice(h * hd, (h + 1) * hd)
        s = q[..., sl].double() @ k[..., sl].double().transpose(1, 2) / math.sqrt(hd)  # (B, N, L)
        if allowed is not None:
            s = s.masked_fill(~allowed, float("-inf"))
        out[..., sl] = s.softmax(-1) @ v[..., sl].double()
    return out


def _qkv(b: int = 2, n: int = 5, length: int = 7, c: int = 12, seed: int = 0) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, t, c, generator=g) for t in (n, length, length)]


def test_heads_split_and_merge_are_inverse() -> None:
    x = torch.randn(3, 4, 12)
    h = split_heads(x, 3)
    assert h.shape == (3, 3, 4, 4) and torch.equal(h[:, 1], x[..., 4:8])
    assert torch.equal(merge_heads(h), x)


def test_full_attention_is_the_textbook_formula() -> None:
    q, k, v = _qkv()
    got = multi_head_attention(q, k, v, 3)
    torch.testing.assert_close(got.double(), naive(q, k, v, 3), atol=1e-5, rtol=1e-5)


def test_causal_attention_and_the_cache_agree_with_the_full_sequence() -> None:
    x = _qkv(n=9, length=9)
    full = multi_head_attention(*x, 3, causal=True)
    allowed = torch.ones(9, 9).tril().bool().expand(2, 9, 9)
    torch.testing.assert_close(full.double(), naive(*x, 3, allowed), atol=1e-5, rtol=1e-5)
    cache = KVCache(1, 16).layers[0]
    parts = [
        multi_head_attention(*(t[:, a:b] for t in x), 3, causal=True, cache=cache)
        for a, b in ((0, 4), (4, 5), (5, 9))  # several, then one, then several positions
    ]
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-6, rtol=1e-6)
    assert cache.length == 9


def test_rotary_positions_make_scores_depend_on_offsets_only() -> None:
    cos, sin = rotary_tables(4, 32)
    q, k = torch.randn(1, 1, 1, 4), torch.randn(1, 1, 1, 4)

    def score(m: int, n: int) -> float:
        qm = apply_rotary(q, cos[m : m + 1], sin[m : m + 1])
        kn = apply_rotary(k, cos[n : n + 1], sin[n : n + 1])
        return float((qm * kn).sum())

    assert score(3, 1) == pytest.approx(score(12, 10), abs=1e-5)  # RoFormer, Sec. 3.4.2
    # with a cache the new positions are rotated by their absolute positions
    x = _qkv(n=6, length=6, seed=1)
    full = multi_head_attention(*x, 3, causal=True, rotary=rotary_tables(4, 8))
    cache = KVCache(1, 8).layers[0]
    a = multi_head_attention(
        *(t[:, :2] for t in x), 3, causal=True, rotary=rotary_tables(4, 8), cache=cache
    )
    b = multi_head_attention(
        *(t[:, 2:] for t in x), 3, causal=True, rotary=rotary_tables(4, 8), cache=cache
    )
    torch.testing.assert_close(torch.cat([a, b], 1), full, atol=1e-6, rtol=1e-6)


def test_key_mask_ignores_padding_and_empty_rows_give_zeros_after_the_projection() -> None:
    q, k, v = _qkv(b=3)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0, 0], [0] * 7, [1] * 7]).bool()
    proj = nn.Linear(12, 12)  # with a bias: zero rows must be zeroed after it
    got = multi_head_attention(q, k, v, 3, key_mask=mask, project=proj)
    allowed = mask[:, None, :].expand(3, 5, 7)
    want = proj(naive(q, k, v, 3, allowed).float())
    torch.testing.assert_close(got[0], want[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[2], want[2], atol=1e-5, rtol=1e-5)
    assert torch.equal(got[1], torch.zeros_like(got[1]))
    # padded keys change nothing
    k2, v2 = k.clone(), v.clone()
    k2[0, 3:], v2[0, 3:] = 100.0, -100.0
    again = multi_head_attention(q, k2, v2, 3, key_mask=mask, project=proj)
    torch.testing.assert_close(again[0], got[0])
    with pytest.raises(ValueError, match="causal"):
        multi_head_attention(q, q, q, 3, causal=True, key_mask=mask[:, :5])


def test_class_embedding_uses_its_null_row_without_labels() -> None:
    emb = ClassEmbedding(4, 6)
    assert emb.num_embeddings == 5 and emb.null_class == 4
    assert list(emb.state_dict()) == ["weight"]
    torch.testing.assert_close(emb(None, 3), emb.weight[4].expand(3, 6))
    torch.testing.assert_close(emb(torch.tensor([0, 2])), emb.weight[[0, 2]])


def test_frozen_blocks_gradients_inside_and_restores_only_what_required_them() -> None:
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.bias.requires_grad_(False)
    with frozen(a, b):
        assert not any(p.requires_grad for p in [*a.parameters(), *b.parameters()])
        out = (a(torch.ones(1, 2)) * torch.ones(1, 2, requires_grad=True)).sum()
        out.backward()
        assert a.weight.grad is None
    assert a.weight.requires_grad and b.weight.requires_grad and not b.bias.requires_grad


def test_a_key_mask_per_query_is_the_textbook_formula_and_empty_rows_give_zeros() -> None:
    q, k, v = _qkv(b=2)
    g = torch.Generator().manual_seed(1)
    allowed = torch.rand(2, 5, 7, generator=g) < 0.5  # (B, N, L): a different mask per query
    allowed[:, :, 0] = True
    allowed[1, 2] = False  # one query sees no key at all
    proj = nn.Linear(12, 12)
    got = multi_head_attention(q, k, v, 3, key_mask=allowed, project=proj)
    ok = allowed.clone()
    ok[1, 2] = True  # (the naive softmax of an empty row is undefined; that row is checked apart)
    want = proj(naive(q, k, v, 3, ok).float())
    rows = torch.ones(2, 5, dtype=torch.bool)
    rows[1, 2] = False
    torch.testing.assert_close(got[rows], want[rows], atol=1e-5, rtol=1e-5)
    assert torch.equal(got[1, 2], torch.zeros(12))
