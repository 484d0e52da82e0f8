"""Vector quantizer with a straight-through gradient, an EMA codebook and dead-code restarts.

van den Oord, Vinyals & Kavukcuoglu, "Neural Discrete Representation Learning" (VQ-VAE),
arXiv:1711.00937: nearest-neighbour quantization (Eq. (1)-(2)), the straight-through estimator
and the codebook and commitment losses (Eq. (3)), and the exponential-moving-average codebook of
Appendix A.1 (Eq. (6)-(8)). The EMA counts are Laplace-smoothed before dividing, as in the
reference Sonnet implementation, so a code with no assignments never divides by zero. Codes whose
EMA count falls below a threshold are restarted to random encoder outputs of the current batch
(Dhariwal et al., "Jukebox: A Generative Model for Music", arXiv:2005.00341, Sec. 3.3, "random
restarts").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class QuantizerOutput:
    """What :meth:`VectorQuantizer.forward` returns for ``N`` vectors of dimension ``d``."""

    z_q: Tensor  # (N, d): the quantized vectors, with the straight-through gradient to z_e
    indices: Tensor  # (N,) long: the chosen code of each vector
    commitment: Tensor  # scalar: mean ||z_e - sg[e]||^2 per value (unweighted)
    codebook_loss: Tensor  # scalar: mean ||sg[z_e] - e||^2 per value (0 with the EMA codebook)
    perplexity: Tensor  # scalar: exp(entropy of the batch's code frequencies)
    usage: Tensor  # scalar: fraction of the codebook used at least once in the batch
    restarted: int  # codes restarted in this call


def code_statistics(indices: Tensor, num_codes: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(counts (K,), perplexity, usage)`` of code ``indices``: ``perplexity = exp(-sum_i p_i
    log p_i)`` with ``p_i`` the fraction of vectors assigned to code ``i`` (0 log 0 = 0), and
    ``usage`` the fraction of the K codes used at least once."""
    counts = torch.bincount(indices.flatten(), minlength=num_codes).float()  # (K,)
    p = counts / counts.sum().clamp_min(1.0)
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum()  # p = 0 terms vanish
    usage = (counts > 0).float().mean()
    return counts, entropy.exp(), usage


class VectorQuantizer(nn.Module):
    """Maps vectors ``z_e (N, d)`` to their nearest codebook entries ``e_k (K, d)``.

    ``ema = True``: the codebook is a buffer updated in training mode by Eq. (6)-(8),
    ``N_i <- g N_i + (1 - g) n_i``, ``m_i <- g m_i + (1 - g) sum_{j: k_j = i} z_j``,
    ``e_i = m_i / N~_i`` with ``N~_i = (N_i + eps) / (n + K eps) n`` (``n = sum_i N_i``).
    ``ema = False``: the codebook is a parameter learned through the codebook loss of Eq. (3);
    the EMA counts are still kept (for restarts and usage). The counts start at one per code
    (``m = e``), so the codebook is unchanged until codes are used.

    ``dead_threshold > 0``: in training mode, after the update, every code whose EMA count is
    below it is moved to a random encoder output of the batch, with ``N_i = dead_threshold``.
    Updates happen only in training mode with gradients enabled.
    """

    def __init__(
        self,
        num_codes: int,
        dim: int,
        *,
        ema: bool = True,
        decay: float = 0.99,
        eps: float = 1e-5,
        dead_threshold: float = 1.0,
    ) -> None:
        super().__init__()
        self.num_codes = int(num_codes)
        self.dim = int(dim)
        self.ema = ema
        self.decay = float(decay)
        self.eps = float(eps)
        self.dead_threshold = float(dead_threshold)
        bound = 1.0 / math.sqrt(dim)
        init = torch.empty(num_codes, dim).uniform_(-bound, bound)
        if ema:
            self.register_buffer("codebook", init)
        else:
            self.codebook = nn.Parameter(init)
        self.register_buffer("cluster_size", torch.ones(num_codes))  # EMA counts N_i
        self.register_buffer("embed_sum", init.clone())  # EMA sums m_i

    def nearest(self, z: Tensor) -> Tensor:
        """Index of the nearest code of each vector, ``(N, d) -> (N,)`` (Eq. (2))."""
        e = self.codebook.float()
        zf = z.float()
        dist = zf.pow(2).sum(1, keepdim=True) - 2.0 * zf @ e.T + e.pow(2).sum(1)  # (N, K)
        return dist.argmin(1)

    def lookup(self, indices: Tensor) -> Tensor:
        """Codes of ``indices``: ``(...) -> (..., d)``."""
        return self.codebook[indices]

    def forward(self, z: Tensor, generator: torch.Generator | None = None) -> QuantizerOutput:
        """Quantize ``z (N, d)`` with the current codebook; in training mode then update it."""
        indices = self.nearest(z.detach())
        e = self.lookup(indices)  # (N, d)
        commitment = (z - e.detach()).pow(2).mean()  # ||z_e - sg[e]||^2, Eq. (3) third term
        if self.ema:
            codebook_loss = torch.zeros((), device=z.device)
        else:
            codebook_loss = (z.detach() - e).pow(2).mean()  # ||sg[z_e] - e||^2, Eq. (3)
        z_q = z + (e - z).detach()  # straight-through: forward e, backward identity to z_e
        counts, perplexity, usage = code_statistics(indices, self.num_codes)
        restarted = 0
        if self.training and torch.is_grad_enabled():
            self.update(z.detach().float(), indices, counts)
            restarted = self.restart_dead(z.detach().float(), generator)
        return QuantizerOutput(
            z_q, indices, commitment, codebook_loss, perplexity, usage, restarted
        )

    @torch.no_grad()
    def update(self, z: Tensor, indices: Tensor, counts: Tensor | None = None) -> None:
        """One EMA step of the counts and sums (Eq. (6)-(7)); with ``ema``, ``e_i = m_i / N~_i``
        (Eq. (8))."""
        if counts is None:
            counts = torch.bincount(indices, minlength=self.num_codes).float()
        sums = torch.zeros_like(self.embed_sum).index_add_(0, indices, z)  # (K, d)
        g = self.decay
        self.cluster_size.mul_(g).add_(counts, alpha=1 - g)  # Eq. (6)
        self.embed_sum.mul_(g).add_(sums, alpha=1 - g)  # Eq. (7)
        if self.ema:
            n = self.cluster_size.sum()
            smoothed = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n
            self.codebook.copy_(self.embed_sum / smoothed.unsqueeze(1))  # Eq. (8)

    @torch.no_grad()
    def restart_dead(self, z: Tensor, generator: torch.Generator | None = None) -> int:
        """Move codes with ``cluster_size < dead_threshold`` to random rows of ``z (N, d)``;
        returns how many were moved."""
        if self.dead_threshold <= 0:
            return 0
        dead = torch.nonzero(self.cluster_size < self.dead_threshold).flatten()
        n_dead = int(dead.numel())
        if n_dead == 0 or z.shape[0] == 0:
            return 0
        gdev = generator.device if generator is not None else z.device
        if n_dead <= z.shape[0]:  # distinct encoder outputs where the batch has enough
            pick = torch.randperm(z.shape[0], generator=generator, device=gdev)[:n_dead]
        else:
            pick = torch.randint(0, z.shape[0], (n_dead,), generator=generator, device=gdev)
        new = z[pick.to(z.device)]  # (n_dead, d)
        self.codebook.data[dead] = new.to(self.codebook.dtype)
        self.cluster_size[dead] = self.dead_threshold
        self.embed_sum[dead] = new * self.dead_threshold  # so that m_i / N_i = the new code
        return n_dead
