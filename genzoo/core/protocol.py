"""The protocol every genzoo model follows (see docs/design in the README).

- ``loss(batch) -> LossOutput``: a scalar loss and a dict of floats to log. ``forward`` stays the
  network's natural mapping.
- Models with several optimizers expose ``param_groups()`` with more than one entry and take the
  group name in ``loss(batch, group)``; the one Trainer loops over the groups.
- ``sample(n, *, cond=None, generator=None, **options)`` returns samples in the dataset's range.
- ``log_prob(x)`` only where exact; bounds have their own names (``elbo``, ``iwae``, ``vlb``).
- ``encode_latent`` / ``decode_latent`` where there is a latent space (``latent_prior`` says which
  kind); ``fit_data`` where the model is fitted in closed form (``closed_form``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genzoo.core.config import Config
from genzoo.core.errors import GenzooError

Batch = dict[str, Tensor]
"""A training batch: ``{"x": (B, ...) float in the dataset's model range, "y": (B,) labels}``."""


@dataclass
class LossOutput:
    """What ``model.loss`` returns: the scalar to minimise and floats to log."""

    loss: Tensor
    logs: dict[str, Tensor | float] = field(default_factory=dict)


class GenerativeModel(nn.Module):
    """Base class of every genzoo model.

    Subclasses set ``name`` (registry key), ``config_class``, ``family`` and ``likelihood``
    ("exact", "bound" or "none"), and implement :meth:`loss` and :meth:`sample`.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    likelihood: ClassVar[str] = "none"
    config_class: ClassVar[type[Config]] = Config
    dequantize: ClassVar[bool] = False
    """Whether the trainer feeds uniformly dequantized images (likelihood models) or bin centres."""
    default_train: ClassVar[dict[str, Any]] = {}
    """Trainer settings this model prefers (e.g. its learning rate); user overrides win."""
    draws_samples: ClassVar[bool] = True
    """False for models that map data to embeddings, text or answers (CLIP, captioning, VQA):
    the Trainer then draws no sample grids."""
    closed_form: ClassVar[bool] = False
    """Whether the model is fitted in closed form (PCA, PPCA): the Trainer then calls
    :meth:`fit_data` once, on the whole training set, before the first step."""
    latent_prior: ClassVar[str] = "none"
    """The latent space of :meth:`encode_latent`: "gaussian" (a N(0, I) prior: interpolate along
    great circles), "euclidean" (interpolate along straight lines) or "none" (no latent space)."""

    def __init__(self, config: Config, info: Any) -> None:
        super().__init__()
        self.config = config
        self.info = info

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit_data(self, batches: Iterable[Tensor]) -> None:
        """Closed-form fit from ``batches`` of training data ``(B, *shape)`` in model space, which
        together hold the whole training set once (only where ``closed_form``)."""
        raise GenzooError(f"Model {self.name!r} is trained by gradient steps, not in closed form.")

    def encode_latent(self, x: Tensor) -> Tensor:
        """A deterministic latent code of ``x``: ``(B, *shape) -> (B, *latent_shape)``."""
        raise GenzooError(f"Model {self.name!r} has no latent space.")

    def decode_latent(self, z: Tensor) -> Tensor:
        """Latent codes -> data in model space; ``decode_latent(encode_latent(x))`` is the
        model's reconstruction of ``x``."""
        raise GenzooError(f"Model {self.name!r} has no latent space.")

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
        self, x: Tensor, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per-example evaluation numbers on a test batch (nats unless the key says otherwise).

        The default is the training loss; likelihood models add their bounds here.
        """
        out = self.loss({"x": x, **({"y": y} if y is not None else {})})
        return {"loss": out.loss.detach().expand(x.shape[0])}

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")
