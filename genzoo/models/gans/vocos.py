"""Vocos: a vocoder that predicts STFT coefficients at the frame rate and inverts them (small, CPU).

Siuzdak, "Vocos: Closing the gap between time-domain and Fourier-based neural vocoders for high-
quality audio synthesis", arXiv:2306.00814. Where HiFi-GAN upsamples the log-mel to the sample
rate with transposed convolutions, Vocos never leaves the frame rate: a ConvNeXt backbone
(Sec. 3.1; Liu et al. arXiv:2201.03545) maps the log-mel ``(B, M, frames)`` to one feature vector
per frame, a linear head predicts per frame and frequency bin a log-magnitude ``m`` and a phase
``p`` (Sec. 3.2), and the inverse STFT turns the complex spectrogram into the waveform:

    M = exp(m),   x = cos(p),   y = sin(p),   S = M (x + i y)                      (Eq. (1))
    waveform = iSTFT(S)                                                            (Eq. (2))

(``p`` is read through cos and sin, the paper's "implicit phase wrapping": any real ``p`` is a
valid angle). The iSTFT is :func:`genzoo.audio.spectral.vocoder_istft`, the exact inverse of the
vocoder framing the log-mel is taken with ("same" padding, as the authors' ``ISTFTHead``), so
``frames`` log-mel frames give ``frames * hop`` samples that line up with the input clip, and a
frame's magnitude is the very ``|STFT|`` the mel is computed from.

Training (Sec. 3.3, 4): the mel L1 of Eq. (2) of HiFi-GAN (weight 45), a multi-period
discriminator (HiFi-GAN's MPD) and a multi-resolution discriminator (UnivNet's MRD, 2-D convs on
``|STFT|`` at three resolutions), each with the hinge loss and feature matching:

    L_D = sum_k E[max(0, 1 - D_k(x)) + max(0, 1 + D_k(G(s)))]                      (Eq. (3))
    L_adv(G) = sum_k E[max(0, 1 - D_k(G(s)))]                                        (Eq. (4))
    L_G = L_adv,MPD + L_fm,MPD + c_mrd (L_adv,MRD + L_fm,MRD) + lambda_mel L_mel     (Eq. (5))

with the weights of the authors' code (``lambda_mel = 45``, ``c_mrd = 0.1``, feature matching
1), AdamW lr 5e-4, betas (0.8, 0.9), D then G (genzoo's one Trainer, groups ``d`` and ``g``).
``mel_warmup`` trains G on the reconstruction terms alone for its first steps while D waits
(the authors' code calls it ``pretrain_mel_steps``; 0: the GAN from the start).

genzoo's choice, not the paper's: with ``magnitude_prior=True`` (default) the head's ``m`` is a
residual over the log of the mel's clamped pseudo-inverse magnitude
(:func:`genzoo.audio.spectral.pinv_mel_magnitude`, what a Griffin-Lim baseline starts from) and
the head starts at zero, so an untrained model outputs that magnitude with zero phase
(Griffin-Lim's starting point) and training spends its steps on the phase and on what the
pseudo-inverse gets wrong. The paper predicts ``m`` from scratch (``magnitude_prior=False``).
Optional reconstruction terms, not in the paper (all 0 by default): ``lambda_phase``, APNet's
anti-wrapped phase losses against the clip's own STFT phase, and ``lambda_mag``, its log-
magnitude MSE (Ai & Ling, arXiv:2305.07952); ``lambda_stft``, Parallel WaveGAN's
multi-resolution STFT loss (arXiv:1910.11480); they are added to the mel term of Eq. (5).
Sizes: the paper has 512 channels, 1536 in the ConvNeXt MLPs and
8 blocks at 24 kHz (hop 256); genzoo's defaults are 128, 384 and 6 blocks for 8 kHz speech at
n_fft 256, hop 64 (HiFi-GAN's framing here, so the two vocoders take the same log-mel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from genzoo.audio.spectral import (
    vocoder_istft,
    vocoder_stft,
)
from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError, choices
from genzoo.core.protocol import Batch, LossOutput
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.models.gans.hifigan import LRELU, PeriodDiscriminator
from genzoo.models.gans.players import player_groups, player_settings
from genzoo.models.gans.vocoder import MelVocoder, random_segments
from genzoo.nn.gan_nets import frozen

LOG_FLOOR = 1e-5  # floor of the log-magnitude prior (the log-mel's own floor)
MAX_MAGNITUDE = 100.0  # the authors' clip of exp(m): no overflow of a wild early step


@dataclass(frozen=True)
class VocosConfig(Config):
    """Configuration of :class:`Vocos` (defaults: a small model for 8 kHz speech on a CPU)."""

    n_fft: int = bounded(256, ge=16)  # STFT size of the log-mel, of the head and of the mel loss
    hop: int = bounded(64, ge=1)  # hop between frames (n_fft - hop even)
    n_mels: int = bounded(64, ge=8)  # mel bands (genzoo's Slaney mel convention)
    dim: int = bounded(128, ge=8)  # ConvNeXt channels (paper: 512)
    intermediate: int = bounded(384, ge=8)  # channels inside each block's MLP (paper: 1536)
    layers: int = bounded(6, ge=1)  # ConvNeXt blocks (paper: 8)
    kernel: int = bounded(7, ge=1)  # depthwise convolution kernel over frames (odd)
    magnitude_prior: bool = True  # m is a residual over the pseudo-inverse log-magnitude
    # (genzoo's choice, see the module docstring; False: the paper's m from scratch)
    periods: tuple[int, ...] = bounded((2, 3, 5, 7, 11), ge=1)  # MPD sub-discriminator periods
    mpd_width: int = bounded(4, ge=1)  # MPD channels w: stages w, 4w, 16w, 32w, 32w (paper: 32)
    resolutions: tuple[int, ...] = bounded((512, 256, 128), ge=16)  # MRD FFT sizes (hop n / 4)
    mrd_width: int = bounded(16, ge=1)  # MRD channels (paper: 32)
    segment: int = bounded(4096, ge=0)  # training: a random segment of this many samples of each
    # clip (a multiple of hop; 0: the whole clip)
    lambda_mel: float = bounded(45.0, ge=0.0)  # weight of the mel L1 loss, Eq. (5)
    mrd_weight: float = bounded(0.1, ge=0.0)  # c_mrd: weight of the MRD's adversarial and FM
    # terms, Eq. (5) (the authors' code)
    betas: tuple[float, float] = bounded((0.8, 0.9), ge=0.0, lt=1.0)  # AdamW betas, both players
    lr_d: float | None = bounded(None, gt=0.0)  # D learning rate (None: the trainer's lr)
    lr_g: float | None = bounded(None, gt=0.0)  # G learning rate (None: the trainer's lr)
    mel_warmup: int = bounded(0, ge=0)  # the first mel_warmup G steps train on the
    # reconstruction terms alone while D waits (the authors' pretrain_mel_steps; 0: GAN at once)
    lambda_stft: float = bounded(0.0, ge=0.0)  # weight of a multi-resolution STFT loss at the
    # MRD's resolutions (Parallel WaveGAN's; not in the paper: 0)
    lambda_phase: float = bounded(0.0, ge=0.0)  # weight of APNet's anti-wrapped phase losses
    # against the clip's own STFT phase (not in the paper: 0)
    lambda_mag: float = bounded(0.0, ge=0.0)  # weight of APNet's amplitude loss, the mean
    # squared log-magnitude error against the clip's own |STFT| (not in the paper: 0)


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block over frames (Sec. 3.1): depthwise conv, LayerNorm, MLP with GELU, a
    per-channel scale ``gamma`` (layer scale, initialised at ``1 / layers``), residual."""

    def __init__(self, dim: int, intermediate: int, kernel: int, scale: float) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, intermediate)
        self.pw2 = nn.Linear(intermediate, dim)
        self.gamma = nn.Parameter(torch.full((dim,), scale))

    def forward(self, x: Tensor) -> Tensor:
        h = self.dwconv(x).transpose(1, 2)  # (B, C, frames) -> (B, frames, C)
        h = self.gamma * self.pw2(F.gelu(self.pw1(self.norm(h))))
        return x + h.transpose(1, 2)  # (B, C, frames)


class Backbone(nn.Module):
    """Log-mel ``(B, M, frames)`` -> features ``(B, frames, dim)``: a 7-tap embedding conv,
    LayerNorm, the ConvNeXt blocks, a final LayerNorm (the authors' ``VocosBackbone``)."""

    def __init__(self, c: VocosConfig) -> None:
        super().__init__()
        self.embed = nn.Conv1d(c.n_mels, c.dim, 7, padding=3)
        self.norm = nn.LayerNorm(c.dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(c.dim, c.intermediate, c.kernel, 1.0 / c.layers) for _ in range(c.layers)
        )
        self.final_norm = nn.LayerNorm(c.dim, eps=1e-6)

    def forward(self, mel: Tensor) -> Tensor:
        h = self.norm(self.embed(mel).transpose(1, 2)).transpose(1, 2)  # (B, C, frames)
        for block in self.blocks:
            h = block(h)
        return self.final_norm(h.transpose(1, 2))  # (B, frames, C)


class ResolutionDiscriminator(nn.Module):
    """One MRD sub-discriminator (UnivNet's, as in Vocos): 2-D convs over the log of ``|STFT|``
    at one resolution (FFT ``n``, hop ``n / 4``, Hann window)."""

    def __init__(self, n_fft: int, width: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        w = width
        self.convs = nn.ModuleList(
            [
                weight_norm(nn.Conv2d(1, w, (7, 5), (2, 2), padding=(3, 2))),
                weight_norm(nn.Conv2d(w, w, (5, 3), (2, 1), padding=(2, 1))),
                weight_norm(nn.Conv2d(w, w, (5, 3), (2, 2), padding=(2, 1))),
                weight_norm(nn.Conv2d(w, w, 3, (2, 1), padding=1)),
                weight_norm(nn.Conv2d(w, w, 3, (2, 2), padding=1)),
            ]
        )
        self.post = weight_norm(nn.Conv2d(w, 1, 3, padding=1))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(B, T)`` -> (logits flattened ``(B, n)``, each layer's output for feature matching)."""
        win = torch.hann_window(self.n_fft, device=x.device, dtype=x.dtype)
        spec = torch.stft(x, self.n_fft, self.n_fft // 4, window=win, return_complex=True)
        h = spec.abs().clamp_min(1e-5).log()[:, None]  # (B, 1, F, frames)
        feats = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), LRELU)
            feats.append(h)
        h = self.post(h)
        feats.append(h)
        return h.flatten(1), feats


def hinge_d_loss(real: list[Tensor], fake: list[Tensor]) -> Tensor:
    """Eq. (3), summed over sub-discriminators: ``E[max(0, 1 - D(x)) + max(0, 1 + D(G(s)))]``."""
    return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real, fake, strict=True))


def hinge_g_loss(fake: list[Tensor]) -> Tensor:
    """Eq. (4), summed: ``E[max(0, 1 - D(G(s)))]``."""
    return sum(F.relu(1 - f).mean() for f in fake)


def feature_matching(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """The mean absolute difference of every layer's output, summed over layers and
    sub-discriminators (HiFi-GAN's Eq. (3), as Vocos uses it)."""
    return sum(
        (r.detach() - f).abs().mean()
        for rs, fs in zip(real, fake, strict=True)
        for r, f in zip(rs, fs, strict=True)
    )


def stft_loss(x: Tensor, y: Tensor, resolutions: tuple[int, ...]) -> Tensor:
    """Multi-resolution STFT loss (Yamamoto et al., Parallel WaveGAN, arXiv:1910.11480, Eqs.
    (1)-(3)), summed over resolutions ``n`` (hop ``n / 4``, Hann): the spectral convergence
    ``|| |S| - |S_hat| ||_F / || |S| ||_F`` plus the mean absolute log-magnitude difference."""
    total = x.new_zeros(())
    for n in resolutions:
        win = torch.hann_window(n, device=x.device, dtype=x.dtype)
        s, s_hat = (
            torch.stft(w, n, n // 4, window=win, return_complex=True).abs().clamp_min(1e-7)
            for w in (x, y)
        )  # (B, F, frames)
        sc = (s - s_hat).flatten(1).norm(dim=1) / s.flatten(1).norm(dim=1)
        total = total + sc.mean() + (s.log() - s_hat.log()).abs().mean()
    return total


def anti_wrap(d: Tensor) -> Tensor:
    """APNet's anti-wrapping function ``|d - 2 pi round(d / 2 pi)|``: the distance of two angles."""
    return (d - 2 * torch.pi * torch.round(d / (2 * torch.pi))).abs()


def phase_loss(p_hat: Tensor, p: Tensor) -> Tensor:
    """APNet's phase losses (Ai & Ling, arXiv:2305.07952, Sec. 2.3) on ``(B, F, frames)``
    angles: instantaneous phase, group delay (the difference along frequency) and instantaneous
    angular frequency (the difference along time), each the mean anti-wrapped error."""
    ip = anti_wrap(p_hat - p).mean()
    gd = anti_wrap(p_hat.diff(dim=1) - p.diff(dim=1)).mean()
    iaf = anti_wrap(p_hat.diff(dim=2) - p.diff(dim=2)).mean()
    return ip + gd + iaf


@register_model("vocos")
class Vocos(MelVocoder):
    """Vocos (arXiv:2306.00814): ConvNeXt at the frame rate, a log-magnitude + phase head, the
    inverse STFT; mel L1 + MPD + MRD with hinge and feature-matching losses; D first, then G.

    ``forward(mel)`` is the generator; :meth:`spectrogram` its complex STFT before the
    inverse; :meth:`mel` the log-mel it takes, :meth:`vocode` the generator in eval mode. Logs:
    ``d_loss``; ``g_loss``, ``g_adv``, ``fm``, ``mel_l1``.
    """

    family: ClassVar[str] = "gans"
    dequantize: ClassVar[bool] = False
    config_class: ClassVar[type[Config]] = VocosConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 5e-4, "batch_size": 16, "grad_clip": 0.0}
    config: VocosConfig
    info: DataInfo

    def __init__(self, config: VocosConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.check_audio_and_framing()
        if c.kernel % 2 == 0:
            raise ConfigError(f"kernel = {c.kernel} must be odd (the frames keep their count).")
        fb = self.register_filterbank()  # (F, M), float64
        pinv = torch.linalg.pinv(fb.T).float()  # (F, M)
        self.register_buffer("pinv", pinv, persistent=False)
        self.backbone = Backbone(c)
        self.head = nn.Linear(c.dim, c.n_fft + 2)  # per frame: n_fft/2 + 1 magnitudes, as many p
        if c.magnitude_prior:  # start at the prior with zero phase: Griffin-Lim's starting point
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self.mpd = nn.ModuleList(PeriodDiscriminator(p, c.mpd_width) for p in c.periods)
        self.mrd = nn.ModuleList(ResolutionDiscriminator(n, c.mrd_width) for n in c.resolutions)
        if c.mel_warmup > 0:  # G's steps, counted for the warm start (saved: a resume goes on)
            self.register_buffer("step", torch.zeros((), dtype=torch.long))

    # --- the vocoder --------------------------------------------------------------------------
    def spectrogram(self, mel: Tensor) -> Tensor:
        """The head: log-mel ``(B, n_mels, frames)`` -> complex STFT ``(B, F, frames)``."""
        mag, p = self.magnitude_phase(mel)
        return torch.polar(mag, p)  # Eq. (1): M (cos p + i sin p)

    def magnitude_phase(self, mel: Tensor) -> tuple[Tensor, Tensor]:
        """The head's ``M = exp(m)`` and ``p``, each ``(B, F, frames)``."""
        h = self.head(self.backbone(mel)).transpose(1, 2)  # (B, frames, n_fft + 2) -> (B, 2F, fr)
        m, p = h.chunk(2, dim=1)  # (B, F, frames) each
        if self.config.magnitude_prior:  # genzoo's residual over the pseudo-inverse magnitude
            # pinv_mel_magnitude's estimate with the pseudo-inverse kept: (F, M) @ (B, M, frames)
            m = m + (self.pinv @ mel.exp()).clamp_min(LOG_FLOOR).log()
        return m.exp().clamp_max(MAX_MAGNITUDE), p  # Eq. (1)

    def forward(self, mel: Tensor) -> Tensor:
        """The generator: log-mel ``(B, n_mels, frames)`` -> waveform ``(B, frames * hop)``."""
        return vocoder_istft(self.spectrogram(mel), self.config.n_fft, self.config.hop)  # Eq. (2)

    # --- training -----------------------------------------------------------------------------
    def discriminators(self, x: Tensor) -> tuple[list[tuple[Tensor, list[Tensor]]], ...]:
        """Waveforms ``(B, T)`` -> ((logits, features) of each MPD, of each MRD)."""
        return [d(x) for d in self.mpd], [d(x) for d in self.mrd]

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """D first, then G."""
        return player_groups([self.mpd, self.mrd], [self.backbone, self.head])

    def group_settings(self) -> dict[str, dict[str, Any]]:
        c = self.config
        return player_settings(c.betas, c.lr_d, c.lr_g)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """D's loss (``group="d"``, Eq. (3)) or G's (``group="g"``, Eq. (5)) on random segments."""
        c = self.config
        x = random_segments(batch["x"], c.segment, c.hop)  # (B, seg)
        mel = self.mel(x)  # (B, M, seg / hop)
        if group == "d":
            if not self.game_on:  # the warm start: D waits; a zero loss leaves it unchanged
                zero = sum(p.sum() for p in self.param_groups()["d"]) * 0.0
                return LossOutput(zero, {"d_loss": 0.0})
            with torch.no_grad():
                fake = self(mel)  # detached: D's step leaves G alone
            (rp, rr), (fp, fr) = self.discriminators(x), self.discriminators(fake)
            d = hinge_d_loss([o[0] for o in rp], [o[0] for o in fp])  # Eq. (3), MPD
            d = d + hinge_d_loss([o[0] for o in rr], [o[0] for o in fr])  # Eq. (3), MRD
            return LossOutput(d, {"d_loss": d.detach()})
        if group != "g":
            raise ConfigError(
                f"vocos loss group {group!r} is not valid; choose {choices(['d', 'g'])}."
            )
        mag, p = self.magnitude_phase(mel)
        fake = vocoder_istft(torch.polar(mag, p), c.n_fft, c.hop)  # (B, seg), Eq. (2)
        mel_l1 = (self.mel(fake) - mel).abs().mean()  # the mel L1 (HiFi-GAN's Eq. (2))
        recon = c.lambda_mel * mel_l1
        extra: dict[str, Tensor | float] = {"mel_l1": mel_l1.detach()}
        if c.lambda_stft > 0:
            mrstft = stft_loss(x, fake, c.resolutions)
            recon = recon + c.lambda_stft * mrstft
            extra["stft"] = mrstft.detach()
        if c.lambda_phase > 0 or c.lambda_mag > 0:
            target = vocoder_stft(x, c.n_fft, c.hop)  # (B, F, frames): the clip's own STFT
        if c.lambda_phase > 0:
            ph = phase_loss(p, target.angle())
            recon = recon + c.lambda_phase * ph
            extra["phase"] = ph.detach()
        if c.lambda_mag > 0:  # APNet's amplitude loss on log magnitudes
            amp = (mag.clamp_min(LOG_FLOOR).log() - target.abs().clamp_min(LOG_FLOOR).log()).pow(2)
            recon = recon + c.lambda_mag * amp.mean()
            extra["mag"] = amp.mean().detach()
        if c.mel_warmup > 0 and self.training and torch.is_grad_enabled():
            counted = not self.game_on
            self.step += 1
            if counted:  # the warm start: the reconstruction terms alone
                logs = {"g_loss": recon.detach(), "g_adv": 0.0, "fm": 0.0}
                return LossOutput(recon, {**logs, **extra})
        # D is fixed during G's step: no gradient to its weights
        with frozen(self.mpd, self.mrd):
            with torch.no_grad():
                (rp, rr) = self.discriminators(x)
            (fp, fr) = self.discriminators(fake)
        adv_p, adv_r = hinge_g_loss([o[0] for o in fp]), hinge_g_loss([o[0] for o in fr])
        fm_p = feature_matching([o[1] for o in rp], [o[1] for o in fp])
        fm_r = feature_matching([o[1] for o in rr], [o[1] for o in fr])
        adv = adv_p + c.mrd_weight * adv_r  # Eq. (4), weighted as Eq. (5)
        fm = fm_p + c.mrd_weight * fm_r
        total = adv + fm + recon  # Eq. (5) (+ the optional reconstruction terms)
        logs = {"g_loss": total.detach(), "g_adv": adv.detach(), "fm": fm.detach(), **extra}
        return LossOutput(total, logs)
