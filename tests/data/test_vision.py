"""torchvision-backed sets (never downloaded in tests) and image folders."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from genzoo.core.errors import DataError
from genzoo.data import dataset_info, load_dataset


@pytest.mark.parametrize("spec", ["mnist", "fashion-mnist", "cifar10", "celeba"])
def test_missing_files_raise_data_error(spec: str, tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset(spec, "train", root=str(tmp_path), download=False)
    msg = str(err.value)
    assert repr(spec) in msg and str(tmp_path) in msg
    assert "--download" in msg and "--data-root" in msg


def _write(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_flat_folder_with_corrupt_file(tmp_path: Path) -> None:
    for i in range(10):
        _write(tmp_path / f"img{i}.png", (10 * i, 100, 200), size=(40 + i, 30))
    Image.new("L", (20, 20), 77).save(tmp_path / "gray.png")  # grayscale becomes RGB
    (tmp_path / "broken.png").write_bytes(b"this is not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    spec = f"folder:{tmp_path}"
    with pytest.warns(UserWarning, match="broken.png"):
        train = load_dataset(spec, "train")
        test = load_dataset(spec, "test")
    assert len(train) + len(test) == 11 and len(test) >= 1
    x = train.get_raw(torch.arange(len(train)))[0]
    assert x.shape == (len(train), 3, 32, 32) and x.dtype == torch.uint8
    assert train.info.n_classes == 0 and train.info.levels == 256
    # solid-colour images stay solid after crop and resize
    for im in x:
        assert (im == im[:, :1, :1]).all()
    batch = train.all()
    assert batch["x"].shape == (len(train), 3, 32, 32) and "y" not in batch
    assert batch["x"].min() > -1 and batch["x"].max() < 1
    assert dataset_info(spec).shape == (3, 32, 32)


def test_folder_size_option_and_classes(tmp_path: Path) -> None:
    colours = {"cats": (255, 0, 0), "dogs": (0, 0, 255)}
    for name, colour in colours.items():
        for i in range(5):
            _write(tmp_path / "train" / name / f"{i}.jpg", colour)
        _write(tmp_path / "test" / name / "0.png", colour)
    spec = f"folder:{tmp_path}?size=16"
    info = dataset_info(spec)
    assert info.shape == (3, 16, 16) and info.n_classes == 2
    assert info.class_names == ("cats", "dogs")
    for split, n in (("train", 10), ("test", 2)):
        ds = load_dataset(spec, split)
        x, y = ds.get_raw(torch.arange(n))
        assert x.shape == (n, 3, 16, 16) and y is not None
        # the label matches the folder: red images are class 0, blue ones class 1
        red = x[:, 0].float().mean((1, 2)) > x[:, 2].float().mean((1, 2))
        assert torch.equal(red, y == 0)


def test_truncated_image_is_replaced_with_warning(tmp_path: Path) -> None:
    for i in range(4):
        _write(tmp_path / "c" / f"{i}.png", (50 * i, 0, 0))
    data = (tmp_path / "c" / "1.png").read_bytes()
    (tmp_path / "c" / "1.png").write_bytes(data[: len(data) // 2])  # valid header, cut data
    ds = load_dataset(f"folder:{tmp_path}", "train")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, _ = ds.get_raw(torch.arange(len(ds)))
    assert x.shape == (len(ds), 3, 32, 32)
    assert any("1.png" in str(w.message) for w in caught)


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'nope'}")
    with pytest.raises(DataError, match="no readable images"):
        load_dataset(f"folder:{tmp_path}")
    with pytest.raises(DataError, match="size=N"):
        dataset_info(f"folder:{tmp_path}?size=big")
