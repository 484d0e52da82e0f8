"""Control maps for ControlNet (arXiv:2302.05543): a dataset with an image-shaped condition.

The spec ``control:<kind>:<dataset>`` is ``<dataset>`` with one more batch key, ``control``
``(B, 1, H, W)`` float in {0, 1}, computed exactly (nothing is learned or estimated):

- ``mask`` (``shapes`` only): the object mask the renderer knows, 1 where a pixel centre lies
  inside an object (:func:`genzoo.data.shapes.object_masks`);
- ``edges`` (any image dataset; meant for ``digits`` and ``mnist5k``): the Sobel gradient
  magnitude of the grey image in [0, 1] (divided by 4: a unit step gives 1), thresholded at
  :data:`EDGE_THRESHOLD`
  (:func:`edge_map`, SciPy's Sobel filter).

e.g. ``control:mask:shapes?size=16`` or ``control:edges:digits``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

from genzoo.core.errors import DataError
from genzoo.data.base import DataInfo, Dataset, levels_to_model
from genzoo.data.shapes import ShapesDataset, object_masks

CONTROLS = ("mask", "edges")
EDGE_THRESHOLD = 0.5  # |Sobel gradient| of [0, 1] grey images above which a pixel is an edge


def parse_control_spec(spec: str) -> tuple[str, str]:
    """``control:<kind>:<dataset>`` -> ``(kind, dataset)``; a bad spec is one sentence."""
    _, kind, base = [*spec.split(":", 2), "", ""][:3]
    if kind not in CONTROLS or not base:
        raise DataError(
            f"Bad control dataset {spec!r}; write control:<kind>:<dataset> with kind 'mask' "
            "(shapes) or 'edges' (any image dataset), e.g. 'control:mask:shapes?size=16'."
        )
    if kind == "mask" and not (base == "shapes" or base.startswith("shapes?")):
        raise DataError(
            f"Control 'mask' needs the shapes dataset (its renderer knows the masks), not "
            f"{base!r}; use 'edges' for other image datasets."
        )
    return kind, base


def edge_map(x: Tensor) -> Tensor:
    """Edges of images ``(B, C, H, W)`` in model space [-1, 1] -> ``(B, 1, H, W)`` {0, 1}: the
    Sobel gradient magnitude of the grey image in [0, 1] (SciPy, edges mirrored) above
    :data:`EDGE_THRESHOLD`."""
    grey = ((x.detach().float().cpu().mean(1) + 1) / 2).numpy().astype(np.float64)  # (B, H, W)
    mag = np.empty_like(grey)
    for i, img in enumerate(grey):  # one image at a time: Sobel smooths across every other axis
        gx = ndimage.sobel(img, axis=1, mode="reflect")
        gy = ndimage.sobel(img, axis=0, mode="reflect")
        mag[i] = np.hypot(gx, gy) / 4  # a unit step between neighbours gives 4 (weights 1, 2, 1)
    return torch.from_numpy(mag > EDGE_THRESHOLD).float()[:, None].to(x.device)  # (B, 1, H, W)


def control_maps(data: Dataset, kind: str) -> Tensor:
    """The control map of every example of ``data``: ``(N, 1, H, W)`` in {0, 1}."""
    if kind == "mask":
        if not isinstance(data, ShapesDataset):
            raise DataError(f"Control 'mask' needs the shapes dataset, not {data.info.name!r}.")
        return object_masks(data.scenes, data.info.shape[-1])
    if data.info.kind != "images" or data.x is None:
        raise DataError(f"Control 'edges' needs images; {data.info.name!r} holds {data.info.kind}.")
    assert data.info.levels is not None
    return torch.cat(
        [
            edge_map(levels_to_model(data.x[i : i + 4096], data.info.levels))
            for i in range(0, len(data), 4096)
        ]
    )


class ControlDataset(Dataset):
    """``base`` with the batch key ``control`` ``(B, 1, H, W)`` (see the module docstring)."""

    def __init__(self, spec: str, base: Dataset, kind: str) -> None:
        super().__init__(control_info(spec, base.info), base.x, base.y)
        self.base = base
        self.kind = kind
        self.control = control_maps(base, kind)

    def get_raw(self, idx: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.base.get_raw(idx)

    def extra(
        self, idx: Tensor, *, dequantize: bool = False, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        out = self.base.extra(idx, dequantize=dequantize, generator=generator)
        out["control"] = self.control[idx.cpu()].to(idx.device)
        return out


def control_info(spec: str, base: DataInfo) -> DataInfo:
    """The base dataset's :class:`DataInfo` under the control spec's name."""
    if base.kind != "images":
        raise DataError(f"Control maps need images; {base.name!r} holds {base.kind}.")
    return dataclasses.replace(base, name=spec)
