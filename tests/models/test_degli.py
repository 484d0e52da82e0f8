"""Deep Griffin-Lim iteration: the zero-initialised DNN makes it fast Griffin-Lim exactly, the
sub-block's projections are the two Griffin-Lim projections, the loss of Eq. (6) in closed form
at the zero start, gradients reach every DNN weight only through the last layer at first, and
a short run through the one Trainer lowers the loss below Griffin-Lim's."""

import pytest
import torch
from tiny_audio import audio_info

import genzoo
from genzoo.audio.spectral import (
    griffin_lim_vocoder,
    pinv_mel_magnitude,
    vocoder_istft,
    vocoder_stft,
)
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Vocodes
from genzoo.data.base import DataInfo
from genzoo.models.gans.degli import DeepGriffinLim, DeGLIConfig

pytest.importorskip("torchaudio")


def tiny(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = {"channels": 4, "layers": 1, "segment": 512, **kw}
    return DeepGriffinLim(DeGLIConfig(**cfg), audio_info())


@pytest.mark.parametrize(
    "momentum,n_iter,dnn_iters", [(0.99, 12, 4), (0.0, 5, None), (0.99, 6, None), (0.5, 0, 2)]
)
def test_zero_initialised_degli_is_griffin_lim(momentum, n_iter, dnn_iters):
    """At step 0 the DNN outputs 0: DeGLI = griffin_lim_vocoder from zero phase with the same
    iterations, momentum and pseudo-inverse magnitude (float64, to 1e-12), whether the DNN runs
    in the last sub-blocks or in all (the paper's)."""
    m = tiny(momentum=momentum, iters=n_iter, dnn_iters=dnn_iters).double()
    x = torch.randn(3, 1024, dtype=torch.float64) * 0.3
    mel = m.mel(x)
    ref = griffin_lim_vocoder(pinv_mel_magnitude(mel, m.fb), 256, 64, n_iter, momentum)
    with torch.no_grad():
        got = m(mel)  # forward in float64 (vocode() runs float32)
        assert got.shape == (3, 1024)
        torch.testing.assert_close(got, ref, atol=1e-12, rtol=0)
        # and a trained (non-zero) DNN moves it away from Griffin-Lim
        torch.nn.init.normal_(m.denoiser.out.weight, std=0.1)
        if n_iter:
            assert (m(mel) - ref).abs().max() > 1e-4
    # vocode() runs float32: the same to float tolerance
    m32 = tiny(momentum=momentum, iters=n_iter, dnn_iters=dnn_iters)
    ref32 = griffin_lim_vocoder(pinv_mel_magnitude(mel.float(), m32.fb), 256, 64, n_iter, momentum)
    assert isinstance(m32, Vocodes)
    torch.testing.assert_close(m32.vocode(mel.float()), ref32, atol=1e-6, rtol=0)


def test_sub_block_projections_are_griffin_lims():
    """P_A keeps the phase and takes the magnitude; P_C of a consistent spectrogram is itself,
    and P_C is idempotent (a projection)."""
    m = tiny().double()
    x = torch.randn(2, 640, dtype=torch.float64)
    s = vocoder_stft(x, 256, 64)
    mag = torch.rand(s.shape, dtype=torch.float64) + 0.1
    y, z = m.project(s, mag)
    torch.testing.assert_close(y.abs(), mag, atol=1e-12, rtol=0)
    torch.testing.assert_close(y.angle(), s.angle(), atol=1e-9, rtol=0)
    _, z_true = m.project(s, s.abs())
    torch.testing.assert_close(z_true, s, atol=1e-10, rtol=0)  # consistent + right magnitude
    again = vocoder_stft(vocoder_istft(z, 256, 64), 256, 64)
    torch.testing.assert_close(again, z, atol=1e-10, rtol=0)


@pytest.mark.parametrize("objective", ["denoise", "unrolled"])
def test_loss_at_the_zero_start_and_its_gradients(objective):
    """With the DNN at zero, each loss is Griffin-Lim's (logged beside it): Eq. (6) the mean
    |Z - X*| / s of the degraded input, Eq. (7) the mel L1 of fast Griffin-Lim's output, which
    is the mel L1 of griffin_lim_vocoder on the same segment. The gradient reaches only the last
    layer (the others are multiplied by its zero weights), then all layers after one step."""
    m = tiny(objective=objective, noise_fraction=1.0, snr_db=(0.0, 0.0), iters=6, segment=0)
    x = torch.randn(4, 1024) * 0.3
    out = m.loss({"x": x})
    gla = out.logs["l1_gla" if objective == "denoise" else "mel_l1_gla"]
    assert float(out.loss.detach()) == pytest.approx(float(gla), rel=1e-6)
    if objective == "unrolled":
        mel = m.mel(x)
        y = griffin_lim_vocoder(pinv_mel_magnitude(mel, m.fb), 256, 64, 6, 0.99)
        assert float(out.loss.detach()) == pytest.approx(
            float((m.mel(y) - mel).abs().mean()), rel=1e-5
        )
    out.loss.backward()
    d = m.denoiser
    assert d.out.weight.grad.abs().sum() > 0 and d.out.bias.grad.abs().sum() > 0
    assert float(d.inp.conv.weight.grad.abs().sum()) == 0.0
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    opt.step()
    m.zero_grad()
    m.loss({"x": x}).loss.backward()
    assert d.inp.conv.weight.grad.abs().sum() > 0
    assert d.hidden[0].conv.weight.grad.abs().sum() > 0


def test_the_denoiser_is_scale_equivariant():
    """Inputs and output in units of the clip's RMS magnitude: scaling the clip by c scales the
    residual by c."""
    m = tiny()
    torch.nn.init.normal_(m.denoiser.out.weight, std=0.1)
    s = vocoder_stft(torch.randn(2, 1024), 256, 64)
    mag = s.abs() + 0.05
    y, z = m.project(s, mag)
    r1 = m.denoiser(s, y, z, mag)
    r2 = m.denoiser(7 * s, 7 * y, 7 * z, 7 * mag)
    torch.testing.assert_close(r2, 7 * r1, atol=1e-4, rtol=1e-4)


def test_bad_settings_are_one_sentence():
    with pytest.raises(ConfigError, match="segment = 500 must be a multiple of hop = 64"):
        tiny(segment=500)
    with pytest.raises(ConfigError, match="kernel = 4 must be odd"):
        tiny(kernel=4)
    with pytest.raises(ConfigError, match="Unknown degli objective 'gan'"):
        tiny(objective="gan")
    with pytest.raises(ConfigError, match="degli is a vocoder of audio"):
        DeepGriffinLim(DeGLIConfig(), DataInfo(name="digits", kind="images", shape=(1, 8, 8)))


def test_unrolled_training_lowers_the_mel_error_below_griffin_lims():
    """Eq. (7) through 4 sub-blocks, all with the DNN, on one batch of tones: 20 Adam steps
    take the mel L1 below fast Griffin-Lim's with the same 4 iterations (the gradient through
    the projections is usable: with X / |X|'s raw gradient it blew up to 1e7 and this failed)."""
    from genzoo.data import dataset_info, load_dataset

    x = load_dataset("tones", "train").x[:4]
    torch.manual_seed(0)
    cfg = DeGLIConfig(segment=0, iters=4, dnn_iters=None, channels=8, layers=1)
    m = DeepGriffinLim(cfg, dataset_info("tones"))
    opt = torch.optim.Adam(m.parameters(), lr=3e-4)
    for _ in range(20):
        out = m.loss({"x": x})
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    with torch.no_grad():
        out = m.loss({"x": x})
    assert float(out.logs["mel_l1"]) < 0.985 * float(out.logs["mel_l1_gla"]), out.logs


def test_the_one_trainer_starts_at_griffin_lim(tmp_path, fast_train):
    """Through the one Trainer (checkpoint in safetensors): the first step's loss is fast
    Griffin-Lim's (the zero start), and the reloaded run vocodes held-out clips."""
    import json

    over = {**fast_train, "channels": 4, "layers": 1, "iters": 3, "dnn_iters": 2,
            "segment": 512, "batch_size": 2, "log_every": 1}  # fmt: skip
    run = genzoo.train("degli", "tones", steps=2, out=tmp_path / "a", overrides=over)
    lines = [json.loads(t) for t in (run / "metrics.jsonl").read_text().splitlines()]
    first = next(r for r in lines if r.get("step") == 1 and "mel_l1" in r)
    assert first["mel_l1"] == pytest.approx(first["mel_l1_gla"], rel=1e-6)
    assert any(p.suffix == ".safetensors" for p in (run / "checkpoints").rglob("*"))
    metrics = genzoo.evaluate(run, n=4)
    assert metrics["mel_l1"] > 0
