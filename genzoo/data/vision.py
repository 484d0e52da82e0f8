"""Image datasets read from a local root through torchvision, and arbitrary image folders.

- ``mnist`` (LeCun et al. 1998), ``fashion-mnist`` (Xiao et al. 2017, arXiv:1708.07747) and
  ``cifar10`` (Krizhevsky 2009) are loaded whole into memory as uint8 tensors ``(N, C, H, W)``.
- ``celeba`` (Liu et al. 2015, arXiv:1411.7766): the aligned 178 x 218 faces, centre-cropped to
  148 x 148 and resized to 64 x 64, decoded lazily from the files on disk.
- ``folder:<path>`` (optionally ``folder:<path>?size=N``, default 32): every image under
  ``path``, RGB, centre-cropped to a square and resized to N x N, decoded lazily. Class
  sub-folders (``path/<class>/*.png``, as torchvision's ImageFolder) give labels; a folder with
  ``train/`` and ``test/`` sub-folders gives those splits, any other folder is split 90/10 by a
  fixed permutation.

Hostile image folders: every file is converted to 8-bit RGB the same way (16-bit and float images
are scaled, not clipped; alpha and palette transparency are composited over white; CMYK, palette
and grey images converted; EXIF rotations applied). A file that is empty, not an image, larger
than Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) or cut short is skipped with
one warning naming it (files with a bad header when the dataset is built, truncated or corrupt
pixel data the first time it is decoded, replaced by the next readable image).

Nothing is downloaded unless ``download=True``. The root defaults to ``$GENZOO_DATA`` or else
``~/.cache/genzoo/data``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from genzoo.core.errors import DataError, GenzooWarning
from genzoo.data.base import DataInfo, Dataset
from genzoo.data.images import DIGIT_NAMES, split_indices

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
DEFAULT_FOLDER_SIZE = 32
CELEBA_CROP = 148  # centre crop of the aligned faces before resizing to 64 x 64
# errors Pillow raises for files that are not (complete) images; decoders of hostile files can
# also fail in other ways (struct, zlib, index errors), so any Exception skips the file
_PIL_ERRORS = (Exception,)
_MAX_WARNED = 20  # bad files named one by one; beyond that, one summary warning

FASHION_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

VISION_INFO: dict[str, DataInfo] = {
    "mnist": DataInfo("mnist", "images", (1, 28, 28), 256, 10, (-1.0, 1.0), DIGIT_NAMES),
    "fashion-mnist": DataInfo(
        "fashion-mnist", "images", (1, 28, 28), 256, 10, (-1.0, 1.0), FASHION_NAMES
    ),
    "cifar10": DataInfo("cifar10", "images", (3, 32, 32), 256, 10, (-1.0, 1.0), CIFAR10_NAMES),
    "celeba": DataInfo("celeba", "images", (3, 64, 64), 256, 0, (-1.0, 1.0)),
}
_TV_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "CIFAR10"}


def default_root() -> str:
    """Where datasets are looked for when no root is given: ``$GENZOO_DATA`` or the user cache."""
    return os.environ.get("GENZOO_DATA") or os.path.join("~", ".cache", "genzoo", "data")


def _resolve_root(root: str | os.PathLike[str] | None) -> str:
    return str(Path(root if root is not None else default_root()).expanduser())


def _not_found(name: str, root: str, err: BaseException, download: bool) -> DataError:
    if download:
        return DataError(
            f"Could not download dataset {name!r} into {root!r} ({err}); check the network, or "
            f"put the files there yourself and pass --data-root."
        )
    return DataError(
        f"Dataset {name!r} was not found in {root!r}; pass --download to fetch it there, or "
        f"--data-root to point to a folder that holds it."
    )


def load_torchvision(
    name: str, split: str, root: str | None = None, download: bool = False
) -> Dataset:
    """mnist, fashion-mnist or cifar10, the whole split in memory as uint8 levels."""
    import torchvision.datasets as tvd

    path = _resolve_root(root)
    cls = getattr(tvd, _TV_CLASS[name])
    try:
        ds = cls(path, train=(split == "train"), download=download)
    except Exception as err:  # torchvision raises RuntimeError, download errors vary
        raise _not_found(name, path, err, download) from None
    data = ds.data
    if isinstance(data, np.ndarray):  # CIFAR: (N, H, W, C) numpy -> (N, C, H, W)
        x = torch.from_numpy(data).permute(0, 3, 1, 2).contiguous()
    else:  # MNIST-like: (N, H, W) tensor -> (N, 1, H, W)
        x = data[:, None].contiguous()
    y = torch.as_tensor(ds.targets, dtype=torch.long)
    return Dataset(VISION_INFO[name], x.to(torch.uint8), y)


def _fit_square(size: int) -> Callable[[Image.Image], Image.Image]:
    def prepare(img: Image.Image) -> Image.Image:
        return ImageOps.fit(img, (size, size), method=Image.Resampling.BICUBIC)

    return prepare


def _celeba_prepare(img: Image.Image) -> Image.Image:
    w, h = img.size
    left, top = (w - CELEBA_CROP) // 2, (h - CELEBA_CROP) // 2
    img = img.crop((left, top, left + CELEBA_CROP, top + CELEBA_CROP))
    return img.resize((64, 64), Image.Resampling.BICUBIC)


_WARNED: set[str] = set()  # files already reported in this process (each split loads them)


def _warn_unreadable(bad: list[tuple[str, str]]) -> None:
    """One warning per unreadable file (path and reason), once per process; a summary beyond
    ``_MAX_WARNED``."""
    bad = [(p, why) for p, why in bad if p not in _WARNED]
    _WARNED.update(p for p, _ in bad)
    for path, why in bad[:_MAX_WARNED]:
        warnings.warn(
            f"Skipping unreadable image file {path!r}: {why}.", GenzooWarning, stacklevel=3
        )
    if len(bad) > _MAX_WARNED:
        warnings.warn(
            f"Skipping {len(bad) - _MAX_WARNED} more unreadable image files "
            f"(e.g. {bad[_MAX_WARNED][0]!r}).",
            GenzooWarning,
            stacklevel=3,
        )


def _why(err: BaseException) -> str:
    if isinstance(err, Image.DecompressionBombError):
        return f"too large (a decompression bomb?): {err}"
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'cannot decode'}"


def _open_checked(path: str) -> Image.Image:
    """Open an image (header only) and refuse what cannot be decoded safely."""
    if os.path.getsize(path) == 0:
        raise OSError("the file is empty")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except Image.DecompressionBombWarning as w:
            raise Image.DecompressionBombError(str(w)) from None
    w, h = im.size
    if w < 1 or h < 1:
        im.close()
        raise OSError(f"the image has size {w}x{h}")
    return im


def to_rgb8(im: Image.Image) -> Image.Image:
    """Any Pillow image -> 8-bit RGB: 16-bit/32-bit/float grey scaled (not clipped) to 0..255,
    transparency composited over white, EXIF orientation applied."""
    im.load()  # decode errors (truncated or damaged data) surface here
    try:
        im = ImageOps.exif_transpose(im) or im
    except Exception:  # a damaged EXIF block: keep the pixels as stored
        pass
    mode = im.mode
    if mode.startswith("I") or mode == "F":  # 16/32-bit integer or float grey levels
        a = np.asarray(im).astype(np.float64)
        lo, hi = (float(np.nanmin(a)), float(np.nanmax(a))) if a.size else (0.0, 0.0)
        if mode.startswith("I;16") or (mode == "I" and lo >= 0 and 255 < hi <= 65535):
            a = a / 257.0  # 65535 -> 255
        elif mode == "F" and lo >= 0 and hi <= 1:
            a = a * 255.0
        elif not (lo >= 0 and hi <= 255):  # any other range: stretch to 0..255
            a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        grey = np.nan_to_num(a).round().clip(0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    elif mode in ("LA", "PA", "La", "RGBa"):
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im).convert("RGB")
    return im.convert("RGB")


class ImageFileDataset(Dataset):
    """Images decoded on demand from files (RGB uint8 levels, ``(B, 3, H, W)`` batches).

    A file that cannot be decoded at load time is reported once with a warning and replaced by
    the next readable image of the split, so batches keep their size.
    """

    def __init__(
        self,
        info: DataInfo,
        paths: list[str],
        labels: Tensor | None,
        prepare: Callable[[Image.Image], Image.Image],
    ) -> None:
        super().__init__(info, None, labels)
        self.paths = paths
        self.prepare = prepare
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.paths)

    def _decode(self, i: int) -> Tensor:
        with _open_checked(self.paths[i]) as im:
            img = self.prepare(to_rgb8(im))
        arr = np.asarray(img, dtype=np.uint8)  # (H, W, 3)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)  # -> (3, H, W)

    def _load(self, i: int) -> tuple[Tensor, int]:
        for j in [i] + [(i + k) % len(self) for k in range(1, len(self))]:
            if j in self._bad:
                continue
            try:
                return self._decode(j), j
            except _PIL_ERRORS as e:
                self._bad.add(j)
                _warn_unreadable([(self.paths[j], _why(e))])
        raise DataError(f"No image of dataset {self.info.name!r} could be read.")

    def get_raw(self, idx: Tensor) -> tuple[Tensor, Tensor | None]:
        imgs, used = [], []
        for i in idx.tolist():
            img, j = self._load(int(i))
            imgs.append(img)
            used.append(j)
        x = torch.stack(imgs) if imgs else torch.empty((0, *self.info.shape), dtype=torch.uint8)
        y = self.y[torch.tensor(used, dtype=torch.long)] if self.y is not None else None
        return x, y


def load_celeba(split: str, root: str | None = None, download: bool = False) -> Dataset:
    """CelebA aligned faces, 64 x 64 RGB, unlabelled, decoded lazily."""
    import torchvision.datasets as tvd

    path = _resolve_root(root)
    try:
        ds = tvd.CelebA(path, split=split, target_type=[], download=download)
    except Exception as err:  # torchvision raises RuntimeError, download errors vary
        raise _not_found("celeba", path, err, download) from None
    folder = os.path.join(ds.root, ds.base_folder, "img_align_celeba")
    paths = [os.path.join(folder, f) for f in ds.filename]
    return ImageFileDataset(VISION_INFO["celeba"], paths, None, _celeba_prepare)


# ---------------------------------------------------------------------------------------------
# folder:<path>


def parse_folder_spec(spec: str) -> tuple[Path, int]:
    """``folder:<path>[?size=N]`` -> (absolute path, image size)."""
    rest = spec[len("folder:") :]
    size = DEFAULT_FOLDER_SIZE
    if "?" in rest:
        rest, query = rest.rsplit("?", 1)
        for item in query.split("&"):
            key, _, value = item.partition("=")
            if key != "size" or not value.isdigit() or int(value) < 1:
                raise DataError(
                    f"Bad option {item!r} in dataset {spec!r}; the only option is size=N "
                    f"(a positive integer), e.g. {f'folder:{rest}?size=64'!r}."
                )
            size = int(value)
    if not rest:
        raise DataError(f"Dataset {spec!r} names no folder; use 'folder:<path>'.")
    try:
        return Path(rest).expanduser().resolve(), size
    except (OSError, ValueError, RuntimeError) as e:  # a NUL byte, a symlink loop, no home ...
        raise DataError(f"Dataset {spec!r} does not name a usable folder ({e}).") from None


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _images_under(folder: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        found += [os.path.join(dirpath, f) for f in sorted(filenames) if _is_image(f)]
    return found


def _scan(folder: Path) -> tuple[list[str], list[int] | None, tuple[str, ...]]:
    """Image paths under ``folder``, and labels + class names when it has class sub-folders."""
    entries = sorted(os.listdir(folder))
    if any(_is_image(e) and (folder / e).is_file() for e in entries):
        return _images_under(folder), None, ()
    classes = [e for e in entries if (folder / e).is_dir() and _images_under(folder / e)]
    if len(classes) < 2:
        return _images_under(folder), None, ()
    paths: list[str] = []
    labels: list[int] = []
    for c, name in enumerate(classes):
        files = _images_under(folder / name)
        paths += files
        labels += [c] * len(files)
    return paths, labels, tuple(classes)


def _split_dirs(folder: Path) -> bool:
    return (folder / "train").is_dir() and (folder / "test").is_dir()


def _check_folder(folder: Path, spec: str) -> None:
    try:
        os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except OSError as e:
        raise DataError(
            f"Image folder {str(folder)!r} of dataset {spec!r} cannot be read ({e.strerror})."
        ) from None
    if not folder.is_dir():
        raise DataError(
            f"Image folder {str(folder)!r} of dataset {spec!r} does not exist; "
            f"give an existing folder, e.g. 'folder:./images'."
        )


def folder_name(folder: Path, size: int) -> str:
    """The canonical spec of an image folder (absolute path, size only when not the default)."""
    return f"folder:{folder}" + (f"?size={size}" if size != DEFAULT_FOLDER_SIZE else "")


def folder_info(spec: str) -> DataInfo:
    """DataInfo of ``folder:<path>`` from a directory listing (no image is decoded)."""
    folder, size = parse_folder_spec(spec)
    _check_folder(folder, spec)
    _, _, names = _scan(folder / "train" if _split_dirs(folder) else folder)
    return DataInfo(
        name=folder_name(folder, size),
        kind="images",
        shape=(3, size, size),
        levels=256,
        n_classes=len(names),
        value_range=(-1.0, 1.0),
        class_names=names,
    )


def load_folder(spec: str, split: str) -> Dataset:
    """``folder:<path>[?size=N]``: RGB images resized to N x N, decoded lazily.

    Files that Pillow cannot identify are skipped at construction with one warning naming them.
    """
    info = folder_info(spec)
    folder, size = parse_folder_spec(spec)
    if _split_dirs(folder):
        where = folder / split
        paths, labels, names = _scan(where)
        if names and names != info.class_names:
            raise DataError(
                f"The class folders of {str(folder / split)!r} differ from those of "
                f"{str(folder / 'train')!r}; give both splits the same class sub-folders."
            )
    else:
        where = folder
        paths, labels, _ = _scan(folder)
    # unreadable files are left out before the split, so that the test split holds readable ones
    good, bad = [], []
    for i, p in enumerate(paths):
        try:
            _open_checked(p).close()  # reads the header only: cheap
            good.append(i)
        except _PIL_ERRORS as e:
            bad.append((p, _why(e)))
    if bad:
        _warn_unreadable(bad)
    if not good:
        raise DataError(
            f"Image folder {str(where)!r} has no readable images ({len(bad)} unreadable); "
            f"add image files ({', '.join(IMAGE_EXTENSIONS)})."
        )
    if not _split_dirs(folder):
        n = len(good)
        n_test = max(1, round(0.1 * n)) if n >= 2 else 0
        good = [good[i] for i in split_indices(n, n_test, split).tolist()]
        if not good:
            raise DataError(
                f"Image folder {str(where)!r} has {n} readable image, too few for a {split!r} "
                "split (the test split takes 10% of two or more images); add image files."
            )
    y = torch.tensor([labels[i] for i in good], dtype=torch.long) if labels is not None else None
    return ImageFileDataset(info, [paths[i] for i in good], y, _fit_square(size))
