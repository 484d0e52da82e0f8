"""Video diffusion: Video Diffusion Models (Ho, Salimans, Gritsenko, Chan, Norouzi & Fleet,
arXiv:2204.03458), on genzoo's one denoiser currency with EDM's preconditioning
(arXiv:2206.00364, Table 1).

A clip ``x0`` of shape ``(T, C, H, W)`` is one example: noise is added to all its frames at one
level, ``x = x0 + sigma eps`` (Sec. 2, Eq. (1) of arXiv:2204.03458 in EDM's unscaled variable), and
the denoiser ``D(x, sigma) = c_skip x + c_out F(c_in x, c_noise)`` (EDM Eq. 7) has a factorised
space-time U-Net ``F`` (Sec. 3, :class:`~genzoo.nn.spacetime.SpaceTimeUNet`): the image U-Net's
2-D layers on every frame, a temporal attention layer after each of its stages.

Conditioning on the first frames (prediction). The paper conditions by reconstruction guidance
(Sec. 3.1, Eq. (7)); genzoo trains the condition in instead, frame masking as in masked video
models: ``F`` also sees the known frames (clean) and their mask as extra input channels, ``[c_in
x, m * x0, m]`` with ``m`` 1 on the first ``k`` frames and 0 on the rest. In training a clip shows
its first ``k ~ U{1..max_context}`` frames with probability ``context_prob`` (else ``k = 0``: the
unconditional model, the same network), and the loss (EDM Eq. 2) is taken over the unknown
frames only. In sampling, ``sample(n, cond=frames)`` with ``frames`` ``(n, k, C, H, W)`` predicts
the remaining ``T - k`` frames; the denoiser returns the known frames as they are, so every
genzoo sampler (Heun, Euler, DDIM, DPM-Solver++, ...) ends on them exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from genzoo.core.config import bounded
from genzoo.core.errors import ConfigError
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand, randn
from genzoo.core.tensors import per_example
from genzoo.data.base import DataInfo
from genzoo.models.diffusion.backbones import UNetBackbone
from genzoo.models.diffusion.base import DiffusionConfig
from genzoo.models.diffusion.edm import EDM, EDMConfig
from genzoo.nn.spacetime import SpaceTimeUNet
from genzoo.nn.unet import UNet


@dataclass(frozen=True)
class VideoDiffusionConfig(EDMConfig):
    unet: UNetBackbone = dataclasses.field(
        default_factory=lambda: UNetBackbone(channels=32, channel_mult=(1, 2, 2))
    )  # the spatial (image) U-Net run on every frame
    causal: bool = False  # temporal attention sees only the current and earlier frames
    context_prob: float = bounded(0.5, ge=0, le=1)  # probability that a training clip shows its
    # first frames as the condition (prediction); 0: unconditional only
    max_context: int = bounded(4, ge=1)  # at most this many known frames in training
    sample_steps: int = bounded(18, ge=1)  # Heun steps (35 network evaluations)

    def validate(self) -> None:
        super().validate()
        if self.arch not in ("auto", "unet"):
            raise ConfigError(
                f"arch = {self.arch!r}: video-diffusion runs the U-Net on frames; use arch=unet."
            )
        if self.class_conditional:
            raise ConfigError("video-diffusion is not class-conditional; drop class_conditional.")


@register_model("video-diffusion")
class VideoDiffusion(EDM):
    """Video diffusion (arXiv:2204.03458): EDM over clips with a factorised space-time U-Net,
    unconditional or conditioned on the first frames (see the module docstring)."""

    config_class = VideoDiffusionConfig
    config: VideoDiffusionConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "ema_decay": 0.999, "batch_size": 32}
    preview_options: ClassVar[dict[str, Any]] = {"steps": 8}

    def build_net(
        self, config: DiffusionConfig, info: DataInfo, n_classes: int, net_options: dict[str, Any]
    ) -> torch.nn.Module:
        if info.kind != "video" or len(info.shape) != 4:
            raise ConfigError(
                f"video-diffusion needs video data (moving-digits, moving-shapes); {info.name!r} "
                f"holds {info.kind}."
            )
        self.arch = "unet"
        c, res = info.shape[1], info.shape[-1]
        spatial = UNet(
            in_channels=2 * c + 1,  # [c_in x, m x0, m]: the noisy frames, known frames, mask
            out_channels=c,
            resolution=res,
            **dataclasses.asdict(config.unet),  # type: ignore[attr-defined]
        )
        return SpaceTimeUNet(spatial, causal=config.causal)  # type: ignore[attr-defined]

    @property
    def frames(self) -> int:
        return int(self.info.shape[0])

    # --- the known frames as a condition ---
    def pack_context(self, x0: Tensor, known: Tensor) -> Tensor:
        """``(B, T, C + 1, H, W)``: the clips ``x0`` on their known frames (0 elsewhere) and the
        mask channel, from ``known`` ``(B, T)`` (1: known)."""
        m = known.to(x0.dtype)[:, :, None, None, None].expand(*x0.shape[:2], 1, *x0.shape[3:])
        return torch.cat([x0 * m, m], dim=2)  # (B, T, C + 1, H, W)

    def denoise(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        """``D(x, sigma | known frames)`` (EDM Eq. 7); ``cond`` from :meth:`pack_context`, None:
        unconditional (no known frame)."""
        c_skip, c_out, c_in, c_noise = self.precond(sigma.float())
        if cond is None:
            cond = x.new_zeros(*x.shape[:2], x.shape[2] + 1, *x.shape[3:])
        inp = torch.cat([per_example(c_in, x) * x, cond.to(x.dtype)], dim=2)  # (B, T, 2C+1, H, W)
        f = self.net(inp, c_noise)  # (B, T, C, H, W)
        return per_example(c_skip, x) * x + per_example(c_out, x) * f.to(x.dtype)

    def sampling_denoiser(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        """``D`` clamped, with the known frames returned as they are (so samplers end on them)."""
        x0 = super().sampling_denoiser(x, sigma, cond)
        if cond is None:
            return x0
        c = x.shape[2]
        m = cond[:, :, c:]  # (B, T, 1, H, W)
        return torch.where(m > 0.5, cond[:, :, :c], x0)

    def null_condition(self, cond: Tensor) -> Tensor:
        """No known frame (the unconditional model)."""
        return torch.zeros_like(cond)

    def sampling_condition(
        self, n: int, cond: Tensor | None, options: dict[str, Any]
    ) -> Tensor | None:
        """``cond``: the first frames ``(n, k, C, H, W)`` (``1 <= k < T``), model range, or None."""
        t, c, h, w = self.info.shape
        if cond is None:
            return None
        if cond.ndim != 5 or tuple(cond.shape[2:]) != (c, h, w) or cond.shape[0] != n:
            raise ConfigError(
                f"Context frames of shape {tuple(cond.shape)} do not fit this run: it takes "
                f"({n}, k, {c}, {h}, {w}) with 1 <= k < {t} (frames of {c} x {h} x {w})."
            )
        k = cond.shape[1]
        if not 1 <= k < t:
            raise ConfigError(f"{k} context frames: give 1 to {t - 1} of the {t} frames.")
        x0 = torch.zeros(n, t, c, h, w, device=self.device)
        x0[:, :k] = cond.to(self.device, x0.dtype)
        known = torch.zeros(n, t, device=self.device)
        known[:, :k] = 1
        return self.pack_context(x0, known)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        frames: int | None = None,
        size: int | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` clips ``(n, T, C, H, W)``; ``cond``: their first frames ``(n, k, C, H, W)``
        (prediction of the rest). ``frames`` and ``size``, if given, must be the clip length and
        frame side the model was trained on (one sentence otherwise). Other options as
        :meth:`DiffusionModel.sample` (``sampler``, ``steps``, ...)."""
        t, _, h, _ = self.info.shape
        if frames is not None and int(frames) != t:
            raise ConfigError(
                f"frames={frames}: this run was trained on clips of {t} frames and draws clips "
                f"of {t} frames only."
            )
        if size is not None and int(size) != h:
            raise ConfigError(
                f"size={size}: this run was trained on {h} x {h} frames and draws those only."
            )
        return super().sample(n, cond=cond, generator=generator, **options)

    # --- training ---
    def context_frames(self, b: int, generator: torch.Generator | None, device: Any) -> Tensor:
        """How many first frames each training clip shows ``(B,)``: 0 with probability ``1 -
        context_prob``, else uniform in ``1 .. min(max_context, T - 1)``."""
        c = self.config
        top = min(c.max_context, self.frames - 1)
        use = rand((b,), generator=generator, device=device) < c.context_prob
        k = 1 + (rand((b,), generator=generator, device=device) * top).long().clamp_max(top - 1)
        return torch.where(use, k, torch.zeros_like(k))

    def per_example_loss(
        self,
        x0: Tensor,
        y: Tensor | None = None,
        generator: torch.Generator | None = None,
        denoiser: Any = None,
    ) -> Tensor:
        """``lambda(sigma) |D(x0 + sigma eps, sigma | first k frames) - x0|^2`` averaged over the
        unknown frames (EDM Eq. 2); ``denoiser`` replaces ``D`` (unconditional calls)."""
        b, t, dev = x0.shape[0], x0.shape[1], x0.device
        sigma = self.train_sigma(b, generator, dev)
        eps = randn(x0.shape, generator=generator, device=dev)
        x = x0 + per_example(sigma, x0) * eps  # x = x0 + sigma eps, one sigma per clip
        k = self.context_frames(b, generator, dev)
        known = (torch.arange(t, device=dev)[None] < k[:, None]).float()  # (B, T)
        if denoiser is None:
            d = self.denoise(x, sigma, self.pack_context(x0, known))
        else:
            d = denoiser(x, sigma)
        err = ((d - x0) ** 2).flatten(2).mean(2)  # (B, T) per frame, EDM Eq. (2)
        unknown = 1 - known
        return self.loss_weight(sigma) * (err * unknown).sum(1) / unknown.sum(1)
