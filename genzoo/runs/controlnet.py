"""ControlNet runs: ``train_controlnet(base_run, control)`` trains a ``controlnet`` on the base
run's dataset with its control maps (``control:<kind>:<data>``, :mod:`genzoo.data.control`), and
:func:`read_control_image` reads the control image of ``genzoo sample RUN --control cond.png``.

Everything that can be wrong (the base run, its family, the control kind for its data, the
control image's size and channels) is one sentence before a run directory is created.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from genzoo.core.errors import ConfigError, DataError
from genzoo.core.runs import read_run_config
from genzoo.data.control import parse_control_spec
from genzoo.models import MODELS
from genzoo.models.diffusion import ControlNet, DiffusionModel, LatentDiffusion
from genzoo.models.diffusion.controlnet import VALID_BASES, ControlNetConfig
from genzoo.runs.train import train


def control_data(base_run: str | Path, control: str) -> str:
    """The dataset spec a ControlNet on ``base_run`` trains on: ``control:<control>:<its data>``
    (checked: ``mask`` needs shapes)."""
    data = str(read_run_config(base_run)["data"])
    if data.startswith("control:"):
        data = parse_control_spec(data)[1]
    spec = f"control:{control}:{data}"
    parse_control_spec(spec)
    return spec


def train_controlnet(
    base_run: str | Path,
    control: str = "mask",
    *,
    steps: int | None = None,
    budget: str | float | None = None,
    out: str | Path | None = None,
    name: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Train a ControlNet on the trained diffusion run ``base_run`` with ``control`` maps of its
    dataset; returns the new run (default ``runs/controlnet-<control>-<base run's name>``)."""
    over = dict(overrides or {})
    for key in ("base_run", "control"):
        if key in over:
            raise ConfigError(f"Give {key} with --base / --control, not as {key}=...")
    ControlNetConfig.from_dict({"control": control})  # an unknown kind: one sentence
    model = str(read_run_config(base_run).get("model"))
    cls = MODELS.get(model)
    if not issubclass(cls, DiffusionModel) or issubclass(cls, LatentDiffusion | ControlNet):
        raise ConfigError(
            f"The base run of a controlnet must be a pixel-space diffusion model "
            f"({VALID_BASES}); {str(base_run)!r} is a {model!r} run."
        )
    data = control_data(base_run, control)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(base_run).name)
    return train(
        "controlnet",
        data,
        steps=steps,
        budget=budget,
        out=out,
        name=name or (None if out is not None else f"controlnet-{control}-{stem}"),
        overrides={**over, "base_run": str(base_run), "control": control},
    )


def read_control_image(path: str | Path, run: str | Path) -> Tensor:
    """The control image at ``path`` as ``(1, C, H, W)`` floats in [0, 1] for the controlnet
    ``run``; anything but an image of the run's size and channel count is one sentence."""
    cfg = read_run_config(run)
    if cfg.get("model") != "controlnet":
        raise ConfigError(
            f"--control needs a controlnet run; {str(run)!r} is a {cfg.get('model')!r} run."
        )
    mc = ControlNetConfig.from_dict(cfg["model_config"])
    _, h, w = (int(s) for s in cfg["data_info"]["shape"])
    c = mc.control_channels
    try:
        with Image.open(path) as im:
            im.load()
            img = (
                im.convert("RGBA" if "transparency" in im.info else "RGB") if im.mode == "P" else im
            )
    except FileNotFoundError:
        raise DataError(f"Control image {str(path)!r} does not exist.") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"Cannot read {str(path)!r} as an image ({e}).") from None
    bands = len(img.getbands())
    if img.size != (w, h) or bands != c:
        raise ConfigError(
            f"Control image {str(path)!r} is {img.size[0]}x{img.size[1]} with {bands} "
            f"channel{'s' * (bands != 1)}; this controlnet takes {w}x{h} images with {c} "
            f"channel{'s' * (c != 1)} (a {mc.control} map: white = 1, black = 0)."
        )
    if img.mode in ("I", "I;16", "F"):
        a = np.asarray(img, dtype=np.float64)
        a = a / (65535.0 if img.mode.startswith("I") else max(float(a.max()), 1.0))
    else:
        a = np.asarray(img.convert("L") if c == 1 else img.convert("RGB"), dtype=np.float64)
        a = a / 255.0
    x = torch.from_numpy(a.reshape(h, w, c)).float().permute(2, 0, 1)  # (C, H, W)
    return x.clamp(0, 1)[None]


def write_control_image(control: Tensor, path: str | Path) -> Path:
    """A control map ``(1, H, W)`` or ``(H, W)`` in [0, 1] as a grayscale PNG."""
    a = (control.detach().float().cpu().reshape(control.shape[-2:]).clamp(0, 1) * 255).round()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a.numpy().astype(np.uint8), "L").save(path)
    return path
