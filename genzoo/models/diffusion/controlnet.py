"""ControlNet (Zhang, Rao & Agrawala, "Adding Conditional Control to Text-to-Image Diffusion
Models", arXiv:2302.05543): spatial control of a trained, frozen diffusion model.

The base denoiser's U-Net ``F(x; Theta)`` is locked. A trainable copy ``F(.; Theta_c)`` of its
encoder (input convolution, down path and middle block) sees the same noisy input, noise level and
prompt, plus the control image ``c_f`` embedded by a small convolutional hint encoder. Each output
of the copy (every skip feature and the middle block's output) passes through a *zero
convolution* ``Z`` (a 1x1 convolution with weight and bias initialised to zero) and is added to the
matching feature of the locked U-Net (Sec. 3.1, Eq. 2):

    y_c = F(x; Theta) + Z(F(x + Z(c; Theta_z1); Theta_c); Theta_z2)

so at initialisation ``y_c = y`` exactly: the ControlNet starts as its base, and the zero
convolutions still get a gradient (their input is non-zero), so training moves them first
(Sec. 3.1, "zero convolution"). The last layer of the hint encoder is a zero convolution too.

Training is the base's denoising loss with the base's noise levels and weights (Sec. 3.3, Eq. 5);
the prompt (t2i) or class is replaced by the null condition with probability ``cond_dropout``
(the paper drops 50% of prompts so that the ControlNet learns to read the control image itself).
At sampling, the residuals are scaled by the control scale (``control_scale``; 0 gives the base
exactly) and, with classifier-free guidance, added in the conditional and the unconditional
branch alike (Sec. 3.4: CFG resolution weighting is not used here).

The base is any pixel-space diffusion run with a U-Net (``t2i-diffusion``, ``edm``, ``ddpm``,
``ddim``, ``ncsn``, ``flow-matching``; class-conditional, unconditional or text-conditioned),
loaded by the runs layer from ``base_run`` and never written to; checkpoints hold only the
ControlNet's own weights. The condition the samplers carry is one tensor per example: the base's
condition (caption tokens or class label, as floats), the control scale, then the flattened
control map — so classifier-free guidance's batched call, CUDA-graph replay and every sampler
pass it through unchanged, and :meth:`ControlNet.null_condition` nulls only the base's part.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.options import option
from genzoo.core.protocol import (
    Batch,
    BuiltOnRuns,
    GenerativeModel,
    LossOutput,
    PromptConditioned,
    SubRun,
)
from genzoo.core.registry import register_model
from genzoo.core.seeding import randn
from genzoo.core.tensors import per_example
from genzoo.data.base import DataInfo
from genzoo.data.captions import MAX_LEN
from genzoo.models.diffusion.base import DiffusionModel, drop_to_null
from genzoo.models.diffusion.ldm import LatentDiffusion
from genzoo.models.diffusion.t2i import TextToImageDiffusion
from genzoo.nn.partial_state import SavesTrainedOnly
from genzoo.nn.unet import UNet

CONTROL_KINDS = ("mask", "edges")
VALID_BASES = "t2i-diffusion, edm, ddpm, ddim, ncsn or flow-matching with the U-Net"


@dataclass(frozen=True)
class ControlNetConfig(Config):
    base_run: str = ""  # run directory of the trained diffusion model to control; never modified
    base_ema: bool = True  # use the base run's EMA weights when it has them
    control: str = "mask"  # the control map: mask (shapes' object masks) or edges (Sobel edges)
    control_channels: int = bounded(1, ge=1)  # channels of the control image
    hint_channels: tuple[int, ...] = bounded((16, 32), ge=1)  # widths of the hint encoder's
    # 3x3 convolutions (then a zero 1x1 convolution to the U-Net's width)
    cond_dropout: float = bounded(0.5, ge=0, lt=1)  # probability of the null prompt / class in
    # training (Sec. 3.3: half the prompts are dropped)
    control_scale: float = bounded(1.0, ge=0)  # default scale of the control residuals
    sampler: str = ""  # default sampler ("": the base's)
    sample_steps: int = bounded(0, ge=0)  # default sampling steps (0: the base's)

    def validate(self) -> None:
        if self.control not in CONTROL_KINDS:
            raise ConfigError(
                f"control = {self.control!r} is not a control map; choose 'mask' or 'edges'."
            )


def zero_conv(cin: int, cout: int) -> nn.Conv2d:
    """A 1x1 convolution with weight and bias zero (Sec. 3.1, "zero convolution")."""
    conv = nn.Conv2d(cin, cout, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class HintEncoder(nn.Module):
    """``c_f -> Z(E(c_f))``: 3x3 convolutions with SiLU at the image's resolution (the paper's
    four stride-2 layers map 512x512 to the 64x64 latent; here the U-Net works on pixels), then a
    zero convolution to the U-Net's input width (Sec. 3.2)."""

    def __init__(self, cin: int, widths: Sequence[int], cout: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for w in widths:
            layers += [nn.Conv2d(cin, w, 3, padding=1), nn.SiLU()]
            cin = w
        self.body = nn.Sequential(*layers)
        self.out = zero_conv(cin, cout)

    def forward(self, c: Tensor) -> Tensor:
        return self.out(self.body(c))


def encoder_copy(net: UNet) -> UNet:
    """A trainable copy of ``net``'s encoder: the whole U-Net copied, its up path dropped (only
    :meth:`UNet.embed` and :meth:`UNet.encode` are used)."""
    c = copy.deepcopy(net).requires_grad_(True)
    c.up = nn.ModuleList()
    c.norm_out = nn.Identity()  # type: ignore[assignment]
    c.conv_out = nn.Identity()  # type: ignore[assignment]
    return c


@register_model("controlnet")
class ControlNet(SavesTrainedOnly, DiffusionModel, PromptConditioned, BuiltOnRuns):
    """A ControlNet on a frozen base diffusion run (see the module docstring).

    ``sample(n, control=maps, control_scale=s, prompts=..., guidance=w, cond=labels, ...)``:
    ``control`` ``(n, C, H, W)`` (or one map ``(C, H, W)`` for all) in [0, 1]; without it the
    control scale is 0 and the samples are the base's."""

    config_class = ControlNetConfig
    config: ControlNetConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 64, "ema_decay": 0.999}
    sub_runs: ClassVar[tuple[SubRun, ...]] = (SubRun("base", "base_run", "base_ema"),)

    def __init__(
        self, config: ControlNetConfig, info: DataInfo, base: nn.Module | None = None
    ) -> None:
        if base is None:
            raise ConfigError(
                f"controlnet needs base_run=<run directory of a trained {VALID_BASES}>."
            )
        if (
            not isinstance(base, DiffusionModel)
            or isinstance(base, LatentDiffusion | ControlNet)
            or base.arch != "unet"
            or not isinstance(base.net, UNet)
        ):
            what = base.name if isinstance(base, GenerativeModel) else type(base).__name__
            raise ConfigError(
                f"The base run of a controlnet must be a pixel-space diffusion model "
                f"({VALID_BASES}); it holds {what!r}."
            )
        if tuple(info.shape) != tuple(base.info.shape):
            raise ConfigError(
                f"The data {info.name!r} has images of shape {tuple(info.shape)}, the base run "
                f"was trained on {tuple(base.info.shape)}; train on the base's dataset."
            )
        # DiffusionModel's constructor would build a new backbone: the denoiser here is the base's
        GenerativeModel.__init__(self, config, info)
        self.arch = "unet"
        self.base = base.eval().requires_grad_(False)  # locked (Sec. 3.1); never saved
        self.is_t2i = isinstance(base, TextToImageDiffusion)
        self.n_cond = MAX_LEN if self.is_t2i else int(base.config.class_conditional)
        unet: UNet = base.net
        self.copy = encoder_copy(unet)  # the trainable copy Theta_c
        width = unet.conv_in.out_channels
        self.hint = HintEncoder(config.control_channels, config.hint_channels, width)
        self.zero_convs = nn.ModuleList([zero_conv(c, c) for c in unet.encoder_channels])
        self.leave_out_of_checkpoints({k for k in self.state_dict() if k.startswith("base.")})

    def train(self, mode: bool = True) -> ControlNet:
        super().train(mode)
        self.base.eval()
        return self

    # --- the base's hooks -----------------------------------------------------------------------
    def precond(self, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.base.precond(sigma)

    def train_sigma(self, b: int, generator: torch.Generator | None, device: Any) -> Tensor:
        return self.base.train_sigma(b, generator, device)

    def loss_weight(self, sigma: Tensor) -> Tensor:
        return self.base.loss_weight(sigma)

    def sampling_sigmas(self, steps: int | None = None) -> Tensor:
        return self.base.sampling_sigmas(steps or self.config.sample_steps or None)

    def prior_std(self, sigma_max: float) -> float:
        return self.base.prior_std(sigma_max)

    @property
    def default_guidance(self) -> float:
        return self.base.default_guidance

    def to_data(self, x: Tensor) -> Tensor:
        return self.base.to_data(x)

    # --- the controlled denoiser ---------------------------------------------------------------
    def check_control(self, control: Tensor | None, n: int) -> Tensor:
        """Control maps ``(n, C, H, W)`` on the model's device from ``(n | 1, C, H, W)`` or
        ``(C, H, W)``; a wrong size or channel count is one sentence."""
        c, (_, h, w) = self.config.control_channels, self.info.shape
        if control is None:
            return torch.zeros(n, c, h, w, device=self.device)
        x = torch.as_tensor(control).to(self.device, torch.float32)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or tuple(x.shape[1:]) != (c, h, w) or x.shape[0] not in (1, n):
            got = "x".join(str(s) for s in x.shape)
            raise ConfigError(
                f"The control image must be {h}x{w} with {c} channel{'s' * (c > 1)} (a "
                f"{self.config.control} map, white = 1) for this controlnet, got shape {got}."
            )
        if not bool(torch.isfinite(x).all()):
            raise ConfigError(
                f"The control image holds NaN or infinite values; give a {self.config.control} "
                "map with values in [0, 1] (white = 1)."
            )
        return x.expand(n, -1, -1, -1)

    def pack(self, base_cond: Tensor | None, scale: Tensor | float, control: Tensor) -> Tensor:
        """One condition row per example: ``[base condition (n_cond), scale, control map]``."""
        n = control.shape[0]
        parts = []
        if self.n_cond:
            assert base_cond is not None
            parts.append(base_cond.reshape(n, self.n_cond).float())
        s = torch.as_tensor(scale, dtype=torch.float32, device=control.device)
        parts.append(s.reshape(-1, 1).expand(n, 1))
        parts.append(control.reshape(n, -1).float())  # (n, C H W)
        return torch.cat(parts, dim=1)

    def unpack(self, cond: Tensor) -> tuple[Tensor | None, Tensor, Tensor]:
        """``(base condition or None, scale (B,), control (B, C, H, W))`` of packed rows."""
        b = cond.shape[0]
        base_cond = cond[:, : self.n_cond].long() if self.n_cond else None
        if base_cond is not None and not self.is_t2i:
            base_cond = base_cond[:, 0]  # (B,) class labels
        scale = cond[:, self.n_cond]
        _, h, w = self.info.shape
        control = cond[:, self.n_cond + 1 :].reshape(b, self.config.control_channels, h, w)
        return base_cond, scale, control

    def controlled_denoise(
        self, x: Tensor, sigma: Tensor, base_cond: Tensor | None, control: Tensor, scale: Tensor
    ) -> Tensor:
        """``D(x, sigma | c, c_f) = c_skip x + c_out F_c(c_in x, c_noise, c, c_f)`` with the base's
        preconditioning; ``scale`` ``(B,)`` multiplies the control residuals."""
        b = x.shape[0]
        c_skip, c_out, c_in, c_noise = self.base.precond(sigma.float())
        inp = per_example(c_in, x) * x
        labels = ctx = mask = pooled = None
        if self.is_t2i:
            base = self.base
            assert isinstance(base, TextToImageDiffusion)
            tokens = base_cond if base_cond is not None else base.null_tokens(b)
            ctx, mask, pooled = base.context(tokens)
        elif base_cond is not None:
            labels = base_cond
        emb = self.copy.embed(c_noise, labels, pooled, b)
        hint = self.hint(control.to(inp.dtype))  # Z(c_f; Theta_z1)
        hs, h = self.copy.encode(inp, emb, ctx, mask, hint=hint)  # F(x + Z(c_f); Theta_c)
        s = per_example(scale.to(inp.dtype), inp)
        residuals = [s * z(t) for z, t in zip(self.zero_convs, [*hs, h], strict=True)]  # Eq. (2)
        f = self.base.net(inp, c_noise, labels, ctx, mask, pooled, control=residuals)
        return per_example(c_skip, x) * x + per_example(c_out, x) * f.to(x.dtype)  # EDM Eq. (7)

    def denoise(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        """``D`` on packed conditions (see :meth:`pack`); ``None``: the base's null condition,
        no control."""
        if cond is None:
            cond = self.pack(self.null_base(x.shape[0]), 0.0, self.check_control(None, x.shape[0]))
        base_cond, scale, control = self.unpack(cond)
        return self.controlled_denoise(x, sigma, base_cond, control, scale)

    def sampling_denoiser(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        x0 = self.denoise(x, sigma, cond)
        if self.base.config.clip_denoised and self.info.kind == "images":
            x0 = x0.clamp(*self.info.value_range)
        return x0

    # --- conditions -----------------------------------------------------------------------------
    def null_base(self, n: int) -> Tensor | None:
        """The base's null condition for ``n`` examples (t2i: padding; classes: the null class)."""
        if self.is_t2i:
            base = self.base
            assert isinstance(base, TextToImageDiffusion)
            return base.null_tokens(n)
        if self.n_cond:
            return torch.full((n,), self.base.info.n_classes, device=self.device)
        return None

    def null_condition(self, cond: Tensor) -> Tensor:
        """The packed rows with the base's part nulled; the scale and control map are kept, so the
        control residuals enter both branches of classifier-free guidance."""
        if not self.n_cond:
            return cond
        base_cond, _, _ = self.unpack(cond)
        assert base_cond is not None
        null = self.base.null_condition(base_cond).float().reshape(cond.shape[0], self.n_cond)
        return torch.cat([null, cond[:, self.n_cond :]], dim=1)

    def sampling_condition(
        self, n: int, cond: Tensor | None, options: dict[str, Any]
    ) -> Tensor | None:
        """Packed rows of the base's condition (prompts, caption tokens or labels, as the base
        takes them), ``options["control_scale"]`` and ``options["control"]``."""
        control = options.pop("control", None)
        scale = option(options, "control_scale", self.config.control_scale, ge=0)
        options.pop("control_scale", None)
        if control is None:
            scale = 0.0  # no control image: the base's samples
        maps = self.check_control(control, n)
        base_cond = self.base.sampling_condition(n, cond, options)
        if self.n_cond and base_cond is None:
            base_cond = self.null_base(n)
        return self.pack(base_cond, scale, maps)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        sampler: str | None = None,
        control: Tensor | None = None,
        control_scale: float | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` samples under ``control`` ``(n | 1, C, H, W)`` in [0, 1], its residuals scaled
        by ``control_scale`` (default ``config.control_scale``; without ``control``: 0, the
        base's samples); the other options are the base's (``prompts`` for t2i) and
        :meth:`DiffusionModel.sample`'s."""
        if "prompts" in options and not self.is_t2i:
            raise ConfigError(
                f"The base of this controlnet is {self.base.name!r}; it takes no prompts."
            )
        options["control"] = control
        if control_scale is not None:
            options["control_scale"] = control_scale
        name = sampler or self.config.sampler or self.base.config.sampler
        return super().sample(n, cond=cond, generator=generator, sampler=name, **options)

    def encode_prompts(self, prompts: Sequence[str]) -> Tensor:
        """The base's caption tokens of ``prompts`` (a text-to-image base only)."""
        if not isinstance(self.base, TextToImageDiffusion):
            raise ConfigError(
                f"The base of this controlnet is {self.base.name!r}; it takes no prompts."
            )
        return self.base.encode_prompts(prompts)

    # --- training -------------------------------------------------------------------------------
    def training_condition(
        self, y: Tensor | None, generator: torch.Generator | None = None
    ) -> Tensor | None:
        """None: :meth:`denoise` then uses the base's null condition and no control (training
        goes through :meth:`per_example_controlled_loss`, which reads the batch's control)."""
        return None

    def training_base_cond(self, batch: Batch, generator: torch.Generator | None) -> Tensor | None:
        """The base's condition of a batch, dropped to the null one with ``cond_dropout``."""
        p = self.config.cond_dropout
        if self.is_t2i:
            if "text" not in batch:
                raise ConfigError(
                    f"This controlnet's base is text-to-image; dataset {self.info.name!r} has no "
                    "captions (try 'control:mask:shapes?size=16')."
                )
            tok = batch["text"]
            return drop_to_null(tok, p, self.base.null_condition(tok), generator)
        if self.n_cond:
            y = batch["y"]
            return drop_to_null(y, p, self.base.null_condition(y), generator)
        return None

    def per_example_controlled_loss(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> Tensor:
        """``lambda(sigma) |D(x0 + sigma eps, sigma | c, c_f) - x0|^2 / dim`` (Eq. 5 in the base's
        weighting) per example."""
        if "control" not in batch:
            raise ConfigError(
                f"controlnet trains on control maps; dataset {self.info.name!r} has none "
                f"(use 'control:{self.config.control}:<the base run's dataset>')."
            )
        x0 = batch["x"]
        b, dev = x0.shape[0], x0.device
        base_cond = self.training_base_cond(batch, generator)
        sigma = self.base.train_sigma(b, generator, dev)
        eps = randn(x0.shape, generator=generator, device=dev)
        x = x0 + per_example(sigma, x0) * eps
        ones = torch.ones(b, device=dev)
        d = self.controlled_denoise(x, sigma, base_cond, batch["control"], ones)
        return self.base.loss_weight(sigma) * ((d - x0) ** 2).reshape(b, -1).mean(1)  # Eq. (5)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        loss = self.per_example_controlled_loss(batch).mean()
        return LossOutput(loss, {"loss": loss.detach()})

    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        return {"loss": self.per_example_controlled_loss(batch, generator)}
