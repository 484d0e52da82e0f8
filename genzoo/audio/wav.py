"""WAV files in and out, through ``scipy.io.wavfile`` (never a hand-written parser).

:func:`read_wav` gives mono float32 in [-1, 1] at the rate asked for, whatever the file holds;
each kind of file that is not plain 16-bit mono at that rate is converted or refused with one
sentence:

- 8-bit (unsigned, offset 128), 16-, 24- and 32-bit integer, 32/64-bit float samples: scaled to
  [-1, 1] (floats outside it are clipped);
- several channels: averaged to mono;
- another sample rate: resampled with ``scipy.signal.resample_poly`` (a polyphase Kaiser filter);
- a truncated data chunk: the samples that are there are kept, with a warning naming the file;
- no samples, NaN or infinite samples, or a file that is not a readable WAV: :class:`AudioFileError`
  (a :class:`~genzoo.core.errors.DataError`) naming the file, so a folder loader can skip it.
"""

from __future__ import annotations

import math
import struct
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.io import wavfile
from scipy.signal import resample_poly
from torch import Tensor

from genzoo.core.errors import DataError


class AudioFileError(DataError):
    """A WAV file that cannot be used (unreadable, empty, NaN)."""


def _to_float(data: np.ndarray, path: str) -> np.ndarray:
    """Samples of any WAV sample type -> float64 in [-1, 1]."""
    if data.dtype == np.uint8:  # 8-bit WAV is unsigned with its zero at 128
        return (data.astype(np.float64) - 128.0) / 128.0
    if data.dtype.kind == "i":  # 24-bit arrives left-justified in int32: the same full scale
        return data.astype(np.float64) / float(2 ** (8 * data.dtype.itemsize - 1))
    if data.dtype.kind == "f":
        x = data.astype(np.float64)
        if not np.isfinite(x).all():
            raise AudioFileError(f"WAV file {path!r} holds NaN or infinite samples; skipped.")
        return np.clip(x, -1.0, 1.0)
    raise AudioFileError(f"WAV file {path!r} has unsupported samples of type {data.dtype}.")


def resample(x: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample along the last axis from ``orig_rate`` to ``new_rate`` (polyphase filtering)."""
    if orig_rate == new_rate:
        return x
    g = math.gcd(int(orig_rate), int(new_rate))
    return resample_poly(x, new_rate // g, orig_rate // g, axis=-1)


def read_wav(path: str | Path, sample_rate: int | None = None) -> tuple[Tensor, int]:
    """Read a WAV file as mono float32 ``(T,)`` in [-1, 1] and its rate (``sample_rate`` if
    given: the file is resampled to it). Raises :class:`AudioFileError` for unusable files."""
    p = str(path)
    if not Path(p).is_file():
        raise AudioFileError(f"WAV file {p!r} does not exist.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", wavfile.WavFileWarning)
        try:
            rate, data = wavfile.read(p)
        except (ValueError, struct.error, EOFError, OSError, IndexError) as e:
            raise AudioFileError(f"{p!r} is not a readable WAV file ({e}); skipped.") from e
    if any("prematurely" in str(w.message) for w in caught):
        warnings.warn(
            f"WAV file {p!r} is truncated; kept its {data.shape[0]} complete samples.",
            stacklevel=2,
        )
    if data.shape[0] == 0:
        raise AudioFileError(f"WAV file {p!r} holds no samples; skipped.")
    x = _to_float(data, p)
    if x.ndim == 2:
        x = x.mean(axis=1)  # (T, channels) -> (T,): mono mix
    if sample_rate is not None and sample_rate != rate:
        x = np.clip(resample(x, int(rate), int(sample_rate)), -1.0, 1.0)
        rate = sample_rate
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), int(rate)


def write_wav(path: str | Path, x: Tensor, sample_rate: int) -> None:
    """Write a mono waveform ``(T,)`` in [-1, 1] (clipped) as 16-bit PCM: ``round(32768 x)``."""
    x = x.detach().float().cpu().reshape(-1)
    if not torch.isfinite(x).all():
        raise AudioFileError(f"Refusing to write {str(path)!r}: the waveform holds NaN or inf.")
    pcm = (x * 32768.0).round().clamp(-32768, 32767).to(torch.int16).numpy()  # the read scale
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(str(path), int(sample_rate), pcm)
