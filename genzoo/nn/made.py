"""Masked autoregressive networks and the affine autoregressive flow layer built on them.

- :class:`MADE` -- "MADE: Masked Autoencoder for Distribution Estimation" (Germain, Gregor, Murray
  & Larochelle, arXiv:1502.03509): an MLP whose weights are multiplied by binary masks so that
  output ``i`` depends only on the inputs that come before ``i`` in an ordering. Each unit gets a
  degree ``m`` (Sec. 4): inputs the position of their variable in the ordering (1..D), hidden
  units a degree in ``[min degree of the layer below, D - 1]``; a hidden weight ``k' <- k`` is kept
  when ``m(k') >= m(k)`` (Eq. 12), an output weight ``d <- k`` when ``m_out(d) > m(k)`` (Eq. 13).
  Hence the Jacobian of every output block with respect to the input is strictly triangular
  under the ordering.
- :class:`AffineAutoregressive` -- the affine autoregressive transform of MAF (Papamakarios,
  Pavlakou & Murray, "Masked Autoregressive Flow for Density Estimation", arXiv:1705.07057,
  Sec. 3.1): ``x_i = u_i exp(alpha_i) + mu_i`` with ``(mu_i, alpha_i) = MADE(x_<i)``. The
  density direction ``x -> u`` is one MADE pass; the sampling direction ``u -> x`` needs ``D``
  passes, one per position of the ordering.
- :class:`Inverted` -- a flow layer run backwards: an IAF layer (Kingma et al., "Improved
  Variational Inference with Inverse Autoregressive Flow", arXiv:1606.04934, Sec. 4) is the
  affine autoregressive transform used in the sampling direction, so that sampling is one pass
  and the density needs ``D`` (MAF paper, Sec. 3.2: "IAF is MAF's inverse"). The sampling pass
  also gives the log-determinant, so an IAF knows the density of its own samples in one pass
  (what probability density distillation trains on, Parallel WaveNet, arXiv:1711.10433).

Written by hand: no maintained PyTorch library ships MADE masks with the flow-layer interface of
:mod:`genzoo.nn.flow_layers` (``forward -> (y, logdet)``, ``inverse``) that genzoo's flows share.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.nn.flow_layers import FlowLayer

__all__ = ["MADE", "AffineAutoregressive", "Inverted", "MaskedLinear", "made_masks"]


class MaskedLinear(nn.Linear):
    """``y = (W * mask) x + b`` with a fixed 0/1 ``mask`` ``(out, in)``: masked weights get a zero
    gradient and never act."""

    def __init__(self, in_features: int, out_features: int, mask: Tensor) -> None:
        super().__init__(in_features, out_features)
        if mask.shape != (out_features, in_features):
            raise ValueError(f"mask shape {tuple(mask.shape)} != ({out_features}, {in_features})")
        self.register_buffer("mask", mask.float(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask.to(self.weight.dtype), self.bias)


def made_masks(order: Tensor, hidden: Sequence[int], n_out: int) -> list[Tensor]:
    """The masks of :class:`MADE` for an input ``order`` (a permutation of ``0..D-1``: ``order[j]``
    is the position of input ``j``), hidden widths and ``n_out`` outputs per input.

    Degrees (Sec. 4): input ``j`` has ``m = order[j] + 1``; hidden units cycle through
    ``min_prev .. D - 1`` (deterministic, so every allowed connection exists when the layer is at
    least ``D - 1`` wide); output ``(k, j)`` has the degree of input ``j``. Returns ``(out, in)``
    masks, the last one for ``n_out * D`` outputs ordered ``(k, j)`` (block ``k`` of D).
    """
    d = order.numel()
    m_prev = order.long() + 1  # (D,) input degrees 1..D
    masks = []
    for h in hidden:
        lo = int(m_prev.min()) if d > 1 else 1
        span = max(d - lo, 1)  # degrees lo .. D-1 (a single degree lo when D = 1)
        m = lo + torch.arange(h) % span  # (h,)
        masks.append((m[:, None] >= m_prev[None, :]).float())  # Eq. (12)
        m_prev = m
    m_out = (order.long() + 1).repeat(n_out)  # (n_out * D,)
    masks.append((m_out[:, None] > m_prev[None, :]).float())  # Eq. (13): strictly greater
    return masks


class MADE(nn.Module):
    """Masked autoencoder ``(B, D) -> (B, n_out, D)`` (arXiv:1502.03509): output ``[:, k, i]``
    depends only on the inputs ``x_j`` with ``order[j] < order[i]``.

    ``order``: a permutation of ``0..D-1`` (default: the identity, i.e. ``x_1, x_2, ...``);
    ``hidden``: widths of the masked hidden layers (at least one). The last layer starts at zero
    (the identity transform at initialisation, as the couplings of :mod:`genzoo.nn.flow_layers`).
    """

    def __init__(
        self,
        dim: int,
        hidden: Sequence[int] = (256, 256),
        n_out: int = 2,
        order: Tensor | None = None,
        act: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("MADE needs at least one hidden layer")
        order = torch.arange(dim) if order is None else torch.as_tensor(order, dtype=torch.long)
        if not torch.equal(torch.sort(order).values, torch.arange(dim)):
            raise ValueError("order must be a permutation of 0..dim-1")
        self.dim, self.n_out = dim, n_out
        self.register_buffer("order", order.clone(), persistent=False)
        masks = made_masks(order, hidden, n_out)
        widths = [dim, *hidden, n_out * dim]
        layers: list[nn.Module] = []
        for i, mask in enumerate(masks):
            layers.append(MaskedLinear(widths[i], widths[i + 1], mask))
            if i < len(masks) - 1:
                layers.append(act())
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).view(x.shape[0], self.n_out, self.dim)  # (B, n_out * D) -> (B, k, D)


class AffineAutoregressive(FlowLayer):
    """MAF's layer (arXiv:1705.07057, Sec. 3.1) in the density direction ``x -> u``:

    ``u_i = (x_i - mu_i(x_<i)) exp(-alpha_i(x_<i))`` (Eq. 4), ``log |det du/dx| = -sum_i alpha_i``
    (Eq. 5). ``forward`` is one MADE pass; ``inverse`` (``u -> x``, Eq. 3) runs ``D`` passes, each
    fixing the next position of the ordering. ``alpha = max_log_scale * tanh(raw /
    max_log_scale)`` bounds the log-scale softly (0: no bound).
    """

    def __init__(self, made: MADE, max_log_scale: float = 0.0) -> None:
        super().__init__()
        if made.n_out != 2:
            raise ValueError(f"an affine layer needs a MADE with n_out = 2, got {made.n_out}")
        self.made = made
        self.max_log_scale = float(max_log_scale)

    def _mu_alpha(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, raw = self.made(x).unbind(1)  # (B, 2, D) -> 2 x (B, D)
        c = self.max_log_scale
        return mu, (c * torch.tanh(raw / c) if c > 0 else raw)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        _no_cond(cond)
        mu, alpha = self._mu_alpha(x)
        u = (x - mu) * torch.exp(-alpha)  # Eq. (4)
        return u, -alpha.sum(1)  # Eq. (5): log |det du/dx| = -sum alpha

    def inverse_and_logdet(self, u: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``u -> (x, log |det du/dx| at x)``: ``D`` passes in the order of the MADE (Eq. 3)."""
        _no_cond(cond)
        x = torch.zeros_like(u)
        alpha = torch.zeros_like(u)
        for _ in range(self.made.dim):  # after pass p the first p positions are exact
            mu, alpha = self._mu_alpha(x)
            x = u * torch.exp(alpha) + mu  # Eq. (3)
        return x, -alpha.sum(1)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        _no_cond(cond)
        return self.inverse_and_logdet(y)[0]


class Inverted(FlowLayer):
    """``layer`` run backwards: ``forward`` is ``layer.inverse`` (with the negated log-determinant)
    and ``inverse`` is ``layer.forward``. Wrapping :class:`AffineAutoregressive` gives an IAF layer
    (arXiv:1606.04934, Eq. 10 with ``sigma = exp(alpha)``): the sampling direction ``u -> x`` is one
    MADE pass over ``u``, the density direction ``x -> u`` needs ``D``."""

    def __init__(self, layer: AffineAutoregressive) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        _no_cond(cond)
        u, logdet_fwd = self.layer.inverse_and_logdet(x)
        return u, -logdet_fwd  # log |det du/dx| = -log |det dx/du|

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.layer(y, cond)[0]

    def inverse_and_logdet(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The sampling direction with its log-determinant in one MADE pass: ``x = layer(y)``
        and ``log |det dy/dx| = -log |det dx/dy|`` (what ``layer`` reports)."""
        x, logdet_layer = self.layer(y, cond)
        return x, -logdet_layer


def _no_cond(cond: Tensor | None) -> None:
    if cond is not None:
        raise ValueError("autoregressive flow layers are unconditional; pass cond=None")
