"""HiFi-GAN: a GAN vocoder from log-mel spectrograms to waveforms (a small version for a CPU).

Kong, Kim & Bae, "HiFi-GAN: Generative Adversarial Networks for Efficient and High Fidelity Speech
Synthesis", arXiv:2010.05646. The generator (Sec. 2.1) maps a log-mel spectrogram ``(B, M,
frames)`` to ``frames * hop`` samples: a 7-tap convolution, then per stage a transposed
convolution that upsamples by ``u_i`` (kernel ``2 u_i``, channels halved) followed by a
*multi-receptive-field fusion* (MRF): the mean of residual blocks with different kernels and
dilations (ResBlock1: per dilation a leaky-ReLU, a dilated conv, a leaky-ReLU, a plain conv, a
residual connection), then a 7-tap convolution to one channel and ``tanh``. ``prod(u_i) = hop``, so
the output lines up with the frames (:func:`genzoo.audio.spectral.vocoder_log_mel`).

Two discriminators (Sec. 2.2, 2.3): the *multi-period* discriminator (MPD), one sub-discriminator
per period ``p`` in (2, 3, 5, 7, 11) that reshapes the waveform ``(B, T)`` into ``(B, 1, T / p, p)``
(reflect-padded on the right to a multiple of ``p``) and runs 2-D convolutions of kernel ``(5, 1)``
over it, so each looks at samples ``p`` apart; and the *multi-scale* discriminator (MSD) of
MelGAN, three 1-D conv stacks on the raw waveform and on it average-pooled by 2 and by 4 (spectral
norm on the first, weight norm elsewhere).

Losses (Sec. 2.4), with the least-squares GAN objective:

    L_Adv(D; G) = E[(D(x) - 1)^2 + D(G(s))^2],   L_Adv(G; D) = E[(D(G(s)) - 1)^2]      (Eq. (1))
    L_Mel(G) = E[ || phi(x) - phi(G(s)) ||_1 ]                                       (Eq. (2))
    L_FM(G; D) = E[ sum_i 1/N_i || D^i(x) - D^i(G(s)) ||_1 ]                         (Eq. (3))
    L_G = sum_k [L_Adv(G; D_k) + lambda_fm L_FM(G; D_k)] + lambda_mel L_Mel(G)        (Eq. (6))
    L_D = sum_k L_Adv(D_k; G)                                                        (Eq. (7))

with ``lambda_fm = 2``, ``lambda_mel = 45``; the sums run over the five MPD and three MSD
sub-discriminators, ``D^i`` is the i-th layer's output (N_i its elements; every mean here is over
elements, as the authors' code). Training (Sec. 3): AdamW betas (0.8, 0.99), lr 2e-4, D first then
G (genzoo's one Trainer with the ``d`` and ``g`` parameter groups), on random segments of each clip.

The paper's V1 has 512 initial channels, upsampling (8, 8, 2, 2) for hop 256 at 22,050 Hz, and
discriminators of up to 1,024 channels. genzoo's defaults are a CPU-sized model for 8 kHz speech:
hop 64 = 8 x 8, 64 initial channels, MRF kernels (3, 7, 11) with dilations (1, 3, 5) (233k
generator parameters), and discriminators an eighth (MPD) and a sixteenth (MSD) as wide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError, choices
from genzoo.core.protocol import Batch, LossOutput
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.models.gans.players import player_groups, player_settings
from genzoo.models.gans.vocoder import MelVocoder, random_segments
from genzoo.nn.gan_nets import frozen

LRELU = 0.1  # leaky-ReLU slope of the generator and the discriminators (the authors' code)


@dataclass(frozen=True)
class HiFiGANConfig(Config):
    """Configuration of :class:`HiFiGAN` (defaults: a small model for 8 kHz speech on a CPU)."""

    n_fft: int = bounded(256, ge=16)  # STFT size of the log-mel input and of the mel loss
    hop: int = bounded(64, ge=1)  # hop between frames; must equal prod(upsample_rates)
    n_mels: int = bounded(64, ge=8)  # mel bands (genzoo's Slaney mel convention)
    upsample_rates: tuple[int, ...] = bounded((8, 8), ge=1)  # u_i of the transposed convolutions
    upsample_channels: int = bounded(64, ge=2)  # channels after the first conv (halved per stage)
    resblock_kernels: tuple[int, ...] = bounded((3, 7, 11), ge=1)  # MRF: one ResBlock per kernel
    resblock_dilations: tuple[int, ...] = bounded((1, 3, 5), ge=1)  # dilations inside each block
    periods: tuple[int, ...] = bounded((2, 3, 5, 7, 11), ge=1)  # MPD sub-discriminator periods
    mpd_width: int = bounded(4, ge=1)  # MPD channels w: stages w, 4w, 16w, 32w, 32w (paper: 32)
    msd_width: int = bounded(8, ge=4)  # MSD channels w: stages w .. 8w (paper: 128); multiple of 4
    segment: int = bounded(2048, ge=0)  # training: a random segment of this many samples of each
    # clip (a multiple of hop; 0: the whole clip)
    lambda_fm: float = bounded(2.0, ge=0.0)  # weight of the feature-matching loss, Eq. (6)
    lambda_mel: float = bounded(45.0, ge=0.0)  # weight of the mel L1 loss, Eq. (6)
    betas: tuple[float, float] = bounded((0.8, 0.99), ge=0.0, lt=1.0)  # Adam betas of both players
    lr_d: float | None = bounded(None, gt=0.0)  # D learning rate (None: the trainer's lr)
    lr_g: float | None = bounded(None, gt=0.0)  # G learning rate (None: the trainer's lr)
    mel_warmup: int = bounded(0, ge=0)  # warm start, not in the paper: the first mel_warmup G
    # steps train G on lambda_mel * mel L1 alone while D waits (0: the paper's recipe)


def _conv_pad(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2  # "same" length for odd kernels


class ResBlock1(nn.Module):
    """HiFi-GAN's ResBlock1 (Fig. 1): per dilation d, ``x += conv(lrelu(conv_d(lrelu(x))))``."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(
                nn.Conv1d(channels, channels, kernel, dilation=d, padding=_conv_pad(kernel, d))
            )
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel, padding=_conv_pad(kernel)))
            for _ in dilations
        )

    def forward(self, x: Tensor) -> Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU)), LRELU))  # (B, C, T)
        return x


class Generator(nn.Module):
    """Log-mel ``(B, M, frames)`` -> waveform ``(B, frames * prod(upsample_rates))`` in [-1, 1]."""

    def __init__(self, c: HiFiGANConfig) -> None:
        super().__init__()
        ch = c.upsample_channels
        self.conv_pre = weight_norm(nn.Conv1d(c.n_mels, ch, 7, padding=3))
        self.ups = nn.ModuleList()
        self.mrfs = nn.ModuleList()
        for i, u in enumerate(c.upsample_rates):
            c_in, c_out = ch // 2**i, ch // 2 ** (i + 1)
            # kernel 2u, stride u, padding u/2 (+ output padding for odd u): length exactly x u
            self.ups.append(
                weight_norm(
                    nn.ConvTranspose1d(
                        c_in, c_out, 2 * u, u, padding=(u + 1) // 2, output_padding=u % 2
                    )
                )
            )
            self.mrfs.append(
                nn.ModuleList(ResBlock1(c_out, k, c.resblock_dilations) for k in c.resblock_kernels)
            )
        self.conv_post = weight_norm(nn.Conv1d(ch // 2 ** len(c.upsample_rates), 1, 7, padding=3))

    def forward(self, mel: Tensor) -> Tensor:
        h = self.conv_pre(mel)  # (B, C, frames)
        for up, mrf in zip(self.ups, self.mrfs, strict=True):
            h = up(F.leaky_relu(h, LRELU))  # (B, C / 2, T_i * u_i)
            h = sum(block(h) for block in mrf) / len(mrf)  # MRF: the mean of the blocks
        h = self.conv_post(F.leaky_relu(h))  # (B, 1, T); the authors' code uses slope 0.01 here
        return torch.tanh(h)[:, 0]  # (B, T)


def period_view(x: Tensor, period: int) -> Tensor:
    """The MPD's reshape: waveforms ``(B, T)`` -> ``(B, 1, ceil(T / p), p)``, right-padded by
    reflection to a multiple of ``p`` first (the authors' rule), so that column ``j`` holds the
    samples ``j, j + p, j + 2p, ...``."""
    b, t = x.shape
    if t % period:
        x = F.pad(x[:, None], (0, period - t % period), mode="reflect")[:, 0]  # (B, T')
    return x.reshape(b, 1, -1, period)  # (B, 1, T' / p, p)


class PeriodDiscriminator(nn.Module):
    """One MPD sub-discriminator: 2-D convs, kernel (5, 1), stride (3, 1), on the period view."""

    def __init__(self, period: int, width: int) -> None:
        super().__init__()
        self.period = period
        chans = [1, width, 4 * width, 16 * width, 32 * width]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(chans[i], chans[i + 1], (5, 1), (3, 1), padding=(2, 0)))
            for i in range(4)
        )
        self.convs.append(weight_norm(nn.Conv2d(chans[-1], chans[-1], (5, 1), 1, padding=(2, 0))))
        self.post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(B, T)`` -> (logits flattened ``(B, n)``, each layer's output for feature matching)."""
        h = period_view(x, self.period)  # (B, 1, T / p, p)
        feats = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), LRELU)
            feats.append(h)
        h = self.post(h)
        feats.append(h)
        return h.flatten(1), feats


class ScaleDiscriminator(nn.Module):
    """One MSD sub-discriminator (MelGAN's): strided, grouped 1-D convs on a waveform."""

    def __init__(self, width: int, spectral: bool) -> None:
        super().__init__()
        norm = spectral_norm if spectral else weight_norm
        w = width
        # (in, out, kernel, stride, groups): the paper's stack with 128 -> w channels
        spec = [
            (1, w, 15, 1, 1),
            (w, w, 41, 2, 4),
            (w, 2 * w, 41, 2, 16),
            (2 * w, 4 * w, 41, 4, 16),
            (4 * w, 8 * w, 41, 4, 16),
            (8 * w, 8 * w, 41, 1, 16),
            (8 * w, 8 * w, 5, 1, 1),
        ]
        self.convs = nn.ModuleList(
            norm(nn.Conv1d(i, o, k, s, groups=math.gcd(g, i, o), padding=(k - 1) // 2))
            for i, o, k, s, g in spec
        )
        self.post = norm(nn.Conv1d(8 * w, 1, 3, 1, padding=1))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        h = x[:, None]  # (B, 1, T)
        feats = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), LRELU)
            feats.append(h)
        h = self.post(h)
        feats.append(h)
        return h.flatten(1), feats


class Discriminators(nn.Module):
    """The five MPD and three MSD sub-discriminators."""

    def __init__(self, c: HiFiGANConfig) -> None:
        super().__init__()
        self.mpd = nn.ModuleList(PeriodDiscriminator(p, c.mpd_width) for p in c.periods)
        self.msd = nn.ModuleList(ScaleDiscriminator(c.msd_width, spectral=i == 0) for i in range(3))
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, x: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        """Waveforms ``(B, T)`` -> (logits, features) of each sub-discriminator."""
        out = [d(x) for d in self.mpd]
        h = x
        for i, d in enumerate(self.msd):
            if i > 0:
                h = self.pool(h[:, None])[:, 0]  # (B, T / 2^i): MelGAN's average pooling
            out.append(d(h))
        return out


def lsgan_d_loss(real: list[Tensor], fake: list[Tensor]) -> Tensor:
    """Eq. (1) for D, summed over the sub-discriminators: ``E[(D(x) - 1)^2 + D(G(s))^2]``."""
    return sum(((r - 1) ** 2).mean() + (f**2).mean() for r, f in zip(real, fake, strict=True))


def lsgan_g_loss(fake: list[Tensor]) -> Tensor:
    """Eq. (1) for G, summed: ``E[(D(G(s)) - 1)^2]``."""
    return sum(((f - 1) ** 2).mean() for f in fake)


def feature_matching_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """Eq. (3), summed over sub-discriminators: the mean absolute difference of every layer."""
    return sum(
        (r.detach() - f).abs().mean()
        for rs, fs in zip(real, fake, strict=True)
        for r, f in zip(rs, fs, strict=True)
    )


@register_model("hifigan")
class HiFiGAN(MelVocoder):
    """HiFi-GAN (arXiv:2010.05646): generator from log-mel to waveform, MPD + MSD, mel L1 + FM +
    LSGAN losses; D first, then G.

    ``forward(mel)`` is the generator; :meth:`mel` the log-mel it takes (HiFi-GAN framing:
    ``T // hop`` frames), :meth:`vocode` the generator in eval mode. Logs: ``d_loss``; ``g_loss``,
    ``g_adv``, ``fm``, ``mel_l1``.
    """

    family: ClassVar[str] = "gans"
    dequantize: ClassVar[bool] = False
    config_class: ClassVar[type[Config]] = HiFiGANConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 2e-4, "batch_size": 8, "grad_clip": 0.0}
    config: HiFiGANConfig
    info: DataInfo

    def __init__(self, config: HiFiGANConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.check_audio_and_framing()
        if math.prod(c.upsample_rates) != c.hop:
            raise ConfigError(
                f"upsample_rates {list(c.upsample_rates)} multiply to "
                f"{math.prod(c.upsample_rates)}, not to hop = {c.hop}; the output would not "
                "line up with the frames."
            )
        if c.upsample_channels % 2 ** len(c.upsample_rates):
            raise ConfigError(
                f"upsample_channels = {c.upsample_channels} must be divisible by "
                f"{2 ** len(c.upsample_rates)} (halved at each of the "
                f"{len(c.upsample_rates)} stages)."
            )
        self.register_filterbank()
        self.generator = Generator(c)
        self.discriminators = Discriminators(c)
        if c.mel_warmup > 0:  # G's steps, counted for the warm start (saved: a resume goes on)
            self.register_buffer("step", torch.zeros((), dtype=torch.long))

    # --- the vocoder --------------------------------------------------------------------------
    def forward(self, mel: Tensor) -> Tensor:
        """The generator: log-mel ``(B, n_mels, frames)`` -> waveform ``(B, frames * hop)``."""
        return self.generator(mel)

    def stft_magnitude(self, x: Tensor) -> Tensor:
        """``|STFT|`` ``(B, F, frames)`` of waveforms ``(B, T)`` (torch's centred framing)."""
        from genzoo.audio.spectral import spectrogram

        return spectrogram(x, self.config.n_fft, self.config.hop, power=1.0)

    # --- training -----------------------------------------------------------------------------
    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """D first, then G."""
        return player_groups([self.discriminators], [self.generator])

    def group_settings(self) -> dict[str, dict[str, Any]]:
        c = self.config
        return player_settings(c.betas, c.lr_d, c.lr_g)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """D's loss (``group="d"``, Eq. (7)) or G's (``group="g"``, Eq. (6)) on random segments."""
        c = self.config
        x = random_segments(batch["x"], c.segment, c.hop)  # (B, seg)
        mel = self.mel(x)  # (B, M, seg / hop)
        if group == "d":
            if not self.game_on:  # the warm start: D waits; a zero loss leaves it unchanged
                zero = sum(p.sum() for p in self.discriminators.parameters()) * 0.0
                return LossOutput(zero, {"d_loss": 0.0})
            with torch.no_grad():
                fake = self.generator(mel)  # detached: D's step leaves G alone
            real_out = self.discriminators(x)
            fake_out = self.discriminators(fake)
            d = lsgan_d_loss([o[0] for o in real_out], [o[0] for o in fake_out])  # Eq. (7)
            return LossOutput(d, {"d_loss": d.detach()})
        if group == "g":
            fake = self.generator(mel)  # (B, seg)
            mel_l1 = (self.mel(fake) - mel).abs().mean()  # Eq. (2)
            if not self.game_on:  # the warm start: the mel term of Eq. (6) alone
                if self.training and torch.is_grad_enabled():
                    self.step += 1
                logs = {"g_loss": (c.lambda_mel * mel_l1).detach(), "g_adv": 0.0, "fm": 0.0}
                return LossOutput(c.lambda_mel * mel_l1, {**logs, "mel_l1": mel_l1.detach()})
            # D is fixed during G's step: no gradient to its weights, and in eval mode, so that
            # the spectral norm's power iteration does not move between D(x) and D(G(s))
            was = self.discriminators.training
            self.discriminators.eval()
            try:
                with frozen(self.discriminators):
                    with torch.no_grad():
                        real_out = self.discriminators(x)
                    fake_out = self.discriminators(fake)
            finally:
                self.discriminators.train(was)
            adv = lsgan_g_loss([o[0] for o in fake_out])  # Eq. (1), G's side
            fm = feature_matching_loss([o[1] for o in real_out], [o[1] for o in fake_out])
            total = adv + c.lambda_fm * fm + c.lambda_mel * mel_l1  # Eq. (6)
            if c.mel_warmup > 0 and self.training and torch.is_grad_enabled():
                self.step += 1
            logs = {
                "g_loss": total.detach(),
                "g_adv": adv.detach(),
                "fm": fm.detach(),
                "mel_l1": mel_l1.detach(),
            }
            return LossOutput(total, logs)
        raise ConfigError(
            f"hifigan loss group {group!r} is not valid; choose {choices(['d', 'g'])}."
        )
