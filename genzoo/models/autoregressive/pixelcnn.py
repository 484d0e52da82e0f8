"""Gated PixelCNN (van den Oord et al., "Conditional Image Generation with PixelCNN Decoders",
arXiv:1606.05328).

The image is a sequence of sub-pixels in raster order, colour channels R -> G -> B within a pixel,
and its probability factorises exactly:

    p(x) = prod_i p(x_i | x_1, ..., x_{i-1})                                        (Eq. 1)

Each conditional is a softmax over the dataset's L intensity levels (L = 17 for ``digits``, 256 for
MNIST) computed by a stack of :class:`genzoo.nn.masked.GatedPixelCNNLayer` (vertical and horizontal
stacks, so no blind spot; gated activations, Eq. 2) and a masked 1x1 output head. With labels,
``p(x | y)`` adds a learned class embedding inside every gate (Eq. 4). Optionally each conditional
is a discretized mixture of logistics instead of a softmax (PixelCNN++, Salimans et al.,
arXiv:1701.05517): 3K numbers per sub-pixel instead of L, and nearby levels share probability.

PixelCNN is a discrete model: it is trained and evaluated on the integer levels themselves (the
trainer gives it bin centres, ``dequantize = False``, which it maps back to levels), and
``log_prob`` is the exact discrete log-likelihood ``log P(k)`` in nats. Its bits/dim are
``-log P(k) / (D ln 2)`` with no change of variables (``bpd_levels = None``); they equal the
dequantized continuous bits/dim of the same model read as a piecewise-constant density on [0, L)^D,
so they line up with the flow and VAE numbers of the same data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.options import option
from genzoo.core.protocol import Batch, ExactLikelihood, GenerativeModel, LossOutput, Samples
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo, levels_to_model, model_to_levels
from genzoo.models.autoencoders.base import check_sample_args
from genzoo.models.autoregressive.sampling import (
    SAMPLING_OPTIONS,
    at_least_float32,
    check_sampling_options,
    sample_logits,
)
from genzoo.nn.masked import GatedPixelCNNLayer, masked_1x1


def discretized_logistic_mixture(params: Tensor, levels: int, k: Tensor | None = None) -> Tensor:
    """Log-probabilities of the levels under a discretized mixture of logistics (PixelCNN++,
    Salimans et al., arXiv:1701.05517, Sec. 2.1): ``params`` ``(..., 3K)`` = mixture logits,
    means ``mu`` and log-scales ``log s`` in model space [-1, 1].

    Level ``k`` is the bin ``[2k/L - 1, 2(k+1)/L - 1]`` around its centre; the outermost bins
    extend to -inf and +inf so the L probabilities sum to one exactly:

        P(k) = sum_i pi_i [sigmoid((2(k+1)/L - 1 - mu_i) / s_i) - sigmoid((2k/L - 1 - mu_i) / s_i)]

    computed in log space as ``log(sig(a) - sig(b)) = a - softplus(a) - softplus(b) +
    log(1 - exp(b - a))``, stable for any ``a > b``. Returns ``(..., L)`` for every level, or
    ``(...)`` at the levels ``k`` ``(...)``.
    """
    logit_pi, mu, log_s = params.chunk(3, dim=-1)  # 3 x (..., K)
    inv_s = torch.exp(-log_s.clamp(min=-7.0))  # 1 / s, the scale floored as in PixelCNN++
    if k is None:
        kk = torch.arange(levels, device=params.device)[:, None]  # (L, 1): every level
        logit_pi, mu, inv_s = logit_pi[..., None, :], mu[..., None, :], inv_s[..., None, :]
    else:
        kk = k[..., None]  # (..., 1)
    lower = 2.0 * kk.to(params.dtype) / levels - 1.0  # bin edges: the same number for the upper
    upper = 2.0 * (kk + 1).to(params.dtype) / levels - 1.0  # edge of k and the lower one of k + 1
    a = (upper - mu) * inv_s  # standardised upper edge: (..., [L,] K)
    b = (lower - mu) * inv_s  # standardised lower edge
    sp_a, sp_b = F.softplus(a), F.softplus(b)
    mid = a - sp_a - sp_b + torch.log(-torch.expm1(b - a))  # log(sig(a) - sig(b)); b - a < 0
    log_p = torch.where(kk == 0, a - sp_a, torch.where(kk == levels - 1, -sp_b, mid))
    return torch.logsumexp(logit_pi.log_softmax(-1) + log_p, dim=-1)  # (..., [L])


@dataclass(frozen=True)
class PixelCNNConfig(Config):
    """Configuration of :class:`PixelCNN` (defaults fit 8x8 digits on a CPU; the paper's MNIST /
    CIFAR models use 15-20 layers of 128-384 channels)."""

    channels: int = bounded(0, ge=0)  # features of each stack (vertical, horizontal);
    # divisible by the image channels; 0: 64 rounded up to a multiple of them (64 grey, 66 RGB)
    n_layers: int = bounded(6, ge=1)  # gated layers; the first uses mask A, the others mask B
    first_kernel: int = bounded(7, ge=1)  # kernel size of the first layer (odd)
    kernel: int = bounded(3, ge=1)  # kernel size of the later layers (odd)
    head_channels: int = bounded(0, ge=0)  # width of the hidden 1x1 layer of the output head
    # (divisible by C); 0: 128 rounded up to a multiple of C
    class_conditional: bool = False  # model p(x | y): class embedding added inside every gate
    output: Literal["softmax", "logistic_mixture"] = "softmax"  # per sub-pixel: a softmax over the
    # L levels, or a discretized mixture of logistics (PixelCNN++, arXiv:1701.05517)
    n_mix: int = bounded(5, ge=1)  # mixture components of output = "logistic_mixture"
    temperature: float = bounded(1.0, ge=0.0)  # default sampling temperature (0: the most likely
    # level, greedy)

    def validate(self) -> None:
        for key in ("first_kernel", "kernel"):
            k = getattr(self, key)
            if k % 2 == 0:
                raise ConfigError(f"{key} = {k} must be an odd number >= 1.")


@register_model("pixelcnn")
class PixelCNN(GenerativeModel, Samples, ExactLikelihood):
    """Gated PixelCNN (arXiv:1606.05328): a softmax or logistic mixture over levels per sub-pixel.

    ``forward(x, y) -> logits`` ``(B, L, C, H, W)`` from model-space images (bin centres) ``x``;
    ``log_prob(x, y)`` is the exact ``log P`` in nats per example; ``sample`` draws sub-pixel by
    sub-pixel. Class-conditional models (``class_conditional=True``) give ``log p(x | y)``.
    """

    family: ClassVar[str] = "autoregressive"
    dequantize: ClassVar[bool] = False
    config_class: ClassVar[type[Config]] = PixelCNNConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 64}
    config: PixelCNNConfig
    info: DataInfo

    def __init__(self, config: PixelCNNConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        if info.kind != "images" or info.levels is None or len(info.shape) != 3:
            raise ConfigError(
                f"pixelcnn models images, but dataset {info.name!r} holds {info.kind}; "
                "choose an image dataset such as 'digits' or 'mnist5k'."
            )
        c_img = int(info.shape[0])
        cfg = config.replace(  # 0: the automatic width, a multiple of the image channels
            channels=config.channels or -(-64 // c_img) * c_img,
            head_channels=config.head_channels or -(-128 // c_img) * c_img,
        )
        for key in ("channels", "head_channels"):
            if getattr(cfg, key) % c_img:
                raise ConfigError(
                    f"{key} = {getattr(cfg, key)} must be divisible by the {c_img} image channels."
                )
        if cfg.class_conditional and info.n_classes < 1:
            raise ConfigError(
                f"class_conditional = true needs labelled data, but {info.name!r} has no classes."
            )
        self.levels = int(info.levels)
        # head outputs per sub-pixel: L logits, or (logit pi, mu, log s) per mixture component
        self.n_params = self.levels if cfg.output == "softmax" else 3 * cfg.n_mix
        self.layers = nn.ModuleList(
            GatedPixelCNNLayer(
                c_img if i == 0 else cfg.channels,
                cfg.channels,
                cfg.first_kernel if i == 0 else cfg.kernel,
                "A" if i == 0 else "B",
                groups=c_img,
            )
            for i in range(cfg.n_layers)
        )
        self.head = nn.Sequential(
            nn.ReLU(),
            masked_1x1(cfg.channels, cfg.head_channels, c_img, "B"),
            nn.ReLU(),
            masked_1x1(cfg.head_channels, c_img * self.n_params, c_img, "B"),
        )
        self.class_emb = (
            nn.Embedding(info.n_classes, cfg.n_layers * 4 * cfg.channels)
            if cfg.class_conditional
            else None
        )

    @property
    def bpd_levels(self) -> int | None:
        """``None``: the exact discrete NLL is already a bits/dim on the levels (no change of
        variables), see :func:`genzoo.metrics.bits_per_dim`."""
        return None

    # --- the network ------------------------------------------------------------------------------
    @property
    def _dtype(self) -> torch.dtype:
        return self.head[-1].weight.dtype

    def _check_cond(self, y: Tensor | None) -> Tensor | None:
        if self.class_emb is None:
            return None
        if y is None:
            raise ConfigError("This PixelCNN is class-conditional; pass the labels y.")
        return y.long()

    def params(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The head's output ``(B, C, P, H, W)`` per sub-pixel: ``P = L`` logits (softmax) or
        ``3 K`` mixture parameters (see :func:`discretized_logistic_mixture`).

        ``x`` ``(B, C, H, W)`` in model space. Rows below the last row of ``x`` never matter, so a
        crop ``x[..., :i+1, :]`` gives the same outputs for rows ``<= i``.
        """
        b, c, h, w = x.shape
        cond = None
        if self.class_emb is not None:
            y = self._check_cond(y)
            cond = self.class_emb(y).chunk(len(self.layers), dim=1)  # n_layers x (B, 4 * ch)
        v, hs = x, x
        for i, layer in enumerate(self.layers):
            v, hs = layer(v, hs, None if cond is None else cond[i])
        out = self.head(hs)  # (B, C * P, H, W), channel c * P + p
        return out.view(b, c, self.n_params, h, w)  # (B, C, P, H, W)

    def level_log_probs(self, params: Tensor, k: Tensor | None = None) -> Tensor:
        """Parameters ``(..., P)`` -> log-probabilities of all L levels ``(..., L)``, or with levels
        ``k`` ``(...)`` the log-probability of ``k`` alone ``(...)``. Exact and normalised."""
        params = at_least_float32(params)
        if self.config.output == "logistic_mixture":
            return discretized_logistic_mixture(params, self.levels, k)
        log_p = params.log_softmax(-1)  # (..., L)
        return log_p if k is None else log_p.gather(-1, k.unsqueeze(-1)).squeeze(-1)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Log-probabilities (up to a constant per sub-pixel: logits) ``(B, L, C, H, W)`` of every
        level of every sub-pixel given the earlier sub-pixels.

        ``x`` ``(B, C, H, W)`` in model space (the network reads it as floats, so gradients with
        respect to ``x`` show which inputs each output depends on).
        """
        out = self.params(x, y)  # (B, C, P, H, W)
        if self.config.output == "logistic_mixture":  # P = 3K parameters -> L log-probabilities
            out = self.level_log_probs(out.movedim(2, -1)).movedim(-1, 2)  # (B, C, L, H, W)
        return out.transpose(1, 2)  # (B, C, L, H, W) -> (B, L, C, H, W)

    # --- likelihood -----------------------------------------------------------------------------
    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Exact ``log P(k)`` in nats per example ``(B,)`` of the levels ``k`` of ``x`` (Eq. 1);
        ``cond``: the labels of a class-conditional model."""
        k = model_to_levels(x, self.levels)  # (B, C, H, W) long
        x = levels_to_model(k, self.levels).to(self._dtype)
        params = self.params(x, cond).movedim(2, -1)  # (B, C, H, W, P)
        log_p = self.level_log_probs(params, k)  # (B, C, H, W): log p(k_i | k_<i)
        return log_p.flatten(1).sum(1)  # Eq. (1) in log space: (B,)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """Negative log-likelihood per dimension (nats), averaged over the batch; logs ``bpd``."""
        nll = -self.log_prob(batch["x"], batch.get("y"))  # (B,)
        loss = nll.mean() / self.info.dim  # the one reduction: nats per sub-pixel
        return LossOutput(loss, {"nll": nll.mean().detach(), "bpd": loss.detach() / math.log(2)})

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """``{"log_prob"}`` in nats per example (bits/dim via ``bpd_levels = None``)."""
        return {"log_prob": self.log_prob(batch["x"], batch.get("y"))}

    # --- sampling -------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` images ``(n, C, H, W)`` (bin centres in model space), one sub-pixel at a time.

        ``cond``: labels ``(n,)`` of a class-conditional model (default: ``arange(n) % classes``).
        Options: ``temperature`` (default from the config; 0 = most likely level), ``top_k``,
        ``top_p`` (see :func:`genzoo.models.autoregressive.sampling.sample_logits`).
        """
        check_sample_args(
            self.name, cond, options, SAMPLING_OPTIONS, conditional=self.config.class_conditional
        )
        temperature = option(options, "temperature", float(self.config.temperature))
        top_k, top_p = option(options, "top_k", 0), option(options, "top_p", 1.0)
        check_sampling_options(temperature, top_k, top_p)
        dev = self.device
        y = None
        if self.class_emb is not None:
            y = cond if cond is not None else torch.arange(n) % self.info.n_classes
            y = y.to(dev).long()
        c, h, w = self.info.shape
        k = torch.zeros(n, c, h, w, dtype=torch.long, device=dev)
        for i in range(h):
            for j in range(w):
                for ch in range(c):
                    x = levels_to_model(k[:, :, : i + 1], self.levels).to(self._dtype)  # rows <= i
                    params = self.params(x, y)[:, ch, :, i, j]  # (n, P)
                    logits = self.level_log_probs(params)  # (n, L)
                    k[:, ch, i, j] = sample_logits(
                        logits,
                        temperature=temperature,
                        top_k=top_k,
                        top_p=top_p,
                        generator=generator,
                    )
        return levels_to_model(k, self.levels)
