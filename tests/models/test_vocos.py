"""Vocos: the iSTFT head inverts its own STFT exactly, its framing is librosa's, output length =
frames x hop, the magnitude prior is the least-squares mel inverse, each output sample depends
only on the frames its receptive field says (autograd), the hinge losses in closed form, the
warm start, and a short run through the one Trainer."""

import numpy as np
import pytest
import torch
from tiny_audio import audio_info

import genzoo
from genzoo.audio.spectral import (
    griffin_lim_vocoder,
    mel_filterbank,
    pinv_mel_magnitude,
    spectral_convergence,
    vocoder_istft,
    vocoder_log_mel,
    vocoder_stft,
)
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Vocodes
from genzoo.data.base import DataInfo
from genzoo.models.gans.vocos import Vocos, VocosConfig, hinge_d_loss, hinge_g_loss

pytest.importorskip("torchaudio")


def tiny(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(dim=16, intermediate=32, layers=2, periods=(2, 3), mpd_width=2, mrd_width=4)
    cfg.update(kw)
    return Vocos(VocosConfig(**cfg), audio_info())


@pytest.mark.parametrize("n_fft,hop", [(256, 64), (64, 16), (40, 10), (48, 16)])
def test_istft_inverts_the_vocoder_stft_exactly(n_fft, hop):
    x = torch.randn(3, 50 * hop, dtype=torch.float64)
    spec = vocoder_stft(x, n_fft, hop)
    assert spec.shape == (3, n_fft // 2 + 1, 50)
    torch.testing.assert_close(vocoder_istft(spec, n_fft, hop), x, atol=1e-12, rtol=0)
    # the head's form, Eq. (1): magnitude and phase of a real signal in, the signal out
    x32 = x.float()
    s = vocoder_stft(x32, n_fft, hop)
    y = vocoder_istft(torch.polar(s.abs(), s.angle()), n_fft, hop)
    torch.testing.assert_close(y, x32, atol=1e-5, rtol=0)


def test_vocoder_stft_is_librosas_uncentred_stft_of_the_reflect_padded_clip():
    librosa = pytest.importorskip("librosa")
    x = torch.randn(2, 640, dtype=torch.float64)
    pad = (256 - 64) // 2
    ref = librosa.stft(
        np.pad(x.numpy(), ((0, 0), (pad, pad)), mode="reflect"), n_fft=256, hop_length=64,
        window="hann", center=False,
    )  # fmt: skip
    np.testing.assert_allclose(vocoder_stft(x, 256, 64).numpy(), ref, atol=1e-10)


def test_griffin_lim_from_the_true_phase_is_a_fixed_point_and_zero_phase_converges():
    x = torch.randn(2, 640, dtype=torch.float64)
    s = vocoder_stft(x, 256, 64)
    y = griffin_lim_vocoder(s.abs(), 256, 64, n_iter=3, phase=s.angle())
    torch.testing.assert_close(y, x, atol=1e-10, rtol=0)  # consistent + right magnitude: stays
    sc = [
        spectral_convergence(
            s.abs(), vocoder_stft(griffin_lim_vocoder(s.abs(), n_iter=k), 256, 64).abs()
        )
        for k in (0, 5, 30)
    ]
    assert bool((sc[1] < sc[0] - 3).all() and (sc[2] < sc[1]).all()), sc


def test_pinv_magnitude_is_the_min_norm_least_squares_inverse_clamped():
    fb = mel_filterbank(8000, 256, 64)  # (F, M)
    log_mel = vocoder_log_mel(torch.randn(2, 640, dtype=torch.float64) * 0.3, 8000, fb=fb)
    got = pinv_mel_magnitude(log_mel, fb)  # (2, F, 10)
    a = fb.T.numpy()  # (M, F)
    for b in range(2):
        ref = np.linalg.lstsq(a, log_mel[b].exp().numpy(), rcond=None)[0]  # min-norm, (F, 10)
        np.testing.assert_allclose(got[b].numpy(), np.maximum(ref, 0.0), atol=1e-8)


@pytest.mark.parametrize("n_fft,hop", [(256, 64), (64, 16), (40, 10)])
def test_output_length_is_frames_times_hop(n_fft, hop):
    m = tiny(n_fft=n_fft, hop=hop, n_mels=8, segment=0)
    for frames in (1, 7, 16):
        assert m(torch.randn(2, 8, frames)).shape == (2, frames * hop)
    x = torch.randn(2, 20 * hop) * 0.1
    assert m.mel(x).shape == (2, 8, 20)
    assert m.vocode(m.mel(x)).shape == x.shape
    assert isinstance(m, Vocodes)


def test_the_head_starts_at_the_pseudo_inverse_magnitude_and_zero_phase():
    """genzoo's magnitude prior: the zero-initialised head gives the clamped pinv estimate with
    zero phase, Griffin-Lim's starting point; without the prior, the paper's exp(m) alone."""
    m = tiny()
    x = torch.randn(2, 1024) * 0.3
    mel = m.mel(x)
    s = m.spectrogram(mel)
    prior = pinv_mel_magnitude(mel.double(), m.fb.double()).clamp(1e-5, 100.0).float()
    torch.testing.assert_close(s.abs(), prior, rtol=1e-4, atol=1e-6)
    assert torch.equal(s.imag, torch.zeros_like(s.imag))
    m2 = tiny(magnitude_prior=False)
    assert m2.head.weight.abs().sum() > 0  # the paper's (PyTorch's default) initialisation
    torch.nn.init.zeros_(m2.head.weight)
    torch.nn.init.zeros_(m2.head.bias)
    assert torch.equal(m2.spectrogram(mel).abs(), torch.ones_like(s.real))  # exp(0)


def test_each_sample_depends_only_on_the_frames_in_its_receptive_field():
    """Frame t reaches R = 3 + layers * (kernel // 2) frames either side through the backbone,
    and frame u's iSTFT chunk covers samples [u hop - pad, u hop - pad + n_fft)."""
    m = tiny(n_fft=64, hop=16, n_mels=8, layers=2, kernel=5)
    torch.nn.init.normal_(m.head.weight, std=0.1)  # a trained head: not the zero start
    frames, t = 30, 15
    r = 3 + 2 * (5 // 2)
    mel = torch.randn(1, 8, frames, requires_grad=True)
    y = m(mel)[0]  # (frames * hop,)
    pad = (64 - 16) // 2
    lo, hi = (t - r) * 16 - pad, (t + r) * 16 - pad + 64  # samples frame t can reach
    inside = torch.zeros_like(y, dtype=torch.bool)
    inside[max(lo, 0) : hi] = True
    (g_out,) = torch.autograd.grad(y[~inside].sum(), mel, retain_graph=True)
    assert torch.equal(g_out[..., t], torch.zeros_like(g_out[..., t]))
    (g_in,) = torch.autograd.grad(y[lo : lo + 16].pow(2).sum() + y[hi - 16 : hi].pow(2).sum(), mel)
    assert g_in[..., t].abs().sum() > 0  # and the edges of that range do depend on frame t


def test_hinge_losses_closed_form():
    ones, zeros = [torch.ones(2, 3), torch.ones(2, 5)], [torch.zeros(2, 3), torch.zeros(2, 5)]
    assert float(hinge_d_loss(ones, [-o for o in ones])) == 0.0  # margins met
    assert float(hinge_d_loss(zeros, zeros)) == 4.0  # 1 + 1 per sub-discriminator
    assert float(hinge_d_loss([torch.full((2,), 3.0)], [torch.full((2,), -0.5)])) == 0.5
    assert float(hinge_g_loss(ones)) == 0.0 and float(hinge_g_loss(zeros)) == 2.0


def test_bad_settings_are_one_sentence():
    with pytest.raises(ConfigError, match="segment = 500 must be a multiple of hop = 64"):
        tiny(segment=500)
    with pytest.raises(ConfigError, match="kernel = 4 must be odd"):
        tiny(kernel=4)
    with pytest.raises(ConfigError, match="vocos is a vocoder of audio"):
        Vocos(VocosConfig(), DataInfo(name="digits", kind="images", shape=(1, 8, 8)))
    with pytest.raises(ConfigError, match="loss group 'main' is not valid"):
        tiny().loss({"x": torch.randn(2, 1024)}, "main")


def test_mel_warmup_then_the_game_and_each_step_trains_one_player():
    m = tiny(mel_warmup=1, segment=512)
    x = torch.randn(2, 1024) * 0.3
    d = m.loss({"x": x}, "d").loss
    d.backward()
    assert float(d.detach()) == 0.0
    out = m.loss({"x": x}, "g")
    assert float(out.loss.detach()) == pytest.approx(45.0 * float(out.logs["mel_l1"]))
    assert m.game_on and int(m.step) == 1
    m.zero_grad(set_to_none=True)
    m.loss({"x": x}, "d").loss.backward()
    assert all(p.grad is None for p in m.param_groups()["g"])
    assert any(p.grad is not None for p in m.param_groups()["d"])
    m.zero_grad(set_to_none=True)
    out = m.loss({"x": x}, "g")
    out.loss.backward()
    assert all(p.grad is None for p in m.param_groups()["d"])
    assert float(out.logs["g_adv"]) > 0.0


def test_twenty_trainer_steps_lower_the_mel_error_on_tones(tmp_path, fast_train):
    """The one Trainer with the d and g groups (D idle in the warm start): the held-out mel L1
    falls from step 1 to 16."""
    over = {
        **fast_train,
        "mel_warmup": 1000,
        "magnitude_prior": False,
        "dim": 16,
        "intermediate": 32,
        "layers": 2,
        "periods": (2, 3),
        "mpd_width": 2,
        "mrd_width": 4,
        "segment": 512,
        "batch_size": 4,
        "lr": 2e-3,
    }
    before = genzoo.train("vocos", "tones", steps=1, out=tmp_path / "a", overrides=over)
    after = genzoo.train("vocos", "tones", steps=16, out=tmp_path / "b", overrides=over)
    e0, e1 = genzoo.evaluate(before, n=8), genzoo.evaluate(after, n=8)
    assert e1["mel_l1"] < 0.8 * e0["mel_l1"], (e0["mel_l1"], e1["mel_l1"])
