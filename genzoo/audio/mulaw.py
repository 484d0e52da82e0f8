"""Mu-law companding (ITU-T G.711), as WaveNet quantizes audio (arXiv:1609.03499, Sec. 2.2,
Eq. (2)): ``f(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu)``, then 256 levels.

Written by hand rather than taken from torchaudio (``mu_law_encoding`` / ``mu_law_decoding``,
whose rounding it matches exactly, see the tests) so that WaveNet needs no optional dependency:
these are four lines of torch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MU = 255  # mu of 8-bit mu-law: 256 levels 0..255


def mu_law_encode(x: Tensor, mu: int = MU) -> Tensor:
    """Waveform in [-1, 1] (clamped) -> integer levels ``0..mu`` (``torch.long``)."""
    x = x.float().clamp(-1.0, 1.0)
    y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)  # Eq. (2), in [-1, 1]
    return ((y + 1) / 2 * mu + 0.5).floor().long()  # nearest of mu + 1 levels (torchaudio's rule)


def mu_law_decode(k: Tensor, mu: int = MU) -> Tensor:
    """Integer levels ``0..mu`` -> waveform in [-1, 1] (the inverse companding of the level)."""
    y = k.float() / mu * 2 - 1
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu
