"""The one diffusion model: a preconditioned denoiser ``D(x, sigma, cond) -> x0_hat``.

Following EDM (Karras et al., arXiv:2206.00364, Eq. 7 and Table 1) every diffusion-type model is

    D(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma))

on ``x = x0 + sigma * eps``, trained with ``E lambda(sigma) |D(x0 + sigma eps, sigma) - x0|^2``
(Eq. 2 / Eq. 8) over a training distribution of sigma. DDPM (VP, eps-prediction), NCSN (VE, score),
EDM and flow matching (velocity) are choices of those functions; samplers only ever see ``D``.
Subclasses override the hooks :meth:`precond`, :meth:`train_sigma`, :meth:`loss_weight` and
:meth:`sampling_sigmas`.

Sampling is one template, :meth:`DiffusionModel.sample` (and :meth:`DiffusionModel.inpaint`, the
same with the known pixels kept), with four hooks that the conditional and latent models override:

1. :meth:`sampling_condition`: the condition as the denoiser takes it (class labels; t2i: caption
   tokens of the prompts);
2. :meth:`null_condition`: the dropped condition of classifier-free guidance (one
   :class:`~genzoo.diffusion.guidance.ClassifierFreeGuidance` for classes and captions) and of
   training's condition dropout;
3. :meth:`initial_noise`: ``N(0, prior_std^2)`` in the space the denoiser works in (ldm: latents);
4. :meth:`to_data`: the sampler's output as data (clamped images; ldm: decoded latents).

The denoiser that the sampler calls is the model's :meth:`sampling_denoiser`, compiled or replayed
from CUDA graphs on request (:mod:`genzoo.diffusion.fast`), then guided, then (inpainting) with the
known region replaced — or RePaint's sampler (arXiv:2201.09865) with ``sampler="repaint"``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError, choices
from genzoo.core.options import count
from genzoo.core.protocol import Batch, GenerativeModel, LikelihoodBound, LossOutput, Samples
from genzoo.core.seeding import rand, randn
from genzoo.core.tensors import per_example
from genzoo.data.base import DataInfo
from genzoo.diffusion.fast import fast_denoiser
from genzoo.diffusion.guidance import (
    ClassifierFreeGuidance,
    InpaintingDenoiser,
    check_guidance,
)
from genzoo.diffusion.likelihood import gaussian_log_prob, ode_log_prob
from genzoo.diffusion.repaint import sample_repaint
from genzoo.diffusion.samplers import SAMPLERS, Denoiser, call_sampler, run_sampler
from genzoo.models.diffusion.backbones import (
    FLAT_KEYS,
    Arch,
    DiTBackbone,
    MLPBackbone,
    UNetBackbone,
    build_backbone,
    nest_flat_keys,
    resolve_arch,
)

C = TypeVar("C", bound="DiffusionConfig")


@dataclass(frozen=True)
class DiffusionConfig(Config):
    arch: Arch = "auto"  # the backbone built: auto = U-Net for images, MLP for points
    unet: UNetBackbone = dataclasses.field(default_factory=UNetBackbone)  # arch = unet
    dit: DiTBackbone = dataclasses.field(default_factory=DiTBackbone)  # arch = dit
    mlp: MLPBackbone = dataclasses.field(default_factory=MLPBackbone)  # arch = mlp
    class_conditional: bool = False  # condition on class labels (label dropout for CFG)
    label_dropout: float = bounded(0.1, ge=0, lt=1)  # probability of dropping the label
    clip_denoised: bool = True  # clamp D(x, sigma) to the data range when sampling images
    sampler: str = "heun"  # default sampler (see `genzoo list samplers`)
    sample_steps: int = bounded(18, ge=0)  # default number of sampling steps

    @classmethod
    def field_names(cls) -> list[str]:
        """The keys :meth:`from_dict` takes: the fields and the old flat backbone keys
        (``channels``, ``hidden``, ``width``, ...), which land in their backbone's sub-config."""
        return [*super().field_names(), *FLAT_KEYS]

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any] | None = None, *, where: str = "") -> C:
        """As :meth:`Config.from_dict`, with the old flat backbone keys moved into ``unet``,
        ``dit`` or ``mlp`` first (:func:`~genzoo.models.diffusion.backbones.nest_flat_keys`)."""
        return super().from_dict(nest_flat_keys(cls, dict(data or {})), where=where)  # type: ignore[misc]


def drop_to_null(
    cond: Tensor, p: float, null: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """``cond`` ``(B, ...)`` with each row replaced by the null condition ``null`` (same shape)
    with probability ``p``: the condition dropout of classifier-free guidance (arXiv:2207.12598,
    Algorithm 1). No draw when ``p = 0``."""
    if p <= 0:
        return cond
    drop = rand((cond.shape[0],), generator=generator, device=cond.device) < p
    return torch.where(per_example(drop, cond).bool(), null, cond)


class DiffusionModel(GenerativeModel, Samples, LikelihoodBound):
    """Base of every denoiser model; see the module docstring."""

    family = "diffusion"
    config_class: ClassVar[type[Config]] = DiffusionConfig
    config: Any

    def __init__(
        self,
        config: DiffusionConfig,
        info: DataInfo,
        *,
        net_options: dict[str, Any] | None = None,
    ) -> None:
        """``net_options`` are further U-Net arguments of a subclass (t2i's cross-attention)."""
        super().__init__(config, info)
        if config.class_conditional and info.n_classes == 0:
            raise ConfigError(
                f"class_conditional needs labelled data; {info.name!r} has no labels."
            )
        n_classes = info.n_classes if config.class_conditional else 0
        self.net: torch.nn.Module = self.build_net(config, info, n_classes, net_options or {})

    def build_net(
        self, config: DiffusionConfig, info: DataInfo, n_classes: int, net_options: dict[str, Any]
    ) -> torch.nn.Module:
        """The backbone ``F`` of ``config.arch`` (sets :attr:`arch`; video builds its own)."""
        self.arch = resolve_arch(config.arch, info)
        return build_backbone(self.arch, config, info, n_classes=n_classes, **net_options)

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
        inp = per_example(c_in, x) * x
        if self.arch == "mlp":
            f = self.net(inp.reshape(x.shape[0], -1), c_noise, cond).reshape(x.shape)  # (B, D)
        else:
            f = self.net(inp, c_noise, cond)
        return per_example(c_skip, x) * x + per_example(c_out, x) * f.to(x.dtype)

    def sampling_denoiser(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        """``D`` clamped to the image range (DDPM's ``clip_denoised``) when configured."""
        x0 = self.denoise(x, sigma, cond)
        if self.config.clip_denoised and self.info.kind in ("images", "video"):
            x0 = x0.clamp(*self.info.value_range)
        return x0

    # --- conditions ---
    def null_condition(self, cond: Tensor) -> Tensor:
        """The null condition shaped like ``cond``: the "no class" label ``n_classes`` (one past
        the last, the backbones' learned unconditional embedding)."""
        return torch.full_like(cond, self.info.n_classes)

    def training_condition(
        self, y: Tensor | None, generator: torch.Generator | None = None
    ) -> Tensor | None:
        """The condition the denoiser is trained with: labels, dropped to the null class with
        probability ``label_dropout`` (None for unconditional models)."""
        if not self.config.class_conditional or y is None:
            return None
        return drop_to_null(y, self.config.label_dropout, self.null_condition(y), generator)

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
        x = x0 + per_example(sigma, x0) * eps  # x = x0 + sigma eps
        cond = self.training_condition(y, generator)
        d = self.denoise(x, sigma, cond) if denoiser is None else denoiser(x, sigma)
        err = (d - x0) ** 2  # EDM Eq. (2)
        return self.loss_weight(sigma) * err.reshape(b, -1).mean(1)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        per = self.per_example_loss(batch["x"], batch.get("y"))
        loss = per.mean()
        return LossOutput(loss, {"loss": loss.detach()})

    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """The test denoising loss; for points also the probability-flow ODE log-likelihood
        (``ode_log_prob``, exact divergence, cheap in low dimension)."""
        x = batch["x"]
        out = {"loss": self.per_example_loss(x, batch.get("y"), generator)}
        if self.info.kind == "points":
            out["ode_log_prob"] = self.ode_log_prob(x, generator=generator).float()
        return out

    def ode_log_prob(
        self, x: Tensor, *, steps: int = 64, generator: torch.Generator | None = None
    ) -> Tensor:
        """Log-likelihood (nats per example) through the probability-flow ODE from the smallest
        to the largest sampling sigma, with a Gaussian prior of :meth:`prior_std` there."""
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

    # --- the sampling template and its hooks ---
    @property
    def default_guidance(self) -> float:
        """The guidance scale ``w`` when none is given (1: plain conditional sampling)."""
        return 1.0

    def sampling_condition(
        self, n: int, cond: Tensor | None, options: dict[str, Any]
    ) -> Tensor | None:
        """Hook 1: the condition of ``n`` samples as the denoiser takes it, on the model's device;
        may consume model-specific ``options`` (t2i: ``prompts``). Here: class labels ``(n,)``."""
        if cond is None:
            return None
        if not self.config.class_conditional:
            raise ConfigError(f"Model {self.name!r} is unconditional; it takes no class.")
        return cond.to(self.device).long()

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """The shape of one sample in the space the denoiser works in."""
        return tuple(self.info.shape)

    def initial_noise(self, n: int, sigma_max: float, generator: torch.Generator | None) -> Tensor:
        """Hook 3: the sampler's start, ``N(0, prior_std(sigma_max)^2)`` of :attr:`noise_shape`."""
        x = randn((n, *self.noise_shape), generator=generator, device=self.device)
        return x * self.prior_std(sigma_max)

    def to_data(self, x: Tensor) -> Tensor:
        """Hook 4: the sampler's output as data; images are clamped to their range (the last
        step's rounding stays in range)."""
        if self.config.clip_denoised and self.info.kind in ("images", "video"):
            return x.clamp(*self.info.value_range)
        return x

    def fast_sampling_denoiser(self, *, compile: bool, cuda_graph: bool) -> Denoiser:
        """:meth:`sampling_denoiser`, compiled and/or replayed from CUDA graphs on request."""
        return fast_denoiser(self, compile=compile, cuda_graph=cuda_graph)

    def _generate(
        self,
        n: int,
        *,
        cond: Tensor | None,
        generator: torch.Generator | None,
        sampler: str | None,
        steps: int | None,
        guidance: float | None,
        sigmas: Tensor | None,
        compile: bool,
        cuda_graph: bool,
        options: dict[str, Any],
        known: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """The one sampling template (see the module docstring); ``known = (x_known, mask)``
        inpaints."""
        name = sampler or self.config.sampler
        if name == "repaint" and known is None:
            raise ConfigError(
                "Sampler 'repaint' inpaints: it needs known pixels (model.inpaint, genzoo inpaint)."
            )
        if known is not None and name != "repaint" and name not in SAMPLERS:
            valid = choices([*SAMPLERS, "repaint"])
            raise ConfigError(f"Unknown sampler {name!r} for inpainting; choose {valid}.")
        options = dict(options)
        cond = self.sampling_condition(n, cond, options)  # 1. the condition
        w = self.default_guidance if guidance is None else check_guidance(guidance)
        if steps is not None:  # 0 would read as the default in sampling_sigmas: refused here
            steps = count(steps, "steps", "sampling steps; leave it out for the model's default")
        sig = sigmas if sigmas is not None else self.sampling_sigmas(steps)
        x = self.initial_noise(n, float(sig[0]), generator)  # 3. the noise: the first draw
        denoiser: Any = self.fast_sampling_denoiser(compile=compile, cuda_graph=cuda_graph)
        if cond is not None and w != 1.0:
            denoiser = ClassifierFreeGuidance(denoiser, w, self.null_condition)  # 2. null cond
        if known is None:
            out = run_sampler(name, denoiser, x, sig, cond=cond, generator=generator, **options)
        elif name == "repaint":
            x_known, mask = known
            out = call_sampler(
                name,
                sample_repaint,
                denoiser,
                x,
                sig,
                x_known=x_known,
                mask=mask,
                cond=cond,
                generator=generator,
                **options,
            )
        else:
            den = InpaintingDenoiser(denoiser, *known)
            out = run_sampler(name, den, x, sig, cond=cond, generator=generator, **options)
        return self.to_data(out)  # 4. the data

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        sigmas: Tensor | None = None,
        compile: bool = False,
        cuda_graph: bool = False,
        **options: Any,
    ) -> Tensor:
        """Draw ``n`` samples with any genzoo sampler.

        ``cond`` are class labels (B,) for class-conditional models; ``guidance`` w applies
        classifier-free guidance ``D_u + w (D_c - D_u)`` (default :attr:`default_guidance`; 1:
        plain conditional sampling). ``compile`` runs the denoiser through ``torch.compile``;
        ``cuda_graph`` replays each denoiser call from a recorded CUDA graph (on CUDA; elsewhere
        it runs as usual). Both are kept for later calls (:mod:`genzoo.diffusion.fast`) and give
        the same samples. Other ``options`` go to the sampler (``eta``, ``s_churn``, ...).
        """
        return self._generate(
            n,
            cond=cond,
            generator=generator,
            sampler=sampler,
            steps=steps,
            guidance=guidance,
            sigmas=sigmas,
            compile=compile,
            cuda_graph=cuda_graph,
            options=options,
        )

    def _check_known(self, x_known: Any, mask: Any) -> tuple[Tensor, Tensor]:
        """``(x_known, mask)`` on the model's device, the mask expanded to the images; one
        sentence for images not of the data's shape, a mask that does not broadcast to them or
        holds values outside [0, 1], or values that are NaN or infinite."""
        shape = tuple(int(s) for s in self.info.shape)
        want = f"(n, {', '.join(map(str, shape))})"
        if not isinstance(x_known, Tensor) or x_known.ndim != len(shape) + 1:
            got = tuple(x_known.shape) if isinstance(x_known, Tensor) else type(x_known).__name__
            raise ConfigError(f"x_known must be a tensor {want} of images; got {got}.")
        if tuple(x_known.shape[1:]) != shape or len(x_known) < 1:
            raise ConfigError(
                f"x_known has shape {tuple(x_known.shape)}; this model inpaints {want} with n >= 1."
            )
        mask = torch.as_tensor(mask)
        try:
            mask = mask.to(self.device, x_known.dtype).expand_as(x_known)
        except RuntimeError:
            raise ConfigError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to the images "
                f"{tuple(x_known.shape)}; give 1 where a pixel is known, 0 where it is hidden."
            ) from None
        if not bool(torch.isfinite(x_known).all()) or not bool(((mask >= 0) & (mask <= 1)).all()):
            raise ConfigError(
                "x_known must be finite and mask in [0, 1] (1: known, 0: hidden); NaN, infinite "
                "or out-of-range values would fill the images with them."
            )
        return x_known.to(self.device), mask

    @torch.no_grad()
    def inpaint(
        self,
        x_known: Tensor,
        mask: Tensor,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        sigmas: Tensor | None = None,
        compile: bool = False,
        cuda_graph: bool = False,
        **options: Any,
    ) -> Tensor:
        """Fill in ``x_known`` ``(n, *shape)`` where ``mask`` (broadcasting against it; 1: known)
        is 0, by the same template as :meth:`sample`. Any sampler runs on the replacement
        denoiser (:class:`~genzoo.diffusion.guidance.InpaintingDenoiser`); ``sampler="repaint"``
        runs RePaint (arXiv:2201.09865; options ``jump_length``, ``resample``)."""
        x_known, mask = self._check_known(x_known, mask)
        return self._generate(
            x_known.shape[0],
            cond=cond,
            generator=generator,
            sampler=sampler,
            steps=steps,
            guidance=guidance,
            sigmas=sigmas,
            compile=compile,
            cuda_graph=cuda_graph,
            options=options,
            known=(x_known, mask),
        )
