"""Noise-level / timestep embeddings, and class embeddings with a "no class" row."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Transformer-style sinusoidal features of a (B,) float tensor -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]  # (B, half)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


class NoiseEmbedding(nn.Module):
    """Sinusoidal features of the noise input followed by a 2-layer MLP (DDPM, arXiv:2006.11239)."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, c_noise: Tensor) -> Tensor:  # (B,) -> (B, out_dim)
        return self.mlp(sinusoidal_embedding(c_noise, self.dim))


class ClassEmbedding(nn.Embedding):
    """Class labels ``(B,)`` -> embeddings ``(B, dim)``, with one extra row, index ``n_classes``
    (:attr:`null_class`), for "no class": the unconditional input of classifier-free guidance
    (Ho & Salimans, arXiv:2207.12598), used where the labels are ``None``.

    An ``nn.Embedding`` of ``n_classes + 1`` rows (its parameter is ``weight``, as before)."""

    def __init__(self, n_classes: int, dim: int) -> None:
        super().__init__(n_classes + 1, dim)

    @property
    def null_class(self) -> int:
        return self.num_embeddings - 1

    def forward(self, labels: Tensor | None, batch: int | None = None) -> Tensor:  # type: ignore[override]
        """Embeddings of ``labels`` ``(B,)``, or of :attr:`null_class` for ``batch`` examples
        when ``labels`` is ``None``."""
        if labels is None:
            if batch is None:
                raise ValueError("without labels, the batch size is needed")
            labels = torch.full((batch,), self.null_class, device=self.weight.device)
        return super().forward(labels)
