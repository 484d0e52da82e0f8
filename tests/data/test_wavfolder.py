"""``folder:`` of WAV files the test writes itself: every hostile file converted or skipped."""

import warnings

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from genzoo.core.errors import DataError, GenzooWarning
from genzoo.data import dataset_info, load_dataset


def _sine(rate: int, n: int, f: float, a: float = 0.5) -> np.ndarray:
    return a * np.sin(2 * np.pi * f * np.arange(n) / rate)


def _peak_hz(x: torch.Tensor, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x.numpy()))
    return float(spectrum.argmax() * rate / x.shape[0])


@pytest.fixture
def folder(tmp_path):
    """train/{hi,lo} and test/{hi,lo}; train holds every kind of file the issue names."""
    sf = pytest.importorskip("soundfile")
    for d in ("train/hi", "train/lo", "test/hi", "test/lo"):
        (tmp_path / d).mkdir(parents=True)
    tr = tmp_path / "train"
    # 8-bit unsigned, half a second: centred between zeros
    wavfile.write(tr / "hi/a8bit.wav", 8000, (_sine(8000, 4000, 1000) * 127 + 128).astype(np.uint8))
    # 24-bit stereo at 16 kHz, 1.5 s: mono mix (mean 0.4), resampled, middle second kept
    stereo = np.stack([_sine(16000, 24000, 600, 0.6), _sine(16000, 24000, 600, 0.2)], 1)
    sf.write(tr / "hi/b24stereo.wav", stereo, 16000, subtype="PCM_24")
    nan = _sine(8000, 800, 300).astype(np.float32)
    nan[5] = np.nan
    wavfile.write(tr / "hi/cnan.wav", 8000, nan)
    wavfile.write(tr / "lo/d16.wav", 8000, (_sine(8000, 8000, 250) * 32767).astype(np.int16))
    wavfile.write(tr / "lo/eempty.wav", 8000, np.zeros(0, np.int16))
    wavfile.write(tmp_path / "full.wav", 8000, (_sine(8000, 1000, 250) * 32767).astype(np.int16))
    (tr / "lo/ftruncated.wav").write_bytes((tmp_path / "full.wav").read_bytes()[:600])
    (tmp_path / "full.wav").unlink()
    (tr / "lo/gtext.wav").write_text("not a wav file")
    wavfile.write(tmp_path / "test/hi/h.wav", 8000, _sine(8000, 8000, 1000).astype(np.float32))
    wavfile.write(tmp_path / "test/lo/i.wav", 8000, _sine(8000, 8000, 250).astype(np.float32))
    return tmp_path


def test_wav_folder_converts_or_skips_each_file_with_one_sentence(folder):
    info = dataset_info(f"folder:{folder}")
    assert info.kind == "audio" and info.shape == (8000,) and info.sample_rate == 8000
    assert info.class_names == ("hi", "lo")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train = load_dataset(f"folder:{folder}", "train")
    said = [str(w.message) for w in caught]
    skipped = [str(w.message) for w in caught if issubclass(w.category, GenzooWarning)]
    assert len(skipped) == 3 and len(said) == 4  # NaN, empty and text skipped; truncation kept
    for name, why in (("cnan", "NaN"), ("eempty", "no samples"), ("gtext", "not a readable")):
        assert sum(f"{name}.wav" in m and why in m for m in skipped) == 1
    assert sum("ftruncated.wav' is truncated" in m for m in said) == 1
    assert all(m.endswith("skipped.") for m in skipped)  # one sentence each, saying so
    assert train.x.shape == (4, 8000) and train.x.dtype == torch.float32
    assert train.y.tolist() == [0, 0, 1, 1]  # labels from the sub-folders' sorted names
    a8, b24, d16, trunc = train.x
    # the 8-bit clip (4000 samples) is centred: 2000 zeros on each side, the sine within a step
    assert a8[:2000].abs().max() == 0 and a8[6000:].abs().max() == 0
    np.testing.assert_allclose(a8[2000:6000].numpy(), _sine(8000, 4000, 1000), atol=1.5 / 127)
    # the stereo 16 kHz clip: mean of the channels (amplitude 0.4, not their sum), 600 Hz kept
    assert _peak_hz(b24, 8000) == pytest.approx(600, abs=1)
    assert b24[100:-100].abs().max().item() == pytest.approx(0.4, abs=0.01)
    assert _peak_hz(d16, 8000) == pytest.approx(250, abs=1)
    assert (trunc != 0).sum() <= 278  # the 278 complete samples, centred
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        load_dataset(f"folder:{folder}", "train")
    assert not [w for w in again if issubclass(w.category, GenzooWarning)]  # named once only
    test = load_dataset(f"folder:{folder}?seconds=0.5", "test")
    assert test.x.shape == (2, 4000) and test.y.tolist() == [0, 1]


def test_wav_folder_bad_input_is_one_sentence(tmp_path):
    (tmp_path / "bad.wav").write_text("nope")
    with pytest.raises(DataError, match="rate=N"):
        dataset_info(f"folder:{tmp_path}?rate=fast")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="no usable WAV files"):
            load_dataset(f"folder:{tmp_path}", "train")
