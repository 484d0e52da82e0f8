"""The worked examples of docs/architecture.md run as written and do what the text says."""

from __future__ import annotations

import math
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch

import genzoo
from genzoo.core.protocol import ExactLikelihood, Samples, likelihood_kind
from genzoo.core.seeding import make_generator, randn
from genzoo.data import load_dataset
from genzoo.data.base import model_to_levels
from genzoo.models import MODELS

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _examples() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 2, "the doc has two worked examples"
    return blocks


@pytest.fixture
def example() -> Any:
    """Run one worked example in a fresh namespace; unregister its model afterwards."""
    before = set(MODELS.names())

    names: list[str] = []

    def run(i: int) -> dict[str, Any]:
        mod = types.ModuleType(f"architecture_example_{i}")  # dataclasses need a real module
        sys.modules[mod.__name__] = mod
        names.append(mod.__name__)
        exec(compile(_examples()[i], f"{DOC}:example{i}", "exec"), mod.__dict__)
        return mod.__dict__

    yield run
    for name in set(MODELS.names()) - before:
        del MODELS._items[name]
    for name in names:
        sys.modules.pop(name, None)


def test_v_prediction_loss_is_the_mse_against_v_and_d_is_the_identity_at_zero_noise(example):
    ns = example(0)
    info = load_dataset("toy2d:moons").info
    model = ns["VPrediction"](ns["VPredictionConfig"].from_dict({"hidden": [32, 32]}), info)
    x0 = load_dataset("toy2d:moons").get(torch.arange(256))["x"]  # (B, 2)
    loss = model.per_example_loss(x0, generator=make_generator(5))
    # the same draws, in the same order: sigma, then eps
    g = make_generator(5)
    sigma = model.train_sigma(x0.shape[0], g, x0.device)
    eps = randn(x0.shape, generator=g)
    x = x0 + sigma[:, None] * eps
    c_skip, c_out, _, _ = model.precond(sigma)
    with torch.no_grad():
        f = (model.denoise(x, sigma) - c_skip[:, None] * x) / c_out[:, None]  # the network's F
        v = (eps - sigma[:, None] * x0) / (1 + sigma[:, None] ** 2).sqrt()  # Sec. 4
        torch.testing.assert_close(loss.detach(), ((f - v) ** 2).mean(1), rtol=1e-4, atol=1e-5)
        small = torch.full((256,), 1e-6)
        torch.testing.assert_close(model.denoise(x0, small), x0, rtol=0, atol=1e-5)
    assert "v-prediction" in MODELS and likelihood_kind(model) == "bound"


def test_independent_pixels_reach_the_empirical_entropy_and_not_below(example, tmp_path):
    ns = example(1)
    run = genzoo.train(
        "independent-pixels",
        "digits",
        steps=300,
        out=tmp_path / "ip",
        overrides={"progress": False, "tensorboard": False, "n_samples": 16},
    )
    model = genzoo.load(run, device="cpu")
    assert isinstance(model, ns["IndependentPixels"])
    assert isinstance(model, Samples) and isinstance(model, ExactLikelihood)
    train = load_dataset("digits", "train")
    x = train.all()["x"]  # bin centres (B, 1, 8, 8)
    k = model_to_levels(x.reshape(x.shape[0], -1), train.info.levels)  # (B, D)
    counts = torch.stack([torch.bincount(col, minlength=train.info.levels) for col in k.T])
    p = counts.double() / k.shape[0]  # (D, L) the maximum-likelihood fit
    entropy = float(-(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum())
    with torch.no_grad():
        nll = float(-model.log_prob(x).double().mean())
    assert nll >= entropy - 1e-6  # nothing fits the training set better than its histogram
    assert nll <= entropy * 1.02, (nll, entropy)  # and gradient steps get there
    result = genzoo.evaluate(run)
    d = train.info.dim
    assert math.isclose(result["log_prob_bpd"], -result["log_prob"] / (d * math.log(2)))
    s = genzoo.sample(run, 8, seed=0)
    assert s.shape == (8, *train.info.shape) and s.min() >= -1 and s.max() <= 1
