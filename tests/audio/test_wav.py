"""Hostile WAV files, written by the test itself: each is converted or refused in one sentence."""

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from genzoo.audio import AudioFileError, read_wav, write_wav


def _sine(rate: int, n: int, f: float = 440.0) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * f * np.arange(n) / rate)


def test_write_read_round_trip(tmp_path):
    x = torch.from_numpy(_sine(8000, 800)).float()
    write_wav(tmp_path / "a.wav", x, 8000)
    y, rate = read_wav(tmp_path / "a.wav")
    assert rate == 8000 and y.dtype == torch.float32
    assert (y - x).abs().max() <= 0.5 / 32768 + 1e-7  # 16-bit rounding


@pytest.mark.parametrize(
    "dtype,scale,offset",
    [(np.uint8, 127, 128), (np.int16, 32767, 0), (np.int32, 2**31 - 1, 0), (np.float32, 1, 0)],
)
def test_sample_formats_are_scaled_to_unit_range(tmp_path, dtype, scale, offset):
    x = _sine(8000, 400)
    wavfile.write(tmp_path / "a.wav", 8000, (x * scale + offset).round().astype(dtype))
    y, _ = read_wav(tmp_path / "a.wav")
    assert np.abs(y.numpy() - x).max() < 1.5 / scale + 1e-6


def test_24_bit_and_stereo(tmp_path):
    sf = pytest.importorskip("soundfile")
    left, right = _sine(8000, 400, 300), _sine(8000, 400, 500)
    sf.write(tmp_path / "s.wav", np.stack([left, right], 1), 8000, subtype="PCM_24")
    y, rate = read_wav(tmp_path / "s.wav")
    assert rate == 8000 and y.shape == (400,)
    assert np.abs(y.numpy() - (left + right) / 2).max() < 1e-6  # mono mix at 24-bit precision


def test_other_rate_is_resampled(tmp_path):
    x = _sine(22050, 22050, 440.0)
    wavfile.write(tmp_path / "r.wav", 22050, x.astype(np.float32))
    y, rate = read_wav(tmp_path / "r.wav", sample_rate=8000)
    assert rate == 8000 and y.shape == (8000,)
    spectrum = np.abs(np.fft.rfft(y.numpy()))
    assert abs(spectrum.argmax() - 440) <= 1  # 1 Hz bins: the tone keeps its pitch
    np.testing.assert_allclose(y[100:-100].numpy(), _sine(8000, 8000)[100:-100], atol=2e-3)


def test_unusable_files_are_refused_in_one_sentence(tmp_path):
    wavfile.write(tmp_path / "empty.wav", 8000, np.zeros(0, np.int16))
    with pytest.raises(AudioFileError, match=r"empty\.wav' holds no samples"):
        read_wav(tmp_path / "empty.wav")
    x = _sine(8000, 100).astype(np.float32)
    x[10] = np.nan
    wavfile.write(tmp_path / "nan.wav", 8000, x)
    with pytest.raises(AudioFileError, match="NaN"):
        read_wav(tmp_path / "nan.wav")
    (tmp_path / "text.wav").write_text("not a wav file")
    with pytest.raises(AudioFileError, match="not a readable WAV"):
        read_wav(tmp_path / "text.wav")
    with pytest.raises(AudioFileError, match="does not exist"):
        read_wav(tmp_path / "missing.wav")
    with pytest.raises(AudioFileError, match="NaN or inf"):
        write_wav(tmp_path / "out.wav", torch.tensor([0.0, float("nan")]), 8000)


def test_truncated_file_keeps_its_complete_samples(tmp_path):
    wavfile.write(tmp_path / "full.wav", 8000, (_sine(8000, 1000) * 32767).astype(np.int16))
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:600])  # header (44 bytes) + 278 samples
    with pytest.warns(UserWarning, match=r"cut\.wav' is truncated; kept its 278"):
        y, _ = read_wav(tmp_path / "cut.wav")
    assert y.shape == (278,)
    (tmp_path / "header.wav").write_bytes(data[:30])  # cut inside the header
    with pytest.raises(AudioFileError, match=r"header\.wav' is not a readable WAV"):
        read_wav(tmp_path / "header.wav")
