"""mel:speech-digits: a log-mel image view of audio whose scaling inverts exactly, whose values
are genzoo.audio's (and librosa's) log-mel, and whose samples decode to WAVs of frames * hop."""

import math

import numpy as np
import pytest
import torch

from genzoo.audio.spectral import vocoder_log_mel
from genzoo.core.errors import DataError
from genzoo.data import dataset_info, list_datasets, load_dataset
from genzoo.data import melview as mv
from genzoo.data.audio import AudioDataset, audio_info

SPEC = "mel:speech-digits"


def fake_speech(n: int = 6, rate: int = 8000) -> AudioDataset:
    """Stand-ins for spoken digits (no eSpeak): chirps under an envelope, noise, labels 0..n-1."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(rate, dtype=torch.float64) / rate
    f0 = 150 + 400 * torch.rand(n, 1, generator=g, dtype=torch.float64)
    env = torch.exp(-(((t - 0.5) / 0.15) ** 2))  # (T,)
    wave = torch.sin(2 * math.pi * (f0 * t + 300 * t**2)) * env  # (n, T)
    wave = 0.8 * wave + 1e-3 * torch.randn(n, rate, generator=g, dtype=torch.float64)
    info = audio_info("speech-digits" if rate == 8000 else f"speech-digits?rate={rate}")
    y = torch.arange(n) % 10
    return AudioDataset(info, wave.float(), y, torch.zeros(n, dtype=torch.long))


@pytest.fixture
def tiny_view(monkeypatch):
    monkeypatch.setattr(mv, "load_audio", lambda spec, split: fake_speech())
    return load_dataset(SPEC, "train")


def test_view_is_declared_and_its_scaling_inverts_exactly():
    assert SPEC in list_datasets()
    info = dataset_info(SPEC)
    assert (info.kind, info.shape, info.levels, info.n_classes) == ("images", (1, 32, 32), None, 10)
    s = mv.mel_settings("mel:speech-digits?rate=16000")
    assert (s["hop"], s["n_fft"], s["frames"] * s["hop"]) == (500, 2000, 16000)
    lo, hi = mv.scaling(SPEC)
    m = lo + (hi - lo) * torch.rand(4, 32, 32, dtype=torch.float64)
    v = mv.to_view(m, SPEC)
    assert v.min() >= -1 and v.max() <= 1
    torch.testing.assert_close(mv.from_view(v, SPEC), m, rtol=0, atol=1e-12)
    # hi bounds every clip in [-1, 1]: a full-scale square wave, the loudest there is, stays under
    t = torch.arange(8000, dtype=torch.float64)
    square = torch.sign(torch.sin(2 * math.pi * 500 * t / 8000 + 0.1))
    loud = mv.clip_log_mel(square, SPEC)
    assert loud.max() <= hi and mv.to_view(loud, SPEC).max() > 0.5  # a bound, and not a loose one


def test_view_holds_the_log_mel_of_each_clip_and_librosas(tiny_view):
    librosa = pytest.importorskip("librosa")
    clips = fake_speech()
    assert tiny_view.x.shape == (6, 1, 32, 32) and tiny_view.x.dtype == torch.float32
    assert torch.equal(tiny_view.y, clips.y)  # labels kept
    s = mv.mel_settings(SPEC)
    ours = vocoder_log_mel(clips.x.double(), 8000, s["n_fft"], s["hop"], s["n_mels"])
    back = mv.from_view(tiny_view.x[:, 0].double(), SPEC)
    torch.testing.assert_close(back, ours, rtol=0, atol=1e-4)  # float32 storage of [-1, 1]
    pad = (s["n_fft"] - s["hop"]) // 2
    padded = np.pad(clips.x.double().numpy(), ((0, 0), (pad, pad)), mode="reflect")
    ref = librosa.feature.melspectrogram(
        y=padded, sr=8000, n_fft=s["n_fft"], hop_length=s["hop"], center=False, power=1.0,
        n_mels=32, htk=False, norm="slaney",
    )  # fmt: skip
    ref = np.log(np.maximum(ref, 1e-5))
    np.testing.assert_allclose(back.numpy(), ref, atol=5e-4)


def test_sampled_view_images_decode_to_wavs_of_frames_times_hop(tiny_view, tmp_path, monkeypatch):
    import genzoo
    from genzoo.audio import read_wav
    from genzoo.runs.sample import sample_to_file

    run = genzoo.train(
        "edm",
        SPEC,
        steps=1,
        out=tmp_path / "run",
        overrides={"progress": False, "tensorboard": False, "n_samples": 1, "batch_size": 4,
                   "class_conditional": True, "channels": 8, "channel_mult": [1],
                   "sample_steps": 2},
    )  # fmt: skip
    monkeypatch.setattr(mv, "N_ITER", 4)  # the length does not depend on the iterations
    out = sample_to_file(run, 2, f"{tmp_path}/wavs/", steps=2, label=3)
    files = sorted(out.glob("*.wav"))
    assert len(files) == 2
    s = mv.mel_settings(SPEC)
    for f in files:
        wave, rate = read_wav(f)
        assert (wave.shape[-1], rate) == (s["frames"] * s["hop"], 8000)
    # the decoder itself: Griffin-Lim from a clip's view re-analyses to nearly that clip's log-mel
    y = mv.view_to_audio(tiny_view.x[:2], SPEC, n_iter=25)
    assert y.shape == (2, s["frames"] * s["hop"])
    again = mv.clip_log_mel(y.double(), SPEC)
    want = mv.from_view(tiny_view.x[:2, 0].double(), SPEC)
    loud = want > want.max() - 4  # bands within 4 nats of the peak (the rest is the noise floor)
    own = (again - want)[loud].abs().mean()
    swapped = (again.flip(0) - want)[loud].abs().mean()  # the other clip's decoding
    assert own < 0.6 and own < swapped / 2, (own, swapped)


def test_bad_view_input_is_one_sentence():
    with pytest.raises(
        DataError, match=r"Unknown base 'tones' of the mel view 'mel:tones'; choose"
    ):
        dataset_info("mel:tones")
    with pytest.raises(DataError, match="rate='44100' of 'speech-digits' is not offered"):
        dataset_info("mel:speech-digits?rate=44100")
    with pytest.raises(DataError, match=r"have shape \(B, 1, 32, 32\), not \(2, 32, 32\)"):
        mv.view_to_audio(torch.zeros(2, 32, 32), SPEC)


def test_a_vocoder_with_other_mel_settings_is_one_sentence(tmp_path):
    import yaml

    from genzoo.core.errors import ConfigError
    from genzoo.runs.sample import mel_vocoder

    run = tmp_path / "hifigan"
    run.mkdir()
    info = audio_info("speech-digits").to_dict()
    cfg = {"model": "hifigan", "data": "speech-digits", "data_info": info,
           "model_config": {"n_fft": 256, "hop": 64, "n_mels": 64}}  # fmt: skip
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"n_fft=256, hop=64, n_mels=64, but 'mel:speech-digits' "
                       r"has n_fft=1000, hop=250, n_mels=32"):  # fmt: skip
        mel_vocoder(run, SPEC)
