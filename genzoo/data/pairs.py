"""Image-to-image tasks made from the embedded digit sets: paired (pix2pix) and unpaired (CycleGAN).

Specs ``pairs:<base>-<task>`` and ``unpaired:<base>-<task>``, with ``base`` one of ``digits`` and
``mnist5k`` (embedded, no download) and ``task`` one of:

- ``thick``: thin -> thick strokes. The source is the digit, the target its grey-scale dilation
  (``scipy.ndimage.grey_dilation``) with the 3 x 3 cross (the pixel and its 4 neighbours).
- ``edges``: edges -> filled. The source is the digit's morphological gradient
  (``scipy.ndimage.morphological_gradient``, dilation minus erosion with the same cross: the
  outline of the strokes), the target the digit itself.

Both maps are deterministic, pixel for pixel, so every machine builds the same pairs, and both keep
the base set's integer levels (17 for digits, 256 for mnist5k) and its train/test split.

Batches carry the target in ``"x"`` (the dataset's images; :class:`~genzoo.data.base.DataInfo`
describes them), the source in ``"src"`` (same shape and levels) and the digit label in ``"y"``.

- ``pairs:``: every source with its own target, for supervised translation (pix2pix).
- ``unpaired:``: the train split is cut in two disjoint halves by a fixed seeded permutation:
  sources (domain A) come only from the first half, targets (domain B) only from the second, so no
  target in a batch is the translation of any source the model sees; the ``i``-th source is
  batched with the ``i``-th target of a seeded shuffle, i.e. with an unrelated digit. The test
  split keeps its pairs (each test source with its own target), for scoring translations against
  the truth only.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

from genzoo.core.errors import DataError, choices
from genzoo.data.base import DataInfo, Dataset, levels_to_model
from genzoo.data.images import DIGITS_INFO, MNIST5K_INFO, load_digits, load_mnist5k

BASES = ("digits", "mnist5k")
TASKS = ("thick", "edges")
PREFIXES = ("pairs:", "unpaired:")
UNPAIRED_SEED = 1  # seed of the permutation that halves the train split for unpaired data


def pair_specs() -> list[str]:
    """Every paired and unpaired spec."""
    return [f"{p}{b}-{t}" for p in PREFIXES for b in BASES for t in TASKS]


def is_pair_spec(spec: str) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIXES)


def parse_pair_spec(spec: str) -> tuple[bool, str, str]:
    """``"pairs:digits-thick"`` -> ``(paired, base, task)`` = ``(True, "digits", "thick")``."""
    prefix = next((p for p in PREFIXES if spec.startswith(p)), None)
    base, _, task = spec[len(prefix or "") :].rpartition("-")
    if prefix is None or base not in BASES or task not in TASKS:
        raise DataError(f"Unknown image-to-image dataset {spec!r}; choose {choices(pair_specs())}.")
    return prefix == "pairs:", base, task


def pair_info(spec: str) -> DataInfo:
    """The description of the targets (sources have the same shape and levels)."""
    _, base, _ = parse_pair_spec(spec)
    info = DIGITS_INFO if base == "digits" else MNIST5K_INFO
    return DataInfo(
        name=spec,
        kind="images",
        shape=info.shape,
        levels=info.levels,
        n_classes=info.n_classes,
        value_range=info.value_range,
        class_names=info.class_names,
    )


_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)  # the 4-neighbourhood


def make_pair(x: Tensor, task: str) -> tuple[Tensor, Tensor]:
    """``(source, target)`` integer images ``(N, C, H, W)`` of ``task`` from digit images ``x``."""
    from scipy import ndimage

    if task not in TASKS:
        raise DataError(f"Unknown image-to-image task {task!r}; choose {choices(TASKS)}.")
    a = x.numpy()
    foot = _CROSS[None, None]  # (1, 1, 3, 3): per image and channel, never across them
    if task == "thick":
        src, tgt = a, ndimage.grey_dilation(a, footprint=foot, mode="constant", cval=0)
    else:
        src, tgt = ndimage.morphological_gradient(a, footprint=foot, mode="constant", cval=0), a
    return torch.from_numpy(np.ascontiguousarray(src)), torch.from_numpy(np.ascontiguousarray(tgt))


class PairedImages(Dataset):
    """Targets ``x`` and labels ``y`` of the base set with a source image ``src`` per example.

    :meth:`get` adds ``"src"`` (model space, like ``"x"``) to every batch.
    """

    def __init__(self, info: DataInfo, x: Tensor, y: Tensor | None, src: Tensor) -> None:
        super().__init__(info, x, y)
        if src.shape != x.shape:
            raise ValueError(f"sources {tuple(src.shape)} and targets {tuple(x.shape)} differ")
        self.src = src

    def extra(
        self, idx: Tensor, *, dequantize: bool = False, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """``{"src": (B, C, H, W)}``: the sources in model space, like the targets."""
        if self.src.device != idx.device:  # the Trainer may have moved x and y to its device
            self.src = self.src.to(idx.device)
        assert self.info.levels is not None
        src = levels_to_model(
            self.src[idx], self.info.levels, dequantize=dequantize, generator=generator
        )
        return {"src": src}


@functools.lru_cache(maxsize=8)
def _build(spec: str, split: str) -> tuple[Tensor, Tensor, Tensor]:
    paired, base, task = parse_pair_spec(spec)
    ds = load_digits(split) if base == "digits" else load_mnist5k(split)
    assert ds.x is not None and ds.y is not None
    src, tgt = make_pair(ds.x, task)
    y = ds.y
    if not paired and split == "train":
        n = len(ds)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(UNPAIRED_SEED))
        half = n // 2
        a_idx, b_idx = perm[:half], perm[half : 2 * half]  # disjoint halves: A, then B
        src, tgt, y = src[a_idx], tgt[b_idx], y[b_idx]  # source i and target i: unrelated digits
    return src, tgt, y


def load_pairs(spec: str, split: str = "train") -> PairedImages:
    """One split of ``pairs:<base>-<task>`` or ``unpaired:<base>-<task>``."""
    info = pair_info(spec)
    src, tgt, y = _build(spec, split)
    return PairedImages(info, tgt.clone(), y.clone(), src.clone())
