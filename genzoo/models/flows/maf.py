"""MAF and IAF: normalizing flows of stacked affine autoregressive layers.

- MAF: Papamakarios, Pavlakou & Murray, "Masked Autoregressive Flow for Density Estimation",
  arXiv:1705.07057. Each layer is ``u_i = (x_i - mu_i) exp(-alpha_i)`` with ``(mu, alpha)`` from a
  MADE (Germain et al., arXiv:1502.03509) over ``x_<i`` (Eq. 3-5): the density is one pass per
  layer, sampling ``D`` passes. Layers alternate the ordering of the variables (Sec. 3.1:
  "reverse the order between layers") or draw a random one; ActNorm between layers stands in for
  the paper's batch normalisation (Sec. 3.4), as in genzoo's RealNVP.
- IAF: Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling, "Improved Variational Inference
  with Inverse Autoregressive Flow", arXiv:1606.04934. The same layer used in the sampling
  direction (MAF Sec. 3.2): ``x_i = u_i exp(alpha_i(u_<i)) + mu_i(u_<i)`` is one pass, so sampling
  is fast and the density needs ``D`` passes per layer. :class:`IAF` differs from :class:`MAF` by
  one hook, :meth:`MAF.autoregressive_layer`, which wraps the layer in
  :class:`~genzoo.nn.made.Inverted`. Since training IAF by likelihood on images costs ``D``
  passes per layer per step, :class:`IAF` can instead be distilled from a trained flow
  (probability density distillation: van den Oord et al., "Parallel WaveNet",
  arXiv:1711.10433), using only its one-pass direction.

Both flatten images (after the logit pre-processing of :class:`FlowModel`) to vectors of ``D``
values in raster order and model them with MADEs over all ``D``, as the MAF paper does on MNIST.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, BuiltOnRuns, GenerativeModel, LossOutput, SubRun
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.models.flows.base import FlowModel
from genzoo.nn.flow_layers import ActNorm, Flatten, FlowLayer, FlowSequential
from genzoo.nn.made import MADE, AffineAutoregressive, Inverted


@dataclass(frozen=True)
class MAFConfig(Config):
    """Configuration of :class:`MAF` and :class:`IAF`."""

    flows: int = bounded(5, ge=1)  # autoregressive layers (MAF paper: 5 or 10)
    hidden: tuple[int, ...] = bounded((256, 256), ge=1)  # MADE hidden widths per layer (MAF
    # paper: 1024 on MNIST, 100 on UCI)
    order: Literal["reverse", "random"] = "reverse"  # orderings of successive layers: identity
    # and reversed in turn (MAF Sec. 3.1), or a fixed random permutation per layer (seeded)
    actnorm: bool = True  # ActNorm between layers (for the paper's batch norm, Sec. 3.4)
    max_log_scale: float = bounded(3.0, ge=0.0)  # soft bound |alpha| < c via c tanh(raw / c)
    # (0: none)
    logit_alpha: float = bounded(0.05, gt=0.0, lt=0.5)  # images: logit pre-processing
    # logit(alpha + (1 - 2 alpha) u)


def layer_order(kind: str, dim: int, k: int) -> torch.Tensor:
    """The ordering of layer ``k``: identity / reversed in turn, or a permutation seeded by k."""
    if kind == "random":
        return torch.randperm(dim, generator=torch.Generator().manual_seed(1000 + k))
    return torch.arange(dim) if k % 2 == 0 else torch.arange(dim - 1, -1, -1)


@register_model("maf")
class MAF(FlowModel):
    """Masked Autoregressive Flow (arXiv:1705.07057): fast exact density, ``D`` passes to sample.

    ``x (B, *shape) -> [logit] -> flatten -> [AffineAutoregressive (-> ActNorm)] x flows -> u``.
    """

    config_class: ClassVar[type[Config]] = MAFConfig
    config: MAFConfig

    def autoregressive_layer(self, made: MADE) -> FlowLayer:
        """The hook: MAF's layer runs MADE in the density direction."""
        return AffineAutoregressive(made, self.config.max_log_scale)

    def build_flow(self, shape: tuple[int, ...]) -> FlowLayer:
        cfg = self.config
        d = self.info.dim
        layers: list[FlowLayer] = []
        if self.is_image:
            layers.append(Flatten(shape))  # (B, C, H, W) -> (B, D)
        for k in range(cfg.flows):
            made = MADE(d, cfg.hidden, 2, layer_order(cfg.order, d, k))
            layers.append(self.autoregressive_layer(made))
            if cfg.actnorm and k < cfg.flows - 1:
                layers.append(ActNorm(d))
        return FlowSequential(layers)


@dataclass(frozen=True)
class IAFConfig(MAFConfig):
    """Configuration of :class:`IAF`: MAF's fields, and an optional teacher to distil."""

    teacher_run: str = ""  # run directory of a trained flow (maf, realnvp, glow, ...) on the same
    # data: train by probability density distillation from it instead of by likelihood ("": none)
    teacher_ema: bool = True  # use the teacher run's EMA weights when it has them


@register_model("iaf")
class IAF(MAF, BuiltOnRuns):
    """Inverse Autoregressive Flow (arXiv:1606.04934): MAF's layers inverted, one pass to sample.

    Sampling is one MADE pass per layer and ``log_prob`` takes ``D`` (slow to train on images).

    Two training objectives. Without a teacher, maximum likelihood like every flow (``D``
    sequential passes per layer in every step). With ``teacher_run`` (:attr:`sub_runs`: a
    trained flow on the same data, kept frozen), probability density distillation (van den Oord
    et al., "Parallel WaveNet", arXiv:1711.10433, Sec. 3): minimise the reverse KL
    ``E_{y ~ q}[log q(y) - log p(y)]`` of the IAF ``q`` from the teacher ``p``, estimated on
    samples ``y`` of the IAF's fast direction, whose log-density comes from the same one pass;
    the teacher scores them in its own fast (density) direction. No data enters the loss, only
    the batch size. Both flows share the pre-processing, so the KL is taken on the logits, where
    it equals the KL on images.
    """

    config_class: ClassVar[type[Config]] = IAFConfig
    config: IAFConfig
    sub_runs: ClassVar[tuple[SubRun, ...]] = (
        SubRun("teacher", "teacher_run", "teacher_ema", needs=(FlowModel,)),
    )

    def __init__(
        self, config: IAFConfig, info: DataInfo, teacher: GenerativeModel | None = None
    ) -> None:
        super().__init__(config, info)
        self.teacher: FlowModel | None = None
        if config.teacher_run and teacher is None:
            raise ConfigError(
                f"{self.name} needs the trained teacher of teacher_run = {config.teacher_run!r}."
            )
        if teacher is None:
            return
        if not isinstance(teacher, FlowModel):
            got = teacher.name if isinstance(teacher, GenerativeModel) else type(teacher).__name__
            raise ConfigError(
                f"teacher_run = {config.teacher_run!r} is a {got!r} run; the teacher of an iaf "
                "must be a normalizing flow (maf, realnvp, glow, nice, iaf)."
            )
        t_info = teacher.info
        if t_info.kind != info.kind or tuple(t_info.shape) != tuple(info.shape):
            raise ConfigError(
                f"The teacher was trained on {t_info.kind} of shape {tuple(t_info.shape)} "
                f"({t_info.name!r}); dataset {info.name!r} has {info.kind} of shape "
                f"{tuple(info.shape)}."
            )
        if teacher.logit_alpha != self.logit_alpha:
            raise ConfigError(
                f"The teacher's logit_alpha = {teacher.logit_alpha} differs from the iaf's "
                f"{self.logit_alpha}; set logit_alpha={teacher.logit_alpha} to distil it."
            )
        self.teacher = teacher.eval().requires_grad_(False)  # frozen
        for layer in self.flow.modules():  # no data-dependent start: the IAF never sees data,
            if isinstance(layer, ActNorm):  # its ActNorms start as the identity
                layer.initialized.fill_(1)

    def autoregressive_layer(self, made: MADE) -> FlowLayer:
        return Inverted(AffineAutoregressive(made, self.config.max_log_scale))

    def train(self, mode: bool = True) -> IAF:
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # the frozen teacher always runs in eval mode
        return self

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """Without a teacher, the exact NLL (nats/dim). With one, the reverse KL to it in nats
        per dimension, on as many IAF samples as the batch has examples; logs ``kl`` and the
        teacher's NLL of the samples ``teacher_nll`` (nats per example, on the logits)."""
        if self.teacher is None:
            return super().loss(batch, group)
        d = self.info.dim
        y, log_q = self.sample_body(batch["x"].shape[0])  # one pass per layer
        log_p = self.teacher.body_log_prob(y)  # the teacher's density direction
        kl = log_q - log_p  # Sec. 3: KL(P_S || P_T) = H(P_S, P_T) - H(P_S), per sample
        logs = {"kl": kl.detach().mean(), "teacher_nll": -log_p.detach().mean()}
        return LossOutput(kl.mean() / d, logs)
