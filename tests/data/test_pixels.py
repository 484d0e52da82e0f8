"""The one pixel convention: levels <-> model space, dequantization, DataInfo round trip."""

from __future__ import annotations

import pytest
import torch

from genzoo.data import DataInfo, dataset_info, levels_to_model, model_to_levels, model_to_unit


@pytest.mark.parametrize("levels", [2, 17, 256])
def test_bin_centres_round_trip(levels: int) -> None:
    k = torch.arange(levels)
    x = levels_to_model(k, levels)
    assert x.min() > -1 and x.max() < 1
    assert torch.equal(model_to_levels(x, levels), k)
    assert torch.allclose(model_to_unit(x, levels), (k + 0.5) / levels)


@pytest.mark.parametrize("levels", [17, 256])
def test_dequantized_values_stay_in_their_bin(levels: int) -> None:
    # millions of draws: float32 rounding used to push about 6e-6 of them onto the next bin
    g = torch.Generator().manual_seed(0)
    k = torch.arange(levels).repeat(40_000)
    x = levels_to_model(k, levels, dequantize=True, generator=g)
    assert x.dtype == torch.float32
    assert torch.equal(model_to_levels(x, levels), k)
    lo = 2.0 * k.double() / levels - 1
    assert (x.double() >= lo).all() and (x.double() < lo + 2.0 / levels).all()
    assert x.max() < 1 and x.min() >= -1
    # uniform within the bin: the mean offset is half a bin
    offset = (x.double() - lo) * levels / 2
    assert offset.mean().item() == pytest.approx(0.5, abs=0.01)


def test_dequantization_is_seeded() -> None:
    k = torch.randint(0, 256, (4, 3, 8, 8), generator=torch.Generator().manual_seed(1))
    a = levels_to_model(k, 256, dequantize=True, generator=torch.Generator().manual_seed(5))
    b = levels_to_model(k, 256, dequantize=True, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_model_to_levels_clamps() -> None:
    x = torch.tensor([-5.0, -1.0, 1.0, 5.0])
    assert model_to_levels(x, 256).tolist() == [0, 0, 255, 255]


@pytest.mark.parametrize("spec", ["digits", "mnist5k", "cifar10", "toy2d:moons"])
def test_datainfo_dict_round_trip(spec: str) -> None:
    info = dataset_info(spec)
    assert DataInfo.from_dict(info.to_dict()) == info
