"""WaveNet: a generative model for raw audio (van den Oord et al., arXiv:1609.03499), with the fast
generation of Paine et al. ("Fast Wavenet Generation Algorithm", arXiv:1611.09482).

A waveform is quantized to 256 mu-law levels ``k_1 .. k_T`` (Eq. (2), :mod:`genzoo.audio.mulaw`)
and modelled exactly, ``log p(k) = sum_t log p(k_t | k_<t, y)`` (Eqs. (1) and (4)), by a stack of
dilated causal convolutions (kernel ``k``, dilations ``1, 2, .., 2^(n-1)`` repeated over
``stacks``) with gated activation units conditioned globally on the class ``y`` (Eq. (5)),
residual and parameterised skip connections (Sec. 2.4, Fig. 4), and a ReLU - 1x1 - ReLU - 1x1
softmax head over the 256 levels. The receptive field is ``(k - 1) * sum(dilations) + 1`` samples.

Notation: the network's input at step ``t`` is the previous level ``k_{t-1}`` (a start level, the
mu-law code of silence, before the first sample), so the logits at ``t`` give
``p(k_t | k_<t)``. :meth:`WaveNet.forward` is that mapping, ``(B, T)`` input levels to
``(B, 256, T)`` logits, and output ``t`` depends on inputs ``t - RF + 1 .. t`` only.

Training reads random crops of ``crop`` samples (the crop's first input is the real previous
sample, earlier history is the zero padding), as the reference implementations do; ``log_prob`` and
``eval_metrics`` use the whole example, exactly. Generation keeps, for every layer, a queue of its
last ``(k - 1) * d`` inputs (Paine et al.), so each new sample costs one step of each layer
instead of a pass over the whole past; ``sample(..., cached=False)`` recomputes the whole prefix
at each step (quadratic: for tests and checks), and both give the same samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.audio.mulaw import MU, mu_law_decode, mu_law_encode
from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.options import check_output_memory, option
from genzoo.core.protocol import Batch, ExactLikelihood, GenerativeModel, LossOutput, Samples
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand
from genzoo.data.base import DataInfo
from genzoo.models.autoencoders.base import check_sample_args
from genzoo.models.autoregressive.sampling import (
    SAMPLING_OPTIONS,
    at_least_float32,
    sample_logits,
    sampling_kwargs,
)

LEVELS = MU + 1  # 256 mu-law levels
START = LEVELS // 2  # the input before the first sample: mu_law_encode(0.0) = 128, silence
WAVENET_OPTIONS = (*SAMPLING_OPTIONS, "length", "cached")


@dataclass(frozen=True)
class WaveNetConfig(Config):
    """Configuration of :class:`WaveNet` (defaults: a small model for 8 kHz speech on a CPU; the
    paper's models use 30 layers of 10 dilations x 3 stacks, more channels)."""

    residual_channels: int = bounded(32, ge=1)  # channels of the residual stream
    skip_channels: int = bounded(64, ge=1)  # channels of the skip connections and the head
    kernel_size: int = bounded(2, ge=2)  # taps of each dilated causal convolution (paper: 2)
    layers_per_stack: int = bounded(8, ge=1, le=16)  # dilations 1, 2, 4, .., 2^(n-1) per stack
    stacks: int = bounded(2, ge=1)  # repetitions of the dilation cycle
    class_conditional: bool = True  # global conditioning on the class label (Eq. (5))
    crop: int = bounded(2048, ge=0)  # training: a random crop of this many samples of each
    # example (0: the whole example)
    temperature: float = bounded(1.0, ge=0.0)  # default sampling temperature (0: greedy)
    top_k: int = bounded(0, ge=0)  # default top-k filtering when sampling (0: off)
    top_p: float = bounded(1.0, gt=0.0, le=1.0)  # default nucleus filtering (1: off)

    @property
    def dilations(self) -> tuple[int, ...]:
        return tuple(2**i for i in range(self.layers_per_stack)) * self.stacks


class GatedResidualLayer(nn.Module):
    """One WaveNet layer: a dilated causal convolution into a gated unit (Eq. (5)), then 1x1
    convolutions to the residual stream and to the skip connections (Fig. 4)."""

    def __init__(self, channels: int, skip: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.pad = (kernel - 1) * dilation  # causal: all the padding on the left
        self.conv = nn.Conv1d(channels, 2 * channels, kernel, dilation=dilation)
        self.res = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip, 1)

    def gate(self, z: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        """``z`` ``(B, 2C, T)`` conv output (+ ``V^T h``) -> residual and skip outputs."""
        if cond is not None:
            z = z + cond[:, :, None]  # V_f^T h and V_g^T h, the same at every time step
        f, g = z.chunk(2, dim=1)  # 2 x (B, C, T)
        u = torch.tanh(f) * torch.sigmoid(g)  # Eq. (5): tanh(W_f * x + V_f h) . sig(W_g * x + ...)
        return self.res(u), self.skip(u)

    def forward(self, h: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        """``h`` ``(B, C, T)`` -> (next residual stream ``(B, C, T)``, skip ``(B, S, T)``)."""
        r, s = self.gate(self.conv(F.pad(h, (self.pad, 0))), cond)
        return h + r, s

    def step(self, h: Tensor, queue: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """One time step: ``h`` ``(B, C, 1)`` and the queue ``(B, C, pad)`` of this layer's last
        ``pad`` inputs -> (residual ``(B, C, 1)``, skip ``(B, S, 1)``, the updated queue)."""
        window = torch.cat([queue, h], dim=2)  # (B, C, pad + 1): the taps t - (k-1) d .. t
        z = F.conv1d(window, self.conv.weight, self.conv.bias, dilation=self.dilation)  # (B,2C,1)
        r, s = self.gate(z, cond)
        return h + r, s, window[:, :, 1:]


@register_model("wavenet")
class WaveNet(GenerativeModel, Samples, ExactLikelihood):
    """WaveNet (arXiv:1609.03499) over 8-bit mu-law audio, globally conditioned on the class.

    ``forward(k_in, y) -> logits`` ``(B, 256, T)``; ``log_prob(x, y)`` the exact
    ``log P(mu-law levels of x)`` in nats per example; ``sample`` draws with cached activations
    (arXiv:1611.09482) and returns waveforms in [-1, 1] (the levels' mu-law values).
    """

    family: ClassVar[str] = "autoregressive"
    dequantize: ClassVar[bool] = False
    config_class: ClassVar[type[Config]] = WaveNetConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 8}
    preview_options: ClassVar[dict[str, Any]] = {"length": 1000}  # an eighth of a second, 8 kHz
    config: WaveNetConfig
    info: DataInfo

    def __init__(self, config: WaveNetConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        if info.kind != "audio":
            raise ConfigError(
                f"wavenet models audio, but dataset {info.name!r} holds {info.kind}; "
                "choose 'speech-digits' or 'tones'."
            )
        if config.class_conditional and info.n_classes < 1:
            raise ConfigError(
                f"class_conditional = true needs labelled data, but {info.name!r} has no classes; "
                "set class_conditional=false."
            )
        c, s = config.residual_channels, config.skip_channels
        self.embed = nn.Embedding(LEVELS, c)  # the input level, one-hot times a 1x1 convolution
        self.layers = nn.ModuleList(
            GatedResidualLayer(c, s, config.kernel_size, d) for d in config.dilations
        )
        self.cond = (  # V_f^T h, V_g^T h of every layer for a one-hot class h: (classes, L * 2C)
            nn.Embedding(info.n_classes, len(self.layers) * 2 * c)
            if config.class_conditional
            else None
        )
        self.head = nn.Sequential(  # Fig. 4: ReLU, 1x1, ReLU, 1x1, softmax
            nn.ReLU(), nn.Conv1d(s, s, 1), nn.ReLU(), nn.Conv1d(s, LEVELS, 1)
        )

    @property
    def bpd_levels(self) -> int | None:
        """``None``: the exact discrete NLL of the levels is already bits per sample."""
        return None

    @property
    def receptive_field(self) -> int:
        """Input samples each output sees: ``(k - 1) * sum(dilations) + 1``."""
        return (self.config.kernel_size - 1) * sum(self.config.dilations) + 1

    # --- the network ------------------------------------------------------------------------------
    def _conditions(self, y: Tensor | None, b: int) -> list[Tensor | None]:
        if self.cond is None:
            if y is not None:
                raise ConfigError("This WaveNet is unconditional; pass no labels.")
            return [None] * len(self.layers)
        if y is None:
            raise ConfigError("This WaveNet is class-conditional; pass the labels y.")
        return list(self.cond(y.long().view(b)).chunk(len(self.layers), dim=1))  # L x (B, 2C)

    def stack(self, h: Tensor, y: Tensor | None = None) -> Tensor:
        """Embedded inputs ``h`` ``(B, C, T)`` (floats: gradients show what each output depends
        on) -> logits ``(B, 256, T)``."""
        conds = self._conditions(y, h.shape[0])
        skips = 0
        for layer, cond in zip(self.layers, conds, strict=True):
            h, s = layer(h, cond)
            skips = skips + s  # (B, S, T): the sum of the skip connections
        return self.head(skips)

    def forward(self, k_in: Tensor, y: Tensor | None = None) -> Tensor:
        """Input levels ``(B, T)`` (``k_{t-1}``) -> logits ``(B, 256, T)`` of ``k_t``."""
        return self.stack(self.embed(k_in).transpose(1, 2), y)  # (B, T, C) -> (B, C, T)

    # --- likelihood -----------------------------------------------------------------------------
    def _shifted(self, k: Tensor) -> Tensor:
        """Targets ``(B, T)`` -> inputs ``(B, T)``: the start level, then ``k_1 .. k_{T-1}``."""
        start = torch.full_like(k[:, :1], START)
        return torch.cat([start, k[:, :-1]], dim=1)

    def _log_probs(self, k_in: Tensor, k: Tensor, y: Tensor | None) -> Tensor:
        """``log p(k_t | k_<t, y)`` ``(B, T)``."""
        logits = at_least_float32(self.forward(k_in, y))  # (B, 256, T)
        return -F.cross_entropy(logits, k, reduction="none")  # (B, T)

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Exact ``log P(k)`` in nats per example ``(B,)`` of the mu-law levels ``k`` of the
        waveforms ``x`` ``(B, T)`` (Eqs. (1), (4)); ``cond``: labels of a conditional model."""
        k = mu_law_encode(x)  # (B, T) long
        return self._log_probs(self._shifted(k), k, cond).sum(1)  # Eq. (4): sum_t log p(k_t|..)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """Mean NLL per sample (nats) of a random crop of each example; logs bits per sample."""
        k = mu_law_encode(batch["x"])  # (B, T)
        y = batch.get("y") if self.cond is not None else None
        k_in = self._shifted(k)
        b, t = k.shape
        crop = self.config.crop
        if 0 < crop < t:  # one random window per example; its first input is the real k_{s-1}
            s = (rand((b,), device=k.device) * (t - crop + 1)).long().clamp(max=t - crop)
            idx = s[:, None] + torch.arange(crop, device=k.device)  # (B, crop)
            k_in, k = k_in.gather(1, idx), k.gather(1, idx)
        nll = -self._log_probs(k_in, k, y).mean()  # the one reduction: nats per sample
        return LossOutput(nll, {"nll_per_sample": nll.detach(), "bits": nll.detach() / math.log(2)})

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """``{"log_prob"}`` in nats per example: bits per sample via ``bpd_levels = None``."""
        y = batch.get("y") if self.cond is not None else None
        return {"log_prob": self.log_prob(batch["x"], y)}

    # --- generation -----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        n: int,
        length: int,
        y: Tensor | None = None,
        *,
        cached: bool = True,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
    ) -> tuple[Tensor, Tensor]:
        """Draw ``n`` sequences of ``length`` levels; returns (levels ``(n, length)``, the logits
        each was drawn from ``(n, length, 256)``). ``cached``: Paine et al.'s queues (linear
        time); otherwise the whole prefix is recomputed at every step (quadratic)."""
        dev = self.device
        k = torch.full((n, length + 1), START, dtype=torch.long, device=dev)  # k[:, 0]: start
        dtype = at_least_float32(self.embed.weight).dtype
        all_logits = torch.zeros(n, length, LEVELS, device=dev, dtype=dtype)
        conds = self._conditions(y.to(dev) if y is not None else None, n)
        if cached:
            queues = [
                torch.zeros(n, self.config.residual_channels, layer.pad, device=dev).to(
                    self.embed.weight.dtype
                )
                for layer in self.layers
            ]
        for t in range(length):
            if cached:
                h = self.embed(k[:, t])[:, :, None]  # (n, C, 1): the newest input only
                skips = 0
                for i, (layer, cond) in enumerate(zip(self.layers, conds, strict=True)):
                    h, s, queues[i] = layer.step(h, queues[i], cond)
                    skips = skips + s
                logits = self.head(skips)[:, :, 0]  # (n, 256)
            else:
                logits = self.forward(k[:, : t + 1], y)[:, :, t]  # (n, 256): the whole prefix
            logits = at_least_float32(logits)
            all_logits[:, t] = logits
            k[:, t + 1] = sample_logits(
                logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
            )
        return k[:, 1:], all_logits

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` waveforms ``(n, T)`` in [-1, 1] (the mu-law values of the drawn levels).

        ``cond``: labels ``(n,)`` of a class-conditional model (default: ``arange(n) % classes``).
        Options: ``length`` (samples, default the dataset's), ``temperature``, ``top_k``,
        ``top_p`` (defaults from the config), ``cached`` (default True; False recomputes).
        """
        check_sample_args(
            self.name, cond, options, WAVENET_OPTIONS, conditional=self.cond is not None
        )
        length = option(options, "length", int(self.info.shape[0]), ge=1)
        check_output_memory(n * length, 8, f"length = {length} for n = {n}")
        y = None
        if self.cond is not None:
            y = cond if cond is not None else torch.arange(n) % self.info.n_classes
        k, _ = self.generate(
            n,
            length,
            y,
            cached=option(options, "cached", True),
            generator=generator,
            **sampling_kwargs(self.config, options),
        )
        return mu_law_decode(k)
