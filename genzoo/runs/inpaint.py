"""Inpainting test images with a trained diffusion model of the pixels (``genzoo inpaint``).

A region of each test image is hidden (:func:`region_mask`) and filled in by the model's
:meth:`~genzoo.models.diffusion.base.DiffusionModel.inpaint`, the sampling template with the known
pixels kept: any sampler on the replacement denoiser (the known region of each clean estimate
replaced by the truth; Song et al., arXiv:2011.13456, App. I.2), or RePaint (Lugmayr et al.,
arXiv:2201.09865) with ``sampler="repaint"`` (options ``jump_length``, ``resample``).
Class-conditional models are given the images' labels, text-to-image models their captions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from genzoo.core.errors import ConfigError, choices
from genzoo.core.options import count
from genzoo.core.protocol import PromptConditioned
from genzoo.core.runs import read_run_config
from genzoo.core.seeding import make_generator
from genzoo.data import load_dataset
from genzoo.data.base import DataInfo
from genzoo.models.diffusion.base import DiffusionModel
from genzoo.runs.load import load
from genzoo.runs.sample import check_steps

REGIONS = ("lower", "upper", "left", "right", "center")
"""The hidden regions :func:`region_mask` knows."""


def region_mask(shape: tuple[int, ...], region: str) -> Tensor:
    """A mask of images ``shape = (..., H, W)`` that is 0 on ``region`` (hidden) and 1 elsewhere
    (known): the lower, upper, left or right half, or the centre (half the height and width)."""
    if region not in REGIONS:
        raise ConfigError(f"Unknown mask {region!r}; choose {choices(REGIONS)}.")
    h, w = shape[-2:]
    rows, cols = {
        "lower": (slice(h // 2, h), slice(0, w)),
        "upper": (slice(0, h // 2), slice(0, w)),
        "left": (slice(0, h), slice(0, w // 2)),
        "right": (slice(0, h), slice(w // 2, w)),
        "center": (slice(h // 4, h - h // 4), slice(w // 4, w - w // 4)),
    }[region]
    mask = torch.ones(shape)
    mask[..., rows, cols] = 0
    return mask


@dataclass
class Inpainting:
    """Test images ``original`` ``(n, C, H, W)``, the ``mask`` (1: known) and the model's
    ``completion``, on the CPU."""

    original: Tensor
    mask: Tensor
    completion: Tensor
    info: DataInfo

    def grid(self) -> Tensor:
        """Rows: the masked input (the hidden region black), the completion, the original."""
        shown = self.original * self.mask - (1 - self.mask)
        return torch.cat([shown, self.completion, self.original])


def inpaint_images(
    model: DiffusionModel,
    x: Tensor,
    mask: Tensor,
    *,
    cond: Tensor | None = None,
    seed: int = 0,
    sampler: str | None = None,
    steps: int | None = None,
    **options: Any,
) -> Tensor:
    """``model``'s completion of the images ``x`` where ``mask`` is 0, in the data range, with a
    generator seeded by ``seed`` on the model's device."""
    g = make_generator(seed, device=model.device)
    out = model.inpaint(
        x.to(model.device),
        mask.to(model.device),
        cond=cond,
        generator=g,
        sampler=sampler,
        steps=steps,
        **options,
    )
    return out.clamp(*model.info.value_range)


@torch.no_grad()
def inpaint(
    run: str | Path,
    *,
    n: int = 8,
    mask: str = "lower",
    sampler: str | None = None,
    steps: int | None = None,
    seed: int = 0,
    data_root: str | None = None,
    **options: Any,
) -> Inpainting:
    """Hide ``mask`` of the first ``n`` test images of the run's dataset and fill it in with the
    run's diffusion model (``sampler``: any of ``genzoo list samplers``, or ``"repaint"``)."""
    n = count(n, "--n", "test images to inpaint")
    check_steps(steps)
    model = load(run)
    if not isinstance(model, DiffusionModel) or model.info.kind != "images":
        raise ConfigError(
            f"inpaint needs a diffusion model trained on images; {str(run)!r} is not."
        )
    test = load_dataset(read_run_config(run)["data"], "test", root=data_root)
    batch = test.get(torch.arange(min(n, len(test))))
    x0 = batch["x"].to(model.device)
    known = region_mask(tuple(x0.shape), mask).to(model.device)
    cond = None
    if isinstance(model, PromptConditioned) and "text" in batch:
        cond = batch["text"]
    elif model.config.class_conditional and "y" in batch:
        cond = batch["y"]
    out = inpaint_images(
        model, x0, known, cond=cond, seed=seed, sampler=sampler, steps=steps, **options
    )
    return Inpainting(x0.cpu(), known.cpu(), out.cpu(), model.info)
