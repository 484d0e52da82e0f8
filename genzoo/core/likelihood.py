"""Likelihood units: nats per example -> bits per dimension, with genzoo's one convention.

Models see images in [-1, 1]; likelihood models are trained and evaluated on uniformly
dequantized data ``x = 2 (k + u) / L - 1``. A density on [-1, 1]^D converts to a density on
[0, L)^D (the space of dequantized integer levels) by the change of variables
``log p_[0,L) = log p_[-1,1] - D log(L / 2)``, and

    bits/dim = -log p_[0,L)(k + u) / (D ln 2),

the convention of the PixelCNN (arXiv:1601.06759), RealNVP (arXiv:1605.08803), Glow
(arXiv:1807.03039) and DDPM (arXiv:2006.11239) papers. Discrete models (a softmax over levels)
report their exact discrete NLL, for which no change of variables applies (``levels=None``).

This module sits in ``core`` so that models (the training loss of an exact density) and metrics
(``genzoo.metrics.bits_per_dim``, which re-exports it) share the one conversion;
:class:`ExactNLL` is the loss and evaluation of every model trained by maximum likelihood on an
exact density (the flows, PPCA).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from genzoo.core.protocol import Batch, ExactLikelihood, LossOutput


def bits_per_dim(nll_nats: Tensor | float, dim: int, levels: int | None) -> Tensor:
    """Convert an NLL in nats per example to bits/dim (float64).

    ``nll_nats`` is ``-log p(x)`` of a density on [-1, 1]^D when ``levels`` is given (images), or of
    a discrete distribution / density on the raw space when ``levels`` is ``None``.
    """
    return _nats_to_bits(torch.as_tensor(nll_nats, dtype=torch.float64), dim, levels)


def _nats_to_bits(nll: Tensor, dim: int, levels: int | None) -> Tensor:
    """The conversion of :func:`bits_per_dim` in the dtype of ``nll`` (no float64 on MPS)."""
    if levels is not None:
        nll = nll + dim * math.log(levels / 2.0)  # log p_[0,L) = log p_[-1,1] - D log(L/2)
    return nll / (dim * math.log(2.0))


def exact_nll_loss(log_prob: Tensor, info: Any) -> LossOutput:
    """The training loss of a model with an exact density: the mean negative log-likelihood per
    dimension (so the learning rate does not depend on the data's size), logging ``nll`` in nats
    per example and, for images with ``info.levels``, ``bpd`` (:func:`bits_per_dim`).

    ``log_prob``: ``(B,)`` nats per example in model space; ``info``: the dataset's ``DataInfo``.
    """
    nll = -log_prob.mean()  # the one reduction over the batch
    d = info.dim
    logs: dict[str, Tensor | float] = {"nll": nll.detach()}
    if info.kind == "images" and info.levels is not None:
        logs["bpd"] = _nats_to_bits(nll.detach(), d, info.levels)
    return LossOutput(nll / d, logs)


class ExactNLL(ExactLikelihood):
    """An :class:`~genzoo.core.protocol.ExactLikelihood` trained by maximum likelihood: ``loss``
    is :func:`exact_nll_loss` of ``log_prob(batch["x"])`` and ``eval_metrics`` reports
    ``{"log_prob": (B,)}`` in nats per example. List it before ``GenerativeModel`` among the
    bases, so that these two override the base's."""

    info: Any

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """Mean negative log-likelihood per dimension (nats/dim: the scale of the loss does not
        depend on the data's size); logs ``nll`` in nats per example and, for images, ``bpd``."""
        return exact_nll_loss(self.log_prob(batch["x"]), self.info)

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """``{"log_prob": (B,)}``: the exact log-likelihood of ``batch["x"]``, nats per example."""
        return {"log_prob": self.log_prob(batch["x"])}
