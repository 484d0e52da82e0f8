"""Translate an image file with a trained image-to-image run (pix2pix, CycleGAN).

``genzoo translate RUN image.png [--out out.png] [--reverse]`` and its Python twin
:func:`translate_file`. Files are 8-bit PNG (or anything Pillow reads); pixel values ``v`` in
0..255 map to the model's ``L`` intensity levels by ``k = round(v (L - 1) / 255)`` and back by
``v = round(k 255 / (L - 1))``, so an image written by :func:`write_image` reads back to the same
levels exactly. Colour images are converted to grey for one-channel models (and grey to RGB for
three-channel ones); an image of another size is resized (area averaging) when it has the model's
aspect ratio, and refused with a clear error otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from genzoo.core.errors import ConfigError, DataError
from genzoo.core.protocol import Translates
from genzoo.data.base import DataInfo, levels_to_model, model_to_levels
from genzoo.runs.load import load
from genzoo.viz import png_out


def _levels(info: DataInfo) -> int:
    return int(info.levels or 256)


def read_image(path: str | Path, info: DataInfo, what: str = "the model") -> tuple[Tensor, str]:
    """``(x, note)``: the image at ``path`` as a ``(1, C, H, W)`` model-space tensor of the shape
    ``info.shape``, and a note saying what was converted (empty when nothing was)."""
    c, h, w = (int(s) for s in info.shape)
    try:
        with Image.open(path) as im:
            im.load()
            img = im
    except FileNotFoundError:
        raise DataError(f"Image file {str(path)!r} does not exist.") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"Cannot read {str(path)!r} as an image ({e}).") from None
    notes = []
    mode = {1: "L", 3: "RGB"}.get(c)
    if mode is None:
        raise ConfigError(f"{what} works on {c}-channel images; only 1 or 3 channels are read.")
    if img.mode != mode:
        notes.append(f"converted from {img.mode} to {mode}")
        img = img.convert(mode)
    width, height = img.size
    if (width, height) != (w, h):
        if width * h != height * w:
            raise ConfigError(
                f"Image {str(path)!r} is {width}x{height} pixels (width x height), but {what} "
                f"translates {w}x{h} images; give an image of {w}x{h} pixels, or one with the "
                "same aspect ratio (it is resized)."
            )
        notes.append(f"resized from {width}x{height} to {w}x{h}")
        img = img.resize((w, h), Image.Resampling.BOX)
    a = np.asarray(img, dtype=np.float64).reshape(h, w, c)  # (H, W, C)
    levels = _levels(info)
    k = torch.from_numpy(np.rint(a * (levels - 1) / 255.0)).long().permute(2, 0, 1)  # (C, H, W)
    return levels_to_model(k[None], levels), ", ".join(notes)


def write_image(x: Tensor, info: DataInfo, path: str | Path) -> Path:
    """Write one model-space image ``(1, C, H, W)`` or ``(C, H, W)`` as an 8-bit PNG."""
    x = x.detach().float().cpu()
    if x.ndim == 4:
        x = x[0]
    levels = _levels(info)
    k = model_to_levels(x, levels).double()  # (C, H, W)
    v = torch.round(k * 255.0 / (levels - 1)).clamp(0, 255).to(torch.uint8)
    arr = v.permute(1, 2, 0).numpy()  # (H, W, C)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(arr[..., 0], "L") if arr.shape[2] == 1 else Image.fromarray(arr, "RGB")
    img.save(path)
    return path


def translate_file(
    run: str | Path,
    image: str | Path,
    out: str | Path | None = None,
    *,
    reverse: bool = False,
) -> tuple[Path, str]:
    """Translate ``image`` with the model of ``run`` and write the result to ``out`` (default
    ``<image stem>-translated.png`` beside it). Returns the output path and a note on what was
    converted on input. ``reverse`` translates target -> source (CycleGAN)."""
    model = load(run, device="cpu")
    if not isinstance(model, Translates):
        raise ConfigError(
            f"Run {str(run)!r} holds model {model.name!r}, which does not translate images; "
            "train an image-to-image model ('pix2pix' or 'cyclegan') on a 'pairs:' or "
            "'unpaired:' dataset."
        )
    out_path = (
        Path(out)
        if out is not None
        else Path(image).with_name(f"{Path(image).stem}-translated.png")
    )
    png_out(out_path)
    x, note = read_image(image, model.info, f"model {model.name!r} of run {str(run)!r}")
    y = model.translate(x, reverse=reverse)
    return write_image(y, model.info, out_path), note
