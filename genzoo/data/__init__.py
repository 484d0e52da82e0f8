"""Datasets by name: ``load_dataset(spec, split)`` and ``dataset_info(spec)``.

Specs: ``toy2d:<name>`` (2-D points with exact densities where known), ``digits``, ``mnist5k``
(embedded, no download), ``shapes[?size=N&n=N&objects=1]`` (procedural coloured shapes with
captions, attributes and questions; see :mod:`genzoo.data.shapes`), ``mnist``, ``fashion-mnist``,
``cifar10``, ``celeba`` (from a local root, downloaded only when asked) and
``folder:<path>[?size=N]`` (any image folder; a folder of WAV files is audio,
``folder:<path>[?rate=N&seconds=S]``, :mod:`genzoo.data.wavfolder`). Splits are ``"train"``
and ``"test"``. Images
are stored as integer levels and seen by models in [-1, 1] (see :mod:`genzoo.data.base`); points
are used as they are.

Image-to-image tasks: ``pairs:<base>-<task>`` and ``unpaired:<base>-<task>``
(:mod:`genzoo.data.pairs`).

Video: ``moving-digits`` and ``moving-shapes`` (clips ``(T, C, H, W)`` with exact trajectories;
:mod:`genzoo.data.video`); ``frames:<video spec>`` their frames as images.

Style transfer: ``textures[?size=N&channels=C]`` (procedural stripes, checks, noise, dots) and
``styled:<base>`` (content images with a texture each, for AdaIN; :mod:`genzoo.data.textures`).

Audio: ``speech-digits`` (spoken digits synthesized offline by eSpeak NG, cached on first use) and
``tones`` (procedural notes), mono waveforms in [-1, 1] (:mod:`genzoo.data.audio`);
``mel:speech-digits`` views each clip as a ``(1, 32, 32)`` log-mel image in [-1, 1]
(:mod:`genzoo.data.melview`).
"""

from __future__ import annotations

import torch

from genzoo.core.errors import DataError, choices
from genzoo.data.audio import audio_info, is_audio_spec, load_audio
from genzoo.data.base import DataInfo, Dataset, levels_to_model, model_to_levels, model_to_unit
from genzoo.data.control import ControlDataset, control_info, parse_control_spec
from genzoo.data.images import DIGITS_INFO, MNIST5K_INFO, load_digits, load_mnist5k
from genzoo.data.melview import is_mel_view_spec, load_mel_view, mel_view_info
from genzoo.data.pairs import is_pair_spec, load_pairs, pair_info, pair_specs
from genzoo.data.shapes import load_shapes, shapes_info
from genzoo.data.tasks import TASKS, load_task_text, task_text_info
from genzoo.data.text import load_text, text_info
from genzoo.data.textures import load_styled, load_textures, styled_info, texture_info
from genzoo.data.toy2d import BOUNDS, TOY2D, Toy2D, get_toy
from genzoo.data.video import (
    VIDEO_SETS,
    frames_info,
    is_frames_spec,
    is_video_spec,
    load_frames,
    load_video,
    video_info,
)
from genzoo.data.vision import VISION_INFO, folder_info, load_celeba, load_folder, load_torchvision
from genzoo.data.wavfolder import is_wav_folder, load_wav_folder, wav_folder_info

__all__ = [
    "SPLITS",
    "DataInfo",
    "Dataset",
    "Toy2D",
    "ToyDataset",
    "dataset_info",
    "get_toy",
    "levels_to_model",
    "list_datasets",
    "load_dataset",
    "model_to_levels",
    "model_to_unit",
]

SPLITS = ("train", "test")
TOY_SIZES = {"train": (20_000, 0), "test": (5_000, 1)}  # split -> (number of points, seed)
EMBEDDED = ("digits", "mnist5k")
DOWNLOADABLE = ("mnist", "fashion-mnist", "cifar10", "celeba")


class ToyDataset(Dataset):
    """A fixed float32 sample ``(N, 2)`` of a toy distribution, which ``.toy`` holds."""

    def __init__(self, info: DataInfo, x: torch.Tensor, toy: Toy2D) -> None:
        super().__init__(info, x, None)
        self.toy = toy


def list_datasets() -> list[str]:
    """Every dataset spec (``folder:<path>`` stands for any image folder or folder of WAVs)."""
    return [f"toy2d:{n}" for n in TOY2D] + [
        *EMBEDDED,
        "shapes",
        *pair_specs(),
        "textures",
        "styled:digits",
        "styled:mnist5k",
        "text:pystdlib",
        "speech-digits",
        "tones",
        "mel:speech-digits",
        *VIDEO_SETS,
        "frames:moving-digits",
        *(f"task:{t}" for t in TASKS),
        *DOWNLOADABLE,
        "folder:<path>",
    ]


def _unknown(spec: str) -> DataError:
    return DataError(f"Unknown dataset {spec!r}; choose {choices(list_datasets())}.")


def _toy_name(spec: str) -> str:
    name = spec[len("toy2d:") :]
    if name not in TOY2D:
        raise _unknown(spec)
    return name


def _toy_info(spec: str) -> DataInfo:
    return DataInfo(name=spec, kind="points", shape=(2,), levels=None, value_range=BOUNDS)


def dataset_info(spec: str, root: str | None = None) -> DataInfo:
    """What ``spec`` declares (kind, shape, levels, classes), without loading its data."""
    if not isinstance(spec, str):
        raise _unknown(str(spec))
    if spec.startswith("toy2d:"):
        _toy_name(spec)
        return _toy_info(spec)
    if spec == "digits":
        return DIGITS_INFO
    if spec == "mnist5k":
        return MNIST5K_INFO
    if spec in VISION_INFO:
        return VISION_INFO[spec]
    if is_wav_folder(spec):
        return wav_folder_info(spec)
    if spec.startswith("folder:"):
        return folder_info(spec)
    if is_pair_spec(spec):
        return pair_info(spec)
    if spec == "shapes" or spec.startswith("shapes?"):
        return shapes_info(spec)
    if spec.startswith("control:"):  # ControlNet's control maps over an image dataset
        return control_info(spec, dataset_info(parse_control_spec(spec)[1], root))
    if spec == "textures" or spec.startswith("textures?"):
        return texture_info(spec)
    if spec.startswith("styled:"):
        return styled_info(spec)
    if spec.startswith("text:"):
        return text_info(spec[5:])
    if is_audio_spec(spec):
        return audio_info(spec)
    if is_mel_view_spec(spec):
        return mel_view_info(spec)
    if spec.startswith("task:"):
        return task_text_info(spec)
    if is_video_spec(spec):
        return video_info(spec)
    if is_frames_spec(spec):
        return frames_info(spec)
    raise _unknown(spec)


def load_dataset(
    spec: str, split: str = "train", *, root: str | None = None, download: bool = False
) -> Dataset:
    """Load one split (``"train"`` or ``"test"``) of the dataset ``spec``.

    ``root`` is where torchvision datasets are looked for (default ``$GENZOO_DATA`` or
    ``~/.cache/genzoo/data``); nothing is downloaded unless ``download=True``.
    """
    info = dataset_info(spec, root)  # validates the spec first
    if split not in SPLITS:
        raise DataError(f"Unknown split {split!r} of dataset {spec!r}; choose {choices(SPLITS)}.")
    if spec.startswith("toy2d:"):
        toy = get_toy(_toy_name(spec))
        n, seed = TOY_SIZES[split]
        x = toy.sample(n, torch.Generator().manual_seed(seed)).float()
        return ToyDataset(info, x, toy)
    if spec == "digits":
        return load_digits(split)
    if spec == "mnist5k":
        return load_mnist5k(split)
    if spec == "celeba":
        return load_celeba(split, root, download)
    if spec in VISION_INFO:
        return load_torchvision(spec, split, root, download)
    if is_pair_spec(spec):
        return load_pairs(spec, split)
    if spec == "shapes" or spec.startswith("shapes?"):
        return load_shapes(spec, split)
    if spec.startswith("control:"):
        kind, base = parse_control_spec(spec)
        return ControlDataset(spec, load_dataset(base, split, root=root, download=download), kind)
    if spec == "textures" or spec.startswith("textures?"):
        return load_textures(spec, split)
    if spec.startswith("styled:"):
        return load_styled(spec, split)
    if spec.startswith("text:"):
        return load_text(spec[5:], split)
    if is_audio_spec(spec):
        return load_audio(spec, split)
    if is_mel_view_spec(spec):
        return load_mel_view(spec, split)
    if spec.startswith("task:"):
        return load_task_text(spec, split)
    if is_video_spec(spec):
        return load_video(spec, split)
    if is_frames_spec(spec):
        return load_frames(spec, split)
    if is_wav_folder(spec):
        return load_wav_folder(spec, split)
    return load_folder(spec, split)
