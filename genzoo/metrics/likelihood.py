"""Likelihood units: bits per dimension with genzoo's one dequantization convention.

The conversion lives in :mod:`genzoo.core.likelihood` (models compute their training loss with
it too); this module is where consumers find it, ``genzoo.metrics.bits_per_dim``.
"""

from __future__ import annotations

from genzoo.core.likelihood import bits_per_dim

__all__ = ["bits_per_dim"]
