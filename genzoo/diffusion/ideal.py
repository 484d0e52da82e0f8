"""The ideal denoiser of a finite data set: the exact oracle for testing samplers.

For data ``{x_i}`` and ``x = x0 + sigma * eps``, the minimiser of the denoising loss is
``D*(x, sigma) = sum_i x_i softmax_i(-|x - x_i|^2 / (2 sigma^2))`` (Karras et al.,
arXiv:2206.00364, Eq. 57). Its denoising loss is the floor that any trained denoiser can only
approach (``genzoo eval`` reports it beside the model's, through
``DiffusionModel.per_example_loss(..., denoiser=IdealDenoiser(data))``).
"""

from __future__ import annotations

import torch
from torch import Tensor


class IdealDenoiser:
    """``D*(x, sigma)`` over a data set (N, ...), evaluated in chunks of the data set."""

    def __init__(self, data: Tensor, chunk: int = 4096) -> None:
        self.data = data.reshape(data.shape[0], -1)  # (N, D)
        self.shape = tuple(data.shape[1:])
        self.chunk = chunk
        self._sq = (self.data.double() ** 2).sum(1)  # (N,)

    @torch.no_grad()
    def __call__(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        b = x.shape[0]
        xf = x.reshape(b, -1).double()  # (B, D)
        data = self.data.to(x.device).double()
        sq = self._sq.to(x.device)
        s2 = sigma.to(x.device).double().reshape(b, 1) ** 2
        # Streaming softmax over chunks of the data set (running max, normaliser and weighted sum).
        m = torch.full((b, 1), -torch.inf, dtype=torch.float64, device=x.device)
        z = torch.zeros((b, 1), dtype=torch.float64, device=x.device)
        acc = torch.zeros_like(xf)
        xsq = (xf**2).sum(1, keepdim=True)
        for i in range(0, data.shape[0], self.chunk):
            d = data[i : i + self.chunk]
            dist2 = xsq - 2 * xf @ d.T + sq[i : i + self.chunk]  # |x - x_i|^2, (B, n)
            logits = -dist2 / (2 * s2)  # Eq. (57)
            m_new = torch.maximum(m, logits.max(1, keepdim=True).values)
            scale = torch.exp(m - m_new)
            w = torch.exp(logits - m_new)
            z = z * scale + w.sum(1, keepdim=True)
            acc = acc * scale + w @ d
            m = m_new
        return (acc / z).to(x.dtype).reshape(x.shape)
