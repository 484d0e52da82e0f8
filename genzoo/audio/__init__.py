"""The shared signal machinery for audio, as :mod:`genzoo.diffusion` is for denoisers.

- :mod:`genzoo.audio.spectral`: STFT / iSTFT, magnitude spectrograms, mel filterbanks (HTK and
  Slaney scales, no norm or Slaney norm: the one convention is stated there), log-mel, MFCC,
  Griffin-Lim (plain and fast) and the spectral convergence that measures it. On
  ``torch.stft`` / ``torch.istft`` and torchaudio's functional API (the ``audio`` extra).
- :mod:`genzoo.audio.mulaw`: mu-law companding to 256 levels (WaveNet's input and output).
- :mod:`genzoo.audio.wav`: WAV files read and written through ``scipy.io.wavfile``; every kind of
  broken file is converted or refused with one sentence.

Waveforms are float tensors in [-1, 1], shape ``(T,)`` or ``(B, T)``, mono.
"""

from genzoo.audio.mulaw import MU, mu_law_decode, mu_law_encode
from genzoo.audio.wav import AudioFileError, read_wav, write_wav

__all__ = ["MU", "AudioFileError", "mu_law_decode", "mu_law_encode", "read_wav", "write_wav"]
