"""What every normalizing flow in genzoo shares: exact log-likelihood, sampling, encode/decode.

A flow is one invertible map ``f`` from data ``x`` to a latent ``z = f(x)`` of shape ``(B, D)``
with a standard normal base, so by the change of variables (NICE, arXiv:1410.8516, Sec. 2)

    log p(x) = log N(f(x); 0, I) + log |det df/dx|.

Images first go through the logit pre-processing of RealNVP (arXiv:1605.08803, Sec. 4.1), whose
log-determinant is counted, so ``log_prob(x)`` is the exact density of ``x`` on [-1, 1]^D, the
model space of the trainer's uniformly dequantized images; ``genzoo.evaluate`` converts it to
bits/dim. Points are modelled as they are.

A model subclasses :class:`FlowModel` and implements one hook, :meth:`FlowModel.build_flow`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from genzoo.core.config import Config
from genzoo.core.errors import ConfigError, GenzooWarning
from genzoo.core.likelihood import ExactNLL
from genzoo.core.options import option
from genzoo.core.protocol import GenerativeModel, LatentSpace, Samples
from genzoo.core.seeding import randn
from genzoo.data.base import DataInfo
from genzoo.nn.flow_layers import FlowLayer, FlowSequential, LogitTransform

LOG_2PI = math.log(2.0 * math.pi)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """``log N(z; 0, I)`` per example: ``(B, D) -> (B,)``."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(1)


def can_squeeze(shape: tuple[int, int, int]) -> bool:
    """Whether a ``(C, H, W)`` tensor can be squeezed to ``(4C, H/2, W/2)`` (even H and W)."""
    return shape[1] % 2 == 0 and shape[2] % 2 == 0 and shape[1] >= 2 and shape[2] >= 2


class FlowModel(ExactNLL, GenerativeModel, Samples, LatentSpace):
    """Base of the flows: ``log_prob``, ``sample``, ``encode``/``decode``; the maximum-likelihood
    ``loss`` (nats/dim, logging ``nll`` and ``bpd``) and ``eval_metrics`` (``log_prob``) of
    :class:`~genzoo.core.likelihood.ExactNLL`.

    ``self.flow`` maps ``(B, *info.shape)`` to flat latents ``(B, D)``; for images its first layer
    is the :class:`~genzoo.nn.flow_layers.LogitTransform`. ``forward(x)`` returns
    ``(z, log |det dz/dx|)``.
    """

    family: ClassVar[str] = "flows"
    latent_prior: ClassVar[Literal["gaussian", "euclidean"]] = "gaussian"
    dequantize: ClassVar[bool] = True
    # fp32: log-determinants summed over thousands of dimensions are not safe in bf16
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "precision": "fp32"}
    info: DataInfo

    def __init__(self, config: Config, info: DataInfo) -> None:
        super().__init__(config, info)
        shape = tuple(int(s) for s in info.shape)
        if info.kind == "points" and len(shape) != 1:
            raise ConfigError(f"Flows need points of shape (D,), got {shape} for {info.name!r}.")
        if info.kind == "images" and len(shape) != 3:
            raise ConfigError(f"Flows need images of shape (C, H, W), got {shape}.")
        if info.dim < 2:
            raise ConfigError(
                f"Flows need at least 2 dimensions to couple, but {info.name!r} has {info.dim}."
            )
        self.shape = shape
        layers: list[FlowLayer] = []
        # the pre-processing before the flow proper: images' logit alpha (None for points)
        self.logit_alpha: float | None = None
        if info.kind == "images":
            self.logit_alpha = float(config.logit_alpha)  # type: ignore[attr-defined]
            layers.append(LogitTransform(self.logit_alpha))
        layers.append(self.build_flow(shape))
        self.flow = FlowSequential(layers)

    def build_flow(self, shape: tuple[int, ...]) -> FlowLayer:
        """The flow after pre-processing: ``(B, *shape) -> (B, D)`` flat latents."""
        raise NotImplementedError  # pragma: no cover - abstract

    @property
    def is_image(self) -> bool:
        return self.info.kind == "images"

    # ----------------------------------------------------------------------------------------------
    # the bijection

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x (B, *shape) -> (z (B, D), log |det dz/dx| (B,))``."""
        return self.flow(x)

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Exact ``log p(x)`` in nats per example, ``(B, *shape) -> (B,)`` (density on [-1, 1]^D
        for images)."""
        if cond is not None:
            raise ConfigError(f"{self.name!r} is unconditional; call log_prob without cond.")
        z, logdet = self.flow(x)
        return standard_normal_log_prob(z) + logdet  # change of variables

    # ----------------------------------------------------------------------------------------------
    # the flow after the pre-processing (for distillation between flows of the same pre-processing)

    @property
    def body(self) -> FlowLayer:
        """The flow proper, after the images' logit pre-processing: ``(B, *shape) -> (B, D)``."""
        return self.flow.layers[-1]

    def body_log_prob(self, y: Tensor) -> Tensor:
        """``log q(y)`` in nats of a pre-processed ``y`` ``(B, *shape) -> (B,)``: the density of
        the body alone. Two flows with the same pre-processing differ in ``log q(y) - log p(y)``
        exactly as in data space (the logit's log-determinant cancels)."""
        z, logdet = self.body(y)
        return standard_normal_log_prob(z) + logdet  # change of variables

    def sample_body(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(y (n, *shape), log q(y) (n,))``: ``n`` pre-processed samples ``y = g^-1(eps)`` with
        their log-density from the same pass, ``log N(eps) + log |det dg/dy|``, differentiable
        in the parameters (the reparameterisation). One pass per layer for an IAF; ``D`` passes
        for a MAF."""
        dtype = next(self.parameters()).dtype
        eps = randn((n, self.info.dim), generator=generator, device=self.device, dtype=dtype)
        y, logdet = self.body.inverse_and_logdet(eps)
        return y, standard_normal_log_prob(eps) + logdet  # change of variables

    def encode(self, x: Tensor) -> Tensor:
        """``x (B, *shape) -> z (B, D)``, the latent with a standard normal distribution."""
        return self.flow(x)[0]

    def decode(self, z: Tensor) -> Tensor:
        """``z (B, D) -> x (B, *shape)``: the exact inverse of :meth:`encode` (not clipped)."""
        return self.flow.inverse(z.reshape(z.shape[0], -1))  # (B, D)

    def encode_latent(self, x: Tensor) -> Tensor:
        return self.encode(x)

    def decode_latent(self, z: Tensor) -> Tensor:
        return self.decode(z)

    # ----------------------------------------------------------------------------------------------
    # sampling

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` samples ``(n, *shape)`` in model space: ``x = f^-1(T eps)``, ``eps ~ N(0, I)``.

        Option ``temperature`` (T, default 1.0; Glow samples at T < 1 for smoother images).
        Images are clipped to the dataset's value range.

        The inverse pass can overflow float32 where the forward does not: the inverse of a
        strongly contracting coupling expands (Glow's sigmoid scale), and an under-trained model's
        tail latents at T = 1 drive its coupling nets to log-scales of -300 and below, whose exact
        inverse is beyond float32 (then ``inf - inf`` in the next 1x1 convolution is NaN). Such
        samples are not returned as garbage: with a :class:`~genzoo.core.errors.GenzooWarning`
        naming how many samples overflowed, their non-finite image values go to the ends of the
        value range (``+inf`` to the top, ``-inf`` and NaN to the bottom); points, which have no
        range, keep them and get the same warning. A lower temperature (Glow's 0.7) or more
        training avoids it.
        """
        if cond is not None:
            raise ConfigError(f"{self.name!r} is unconditional; sample it without cond.")
        unknown = [k for k in options if k != "temperature"]
        if unknown:
            raise ConfigError(
                f"Unknown sampling option {unknown[0]!r} for {self.name!r}; "
                "valid options are 'temperature'."
            )
        temperature = option(options, "temperature", 1.0, ge=0)
        dtype = next(self.parameters()).dtype  # float32 unless the model was cast
        z = randn((n, self.info.dim), generator=generator, device=self.device, dtype=dtype)
        x = self.decode(temperature * z)
        bad = ~torch.isfinite(x).flatten(1).all(1)  # (n,) samples whose inverse overflowed
        if self.is_image:
            lo, hi = self.info.value_range
            x = torch.nan_to_num(x, nan=lo, posinf=hi, neginf=lo).clamp(lo, hi)
        n_bad = int(bad.sum())
        if n_bad:
            fate = (
                "their non-finite values are set to the ends of the value range "
                f"[{lo:g}, {hi:g}] (NaN to {lo:g})"
                if self.is_image
                else "their non-finite values are kept (points have no range to clip to)"
            )
            warnings.warn(
                f"{n_bad} of {n} samples of {self.name!r} at temperature {temperature:g} "
                f"overflowed float32 in the inverse pass (an under-trained flow's inverse "
                f"expands its tail latents); {fate}. Sample at a lower temperature (Glow uses "
                "0.7) or train longer.",
                GenzooWarning,
                stacklevel=3,  # the caller of sample (past torch.no_grad's wrapper)
            )
        return x
