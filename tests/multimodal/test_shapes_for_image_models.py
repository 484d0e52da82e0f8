"""shapes is an ordinary labelled image dataset for every image model of the other families."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("tokenizers")

from genzoo.core.registry import MODELS
from genzoo.data import load_dataset

IMAGE_MODELS = ["vae", "vqvae", "ddpm", "edm", "flow-matching", "realnvp", "glow", "pixelcnn",
                "dcgan", "cgan"]  # fmt: skip
SETTINGS = {"pixelcnn": {"channels": 96, "head_channels": 96}}  # RGB: widths divisible by 3


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_image_models_take_shapes_batches(name: str) -> None:
    if name not in MODELS:
        pytest.skip(f"{name} is not registered")
    data = load_dataset("shapes?size=16&n=64", "train")
    torch.manual_seed(0)
    cls = MODELS.get(name)
    model = cls(cls.config_class.from_dict(SETTINGS.get(name, {})), data.info)
    batch = data.get(torch.arange(4), dequantize=cls.dequantize)
    groups = list(model.param_groups())
    out = model.loss(batch, groups[0]) if len(groups) > 1 else model.loss(batch)
    assert math.isfinite(out.loss.item())
    if name in ("ddpm", "pixelcnn"):
        return  # sampling costs many network calls; the loss is what uses the data
    x = model.sample(2, generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, 3, 16, 16)
