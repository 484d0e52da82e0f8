"""load_dataset / dataset_info / list_datasets: names, splits, toy datasets, errors."""

from __future__ import annotations

import pytest
import torch

import genzoo.data as gd
from genzoo.core.errors import DataError
from genzoo.data import dataset_info, list_datasets, load_dataset
from genzoo.data.toy2d import EightGaussians


def test_list_datasets() -> None:
    names = list_datasets()
    for toy in ("moons", "circles", "8gaussians", "25gaussians", "checkerboard", "swissroll"):
        assert f"toy2d:{toy}" in names
    for spec in ("toy2d:pinwheel", "toy2d:rings", "digits", "mnist5k", "mnist", "fashion-mnist"):
        assert spec in names
    assert {"cifar10", "celeba", "folder:<path>"} <= set(names)


def test_exports() -> None:
    for name in ("Dataset", "DataInfo", "levels_to_model", "model_to_levels", "model_to_unit"):
        assert hasattr(gd, name)


def test_toy_dataset_is_a_fixed_sample() -> None:
    train = load_dataset("toy2d:8gaussians", "train")
    test = load_dataset("toy2d:8gaussians", "test")
    assert isinstance(train, gd.ToyDataset) and isinstance(train.toy, EightGaussians)
    assert train.x is not None and test.x is not None
    assert train.x.shape == (20_000, 2) and test.x.shape == (5_000, 2)
    assert train.x.dtype == torch.float32 and train.y is None
    again = load_dataset("toy2d:8gaussians", "train")
    assert again.x is not None and torch.equal(train.x, again.x)
    assert not torch.equal(train.x[:5000], test.x)  # seed 0 vs seed 1
    expected = train.toy.sample(20_000, torch.Generator().manual_seed(0))
    assert torch.equal(train.x, expected)
    info = train.info
    assert info.kind == "points" and info.shape == (2,) and info.levels is None
    assert info.n_classes == 0 and info.value_range == (-4.0, 4.0)
    assert info == dataset_info("toy2d:8gaussians")
    batch = train.get(torch.arange(4))
    assert set(batch) == {"x"} and batch["x"].shape == (4, 2)


@pytest.mark.parametrize("spec", ["mnsit", "toy2d:blobs", "toy2d:", "folder"])
def test_unknown_dataset_names_value_and_choices(spec: str) -> None:
    with pytest.raises(DataError) as err:
        load_dataset(spec)
    msg = str(err.value)
    assert repr(spec) in msg
    for valid in ("'mnist'", "'digits'", "'toy2d:moons'", "'folder:<path>'"):
        assert valid in msg
    with pytest.raises(DataError, match=repr(spec)):
        dataset_info(spec)


def test_bad_split() -> None:
    with pytest.raises(DataError, match=r"'validation'.*'test'.*'train'"):
        load_dataset("digits", "validation")


def test_info_is_cheap_and_declared() -> None:
    assert dataset_info("cifar10").shape == (3, 32, 32)
    assert dataset_info("mnist").levels == 256 and dataset_info("mnist").n_classes == 10
    assert dataset_info("celeba").shape == (3, 64, 64)
    assert dataset_info("digits").levels == 17
