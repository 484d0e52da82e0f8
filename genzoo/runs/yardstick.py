"""Which features measure samples: the one place where ``features=`` is read.

``features`` names the yardstick of the Fréchet distance and precision / recall of ``genzoo eval
--samples`` and ``genzoo compare``:

- ``classifier``: genzoo's classifier of the dataset (labelled images and audio; trained and
  cached on first use, :func:`genzoo.metrics.get_classifier`), the default where one exists;
- ``pixels``: the flattened data itself (the default for 2-D points);
- ``ssl:RUN``: the frozen backbone features of a trained self-supervised run (simclr, moco, byol,
  dino) on the same data shape: a label-free yardstick (:class:`~genzoo.metrics.features.
  EmbedFeatures`).

Loading a run is the runs layer's business, so the metrics never read a run directory.
"""

from __future__ import annotations

from pathlib import Path

from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Embeds
from genzoo.data.base import DataInfo
from genzoo.metrics import FeatureExtractor, PixelFeatures, get_classifier
from genzoo.metrics.features import EmbedFeatures
from genzoo.runs.load import open_run

FEATURES = ("classifier", "pixels", "ssl:RUN")
"""The yardsticks ``features=`` may name (``RUN``: a self-supervised run directory)."""


def ssl_features(run: str | Path, info: DataInfo | None = None) -> EmbedFeatures:
    """The frozen features of the self-supervised run ``run`` as a yardstick; ``info``: the data
    it will measure (its shape must be the one the run was trained on)."""
    loaded = open_run(run, device="auto")
    model = loaded.model
    if not isinstance(model, Embeds):
        raise ConfigError(
            f"features=ssl:{run} names a run of model {model.name!r}, which has no "
            "representation to measure samples with; name a self-supervised run (simclr, moco, "
            "byol, dino) or use features=classifier or features=pixels."
        )
    if info is not None and tuple(model.info.shape) != tuple(info.shape):
        raise ConfigError(
            f"features=ssl:{run} was trained on {model.info.name!r} of shape "
            f"{tuple(model.info.shape)} and cannot measure {info.name!r} of shape "
            f"{tuple(info.shape)}; train a self-supervised run on {info.name!r} "
            f"(e.g. `genzoo train simclr --data {info.name}`)."
        )
    return EmbedFeatures(model, label=f"ssl:{model.name}:{model.info.name}@step{loaded.step}")


def feature_extractor(
    features: str, data: str, info: DataInfo, *, root: str | None = None
) -> FeatureExtractor:
    """The yardstick that ``features`` names (see :data:`FEATURES`) for the dataset ``data``."""
    if features == "classifier":
        if info.n_classes < 2 or info.kind not in ("images", "audio"):
            raise ConfigError(
                f"features=classifier needs labelled images or audio, and {data!r} is "
                f"{'unlabelled ' if info.n_classes < 2 else ''}{info.kind}; use features=pixels"
                " or features=ssl:RUN (a self-supervised run on this data)."
            )
        return get_classifier(data, root=root)
    if features == "pixels":
        return PixelFeatures()
    if features.startswith("ssl:") and len(features) > 4:
        return ssl_features(features[4:], info)
    raise ConfigError(
        f"Unknown features {features!r}; choose classifier, pixels or ssl:RUN (RUN: the "
        "directory of a trained simclr, moco, byol or dino run on the same data)."
    )
