"""What genzoo's log-mel vocoders (HiFi-GAN, Vocos) share: the log-mel they take, the warm start
before the adversarial game, training crops, eval-mode vocoding and the per-clip metrics."""

from __future__ import annotations

import torch
from torch import Tensor

from genzoo.audio.spectral import (
    log_spectral_distance,
    mel_filterbank,
    spectral_convergence,
    vocoder_log_mel,
    vocoder_stft,
)
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, GenerativeModel, Vocodes
from genzoo.core.seeding import rand


def random_segments(x: Tensor, seg: int, hop: int) -> Tensor:
    """A random segment of ``seg`` samples of each clip ``(B, T)`` (the whole clip, cut to a
    multiple of ``hop``, when ``seg`` is 0 or at least ``T``): a vocoder's training crops."""
    t = x.shape[1]
    if seg == 0 or seg >= t:
        return x[:, : t - t % hop]
    s = (rand((x.shape[0],), device=x.device) * (t - seg + 1)).long().clamp(max=t - seg)
    idx = s[:, None] + torch.arange(seg, device=x.device)  # (B, seg)
    return x.gather(1, idx)


class MelVocoder(GenerativeModel, Vocodes):
    """A GAN vocoder from log-mel ``(B, n_mels, frames)`` to waveforms ``(B, frames * hop)``.

    Subclasses set the buffers ``fb`` (:meth:`register_filterbank`) and ``step`` (generator
    steps), define ``forward(mel)`` and, where it is not the vocoder framing,
    :meth:`stft_magnitude`; their
    configs carry ``n_fft``, ``hop``, ``n_mels`` and ``mel_warmup``."""

    def check_audio_and_framing(self) -> None:
        """One sentence for a dataset that is not audio, or for ``n_fft``, ``hop`` and
        ``segment`` that do not frame a training segment in whole, centred hops (the checks every
        log-mel vocoder here makes before building its layers)."""
        c, info = self.config, self.info
        if info.kind != "audio":
            raise ConfigError(
                f"{self.name} is a vocoder of audio, but dataset {info.name!r} holds {info.kind}; "
                "choose 'speech-digits' or 'tones'."
            )
        if (c.n_fft - c.hop) % 2 or c.hop > c.n_fft:
            raise ConfigError(f"n_fft - hop ({c.n_fft} - {c.hop}) must be even and >= 0.")
        if c.segment % c.hop:
            raise ConfigError(f"segment = {c.segment} must be a multiple of hop = {c.hop}.")

    def register_filterbank(self) -> Tensor:
        """Set the buffer ``fb`` ``(F, M)``: the mel filterbank of the config's ``n_fft`` and
        ``n_mels`` at the data's rate, in float32 (a function of the config, so not saved);
        return it in float64."""
        c = self.config
        fb = mel_filterbank(self.info.sample_rate, c.n_fft, c.n_mels)  # (F, M), float64
        self.register_buffer("fb", fb.float(), persistent=False)
        return fb

    @property
    def game_on(self) -> bool:
        """Whether the adversarial game has started (after ``mel_warmup`` generator steps)."""
        return self.config.mel_warmup == 0 or int(self.step) >= self.config.mel_warmup

    def mel(self, x: Tensor) -> Tensor:
        """phi: waveforms ``(B, T)`` -> log-mel ``(B, n_mels, T // hop)`` (the model's input and
        the mel loss's features)."""
        c = self.config
        pad = (c.n_fft - c.hop) // 2  # the reflection padding of the vocoder framing
        if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[1] <= pad:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ConfigError(
                f"{self.name} takes waveforms (B, T) with T > {pad} samples (its framing pads "
                f"{pad} on each side), got {got}."
            )
        return vocoder_log_mel(x, self.info.sample_rate, c.n_fft, c.hop, c.n_mels, fb=self.fb)

    def stft_magnitude(self, x: Tensor) -> Tensor:
        """``|STFT|`` ``(B, F, frames)`` of waveforms ``(B, T)`` at the model's STFT settings, in
        the vocoder framing (:func:`genzoo.audio.spectral.vocoder_stft`; HiFi-GAN overrides it)."""
        return vocoder_stft(x, self.config.n_fft, self.config.hop).abs()

    @torch.no_grad()
    def vocode(self, mel: Tensor) -> Tensor:
        """Waveforms ``(B, frames * hop)`` of log-mel spectrograms ``(B, n_mels, frames)``."""
        n_mels = self.config.n_mels
        if (
            not isinstance(mel, Tensor)
            or mel.ndim != 3
            or mel.shape[1] != n_mels
            or not mel.shape[2]
        ):
            got = tuple(mel.shape) if isinstance(mel, Tensor) else type(mel).__name__
            raise ConfigError(
                f"{self.name} vocodes log-mel spectrograms (B, {n_mels}, frames) with at least "
                f"one frame, got shape {got}."
            )
        if not bool(torch.isfinite(mel).all()):
            raise ConfigError(
                f"The log-mel spectrogram given to {self.name} holds NaN or infinite values."
            )
        was = self.training
        self.eval()
        try:
            return self(mel.to(self.device, torch.float32))
        finally:
            self.train(was)

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per held-out clip, resynthesised from its own log-mel: ``mel_l1`` (mean absolute
        log-mel error, HiFi-GAN's "Mel error"), ``lsd`` (log-spectral distance in dB,
        :func:`genzoo.audio.spectral.log_spectral_distance`) and ``sc`` (spectral convergence in
        dB) of the ``|STFT|`` at the model's STFT settings."""
        hop = self.config.hop
        x = batch["x"][:, : batch["x"].shape[1] - batch["x"].shape[1] % hop]
        mel = self.mel(x)
        y = self.vocode(mel)
        s_x, s_y = self.stft_magnitude(x), self.stft_magnitude(y)
        return {
            "mel_l1": (self.mel(y) - mel).abs().mean(dim=(1, 2)),
            "lsd": log_spectral_distance(s_x, s_y),
            "sc": spectral_convergence(s_x, s_y),
        }
