"""The baselines of the probe table: representations that were not learnt by a self-supervised
method, read with the same code as theirs (:func:`genzoo.runs.represent.features`' layout:
float32 ``(N, d)`` in the split's order, from bin-centred model-space inputs).

- :func:`pixel_features`: the flattened images;
- :func:`supervised_features`: the penultimate features of genzoo's classifier of the dataset
  (:func:`genzoo.metrics.get_classifier`, trained on all labels of the train split: the
  supervised encoder an SSL method is measured against);
- :func:`latent_features`: a trained VAE's posterior mean ``mu(x)`` (any
  :class:`~genzoo.core.protocol.LatentSpace` model's ``encode_latent``, flattened);
- :func:`clip_image_features`: the pooled image-encoder features of a trained CLIP run (before
  its projection into the joint space, as CLIP's own linear probes, arXiv:2103.00020 Sec. 3.2).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genzoo.core.errors import ConfigError
from genzoo.core.protocol import LatentSpace
from genzoo.data.base import Dataset
from genzoo.metrics import get_classifier
from genzoo.models.multimodal.clip import CLIP
from genzoo.runs.load import open_run


@torch.no_grad()
def _batched(fn: Callable[[Tensor], Tensor], data: Dataset, batch_size: int = 500) -> np.ndarray:
    out = []
    for i in range(0, len(data), batch_size):
        x = data.get(torch.arange(i, min(i + batch_size, len(data))))["x"]
        out.append(fn(x).float().reshape(x.shape[0], -1).cpu())  # (B, d)
    return torch.cat(out).numpy()


def _same_shape(run: str | Path, trained_on: tuple[int, ...], data: Dataset) -> None:
    if tuple(trained_on) != tuple(data.info.shape):
        raise ConfigError(
            f"Run {str(run)!r} was trained on data of shape {tuple(trained_on)} and cannot embed "
            f"{data.info.name!r} of shape {tuple(data.info.shape)}; train it on {data.info.name!r}."
        )


def pixel_features(data: Dataset) -> np.ndarray:
    """The flattened model-space images ``(N, C * H * W)``."""
    return _batched(lambda x: x, data)


def supervised_features(spec: str, data: Dataset, *, root: str | None = None) -> np.ndarray:
    """genzoo's classifier of ``spec`` (trained and cached on first use): its penultimate
    features ``(N, 4 * width)`` of ``data``."""
    with torch.enable_grad():  # training the classifier on first use needs gradients
        clf = get_classifier(spec, root=root)
    return _batched(clf.features, data)


def latent_features(run: str | Path, data: Dataset) -> np.ndarray:
    """The posterior mean ``mu(x)`` of a trained VAE run (any model with a latent space)."""
    model = open_run(run, device="cpu").model
    if not isinstance(model, LatentSpace):
        raise ConfigError(
            f"Run {str(run)!r} holds model {model.name!r}, which has no latent code to probe; "
            "give a vae (or another latent-space model: ae, vqvae, ...) run."
        )
    _same_shape(run, model.info.shape, data)
    return _batched(model.encode_latent, data)


def clip_image_features(run: str | Path, data: Dataset) -> np.ndarray:
    """The pooled features of a trained CLIP run's image encoder (before the projection)."""
    model = open_run(run, device="cpu").model
    if not isinstance(model, CLIP):
        raise ConfigError(
            f"Run {str(run)!r} holds model {model.name!r}, not a clip run; train one with "
            "`genzoo train clip --data shapes`."
        )
    _same_shape(run, model.info.shape, data)
    return _batched(lambda x: model.image_encoder(x).pooled, data)
