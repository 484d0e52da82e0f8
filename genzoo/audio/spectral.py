"""Spectral analysis and phase reconstruction: STFT, mel, MFCC, Griffin-Lim.

**The one convention** (every genzoo function here, and what the tests check against librosa):

- STFT: a periodic Hann window of ``win_length = n_fft`` samples, hop ``n_fft // 4`` unless given,
  frames centred on ``t * hop`` with reflect padding, one-sided (``n_fft // 2 + 1`` bins), no
  normalisation: torchaudio's ``Spectrogram`` defaults, and librosa's ``stft`` with
  ``pad_mode="reflect"`` (librosa pads with zeros by default since 0.10: the edge frames differ).
- Magnitude spectrogram ``|X|^power`` (power 2: energy; power 1: magnitude).
- Mel filterbank: ``scale`` "slaney" (linear below 1 kHz, logarithmic above; librosa's default) or
  "htk" (``2595 log10(1 + f / 700)``; torchaudio's default), ``norm`` None (triangles of peak 1)
  or "slaney" (each triangle divided by its width in Hz: constant energy per band). genzoo's
  default is **Slaney scale with Slaney norm**, librosa's and HiFi-GAN's (arXiv:2010.05646)
  choice; torchaudio's ``MelSpectrogram`` defaults to HTK without norm, so the two libraries
  differ unless told. Pass ``scale`` and ``norm`` explicitly when comparing with another code.
- log-mel: ``ln(max(mel, eps))`` (natural log, the vocoder literature's unit); MFCC: DCT-II with
  orthonormal scaling of the mel power in dB (``10 log10(max(mel, 1e-10))``, floored 80 dB below
  the maximum), librosa's ``feature.mfcc`` and torchaudio's ``MFCC``.
- Vocoder framing (:func:`vocoder_log_mel`, HiFi-GAN's, arXiv:2010.05646): the waveform is
  reflect-padded by ``(n_fft - hop) / 2`` on each side and framed without centring, so a clip of
  ``T`` samples has exactly ``T // hop`` frames and a vocoder's ``frames * hop`` output samples
  line up with it; the *magnitude* (power 1) goes through the mel filterbank, then
  ``ln(max(mel, 1e-5))``.
- Griffin-Lim (Griffin & Lim 1984) with the momentum ``alpha`` of the fast variant (Perraudin et
  al. 2013, "A fast Griffin-Lim algorithm"): ``alpha = 0`` is plain Griffin-Lim; torchaudio and
  librosa both apply ``alpha / (1 + alpha)`` to the previous projection, and so does genzoo (they
  run the same iteration: a test checks them equal). The phase starts at zero, so the result
  is deterministic.

The filterbanks, DCT, dB conversion and Griffin-Lim are torchaudio's functional API (the
``audio`` extra); the STFT is ``torch.stft``. Nothing here is written by hand but the glue and
the spectral convergence (one line) and the mel-cepstral distortion (a formula on
:func:`mfcc`).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from genzoo.core.errors import ConfigError, choices

MelScale = Literal["slaney", "htk"]
MelNorm = Literal["slaney"] | None
MEL_SCALES = ("slaney", "htk")
MEL_NORMS = (None, "slaney")
DEFAULT_SCALE: MelScale = "slaney"  # genzoo's mel convention (see the module docstring)
DEFAULT_NORM: MelNorm = "slaney"


def torchaudio_functional() -> Any:
    """torchaudio's functional API, or one sentence saying how to install it."""
    try:
        import torchaudio.functional as taf
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ConfigError(
            f"Spectral audio features need torchaudio ({e}); pip install 'genzoo[audio]'."
        ) from e
    return taf


def _hop(n_fft: int, hop_length: int | None) -> int:
    return hop_length if hop_length is not None else n_fft // 4


def _window(n_fft: int, x: Tensor) -> Tensor:
    dtype = x.dtype if x.is_floating_point() else torch.float32
    if dtype.is_complex:
        dtype = x.real.dtype
    return torch.hann_window(n_fft, periodic=True, dtype=dtype, device=x.device)


def stft(x: Tensor, n_fft: int = 512, hop_length: int | None = None) -> Tensor:
    """Complex STFT of waveforms ``(..., T)`` -> ``(..., n_fft // 2 + 1, frames)``."""
    return torch.stft(
        x,
        n_fft,
        hop_length=_hop(n_fft, hop_length),
        window=_window(n_fft, x),
        center=True,
        pad_mode="reflect",
        normalized=False,
        onesided=True,
        return_complex=True,
    )


def istft(
    spec: Tensor, n_fft: int = 512, hop_length: int | None = None, length: int | None = None
) -> Tensor:
    """Inverse of :func:`stft` (weighted overlap-add; exact where the window meets NOLA)."""
    return torch.istft(
        spec,
        n_fft,
        hop_length=_hop(n_fft, hop_length),
        window=_window(n_fft, spec),
        center=True,
        normalized=False,
        onesided=True,
        length=length,
    )


def spectrogram(
    x: Tensor, n_fft: int = 512, hop_length: int | None = None, power: float = 2.0
) -> Tensor:
    """``|STFT(x)|^power``: ``(..., T)`` -> ``(..., n_fft // 2 + 1, frames)``."""
    return stft(x, n_fft, hop_length).abs().pow(power)


def mel_filterbank(
    sample_rate: int,
    n_fft: int = 512,
    n_mels: int = 80,
    f_min: float = 0.0,
    f_max: float | None = None,
    scale: MelScale = DEFAULT_SCALE,
    norm: MelNorm = DEFAULT_NORM,
) -> Tensor:
    """Triangular mel filters ``(n_fft // 2 + 1, n_mels)``, float64: torchaudio's
    ``melscale_fbanks``, computed in float64 (its float32 grid is off by ~1e-5 relative)."""
    if scale not in MEL_SCALES:
        raise ConfigError(f"Unknown mel scale {scale!r}; choose {choices(MEL_SCALES)}.")
    if norm not in MEL_NORMS:
        raise ConfigError(f"Unknown mel norm {norm!r}; choose None or 'slaney'.")
    taf = torchaudio_functional()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # melscale_fbanks builds its grids in the default dtype
    try:
        return taf.melscale_fbanks(
            n_fft // 2 + 1,
            f_min,
            f_max if f_max is not None else sample_rate / 2,
            n_mels,
            sample_rate,
            norm=norm,
            mel_scale=scale,
        )
    finally:
        torch.set_default_dtype(previous)


def mel_spectrogram(
    x: Tensor,
    sample_rate: int,
    n_fft: int = 512,
    hop_length: int | None = None,
    n_mels: int = 80,
    f_min: float = 0.0,
    f_max: float | None = None,
    scale: MelScale = DEFAULT_SCALE,
    norm: MelNorm = DEFAULT_NORM,
    power: float = 2.0,
) -> Tensor:
    """Mel spectrogram ``(..., n_mels, frames)`` of waveforms ``(..., T)``."""
    spec = spectrogram(x, n_fft, hop_length, power)  # (..., F, frames)
    fb = mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max, scale, norm).to(spec)  # (F, M)
    return (spec.transpose(-1, -2) @ fb).transpose(-1, -2)  # (..., frames, M) -> (..., M, frames)


def log_mel(x: Tensor, sample_rate: int, eps: float = 1e-5, **mel: Any) -> Tensor:
    """``ln(max(mel, eps))`` of :func:`mel_spectrogram` (keywords as there)."""
    return mel_spectrogram(x, sample_rate, **mel).clamp_min(eps).log()


def vocoder_stft(x: Tensor, n_fft: int = 256, hop_length: int = 64) -> Tensor:
    """The complex STFT in the vocoder framing (see the module docstring): waveforms ``(..., T)``
    -> ``(..., n_fft // 2 + 1, T // hop)``, frame ``t`` centred at sample ``t * hop + hop / 2``.
    :func:`vocoder_istft` inverts it exactly."""
    if (n_fft - hop_length) % 2 or hop_length > n_fft:
        raise ConfigError(
            f"n_fft - hop ({n_fft} - {hop_length}) must be even and >= 0 for vocoder framing."
        )
    pad = (n_fft - hop_length) // 2
    lead = x.shape[:-1]
    flat = x.reshape(-1, 1, x.shape[-1])  # (N, 1, T): F.pad's reflect mode wants a channel axis
    flat = torch.nn.functional.pad(flat, (pad, pad), mode="reflect")[:, 0]  # (N, T + 2 pad)
    spec = torch.stft(
        flat,
        n_fft,
        hop_length=hop_length,
        window=_window(n_fft, flat),
        center=False,
        normalized=False,
        onesided=True,
        return_complex=True,
    )  # (N, F, T // hop)
    return spec.reshape(*lead, *spec.shape[-2:])


def vocoder_istft(spec: Tensor, n_fft: int = 256, hop_length: int = 64) -> Tensor:
    """Inverse of :func:`vocoder_stft`: complex spectrograms ``(..., n_fft // 2 + 1, frames)``
    -> waveforms ``(..., frames * hop)`` by weighted overlap-add (Vocos' "same" padding,
    arXiv:2306.00814): each frame's ``irfft`` times the window, summed at ``t * hop``, divided by
    the summed squared window, and ``(n_fft - hop) / 2`` samples cut from each end.

    Written on ``torch.fft.irfft`` and ``F.fold`` rather than ``torch.istft`` because
    ``torch.istft`` frames either centred on ``t * hop`` (``center=True``: half a hop off this
    framing, one hop short) or not padded at all, and then refuses the edges where the Hann
    window's overlap-add envelope is 0 (the NOLA check), although the cut ends never use them.
    """
    if (n_fft - hop_length) % 2 or hop_length > n_fft:
        raise ConfigError(
            f"n_fft - hop ({n_fft} - {hop_length}) must be even and >= 0 for vocoder framing."
        )
    lead, frames = spec.shape[:-2], spec.shape[-1]
    flat = spec.reshape(-1, *spec.shape[-2:])  # (N, F, frames)
    win = _window(n_fft, flat.real)  # (n_fft,), in the real dtype of spec
    chunks = torch.fft.irfft(flat, n=n_fft, dim=-2) * win[:, None]  # (N, n_fft, frames)
    total = (frames - 1) * hop_length + n_fft
    fold = {"output_size": (1, total), "kernel_size": (1, n_fft), "stride": (1, hop_length)}
    y = torch.nn.functional.fold(chunks, **fold)[:, 0, 0]  # (N, total): the overlap-add
    env = torch.nn.functional.fold(win.square()[None, :, None].expand(1, -1, frames), **fold)
    pad = (n_fft - hop_length) // 2
    y = y[:, pad : total - pad] / env[0, 0, 0, pad : total - pad]  # (N, frames * hop)
    return y.reshape(*lead, frames * hop_length)


def griffin_lim_vocoder(
    magnitude: Tensor,
    n_fft: int = 256,
    hop_length: int = 64,
    n_iter: int = 100,
    momentum: float = 0.99,
    phase: Tensor | None = None,
) -> Tensor:
    """Fast Griffin-Lim in the vocoder framing, from a given initial phase: waveforms
    ``(..., frames * hop)`` whose :func:`vocoder_stft` magnitude approaches ``magnitude``
    ``(..., F, frames)``, starting from ``phase`` (same shape; ``None``: zero phase).

    The iteration is torchaudio's ``griffinlim`` (the momentum ``alpha / (1 + alpha)`` on the
    previous projection, Perraudin et al. 2013), written here on :func:`vocoder_stft` /
    :func:`vocoder_istft` because neither torchaudio's nor librosa's accepts an initial phase
    (both start from zero or random phase) or this framing. A consistent spectrogram of the right
    magnitude is a fixed point (tested).
    """
    if not 0.0 <= momentum < 1.0:
        raise ConfigError(f"Griffin-Lim momentum must be in [0, 1), not {momentum}.")
    angles = (
        torch.polar(torch.ones_like(magnitude), phase)
        if phase is not None
        else torch.ones_like(magnitude, dtype=torch.complex128 if magnitude.dtype == torch.float64
                             else torch.complex64)
    )  # fmt: skip
    previous = torch.zeros_like(angles)
    for _ in range(n_iter):
        rebuilt = vocoder_stft(
            vocoder_istft(magnitude * angles, n_fft, hop_length), n_fft, hop_length
        )
        angles = rebuilt - previous * (momentum / (1 + momentum))
        angles = angles / (angles.abs() + 1e-16)
        previous = rebuilt
    return vocoder_istft(magnitude * angles, n_fft, hop_length)


def vocoder_log_mel(
    x: Tensor,
    sample_rate: int,
    n_fft: int = 256,
    hop_length: int = 64,
    n_mels: int = 64,
    eps: float = 1e-5,
    fb: Tensor | None = None,
) -> Tensor:
    """HiFi-GAN's log-mel ``(..., n_mels, T // hop)`` of waveforms ``(..., T)`` (see the module
    docstring); ``fb``: a precomputed :func:`mel_filterbank` ``(F, M)`` to skip building it."""
    spec = vocoder_stft(x, n_fft, hop_length).abs()  # (..., F, T // hop)
    if fb is None:
        fb = mel_filterbank(sample_rate, n_fft, n_mels)
    mel = (spec.transpose(-1, -2) @ fb.to(spec)).transpose(-1, -2)  # (..., M, frames)
    return mel.clamp_min(eps).log()


def pinv_mel_magnitude(log_mel: Tensor, fb: Tensor) -> Tensor:
    """A magnitude ``(..., F, frames)`` of log-mel spectrograms ``(..., M, frames)`` through the
    filterbank ``fb`` ``(F, M)``: its pseudo-inverse (the minimum-norm least-squares solution,
    what torchaudio's ``InverseMelScale`` computes) clamped at 0."""
    inv = torch.linalg.pinv(fb.double().T).to(log_mel.dtype)  # (F, M)
    return (inv @ log_mel.exp()).clamp_min(0.0)  # (F, M) @ (..., M, frames)


def power_to_db(spec: Tensor, top_db: float | None = 80.0) -> Tensor:
    """``10 log10(max(spec, 1e-10))``, floored ``top_db`` below the maximum of each example."""
    return torchaudio_functional().amplitude_to_DB(
        spec, multiplier=10.0, amin=1e-10, db_multiplier=0.0, top_db=top_db
    )


def mfcc(
    x: Tensor,
    sample_rate: int,
    n_mfcc: int = 13,
    n_mels: int = 40,
    n_fft: int = 512,
    hop_length: int | None = None,
    scale: MelScale = "htk",
    norm: MelNorm = None,
) -> Tensor:
    """Mel-frequency cepstral coefficients ``(..., n_mfcc, frames)``: the orthonormal DCT-II of
    the mel power in dB (HTK filterbank without norm by default, as in HTK and torchaudio)."""
    mel = mel_spectrogram(x, sample_rate, n_fft, hop_length, n_mels, scale=scale, norm=norm)
    db = power_to_db(mel)  # (..., M, frames)
    dct = torchaudio_functional().create_dct(n_mfcc, n_mels, "ortho").to(db)  # (M, n_mfcc)
    return (db.transpose(-1, -2) @ dct).transpose(-1, -2)  # (..., frames, n_mfcc) -> (..., n, fr)


def griffin_lim(
    magnitude: Tensor,
    n_fft: int = 512,
    hop_length: int | None = None,
    n_iter: int = 100,
    momentum: float = 0.99,
    length: int | None = None,
) -> Tensor:
    """A waveform ``(..., T)`` whose STFT magnitude approaches ``magnitude`` ``(..., F, frames)``.

    ``momentum`` 0 is Griffin & Lim's algorithm; 0.99 the fast Griffin-Lim of Perraudin et al.
    (both run by torchaudio's ``griffinlim``, from zero phase).
    """
    if not 0.0 <= momentum < 1.0:
        raise ConfigError(f"Griffin-Lim momentum must be in [0, 1), not {momentum}.")
    return torchaudio_functional().griffinlim(
        magnitude,
        _window(n_fft, magnitude),
        n_fft,
        _hop(n_fft, hop_length),
        n_fft,
        1.0,
        n_iter,
        momentum,
        length,
        False,
    )


def spectral_convergence(reference: Tensor, estimate: Tensor) -> Tensor:
    """``20 log10(||S - S_hat||_F / ||S||_F)`` in dB per example of two magnitude spectrograms
    ``(..., F, frames)`` (lower is better; -20 dB: the error is a tenth of the signal)."""
    err = (reference - estimate).flatten(-2).norm(dim=-1)
    return 20 * torch.log10(err / reference.flatten(-2).norm(dim=-1))


def log_spectral_distance(reference: Tensor, estimate: Tensor, eps: float = 1e-8) -> Tensor:
    """Log-spectral distance in dB per example of two magnitude spectrograms ``(..., F, frames)``:
    per frame ``sqrt(mean_f (20 log10((S + eps) / (S_hat + eps)))^2)``, averaged over frames
    (0 for identical spectra; lower is better)."""
    diff = 20 * torch.log10((reference + eps) / (estimate + eps))  # (..., F, frames), dB
    return diff.pow(2).mean(dim=-2).sqrt().mean(dim=-1)


def mel_cepstral_distortion(
    reference: Tensor,
    estimate: Tensor,
    sample_rate: int,
    n_fft: int = 256,
    hop_length: int | None = None,
    n_mfcc: int = 13,
    n_mels: int = 40,
) -> Tensor:
    """Mel-cepstral distortion in dB per example of two time-aligned waveforms ``(..., T)``.

    Kubichek, "Mel-cepstral distance measure for objective speech quality assessment" (1993), in
    the form the speech-synthesis literature reports (Kominek, Schultz & Black 2008)::

        MCD = (10 / ln 10) sqrt(2 sum_{d=1}^{D} (c_d - c_hat_d)^2),  averaged over frames

    with ``c_0`` (the frame's energy) left out. The cepstra ``c_d`` are genzoo's :func:`mfcc`
    (HTK mel, no norm, orthonormal DCT-II of the mel power in dB) taken to natural-log
    magnitude units, ``c = mfcc * ln(10) / 20``, the unit the constant ``10 / ln 10`` assumes;
    every frame counts (no voice-activity selection) and no time warping is done, since a
    vocoder's output is aligned with its input. MCD values depend on these choices (cepstra,
    order ``D = n_mfcc - 1``, frames): compare numbers measured with the same ones only.
    """
    if reference.shape != estimate.shape:
        raise ConfigError(
            f"mel-cepstral distortion compares waveforms of one shape, got "
            f"{tuple(reference.shape)} and {tuple(estimate.shape)}."
        )
    kw = {"n_mfcc": n_mfcc, "n_mels": n_mels, "n_fft": n_fft, "hop_length": hop_length}
    to_ln = math.log(10.0) / 20.0  # dB of power -> natural log of magnitude
    c = mfcc(reference, sample_rate, **kw)[..., 1:, :] * to_ln  # (..., D, frames)
    c_hat = mfcc(estimate, sample_rate, **kw)[..., 1:, :] * to_ln
    per_frame = (10.0 / math.log(10.0)) * (2.0 * (c - c_hat).pow(2).sum(dim=-2)).sqrt()
    return per_frame.mean(dim=-1)


def griffin_lim_log_mel(
    log_mel: Tensor,
    sample_rate: int,
    n_fft: int = 256,
    hop_length: int = 64,
    n_iter: int = 100,
    momentum: float = 0.99,
    fb: Tensor | None = None,
) -> Tensor:
    """Waveforms ``(..., frames * hop)`` from :func:`vocoder_log_mel` spectrograms ``(..., M,
    frames)``: each frame's magnitude by non-negative least squares through the mel filterbank
    (``scipy.optimize.nnls``, exact active-set NNLS; librosa's ``mel_to_stft`` solves the same
    problem iteratively, far slower on noisy samples), then :func:`griffin_lim`, shifted by
    ``hop / 2`` because a vocoder frame ``t`` is centred at ``t * hop + hop / 2``."""
    from scipy.optimize import nnls

    n_mels, frames = log_mel.shape[-2:]
    if fb is None:
        fb = mel_filterbank(sample_rate, n_fft, n_mels)
    mel = log_mel.detach().double().cpu().exp().reshape(-1, n_mels, frames)  # (N, M, frames)
    a = fb.double().T.numpy()  # (M, F)
    cols = mel.transpose(1, 2).reshape(-1, n_mels).numpy()  # (N * frames, M)
    mag = torch.tensor(np.stack([nnls(a, c)[0] for c in cols]))  # (N * frames, F)
    mag = mag.reshape(mel.shape[0], frames, -1).transpose(1, 2)  # (N, F, frames)
    length = frames * hop_length
    y = griffin_lim(mag, n_fft, hop_length, n_iter, momentum)  # (N, (frames - 1) hop), centred
    half = hop_length // 2  # vocoder frame alignment; zeros fill the last half hop
    y = torch.nn.functional.pad(y, (half, length - y.shape[-1] - half))  # (N, frames * hop)
    return y.reshape(*log_mel.shape[:-2], length)
