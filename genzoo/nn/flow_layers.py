"""Invertible layers for normalizing flows, with exact log-determinants.

Every layer maps ``x -> y`` and reports ``log |det dy/dx|`` per example:

- ``forward(x, cond=None) -> (y, logdet)`` with ``logdet`` of shape ``(B,)``;
- ``inverse(y, cond=None) -> x``.

Points are ``(B, D)``, images ``(B, C, H, W)``. ``cond`` is an optional ``(B, K)`` conditioning
vector that containers pass down and coupling networks append to their input (the built-in flows
are unconditional and pass ``None``).

Layers (papers by arXiv id):

- :class:`AdditiveCoupling` and :class:`DiagonalScaling` -- NICE (Dinh et al., arXiv:1410.8516);
- :class:`AffineCoupling` with checkerboard and channel masks, :class:`Squeeze` and the multi-scale
  :class:`FactorOut` -- RealNVP (Dinh et al., arXiv:1605.08803);
- :class:`ActNorm` (data-dependent initialisation), :class:`InvertibleConv1x1` (LU-decomposed;
  on points it is an invertible linear map) and the learned split prior of :class:`FactorOut` --
  Glow (Kingma & Dhariwal, arXiv:1807.03039);
- :class:`LogitTransform` -- the logit pre-processing of RealNVP (Sec. 4.1), mapping images in
  [-1, 1] to the real line, so that a flow's density is a density of x on [-1, 1]^D.

Building blocks only: nothing here knows about training or datasets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.nn.mlp import MLP

__all__ = [
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "CouplingConvNet",
    "CouplingMLP",
    "DiagonalScaling",
    "FactorOut",
    "Flatten",
    "FlowLayer",
    "FlowSequential",
    "InvertibleConv1x1",
    "LogitTransform",
    "Permute",
    "Squeeze",
    "alternating_mask",
    "channel_mask",
    "checkerboard_mask",
    "half_mask",
    "mul_exp",
]


def sum_except_batch(t: Tensor) -> Tensor:
    """``(B, ...) -> (B,)``: the sum over every dimension but the first."""
    return t.flatten(1).sum(1)


def _zeros_like_batch(x: Tensor) -> Tensor:
    return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)


def mul_exp(x: Tensor, log_s: Tensor) -> Tensor:
    """``x * exp(log_s)``, finite wherever the product is representable.

    ``exp`` alone overflows float32 past ``log_s = 88.7`` although ``x * exp(log_s)`` need not:
    an inverse that undoes a forward contraction ``exp(log_s)`` with ``log_s < -88.7`` (a
    sigmoid scale of ``1e-39``, which the forward still represents as a subnormal) would compute
    ``inf * y = inf`` and ``inf * 0 = NaN``. Multiplying by ``exp(log_s / 2)`` twice keeps every
    intermediate finite as long as the result is (up to ``|log_s| = 177``); torch has no fused
    ``x * exp(s)``, hence this by hand.
    """
    half = torch.exp(0.5 * log_s)
    return x * half * half


def _where_mask(mask: Tensor, a: Tensor) -> Tensor:
    """``a`` where ``mask`` is 1, else 0: ``a * mask`` without ``inf * 0 = NaN`` (a diverged
    value in the other half must not turn this half into NaN)."""
    return torch.where(mask.to(torch.bool), a, torch.zeros((), dtype=a.dtype, device=a.device))


class FlowLayer(nn.Module):
    """An invertible map with a tractable log-determinant (see the module docstring)."""

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x -> (y, log |det dy/dx|)``; the log-determinant has shape ``(B,)``."""
        raise NotImplementedError  # pragma: no cover - abstract

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        """``y -> x``, the exact inverse of :meth:`forward`."""
        raise NotImplementedError  # pragma: no cover - abstract

    def inverse_and_logdet(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``y -> (x, log |det dy/dx| at x)``: the inverse and the log-determinant of
        :meth:`forward` at the point it returns, so that a flow sampled in this direction knows
        the density of its own sample. This default runs :meth:`forward` once on ``x``; a layer
        whose forward is expensive (an IAF layer) overrides it."""
        x = self.inverse(y, cond)
        return x, self.forward(x, cond)[1]


class FlowSequential(FlowLayer):
    """A composition of flow layers; log-determinants add up (the chain rule)."""

    def __init__(self, layers: Sequence[FlowLayer]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        logdet = _zeros_like_batch(x)
        for layer in self.layers:
            x, ld = layer(x, cond)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        for layer in reversed(self.layers):
            y = layer.inverse(y, cond)
        return y

    def inverse_and_logdet(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        logdet = _zeros_like_batch(y)
        for layer in reversed(self.layers):
            y, ld = layer.inverse_and_logdet(y, cond)
            logdet = logdet + ld
        return y, logdet


# --------------------------------------------------------------------------------------------------
# masks


def alternating_mask(dim: int, parity: int = 0) -> Tensor:
    """``(D,)`` float mask that is 1 on the even (``parity=0``) or odd coordinates (NICE)."""
    return ((torch.arange(dim) % 2) == parity).float()


def half_mask(dim: int, parity: int = 0) -> Tensor:
    """``(D,)`` float mask that is 1 on the first ``ceil(D/2)`` coordinates (or the rest)."""
    m = (torch.arange(dim) < (dim + 1) // 2).float()
    return m if parity == 0 else 1.0 - m


def checkerboard_mask(shape: Sequence[int], parity: int = 0) -> Tensor:
    """``(C, H, W)`` float checkerboard: 1 where ``(i + j) % 2 == parity`` (RealNVP Fig. 3)."""
    c, h, w = (int(s) for s in shape)
    ij = torch.arange(h)[:, None] + torch.arange(w)[None, :]  # (H, W)
    return ((ij % 2) == parity).float().expand(c, h, w).clone()  # (C, H, W)


def channel_mask(shape: Sequence[int], parity: int = 0) -> Tensor:
    """``(C, H, W)`` float mask: 1 on the first ``ceil(C/2)`` channels (or the rest), RealNVP."""
    c, h, w = (int(s) for s in shape)
    m = (torch.arange(c) < (c + 1) // 2).float()
    m = m if parity == 0 else 1.0 - m
    return m[:, None, None].expand(c, h, w).clone()  # (C, H, W)


# --------------------------------------------------------------------------------------------------
# coupling networks


class CouplingMLP(nn.Module):
    """``(B, D) [+ cond (B, K)] -> (B, out_dim)`` MLP; the last layer starts at zero (identity
    coupling at initialisation)."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (256, 256),
        cond_dim: int = 0,
        act: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.cond_dim = cond_dim
        self.net = MLP(in_dim + cond_dim, out_dim, hidden, act=act, zero_last=True)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        if self.cond_dim:
            if cond is None:
                raise ValueError("this coupling network needs a conditioning vector")
            x = torch.cat([x, cond.to(x.dtype)], dim=1)  # (B, D + K)
        return self.net(x)


class _ResBlock(nn.Module):
    """``x + conv3x3(act(conv3x3(act(x))))`` at constant width."""

    def __init__(self, ch: int, act: type[nn.Module]) -> None:
        super().__init__()
        self.body = nn.Sequential(
            act(), nn.Conv2d(ch, ch, 3, padding=1), act(), nn.Conv2d(ch, ch, 3, padding=1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class CouplingConvNet(nn.Module):
    """Small ResNet ``(B, C, H, W) [+ cond (B, K)] -> (B, out_ch, H, W)`` for image couplings.

    A 3x3 stem, ``blocks`` residual blocks of two 3x3 convolutions, then a 3x3 output convolution
    that starts at zero so the coupling is the identity at initialisation (as in Glow). A
    conditioning vector is broadcast over the image and appended as channels.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        hidden: int = 64,
        blocks: int = 2,
        cond_dim: int = 0,
        act: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.cond_dim = cond_dim
        self.stem = nn.Conv2d(in_ch + cond_dim, hidden, 3, padding=1)
        self.blocks = nn.Sequential(*[_ResBlock(hidden, act) for _ in range(blocks)])
        self.act = act()
        self.out = nn.Conv2d(hidden, out_ch, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        if self.cond_dim:
            if cond is None:
                raise ValueError("this coupling network needs a conditioning vector")
            c = cond.to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])  # (B, K, H, W)
            x = torch.cat([x, c], dim=1)  # (B, C + K, H, W)
        return self.out(self.act(self.blocks(self.stem(x))))


# --------------------------------------------------------------------------------------------------
# couplings


class _MaskedCoupling(FlowLayer):
    """Shared mask bookkeeping: ``mask`` (1 = passed through and conditioned on) has the shape of
    one example, ``(D,)`` or ``(C, H, W)``; ``net`` maps ``x * mask`` to the transform's
    parameters, with ``k`` times the channels of ``x``."""

    def __init__(self, mask: Tensor, net: nn.Module) -> None:
        super().__init__()
        self.register_buffer("mask", mask.float())
        self.net = net

    def _params(self, x: Tensor, cond: Tensor | None) -> Tensor:
        return self.net(_where_mask(self.mask, x), cond)


class AdditiveCoupling(_MaskedCoupling):
    """NICE additive coupling (arXiv:1410.8516, Sec. 3.2): volume preserving.

    ``y = m * x + (1 - m) * (x + t(m * x))``, i.e. ``y_1 = x_1, y_2 = x_2 + t(x_1)``; logdet = 0.
    The network outputs ``t`` with the channels (or dimensions) of ``x``.
    """

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        t = self._params(x, cond)
        y = x + _where_mask(1.0 - self.mask, t)  # Sec. 3.2: y_2 = x_2 + m(x_1)
        return y, _zeros_like_batch(x)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        t = self._params(y, cond)  # y * mask == x * mask
        return y - _where_mask(1.0 - self.mask, t)  # Sec. 3.2: x_2 = y_2 - m(y_1)


class AffineCoupling(_MaskedCoupling):
    """RealNVP affine coupling (arXiv:1605.08803, Sec. 3.3 and 3.4), masked form of Eq. (9):

    ``y = m * x + (1 - m) * (x * exp(s(m * x)) + t(m * x))``, ``logdet = sum (1 - m) * s``.

    The network outputs ``2 C`` channels (``2 D`` for points): raw scale and shift. ``scale``
    stabilises the log-scale: ``"tanh"`` gives ``s = a * tanh(raw)`` with a learned per-channel
    ``a`` (the RealNVP code's scaled tanh); ``"sigmoid"`` gives ``exp(s) = sigmoid(raw + 2)`` as in
    Glow's code (contractive, and not the identity at a zero ``raw``).
    """

    def __init__(self, mask: Tensor, net: nn.Module, scale: str = "tanh") -> None:
        super().__init__(mask, net)
        if scale not in ("tanh", "sigmoid"):
            raise ValueError(f"scale must be 'tanh' or 'sigmoid', got {scale!r}")
        self.scale = scale
        channels = mask.shape[0]
        shape = (channels,) + (1,) * (mask.dim() - 1)  # (D,) or (C, 1, 1)
        self.tanh_scale = nn.Parameter(torch.ones(shape)) if scale == "tanh" else None

    def _log_s_t(self, x: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        h = self._params(x, cond)
        raw, t = h.chunk(2, dim=1)  # (B, C, ...) each
        if self.tanh_scale is not None:
            log_s = self.tanh_scale * torch.tanh(raw)
        else:
            log_s = F.logsigmoid(raw + 2.0)
        inv = 1.0 - self.mask
        return _where_mask(inv, log_s), _where_mask(inv, t)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        log_s, t = self._log_s_t(x, cond)
        y = x * torch.exp(log_s) + t  # Eq. (9), with s and t zero on the masked part
        return y, sum_except_batch(log_s)  # Sec. 3.3: log det = sum_j s_j

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        log_s, t = self._log_s_t(y, cond)  # y * mask == x * mask
        # Sec. 3.3: x_2 = (y_2 - t(y_1)) exp(-s(y_1)), finite where the forward's contraction
        # exp(s) was representable (a sigmoid scale can be tiny: see mul_exp)
        return mul_exp(y - t, -log_s)


class DiagonalScaling(FlowLayer):
    """NICE's final diagonal scaling ``y = exp(s) * x`` (arXiv:1410.8516, Sec. 3.3).

    One learned log-scale per dimension of an example (``shape`` is ``(D,)`` or ``(C, H, W)``),
    starting at zero; ``logdet = sum s``.
    """

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(tuple(int(s) for s in shape)))

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y = x * torch.exp(self.log_scale)
        return y, self.log_scale.sum().expand(x.shape[0]).to(x.dtype)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        return mul_exp(y, -self.log_scale)


# --------------------------------------------------------------------------------------------------
# Glow layers


def _channel_view(p: Tensor, x: Tensor) -> Tensor:
    """A per-channel vector ``(C,)`` shaped to broadcast over ``(B, C)`` or ``(B, C, H, W)``."""
    return p.view(1, -1, *([1] * (x.dim() - 2)))


def _spatial(x: Tensor) -> int:
    """Positions per channel: ``H * W`` for images, 1 for points."""
    return int(math.prod(x.shape[2:]))


class ActNorm(FlowLayer):
    """Activation normalisation (Glow, arXiv:1807.03039, Sec. 3.1, Table 1):
    ``y = exp(log_scale) * (x + bias)`` per channel, ``logdet = H W sum log_scale``.

    Data-dependent initialisation: the first forward pass in training mode sets ``bias`` and
    ``log_scale`` so that the batch's output has zero mean and unit variance per channel; the flag
    is a buffer, so a loaded checkpoint is not re-initialised. Works on ``(B, C)`` and
    ``(B, C, H, W)``.
    """

    def __init__(self, num_features: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.log_scale = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.uint8))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set the parameters from a batch ``x`` (zero mean, unit variance per channel)."""
        xc = x.transpose(0, 1).reshape(x.shape[1], -1)  # (C, B * H * W)
        mean = xc.mean(1)
        std = xc.std(1, unbiased=False)
        self.bias.copy_(-mean)
        self.log_scale.copy_(-torch.log(std + self.eps))
        self.initialized.fill_(1)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.training and not bool(self.initialized):
            self.initialize(x)
        y = (x + _channel_view(self.bias, x)) * torch.exp(_channel_view(self.log_scale, x))
        logdet = _spatial(x) * self.log_scale.sum()  # Table 1: h * w * sum log |s|
        return y, logdet.expand(x.shape[0]).to(x.dtype)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        return mul_exp(y, -_channel_view(self.log_scale, y)) - _channel_view(self.bias, y)

    def inverse_and_logdet(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Without a forward pass, so that sampling never triggers the data-dependent
        initialisation (which must see data, not samples)."""
        logdet = _spatial(y) * self.log_scale.sum()
        return self.inverse(y, cond), logdet.expand(y.shape[0]).to(y.dtype)


class InvertibleConv1x1(FlowLayer):
    """Invertible 1x1 convolution with an LU-decomposed weight (Glow, Sec. 3.2 and Table 1):

    ``W = P L (U + diag(sign(s) * exp(log |s|)))`` with a fixed permutation ``P``, unit lower
    triangular ``L`` and strictly upper triangular ``U``; ``logdet = H W sum log |s|``.
    Initialised from a random rotation. On points ``(B, D)`` it is the invertible linear map
    ``y = W x`` (``H W = 1``).
    """

    def __init__(self, num_features: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        c = int(num_features)
        q = torch.linalg.qr(torch.randn(c, c, generator=generator, dtype=torch.float64))[0]
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p.float())
        self.register_buffer("sign_s", torch.sign(s).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(c, c), -1))
        self.register_buffer("eye", torch.eye(c))
        self.lower = nn.Parameter(lower.float())
        self.upper = nn.Parameter(torch.triu(upper, 1).float())
        self.log_s = nn.Parameter(torch.log(torch.abs(s)).float())

    def weight(self) -> Tensor:
        """The ``(C, C)`` weight matrix ``P L (U + diag(s))``."""
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.perm @ lower @ upper

    def _matmul(self, x: Tensor, w: Tensor) -> Tensor:
        w = w.to(x.dtype)
        if x.dim() == 2:
            return x @ w.T  # (B, C)
        return F.conv2d(x, w[:, :, None, None])  # (B, C, H, W)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        logdet = _spatial(x) * self.log_s.sum()  # Table 1: h * w * sum log |s|
        return self._matmul(x, self.weight()), logdet.expand(x.shape[0]).to(x.dtype)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        w = self.weight()
        w_inv = torch.linalg.inv(w.double()).to(w.dtype)
        return self._matmul(y, w_inv)


# --------------------------------------------------------------------------------------------------
# reshaping layers (volume preserving)


class Permute(FlowLayer):
    """A fixed permutation of the features (dim 1) of points or images; logdet = 0."""

    def __init__(self, perm: Tensor) -> None:
        super().__init__()
        perm = torch.as_tensor(perm, dtype=torch.long)
        if not torch.equal(torch.sort(perm).values, torch.arange(perm.numel())):
            raise ValueError("perm must be a permutation of 0..n-1")
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm))

    @classmethod
    def reverse(cls, n: int) -> Permute:
        return cls(torch.arange(n - 1, -1, -1))

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return x[:, self.perm], _zeros_like_batch(x)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        return y[:, self.inv_perm]


class Squeeze(FlowLayer):
    """Space-to-depth ``(B, C, H, W) -> (B, 4C, H/2, W/2)`` (RealNVP Sec. 3.6, Fig. 3); logdet 0.

    Each 2x2 patch becomes 4 channels. ``H`` and ``W`` must be even.
    """

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"Squeeze needs an even height and width, got {h}x{w}")
        x = x.view(b, c, h // 2, 2, w // 2, 2)  # (B, C, H/2, 2, W/2, 2)
        x = x.permute(0, 1, 3, 5, 2, 4)  # (B, C, 2, 2, H/2, W/2)
        return x.reshape(b, 4 * c, h // 2, w // 2), _zeros_like_batch(x)  # (B, 4C, H/2, W/2)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        b, c4, h, w = y.shape
        c = c4 // 4
        y = y.view(b, c, 2, 2, h, w)  # (B, C, 2, 2, H/2, W/2)
        y = y.permute(0, 1, 4, 2, 5, 3)  # (B, C, H/2, 2, W/2, 2)
        return y.reshape(b, c, 2 * h, 2 * w)  # (B, C, H, W)


class Flatten(FlowLayer):
    """``(B, *shape) -> (B, D)``; logdet 0. ``shape`` is remembered for the inverse."""

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return x.flatten(1), _zeros_like_batch(x)  # (B, *shape) -> (B, D)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        return y.view(y.shape[0], *self.shape)  # (B, D) -> (B, *shape)


class FactorOut(FlowLayer):
    """Multi-scale factor-out (RealNVP Sec. 3.6; Glow's split, Sec. 3 / Fig. 2b).

    Splits the channels of ``x`` ``(B, C, H, W)`` into a kept part (the first ``ceil(C/2)``
    channels), which goes on through ``inner``, and a factored-out part ``x_2``, which leaves the
    flow here. ``inner`` must return flat ``(B, D_keep)`` latents. The output is flat,
    ``[inner(x_1), z_2]`` of shape ``(B, C H W)``.

    With ``learned_prior`` (Glow) ``x_2 ~ N(mu(x_1), exp(log_sigma(x_1))^2)``, computed by a
    zero-initialised 3x3 convolution of the kept half; the layer outputs the standardised
    ``z_2 = (x_2 - mu) / sigma`` (logdet ``-sum log_sigma``), so the whole flow has a standard
    normal base and sampling at a temperature scales ``z_2``. Without it (RealNVP) ``z_2 = x_2``.
    """

    def __init__(self, shape: Sequence[int], inner: FlowLayer, learned_prior: bool = False) -> None:
        super().__init__()
        c, h, w = (int(s) for s in shape)
        if c < 2:
            raise ValueError(f"FactorOut needs at least 2 channels, got shape {tuple(shape)}")
        self.shape = (c, h, w)
        self.c_keep = (c + 1) // 2
        self.inner = inner
        self.prior: nn.Conv2d | None = None
        if learned_prior:
            self.prior = nn.Conv2d(self.c_keep, 2 * (c - self.c_keep), 3, padding=1)
            nn.init.zeros_(self.prior.weight)
            nn.init.zeros_(self.prior.bias)

    def _mu_log_sigma(self, x1: Tensor) -> tuple[Tensor, Tensor]:
        assert self.prior is not None
        return self.prior(x1).chunk(2, dim=1)  # (B, C - C_keep, H, W) each

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x1, x2 = x[:, : self.c_keep], x[:, self.c_keep :]
        logdet = _zeros_like_batch(x)
        if self.prior is not None:
            mu, log_sigma = self._mu_log_sigma(x1)
            x2 = (x2 - mu) * torch.exp(-log_sigma)
            logdet = logdet - sum_except_batch(log_sigma)
        y1, ld = self.inner(x1, cond)
        return torch.cat([y1, x2.flatten(1)], dim=1), logdet + ld  # (B, C H W)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        c, h, w = self.shape
        d_keep = self.c_keep * h * w
        x1 = self.inner.inverse(y[:, :d_keep], cond)  # (B, C_keep, H, W)
        z2 = y[:, d_keep:].view(y.shape[0], c - self.c_keep, h, w)  # (B, C - C_keep, H, W)
        if self.prior is not None:
            mu, log_sigma = self._mu_log_sigma(x1)
            z2 = mul_exp(z2, log_sigma) + mu
        return torch.cat([x1, z2], dim=1)  # (B, C, H, W)


# --------------------------------------------------------------------------------------------------
# pre-processing


class LogitTransform(FlowLayer):
    """Logit pre-processing of RealNVP (arXiv:1605.08803, Sec. 4.1) for images in [-1, 1]:

    ``u = (x + 1) / 2``, ``p = alpha + (1 - 2 alpha) u``, ``y = logit(p)``, and
    ``logdet = sum [log((1 - 2 alpha) / 2) - log p - log(1 - p)]``, so a flow on ``y`` gives the
    exact density of ``x`` on [-1, 1]^D. ``alpha`` (0.05 in the paper) keeps ``p`` off 0 and 1.
    """

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
        self.alpha = float(alpha)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        a = self.alpha
        p = a + (1.0 - 2.0 * a) * (x + 1.0) / 2.0
        y = torch.log(p) - torch.log1p(-p)  # logit(p)
        ld = math.log((1.0 - 2.0 * a) / 2.0) - torch.log(p) - torch.log1p(-p)  # dy/dx per dim
        return y, sum_except_batch(ld)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        a = self.alpha
        u = (torch.sigmoid(y) - a) / (1.0 - 2.0 * a)
        return 2.0 * u - 1.0
