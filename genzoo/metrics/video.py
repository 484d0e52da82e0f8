"""Video metrics, measured by genzoo's own yardsticks (no download).

Two small classifiers are trained deterministically on a video set's train split and cached as
the image classifier is (:mod:`genzoo.metrics.classifier`: safetensors + JSON under
``$GENZOO_CACHE/classifiers``, keyed by a content hash of the data, the configuration and the
version):

- the *frame classifier*: :class:`~genzoo.metrics.classifier.SmallCNN` trained on single frames
  with the clip's class (the digit; moving-shapes: colour and shape), by the image classifier's
  own training function. Its features give the per-frame Fréchet distance;
- the *identity classifier* (one-digit moving-digits): the same network and training on a window
  cut around the digit (:func:`object_crops`), whose predictions give the temporal consistency
  of a clip's identity. The window moves exactly with the digit, so a real clip scores 1 (the
  whole-frame classifier is not translation invariant: real clips scored 70.7 % with it);
- the *video classifier* :class:`VideoCNN`: 3-D convolutions over the clip with two heads, the
  class and the initial motion direction, so its features see appearance and motion; the
  Fréchet video distance (FVD; Unterthiner et al., arXiv:1812.01717, who use an I3D network) is
  the Fréchet distance in its features.

For prediction, :func:`prediction_errors` gives the pixel MSE of predicted frames against a
copy-the-last-known-frame baseline and the error of the tracked position (the intensity centroid
of each predicted frame) against the dataset's true trajectory.

For text-conditioned clips of moving-shapes, :func:`prompt_match` says whether a clip shows its
prompt's colour and shape (read per frame by the ``shapes`` attribute classifier of the
text-to-image metrics) and its motion direction (the tracked centroid).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
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
from genzoo.data.video import (
    DIRECTIONS,
    SHAPE_DIRECTIONS,
    SHAPE_STEPS,
    VideoDataset,
    digit_side,
)
from genzoo.metrics.classifier import (
    ClassifierConfig,
    FeatureClassifier,
    SmallCNN,
    _cache_paths,
    cache_dir,
    content_hash,
    train_classifier,
)
from genzoo.metrics.frechet import frechet_distance
from genzoo.nn.sprites import render, windows

VIDEO_CLASSIFIER_VERSION = 1  # bump when the training procedure changes
FRAMES_PER_CLIP = 2  # frames of each train clip the frame classifier learns from (first, last)


@dataclass(frozen=True)
class VideoClassifierConfig(Config):
    """Settings of the video classifier; all of them enter its hash."""

    width: int = 16  # channels of the first 3-D conv stage (then 2x, 4x)
    epochs: int = 4  # passes over the train clips
    batch_size: int = 64  # clips per Adam step
    lr: float = 2e-3  # Adam learning rate (one-cycle schedule)
    seed: int = 0  # seed of the initialization, the batch order and the dequantization noise


class VideoCNN(nn.Module):
    """3-D conv features of a clip ``(B, T, C, H, W)``: pooled over space, kept over time (so the
    order of frames, hence the direction of motion, survives), with a class and a direction
    head."""

    def __init__(self, shape: tuple[int, ...], n_classes: int, n_directions: int, width: int):
        super().__init__()
        t, c = shape[0], shape[1]
        w = width
        self.body = nn.Sequential(
            nn.Conv3d(c, w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool3d((1, 2, 2)),
            nn.Conv3d(w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool3d((2, 2, 2)),
            nn.Conv3d(2 * w, 4 * w, 3, padding=1),
            nn.ReLU(),
        )
        self.dim = 4 * w * (t // 2)
        self.cls = nn.Linear(self.dim, n_classes)
        self.direction = nn.Linear(self.dim, n_directions)

    def features(self, x: Tensor) -> Tensor:
        h = self.body(x.permute(0, 2, 1, 3, 4))  # (B, C, T, H, W) -> (B, 4w, T', h', w')
        return h.mean(dim=(3, 4)).flatten(1)  # (B, 4w * T')

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.features(x)
        return self.cls(f), self.direction(f)


def _directions(info: DataInfo) -> int:
    return len(DIRECTIONS) if info.name.startswith("moving-digits") else len(SHAPE_DIRECTIONS)


class VideoClassifier:
    """A trained :class:`VideoCNN`; inputs are model-space clips ``(B, T, C, H, W)``."""

    def __init__(self, net: VideoCNN, info: DataInfo, hash: str, meta: dict[str, Any]) -> None:
        self.net = net.eval()
        self.info = info
        self.hash = hash
        self.meta = meta
        self.name = f"genzoo-video-cnn:{info.name}"

    def _check(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != tuple(self.info.shape):
            raise GenzooError(
                f"Classifier {self.name!r} takes clips of shape {tuple(self.info.shape)}, "
                f"got {tuple(x.shape[1:])}."
            )
        return x.detach().float()

    @torch.no_grad()
    def features(self, x: Tensor, batch_size: int = 500) -> Tensor:
        """Features ``(B, dim)`` of model-space clips."""
        x = self._check(x)
        parts = [self.net.features(x[s : s + batch_size]) for s in range(0, len(x), batch_size)]
        return torch.cat(parts)

    @torch.no_grad()
    def predict(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Predicted class and direction ``(B,)`` each."""
        c, d = self.net(self._check(x))
        return c.argmax(1), d.argmax(1)


def _train_video(
    info: DataInfo, x: Tensor, y: Tensor, direction: Tensor, config: VideoClassifierConfig
) -> VideoCNN:
    """Deterministic training (single thread, all draws from ``config.seed``), as the image
    classifier's."""
    assert info.levels is not None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(config.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            net = VideoCNN(info.shape, info.n_classes, _directions(info), config.width)
        opt = torch.optim.Adam(net.parameters(), lr=config.lr)
        n = x.shape[0]
        steps = config.epochs * math.ceil(n / config.batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps)
        net.train()
        for _ in range(config.epochs):
            perm = torch.randperm(n, generator=g)
            for s in range(0, n, config.batch_size):
                idx = perm[s : s + config.batch_size]
                xb = levels_to_model(x[idx], info.levels, dequantize=True, generator=g)
                c, d = net(xb)
                loss = F.cross_entropy(c, y[idx]) + F.cross_entropy(d, direction[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        return net.eval()
    finally:
        torch.set_num_threads(threads)


def _video_split(spec: str, split: str) -> VideoDataset:
    ds = load_dataset(spec, split)
    if not isinstance(ds, VideoDataset):
        raise GenzooError(f"A video classifier needs a video dataset; {spec!r} is {ds.info.kind}.")
    return ds


def get_video_classifier(
    spec: str,
    *,
    config: VideoClassifierConfig | None = None,
    cache: str | Path | None = None,
) -> VideoClassifier:
    """The video classifier of ``spec``, loaded from the cache or trained and cached."""
    config = config or VideoClassifierConfig()
    ds = _video_split(spec, "train")
    info = ds.info
    assert ds.x is not None and ds.y is not None
    direction = ds.extras["direction"]
    labels = torch.stack([ds.y, direction], 1)  # (N, 2): class, direction
    hash = f"v{VIDEO_CLASSIFIER_VERSION}-" + content_hash(info, ds.x, labels, config)  # type: ignore[arg-type]
    weights, meta_path = _cache_paths(cache_dir(cache), f"video-{spec}", hash)
    if weights.is_file() and meta_path.is_file():
        try:
            meta = read_json(meta_path)
            if meta.get("hash") != hash:
                raise CheckpointError("another hash")
            net = VideoCNN(info.shape, info.n_classes, _directions(info), config.width)
            load_state_strict(net, load_tensors(weights), str(weights))
            return VideoClassifier(net, info, hash, meta)
        except CheckpointError as e:
            warnings.warn(f"Retraining the video classifier ({e}).", stacklevel=2)
    net = _train_video(info, ds.x, ds.y, direction, config)
    clf = VideoClassifier(net, info, hash, {"hash": hash})
    test = _video_split(spec, "test")
    assert test.x is not None and test.y is not None
    c, d = clf.predict(levels_to_model(test.x, 256))
    meta = {
        "name": clf.name,
        "hash": hash,
        "config": config.to_dict(),
        "dataset": info.to_dict(),
        "test_class_accuracy": float((c == test.y).float().mean()),
        "test_direction_accuracy": float((d == test.extras["direction"]).float().mean()),
    }
    clf.meta = meta
    save_tensors(weights, net.state_dict())
    write_json(meta_path, meta)
    return clf


def get_frame_classifier(spec: str, *, cache: str | Path | None = None) -> FeatureClassifier:
    """The frame classifier of ``spec``: the image classifier (:class:`SmallCNN`, its training
    function and config) on the first and last frame of every train clip, labelled with the
    clip's class; cached like it."""
    ds = _video_split(spec, "train")
    t, c, h, w = ds.info.shape
    frame_info = DataInfo(
        name=f"{ds.info.name}#frames",
        kind="images",
        shape=(c, h, w),
        levels=ds.info.levels,
        n_classes=ds.info.n_classes,
        class_names=ds.info.class_names,
    )
    assert ds.x is not None and ds.y is not None
    x = ds.x[:, [0, t - 1]].flatten(0, 1)  # (N, 2, C, H, W) -> (2N, C, H, W)
    return _cached_image_classifier(
        frame_info, x, ds.y, cache, lambda test: test.x.flatten(0, 1), spec
    )  # test frames: (N*T, C, H, W)


def _cached_image_classifier(
    info: DataInfo,
    x: Tensor,
    clip_y: Tensor,
    cache: str | Path | None,
    test_frames: Callable[[VideoDataset], Tensor],
    spec: str,
    per_clip: int = FRAMES_PER_CLIP,
    config: ClassifierConfig | None = None,
    meta: dict[str, Any] | None = None,
) -> FeatureClassifier:
    """The image classifier (:class:`SmallCNN`, its training function and ``config``, by
    default width 16) of ``info`` trained on the uint8 frames ``x`` (``per_clip`` per clip, clip
    by clip, labelled with the clip's class ``clip_y``), cached by content hash like genzoo's
    image classifiers; its ``meta`` holds ``meta`` and its accuracy on ``test_frames(test
    split)`` (every test frame, uint8)."""
    y = clip_y.repeat_interleave(per_clip)
    config = (config or ClassifierConfig(width=16)).resolved(x.shape[0])
    hash = content_hash(info, x, y, config)
    weights, meta_path = _cache_paths(cache_dir(cache), info.name, hash)
    if weights.is_file() and meta_path.is_file():
        meta = read_json(meta_path)
        if meta.get("hash") == hash:
            net = SmallCNN(info.shape[0], info.n_classes, config.width)
            load_state_strict(net, load_tensors(weights), str(weights))
            return FeatureClassifier(net, info, hash, meta)
    net = train_classifier(info, x, y, config)
    clf = FeatureClassifier(net, info, hash, {"hash": hash, "test_accuracy": None})
    test = _video_split(spec, "test")
    assert test.x is not None and test.y is not None
    xt = levels_to_model(test_frames(test), 256)
    clf.meta["test_accuracy"] = clf.accuracy(xt, test.y.repeat_interleave(test.info.shape[0]))
    clf.meta.update(name=f"genzoo-cnn:{info.name}", config=config.to_dict(), **(meta or {}))
    save_tensors(weights, net.state_dict())
    write_json(meta_path, clf.meta)
    return clf


# --- the measures -------------------------------------------------------------------------------
def frame_fd(clf: FeatureClassifier, fake: Tensor, real: Tensor) -> float:
    """Fréchet distance between the frame-classifier features of all frames of two sets of clips
    ``(B, T, C, H, W)``."""
    return frechet_distance(clf.features(fake.flatten(0, 1)), clf.features(real.flatten(0, 1)))


def fvd(clf: VideoClassifier, fake: Tensor, real: Tensor) -> float:
    """Fréchet video distance in the video classifier's features."""
    return frechet_distance(clf.features(fake), clf.features(real))


def _level_centroids(clips: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The intensity centroids of model-space clips ``(B, T, C, H, W)`` in exact integer
    arithmetic on the frames' levels (rounded to the 256 levels, summed over channels): the
    pixels ``(cx, cy)`` ``(B, T)`` holding them (long) and the centroids' offsets ``(B, T, 2)``
    inside those pixels in [0, 1) (x, y; pixel centres at 1/2), each one the float of an exact
    fraction. Whole-pixel moves of a frame's content move the pixels by as much and keep the
    offsets bit for bit. An empty frame: its centre pixel, offset 1/2."""
    h, w = clips.shape[-2:]
    k = (((clips.detach().float().cpu() + 1) * 128 - 0.5).round().clamp(0, 255)).long()  # levels
    v = k.sum(2)  # (B, T, H, W) integer intensity
    mass = v.sum((2, 3))  # (B, T)
    odd_x = 2 * torch.arange(w) + 1  # twice the pixel centres: integers
    odd_y = 2 * torch.arange(h) + 1
    num_x = (v.sum(2) * odd_x).sum(2)  # (B, T): 2 * mass * centroid x
    num_y = (v.sum(3) * odd_y).sum(2)
    safe = mass.clamp_min(1)
    cx = torch.where(mass > 0, torch.div(num_x, 2 * safe, rounding_mode="floor"), w // 2)
    cy = torch.where(mass > 0, torch.div(num_y, 2 * safe, rounding_mode="floor"), h // 2)
    den = (2 * safe).double()
    fx = torch.where(mass > 0, (num_x - 2 * safe * cx).double() / den, 0.5)
    fy = torch.where(mass > 0, (num_y - 2 * safe * cy).double() / den, 0.5)
    return cx, cy, torch.stack([fx, fy], -1).float()


def object_crops(clips: Tensor, radius: int, aligned: bool = False) -> Tensor:
    """Windows ``(B, T, C, 2r+1, 2r+1)`` of model-space clips ``(B, T, C, H, W)``, each centred
    on its frame's intensity centroid, black (level 0) outside the frame.

    The centroid is computed in exact integer arithmetic on the frames' levels
    (:func:`_level_centroids`), so it moves by exactly ``n`` pixels when the object does. By
    default the window is cut at the pixel holding the centroid (no resampling): an object that
    moves by whole pixels (a moving-digits sprite) gives the very same window in every frame, so
    a classifier of the windows sees one input per real clip. ``aligned=True`` also undoes the
    centroid's offset inside that pixel: the window is resampled (bilinear, separable) so that
    the centroid falls exactly on its centre pixel's centre. A digit moved off the pixel grid
    then comes back to the same place in its window, up to the blur of the resampling; whole-pixel
    moves still give identical windows (the offsets are the same floats). (Hand-written: no
    library crops at per-image integer centres.)"""
    b, t, c = clips.shape[:3]
    cx, cy, frac = _level_centroids(clips)
    pad = radius + int(aligned)  # one pixel more each side to resample from
    side = 2 * pad + 1
    black = 1 / 256 - 1  # level 0's bin centre: what a black pixel of the data holds
    padded = F.pad(clips.detach().float().cpu(), (pad, pad, pad, pad), value=black)
    a = torch.arange(side)
    rows = (cy[..., None] + a).view(b, t, 1, side, 1)  # padded rows cy - p + p .. cy + p + p
    cols = (cx[..., None] + a).view(b, t, 1, 1, side)
    bi = torch.arange(b).view(b, 1, 1, 1, 1)
    ti = torch.arange(t).view(1, t, 1, 1, 1)
    ci = torch.arange(c).view(1, 1, c, 1, 1)
    win = padded[bi, ti, ci, rows, cols]  # (B, T, C, side, side)
    if not aligned:
        return win
    n = 2 * radius + 1
    # output pixel i reads the window at index i + 1/2 + offset (the centroid lands on i = r)
    for axis, f in ((4, frac[..., 0]), (3, frac[..., 1])):
        u = (f + 0.5).view(b, t, 1, 1, 1)  # in [1/2, 3/2)
        high = u >= 1
        wgt = torch.where(high, u - 1, u)  # weight of the next pixel
        lo = torch.where(high, win.narrow(axis, 1, n + 1), win.narrow(axis, 0, n + 1))
        win = (1 - wgt) * lo.narrow(axis, 0, n) + wgt * lo.narrow(axis, 1, n)
    return win


def crop_radius(info: DataInfo) -> int:
    """The identity classifier's window radius for clips of ``info``: the digit sprite's side
    minus one (:func:`~genzoo.data.video.make_moving_digits` scales digits to ``7/16`` of the
    frame), so a window centred anywhere on the sprite's centroid holds the whole sprite."""
    return digit_side(info.shape[-1]) - 1


ALIGNED_MOVED_COPIES = 2  # copies of the train frames moved off the grid (aligned classifier)
ALIGNED_SEED = 11  # their offsets: seeds 11, 12, ...
ALIGNED_CONFIG = ClassifierConfig(width=32, epochs=4)  # the aligned classifier's training


def get_identity_classifier(
    spec: str, *, cache: str | Path | None = None, aligned: bool = False
) -> FeatureClassifier:
    """The identity classifier of one-digit ``moving-digits`` clips: the image classifier
    (:class:`SmallCNN`, its training function and config) on the windows
    :func:`object_crops` cuts around the digit in the first and last frame of every train clip,
    labelled with the clip's digit; cached like it. Its ``meta`` holds its test accuracy on the
    windows of every test frame.

    It has seen digits on the pixel grid only, as every real clip shows them (whole-pixel
    motion: identical windows, consistency 1); a real digit moved off the grid by a fraction of a
    pixel (:func:`subpixel_frames`) is often read as another digit.

    ``aligned=True``: the *aligned* identity classifier, which reads windows centred on the
    digit's sub-pixel centroid (``object_crops(..., aligned=True)``) and is trained on the windows
    of every frame of every train clip plus :data:`ALIGNED_MOVED_COPIES` copies of them with the
    digit moved off the grid by up to 1/2 px per axis (:func:`subpixel_frames`, seeds from
    :data:`ALIGNED_SEED`), at :data:`ALIGNED_CONFIG` (wider, longer trained). Its ``meta`` says
    ``aligned``, and :func:`identity_labels` cuts its windows so."""
    ds = _video_split(spec, "train")
    if not ds.info.name.startswith("moving-digits") or ds.extras["labels"].shape[1] != 1:
        raise GenzooError(
            f"The identity classifier reads one digit per frame; {spec!r} is not a one-digit "
            "moving-digits set (use e.g. 'moving-digits?size=16')."
        )
    t, c = ds.info.shape[:2]
    r = crop_radius(ds.info)
    crop_info = DataInfo(
        name=f"{ds.info.name}#crops" + ("-aligned" if aligned else ""),
        kind="images",
        shape=(c, 2 * r + 1, 2 * r + 1),
        levels=ds.info.levels,
        n_classes=ds.info.n_classes,
        class_names=ds.info.class_names,
    )
    assert ds.x is not None and ds.y is not None

    def crops_levels(clips: Tensor) -> Tensor:  # model-range clips -> uint8 windows (N*T', ...)
        win = object_crops(clips, r, aligned).flatten(0, 1)
        return ((win + 1) * 128 - 0.5).round().clamp(0, 255).to(torch.uint8)

    def test_windows(test: VideoDataset) -> Tensor:
        return crops_levels(levels_to_model(test.x, 256))

    if not aligned:
        x = crops_levels(levels_to_model(ds.x[:, [0, t - 1]], 256))  # (2N, C, s, s)
        return _cached_image_classifier(crop_info, x, ds.y, cache, test_windows, spec)
    clips = levels_to_model(ds.x, 256)  # (N, T, C, H, W)
    centre = ds.extras["centre"][:, :, 0]  # (N, T, 2)
    copies = [clips] + [
        subpixel_frames(clips, centre, 0.5, seed=ALIGNED_SEED + i)
        for i in range(ALIGNED_MOVED_COPIES)
    ]
    x = torch.stack([crops_levels(v).unflatten(0, (-1, t)) for v in copies], 1)  # (N, K, T, ...)
    per_clip = x.shape[1] * t
    return _cached_image_classifier(
        crop_info,
        x.flatten(0, 2),
        ds.y,
        cache,
        test_windows,
        spec,
        per_clip=per_clip,
        config=ALIGNED_CONFIG,
        meta={"aligned": True},
    )


def subpixel_frames(clips: Tensor, centre: Tensor, jitter: float, seed: int) -> Tensor:
    """One-digit clips ``(n, T, C, H, W)`` (model range) with the digit moved off the pixel grid:
    each frame's window around its true centre ``centre (n, T, 2)`` (the sprite side of
    ``video-ddpae``, 7/16 of the frame + 2) placed back at that centre plus a uniform offset in
    ``[-jitter, jitter]`` px per axis (bilinear, :mod:`genzoo.nn.sprites`; offsets from ``seed``).
    """
    n, t, _, h, w = clips.shape
    side = digit_side(w) + 2
    sprite = windows((clips + 1) / 2, centre, side)  # (n, T, C, side, side)
    g = torch.Generator().manual_seed(seed)
    offset = (torch.rand(n, t, 2, generator=g) * 2 - 1) * jitter
    moved = render(sprite.flatten(0, 1), (centre + offset).reshape(n * t, 1, 2), h, w)
    return moved.view(n, t, *clips.shape[2:]) * 2 - 1


@torch.no_grad()
def identity_labels(clf: FeatureClassifier, clips: Tensor) -> Tensor:
    """The identity classifier's class ``(B, T)`` of the window around the digit
    (:func:`object_crops`) in every frame of model-space clips ``(B, T, C, H, W)``."""
    b, t = clips.shape[:2]
    radius = (clf.info.shape[-1] - 1) // 2
    win = object_crops(clips, radius, bool(clf.meta.get("aligned"))).flatten(0, 1)
    return clf.logits(win).argmax(1).view(b, t).cpu()


def identity_consistency(clf: FeatureClassifier, clips: Tensor) -> Tensor:
    """Per clip ``(B,)``: 1 where the identity classifier (:func:`get_identity_classifier`)
    gives the window around the digit (:func:`object_crops`) the same class in every frame (the
    digit keeps its identity over time), else 0. A real one-digit clip scores 1 whatever the
    classifier: its windows are identical."""
    pred = identity_labels(clf, clips)  # (B, T)
    return (pred == pred[:, :1]).all(1).float()


def identity_agreement(clf: FeatureClassifier, clips: Tensor) -> Tensor:
    """Per clip ``(B,)``: the share of frames whose window the identity classifier gives the
    clip's most frequent class (1 for a real one-digit clip; about 1/T when every frame holds
    another digit). A graded companion of :func:`identity_consistency`, which is 1 only when all
    frames agree."""
    pred = identity_labels(clf, clips)  # (B, T)
    top = pred.mode(1).values  # (B,) the most frequent class of each clip
    return (pred == top[:, None]).float().mean(1)


def centroids(clips: Tensor) -> Tensor:
    """Intensity centroids ``(B, T, 2)`` (x, y in pixels, pixel centres at ``i + 1/2``) of
    model-space clips ``(B, T, C, H, W)``: the tracked position of a single bright object on a
    black background."""
    # intensity k / L for level k (the bin centre's half level off: black weighs nothing)
    v = ((clips.float() + 1) / 2 - 1 / 512).clamp(0, 1).sum(2)  # (B, T, H, W)
    h, w = v.shape[-2:]
    ys = torch.arange(h, dtype=v.dtype) + 0.5
    xs = torch.arange(w, dtype=v.dtype) + 0.5
    mass = v.sum((2, 3)).clamp_min(1e-6)
    cx = (v.sum(2) * xs).sum(2) / mass
    cy = (v.sum(3) * ys).sum(2) / mass
    return torch.stack([cx, cy], -1)


def prediction_errors(pred: Tensor, true: Tensor, k: int, centre: Tensor) -> dict[str, Tensor]:
    """Per clip errors of predicted clips ``pred`` given the first ``k`` frames of ``true`` (both
    ``(B, T, C, H, W)``, model space): ``mse`` over frames ``k..T-1``, ``mse_copy`` of the
    copy-the-last-known-frame baseline, ``pos_err`` the mean distance (pixels) of the predicted
    frames' centroids from the true centres ``centre`` ``(B, T, 2)``, ``pos_err_copy`` the
    baseline's (its centroid stays at frame ``k - 1``)."""
    fut = true[:, k:].float()
    copy = true[:, k - 1 : k].float().expand_as(fut)
    mse = ((pred[:, k:].float() - fut) ** 2).flatten(1).mean(1)
    mse_copy = ((copy - fut) ** 2).flatten(1).mean(1)
    c_pred = centroids(pred[:, k:])
    c_copy = centroids(copy)
    pos = (c_pred - centre[:, k:]).norm(dim=-1).mean(1)
    pos_copy = (c_copy - centre[:, k:]).norm(dim=-1).mean(1)
    return {"mse": mse, "mse_copy": mse_copy, "pos_err": pos, "pos_err_copy": pos_copy}


def motion_directions(clips: Tensor, min_travel: float = 1.0) -> Tensor:
    """The tracked motion of a single object per clip ``(B,)``: the index into
    :data:`~genzoo.data.video.SHAPE_DIRECTIONS` (left, right, up, down) of the axis direction
    closest to the displacement of its intensity centroid from the first to the last frame, or
    -1 where the centroid moved less than ``min_travel`` pixels (a still clip matches no
    direction)."""
    c = centroids(clips)  # (B, T, 2)
    d = c[:, -1] - c[:, 0]  # (B, 2) displacement (x, y), y grows downwards
    steps = torch.tensor(SHAPE_STEPS, dtype=d.dtype)  # (4, 2) unit steps
    k = (d @ steps.T).argmax(1)  # the closest of the 4 directions
    return torch.where(d.norm(dim=1) >= min_travel, k, torch.full_like(k, -1))


@torch.no_grad()
def prompt_match(
    read: Callable[[Tensor], dict[str, Tensor]],
    clips: Tensor,
    colour: Tensor,
    shape: Tensor,
    direction: Tensor,
) -> dict[str, Tensor]:
    """Per clip ``(B,)`` (0/1) whether moving-shapes clips ``(B, T, 3, H, W)`` (model space) show
    their prompt's ``colour``, ``shape`` (indices into ``shapes``' colours and shapes) and
    ``direction`` (index into :data:`~genzoo.data.video.SHAPE_DIRECTIONS`): colour and shape by
    ``read``, the shapes attribute classifier's reading of single frames (``"colour"``,
    ``"shape"`` ``(N,)``), right on more than half of the frames; the direction by the tracked
    centroid (:func:`motion_directions`); ``all`` needs the three. ``frame_colour`` and
    ``frame_shape`` are the shares of frames read right."""
    b, t = clips.shape[:2]
    r = read(clips.flatten(0, 1))  # per frame
    col = (r["colour"].view(b, t).cpu() == colour[:, None].cpu()).float()  # (B, T)
    shp = (r["shape"].view(b, t).cpu() == shape[:, None].cpu()).float()
    out = {
        "colour": (col.mean(1) > 0.5).float(),
        "shape": (shp.mean(1) > 0.5).float(),
        "direction": (motion_directions(clips.cpu()) == direction.cpu()).float(),
        "frame_colour": col.mean(1),
        "frame_shape": shp.mean(1),
    }
    out["all"] = out["colour"] * out["shape"] * out["direction"]
    return out
