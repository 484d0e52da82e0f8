"""``folder:<path>`` of WAV files: a user's own audio as a dataset.

A ``folder:`` spec whose folder holds ``.wav`` files and no images is audio (an image folder keeps
its meaning, :mod:`genzoo.data.vision`). Options: ``?rate=N`` (the dataset's sample rate, default
8000 Hz, as ``speech-digits``) and ``&seconds=S`` (the clip length, default 1.0), e.g.
``folder:./my-words?rate=16000&seconds=0.75``.

Every file goes through :func:`genzoo.audio.read_wav` (``scipy.io.wavfile``, no hand-written
parser): 8-bit, 16-, 24- and 32-bit integer and float samples are scaled to [-1, 1], several
channels are averaged to mono, another rate is resampled to ``rate``
(``scipy.signal.resample_poly``), and a truncated data chunk keeps its complete samples with a
warning naming the file. Each clip is then brought to ``rate * seconds`` samples: a longer one
keeps its middle, a shorter one is centred between zeros. A file that cannot be used (not a
readable WAV, no samples, NaN or infinite samples) is skipped with one warning naming it and
saying why (once per process, not again for the other split); nothing stops half-way through the
folder.

Labels: when the folder (or its ``train/``) holds two or more sub-folders with WAV files, each
sub-folder is a class (sorted names), as for image folders; otherwise the clips are unlabelled.
Splits: ``train/`` and ``test/`` sub-folders when both exist, else a fixed seeded 10% of the
readable clips is the test split.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from genzoo.audio.wav import AudioFileError, read_wav
from genzoo.core.errors import DataError, GenzooWarning
from genzoo.data.audio import clip_info
from genzoo.data.base import DataInfo, Dataset
from genzoo.data.images import split_indices

DEFAULT_RATE = 8000  # Hz, the rate of the embedded speech
DEFAULT_SECONDS = 1.0  # clip length
MAX_RATE = 192_000
_WARNED: set[str] = set()  # files already named in a warning: once per process, not per split


def _is_wav(name: str) -> bool:
    return name.lower().endswith(".wav")


def _wavs_under(folder: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        found += [os.path.join(dirpath, f) for f in sorted(filenames) if _is_wav(f)]
    return found


def _has_images(folder: Path) -> bool:
    from genzoo.data.vision import IMAGE_EXTENSIONS

    for _, _, filenames in os.walk(folder):
        if any(f.lower().endswith(IMAGE_EXTENSIONS) for f in filenames):
            return True
    return False


def _split_path(spec: str) -> tuple[str, str]:
    rest = spec[len("folder:") :]
    path, _, query = rest.partition("?")
    return path, query


def is_wav_folder(spec: str) -> bool:
    """Whether ``folder:<path>[?...]`` names an existing folder of WAV files without images."""
    if not spec.startswith("folder:"):
        return False
    path, _ = _split_path(spec)
    try:
        folder = Path(path).expanduser().resolve()
        return (
            bool(path) and folder.is_dir() and bool(_wavs_under(folder)) and not _has_images(folder)
        )
    except (OSError, ValueError, RuntimeError):
        return False


def parse_wav_folder_spec(spec: str) -> tuple[Path, int, float]:
    """``folder:<path>[?rate=N&seconds=S]`` -> (absolute path, rate, seconds)."""
    path, query = _split_path(spec)
    rate, seconds = DEFAULT_RATE, DEFAULT_SECONDS
    for item in query.split("&") if query else []:
        key, _, value = item.partition("=")
        try:
            if key == "rate" and value.isdigit() and 1000 <= int(value) <= MAX_RATE:
                rate = int(value)
                continue
            if key == "seconds" and 0.0 < float(value) <= 60.0:
                seconds = float(value)
                continue
        except ValueError:
            pass
        raise DataError(
            f"Bad option {item!r} in the WAV-folder dataset {spec!r}; the options are rate=N "
            f"(Hz, 1000 to {MAX_RATE}) and seconds=S (0 to 60), e.g. "
            f"{f'folder:{path}?rate=16000&seconds=1.5'!r}."
        )
    if int(rate * seconds) < 1:
        raise DataError(f"Dataset {spec!r} asks for clips of no samples; raise rate or seconds.")
    return Path(path).expanduser().resolve(), rate, seconds


def _scan(folder: Path) -> tuple[list[str], list[int] | None, tuple[str, ...]]:
    """WAV paths under ``folder``, and labels + class names when it has class sub-folders."""
    entries = sorted(os.listdir(folder))
    if any(_is_wav(e) and (folder / e).is_file() for e in entries):
        return _wavs_under(folder), None, ()
    classes = [e for e in entries if (folder / e).is_dir() and _wavs_under(folder / e)]
    if len(classes) < 2:
        return _wavs_under(folder), None, ()
    paths: list[str] = []
    labels: list[int] = []
    for c, name in enumerate(classes):
        files = _wavs_under(folder / name)
        paths += files
        labels += [c] * len(files)
    return paths, labels, tuple(classes)


def _split_dirs(folder: Path) -> bool:
    return (folder / "train").is_dir() and (folder / "test").is_dir()


def _name(folder: Path, rate: int, seconds: float) -> str:
    opts = [f"rate={rate}"] if rate != DEFAULT_RATE else []
    opts += [f"seconds={seconds:g}"] if seconds != DEFAULT_SECONDS else []
    return f"folder:{folder}" + ("?" + "&".join(opts) if opts else "")


def wav_folder_info(spec: str) -> DataInfo:
    """DataInfo of a WAV folder from its listing (no file is decoded)."""
    folder, rate, seconds = parse_wav_folder_spec(spec)
    _, _, names = _scan(folder / "train" if _split_dirs(folder) else folder)
    return clip_info(_name(folder, rate, seconds), rate, seconds, names)


def fit_length(x: torch.Tensor, n: int) -> torch.Tensor:
    """A clip ``(T,)`` as ``n`` samples: the middle ``n`` of a longer one, a shorter one centred
    between zeros."""
    t = x.shape[0]
    if t >= n:
        start = (t - n) // 2
        return x[start : start + n]
    left = (n - t) // 2
    return torch.nn.functional.pad(x, (left, n - t - left))  # (n,)


def load_wav_folder(spec: str, split: str) -> Dataset:
    """One split of a WAV folder: clips ``(N, rate * seconds)`` float32 in [-1, 1]."""
    info = wav_folder_info(spec)
    folder, rate, seconds = parse_wav_folder_spec(spec)
    where = folder / split if _split_dirs(folder) else folder
    paths, labels, names = _scan(where)
    if _split_dirs(folder) and names != info.class_names:
        raise DataError(
            f"The class folders of {str(where)!r} differ from those of "
            f"{str(folder / 'train')!r}; give both splits the same class sub-folders."
        )
    n = int(rate * seconds)
    clips, good = [], []
    for i, p in enumerate(paths):
        try:
            x, _ = read_wav(p, rate)
        except AudioFileError as e:  # one sentence naming the file and why; go on with the rest
            if p not in _WARNED:
                _WARNED.add(p)
                warnings.warn(str(e), GenzooWarning, stacklevel=2)
            continue
        clips.append(fit_length(x, n))
        good.append(i)
    if not clips:
        raise DataError(
            f"WAV folder {str(where)!r} has no usable WAV files ({len(paths)} skipped); add "
            "readable .wav files."
        )
    idx = list(range(len(clips)))
    if not _split_dirs(folder):
        n_test = max(1, round(0.1 * len(clips))) if len(clips) >= 2 else 0
        idx = split_indices(len(clips), n_test, split).tolist()
        if not idx:
            raise DataError(
                f"WAV folder {str(where)!r} has {len(clips)} usable clip, too few for a "
                f"{split!r} split (the test split takes 10% of two or more clips); add WAV files."
            )
    x = torch.stack([clips[i] for i in idx])  # (N, T)
    y = None
    if labels is not None:
        y = torch.tensor([labels[good[i]] for i in idx], dtype=torch.long)
    return Dataset(info, x, y)
