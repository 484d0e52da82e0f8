"""The one diffusion model: a preconditioned denoiser ``D(x, sigma, cond) -> x0_hat``.

Following EDM (Karras et al., arXiv:2206.00364, Eq. 7 and Table 1) every diffusion-type model is

    D(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma))

on ``x = x0 + sigma * eps``, trained with ``E lambda(sigma) |D(x0 + sigma eps, sigma) - x0|^2``
(Eq. 2 / Eq. 8) over a training distribution of sigma. DDPM (VP, eps-prediction), NCSN (VE, score),
EDM and flow matching (velocity) are choices of those functions; samplers only ever see ``D``.
Subclasses override the hooks :meth:`precond`, :meth:`train_sigma`, :meth:`loss_weight` and
:meth:`sampling_sigmas`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from genzoo.core.config import Config
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, GenerativeModel, LossOutput
from genzoo.core.seeding import rand, randn
from genzoo.data.base import DataInfo
from genzoo.diffusion.guidance import ClassifierFreeGuidance
from genzoo.diffusion.samplers import run_sampler
from genzoo.nn.dit import DiT
from genzoo.nn.unet import NoiseMLP, UNet


@dataclass(frozen=True)
class DiffusionConfig(Config):
    arch: Literal["auto", "unet", "dit", "mlp"] = "auto"  # auto: U-Net for images, MLP for points
    channels: int = 32  # U-Net base channels (small: fits 8x8 digits on a CPU; 128 for CIFAR-10)
    channel_mult: tuple[int, ...] = (1, 2)  # U-Net channel multiplier per resolution level
    num_res_blocks: int = 1  # U-Net residual blocks per level
    attn_resolutions: tuple[int, ...] = ()  # resolutions with self-attention, e.g. (16,)
    dropout: float = 0.0  # dropout inside residual blocks
    adaptive_norm: bool = False  # U-Net: noise and class enter by adaptive group norm (AdaGN,
    # arXiv:2105.05233) instead of being added to the features (DDPM)
    hidden: tuple[int, ...] = (256, 256, 256)  # MLP widths for points
    patch: int = 2  # DiT patch size
    width: int = 128  # DiT token width
    depth: int = 4  # DiT blocks
    heads: int = 4  # DiT attention heads
    class_conditional: bool = False  # condition on class labels (label dropout for CFG)
    label_dropout: float = 0.1  # probability of dropping the label when class-conditional
    clip_denoised: bool = True  # clamp D(x, sigma) to the data range when sampling images
    sampler: str = "heun"  # default sampler (see `genzoo list samplers`)
    sample_steps: int = 18  # default number of sampling steps

    def validate(self) -> None:
        if not 0 <= self.label_dropout < 1:
            raise ConfigError(f"label_dropout = {self.label_dropout} must be in [0, 1).")
        if self.sample_steps < 0:
            raise ConfigError(f"sample_steps = {self.sample_steps} must be >= 0.")


def _b(v: Tensor, x: Tensor) -> Tensor:
    """Broadcast a per-example (B,) tensor against x (B, ...)."""
    return v.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)


class DiffusionModel(GenerativeModel):
    """Base of every denoiser model; see the module docstring."""

    family = "diffusion"
    likelihood = "bound"
    config_class: ClassVar[type[Config]] = DiffusionConfig
    config: Any

    def __init__(self, config: DiffusionConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        n_classes = info.n_classes if c.class_conditional else 0
        if c.class_conditional and info.n_classes == 0:
            raise ConfigError(
                f"class_conditional needs labelled data; {info.name!r} has no labels."
            )
        arch = c.arch if c.arch != "auto" else ("unet" if info.kind == "images" else "mlp")
        if arch == "unet":
            if info.kind != "images":
                raise ConfigError(f"arch = 'unet' needs images, but {info.name!r} holds points.")
            self.net: torch.nn.Module = UNet(
                in_channels=info.shape[0],
                resolution=info.shape[-1],
                channels=c.channels,
                channel_mult=c.channel_mult,
                num_res_blocks=c.num_res_blocks,
                attn_resolutions=c.attn_resolutions,
                dropout=c.dropout,
                n_classes=n_classes,
                adaptive_norm=c.adaptive_norm,
            )
        elif arch == "dit":
            if info.kind != "images":
                raise ConfigError(f"arch = 'dit' needs images, but {info.name!r} holds points.")
            self.net = DiT(
                info.shape[0],
                info.shape[-1],
                patch=c.patch,
                width=c.width,
                depth=c.depth,
                heads=c.heads,
                n_classes=n_classes,
            )
        else:
            self.net = NoiseMLP(info.dim, c.hidden, n_classes=n_classes)
        self.arch = arch

    # --- hooks ---
    def precond(self, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(c_skip, c_out, c_in, c_noise)`` per example (EDM Table 1)."""
        raise NotImplementedError

    def train_sigma(self, b: int, generator: torch.Generator | None, device: Any) -> Tensor:
        """Training noise levels (B,)."""
        raise NotImplementedError

    def loss_weight(self, sigma: Tensor) -> Tensor:
        """``lambda(sigma)`` in ``lambda |D - x0|^2``."""
        raise NotImplementedError

    def sampling_sigmas(self, steps: int | None = None) -> Tensor:
        """Default descending sampling sigmas ending in 0."""
        raise NotImplementedError

    def prior_std(self, sigma_max: float) -> float:
        """Standard deviation of the initial noise at ``sigma_max`` (unscaled variable)."""
        return sigma_max

    # --- the denoiser ---
    def denoise(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        """``D(x, sigma) = c_skip x + c_out F(c_in x, c_noise)`` (EDM Eq. 7)."""
        c_skip, c_out, c_in, c_noise = self.precond(sigma.float())
        inp = _b(c_in, x) * x
        if self.arch == "mlp":
            f = self.net(inp.reshape(x.shape[0], -1), c_noise, cond).reshape(x.shape)  # (B, D)
        else:
            f = self.net(inp, c_noise, cond)
        return _b(c_skip, x) * x + _b(c_out, x) * f.to(x.dtype)

    def sampling_denoiser(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        """``D`` clamped to the image range (DDPM's ``clip_denoised``) when configured."""
        x0 = self.denoise(x, sigma, cond)
        if self.config.clip_denoised and self.info.kind == "images":
            x0 = x0.clamp(*self.info.value_range)
        return x0

    # --- training ---
    def per_example_loss(
        self,
        x0: Tensor,
        y: Tensor | None = None,
        generator: torch.Generator | None = None,
        denoiser: Any = None,
    ) -> Tensor:
        """``lambda(sigma) |D(x0 + sigma eps, sigma) - x0|^2 / dim`` per example; ``denoiser``
        replaces ``D`` (e.g. the ideal denoiser, for the floor) with the same noise draws."""
        b, dev = x0.shape[0], x0.device
        sigma = self.train_sigma(b, generator, dev)
        eps = randn(x0.shape, generator=generator, device=dev)
        x = x0 + _b(sigma, x0) * eps  # x = x0 + sigma eps
        cond = None
        if self.config.class_conditional and y is not None:
            drop = rand((b,), generator=generator, device=dev) < self.config.label_dropout
            cond = torch.where(drop, torch.full_like(y, self.info.n_classes), y)
        d = self.denoise(x, sigma, cond) if denoiser is None else denoiser(x, sigma)
        err = (d - x0) ** 2  # EDM Eq. (2)
        return self.loss_weight(sigma) * err.reshape(b, -1).mean(1)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        per = self.per_example_loss(batch["x"], batch.get("y"))
        loss = per.mean()
        return LossOutput(loss, {"loss": loss.detach()})

    def eval_metrics(
        self, x: Tensor, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        out = {"loss": self.per_example_loss(x, y, generator)}
        if self.info.kind == "points":  # exact divergence is cheap in low dimension
            out["ode_log_prob"] = self.ode_log_prob(x, generator=generator).float()
        return out

    def ode_log_prob(
        self, x: Tensor, *, steps: int = 64, generator: torch.Generator | None = None
    ) -> Tensor:
        """Log-likelihood (nats per example) through the probability-flow ODE from the smallest
        to the largest sampling sigma, with a Gaussian prior of :meth:`prior_std` there."""
        from genzoo.diffusion.likelihood import gaussian_log_prob, ode_log_prob

        sig = self.sampling_sigmas()
        s_min = float(sig[sig > 0].min())
        s_max = float(sig[0])
        std = self.prior_std(s_max)
        return ode_log_prob(
            self.denoise,
            x,
            sigma_min=s_min,
            sigma_max=s_max,
            steps=steps,
            prior_log_prob=lambda y, _s: gaussian_log_prob(y, std),
            generator=generator,
        )

    # --- sampling ---
    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        guidance: float = 1.0,
        sigmas: Tensor | None = None,
        compile: bool = False,
        cuda_graph: bool = False,
        **options: Any,
    ) -> Tensor:
        """Draw ``n`` samples with any genzoo sampler.

        ``cond`` are class labels (B,) for class-conditional models; ``guidance`` w applies
        classifier-free guidance ``D_u + w (D_c - D_u)`` (1: plain conditional sampling).
        ``compile`` runs the denoiser through ``torch.compile``; ``cuda_graph`` replays each
        denoiser call from a recorded CUDA graph (on CUDA; elsewhere it runs as usual). Both are
        kept for later calls (:mod:`genzoo.diffusion.fast`) and give the same samples.
        """
        from genzoo.diffusion.fast import fast_denoiser

        sig = sigmas if sigmas is not None else self.sampling_sigmas(steps)
        x = randn((n, *self.info.shape), generator=generator, device=self.device)
        x = x * self.prior_std(float(sig[0]))
        denoiser: Any = fast_denoiser(self, compile=compile, cuda_graph=cuda_graph)
        if cond is not None:
            if not self.config.class_conditional:
                raise ConfigError(f"Model {self.name!r} is unconditional; it takes no class.")
            cond = cond.to(self.device).long()
            if guidance != 1.0:
                denoiser = ClassifierFreeGuidance(denoiser, guidance, self.info.n_classes)
        out = run_sampler(
            sampler or self.config.sampler,
            denoiser,
            x,
            sig,
            cond=cond,
            generator=generator,
            **options,
        )
        if self.config.clip_denoised and self.info.kind == "images":
            out = out.clamp(*self.info.value_range)  # the last step's rounding stays in range
        return out
