"""Tacotron's post-processing network before Griffin-Lim: the zero start is the Griffin-Lim
baseline exactly, the mel-fit update is Lee & Seung's, the learned magnitude scales with the
clip, bad settings are one sentence, and a few training steps take its log-magnitude error and
spectral convergence below the pseudo-inverse's."""

import itertools

import pytest
import torch
from tiny_audio import audio_info

import genzoo
from genzoo.audio.spectral import griffin_lim_vocoder, pinv_mel_magnitude
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Vocodes
from genzoo.data.base import DataInfo
from genzoo.models.gans.mel2linear import Mel2Linear, Mel2LinearConfig, mel_fit

pytest.importorskip("torchaudio")


def tiny(seed=0, info=None, **kw):
    torch.manual_seed(seed)
    cfg = {"channels": 8, "layers": 1, "segment": 512, **kw}
    return Mel2Linear(Mel2LinearConfig(**cfg), info or audio_info())


@pytest.mark.parametrize(
    "momentum,n_iter,gru,fit",
    [(0.99, 12, False, 0), (0.0, 5, True, 0), (0.5, 0, False, 0), (0.99, 7, False, 3)],
)
def test_zero_initialised_postnet_is_griffin_lim(momentum, n_iter, gru, fit):
    """At step 0 the last layer is zero: the magnitude is the clamped pseudo-inverse bit for bit
    (after the same mel-fit updates, where there are some) and the vocoder is griffin_lim_vocoder
    from zero phase with the same iterations and momentum (float64 to 1e-12; float32 vocode() to
    float tolerance); a non-zero last layer moves it."""
    m = tiny(momentum=momentum, iters=n_iter, gru=gru, mel_fit=fit).double()
    x = torch.randn(3, 1024, dtype=torch.float64) * 0.3
    mel = m.mel(x)
    base = mel_fit(pinv_mel_magnitude(mel, m.fb), mel, m.fb, fit)
    ref = griffin_lim_vocoder(base, 256, 64, n_iter, momentum)
    with torch.no_grad():
        assert torch.equal(m.magnitude(mel), base)
        got = m(mel)
        assert got.shape == (3, 1024)
        torch.testing.assert_close(got, ref, atol=1e-12, rtol=0)
        torch.nn.init.normal_(m.net.out.weight, std=0.1)
        assert (m.magnitude(mel) - base).abs().max() > 1e-3
    m32 = tiny(momentum=momentum, iters=n_iter, gru=gru, mel_fit=fit)
    mel32 = mel.float()
    base32 = mel_fit(pinv_mel_magnitude(mel32, m32.fb), mel32, m32.fb, fit)
    ref32 = griffin_lim_vocoder(base32, 256, 64, n_iter, momentum)
    assert isinstance(m32, Vocodes)
    torch.testing.assert_close(m32.vocode(mel32), ref32, atol=1e-6, rtol=0)


def test_mel_fit_is_lee_seungs_kl_update():
    """Eq. (2b): the generalised KL divergence between the mel and W A never rises from one
    update to the next (Lee & Seung's theorem) and falls overall, A stays >= 0 with its zeros
    kept, and the clip's own |STFT| (its mel above the floor) is a fixed point."""
    m = tiny().double()
    x = torch.randn(2, 1024, dtype=torch.float64) * 0.3
    mel, fb = m.mel(x), m.fb
    v = mel.exp()

    def kl(a):
        wa = fb.T @ a
        return float((v * (v / wa).log() - v + wa).sum())

    a = torch.rand(2, 129, 16, dtype=torch.float64) + 0.05
    divs = [kl(mel_fit(a, mel, fb, k)) for k in range(6)]
    assert all(b <= a_ + 1e-9 for a_, b in itertools.pairwise(divs)), divs
    assert divs[-1] < 0.5 * divs[0]
    a = a * (torch.rand(2, 129, 16) > 0.2)  # zeros stay zeros
    fitted = mel_fit(a, mel, fb, 5)
    assert bool((fitted >= 0).all()) and bool((fitted[a == 0] == 0).all())
    s = m.stft_magnitude(x)
    assert float(mel.min()) > -11  # above the log-mel's floor: W |X| = exp(mel)
    torch.testing.assert_close(mel_fit(s, mel, fb, 3), s, atol=1e-10, rtol=1e-9)


def test_the_learned_magnitude_scales_with_the_clip_and_is_non_negative():
    """A louder clip (log-mel + ln c) gets c times the magnitude: the network sees the log-mel
    less its mean, d is a gain and e is in units of the frame's RMS (Eq. (2))."""
    m = tiny(gru=True).double()
    torch.nn.init.normal_(m.net.out.weight, std=0.3)
    torch.nn.init.normal_(m.net.out.bias, std=0.3)
    mel = m.mel(torch.randn(2, 1024, dtype=torch.float64))
    with torch.no_grad():
        a = m.magnitude(mel)
        a7 = m.magnitude(mel + torch.log(torch.tensor(7.0, dtype=torch.float64)))
    assert a.shape == (2, 129, 16) and bool((a >= 0).all()) and bool((a == 0).any())
    torch.testing.assert_close(a7, 7 * a, atol=1e-9, rtol=1e-6)


def test_bad_settings_are_one_sentence():
    with pytest.raises(ConfigError, match="segment = 500 must be a multiple of hop = 64"):
        tiny(segment=500)
    with pytest.raises(ConfigError, match=r"n_fft - hop \(256 - 63\) must be even"):
        tiny(hop=63, segment=0)
    with pytest.raises(ConfigError, match="kernel = 4 must be odd"):
        tiny(kernel=4)
    with pytest.raises(ConfigError, match="mel2linear-gl is a vocoder of audio"):
        Mel2Linear(Mel2LinearConfig(), DataInfo(name="digits", kind="images", shape=(1, 8, 8)))
    with pytest.raises(ConfigError, match=r"vocodes log-mel spectrograms \(B, 64, frames\)"):
        tiny().vocode(torch.zeros(2, 80, 16))


def test_a_few_steps_beat_the_pseudo_inverse_magnitude():
    """Eq. (3) on four harmonic tones for 30 Adam steps: against their true |STFT| the learned
    magnitude's log-L1 falls below 0.8 of the untrained model's and its spectral convergence
    below the pseudo-inverse's too (gradients reach both outputs, d and e)."""
    torch.manual_seed(0)
    t = torch.arange(4000) / 8000
    f0 = torch.tensor([220.0, 330.0, 415.0, 523.0])[:, None]  # (4, 1) Hz
    x = sum(torch.sin(2 * torch.pi * k * f0 * t) / k for k in range(1, 6))  # (4, 4000)
    x = 0.3 * x * torch.exp(-3 * t) + 1e-3 * torch.randn(4, 4000)
    m = tiny(info=audio_info(4000), channels=16, segment=0)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(30):
        out = m.loss({"x": x})
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    with torch.no_grad():
        errs = m.magnitude_errors(x)
        target = m.stft_magnitude(x)
        base = pinv_mel_magnitude(m.mel(x), m.fb)
        sc_pinv = (base - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1)
    assert float(errs["log_l1"].mean()) < 0.8 * float(errs["log_l1_pinv"].mean()), errs
    assert float(errs["sc"].mean()) < float(sc_pinv.mean()), (errs, sc_pinv)


def test_the_one_trainer_starts_at_the_pseudo_inverse(tmp_path, fast_train):
    """Through the one Trainer (checkpoint in safetensors): the first step's log-L1 is the
    pseudo-inverse's (the zero start), and the reloaded run vocodes and scores held-out clips."""
    import json

    over = {**fast_train, "channels": 4, "layers": 1, "iters": 3, "segment": 512,
            "batch_size": 2, "log_every": 1}  # fmt: skip
    run = genzoo.train("mel2linear-gl", "tones", steps=2, out=tmp_path / "a", overrides=over)
    lines = [json.loads(t) for t in (run / "metrics.jsonl").read_text().splitlines()]
    first = next(r for r in lines if r.get("step") == 1 and "log_l1" in r)
    assert first["log_l1"] == pytest.approx(first["log_l1_pinv"], rel=1e-6)
    assert any(p.suffix == ".safetensors" for p in (run / "checkpoints").rglob("*"))
    metrics = genzoo.evaluate(run, n=4)
    assert metrics["mel_l1"] > 0 and metrics["log_l1"] > 0
