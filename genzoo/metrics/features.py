"""Feature extractors: the pluggable yardstick of the Fréchet distance, KID, IS, precision/recall.

An extractor maps a batch in model space (images in [-1, 1], ``(B, C, H, W)``; points ``(B, D)``)
to features ``(B, F)``. It has a ``name`` and a ``hash`` (of its weights), which every score
reports next to its value, so that two numbers are only compared when they were measured by the
same yardstick. Extractors with a classification head also give ``logits`` (for the IS).

- :class:`PixelFeatures`: the flattened input itself (points, or pixel-space nearest neighbours).
- :class:`InceptionFeatures`: the standard FID network (the TensorFlow Inception-v3 of Heusel et
  al. 2017, arXiv:1706.08500, as ported by torch-fidelity / torchmetrics), pool3 features (2048)
  and logits, from weights on local disk only: genzoo never downloads them.
- :class:`genzoo.metrics.classifier.FeatureClassifier`: a small CNN genzoo trains on the dataset.
- :class:`EmbedFeatures`: the frozen representation of a self-supervised model (``embed(x)``), a
  label-free yardstick; ``genzoo.runs.yardstick`` loads one from a run (``features=ssl:RUN``).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from genzoo.core.errors import GenzooError
from genzoo.core.io import load_tensors
from genzoo.core.protocol import Embeds, GenerativeModel

INCEPTION_ENV = "GENZOO_INCEPTION_WEIGHTS"
INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)


@runtime_checkable
class FeatureExtractor(Protocol):
    """What the evaluation needs of a yardstick."""

    name: str  # e.g. "inception-v3-compat" or "genzoo-cnn:digits"
    hash: str  # hex digest that identifies the weights (or the definition, if it has none)

    def features(self, x: Tensor) -> Tensor:
        """Features (B, F) of a model-space batch."""
        ...


def has_logits(extractor: object) -> bool:
    """Whether ``extractor`` also classifies (has a ``logits(x) -> (B, K)`` method)."""
    return callable(getattr(extractor, "logits", None))


def extract(fn: Callable[[Tensor], Tensor], x: Tensor, batch_size: int = 500) -> Tensor:
    """Apply ``fn`` (features or logits) to ``x`` in batches; float32 on ``x``'s device."""
    outs = [fn(x[s : s + batch_size]).float() for s in range(0, x.shape[0], batch_size)]
    return torch.cat(outs).to(x.device)


def file_hash(path: str | Path) -> str:
    """SHA-256 hex digest of a file (first 16 hex characters)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


class PixelFeatures:
    """The identity yardstick: each example flattened to a vector (B, D)."""

    name = "pixels"
    hash = "identity"

    def features(self, x: Tensor) -> Tensor:
        return x.detach().reshape(x.shape[0], -1).float()  # (B, D)


def _inception_missing(where: str) -> GenzooError:
    return GenzooError(
        f"Inception weights not found ({where}); genzoo never downloads them: fetch "
        f'{INCEPTION_URL}, convert it once to safetensors with `python -c "import torch; '
        "from safetensors.torch import save_file; save_file(torch.load('weights-inception-"
        "2015-12-05-6726825d.pth', weights_only=True), 'inception.safetensors')\"` and set "
        f"{INCEPTION_ENV}=/path/to/inception.safetensors (or pass weights=...)."
    )


class InceptionFeatures:
    """The FID Inception-v3 (pool3 features 2048-D, 1008 logits), from a local safetensors file.

    The weights are torch-fidelity's port of the TensorFlow FID network (see
    :data:`INCEPTION_URL`), converted once to safetensors; the path comes from ``weights`` or the
    environment variable ``GENZOO_INCEPTION_WEIGHTS``. The network itself is torchmetrics'
    ``NoTrainInceptionV3`` and needs ``pip install torch-fidelity``. Inputs are model-space images
    in [-1, 1] with 1 or 3 channels (1 is repeated to RGB); they are quantized to 0..255 and
    resized to 299 x 299 inside the network, as the reference FID code does. Scores computed with
    it are comparable with the literature only for the same number of samples and reference set.
    """

    name = "inception-v3-compat"

    def __init__(self, weights: str | Path | None = None, device: str | torch.device = "cpu"):
        path = weights if weights is not None else os.environ.get(INCEPTION_ENV)
        if not path:
            raise _inception_missing(f"no path given and ${INCEPTION_ENV} is not set")
        path = Path(path).expanduser()
        if not path.is_file():
            raise _inception_missing(f"{str(path)!r} does not exist")
        tensors = load_tensors(path)  # safetensors only; pickles are refused, never unpickled
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3
            from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE
        except ImportError:  # pragma: no cover - torchmetrics is a dependency
            _TORCH_FIDELITY_AVAILABLE = False
        if not _TORCH_FIDELITY_AVAILABLE:
            raise GenzooError(
                "InceptionFeatures needs the torch-fidelity package for the network definition; "
                "install it with `pip install torch-fidelity`."
            )
        # torch-fidelity reads its weights with torch.load; hand it the tensors we loaded from
        # safetensors, serialized in memory (plain tensors, read back with weights_only=True).
        buf = io.BytesIO()
        torch.save(dict(tensors), buf)
        buf.seek(0)
        self.net = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=["2048", "logits_unbiased"],
            feature_extractor_weights_path=buf,  # type: ignore[arg-type]
            antialias=False,  # TF1-style bilinear resize, as the reference FID code
        ).to(device)
        self.device = torch.device(device)
        self.hash = file_hash(path)

    def _uint8_rgb(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise GenzooError(
                f"InceptionFeatures needs images (B, 1 or 3, H, W), got shape {tuple(x.shape)}."
            )
        k = ((x.detach().float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)  # 0..255
        if k.shape[1] == 1:
            k = k.expand(-1, 3, -1, -1)  # (B, 3, H, W)
        return k.to(self.device)

    @torch.no_grad()
    def _both(self, x: Tensor) -> tuple[Tensor, Tensor]:
        # forward() keeps only the first feature; this is the method it calls for all of them
        feats, logits = self.net._torch_fidelity_forward(self._uint8_rgb(x))
        return feats, logits

    def features(self, x: Tensor) -> Tensor:
        """Pool3 features (B, 2048)."""
        return self._both(x)[0]

    def logits(self, x: Tensor) -> Tensor:
        """Logits without bias (B, 1008), the ones the reference Inception Score uses."""
        return self._both(x)[1]


def weights_hash(module: torch.nn.Module) -> str:
    """SHA-256 (first 16 hex characters) of a module's parameters and buffers, names included."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


class EmbedFeatures:
    """A label-free yardstick: the frozen features ``embed(x)`` ``(B, d)`` of a model with a
    representation (:class:`~genzoo.core.protocol.Embeds`: SimCLR, MoCo, BYOL, DINO).

    It needs no labels, so it measures data that has none, and it was not trained to tell the
    classes apart, so its Fréchet distance weighs what the augmentations keep (see docs/ssl.md,
    "A label-free yardstick"). Inputs are model-space batches of the shape the model was trained
    on; ``name`` is ``ssl:<model>:<data>``, ``hash`` the hash of its weights. It has no logits, so
    scores measured with it have no IS and no share of recognised samples.
    """

    def __init__(self, model: GenerativeModel, label: str | None = None) -> None:
        if not isinstance(model, Embeds):
            raise GenzooError(
                f"Model {model.name!r} has no representation to measure samples with; give "
                "features=ssl:RUN a self-supervised run (simclr, moco, byol, dino), or use "
                "features=classifier or features=pixels."
            )
        self.model = model.eval()
        self.info = model.info
        self.name = f"ssl:{model.name}:{model.info.name}" if label is None else label
        self.hash = weights_hash(model)

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """Backbone features ``(B, d)`` of a model-space batch of the model's data shape."""
        if tuple(x.shape[1:]) != tuple(self.info.shape):
            raise GenzooError(
                f"Features {self.name!r} take data of shape {tuple(self.info.shape)} (the data "
                f"it was trained on, {self.info.name!r}), got {tuple(x.shape[1:])}; train a "
                "self-supervised run on this dataset to measure it."
            )
        assert isinstance(self.model, Embeds)
        return self.model.embed(x.detach().float().to(self.model.device)).float()  # (B, d)
