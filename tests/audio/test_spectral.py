"""genzoo.audio.spectral against librosa at torchaudio's own test tolerances, and mu-law."""

import math

import numpy as np
import pytest
import torch

from genzoo.audio import mu_law_decode, mu_law_encode
from genzoo.core.errors import ConfigError

librosa = pytest.importorskip("librosa")
pytest.importorskip("torchaudio")
from genzoo.audio import spectral  # noqa: E402

SR = 16000
N_FFT = 400
HOP = 160


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    """A chirp plus white noise, 0.25 s at 16 kHz (float64)."""
    rng = np.random.default_rng(0)
    t = np.arange(SR // 4) / SR
    x = 0.5 * np.sin(2 * np.pi * (200 * t + 3000 * t**2)) + 0.1 * rng.standard_normal(t.size)
    return x.astype(np.float64)


def test_spectrogram_matches_librosa(signal):
    ours = spectral.spectrogram(torch.from_numpy(signal), N_FFT, HOP, power=2.0).numpy()
    ref = np.abs(librosa.stft(signal, n_fft=N_FFT, hop_length=HOP, pad_mode="reflect")) ** 2
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("scale", ["htk", "slaney"])
@pytest.mark.parametrize("norm", [None, "slaney"])
def test_mel_matches_librosa(signal, scale, norm):
    kw = {"n_fft": N_FFT, "hop_length": HOP, "n_mels": 40}
    ours = spectral.mel_spectrogram(torch.from_numpy(signal), SR, scale=scale, norm=norm, **kw)
    ref = librosa.feature.melspectrogram(
        y=signal, sr=SR, htk=scale == "htk", norm=norm, pad_mode="reflect", power=2.0, **kw
    )
    np.testing.assert_allclose(ours.numpy(), ref, atol=5e-4, rtol=0)
    fb = spectral.mel_filterbank(SR, N_FFT, 40, scale=scale, norm=norm).numpy()
    fb_ref = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=40, htk=scale == "htk", norm=norm)
    np.testing.assert_allclose(fb, fb_ref.T, atol=5e-4 if norm is None else 1e-6, rtol=0)


def test_mfcc_matches_librosa(signal):
    ours = spectral.mfcc(
        torch.from_numpy(signal), SR, n_mfcc=13, n_mels=40, n_fft=N_FFT, hop_length=HOP
    )
    mel = librosa.feature.melspectrogram(
        y=signal,
        sr=SR,
        n_fft=N_FFT,
        hop_length=HOP,
        n_mels=40,
        htk=True,
        norm=None,
        pad_mode="reflect",
    )
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=13, dct_type=2, norm="ortho")
    np.testing.assert_allclose(ours.numpy(), ref, atol=5e-4, rtol=0)


def test_default_mel_convention_is_librosa_default(signal):
    """genzoo's default (Slaney scale, Slaney norm) is librosa's; torchaudio's default differs."""
    ours = spectral.mel_spectrogram(torch.from_numpy(signal), SR, N_FFT, HOP, n_mels=40)
    ref = librosa.feature.melspectrogram(
        y=signal, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=40, pad_mode="reflect"
    )
    np.testing.assert_allclose(ours.numpy(), ref, atol=5e-4, rtol=0)
    htk = spectral.mel_spectrogram(
        torch.from_numpy(signal), SR, N_FFT, HOP, n_mels=40, scale="htk", norm=None
    )
    assert np.abs(htk.numpy() - ref).max() > 1.0  # the two defaults are not interchangeable


@pytest.mark.parametrize("n_fft,hop", [(512, 128), (400, 100), (256, 64)])
def test_istft_inverts_stft(n_fft, hop):
    """A periodic Hann window at 75 % overlap meets NOLA: iSTFT(STFT(x)) = x."""
    x = torch.randn(2, 3001, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = spectral.istft(spectral.stft(x, n_fft, hop), n_fft, hop, length=x.shape[-1])
    assert (y - x).abs().max() < 1e-6


def test_griffin_lim_equals_librosa(signal):
    """Both libraries run the same (fast) Griffin-Lim from zero phase: same waveform."""
    mag = spectral.spectrogram(torch.from_numpy(signal), N_FFT, HOP, power=1.0)
    for momentum in (0.0, 0.99):
        ours = spectral.griffin_lim(
            mag, N_FFT, HOP, n_iter=8, momentum=momentum, length=signal.size
        )
        ref = librosa.griffinlim(
            mag.numpy(),
            n_iter=8,
            hop_length=HOP,
            n_fft=N_FFT,
            momentum=momentum,
            init=None,
            length=signal.size,
            pad_mode="reflect",
        )
        np.testing.assert_allclose(ours.numpy(), ref, atol=1e-4, rtol=0)


def test_fast_griffin_lim_converges_faster(signal):
    x = torch.from_numpy(signal)
    mag = spectral.spectrogram(x, N_FFT, HOP, power=1.0)
    sc = {}
    for m in (0.0, 0.99):
        y = spectral.griffin_lim(mag, N_FFT, HOP, n_iter=30, momentum=m, length=x.numel())
        sc[m] = float(spectral.spectral_convergence(mag, spectral.spectrogram(y, N_FFT, HOP, 1.0)))
    assert sc[0.99] < sc[0.0] < 0


def test_bad_mel_options_are_one_sentence():
    with pytest.raises(ConfigError, match="Unknown mel scale 'bark'"):
        spectral.mel_filterbank(SR, scale="bark")
    with pytest.raises(ConfigError, match="momentum"):
        spectral.griffin_lim(torch.ones(201, 3), 400, momentum=1.0)


def test_mu_law_matches_torchaudio_and_round_trips():
    taf = pytest.importorskip("torchaudio.functional")
    x = torch.linspace(-1, 1, 20001, dtype=torch.float64).float()
    k = mu_law_encode(x)
    assert torch.equal(k, taf.mu_law_encoding(x, 256))
    assert k.min() == 0 and k.max() == 255
    levels = torch.arange(256)
    assert torch.equal(mu_law_encode(mu_law_decode(levels)), levels)  # levels are fixed points
    x_hat = mu_law_decode(k)
    torch.testing.assert_close(x_hat, taf.mu_law_decoding(k, 256), atol=1e-6, rtol=0)
    # within one step: x is at most one level spacing (to either neighbour) from its decoded level
    up = mu_law_decode((k + 1).clamp(max=255)) - x_hat
    down = x_hat - mu_law_decode((k - 1).clamp(min=0))
    step = torch.maximum(up, down)
    assert ((x - x_hat).abs() <= step + 1e-7).all()
    assert math.isclose(float(mu_law_decode(torch.tensor(255))), 1.0, rel_tol=1e-6)


def _mcd_librosa(x: np.ndarray, y: np.ndarray, sr: int, n_fft: int, hop: int) -> float:
    """Kubichek's MCD written out on librosa's MFCCs (the independent implementation)."""
    kw = {"sr": sr, "n_fft": n_fft, "hop_length": hop, "n_mels": 40, "htk": True, "norm": None}

    def cep(w: np.ndarray) -> np.ndarray:
        mel = librosa.feature.melspectrogram(y=w, pad_mode="reflect", **kw)
        c = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=13, dct_type=2, norm="ortho")
        return c[1:] * np.log(10) / 20  # dB of power -> ln of magnitude, c_0 left out

    d = cep(x) - cep(y)  # (12, frames)
    return float(np.mean(10 / np.log(10) * np.sqrt(2 * (d**2).sum(axis=0))))


def test_mel_cepstral_distortion_matches_librosa_and_ignores_gain(signal):
    rng = np.random.default_rng(1)
    other = signal + 0.2 * rng.standard_normal(signal.size)  # a distorted copy
    x, y = torch.from_numpy(signal), torch.from_numpy(other)
    ours = spectral.mel_cepstral_distortion(x[None], y[None], SR, N_FFT, HOP)  # (1,)
    ref = _mcd_librosa(signal, other, SR, N_FFT, HOP)
    assert ours.shape == (1,)
    assert ours.item() == pytest.approx(ref, rel=1e-4)
    assert ours.item() > 0.5  # the distortion is seen
    # a gain moves every mel band's dB by the same amount: only c_0 changes, and c_0 is left out
    assert spectral.mel_cepstral_distortion(x, 0.3 * x, SR, N_FFT, HOP).item() < 1e-3
    with pytest.raises(ConfigError, match="one shape"):
        spectral.mel_cepstral_distortion(x, y[:-1], SR, N_FFT, HOP)
