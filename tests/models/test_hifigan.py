"""HiFi-GAN: the MPD's period view, output length = frames x hop, the mel loss against librosa,
the LSGAN / feature-matching losses in closed form, and a short run through the one Trainer."""

import math

import numpy as np
import pytest
import torch
from tiny_audio import audio_info
from torch import nn

import genzoo
from genzoo.audio.spectral import log_spectral_distance, vocoder_log_mel
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Vocodes
from genzoo.data.base import DataInfo
from genzoo.models.gans.hifigan import (
    HiFiGAN,
    HiFiGANConfig,
    feature_matching_loss,
    lsgan_d_loss,
    lsgan_g_loss,
    period_view,
)

pytest.importorskip("torchaudio")


def tiny(seed=0, info=None, **kw):
    torch.manual_seed(seed)
    cfg = dict(
        upsample_channels=8,
        resblock_kernels=(3,),
        resblock_dilations=(1, 3),
        periods=(2, 3),
        mpd_width=2,
        msd_width=4,
        segment=512,
    )
    cfg.update(kw)
    return HiFiGAN(HiFiGANConfig(**cfg), info or audio_info())


@pytest.mark.parametrize("t", [12, 13, 14, 17, 30])
@pytest.mark.parametrize("p", [2, 3, 5, 7, 11])
def test_period_view_is_the_reflect_padded_reshape(t, p):
    x = torch.randn(2, t, dtype=torch.float64)
    v = period_view(x, p)
    rows = math.ceil(t / p)
    assert v.shape == (2, 1, rows, p)
    # independent oracle: numpy's reflect padding on the right to a multiple of p, then C order
    ref = np.pad(x.numpy(), ((0, 0), (0, rows * p - t)), mode="reflect").reshape(2, 1, rows, p)
    np.testing.assert_array_equal(v.numpy(), ref)
    # column j holds samples j, j + p, j + 2p, ...: the samples p apart the paper means
    for j in range(p):
        n = len(range(j, t, p))
        assert torch.equal(v[:, 0, :n, j], x[:, j::p])


@pytest.mark.parametrize(
    "rates,hop,n_fft", [((8, 8), 64, 256), ((4, 4, 4), 64, 256), ((5, 3), 15, 45), ((2,), 2, 8)]
)
def test_output_length_is_frames_times_hop(rates, hop, n_fft):
    m = tiny(upsample_rates=rates, hop=hop, n_fft=n_fft, n_mels=8, segment=0)
    for frames in (1, 7, 16):
        assert m(torch.randn(2, 8, frames)).shape == (2, frames * hop)
    # and the vocoder framing gives T // hop frames, so resynthesis keeps the clip's length
    x = torch.randn(2, 20 * hop) * 0.1
    assert m.mel(x).shape == (2, 8, 20)
    assert m.vocode(m.mel(x)).shape == x.shape
    assert isinstance(m, Vocodes)


def test_upsampling_that_misses_the_hop_is_one_sentence():
    with pytest.raises(
        ConfigError, match=r"upsample_rates \[8, 4\] multiply to 32, not to hop = 64"
    ):
        tiny(upsample_rates=(8, 4))
    with pytest.raises(ConfigError, match="segment = 500 must be a multiple of hop = 64"):
        tiny(segment=500)
    with pytest.raises(ConfigError, match="hifigan is a vocoder of audio"):
        HiFiGAN(HiFiGANConfig(), DataInfo(name="digits", kind="images", shape=(1, 8, 8)))


def test_bad_waveforms_and_spectrograms_are_one_sentence():
    """``vocode`` took NaN spectrograms to NaN audio without a word and zero frames to a
    convolution's error; ``mel`` took a clip shorter than its framing's padding to ``F.pad``'s
    error and a list to an ``AttributeError``."""
    m = tiny()
    x = torch.randn(2, 20 * m.config.hop) * 0.1
    mel = m.mel(x)
    pad = (m.config.n_fft - m.config.hop) // 2
    for bad, needle in [
        (torch.full_like(mel, float("nan")), "holds NaN or infinite values"),
        (mel[:, :, :0], "with at least one frame, got shape"),
        ([[0.0]], "got shape list"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            m.vocode(bad)
    for bad in (torch.zeros(2, pad), torch.zeros(2, 1, 4 * pad), [0.0]):
        with pytest.raises(ConfigError, match=f"takes waveforms \\(B, T\\) with T > {pad}"):
            m.mel(bad)
    assert m.mel(torch.zeros(2, pad + 1)).shape[:2] == (2, m.config.n_mels)  # the shortest


def test_vocoder_mel_matches_librosa():
    librosa = pytest.importorskip("librosa")
    x = torch.randn(3, 1000, dtype=torch.float64) * 0.2
    got = vocoder_log_mel(x, 8000, 256, 64, 64)
    pad = (256 - 64) // 2
    ref = librosa.feature.melspectrogram(
        y=np.pad(x.numpy(), ((0, 0), (pad, pad)), mode="reflect"), sr=8000, n_fft=256,
        hop_length=64, n_mels=64, power=1.0, center=False, htk=False, norm="slaney",
    )  # fmt: skip
    assert got.shape == ref.shape == (3, 64, 1000 // 64)
    np.testing.assert_allclose(got.numpy(), np.log(np.maximum(ref, 1e-5)), atol=5e-4)


def test_log_spectral_distance_closed_form():
    s = torch.rand(2, 9, 5) + 0.1
    assert torch.equal(log_spectral_distance(s, s), torch.zeros(2))
    torch.testing.assert_close(log_spectral_distance(s, 10 * s, eps=0.0), torch.full((2,), 20.0))


def test_lsgan_and_feature_matching_losses_closed_form():
    ones, zeros = [torch.ones(2, 3), torch.ones(2, 5)], [torch.zeros(2, 3), torch.zeros(2, 5)]
    assert float(lsgan_d_loss(ones, zeros)) == 0.0  # D perfect
    assert float(lsgan_d_loss(zeros, ones)) == 4.0  # 1 + 1 per sub-discriminator
    assert float(lsgan_g_loss(ones)) == 0.0 and float(lsgan_g_loss(zeros)) == 2.0
    half = [[torch.full((2, 4), 0.5)], [torch.full((3,), -1.0), torch.zeros(1)]]
    assert float(feature_matching_loss(half, half)) == 0.0
    zero = [[torch.zeros(2, 4)], [torch.zeros(3), torch.zeros(1)]]
    assert float(feature_matching_loss(half, zero)) == pytest.approx(0.5 + 1.0 + 0.0)


class _Echo(nn.Module):
    """A 'generator' that returns the real waveform: the perfect vocoder."""

    def __init__(self, x):
        super().__init__()
        self.x = x
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, mel):
        return self.x + 0 * self.w


def test_perfect_generator_has_zero_mel_and_feature_matching_loss():
    m = tiny(segment=0)
    x = torch.randn(3, 1024) * 0.3
    m.generator = _Echo(x)
    logs = m.loss({"x": x}, "g").logs
    assert float(logs["mel_l1"]) == 0.0 and float(logs["fm"]) == 0.0
    with torch.no_grad():  # G's step sees D in eval mode (the spectral norm's u held fixed)
        real = [o[0] for o in m.discriminators.eval()(x)]
    assert float(logs["g_adv"]) == pytest.approx(float(lsgan_g_loss(real)))
    ev = m.eval_metrics({"x": x})
    assert torch.equal(ev["mel_l1"], torch.zeros(3)) and torch.equal(ev["lsd"], torch.zeros(3))


def test_d_step_leaves_g_alone_and_g_step_leaves_d_alone():
    m = tiny()
    x = torch.randn(2, 1024) * 0.3
    m.loss({"x": x}, "d").loss.backward()
    assert all(p.grad is None for p in m.generator.parameters())
    assert any(p.grad is not None for p in m.discriminators.parameters())
    m.zero_grad(set_to_none=True)
    m.loss({"x": x}, "g").loss.backward()
    assert all(p.grad is None for p in m.discriminators.parameters())
    with pytest.raises(ConfigError, match="loss group 'main' is not valid"):
        m.loss({"x": x}, "main")


def test_twenty_trainer_steps_lower_the_mel_error_on_tones(tmp_path, fast_train):
    """The one Trainer with the d and g groups: the held-out mel L1 falls from step 1 to 21."""
    over = {
        **fast_train,
        "upsample_channels": 16,
        "resblock_kernels": (3,),
        "resblock_dilations": (1, 3),
        "periods": (2, 3),
        "mpd_width": 2,
        "msd_width": 4,
        "segment": 256,
        "batch_size": 4,
        "lr": 2e-3,
    }
    before = genzoo.train("hifigan", "tones", steps=1, out=tmp_path / "a", overrides=over)
    after = genzoo.train("hifigan", "tones", steps=21, out=tmp_path / "b", overrides=over)
    e0, e1 = genzoo.evaluate(before, n=16), genzoo.evaluate(after, n=16)
    assert e1["mel_l1"] < 0.8 * e0["mel_l1"], (e0["mel_l1"], e1["mel_l1"])


def test_mel_warmup_trains_g_on_the_mel_loss_alone_then_starts_the_game():
    """mel_warmup = 2: two G steps of lambda_mel * mel L1 with D idle (zero gradient), then Eq. (6)
    and Eq. (7); the counter is a checkpointed buffer only when the warm start is on."""
    assert "step" not in tiny().state_dict()  # the paper's recipe: checkpoints as before
    m = tiny(mel_warmup=2)
    assert "step" in m.state_dict()
    x = torch.randn(2, 1024) * 0.3
    for _ in range(2):
        assert not m.game_on
        d = m.loss({"x": x}, "d").loss
        d.backward()
        assert float(d.detach()) == 0.0
        assert all(p.grad is None or not p.grad.any() for p in m.discriminators.parameters())
        out = m.loss({"x": x}, "g")
        assert float(out.loss.detach()) == pytest.approx(45.0 * float(out.logs["mel_l1"]))
        assert out.logs["g_adv"] == 0.0
    assert m.game_on and int(m.step) == 2
    d = m.loss({"x": x}, "d").loss
    assert float(d.detach()) > 0.0  # D's LSGAN loss now
    out = m.loss({"x": x}, "g")
    assert (
        float(out.loss.detach())
        > 45.0 * float(out.logs["mel_l1"]) + float(out.logs["g_adv"]) - 1e-4
    )
    assert float(out.logs["g_adv"]) > 0.0
