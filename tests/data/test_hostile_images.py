"""A folder of hostile images through ``folder:<path>``: every odd-but-valid image is converted to
the right 8-bit RGB pixels, every broken one is skipped with exactly one warning naming it."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import genzoo
from genzoo.data import load_dataset

S = 4  # images are written at S x S and loaded with ?size=S: no resampling, exact pixels


def _png_header_only(path: Path, w: int, h: int) -> None:
    """A PNG that claims w x h pixels but holds almost no data (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def _noise(path: Path, size: int = 48) -> bytes:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path.read_bytes()


def _hostile_folder(root: Path) -> tuple[dict[str, np.ndarray], dict[str, bool]]:
    """Writes the files; returns the expected pixels of the good ones, and the bad files (True:
    refused from the header when the dataset is built, False: found when decoded)."""
    d = root / "train"
    d.mkdir(parents=True)
    expected: dict[str, np.ndarray] = {}

    def solid(rgb: tuple[int, int, int]) -> np.ndarray:
        return np.broadcast_to(np.array(rgb, np.uint8), (S, S, 3))

    Image.new("RGB", (S, S), (10, 20, 30)).save(d / "rgb.png")
    expected["rgb.png"] = solid((10, 20, 30))
    # CMYK: (0, 255, 0, 0) is magenta; lossless in TIFF, nearly so in JPEG
    Image.new("CMYK", (S, S), (0, 255, 0, 0)).save(d / "cmyk.tiff")
    expected["cmyk.tiff"] = solid((255, 0, 255))
    Image.new("CMYK", (S, S), (0, 0, 0, 0)).save(d / "cmyk.jpg", quality=100)
    expected["cmyk.jpg"] = solid((255, 255, 255))
    # 16-bit grey: 0..65535 must be scaled to 0..255, not clipped (which would give 255)
    levels = (np.arange(S * S).reshape(S, S) * 17).astype(np.uint16)  # 0..255
    Image.fromarray(levels * 257).save(d / "grey16.png")
    assert Image.open(d / "grey16.png").mode.startswith("I")
    expected["grey16.png"] = np.repeat(levels.astype(np.uint8)[..., None], 3, axis=2)
    # float grey in [0, 1]
    Image.fromarray((levels / 255.0).astype(np.float32), "F").save(d / "float.tiff")
    expected["float.tiff"] = expected["grey16.png"]
    # palette, palette with a transparent index (-> white), 1-bit
    pal = Image.new("P", (S, S), 1)
    pal.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    pal.save(d / "palette.png")
    expected["palette.png"] = solid((200, 100, 50))
    pal.putpixel((0, 0), 0)
    pal.save(d / "palette-transparent.png", transparency=0)
    exp = solid((200, 100, 50)).copy()
    exp[0, 0] = 255
    expected["palette-transparent.png"] = exp
    Image.new("1", (S, S), 1).save(d / "bilevel.png")
    expected["bilevel.png"] = solid((255, 255, 255))
    # alpha: opaque red; fully transparent green (-> white); half-transparent blue
    rgba = np.zeros((S, S, 4), np.uint8)
    rgba[:, :2] = (255, 0, 0, 255)
    rgba[:, 2] = (0, 255, 0, 0)
    rgba[:, 3] = (0, 0, 255, 128)
    Image.fromarray(rgba, "RGBA").save(d / "alpha.png")
    exp = np.zeros((S, S, 3), np.uint8)
    exp[:, :2] = (255, 0, 0)
    exp[:, 2] = (255, 255, 255)
    exp[:, 3] = (127, 127, 255)  # 255 * (1 - 128/255) over white
    expected["alpha.png"] = exp
    Image.new("LA", (S, S), (100, 255)).save(d / "grey-alpha.png")
    expected["grey-alpha.png"] = solid((100, 100, 100))

    bad: dict[str, bool] = {}
    (d / "zero.png").write_bytes(b"")
    bad["zero.png"] = True
    (d / "corrupt.png").write_bytes(np.random.default_rng(1).bytes(300))
    bad["corrupt.png"] = True
    (d / "text.jpg").write_text("not an image at all\n")
    bad["text.jpg"] = True
    _png_header_only(d / "bomb.png", 100_000, 100_000)  # 1e10 pixels: above 2x Pillow's limit
    bad["bomb.png"] = True
    _png_header_only(d / "bomb-mild.png", 10_000, 10_000)  # 1e8: above the limit, below 2x
    bad["bomb-mild.png"] = True
    data = _noise(d / "truncated.png")
    (d / "truncated.png").write_bytes(data[: len(data) // 2])  # header intact, pixels cut
    bad["truncated.png"] = False
    data = _noise(d / "truncated.jpg")
    (d / "truncated.jpg").write_bytes(data[: len(data) // 2])
    bad["truncated.jpg"] = False
    wave = (np.add.outer(np.arange(64), np.arange(64)) * 3 % 256).astype(np.uint8)
    Image.fromarray(np.stack([wave, wave.T, wave // 2], -1)).save(d / "scrambled.png")
    data = bytearray((d / "scrambled.png").read_bytes())
    data[len(data) // 2 : len(data) // 2 + 32] = b"\xa5" * 32  # compressed pixels damaged
    (d / "scrambled.png").write_bytes(bytes(data))
    with pytest.raises(OSError), Image.open(d / "scrambled.png") as im:
        im.load()
    bad["scrambled.png"] = False

    (root / "test").mkdir()
    Image.new("RGB", (S, S), (1, 2, 3)).save(root / "test" / "ok.png")
    return expected, bad


def _named(caught: list[warnings.WarningMessage], name: str) -> int:
    return sum(f"{name}'" in str(w.message) for w in caught)


def test_hostile_images_are_converted_or_skipped_with_one_warning_each(tmp_path: Path) -> None:
    expected, bad = _hostile_folder(tmp_path)
    spec = f"folder:{tmp_path}?size={S}"
    with warnings.catch_warnings(record=True) as at_build:
        warnings.simplefilter("always")
        ds = load_dataset(spec, "train")
    for name, early in bad.items():
        assert _named(at_build, name) == (1 if early else 0), name
    with warnings.catch_warnings(record=True) as at_decode:
        warnings.simplefilter("always")
        x, _ = ds.get_raw(torch.arange(len(ds)))
        ds.get_raw(torch.arange(len(ds)))  # a second pass warns about nothing new
    for name, early in bad.items():
        assert _named(at_decode, name) == (0 if early else 1), name
    for name in expected:  # no good file is warned about
        assert _named(at_build, name) + _named(at_decode, name) == 0, name
    assert x.shape == (len(ds), 3, S, S) and x.dtype == torch.uint8
    by_name = {Path(p).name: i for i, p in enumerate(ds.paths)}
    assert set(by_name) == set(expected) | {k for k, early in bad.items() if not early}
    for name, want in expected.items():
        got = ds.get_raw(torch.tensor([by_name[name]]))[0][0].permute(1, 2, 0).numpy()
        tol = 2 if name.endswith(".jpg") else (1 if name == "alpha.png" else 0)
        diff = np.abs(got.astype(int) - want.astype(int)).max()
        assert diff <= tol, (name, got[..., 0], want[..., 0])
    # a batch that draws a broken file gets a readable image in its place
    i = by_name["truncated.png"]
    assert torch.equal(ds.get_raw(torch.tensor([i]))[0][0], x[i])
    assert any(torch.equal(x[i], x[by_name[k]]) for k in expected)


def test_training_on_a_hostile_folder_does_not_crash(tmp_path: Path, fast_train) -> None:
    _, bad = _hostile_folder(tmp_path / "imgs")
    over = {**fast_train, "batch_size": 8, "latent_dim": 2, "channels": [4, 8], "n_samples": 4}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = genzoo.train(
            "vae", f"folder:{tmp_path / 'imgs'}?size=8", steps=3, out=tmp_path / "r", overrides=over
        )
    loaded = genzoo.open_run(run)
    model = loaded.model
    assert loaded.step == 3 and all(torch.isfinite(p).all() for p in model.parameters())
    for name in bad:  # each broken file named once over the whole run (all 19 images drawn)
        assert _named(caught, name) == 1, name


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_deep_grey_levels_scale_to_8_bits(mode: str) -> None:
    from genzoo.data.vision import to_rgb8

    a = np.array([[0, 257, 32896, 65535]], np.uint16)
    if mode == "I":  # 32-bit integers holding 16-bit levels (how older Pillow read 16-bit PNG)
        im = Image.fromarray(a.astype(np.int32), "I")
    else:
        im = Image.frombytes(mode, (4, 1), a.astype(">u2" if mode == "I;16B" else "<u2").tobytes())
    out = np.asarray(to_rgb8(im))
    assert out.shape == (1, 4, 3)
    assert out[0, :, 0].tolist() == [0, 1, 128, 255]
