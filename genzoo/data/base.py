"""Dataset descriptions and the one pixel convention.

Images are stored as integer levels ``k in {0, ..., L-1}`` (L = 256; ``digits`` has L = 17).
Models see ``x in [-1, 1]``:

- bin centres ``x = 2 (k + 1/2) / L - 1`` for models without a likelihood;
- uniform dequantization ``x = 2 (k + u) / L - 1``, ``u ~ U(0, 1)`` for likelihood models;
- back to levels with ``k = floor((x + 1) L / 2)``, clamped.

Bits per dimension use the same convention (see :func:`genzoo.metrics.bits_per_dim`).
Points (toy 2-D data) are float tensors used as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from genzoo.core.seeding import rand


@dataclass(frozen=True)
class DataInfo:
    """What a dataset declares about itself; stored in every run so it can be reloaded offline."""

    name: str  # the dataset spec, e.g. "digits" or "toy2d:moons"
    kind: Literal["points", "images", "text", "audio", "video"]  # points: (N, D) floats; images:
    # (N, C, H, W) integer levels; text: (N, T) token ids (levels = vocabulary size); audio:
    # (N, T) mono waveforms, floats in [-1, 1], at sample_rate; video: (N, T, C, H, W) levels
    shape: tuple[int, ...]  # shape of one example: (D,), (C, H, W) or (T, C, H, W)
    levels: int | None = None  # intensity levels L of images (256; 17 for digits); None: points
    # or float images (the mel: views of audio)
    n_classes: int = 0  # number of class labels (0: unlabelled)
    value_range: tuple[float, float] = (-1.0, 1.0)  # range of the values models see
    class_names: tuple[str, ...] = field(default_factory=tuple)  # one name per class
    sample_rate: int = 0  # audio: samples per second (0: not audio)

    @property
    def dim(self) -> int:
        """Number of dimensions D of one example."""
        n = 1
        for s in self.shape:
            n *= s
        return n

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "shape": list(self.shape),
            "levels": self.levels,
            "n_classes": self.n_classes,
            "value_range": list(self.value_range),
            "class_names": list(self.class_names),
            **({"sample_rate": self.sample_rate} if self.sample_rate else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataInfo:
        return cls(
            name=str(d["name"]),
            kind=d["kind"],
            shape=tuple(int(s) for s in d["shape"]),
            levels=None if d.get("levels") is None else int(d["levels"]),
            n_classes=int(d.get("n_classes", 0)),
            value_range=tuple(float(v) for v in d.get("value_range", (-1.0, 1.0))),  # type: ignore[arg-type]
            class_names=tuple(d.get("class_names", ())),
            sample_rate=int(d.get("sample_rate", 0)),
        )


def _wide(device: torch.device) -> torch.dtype:
    """float64 for exact bin arithmetic, except on Apple MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def levels_to_model(
    k: Tensor, levels: int, *, dequantize: bool = False, generator: torch.Generator | None = None
) -> Tensor:
    """Integer levels -> model space [-1, 1]: bin centres, or uniformly dequantized.

    Dequantized values are computed in float64 and rounded to float32 strictly inside their bin
    ``[2k/L - 1, 2(k+1)/L - 1)``, so :func:`model_to_levels` gives ``k`` back and ``x < 1``.
    """
    if not dequantize:
        return 2.0 * (k.float() + 0.5) / levels - 1.0
    kw = k.to(_wide(k.device))
    u = rand(k.shape, generator=generator, device=k.device).to(kw.dtype)
    x = (2.0 * (kw + u) / levels - 1.0).float()
    # rounding to float32 can land on the next bin's edge: step one float back inside the bin
    got = torch.floor((x.to(kw.dtype) + 1.0) * levels / 2.0)
    x = torch.where(got > kw, torch.nextafter(x, torch.full_like(x, -2.0)), x)
    x = torch.where(got < kw, torch.nextafter(x, torch.full_like(x, 2.0)), x)
    return x


def model_to_levels(x: Tensor, levels: int) -> Tensor:
    """Model space [-1, 1] -> integer levels (``torch.long``), clamped to ``[0, L-1]``."""
    xw = x.to(_wide(x.device))
    return torch.floor((xw + 1.0) * levels / 2.0).clamp(0, levels - 1).long()


def model_to_unit(x: Tensor, levels: int | None) -> Tensor:
    """Model space -> [0, 1] floats for display (bin centre of the quantized value)."""
    if levels is None:
        return ((x + 1) / 2).clamp(0, 1)
    return (model_to_levels(x, levels).float() + 0.5) / levels


class Dataset:
    """A split of a dataset with random access by index tensors.

    ``x`` holds the stored values (integer levels for images, floats for points, token ids for
    text); ``y`` the labels or ``None``. Lazily loaded datasets (image folders) override
    :meth:`get_raw`; datasets whose batches carry more than ``x`` and ``y`` (sources, captions,
    questions) override :meth:`extra`.
    """

    def __init__(self, info: DataInfo, x: Tensor | None, y: Tensor | None = None) -> None:
        self.info = info
        self.x = x
        self.y = y

    def __len__(self) -> int:
        assert self.x is not None
        return int(self.x.shape[0])

    def get_raw(self, idx: Tensor) -> tuple[Tensor, Tensor | None]:
        """Stored values and labels of the examples ``idx`` (a 1-D long tensor)."""
        assert self.x is not None
        return self.x[idx], (self.y[idx] if self.y is not None else None)

    def get(
        self,
        idx: Tensor,
        *,
        dequantize: bool = False,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """A batch in model space: ``{"x": (B, ...) float, "y": (B,) long}`` ("y" if labelled;
        text: ``x`` holds the token ids, long, never dequantized), and the :meth:`extra` keys."""
        x, y = self.get_raw(idx)
        if self.info.kind in ("images", "video") and self.info.levels is not None:
            x = levels_to_model(x, self.info.levels, dequantize=dequantize, generator=generator)
        elif self.info.kind == "text":
            x = x.long()
        else:
            x = x.float()
        batch = {"x": x}
        if y is not None:
            batch["y"] = y.long()
        batch.update(self.extra(idx, dequantize=dequantize, generator=generator))
        return batch

    def extra(
        self, idx: Tensor, *, dequantize: bool = False, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """More keys of the batch ``idx`` (drawn after ``x``, with the same ``generator``)."""
        return {}

    def all(self, **kw: Any) -> dict[str, Tensor]:
        """The whole split as one batch (for small in-memory datasets)."""
        return self.get(torch.arange(len(self)), **kw)
