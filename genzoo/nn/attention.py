"""Multi-head attention, once: the core every attention layer of genzoo calls.

``softmax(Q K^T / sqrt(d)) V`` per head (Vaswani et al., "Attention Is All You Need",
arXiv:1706.03762, Eq. (1) and Sec. 3.2.2), through
``torch.nn.functional.scaled_dot_product_attention``. :func:`multi_head_attention` takes the
projected queries, keys and values ``(B, T, C)`` of any layer and returns the heads merged back to
``(B, N, C)``; the layers keep their own projections (and so their parameter names: a GPT block's
``attn.qkv``/``attn.proj``, a U-Net block's 1x1 convolutions ``qkv``/``proj``, a cross-attention's
``q``/``kv``/``proj``). It covers

- causal self-attention with a :class:`KVCache` (generation one position at a time) and rotary
  position embeddings (Su et al., "RoFormer", arXiv:2104.09864, Sec. 3): the GPT blocks;
- full self-attention: the U-Net's attention blocks, DiT's blocks;
- cross-attention to padded context tokens with a key mask: a query row whose context has no real
  token (a dropped caption) attends to nothing and its output (after ``project``) is zero, so the
  residual block is then the identity (latent diffusion's text conditioning, VQA's middle fusion).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.core.tensors import per_example


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
    """Keys and values of past positions for every layer of a transformer.

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


def split_heads(x: Tensor, n_head: int) -> Tensor:
    """``(B, T, C) -> (B, n_head, T, hd)``, ``hd = C / n_head``: head ``h`` holds the channels
    ``h*hd .. (h+1)*hd - 1``."""
    b, t, c = x.shape
    return x.view(b, t, n_head, c // n_head).transpose(1, 2)  # (B, T, H, hd) -> (B, H, T, hd)


def merge_heads(y: Tensor) -> Tensor:
    """``(B, n_head, T, hd) -> (B, T, n_head * hd)``, the inverse of :func:`split_heads`."""
    b, h, t, hd = y.shape
    return y.transpose(1, 2).reshape(b, t, h * hd)  # (B, T, H, hd) -> (B, T, C)


def key_padding(key_mask: Tensor) -> tuple[Tensor, Tensor]:
    """``(attn_mask (B, 1, 1, L), keep (B,))`` for a key mask ``(B, L)``, True for real keys;
    ``(attn_mask (B, 1, N, L), keep (B, N))`` for a mask per query ``(B, N, L)``.

    Rows without any real key attend everywhere (so the softmax is defined) and are zeroed
    afterwards by ``keep``."""
    m = key_mask.bool()
    keep = m.any(-1)  # (B,) or (B, N): rows with at least one real key
    m = m | ~keep[..., None]  # empty rows attend everywhere, then are zeroed
    return (m[:, None, None, :] if m.ndim == 2 else m[:, None]), keep


def multi_head_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    n_head: int,
    *,
    causal: bool = False,
    key_mask: Tensor | None = None,
    dropout: float = 0.0,
    rotary: tuple[Tensor, Tensor] | None = None,
    cache: LayerKV | None = None,
    project: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Multi-head scaled-dot-product attention of queries ``q`` ``(B, N, C)`` to keys ``k`` and
    values ``v`` ``(B, L, C)``, heads merged: ``(B, N, C)``, then ``project`` (the layer's output
    projection) if given.

    - ``causal``: query ``i`` sees keys ``0 .. i``; with a ``cache`` the ``N`` new positions
      continue after the ``cache.length`` cached ones (keys and values are appended to it).
    - ``rotary``: the full ``(cos, sin)`` tables of :func:`rotary_tables`; queries and keys are
      rotated by the angles of their positions (after the cached ones).
    - ``key_mask`` ``(B, L)``: True for real keys (padding gets no weight); rows without a real
      key give zeros (after ``project``). A mask per query ``(B, N, L)`` says which keys each
      query sees (a block mask, e.g. one that keeps two modalities apart).
    - ``dropout``: on the attention weights (pass 0 in eval mode).
    """
    if causal and key_mask is not None:
        raise ValueError("causal attention takes no key mask")
    t = q.shape[1]
    past = cache.length if cache is not None else 0
    qh, kh, vh = split_heads(q, n_head), split_heads(k, n_head), split_heads(v, n_head)
    if rotary is not None:
        cos, sin = rotary[0][past : past + t], rotary[1][past : past + t]
        qh, kh = apply_rotary(qh, cos, sin), apply_rotary(kh, cos, sin)
    if cache is not None:
        kh, vh = cache.append(kh, vh)  # (B, H, past + T, hd)
    attn_mask: Tensor | None = None
    keep: Tensor | None = None
    is_causal = False
    if key_mask is not None:
        attn_mask, keep = key_padding(key_mask)
    elif causal and past == 0:
        is_causal = True
    elif causal and t > 1:  # several new positions after a cache: query past + i sees 0 .. past + i
        qpos = torch.arange(past, past + t, device=q.device)[:, None]
        kpos = torch.arange(past + t, device=q.device)[None, :]
        attn_mask = kpos <= qpos
    # (causal, one new position after a cache: it sees every cached key, no mask)
    y = F.scaled_dot_product_attention(
        qh, kh, vh, attn_mask=attn_mask, dropout_p=dropout, is_causal=is_causal
    )  # (B, H, N, hd)
    out = merge_heads(y)  # (B, N, C)
    if project is not None:
        out = project(out)
    if keep is not None:
        out = out * (per_example(keep, out) if keep.ndim == 1 else keep[..., None].to(out.dtype))
    return out
