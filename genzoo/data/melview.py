"""A log-mel "image" view of an audio dataset: ``mel:speech-digits[?rate=N]``.

Each clip becomes one image ``(1, N_MELS, FRAMES)`` = ``(1, 32, 32)``: HiFi-GAN's log-mel
(:func:`genzoo.audio.spectral.vocoder_log_mel`: Slaney mel with Slaney norm, magnitude STFT,
``ln(max(mel, 1e-5))``) with ``hop = T // FRAMES`` (250 samples at 8 kHz, 500 at 16 kHz) and
``n_fft = 4 hop``, so a clip of ``T`` samples has exactly ``FRAMES`` frames and a decoded image has
``FRAMES * hop = T`` samples. Class labels and speakers are kept, the splits are the base set's.

Scaling to [-1, 1]: a fixed affine map ``v = 2 (m - lo) / (hi - lo) - 1`` with ``lo = ln(1e-5)``
(the log floor) and ``hi`` a bound no clip can exceed: a waveform in [-1, 1] has
``|X(f)| <= sum(window) = n_fft / 2``, so band ``b`` holds at most ``n_fft / 2 * sum_f fb[f, b]``
(``hi`` is the log of the largest of these). Both ends follow from the spec alone (nothing
fitted on data, nothing clipped), so :func:`from_view` inverts :func:`to_view` exactly (to float
rounding) and a run's stored spec is all a sampler needs to turn images back into log-mels.

Layers: the view computes the mel with :mod:`genzoo.audio` (signal processing on ``core`` only,
which pyproject's layers place below ``data``), so the dataset and the decoders share one
definition of the log-mel.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from genzoo.audio.spectral import griffin_lim_log_mel, mel_filterbank, vocoder_log_mel
from genzoo.core.errors import DataError, choices
from genzoo.data.audio import AudioDataset, audio_info, load_audio
from genzoo.data.base import DataInfo

PREFIX = "mel:"
MEL_BASES = ("speech-digits",)  # audio sets the view is offered for
N_MELS = 32  # mel bands: the image's height
FRAMES = 32  # frames per clip: the image's width
EPS = 1e-5  # log floor of vocoder_log_mel
N_ITER = 100  # fast Griffin-Lim iterations of the default decoder


def is_mel_view_spec(spec: str) -> bool:
    return spec.startswith(PREFIX)


def base_spec(spec: str) -> str:
    """``mel:speech-digits?rate=N`` -> ``speech-digits?rate=N``; one sentence for another base."""
    base = spec[len(PREFIX) :]
    if base.split("?")[0] not in MEL_BASES:
        raise DataError(
            f"Unknown base {base!r} of the mel view {spec!r}; choose "
            f"{choices([PREFIX + b for b in MEL_BASES])}."
        )
    return base


def mel_settings(spec: str) -> dict[str, int]:
    """The STFT and mel settings of the view ``spec``: sample_rate, n_fft, hop, n_mels, frames."""
    base = audio_info(base_spec(spec))
    hop = base.shape[0] // FRAMES
    return {
        "sample_rate": base.sample_rate,
        "n_fft": 4 * hop,
        "hop": hop,
        "n_mels": N_MELS,
        "frames": FRAMES,
    }


def scaling(spec: str) -> tuple[float, float]:
    """``(lo, hi)``: the log-mel values mapped to -1 and 1 (see the module docstring)."""
    s = mel_settings(spec)
    fb = mel_filterbank(s["sample_rate"], s["n_fft"], s["n_mels"])  # (F, M), float64
    return math.log(EPS), math.log(s["n_fft"] / 2 * float(fb.sum(0).max()))


def to_view(log_mel: Tensor, spec: str) -> Tensor:
    """Log-mel ``(..., M, frames)`` -> view values in [-1, 1]."""
    lo, hi = scaling(spec)
    return 2 * (log_mel - lo) / (hi - lo) - 1


def from_view(x: Tensor, spec: str) -> Tensor:
    """View values -> log-mel: the inverse of :func:`to_view`."""
    lo, hi = scaling(spec)
    return (x + 1) / 2 * (hi - lo) + lo


def clip_log_mel(wave: Tensor, spec: str) -> Tensor:
    """The view's log-mel ``(..., M, frames)`` of waveforms ``(..., T)``."""
    s = mel_settings(spec)
    fb = mel_filterbank(s["sample_rate"], s["n_fft"], s["n_mels"])
    return vocoder_log_mel(wave, s["sample_rate"], s["n_fft"], s["hop"], s["n_mels"], EPS, fb)


def mel_view_info(spec: str) -> DataInfo:
    base = audio_info(base_spec(spec))
    return DataInfo(
        name=spec,
        kind="images",
        shape=(1, N_MELS, FRAMES),
        levels=None,  # float images: the scaled log-mel, not integer levels
        n_classes=base.n_classes,
        value_range=(-1.0, 1.0),
        class_names=base.class_names,
        sample_rate=0,  # images; the audio rate is mel_settings(spec)["sample_rate"]
    )


def load_mel_view(spec: str, split: str) -> AudioDataset:
    """The split as images ``(N, 1, M, frames)`` float32 in [-1, 1], labels and speakers kept."""
    audio = load_audio(base_spec(spec), split)
    with torch.no_grad():
        mel = torch.cat(
            [clip_log_mel(audio.x[i : i + 256], spec) for i in range(0, len(audio), 256)]
        )
    x = to_view(mel, spec).float().unsqueeze(1)  # (N, M, frames) -> (N, 1, M, frames)
    return AudioDataset(mel_view_info(spec), x, audio.y, audio.speaker)


def audio_info_of(spec: str) -> DataInfo:
    """The audio a decoded view image is: the base set's info with ``frames * hop`` samples."""
    s = mel_settings(spec)
    base = audio_info(base_spec(spec))
    return DataInfo(
        name=base.name,
        kind="audio",
        shape=(s["frames"] * s["hop"],),
        n_classes=base.n_classes,
        class_names=base.class_names,
        sample_rate=base.sample_rate,
    )


def view_to_audio(
    x: Tensor,
    spec: str,
    vocoder: Callable[[Tensor], Tensor] | None = None,
    n_iter: int | None = None,
) -> Tensor:
    """View images ``(B, 1, M, frames)`` -> waveforms ``(B, frames * hop)`` in [-1, 1]: by
    ``vocoder`` (a callable from log-mel ``(B, M, frames)``, e.g. a HiFi-GAN's ``vocode``) or by
    fast Griffin-Lim (``n_iter`` iterations, default :data:`N_ITER`) from the mel's non-negative
    least-squares magnitude."""
    s = mel_settings(spec)
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, s["n_mels"], s["frames"]):
        raise DataError(
            f"Mel-view images of {spec!r} have shape (B, 1, {s['n_mels']}, {s['frames']}), "
            f"not {tuple(x.shape)}."
        )
    mel = from_view(x.detach().double().cpu()[:, 0], spec)  # (B, M, frames)
    if vocoder is not None:
        with torch.no_grad():
            y = vocoder(mel.float())
    else:
        y = griffin_lim_log_mel(
            mel, s["sample_rate"], s["n_fft"], s["hop"], n_iter=n_iter or N_ITER
        )  # (B, frames * hop)
    return y.float().clamp(-1.0, 1.0)
