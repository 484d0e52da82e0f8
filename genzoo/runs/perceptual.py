"""The feature network of a perceptual loss (VQ-GAN's), built by the runs layer for training.

Models never open files, so the network comes from here: genzoo's own feature classifier of the
dataset (:func:`genzoo.metrics.get_classifier`, trained deterministically and cached), trained
with another seed (:data:`PERCEPTUAL_SEED`) than the classifier the metrics measure with, so that
a model is not trained on the very yardstick it is scored by. The perceptual distance reads the
last activation of each of its three stages, as LPIPS reads VGG's (arXiv:1801.03924).
"""

from __future__ import annotations

from torch import nn

from genzoo.core.errors import GenzooError
from genzoo.metrics.classifier import get_classifier
from genzoo.nn.perceptual import FeatureTaps

PERCEPTUAL_SEED = 1  # the metrics' classifier uses seed 0


def stage_ends(body: nn.Sequential) -> list[int]:
    """Indices of the ReLUs that end a stage (followed by a pooling layer, or the last layer)."""
    n = len(body)
    return [
        i
        for i, m in enumerate(body)
        if isinstance(m, nn.ReLU) and (i + 1 == n or isinstance(body[i + 1], nn.MaxPool2d))
    ]


def perceptual_network(data: str, *, root: str | None = None) -> FeatureTaps:
    """The frozen feature network of ``data`` for a perceptual loss (trained and cached on first
    use: seconds on digits)."""
    try:
        clf = get_classifier(data, config={"seed": PERCEPTUAL_SEED}, root=root)
    except GenzooError as e:
        raise GenzooError(
            f"The perceptual loss uses genzoo's feature classifier of {data!r}, which cannot be "
            f"built ({e}); set perceptual=0 to train without it."
        ) from None
    body = clf.net.body
    assert isinstance(body, nn.Sequential)
    return FeatureTaps(body, stage_ends(body))
