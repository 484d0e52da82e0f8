"""The tiny audio dataset description the vocoder tests (HiFi-GAN, Vocos, DeGLI) build on."""

from genzoo.data.base import DataInfo


def audio_info(length: int = 1024, rate: int = 8000) -> DataInfo:
    """Mono clips of ``length`` samples at ``rate`` Hz, two classes."""
    return DataInfo(name="tiny-audio", kind="audio", shape=(length,), n_classes=2, sample_rate=rate)
