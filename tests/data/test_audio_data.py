"""speech-digits and tones: deterministic, exact labels, speakers disjoint between the splits."""

import numpy as np
import pytest
import torch

from genzoo.core.errors import DataError
from genzoo.data import dataset_info, list_datasets, load_dataset
from genzoo.data.audio import (
    DIGITS,
    N_TRAIN_SPEAKERS,
    REPEATS,
    TIMBRES,
    build_speech_digits,
    make_tones,
    note_frequency,
    speakers,
    speech_plan,
)
from genzoo.data.base import DataInfo


def test_audio_specs_are_listed_and_declared():
    assert {"speech-digits", "tones"} <= set(list_datasets())
    info = dataset_info("speech-digits?rate=16000")
    assert (info.kind, info.shape, info.sample_rate, info.n_classes) == (
        "audio",
        (16000,),
        16000,
        10,
    )
    assert DataInfo.from_dict(info.to_dict()) == info  # stored with the run, read back
    assert "sample_rate" not in dataset_info("digits").to_dict()  # other sets: unchanged
    with pytest.raises(DataError, match="rate='44100' of 'tones' is not offered"):
        dataset_info("tones?rate=44100")
    with pytest.raises(DataError, match="Unknown option 'size' of 'speech-digits'"):
        dataset_info("speech-digits?size=3")


def test_tones_have_exact_pitch_labels_and_are_deterministic():
    test = load_dataset("tones", "test")
    assert test.x.shape == (360, 4000) and test.x.dtype == torch.float32
    assert test.x.abs().max() <= 1.0
    spectrum = np.abs(np.fft.rfft(test.x.numpy(), axis=1))  # (N, F): 2 Hz bins
    dominant = np.fft.rfftfreq(4000, 1 / 8000)[spectrum.argmax(1)]
    cents = 1200 * np.log2(dominant / note_frequency(test.y.numpy()))
    assert np.abs(cents).max() < 25  # every timbre, every note: within a quarter semitone
    assert set(test.y.tolist()) == set(range(12))
    x2, y2 = make_tones(360, 8000, 12)
    assert torch.equal(test.x, x2) and torch.equal(test.y, y2)
    train_x, _ = make_tones(30, 8000, 11)  # the train split's seed
    assert not torch.equal(train_x, test.x[:30])
    assert len(TIMBRES) == 3


def test_speakers_are_disjoint_between_splits():
    spk = speakers()
    assert spk == speakers()  # deterministic
    train = [s for s in spk if s["split"] == 0]
    test = [s for s in spk if s["split"] == 1]
    assert len(train) == N_TRAIN_SPEAKERS and len(test) == len(spk) - N_TRAIN_SPEAKERS > 0
    variant = lambda s: s["voice"].split("+")[1]  # noqa: E731
    assert not {variant(s) for s in train} & {variant(s) for s in test}  # no shared voice
    plan = speech_plan()
    assert len(plan) == len(spk) * len(DIGITS) * REPEATS
    assert all(p["digit"] in range(10) for p in plan)


def test_speech_synthesis_is_deterministic():
    pytest.importorskip("espeakng_loader")
    plan = [speech_plan()[i] for i in (0, 100, 1100)]  # train and test speakers
    a = build_speech_digits(8000, plan)
    b = build_speech_digits(8000, plan[::-1])  # another order, other calls before: same clips
    assert torch.equal(a["x"], b["x"].flip(0))
    assert a["x"].shape == (3, 8000) and a["x"].abs().max() <= 1.0
    assert a["y"].tolist() == [p["digit"] for p in plan]
    assert a["split"].tolist() == [0, 0, 1]
    for clip in a["x"]:  # the word is centred in its second: only noise at the edges
        peak = clip.abs().max()
        assert 0.4 <= peak <= 1.0
        assert clip[:200].abs().max() < 0.1 * peak and clip[-200:].abs().max() < 0.1 * peak


@pytest.mark.slow
def test_speech_digits_builds_and_caches(tmp_path, monkeypatch):
    pytest.importorskip("espeakng_loader")
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path))
    train = load_dataset("speech-digits", "train")
    test = load_dataset("speech-digits", "test")
    assert train.x.shape == (960, 8000) and test.x.shape == (240, 8000)
    assert not set(train.speaker.tolist()) & set(test.speaker.tolist())
    assert torch.bincount(train.y).tolist() == [96] * 10
    cached = list((tmp_path / "audio").glob("speech-digits-8000-*.safetensors"))
    assert len(cached) == 1
    again = load_dataset("speech-digits", "test")  # from the cache
    assert torch.equal(again.x, test.x)
