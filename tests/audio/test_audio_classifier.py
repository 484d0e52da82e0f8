"""The audio yardstick: a log-mel CNN on tones / speech-digits, its features and the FAD in them."""

import math

import numpy as np
import pytest
import torch

from genzoo.core.errors import GenzooError
from genzoo.data import dataset_info
from genzoo.data.audio import make_tones
from genzoo.metrics import frechet_distance
from genzoo.metrics.classifier import (
    AUDIO_FLOOR_DB,
    AUDIO_SHIFT,
    AUDIO_SPEED,
    FeatureClassifier,
    LogMelFrontend,
    _augment,
    get_classifier,
    make_net,
)

pytest.importorskip("torchaudio")


@pytest.fixture(scope="module")
def tones_classifier():
    """An untrained tones classifier of width 4 (what is tested holds for any weights)."""
    info = dataset_info("tones")
    torch.manual_seed(0)
    return FeatureClassifier(make_net(info, 4), info, "untrained", {})


@pytest.fixture(scope="module")
def clips():
    """160 tones, half a second at 8 kHz (a fresh seed: not the splits)."""
    return make_tones(160, 8000, seed=5)[0]


def test_audio_training_batches_keep_the_tone_within_the_speed_range():
    info = dataset_info("tones")
    t = torch.arange(4000) / 8000
    x = torch.sin(2 * math.pi * 500 * t).repeat(64, 1)  # (64, T): a 500 Hz sine
    out = _augment(x, info, torch.Generator().manual_seed(0))
    spec = torch.fft.rfft(out.double()).abs()  # bins of 2 Hz
    f = spec.argmax(1).double() * 2
    lo, hi = AUDIO_SPEED
    assert bool(((f >= 500 * lo - 2) & (f <= 500 * hi + 2)).all())
    assert f.std() > 20  # the speeds differ between clips
    peak = out.abs().amax(1)
    assert bool((peak <= 1 + 1e-6).all()) and bool((peak >= 0.3 - 1e-3).all())
    # a shift of up to 1/8 s and a speed of at most 1.15 leave zeros only near the ends
    edge = int(AUDIO_SHIFT * 8000 + 0.15 * 2000) + 1
    assert bool((out[:, edge:-edge] != 0).float().mean() > 0.99)


def test_log_mel_frontend_matches_librosa(clips):
    librosa = pytest.importorskip("librosa")
    x = clips[:3].double()
    fe = LogMelFrontend(8000)
    got = fe.log_mel(x.float())
    ref = librosa.feature.melspectrogram(
        y=x.numpy(), sr=8000, n_fft=fe.n_fft, hop_length=fe.hop, n_mels=64, power=2.0,
        center=True, pad_mode="reflect", htk=False, norm="slaney",
    )  # fmt: skip
    ref = np.log(np.maximum(ref, 1e-12))
    ref = np.maximum(ref - ref.max(axis=(1, 2), keepdims=True), -AUDIO_FLOOR_DB * math.log(10) / 10)
    assert got.shape == ref.shape == (3, 64, 4000 // fe.hop + 1)
    # ln of float32 powers: 1e-3 nats is 0.004 dB
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-3)


def test_features_do_not_depend_on_gain_and_classifier_checks_shape(tones_classifier, clips):
    x = clips[:8]
    f = tones_classifier.features(x)
    assert f.shape == (8, 16)  # 4 * width
    torch.testing.assert_close(tones_classifier.features(0.25 * x), f, atol=1e-4, rtol=1e-4)
    with pytest.raises(GenzooError, match="takes waveforms of shape \\(4000,\\)"):
        tones_classifier.features(torch.zeros(2, 8000))
    assert tones_classifier.name == "genzoo-cnn:tones"
    assert tones_classifier.logits(x).shape == (8, 12)


def test_fad_is_zero_for_a_set_and_itself_and_grows_with_a_shift(tones_classifier, clips):
    x = clips
    f = tones_classifier.features(x)
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-6)
    # real vs real (two halves of the test split) is the floor; a pitch shift by a fifth
    # (resampling by 2/3: every note 7 semitones up, shorter) moves the features away from it
    a, b = f[: len(x) // 2], f[len(x) // 2 :]
    floor = frechet_distance(a, b)
    idx = (torch.arange(x.shape[1]) * 1.5).long().clamp(max=x.shape[1] - 1)
    up = tones_classifier.features(x[: len(x) // 2][:, idx])
    assert frechet_distance(up, b) > 2 * floor


def test_image_only_errors_name_audio():
    with pytest.raises(GenzooError, match="labelled image or audio dataset"):
        get_classifier("toy2d:moons")
