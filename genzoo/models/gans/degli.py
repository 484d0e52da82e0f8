"""Deep Griffin-Lim iteration (DeGLI): Griffin-Lim's two projections plus a trained denoiser.

Masuyama, Yatabe, Koizumi, Oikawa & Harada, "Deep Griffin-Lim Iteration", arXiv:1903.03971
(ICASSP 2019). Griffin-Lim alternates two projections of a complex spectrogram ``X``
``(B, F, frames)`` with a given magnitude ``A``:

    P_A(X) = A X / |X|                 (amplitude projection: keep the phase)            (Eq. (1))
    P_C(X) = STFT(iSTFT(X))            (consistency projection: the nearest real signal)  (Eq. (2))
    X[m+1] = P_C(P_A(X[m]))            (Griffin-Lim)                                      (Eq. (3))

A DeGLI sub-block keeps both projections and puts a DNN ``F_theta`` after them, which sees the
current spectrogram and both projections and outputs the residual between the projected
spectrogram and the clean one (the paper's "denoiser", residual learning):

    Y[m] = P_A(X[m]),   Z[m] = P_C(Y[m])                                                  (Eq. (4))
    X[m+1] = Z[m] - F_theta(X[m], Y[m], Z[m])                                             (Eq. (5))

and is trained by denoising on one sub-block (the paper's "sub-block training by denoising": no
recursion through the iterations): from a degraded ``X~`` of the clip's true STFT ``X*``,

    L(theta) = || F_theta(X~, Y, Z) - (Z - X*) ||_1                                      (Eq. (6))

The equation numbers are this docstring's, in the order of the paper's Sec. 2-3.

genzoo's setting and choices (not the paper's, which inverts the true ``|STFT|``):

- **A vocoder from the log-mel.** ``A`` is the log-mel's clamped pseudo-inverse magnitude
  (:func:`genzoo.audio.spectral.pinv_mel_magnitude`, what Vocos' magnitude prior and the
  Griffin-Lim baseline of the vocoder benchmark start from), in the vocoder framing
  (:func:`~genzoo.audio.spectral.vocoder_stft` / :func:`~genzoo.audio.spectral.vocoder_istft`),
  from zero phase; the output is ``iSTFT(P_A(X[M]))``, Griffin-Lim's.
- **Fast Griffin-Lim's momentum** (Perraudin et al. 2013) around the sub-block, as
  :func:`~genzoo.audio.spectral.griffin_lim_vocoder` runs it: with ``Z'[m]`` the denoised
  ``Z[m] - F_theta(...)``, ``X[m+1] = Z'[m] - alpha / (1 + alpha) Z'[m-1]`` (``momentum=0``:
  the paper's Eq. (5) exactly). The DNN's last layer starts at zero, so an untrained DeGLI *is*
  ``griffin_lim_vocoder`` with the same iterations, momentum and magnitude (tested to 1e-12);
  training starts from the Griffin-Lim baseline.
- ``dnn_iters``: the DNN runs in the last ``dnn_iters`` sub-blocks only, fast Griffin-Lim before
  them (``None``: in every sub-block, the paper's DeGLI).
- **Two objectives.** ``objective="denoise"`` is the paper's Eq. (6) on one sub-block, its
  ``X~`` half the paper's ``X* + N`` (complex Gaussian noise at an SNR drawn uniformly in
  ``snr_db``; ``noise_fraction``) and half fast Griffin-Lim iterates after a random number of
  iterations (what the DNN meets at inference; run without gradient and without the DNN).
  ``objective="unrolled"`` (default) is the vocoder's own measure through the sub-blocks that
  run the DNN, backpropagated through them (the ones before run without gradient):

      L(theta) = mean | log-mel(iSTFT(P_A(X[M]))) - log-mel(x) |                       (Eq. (7))

  (the mel L1 of HiFi-GAN's Eq. (2), the benchmark's measure). Why: Eq. (6) regresses a complex
  residual whose phase the DNN cannot know (a Griffin-Lim iterate's phase error), so its L1
  optimum shrinks ``Z`` rather than turning its phase, which ``P_A`` then undoes; a probe (100
  steps, 20 held-out clips) left DeGLI worse than Griffin-Lim. Eq. (7) scores what the vocoder
  outputs, at the cost of one backward pass per unrolled sub-block (keep them few on a CPU).
- **The DNN** (the paper's is a gated CNN over the spectrogram too): 2-D convolutions over
  (frequency, frame), each layer a gated linear unit, the hidden ones residual, the output two
  channels ``r``. It sees the sub-block in ``Y``'s own frame: ``u = Z / Y`` (what the
  consistency projection did to each bin, in magnitude and phase) and ``log A`` relative to the
  clip's RMS magnitude ``s`` (``A`` floored at ``1e-3 s`` in both), and its residual is
  ``F = r Y``. So ``F`` turns with a global phase of ``X`` and scales with the clip (the
  problem's symmetries: tested), and a quiet bin is corrected as easily as a loud one. (Raw
  real and imaginary parts of ``X, Y, Z`` in units of ``s``, tried first, learned nothing in
  probes: the absolute phase of a bin carries no information.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.audio.spectral import (
    pinv_mel_magnitude,
    vocoder_istft,
    vocoder_stft,
)
from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError, choices
from genzoo.core.protocol import Batch, LossOutput
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand, randn
from genzoo.data.base import DataInfo
from genzoo.models.gans.vocoder import MelVocoder, random_segments

OBJECTIVES = ("unrolled", "denoise")
FLOOR = 1e-3  # the denoiser's floor of a bin's magnitude, relative to the clip's RMS magnitude
TINY = 1e-16  # griffin_lim_vocoder's guard in X / |X| (kept identical: the zero start is GL)


def unit_phasor(x: Tensor) -> Tensor:
    """``X / |X|`` ``(B, F, frames)`` as Griffin-Lim computes it (``X / (|X| + 1e-16)``: the
    value, bit for bit), with the gradient of ``X / (|X| + d)``, ``d`` a thousandth of the clip's
    RMS ``|X|``: the phase of a near-zero bin has a gradient of order ``1 / |X|``, which made
    the gradient norm jump from 1e2 to 1e7 in one step of a probe."""
    mag = x.abs()
    rms = mag.detach().pow(2).mean(dim=(-2, -1), keepdim=True).sqrt()  # (B, 1, 1)
    d = (1e-3 * rms).clamp_min(1e-30)  # > 0 for a silent clip too
    safe = x / (mag + d)
    exact = x.detach() / (mag.detach() + TINY)
    return exact + (safe - safe.detach())  # the value of exact, the gradient of safe


@dataclass(frozen=True)
class DeGLIConfig(Config):
    """Configuration of :class:`DeepGriffinLim` (defaults: the vocoder benchmark's framing)."""

    n_fft: int = bounded(256, ge=16)  # STFT size of the log-mel and of the iterations
    hop: int = bounded(64, ge=1)  # hop between frames (n_fft - hop even)
    n_mels: int = bounded(64, ge=8)  # mel bands (genzoo's Slaney mel convention)
    iters: int = bounded(100, ge=0)  # sub-blocks when vocoding (one STFT pair each)
    dnn_iters: int | None = bounded(4, ge=1)  # the last dnn_iters sub-blocks run the DNN, the
    # ones before are plain fast Griffin-Lim (None: every sub-block, the paper's DeGLI)
    objective: str = "unrolled"  # "unrolled": the mel L1 of the output through the DNN's
    # sub-blocks; "denoise": the paper's one-sub-block denoising L1, Eq. (6)
    momentum: float = bounded(0.99, ge=0.0, lt=1.0)  # fast Griffin-Lim's alpha around the
    # sub-blocks (0: the paper's plain iteration, Eq. (5))
    channels: int = bounded(32, ge=2)  # hidden channels of the DNN
    layers: int = bounded(2, ge=0)  # gated residual layers between the DNN's input and output
    kernel: int = bounded(3, ge=1)  # square kernel over (frequency, frame), odd
    segment: int = bounded(4096, ge=0)  # training: a random segment of this many samples of each
    # clip (a multiple of hop; 0: the whole clip)
    noise_fraction: float = bounded(0.5, ge=0.0, le=1.0)  # share of each training batch from the
    # paper's noisy X* + N; the rest from Griffin-Lim iterates
    snr_db: tuple[float, float] = bounded((-6.0, 12.0), ge=-40.0, le=60.0)  # SNR range of N, dB


class GatedConv(nn.Module):
    """A 2-D convolution to twice the channels, halved by a gated linear unit."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, 2 * c_out, kernel, padding=kernel // 2)

    def forward(self, h: Tensor) -> Tensor:
        return F.glu(self.conv(h), dim=1)  # (B, c_out, F, frames)


class Denoiser(nn.Module):
    """``F_theta`` of Eq. (5): ``(X, Y, Z, log A)`` -> the complex residual ``(B, F, frames)``."""

    def __init__(self, c: DeGLIConfig) -> None:
        super().__init__()
        self.inp = GatedConv(4, c.channels, c.kernel)
        self.hidden = nn.ModuleList(
            GatedConv(c.channels, c.channels, c.kernel) for _ in range(c.layers)
        )
        self.out = nn.Conv2d(c.channels, 2, c.kernel, padding=c.kernel // 2)
        nn.init.zeros_(self.out.weight)  # the zero start: DeGLI begins as Griffin-Lim
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, y: Tensor, z: Tensor, mag: Tensor) -> Tensor:
        s = mag.pow(2).mean(dim=(-2, -1), keepdim=True).sqrt().clamp_min(1e-8)  # (B, 1, 1)
        level = mag + FLOOR * s  # the bin's magnitude, floored FLOOR below the clip's RMS
        phasor = unit_phasor(x)  # (B, F, frames): X / |X|, 0 where X is 0
        ref = level * phasor  # Y = P_A(X) with the floored magnitude
        u = z * phasor.conj() / level  # Z / Y: what P_C did to Y, in Y's own frame (invariant
        # to a global phase of X)
        v = u / (1 + u.abs())  # bounded (|u| reaches 1e3 where A is 0 and Z is not)
        feats = [v.real, v.imag, u.abs().log1p(), (level / s).log()]
        h = self.inp(torch.stack(feats, dim=1))  # (B, 4, F, frames) -> (B, C, F, frames)
        for layer in self.hidden:
            h = h + layer(h)
        r = self.out(h)  # (B, 2, F, frames)
        return torch.complex(r[:, 0], r[:, 1]) * ref  # (B, F, frames), in Y's frame and units


@register_model("degli")
class DeepGriffinLim(MelVocoder):
    """Deep Griffin-Lim iteration (arXiv:1903.03971) as a log-mel vocoder: fast Griffin-Lim from
    the pseudo-inverse magnitude with a trained denoiser in every iteration.

    ``forward(mel)`` runs ``iters`` sub-blocks; :meth:`reconstruct` any number of them. Logs:
    ``l1`` (Eq. (6), in units of the clip's RMS magnitude) and ``l1_gla`` (the same with the DNN
    output 0, i.e. the loss of the untrained model on the same batch).
    """

    family: ClassVar[str] = "gans"  # beside the other log-mel vocoders (it is not adversarial)
    dequantize: ClassVar[bool] = False
    config_class: ClassVar[type[Config]] = DeGLIConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 2e-4, "batch_size": 8, "grad_clip": 1.0}
    config: DeGLIConfig
    info: DataInfo

    def __init__(self, config: DeGLIConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.check_audio_and_framing()
        if c.kernel % 2 == 0:
            raise ConfigError(f"kernel = {c.kernel} must be odd (the bins keep their count).")
        if c.objective not in OBJECTIVES:
            raise ConfigError(
                f"Unknown degli objective {c.objective!r}; choose {choices(OBJECTIVES)}."
            )
        if c.snr_db[0] > c.snr_db[1]:
            raise ConfigError(f"snr_db = {c.snr_db} must be (low, high) with low <= high.")
        self.register_filterbank()
        self.denoiser = Denoiser(c)

    # --- the iteration ------------------------------------------------------------------------
    def magnitude(self, mel: Tensor) -> Tensor:
        """``A``: the clamped pseudo-inverse magnitude ``(B, F, frames)`` of a log-mel."""
        return pinv_mel_magnitude(mel, self.fb)

    def project(self, x: Tensor, mag: Tensor) -> tuple[Tensor, Tensor]:
        """``Y = P_A(X)`` and ``Z = P_C(Y)`` of Eq. (4)."""
        c = self.config
        y = mag * unit_phasor(x)  # Eq. (1)
        z = vocoder_stft(vocoder_istft(y, c.n_fft, c.hop), c.n_fft, c.hop)  # Eq. (2)
        return y, z

    def dnn_from(self, n_iter: int) -> int:
        """The first of ``n_iter`` sub-blocks that runs the DNN (the last ``dnn_iters`` do)."""
        k = self.config.dnn_iters
        return 0 if k is None else max(n_iter - k, 0)

    def iterate(
        self,
        mag: Tensor,
        n_iter: int,
        dnn_from: int = 0,
        state: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``(X, Z')`` after ``n_iter`` sub-blocks from ``state`` (``(X, Z')`` of an earlier
        call; ``None``: zero phase), the DNN in sub-blocks ``dnn_from, dnn_from + 1, ...``
        (before them, and with ``dnn_from >= n_iter``, plain fast Griffin-Lim, Eq. (3)), with
        fast Griffin-Lim's momentum around each."""
        beta = self.config.momentum / (1 + self.config.momentum)
        if state is None:
            x = torch.ones_like(mag, dtype=torch.complex128 if mag.dtype == torch.float64
                                else torch.complex64)  # fmt: skip
            previous = torch.zeros_like(x)
        else:
            x, previous = state
        for i in range(n_iter):
            y, z = self.project(x, mag)
            if i >= dnn_from:
                z = z - self.denoiser(x, y, z, mag)  # Eq. (5)
            x = z - previous * beta  # fast Griffin-Lim's extrapolation (momentum 0: x = z)
            previous = z
        return x, previous

    def waveform(self, x: Tensor, mag: Tensor) -> Tensor:
        """``iSTFT(P_A(X))``: waveforms ``(B, frames * hop)``."""
        return vocoder_istft(mag * unit_phasor(x), self.config.n_fft, self.config.hop)

    def reconstruct(self, mel: Tensor, n_iter: int | None = None) -> Tensor:
        """Waveforms ``(B, frames * hop)`` of log-mels ``(B, n_mels, frames)`` after ``n_iter``
        sub-blocks (``None``: ``iters``), the last ``dnn_iters`` of them with the DNN."""
        n = self.config.iters if n_iter is None else n_iter
        mag = self.magnitude(mel)  # (B, F, frames)
        x, _ = self.iterate(mag, n, self.dnn_from(n))
        return self.waveform(x, mag)

    def forward(self, mel: Tensor) -> Tensor:
        """The vocoder: log-mel ``(B, n_mels, frames)`` -> waveform ``(B, frames * hop)``."""
        return self.reconstruct(mel)

    # --- training -----------------------------------------------------------------------------
    @property
    def game_on(self) -> bool:
        """No adversarial game: DeGLI trains its denoiser alone."""
        return False

    def degraded(self, target: Tensor, mag: Tensor) -> Tensor:
        """``X~`` of Eq. (6) per example ``(B, F, frames)``: the paper's ``X* + N`` or a fast
        Griffin-Lim iterate (see the module docstring)."""
        c = self.config
        b = target.shape[0]
        dev = target.device
        lo, hi = c.snr_db
        snr = lo + (hi - lo) * rand((b, 1, 1), device=dev)  # dB
        power = target.abs().pow(2).mean(dim=(-2, -1), keepdim=True)  # (B, 1, 1)
        sigma = (power / 10 ** (snr / 10) / 2).sqrt()  # per real and imaginary part
        noise = torch.complex(randn(target.shape, device=dev), randn(target.shape, device=dev))
        noisy = target + sigma * noise
        m = int(rand((), device=dev) * max(c.iters, 1))  # one iteration count per batch
        with torch.no_grad():
            gla, _ = self.iterate(mag, m, dnn_from=m)  # fast Griffin-Lim alone
        use_noise = (rand((b, 1, 1), device=dev) < c.noise_fraction).to(target.real.dtype)
        return use_noise * noisy + (1 - use_noise) * gla

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """On random segments: the mel L1 of Eq. (7) through the DNN's sub-blocks
        (``objective="unrolled"``) or the paper's denoising L1 of Eq. (6) on one sub-block."""
        c = self.config
        xw = random_segments(batch["x"], c.segment, c.hop)  # (B, seg)
        mel = self.mel(xw)  # (B, M, frames)
        mag = self.magnitude(mel)  # (B, F, frames)
        if c.objective == "unrolled":
            start = self.dnn_from(c.iters)
            with torch.no_grad():  # the sub-blocks before the DNN's: fast Griffin-Lim
                state = self.iterate(mag, start, dnn_from=start)
            x, _ = self.iterate(mag, c.iters - start, dnn_from=0, state=state)
            mel_l1 = (self.mel(self.waveform(x, mag)) - mel).abs().mean()  # Eq. (7)
            with torch.no_grad():  # the same sub-blocks without the DNN: Griffin-Lim's loss
                x0, _ = self.iterate(mag, c.iters - start, dnn_from=c.iters, state=state)
                gla = (self.mel(self.waveform(x0, mag)) - mel).abs().mean()
            return LossOutput(mel_l1, {"mel_l1": mel_l1.detach(), "mel_l1_gla": gla})
        target = vocoder_stft(xw, c.n_fft, c.hop)  # X*, (B, F, frames)
        x_deg = self.degraded(target, mag)
        y, z = self.project(x_deg, mag)  # Eq. (4)
        residual = self.denoiser(x_deg, y, z, mag)
        s = mag.pow(2).mean(dim=(-2, -1), keepdim=True).sqrt().clamp_min(1e-8)  # (B, 1, 1)
        want = z - target  # the residual towards the clean spectrogram
        err = torch.view_as_real((residual - want) / s).abs()  # (B, F, frames, 2)
        l1 = err.mean()  # Eq. (6)
        l1_gla = torch.view_as_real(want / s).abs().mean().detach()
        return LossOutput(l1, {"l1": l1.detach(), "l1_gla": l1_gla})
