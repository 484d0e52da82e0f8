"""Small tensor helpers that every layer shares."""

from __future__ import annotations

from torch import Tensor


def per_example(v: Tensor, x: Tensor) -> Tensor:
    """Broadcast a per-example ``(B,)`` tensor against ``x`` ``(B, ...)``: ``(B, 1, ..., 1)`` in
    ``x``'s dtype."""
    return v.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)
