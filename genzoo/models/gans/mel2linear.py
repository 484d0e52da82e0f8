"""A learned mel-to-linear magnitude before Griffin-Lim: Tacotron's post-processing network.

Wang, Skerry-Ryan, Stanton, Wu, Weiss, Jaitly, Yang, Xiao, Chen, Bengio, Le, Agiomyrgiannakis,
Clark & Saurous, "Tacotron: Towards End-to-End Speech Synthesis", arXiv:1703.10135, Sec. 3.3 and
Fig. 1: a post-processing network converts the mel spectrogram into a linear-scale magnitude
spectrogram, trained with an L1 loss against the clip's own, and Griffin-Lim (Sec. 3.4) supplies
the phase. The mel spectrogram fixes only ``n_mels`` weighted sums of the ``n_fft / 2 + 1`` bins
of each frame; what lies between the filters' centres (harmonics inside a wide band, the shape of
a formant) the network infers from context. Here the log-mel ``m`` ``(B, M, frames)`` is the
vocoder benchmark's (:func:`genzoo.audio.spectral.vocoder_log_mel`) and:

    A_0 = max(W^+ exp(m), 0)            (the clamped pseudo-inverse magnitude)      (Eq. (1))
    (d, e) = f_theta(m)                 (1-D convolutions over frames, mels as channels)
    A = max(A_0 exp(d) + s e, 0)        (s: the frame's RMS of A_0)                 (Eq. (2))
    A <- A * W^T (exp(m) / (W A)) / W^T 1   (mel_fit times: band sums to the mel)     (Eq. (2b))
    L = mean |ln(A + eps) - ln(|X| + eps)| + lambda_sc ||A - |X|||_F / |||X|||_F   (Eq. (3))
    waveform = fast Griffin-Lim(A)                                                 (Eq. (4))

``W`` ``(M, F)`` is the mel filterbank, ``A_0``
:func:`genzoo.audio.spectral.pinv_mel_magnitude` (the Griffin-Lim baseline's magnitude and Vocos'
magnitude prior), ``X`` the clip's STFT in the vocoder framing, ``eps`` a floor 80 dB below the
clip's RMS ``|X|`` (:data:`FLOOR`), Eq. (4) :func:`genzoo.audio.spectral.griffin_lim_vocoder`
from zero phase (``iters``, ``momentum``). The equation numbers are this docstring's.

genzoo's choices (not the paper's):

- **Residual on the pseudo-inverse, zero start.** Tacotron's CBHG predicts the magnitude from
  scratch (and in the paper from a mel it generated itself). Here ``f_theta``'s last layer starts
  at zero, so an untrained model's magnitude *is* ``A_0`` and (``mel_fit = 0``) its vocoder *is*
  the Griffin-Lim baseline with the same iterations and momentum (tested to 1e-12); training
  spends its steps on what the pseudo-inverse gets wrong. ``d`` corrects a bin multiplicatively
  (any scale), ``e`` fills the bins that ``A_0`` clamps at 0 (in units of the frame's RMS, so
  both are invariant to the clip's loudness: tested).
- **Back onto the mel** (``mel_fit``, Eq. (2b), :func:`mel_fit`): a few multiplicative updates
  that keep the network's shape inside each band and move the band sums to the given mel. The
  L1 of Eq. (3) is a median regression: on noise-like bins (the data's silence holds white noise)
  it predicts magnitudes below their mean, so the band sums of ``A`` fall short of the mel; in a
  probe (24 held-out clips, 1,500 steps without the update) that cost Griffin-Lim more than the
  better shape gained (mel L1 0.083 against 0.078 for ``A_0``), and 5 updates turned it into a
  gain (0.074). The updates run inside the model, trained through. With ``mel_fit = 0`` an
  untrained model is the Griffin-Lim baseline exactly; with ``mel_fit > 0`` it is fast
  Griffin-Lim from ``A_0`` after the same updates, which the benchmark scores as its own row.
- **A CBHG-lite**: Tacotron's CBHG (a bank of 1-D convolutions, max-pooling, projections,
  highway layers, a bidirectional GRU) shrunk for a CPU: one 1-D convolution from the mels to
  ``channels``, ``layers`` residual convolutions (GELU) over frames, an optional bidirectional
  GRU (``gru``, the CBHG's last stage), a 1 x 1 convolution to ``2 (n_fft / 2 + 1)`` outputs. The
  input is the log-mel less its clip mean (loudness-free).
- **The loss**: the paper's L1, on log magnitudes (the log-mel's and the mel-cepstral
  distortion's domain: quiet bins count as much as loud ones), plus the spectral convergence
  (not in the paper; Arik et al., arXiv:1808.06719; the loud bins), weight ``lambda_sc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.audio.spectral import (
    griffin_lim_vocoder,
    pinv_mel_magnitude,
)
from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, LossOutput
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.models.gans.vocoder import MelVocoder, random_segments

FLOOR = 1e-4  # eps of Eq. (3), relative to the clip's RMS |X| (80 dB below it)
SCALE_FLOOR = 1e-5  # floor of the frame scale s (the log-mel's own floor)
MAX_FIT_GAIN = 100.0  # the most one update of Eq. (2b) multiplies a band by
MAX_LOG_GAIN = 10.0  # d is clipped here: no overflow of exp(d) after a wild early step


@dataclass(frozen=True)
class Mel2LinearConfig(Config):
    """Configuration of :class:`Mel2Linear` (defaults: the vocoder benchmark's framing)."""

    n_fft: int = bounded(256, ge=16)  # STFT size of the log-mel, the magnitude and Griffin-Lim
    hop: int = bounded(64, ge=1)  # hop between frames (n_fft - hop even)
    n_mels: int = bounded(64, ge=8)  # mel bands (genzoo's Slaney mel convention)
    channels: int = bounded(128, ge=2)  # channels of the 1-D convolutions
    layers: int = bounded(4, ge=0)  # residual convolutions over frames
    kernel: int = bounded(5, ge=1)  # kernel of the convolutions over frames (odd)
    gru: bool = False  # a bidirectional GRU after the convolutions (the CBHG's last stage)
    iters: int = bounded(100, ge=0)  # fast Griffin-Lim iterations when vocoding, Eq. (4)
    momentum: float = bounded(0.99, ge=0.0, lt=1.0)  # fast Griffin-Lim's alpha (0: plain)
    lambda_sc: float = bounded(1.0, ge=0.0)  # weight of the spectral convergence, Eq. (3)
    segment: int = bounded(4096, ge=0)  # training: a random segment of this many samples of each
    # clip (a multiple of hop; 0: the whole clip)
    mel_fit: int = bounded(5, ge=0)  # multiplicative updates of A towards the log-mel, Eq. (2b)
    # (0: none; then an untrained model is the Griffin-Lim baseline exactly)


def mel_fit(a: Tensor, log_mel: Tensor, fb: Tensor, n_iter: int) -> Tensor:
    """``n_iter`` multiplicative updates of magnitudes ``a`` ``(B, F, frames)`` towards mel
    spectrograms ``exp(log_mel)`` ``(B, M, frames)`` through the filterbank ``fb`` ``(F, M)``:

        A <- A * W^T (exp(m) / (W A)) / W^T 1                                        (Eq. (2b))

    Lee & Seung's multiplicative update for the generalised KL divergence between ``exp(m)`` and
    ``W A`` with ``W`` fixed (NMF, NIPS 2001; the Richardson-Lucy iteration): it keeps ``A >= 0``
    and its zeros, keeps each band's shape over its bins and moves the band sums towards the mel
    (their fixed point), each update by at most :data:`MAX_FIT_GAIN` (a band that ``A`` leaves
    empty would otherwise divide by 0: NaN gradients in a probe). Bins that no filter covers
    (``W^T 1 = 0``: 0 Hz, Nyquist) are kept.
    Written here because no library runs NMF's update with a fixed dictionary on tensors with a
    gradient (scikit-learn's NMF fits both factors, on NumPy)."""
    cover = fb.sum(dim=1)[:, None]  # (F, 1): W^T 1
    covered = cover > 0
    target = log_mel.exp()  # (B, M, frames)
    for _ in range(n_iter):
        band = (fb.T @ a).clamp_min(MAX_FIT_GAIN**-1 * target)  # (M, F) @ (B, F, fr) -> (B, M, fr)
        ratio = target / band  # at most MAX_FIT_GAIN: a finite gradient where a band is empty
        a = torch.where(covered, a * (fb @ ratio) / cover.clamp_min(1e-30), a)  # Eq. (2b)
    return a


class PostNet(nn.Module):
    """``f_theta``: log-mel ``(B, M, frames)`` -> ``(d, e)``, each ``(B, F, frames)``."""

    def __init__(self, c: Mel2LinearConfig) -> None:
        super().__init__()
        bins = c.n_fft // 2 + 1
        self.inp = nn.Conv1d(c.n_mels, c.channels, c.kernel, padding=c.kernel // 2)
        self.hidden = nn.ModuleList(
            nn.Conv1d(c.channels, c.channels, c.kernel, padding=c.kernel // 2)
            for _ in range(c.layers)
        )
        self.gru = (
            nn.GRU(c.channels, c.channels // 2, batch_first=True, bidirectional=True)
            if c.gru
            else None
        )
        self.out = nn.Conv1d(c.channels, 2 * bins, 1)
        nn.init.zeros_(self.out.weight)  # the zero start: A = A_0, the Griffin-Lim baseline
        nn.init.zeros_(self.out.bias)

    def forward(self, mel: Tensor) -> tuple[Tensor, Tensor]:
        h = self.inp(mel - mel.mean(dim=(1, 2), keepdim=True))  # (B, C, frames), loudness-free
        for conv in self.hidden:
            h = h + conv(F.gelu(h))
        if self.gru is not None:
            g, _ = self.gru(h.transpose(1, 2))  # (B, frames, 2 (C // 2))
            h = h + F.pad(g, (0, h.shape[1] - g.shape[-1])).transpose(1, 2)  # (B, C, frames)
        d, e = self.out(F.gelu(h)).chunk(2, dim=1)  # (B, F, frames) each
        return d, e


@register_model("mel2linear-gl")
class Mel2Linear(MelVocoder):
    """Tacotron's post-processing network (arXiv:1703.10135) as a log-mel vocoder: a learned
    linear magnitude from the log-mel, a residual over its pseudo-inverse, then fast Griffin-Lim.

    :meth:`magnitude` is Eq. (2), ``forward(mel)`` Eq. (4) with ``iters`` iterations. Logs:
    ``log_l1`` (the first term of Eq. (3)), ``log_l1_pinv`` (the same for ``A_0`` after the same
    mel-fit updates: the untrained model's on the same batch) and ``sc`` (the second term, a
    ratio, not dB).
    """

    family: ClassVar[str] = "gans"  # beside the other log-mel vocoders (it is not adversarial)
    dequantize: ClassVar[bool] = False
    config_class: ClassVar[type[Config]] = Mel2LinearConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 16, "grad_clip": 1.0}
    config: Mel2LinearConfig
    info: DataInfo

    def __init__(self, config: Mel2LinearConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.check_audio_and_framing()
        if c.kernel % 2 == 0:
            raise ConfigError(f"kernel = {c.kernel} must be odd (the frames keep their count).")
        self.register_filterbank()
        self.net = PostNet(c)

    def magnitude(self, mel: Tensor) -> Tensor:
        """``A`` of Eq. (2): the learned magnitude ``(B, F, frames)`` of log-mels ``(B, M,
        frames)``, in their dtype (``A_0`` exactly while the last layer is zero)."""
        base = pinv_mel_magnitude(mel, self.fb.to(mel.dtype))  # Eq. (1), (B, F, frames)
        d, e = (t.to(mel.dtype) for t in self.net(mel.to(self.fb.dtype)))  # zero at the start:
        # then A = A_0 exp(0) + s 0 = A_0 bit for bit
        s = base.detach().pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(SCALE_FLOOR)  # (B,1,T)
        a = (base * d.clamp(max=MAX_LOG_GAIN).exp() + s * e).clamp_min(0.0)  # Eq. (2)
        return mel_fit(a, mel, self.fb.to(mel.dtype), self.config.mel_fit)

    def reconstruct(self, mel: Tensor, n_iter: int | None = None) -> Tensor:
        """Waveforms ``(B, frames * hop)`` of log-mels ``(B, n_mels, frames)``: fast Griffin-Lim
        (``n_iter``; ``None``: ``iters``) from the learned magnitude, Eq. (4)."""
        c = self.config
        n = c.iters if n_iter is None else n_iter
        return griffin_lim_vocoder(self.magnitude(mel), c.n_fft, c.hop, n, c.momentum)  # Eq. (4)

    def forward(self, mel: Tensor) -> Tensor:
        """The vocoder: log-mel ``(B, n_mels, frames)`` -> waveform ``(B, frames * hop)``."""
        return self.reconstruct(mel)

    @property
    def game_on(self) -> bool:
        """No adversarial game: the network is a regressor."""
        return False

    def magnitude_errors(self, x: Tensor) -> dict[str, Tensor]:
        """Per clip of waveforms ``(B, T)``: the two terms of Eq. (3) for the learned magnitude
        (``log_l1``, ``sc``) and the log term for the untrained model's magnitude (``log_l1_pinv``:
        ``A_0`` after the same mel-fit updates)."""
        mel = self.mel(x)  # (B, M, frames)
        target = self.stft_magnitude(x)  # |X|, (B, F, frames)
        eps = FLOOR * target.pow(2).mean(dim=(1, 2), keepdim=True).sqrt().clamp_min(1e-8)
        mag = self.magnitude(mel)

        def log_l1(a: Tensor) -> Tensor:
            return ((a + eps).log() - (target + eps).log()).abs().mean(dim=(1, 2))

        sc = (mag - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1).clamp_min(1e-8)
        with torch.no_grad():  # the untrained model's magnitude
            pinv = log_l1(
                mel_fit(pinv_mel_magnitude(mel, self.fb), mel, self.fb, self.config.mel_fit)
            )
        return {"log_l1": log_l1(mag), "sc": sc, "log_l1_pinv": pinv}

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """Eq. (3) on random segments of the clips."""
        errs = self.magnitude_errors(
            random_segments(batch["x"], self.config.segment, self.config.hop)
        )
        log_l1, sc = errs["log_l1"].mean(), errs["sc"].mean()
        loss = log_l1 + self.config.lambda_sc * sc  # Eq. (3)
        logs = {
            "log_l1": log_l1.detach(),
            "sc": sc.detach(),
            "log_l1_pinv": errs["log_l1_pinv"].mean(),
        }
        return LossOutput(loss, logs)

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """The vocoder's per-clip ``mel_l1``, ``lsd`` and ``sc`` (:class:`MelVocoder`), and the
        magnitude's own ``log_l1`` beside the pseudo-inverse's ``log_l1_pinv`` (Eq. (3))."""
        out = super().eval_metrics(batch, generator)
        hop = self.config.hop
        x = batch["x"][:, : batch["x"].shape[1] - batch["x"].shape[1] % hop]
        errs = self.magnitude_errors(x.to(self.device, torch.float32))
        return {**out, "log_l1": errs["log_l1"], "log_l1_pinv": errs["log_l1_pinv"]}
