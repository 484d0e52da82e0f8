"""The contract between genzoo's models and the code that uses them (docs/architecture.md).

Every model is a :class:`GenerativeModel`: it has ``loss``, ``param_groups`` (with
``group_settings``) and ``eval_metrics``, and nothing else is assumed. What only some models can
do is a *capability*: a small mixin class that the model inherits and that consumers test with
``isinstance`` — never by probing for attributes.

========================  ===========================================================  =========
capability                what it promises                                             e.g.
========================  ===========================================================  =========
:class:`Samples`          ``sample(n, *, cond, generator, **options)`` -> data in the   ddpm, vae
                          dataset's model range; ``preview_options`` for fast grids
:class:`ExactLikelihood`  ``log_prob(x, cond)`` in nats per example; ``bpd_levels``     flows
:class:`LikelihoodBound`  a bound on log p reported by ``eval_metrics``; ``bpd_levels``   vae, ddpm
:class:`LatentSpace`      ``encode_latent`` / ``decode_latent``; ``latent_prior``        vae, pca
:class:`PromptConditioned` ``encode_prompts(prompts)`` and ``sample(n, prompts=...)``    t2i-*
:class:`ClosedForm`       ``fit_data(batches)`` once on the whole training set          pca, ppca
:class:`Translates`       ``translate(x, reverse=False)`` between two image domains     pix2pix
:class:`BuiltOnRuns`      ``sub_runs``: trained runs the runs layer loads and passes     ldm
                          to the constructor (no model reads a run directory)
:class:`Embeds`           ``embed(x)``: a representation ``(B, d)`` to probe or search   simclr
:class:`Vocodes`          ``mel(x)`` log-mel of waveforms, ``vocode(mel)`` back         hifigan
========================  ===========================================================  =========
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from genzoo.core.config import Config
from genzoo.core.errors import ConfigError, choices
from genzoo.core.options import count

Batch = dict[str, Tensor]
"""A batch: ``{"x": (B, ...) float in the dataset's model range, "y": (B,) labels, ...}``;
captioned or question data add their own keys (``"tokens"``, ``"question"``, ...)."""


@dataclass
class LossOutput:
    """What ``model.loss`` returns: the scalar to minimise and floats to log."""

    loss: Tensor
    logs: dict[str, Tensor | float] = field(default_factory=dict)


class GenerativeModel(nn.Module):
    """Base class of every genzoo model: ``loss``, ``param_groups`` and ``eval_metrics``.

    Subclasses set ``config_class`` and ``family`` (``name`` is set by ``register_model``) and
    implement :meth:`loss`; what else they can do they declare by inheriting capabilities.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    config_class: ClassVar[type[Config]] = Config
    dequantize: ClassVar[bool] = False
    """Whether the Trainer feeds uniformly dequantized images (density models) or bin centres."""
    default_train: ClassVar[dict[str, Any]] = {}
    """Trainer settings this model prefers (e.g. its learning rate); user overrides win."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every model's own ``loss``, ``eval_metrics``, ``log_prob``, ``encode_latent`` and
        (for :class:`Embeds`) ``embed`` check the images they are given against the data's
        shape first (:func:`check_images`): ``model.log_prob(x)`` with 3 x 3 or RGB images of
        an 8 x 8 grey model is one sentence, not a shape error from the first layer that meets
        them."""
        super().__init_subclass__(**kwargs)
        for name, finite in _IMAGE_METHODS.items():
            own = cls.__dict__.get(name)
            if name == "embed" and not issubclass(cls, Embeds):
                continue  # another method of that name (a multimodal encoder's embed(x, tokens))
            if own is not None and not getattr(own, "checks_images", False):
                setattr(cls, name, _checking_images(own, name, finite))

    def __init__(self, config: Config, info: Any) -> None:
        super().__init__()
        self.config = config
        self.info = info

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters per optimizer; one group called ``main`` unless the model says otherwise."""
        return {"main": [p for p in self.parameters() if p.requires_grad]}

    def group_settings(self) -> dict[str, dict[str, Any]]:
        """Per-group optimizer settings that override the trainer's, e.g. for a GAN
        ``{"d": {"lr": 4e-4, "betas": (0.0, 0.9), "repeats": 5}, "g": {"lr": 1e-4}}``.

        ``repeats`` is how many optimizer steps the group takes per training step (``n_critic``),
        each on a fresh batch; groups step in the order of :meth:`param_groups`.
        """
        return {}

    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per-example evaluation numbers ``(B,)`` on a test batch (nats unless the key says
        otherwise). The default is the training loss; likelihood models add their bounds here.
        """
        out = self.loss(batch)
        return {"loss": out.loss.detach().expand(batch["x"].shape[0])}

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")


_IMAGE_METHODS = {
    "loss": False,
    "eval_metrics": False,
    "log_prob": True,
    "encode_latent": True,
    "embed": True,
}
"""Methods whose images are checked, and whether for finite values too (not in ``loss`` and
``eval_metrics``: the Trainer's NaN policy covers training, and a check would cost a device
synchronisation every step)."""


def check_images(model: GenerativeModel, x: Any, what: str = "x", finite: bool = False) -> None:
    """For a model of images: ``x`` must be a tensor ``(B, *info.shape)`` (and, with
    ``finite``, hold no NaN or infinite values); one sentence naming its shape otherwise."""
    info = model.info
    if info.kind != "images":
        return
    shape = tuple(int(s) for s in info.shape)
    if not isinstance(x, Tensor) or tuple(x.shape[1:]) != shape or x.ndim != len(shape) + 1:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        dims = ", ".join(map(str, shape))
        raise ConfigError(
            f"Model {model.name!r} takes images (B, {dims}) of {info.name!r}; {what} has shape "
            f"{got}."
        )
    if finite and x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise ConfigError(f"{what} holds NaN or infinite values; give images in the data's range.")


def _checking_images(method: Callable[..., Any], name: str, finite: bool) -> Callable[..., Any]:
    """``method`` with its images (``batch["x"]`` of a batch, else its first argument) checked
    first."""

    @functools.wraps(method)
    def checked(self: Any, first: Any, *args: Any, **kwargs: Any) -> Any:
        if name in ("loss", "eval_metrics"):
            if isinstance(first, dict) and "x" in first:
                check_images(self, first["x"], 'batch["x"]')
        else:
            check_images(self, first, "x", finite)
        return method(self, first, *args, **kwargs)

    checked.checks_images = True  # type: ignore[attr-defined]
    return checked


# --- capabilities ---------------------------------------------------------------------------


def _checking_n(sample: Callable[..., Any]) -> Callable[..., Any]:
    """``sample`` with its ``n`` checked first (:func:`~genzoo.core.options.count`) and, where
    its signature names every option it takes (no ``**options``), an unknown option refused in
    one sentence listing the valid ones (Python's own ``TypeError`` names no choices)."""
    params = inspect.signature(sample).parameters
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = [k for k in params if k not in ("self", "n")]
    shown = [k for k in named if k not in ("cond", "generator")]  # every model takes these two

    @functools.wraps(sample)
    def checked(self: Any, n: Any, *args: Any, **kwargs: Any) -> Any:
        unknown = [] if open_ended else [k for k in kwargs if k not in named]
        if unknown:
            valid = f"valid options are {choices(shown)}" if shown else "it takes none"
            raise ConfigError(f"Unknown sampling option {unknown[0]!r} for {self.name!r}; {valid}.")
        n = count(n)
        _check_labels(self, n, kwargs.get("cond"))
        return sample(self, n, *args, **kwargs)

    checked.checks_n = True  # type: ignore[attr-defined]
    return checked


def _check_labels(model: GenerativeModel, n: int, cond: Any) -> None:
    """Class labels given as ``cond`` (a 1-D integer tensor, for data with classes): one per
    sample, each a class of the data; one sentence otherwise (it was an ``IndexError`` from an
    embedding, or a reshape error)."""
    info = model.info
    if not isinstance(cond, Tensor) or cond.ndim != 1 or cond.is_floating_point():
        return  # not labels: captions, images or prompts are the model's own to check
    if info.n_classes < 1:
        return
    want = f"cond must hold {n} class labels in 0..{info.n_classes - 1}"
    if len(cond) != n:
        raise ConfigError(f"{want}, one per sample; it holds {len(cond)}.")
    if len(cond) and not 0 <= int(cond.min()) <= int(cond.max()) < info.n_classes:
        bad = int(cond.min()) if int(cond.min()) < 0 else int(cond.max())
        raise ConfigError(f"{want} (the classes of {info.name!r}); it holds {bad}.")


class Samples:
    """The model draws samples of the data."""

    preview_options: ClassVar[dict[str, Any]] = {}
    """Options of :meth:`sample` for quick grids (the Trainer's, the end of a time budget): a
    few-step sampler where the model's default is slow (DDPM's 1,000 ancestral steps)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every model's own ``sample`` checks ``n`` in one place: ``model.sample(-1)``,
        ``sample(2.5)`` or ``sample("3")`` is one sentence naming the value, not a tensor-shape
        error from inside the model."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("sample")
        if own is not None and not getattr(own, "checks_n", False):
            cls.sample = _checking_n(own)  # type: ignore[method-assign]

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:  # pragma: no cover - abstract
        """``n`` samples ``(n, *shape)`` in the dataset's model range ([-1, 1] for images, token
        ids for text); ``cond`` are class labels ``(n,)`` where the model is conditional."""
        raise NotImplementedError


class _Likelihood:
    @property
    def bpd_levels(self) -> int | None:
        """The number of pixel levels L for bits/dim (``metrics.bits_per_dim``): ``info.levels``
        for a density on [-1, 1]^D of dequantized data, ``None`` for a discrete likelihood of
        the levels themselves (PixelCNN, GPT over pixels; no change of variables)."""
        return self.info.levels  # type: ignore[attr-defined]


class ExactLikelihood(_Likelihood):
    """``log_prob(x, cond)`` is the exact log-likelihood in nats per example, and ``eval_metrics``
    reports it as ``"log_prob"``."""

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError


class LikelihoodBound(_Likelihood):
    """``eval_metrics`` reports a lower bound on ``log p(x)`` (``"elbo"``, ``"iwae<k>"``,
    ``"vlb"``) in nats per example."""


class LatentSpace:
    """``encode_latent`` / ``decode_latent``: a deterministic code of the data and back."""

    latent_prior: ClassVar[Literal["gaussian", "euclidean"]] = "euclidean"
    """"gaussian": codes have a N(0, I) prior (interpolate along great circles); "euclidean":
    interpolate along straight lines."""

    def encode_latent(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """``(B, *shape) -> (B, *latent_shape)``."""
        raise NotImplementedError

    def decode_latent(self, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Latent codes -> data in model space; ``decode_latent(encode_latent(x))`` is the
        model's reconstruction of ``x``."""
        raise NotImplementedError


class PromptConditioned:
    """Conditioned on text: ``encode_prompts`` and ``sample(n, prompts=[...], guidance=w)``."""

    def encode_prompts(self, prompts: Sequence[str]) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class ClosedForm:
    """Fitted in closed form: the Trainer calls :meth:`fit_data` once, before the first step."""

    def fit_data(self, batches: Iterable[Tensor]) -> None:  # pragma: no cover - abstract
        """Fit from ``batches`` of training data ``(B, *shape)`` in model space, which together
        hold the whole training set once."""
        raise NotImplementedError


class Translates:
    """Maps images of one domain to another (pix2pix, CycleGAN)."""

    def translate(self, x: Tensor, *, reverse: bool = False) -> Tensor:  # pragma: no cover
        raise NotImplementedError


class Vocodes:
    """A vocoder: ``mel(x)`` turns waveforms ``(B, T)`` into the log-mel spectrograms
    ``(B, M, frames)`` it takes, ``vocode(mel)`` turns them back into waveforms (HiFi-GAN)."""

    def mel(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def vocode(self, mel: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class Embeds:
    """Maps data to a representation: ``embed(x)`` ``(B, *shape) -> (B, d)`` features, frozen
    for linear probes, k-NN and retrieval (the self-supervised models; ``genzoo embed``)."""

    def embed(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class SubRun:
    """A trained run that a model is built on: the runs layer reads the run directory from the
    config field ``run_field`` (EMA weights when ``ema_field`` says so), loads its model and
    passes it to the constructor as the keyword ``arg``. ``needs``: the model classes (or
    capability mixins) the sub-run's model must be an instance of; the runs layer checks it on the
    run's registered class before training (``genzoo train ldm --base RUN``), one sentence if not.
    """

    arg: str
    run_field: str
    ema_field: str | None = None
    needs: tuple[type, ...] = ()


class BuiltOnRuns:
    """Built on other trained models (an LDM's autoencoder, a prior's VQ-VAE, a CLIP text
    encoder): ``sub_runs`` names them; constructors take the loaded models as keywords, never a
    path. The runs layer calls :meth:`load_parts` and passes what it returns to the constructor.
    """

    sub_runs: ClassVar[tuple[SubRun, ...]] = ()

    @classmethod
    def load_parts(
        cls, config: Config, load_run: Callable[[str, bool], nn.Module]
    ) -> dict[str, nn.Module]:
        """The constructor's keywords that come from outside the model: each :class:`SubRun`
        whose run field is set, loaded with ``load_run(run_dir, ema)``. Override to add parts
        that are not runs (a frozen pretrained encoder shipped in a package)."""
        parts: dict[str, nn.Module] = {}
        for sub in cls.sub_runs:
            run = getattr(config, sub.run_field)
            if run:
                ema = bool(getattr(config, sub.ema_field)) if sub.ema_field else True
                parts[sub.arg] = load_run(str(run), ema)
        return parts


def likelihood_kind(model: object) -> Literal["exact", "bound", "none"]:
    """``"exact"``, ``"bound"`` or ``"none"`` for a model or a model class."""
    cls = model if isinstance(model, type) else type(model)
    if issubclass(cls, ExactLikelihood):
        return "exact"
    if issubclass(cls, LikelihoodBound):
        return "bound"
    return "none"
