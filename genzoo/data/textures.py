"""Procedural textures (stripes, checks, noise, dots) as style images, and ``styled:<base>`` for
training AdaIN's decoder.

Every texture is drawn from a seeded ``numpy`` generator, so every machine builds the same
images; no files, no downloads. Kinds (label = index in :data:`KINDS`):

- ``stripes``: a sinusoid of random angle and period (3 to 8 pixels at 28x28, scaled with the
  size), hard-thresholded into two colours;
- ``checks``: a checkerboard of random cell size and phase;
- ``noise``: white noise smoothed by a Gaussian (``scipy.ndimage.gaussian_filter``) of random
  width, then stretched to the full range;
- ``dots``: discs of random radius on a jittered grid.

Grey images (``channels=1``) take two random grey levels, colour ones two random RGB colours.

Specs: ``textures[?size=N&channels=C]`` (default 28 x 28 grey; 2,000 train and 400 test images,
labelled with their kind) and ``styled:<base>`` with ``base`` one of ``digits``, ``mnist5k``:
the base set's images in ``"x"`` (content, labels ``"y"``) and, per example, a texture of the
same shape in ``"style"`` with its kind in ``"style_y"``: example ``i`` takes texture
``i mod P`` of a fixed pool (P = 800 train, 200 test, drawn with their own seeds), so a batch
pairs unrelated content and style.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

from genzoo.core.errors import DataError, choices
from genzoo.data.base import DataInfo, Dataset, levels_to_model

KINDS = ("stripes", "checks", "noise", "dots")
SIZES = {"train": (2000, 0), "test": (400, 1)}  # split -> (number of textures, seed)
STYLED_BASES = ("digits", "mnist5k")
STYLE_POOL = {"train": 800, "test": 200}  # textures per split of styled:<base>, reused in turn


def _two_colours(rng: np.random.Generator, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Two colours in [0, 1] at least 0.4 apart in their mean (the pattern stays visible)."""
    while True:
        a, b = rng.uniform(0, 1, channels), rng.uniform(0, 1, channels)
        if abs(a.mean() - b.mean()) >= 0.4:
            return a, b


def make_texture(kind: str, size: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """One texture ``(channels, size, size)`` in [0, 1] of ``kind`` (see :data:`KINDS`)."""
    if kind not in KINDS:
        raise DataError(f"Unknown texture {kind!r}; choose {choices(KINDS)}.")
    s = size / 28.0  # patterns scale with the image
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    if kind == "stripes":
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(3, 8) * s
        phase = rng.uniform(0, 2 * np.pi)
        m = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period + phase) > 0
    elif kind == "checks":
        cell = max(1.0, rng.uniform(2, 6) * s)
        ox, oy = rng.uniform(0, 2 * cell, 2)
        m = ((np.floor((xx + ox) / cell) + np.floor((yy + oy) / cell)) % 2) == 0
    elif kind == "noise":
        from scipy.ndimage import gaussian_filter

        g = gaussian_filter(rng.standard_normal((size, size)), sigma=rng.uniform(0.5, 2.0) * s)
        g = (g - g.min()) / max(g.max() - g.min(), 1e-12)
        a, b = _two_colours(rng, channels)
        return (a[:, None, None] * g + b[:, None, None] * (1 - g)).clip(0, 1)
    else:  # dots
        step = rng.uniform(4, 8) * s
        r = rng.uniform(0.2, 0.4) * step
        ox, oy = rng.uniform(0, step, 2)
        cx, cy = (xx + ox) % step - step / 2, (yy + oy) % step - step / 2
        m = cx**2 + cy**2 <= r**2
    a, b = _two_colours(rng, channels)
    return np.where(m[None], a[:, None, None], b[:, None, None])


def make_textures(n: int, size: int, channels: int, seed: int) -> tuple[Tensor, Tensor]:
    """``n`` textures as 8-bit levels ``(n, C, S, S)`` and their kinds ``(n,)``, kinds in turn."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(KINDS)
    imgs = np.stack([make_texture(KINDS[k], size, channels, rng) for k in y])
    x = torch.from_numpy(np.rint(imgs * 255.0).astype(np.uint8))
    return x, torch.from_numpy(y).long()


def texture_info(spec: str = "textures") -> DataInfo:
    """What ``textures[?size=N&channels=C]`` declares: images with 256 levels, 4 kinds."""
    size, channels = parse_texture_spec(spec)
    return DataInfo(
        name=spec,
        kind="images",
        shape=(channels, size, size),
        levels=256,
        n_classes=len(KINDS),
        value_range=(-1.0, 1.0),
        class_names=KINDS,
    )


def parse_texture_spec(spec: str) -> tuple[int, int]:
    """``textures[?size=N&channels=C]`` -> ``(size, channels)``; else one clear sentence."""
    base, _, query = spec.partition("?")
    vals = {"size": 28, "channels": 1}
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        ok = base == "textures" and key in vals and value.isdigit()
        ok = ok and ((key == "size" and int(value) >= 4) or (key == "channels" and value in "13"))
        if not ok:
            raise DataError(
                f"Bad option {item!r} in dataset {spec!r}; 'textures' takes size=N (N >= 4) "
                "and channels=1 or channels=3, e.g. 'textures?size=32&channels=3'."
            )
        vals[key] = int(value)
    if base != "textures":
        raise DataError(f"Unknown dataset {spec!r}; did you mean 'textures'?")
    return vals["size"], vals["channels"]


def load_textures(spec: str = "textures", split: str = "train") -> Dataset:
    """One split of ``textures[?...]`` (uint8 levels, labels = kinds)."""
    info = texture_info(spec)
    n, seed = SIZES[split]
    c, s, _ = info.shape
    x, y = make_textures(n, s, c, seed)
    return Dataset(info, x, y)


# --------------------------------------------------------------------------------------------------
# content + style pairs for AdaIN


def styled_base(spec: str) -> str:
    base = spec[len("styled:") :] if spec.startswith("styled:") else ""
    if base not in STYLED_BASES:
        raise DataError(
            f"Unknown dataset {spec!r}; choose {choices([f'styled:{b}' for b in STYLED_BASES])}."
        )
    return base


def styled_info(spec: str) -> DataInfo:
    """The content images' description (the styles have the same shape and levels)."""
    from genzoo.data.images import DIGITS_INFO, MNIST5K_INFO

    info = DIGITS_INFO if styled_base(spec) == "digits" else MNIST5K_INFO
    return DataInfo(
        name=spec,
        kind="images",
        shape=info.shape,
        levels=info.levels,
        n_classes=info.n_classes,
        value_range=info.value_range,
        class_names=info.class_names,
    )


class StyledImages(Dataset):
    """Content images ``x`` (labels ``y``) with one texture per example in ``"style"``."""

    def __init__(self, info: DataInfo, x: Tensor, y: Tensor | None, style: Tensor, kind: Tensor):
        super().__init__(info, x, y)
        self.style, self.kind = style, kind

    def extra(
        self, idx: Tensor, *, dequantize: bool = False, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """``{"style": (B, C, H, W) model space, "style_y": (B,) texture kinds}``."""
        if self.style.device != idx.device:  # the Trainer may have moved x and y
            self.style, self.kind = self.style.to(idx.device), self.kind.to(idx.device)
        assert self.info.levels is not None
        style = levels_to_model(
            self.style[idx], self.info.levels, dequantize=dequantize, generator=generator
        )
        return {"style": style, "style_y": self.kind[idx]}


@functools.lru_cache(maxsize=4)
def _styles(base: str, split: str) -> tuple[Tensor, Tensor]:
    from genzoo.data.images import DIGITS_INFO, MNIST5K_INFO

    info = DIGITS_INFO if base == "digits" else MNIST5K_INFO
    c, s, _ = info.shape
    x, kind = make_textures(STYLE_POOL[split], s, c, seed=10 + SIZES[split][1])
    assert info.levels is not None
    levels = torch.round(x.double() * (info.levels - 1) / 255.0).to(torch.uint8)  # base's levels
    return levels, kind


def load_styled(spec: str, split: str = "train") -> StyledImages:
    """One split of ``styled:<base>``."""
    from genzoo.data.images import load_digits, load_mnist5k

    base = styled_base(spec)
    ds = load_digits(split) if base == "digits" else load_mnist5k(split)
    assert ds.x is not None
    style, kind = _styles(base, split)
    pick = torch.arange(len(ds)) % len(style)  # example i takes texture i mod P
    style, kind = style[pick], kind[pick]
    return StyledImages(styled_info(spec), ds.x.clone(), ds.y, style.clone(), kind.clone())
