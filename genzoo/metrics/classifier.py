"""genzoo's own yardstick: a small CNN trained deterministically on a dataset, cached on disk.

The Fréchet distance, KID and IS need a feature network. The Inception network is the standard
(:class:`genzoo.metrics.features.InceptionFeatures`) but needs a download and knows nothing of
8 x 8 digits; so, as the "MNIST score" / Fréchet-LeNet-distance practice of the GAN literature,
genzoo trains a small classifier on the dataset's own train split and measures samples in its
penultimate layer. Everything about it is fixed (architecture, seed, epochs, optimizer), it is
trained on the CPU, and it is cached under ``$GENZOO_CACHE/classifiers`` (default
``~/.cache/genzoo/classifiers``) as safetensors + JSON, keyed by a content hash of the dataset
name, the training data bytes, the configuration and :data:`CLASSIFIER_VERSION`. Retraining with
the same hash gives bit-identical weights (it trains single-threaded; the same CPU type is
assumed), so every run is measured by the same yardstick; the JSON records the test accuracy.

Architecture (any channel count and size): two 3x3-conv + ReLU pairs with a 2x2 max-pool after
each (widths w, 2w), one more 3x3 conv (4w) + ReLU, global average pooling to the 4w-dimensional
*features*, and a linear layer to the class *logits*. It trains on uniformly dequantized pixels
(the data augmentation that makes it indifferent to the quantization of generated samples) with
Adam for a fixed number of epochs.

**Audio** (``speech-digits``, ``tones``): the same conv body on a log-mel "image" of each
waveform, pooled over time only, then a linear layer (:class:`AudioCNN`); the log-mel is
computed inside the network by :class:`LogMelFrontend` (64 Slaney mels, a 64 ms window, hop
16 ms; log of the mel power, shifted so that each clip's loudest bin is 0 and floored 50 dB
below it: the features do not depend on the gain). Trained on the waveforms with random gains,
speeds and time shifts (the augmentations that make it indifferent to where in the clip a word
is, and less so to who says it). The Fréchet distance in its features is a *Fréchet audio
distance* (FAD, Kilgour et al. 2019, arXiv:1812.08466, there with VGGish features; here with
a yardstick trained on the dataset itself, so numbers are comparable only between genzoo runs
on the same data). Audio defaults: width 16, 20 epochs (:data:`AUDIO_DEFAULTS`; a few minutes
on one CPU thread).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config
from genzoo.core.errors import CheckpointError, GenzooError
from genzoo.core.io import load_state_strict, load_tensors, read_json, save_tensors, write_json
from genzoo.data import DataInfo, load_dataset
from genzoo.data.base import levels_to_model

CLASSIFIER_VERSION = 1  # bump when the training procedure changes: old caches are not reused
CACHE_ENV = "GENZOO_CACHE"


@dataclass(frozen=True)
class ClassifierConfig(Config):
    """Settings of the feature classifier; all of them enter its hash."""

    width: int = 32  # channels of the first conv stage (then 2x, 4x); features are 4 * width
    epochs: int = 0  # passes over the train split; 0: auto, clamp(round(30000 / N), 2, 30)
    batch_size: int = 64  # examples per Adam step
    lr: float = 2e-3  # Adam learning rate
    seed: int = 0  # seed of the initialization, the batch order and the dequantization noise

    def resolved(self, n_train: int) -> ClassifierConfig:
        """This config with ``epochs`` fixed for a train split of ``n_train`` examples."""
        if self.epochs > 0:
            return self
        return self.replace(epochs=int(min(30, max(2, round(30000 / n_train)))))


AUDIO_DEFAULTS = {"width": 16, "epochs": 20}
"""Config fields an audio classifier takes unless given (the image defaults cost 4x as much)."""
AUDIO_SHIFT = 1 / 8  # seconds: the largest random time shift of the audio training clips
AUDIO_SPEED = (0.85, 1.15)  # range of the random speed factor of the audio training clips
AUDIO_FLOOR_DB = 50.0  # the log-mel floor below each clip's loudest bin
AUDIO_VERSION = 2  # bump when the audio frontend or augmentation changes (it enters the hash)


class LogMelFrontend(nn.Module):
    """Waveforms ``(B, T)`` -> normalised log-mel images ``(B, 1, 64, frames)``.

    The mel power of :func:`genzoo.audio.spectral.mel_spectrogram` (genzoo's Slaney convention;
    n_fft = 64 ms and hop = 16 ms of the rate), ``ln`` of it minus the clip's maximum, floored
    :data:`AUDIO_FLOOR_DB` below, scaled to about [-1, 1]. A test checks it against librosa.
    """

    n_mels = 64

    def __init__(self, sample_rate: int) -> None:
        super().__init__()
        from genzoo.audio.spectral import mel_filterbank

        self.sample_rate = sample_rate
        self.n_fft = round(0.064 * sample_rate)
        self.hop = round(0.016 * sample_rate)
        fb = mel_filterbank(sample_rate, self.n_fft, self.n_mels).float()  # (F, M)
        self.register_buffer("fb", fb, persistent=False)  # a function of the rate: not saved
        self.floor = AUDIO_FLOOR_DB * math.log(10) / 10  # dB -> nats of power

    def log_mel(self, x: Tensor) -> Tensor:
        """``ln`` mel power ``(B, M, frames)`` relative to each clip's maximum, floored."""
        from genzoo.audio.spectral import spectrogram

        spec = spectrogram(x, self.n_fft, self.hop)  # (B, F, frames)
        mel = (spec.transpose(1, 2) @ self.fb).transpose(1, 2)  # (B, frames, M) -> (B, M, fr)
        lm = mel.clamp_min(1e-12).log()
        lm = lm - lm.amax(dim=(1, 2), keepdim=True)
        return lm.clamp_min(-self.floor)

    def forward(self, x: Tensor) -> Tensor:
        return (self.log_mel(x) / (self.floor / 2) + 1).unsqueeze(1)  # (B, 1, M, frames)


class SmallCNN(nn.Module):
    """Conv feature net: ``features`` (B, 4w) after global average pooling, ``head`` to logits."""

    def __init__(self, in_channels: int, n_classes: int, width: int) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(4 * w, n_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x).mean(dim=(2, 3))  # (B, 4w, h, w) -> (B, 4w)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (B, K)


class AudioCNN(SmallCNN):
    """:class:`SmallCNN`'s conv body on the :class:`LogMelFrontend` of waveforms ``(B, T)``,
    averaged over time only (where in frequency a pattern lies is what tells words apart), then
    a linear layer and a ReLU to the ``4w`` features."""

    def __init__(self, sample_rate: int, n_classes: int, width: int) -> None:
        super().__init__(1, n_classes, width)
        self.frontend = LogMelFrontend(sample_rate)
        bands = LogMelFrontend.n_mels // 4  # two 2x2 max-pools
        self.proj = nn.Linear(4 * width * bands, 4 * width)

    def features(self, x: Tensor) -> Tensor:
        h = self.body(self.frontend(x)).mean(dim=3)  # (B, 1, M, frames) -> (B, 4w, M / 4)
        return F.relu(self.proj(h.flatten(1)))  # (B, 4w * M / 4) -> (B, 4w)


def make_net(info: DataInfo, width: int) -> SmallCNN:
    """The classifier network of a dataset: :class:`AudioCNN` for audio, else :class:`SmallCNN`."""
    if info.kind == "audio":
        return AudioCNN(info.sample_rate, info.n_classes, width)
    return SmallCNN(info.shape[0], info.n_classes, width)


def to_model_space(x: Tensor, info: DataInfo) -> Tensor:
    """Stored examples -> what the classifier takes: images' levels to bin centres in [-1, 1];
    waveforms as they are."""
    return x.float() if info.levels is None else levels_to_model(x, info.levels)


class FeatureClassifier:
    """A trained :class:`SmallCNN` with its identity: ``name``, ``hash`` and the JSON ``meta``.

    Inputs are model-space images in [-1, 1] of the dataset's shape ``(B, C, H, W)``, or
    waveforms ``(B, T)`` of an audio dataset.
    """

    def __init__(self, net: SmallCNN, info: DataInfo, hash: str, meta: dict[str, Any]) -> None:
        self.net = net.eval()
        self.info = info
        self.hash = hash
        self.meta = meta
        self.name = f"genzoo-cnn:{info.name}"

    @property
    def test_accuracy(self) -> float:
        return float(self.meta["test_accuracy"])

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> FeatureClassifier:
        self.net.to(device)
        return self

    def _check(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != tuple(self.info.shape):
            what = "waveforms" if self.info.kind == "audio" else "images"
            raise GenzooError(
                f"Classifier {self.name!r} takes {what} of shape {tuple(self.info.shape)}, "
                f"got {tuple(x.shape[1:])}."
            )
        return x.detach().to(self.device, torch.float32)

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer features (B, 4 * width)."""
        return self.net.features(self._check(x))

    @torch.no_grad()
    def logits(self, x: Tensor) -> Tensor:
        """Class logits (B, n_classes)."""
        return self.net(self._check(x))

    def accuracy(self, x: Tensor, y: Tensor, batch_size: int = 1000) -> float:
        """Fraction of ``x`` (model space) classified as ``y``."""
        correct = 0
        for s in range(0, x.shape[0], batch_size):
            pred = self.logits(x[s : s + batch_size]).argmax(1).cpu()
            correct += int((pred == y[s : s + batch_size].cpu()).sum())
        return correct / x.shape[0]


def cache_dir(path: str | Path | None = None) -> Path:
    """Where classifiers are cached: ``path``, else ``$GENZOO_CACHE/classifiers``, else
    ``~/.cache/genzoo/classifiers``."""
    if path is not None:
        return Path(path).expanduser()
    root = os.environ.get(CACHE_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "genzoo"
    return base / "classifiers"


def content_hash(info: DataInfo, x: Tensor, y: Tensor, config: ClassifierConfig) -> str:
    """SHA-256 (first 16 hex characters) of everything that determines the trained weights."""
    h = hashlib.sha256()
    header = {
        "version": CLASSIFIER_VERSION,
        "dataset": info.to_dict(),
        "config": config.to_dict(),
        "x": [list(x.shape), str(x.dtype)],
        "y": [list(y.shape), str(y.dtype)],
    }
    if info.kind == "audio":  # images' hashes stay as they were
        header["audio"] = [
            AUDIO_VERSION,
            AUDIO_SHIFT,
            AUDIO_SPEED,
            AUDIO_FLOOR_DB,
            LogMelFrontend.n_mels,
        ]
    h.update(json.dumps(header, sort_keys=True).encode())
    h.update(x.contiguous().numpy().tobytes())
    h.update(y.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _labelled_images(spec: str, split: str, root: str | None) -> tuple[DataInfo, Tensor, Tensor]:
    ds = load_dataset(spec, split, root=root)
    info = ds.info
    if info.kind not in ("images", "audio") or info.n_classes < 2:
        raise GenzooError(
            f"A feature classifier needs a labelled image or audio dataset; {spec!r} is "
            f"{'unlabelled ' if info.n_classes < 2 else ''}{info.kind}."
        )
    x, y = ds.get_raw(torch.arange(len(ds)))
    if y is None:
        raise GenzooError(f"Split {split!r} of {spec!r} has no labels to train a classifier on.")
    return info, x, y.long()


def train_classifier(
    info: DataInfo,
    x: Tensor,
    y: Tensor,
    config: ClassifierConfig,
) -> SmallCNN:
    """Train a :class:`SmallCNN` on integer-level images ``x`` (N, C, H, W) (an
    :class:`AudioCNN` on waveforms ``x`` (N, T)), labels ``y`` (N,).

    Deterministic: all randomness comes from ``config.seed`` (the global RNG is left untouched),
    and it runs single-threaded on the CPU, so the summation order, hence every bit of the
    weights, does not depend on the caller's thread settings.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(info, x, y, config)
    finally:
        torch.set_num_threads(threads)


def _augment(x: Tensor, info: DataInfo, g: torch.Generator) -> Tensor:
    """A training batch in model space: images uniformly dequantized; waveforms ``(B, T)`` with
    a random gain in [0.3, 1], a speed perturbation (Ko et al. 2015: the clip played
    :data:`AUDIO_SPEED` times faster or slower about its centre, pitch and tempo together, by
    linear interpolation; zeros outside) and a random shift of up to :data:`AUDIO_SHIFT` s."""
    if info.levels is not None:
        return levels_to_model(x, info.levels, dequantize=True, generator=g)  # (B, C, H, W)
    b, t = x.shape
    most = AUDIO_SHIFT * info.sample_rate
    shift = (2 * torch.rand(b, 1, generator=g, dtype=torch.float64) - 1) * most
    lo, hi = AUDIO_SPEED
    speed = lo + (hi - lo) * torch.rand(b, 1, generator=g, dtype=torch.float64)
    gain = 0.3 + 0.7 * torch.rand(b, 1, generator=g)
    c = (t - 1) / 2
    pos = c + (torch.arange(t, dtype=torch.float64) - c) * speed - shift  # (B, T) read positions
    left = pos.floor().long()
    frac = (pos - left).float()
    xp = F.pad(x.float(), (1, 1))  # (B, T + 2): a zero on each side for positions outside
    i0 = (left + 1).clamp(0, t + 1)
    i1 = (left + 2).clamp(0, t + 1)
    out = xp.gather(1, i0) * (1 - frac) + xp.gather(1, i1) * frac
    inside = (pos >= 0) & (pos <= t - 1)
    return torch.where(inside, out, 0.0) * gain


def _train(info: DataInfo, x: Tensor, y: Tensor, config: ClassifierConfig) -> SmallCNN:
    g = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = make_net(info, config.width)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    n = x.shape[0]
    steps = config.epochs * math.ceil(n / config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps)
    net.train()
    for _ in range(config.epochs):
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, config.batch_size):
            idx = perm[s : s + config.batch_size]
            xb = _augment(x[idx], info, g)
            loss = F.cross_entropy(net(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


def _cache_paths(directory: Path, spec: str, hash: str) -> tuple[Path, Path]:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", spec)[:60]
    stem = directory / f"{safe}-{hash}"
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def _load_cached(
    weights: Path, meta_path: Path, hash: str, info: DataInfo, config: ClassifierConfig
) -> FeatureClassifier:
    meta = read_json(meta_path)
    if meta.get("hash") != hash:
        raise CheckpointError(f"Cached classifier {str(meta_path)!r} has another hash.")
    net = make_net(info, config.width)
    load_state_strict(net, load_tensors(weights), str(weights))
    return FeatureClassifier(net, info, hash, meta)


def get_classifier(
    dataset_spec: str,
    *,
    config: ClassifierConfig | dict[str, Any] | None = None,
    cache: str | Path | None = None,
    root: str | None = None,
    retrain: bool = False,
) -> FeatureClassifier:
    """The feature classifier of ``dataset_spec``: loaded from the cache, or trained and cached.

    ``config`` overrides :class:`ClassifierConfig` fields; ``cache`` the cache folder (see
    :func:`cache_dir`); ``root`` is passed to :func:`genzoo.data.load_dataset`; ``retrain`` trains
    again even when a cached copy exists (and overwrites it).
    """
    info, x, y = _labelled_images(dataset_spec, "train", root)
    if config is None or isinstance(config, dict):
        given = dict(config or {})
        if info.kind == "audio":
            given = {**AUDIO_DEFAULTS, **given}
        config = ClassifierConfig.from_dict(given, where="classifier")
    config = config.resolved(x.shape[0])
    hash = content_hash(info, x, y, config)
    weights, meta_path = _cache_paths(cache_dir(cache), dataset_spec, hash)
    if not retrain and weights.is_file() and meta_path.is_file():
        try:
            return _load_cached(weights, meta_path, hash, info, config)
        except CheckpointError as e:
            warnings.warn(
                f"Retraining the classifier: the cached copy is unusable ({e}).", stacklevel=2
            )

    net = train_classifier(info, x, y, config)
    _, xt, yt = _labelled_images(dataset_spec, "test", root)
    meta: dict[str, Any] = {
        "name": f"genzoo-cnn:{info.name}",
        "hash": hash,
        "version": CLASSIFIER_VERSION,
        "dataset": info.to_dict(),
        "config": config.to_dict(),
        "n_train": int(x.shape[0]),
        "n_test": int(xt.shape[0]),
        "feature_dim": 4 * config.width,
        "test_accuracy": None,
    }
    clf = FeatureClassifier(net, info, hash, meta)
    meta["test_accuracy"] = clf.accuracy(to_model_space(xt, info), yt)
    save_tensors(weights, net.state_dict())
    write_json(meta_path, meta)  # written last: its presence marks a complete cache entry
    return clf
