"""Data augmentation for self-supervised learning: random views of a batch, on its device.

The views are those of SimCLR (Chen et al., arXiv:2002.05709, App. A): a random resized crop
(area fraction ``U(scale)``, log aspect ratio ``U(log 3/4, log 4/3)``), a horizontal flip with
probability 1/2, colour jitter of strength ``s`` with probability 0.8 (brightness, contrast and
saturation factors ``U(1 - 0.8 s, 1 + 0.8 s)``, hue shift ``U(-0.2 s, 0.2 s)``) and random
greyscale with probability 0.2 — the distributions of ``torchvision.transforms.v2``'s
``RandomResizedCrop``, ``RandomHorizontalFlip``, ``ColorJitter`` and ``RandomGrayscale``.

Why not call those transforms on the batch: a v2 transform draws *one* set of parameters per
call, so on a ``(B, C, H, W)`` tensor every image would get the same crop and the same jitter,
while contrastive learning needs an independent view per image. So the parameters are drawn per
example here (with an optional ``torch.Generator``), and applied to the whole batch at once with
torchvision's kernels: :func:`torchvision.ops.roi_align` crops and resizes every image to its own
box (bilinear), :func:`torchvision.transforms.v2.functional.rgb_to_grayscale` gives the grey
images, and the jitter is the blend formulas of ``v2.functional.adjust_brightness`` /
``adjust_contrast`` / ``adjust_saturation`` with a factor per example (their parity with
torchvision, image by image, is tested). The hue shift is a rotation of the chroma plane in YIQ
space (linear, so it batches; torchvision's goes through HSV one factor at a time).
torchvision is imported when a view is first drawn, not with :mod:`genzoo.models` (it takes
seconds to import, and every command imports the models).

Which augmentations fit which data is decided once, in :func:`preset`: no flips for digits (a
mirrored 2 or 5 is not a digit), no colour jitter where colour is the label (``shapes``: its
classes and attributes name colours), and colour jitter on grey images is an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from genzoo.core.errors import ConfigError
from genzoo.core.seeding import rand
from genzoo.data.base import DataInfo


@dataclass(frozen=True)
class AugmentSpec:
    """One augmentation pipeline (SimCLR App. A)."""

    crop_scale: tuple[float, float] = (0.2, 1.0)  # area fraction of the random resized crop
    flip: bool = True  # horizontal flips with probability 1/2
    color_jitter: float = 0.0  # strength s of the colour jitter (0: none)
    jitter_p: float = 0.8  # probability of jittering an image
    grayscale_p: float = 0.0  # probability of turning an image grey (colour images only)
    darken: float = 0.0  # multiply each image by a factor U(1 - darken, 1): hue kept (0: off)
    why: str = ""  # the reason for this choice, shown in docs and `genzoo list`


DIGITS = AugmentSpec(
    crop_scale=(0.4, 1.0), flip=False, why="handwritten digits: crops, no flips, no colour"
)
PRESETS: dict[str, AugmentSpec] = {
    "digits": replace(DIGITS, crop_scale=(0.6, 1.0)),  # 8x8: a smaller crop leaves too little
    "mnist5k": DIGITS,
    "mnist": DIGITS,
    "fashion-mnist": AugmentSpec(
        crop_scale=(0.3, 1.0), flip=True, why="grey clothes: crops and flips, no colour"
    ),
    "shapes": AugmentSpec(
        crop_scale=(0.3, 1.0),
        flip=True,
        darken=0.5,
        why="colour is the label of shapes: crops, flips and a darkening that keeps every "
        "pixel's hue and saturation (so the exact RGB of an object, unique per image, is no "
        "shortcut); no colour jitter or greyscale",
    ),
}
NATURAL = AugmentSpec(
    crop_scale=(0.2, 1.0),
    flip=True,
    color_jitter=0.5,
    grayscale_p=0.2,
    why="natural colour images: SimCLR's crops, flips, colour jitter and greyscale",
)
GREY = AugmentSpec(crop_scale=(0.3, 1.0), flip=True, why="grey images: crops and flips")


def preset(
    info: DataInfo,
    *,
    crop_min: float | None = None,
    flip: bool | None = None,
    color_jitter: float | None = None,
    grayscale: float | None = None,
    darken: float | None = None,
) -> AugmentSpec:
    """The augmentations for the data ``info`` (:data:`PRESETS`, else by channels), with the
    given settings overriding the preset's. Colour jitter on grey images is a
    :class:`ConfigError`."""
    if info.kind != "images":
        raise ConfigError(
            f"Self-supervised models learn from image views; {info.name!r} holds {info.kind}, "
            "choose an image dataset (digits, mnist5k, shapes, ...)."
        )
    base = info.name.split("?")[0]
    channels = info.shape[0]
    spec = PRESETS.get(base, NATURAL if channels == 3 else GREY)
    if crop_min is not None:
        spec = replace(spec, crop_scale=(crop_min, 1.0), why=spec.why + f"; crop_min={crop_min}")
    if flip is not None:
        spec = replace(spec, flip=flip, why=spec.why + f"; flip={flip}")
    if color_jitter is not None:
        if color_jitter > 0 and channels != 3:
            raise ConfigError(
                f"color_jitter = {color_jitter} needs colour images, but {info.name!r} has "
                f"{channels} channel{'s' * (channels > 1)}; use color_jitter=0 (crops and flips "
                "still apply) or a colour dataset such as shapes or cifar10."
            )
        spec = replace(spec, color_jitter=color_jitter, why=spec.why + f"; jitter={color_jitter}")
    if grayscale is not None:
        if grayscale > 0 and channels != 3:
            raise ConfigError(
                f"grayscale = {grayscale} needs colour images, but {info.name!r} has {channels} "
                f"channel{'s' * (channels > 1)}; use grayscale=0 or a colour dataset such as "
                "shapes or cifar10."
            )
        spec = replace(spec, grayscale_p=grayscale, why=spec.why + f"; grayscale={grayscale}")
    if darken is not None:
        spec = replace(spec, darken=darken, why=spec.why + f"; darken={darken}")
    return spec


def crop_boxes(
    b: int, h: int, w: int, scale: tuple[float, float], generator: torch.Generator | None, device
) -> Tensor:
    """Random resized crop boxes ``(B, 4)`` as ``x1, y1, x2, y2`` in pixels (continuous)."""
    u = rand((b, 4), generator=generator, device=device)  # area, log-ratio, x, y
    area = h * w * (scale[0] + (scale[1] - scale[0]) * u[:, 0])
    log_r = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u[:, 1]
    r = log_r.exp()  # aspect ratio width / height
    cw = (area * r).sqrt().clamp(max=w)
    ch = (area / r).sqrt().clamp(max=h)
    x1 = (w - cw) * u[:, 2]
    y1 = (h - ch) * u[:, 3]
    return torch.stack([x1, y1, x1 + cw, y1 + ch], dim=1)


def resized_crops(x: Tensor, boxes: Tensor, size: int) -> Tensor:
    """Every image ``x[i]`` ``(B, C, H, W)`` cropped to its box and resized to ``size`` x ``size``
    (bilinear, torchvision's ``roi_align``)."""
    from torchvision.ops import roi_align

    idx = torch.arange(x.shape[0], device=x.device, dtype=x.dtype)[:, None]
    rois = torch.cat([idx, boxes.to(x.dtype)], dim=1)  # (B, 5): image index, x1, y1, x2, y2
    return roi_align(x, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=2,
                     aligned=True)  # fmt: skip


def _blend(a: Tensor, b: Tensor, f: Tensor) -> Tensor:
    """``f a + (1 - f) b`` clamped to [0, 1], with a factor ``f`` ``(B,)`` per image (the formula
    of torchvision's ``_blend``)."""
    return (f[:, None, None, None] * a + (1 - f[:, None, None, None]) * b).clamp(0, 1)


def adjust_brightness(x: Tensor, f: Tensor) -> Tensor:
    """``v2.functional.adjust_brightness`` with a factor per image; ``x`` in [0, 1]."""
    return _blend(x, torch.zeros_like(x), f)


def _grey(x: Tensor, channels: int = 1) -> Tensor:
    from torchvision.transforms.v2.functional import rgb_to_grayscale

    return rgb_to_grayscale(x, num_output_channels=channels)


def adjust_contrast(x: Tensor, f: Tensor) -> Tensor:
    """``v2.functional.adjust_contrast`` with a factor per image (blend with the mean grey)."""
    mean = _grey(x).mean(dim=(-3, -2, -1), keepdim=True)  # (B, 1, 1, 1)
    return _blend(x, mean, f)


def adjust_saturation(x: Tensor, f: Tensor) -> Tensor:
    """``v2.functional.adjust_saturation`` with a factor per image (blend with the grey image)."""
    return _blend(x, _grey(x), f)


_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate the chroma (I, Q) of YIQ by ``2 pi shift`` ``(B,)`` (a hue shift, in turns)."""
    m = _YIQ.to(x)
    yiq = torch.einsum("ij,bjhw->bihw", m, x)  # (B, 3, H, W)
    a = 2 * math.pi * shift
    c, s = a.cos()[:, None, None], a.sin()[:, None, None]
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], c * i - s * q, s * i + c * q], dim=1)
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(m), yiq).clamp(0, 1)


class Augment:
    """Random views of a batch of images in model space [-1, 1] under an :class:`AugmentSpec`."""

    def __init__(self, spec: AugmentSpec) -> None:
        self.spec = spec

    def __call__(
        self,
        x: Tensor,
        size: int | None = None,
        *,
        scale: tuple[float, float] | None = None,
        generator: torch.Generator | None = None,
        grey: bool = True,
    ) -> Tensor:
        """One random view of every image ``x`` ``(B, C, H, W)``, resized to ``size`` (default
        ``H``); ``scale`` overrides the crop's area range (DINO's local crops); ``grey=False``
        never turns a view grey (the colour branch of asymmetric views)."""
        s = self.spec
        b, c, h, w = x.shape
        dev = x.device
        boxes = crop_boxes(b, h, w, scale or s.crop_scale, generator, dev)
        v = resized_crops(x, boxes, size or h)  # (B, C, size, size)
        u = rand((b, 7), generator=generator, device=dev)  # flip, jitter (p, 4 factors), grey
        if s.flip:
            v = torch.where((u[:, 0] < 0.5)[:, None, None, None], v.flip(-1), v)
        if s.darken > 0:  # adjust_brightness with a factor <= 1: never clips, keeps hue
            f = 1 - s.darken * rand((b,), generator=generator, device=dev)
            v = adjust_brightness((v + 1) / 2, f) * 2 - 1
        if c == 3 and (s.color_jitter > 0 or s.grayscale_p > 0):
            v01 = ((v + 1) / 2).clamp(0, 1)
            if s.color_jitter > 0:
                j = 0.8 * s.color_jitter
                on = u[:, 1] < s.jitter_p
                one = torch.ones_like(u[:, 2])
                fb = torch.where(on, 1 - j + 2 * j * u[:, 2], one)
                fc = torch.where(on, 1 - j + 2 * j * u[:, 3], one)
                fs = torch.where(on, 1 - j + 2 * j * u[:, 4], one)
                fh = torch.where(on, 0.2 * s.color_jitter * (2 * u[:, 5] - 1), 0 * one)
                v01 = adjust_hue(adjust_saturation(adjust_contrast(adjust_brightness(
                    v01, fb), fc), fs), fh)  # fmt: skip
            if s.grayscale_p > 0 and grey:
                g = _grey(v01, 3)
                v01 = torch.where((u[:, 6] < s.grayscale_p)[:, None, None, None], g, v01)
            v = v01 * 2 - 1
        return v
