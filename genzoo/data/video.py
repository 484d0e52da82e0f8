"""Embedded video sets, no download: ``moving-digits`` and ``moving-shapes``.

A video example is a clip of ``T`` frames, stored as integer levels ``(T, C, H, W)`` (uint8, 256
levels) like an image set's images and seen by models in [-1, 1]:
``DataInfo(kind="video", shape=(T, C, H, W))``; a batch's ``x`` is ``(B, T, C, H, W)``.

``moving-digits`` (Moving MNIST, Srivastava et al., arXiv:1502.04681, Sec. 3): one or two
``mnist5k`` digits (the train split's digits for the train clips, the test split's for the test
clips), scaled to ``7/16`` of the frame side (7 px in 16 x 16 frames, 14 px in 32 x 32, MNIST's
own 28 px in 64 x 64), moving on a black frame; where two digits overlap the brighter pixel
wins (the maximum, as in the original). Each digit's top-left corner moves on the integer
grid of the ``L = side - sprite + 1`` positions ``0 .. L - 1`` with a constant velocity
``(vx, vy)``, each component a whole number of pixels per frame (the direction one of 8 compass
directions, the speed 1 or 2 pixels per frame up to 32 x 32, twice that at 64 x 64), and bounces
exactly off the walls: a step that would leave ``[0, L - 1]`` is reflected at the wall,
``p -> -p`` or ``p -> 2(L-1) - p``, and that component of the velocity flips sign
(:func:`bounce_step`). Since everything is an integer, positions are exact, and they are kept
for measurement: per clip the digits' classes
``labels (D,)``, the corners ``pos (T, D, 2)`` (x, y), the digits' intensity centroids
``centre (T, D, 2)`` in pixels, and ``direction``, the first digit's initial compass direction
(:data:`DIRECTIONS`). ``y`` is the first digit's class.

``moving-shapes``: one object of the ``shapes`` renderer (:mod:`genzoo.data.shapes`: shape,
colour, size) gliding in a straight line left, right, up or down at a constant speed, placed so
that it never touches the border within the clip (so the caption stays true), e.g. "a red circle
moving left". ``y`` is the shape's class ``colour * 5 + shape`` (30 classes); ``direction`` is an
index into :data:`SHAPE_DIRECTIONS`; ``centre (T, 1, 2)`` is its exact centre in pixels per frame
and ``captions`` holds the texts; batches also carry them as ``text`` ``(B, L)``, caption tokens of
the ``shapes`` caption tokenizer (:func:`~genzoo.data.captions.get_caption_tokenizer`, whose
vocabulary holds the motion words), as text-conditioned models take them.

``frames:<video spec>`` (e.g. ``frames:moving-digits?size=16``) is a video set's frames as an image
set: every frame of every clip of the split, ``(C, H, W)`` with the clip's class as its label
(frame ``t`` of clip ``i`` is image ``i * T + t``). It is what an image model is trained on before
its spatial layers start a video model (``video-diffusion`` with ``image_run``).

Specs take options after ``?``: ``frames=T`` (4..16, default 8), ``size=S`` (16, 32 or 64, default
32), ``n=N`` (training clips, default 8,000; the test split has 1,000), and for moving-digits
``digits=1`` or ``digits=2`` (default 1), e.g. ``moving-digits?frames=16&digits=2``. Everything
follows from fixed seeds, the same on every machine.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.core.errors import ConfigError, DataError
from genzoo.data.base import DataInfo, Dataset
from genzoo.data.images import DIGIT_NAMES, load_mnist5k
from genzoo.data.shapes import (
    _EXTENT,
    CLASS_NAMES,
    COLOUR_NAMES,
    COLOURS,
    SHAPES,
    Scene,
    ShapeObject,
    _position,
    article,
    render,
)

VIDEO_SETS = ("moving-digits", "moving-shapes")
DIRECTIONS = ("right", "down-right", "down", "down-left", "left", "up-left", "up", "up-right")
"""The 8 compass directions of moving-digits (y grows downwards), in steps of 45 degrees."""
UNIT_STEPS = ((1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1))
SHAPE_DIRECTIONS = ("left", "right", "up", "down")
SHAPE_STEPS = ((-1, 0), (1, 0), (0, -1), (0, 1))
FRAMES = (4, 16)  # the clip lengths a spec may ask for (inclusive range)
SIZES = (16, 32, 64)
DEFAULT_FRAMES, DEFAULT_SIZE, DEFAULT_TRAIN, N_TEST = 8, 32, 8000, 1000
SEEDS = {"train": 31_337, "test": 42_013}  # split -> seed of its trajectories


@dataclass(frozen=True)
class VideoSpec:
    base: str
    frames: int = DEFAULT_FRAMES
    size: int = DEFAULT_SIZE
    n: int = DEFAULT_TRAIN
    digits: int = 1

    @property
    def name(self) -> str:
        opts = []
        for key, default in (("frames", DEFAULT_FRAMES), ("size", DEFAULT_SIZE)):
            if getattr(self, key) != default:
                opts.append(f"{key}={getattr(self, key)}")
        if self.n != DEFAULT_TRAIN:
            opts.append(f"n={self.n}")
        if self.digits != 1:
            opts.append(f"digits={self.digits}")
        return self.base + ("?" + "&".join(opts) if opts else "")


def is_video_spec(spec: str) -> bool:
    return spec.split("?")[0] in VIDEO_SETS


def parse_video_spec(spec: str) -> VideoSpec:
    """``moving-digits[?frames=T&size=S&n=N&digits=D]`` or ``moving-shapes[?...]`` -> options;
    anything else is one sentence naming the valid options."""
    base, _, query = spec.partition("?")
    vals = {"frames": DEFAULT_FRAMES, "size": DEFAULT_SIZE, "n": DEFAULT_TRAIN, "digits": 1}
    keys = ("frames", "size", "n", "digits") if base == "moving-digits" else ("frames", "size", "n")
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        ok = key in keys and value.isdigit()
        ok = ok and (
            (key == "frames" and FRAMES[0] <= int(value) <= FRAMES[1])
            or (key == "size" and int(value) in SIZES)
            or (key == "n" and int(value) >= 1)
            or (key == "digits" and int(value) in (1, 2))
        )
        if not ok:
            digits = ", digits=1 or digits=2" if base == "moving-digits" else ""
            raise DataError(
                f"Bad option {item!r} in dataset {spec!r}; valid options are frames=T "
                f"({FRAMES[0]}..{FRAMES[1]}), size=16, 32 or 64, n=N (training clips){digits}, "
                f"e.g. '{base}?frames=16'."
            )
        vals[key] = int(value)
    return VideoSpec(base, vals["frames"], vals["size"], vals["n"], vals["digits"])


def video_info(spec: str) -> DataInfo:
    """What ``moving-digits[?...]`` or ``moving-shapes[?...]`` declares."""
    s = parse_video_spec(spec)
    digits = s.base == "moving-digits"
    return DataInfo(
        name=s.name,
        kind="video",
        shape=(s.frames, 1 if digits else 3, s.size, s.size),
        levels=256,
        n_classes=10 if digits else len(CLASS_NAMES),
        value_range=(-1.0, 1.0),
        class_names=DIGIT_NAMES if digits else CLASS_NAMES,
    )


# --- trajectories --------------------------------------------------------------------------------
def bounce_step(p: np.ndarray, v: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """One step of integer positions ``p`` with velocities ``v`` (same shape) inside
    ``[0, limit]``: ``p + v``, reflected at a wall it would cross (``q -> -q`` below 0,
    ``q -> 2 limit - q`` above ``limit``), where that velocity component flips sign. Needs
    ``|v| <= limit`` (one reflection suffices)."""
    q = p + v
    low, high = q < 0, q > limit
    q = np.where(low, -q, np.where(high, 2 * limit - q, q))
    return q, np.where(low | high, -v, v)


def trajectories(
    p0: np.ndarray, v0: np.ndarray, frames: int, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities ``(frames, *p0.shape)`` from ``p0``, ``v0``
    (:func:`bounce_step`)."""
    ps, vs = [p0], [v0]
    for _ in range(frames - 1):
        p, v = bounce_step(ps[-1], vs[-1], limit)
        ps.append(p)
        vs.append(v)
    return np.stack(ps), np.stack(vs)


# --- moving digits --------------------------------------------------------------------------------
def digit_side(size: int) -> int:
    """The side in pixels of a moving-digits sprite in frames of side ``size``: ``7/16`` of it."""
    return 7 * size // 16


def _sprites(split: str, size: int) -> tuple[Tensor, Tensor]:
    """The split's mnist5k digits scaled to the sprite side ``7 size / 16``: ``(N, s, s)`` float
    in [0, 255], and their labels."""
    d = load_mnist5k(split)
    x = d.x.float()  # (N, 1, 28, 28)
    side = digit_side(size)
    if side != 28:
        x = F.interpolate(x, size=(side, side), mode="area")
    assert d.y is not None
    return x[:, 0], d.y


class VideoDataset(Dataset):
    """Clips ``x`` ``(N, T, C, S, S)`` uint8 with labels ``y`` ``(N,)`` and what was drawn.

    Batch keys from :meth:`get` (besides ``x`` and ``y``): ``direction`` ``(B,)``, ``centre``
    ``(B, T, D, 2)`` (x, y in pixels, float) and ``labels`` ``(B, D)``; moving-digits also has
    ``pos`` ``(B, T, D, 2)`` (the sprites' integer corners), moving-shapes ``text`` ``(B, L)``
    (caption tokens)."""

    EXTRA_KEYS: tuple[str, ...] = ("direction", "centre", "labels")

    def __init__(
        self, info: DataInfo, x: Tensor, y: Tensor, extras: dict[str, Tensor], captions: list[str]
    ) -> None:
        super().__init__(info, x, y)
        self.extras = extras
        self.captions = captions

    def extra(
        self, idx: Tensor, *, dequantize: bool = False, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        cpu = idx.cpu()
        return {k: v[cpu].to(idx.device) for k, v in self.extras.items()}


def make_moving_digits(spec: VideoSpec, split: str) -> VideoDataset:
    """The clips of ``spec`` for ``split`` (see the module docstring)."""
    n = spec.n if split == "train" else N_TEST
    rng = np.random.default_rng(SEEDS[split] + 7 * spec.digits + spec.frames)
    sprites, classes = _sprites(split, spec.size)
    side = sprites.shape[-1]
    limit = spec.size - side  # corners lie in 0 .. limit
    which = rng.integers(0, len(sprites), size=(n, spec.digits))  # (N, D) sprite indices
    p0 = rng.integers(0, limit + 1, size=(n, spec.digits, 2))  # (N, D, 2) corners (x, y)
    dirs = rng.integers(0, len(UNIT_STEPS), size=(n, spec.digits))
    speed = rng.integers(1, 3, size=(n, spec.digits, 1)) * max(1, spec.size // 32)
    v0 = np.asarray(UNIT_STEPS)[dirs] * speed  # (N, D, 2)
    pos, _ = trajectories(p0, v0, spec.frames, limit)  # (T, N, D, 2)
    pos = np.ascontiguousarray(pos.transpose(1, 0, 2, 3))  # (N, T, D, 2)
    # each sprite's own intensity centroid (x, y) in pixels from its corner (pixel centres)
    grid = torch.arange(side, dtype=torch.float32) + 0.5
    mass = sprites.sum((1, 2)).clamp_min(1e-6)
    cx = (sprites.sum(1) * grid).sum(1) / mass  # (N,)
    cy = (sprites.sum(2) * grid).sum(1) / mass
    offset = torch.stack([cx, cy], -1)[torch.from_numpy(which)]  # (N, D, 2)
    centre = torch.from_numpy(pos).float() + offset[:, None]  # (N, T, D, 2)

    frames = torch.zeros(n, spec.frames, spec.size * spec.size)  # (N, T, S*S)
    spr = sprites[torch.from_numpy(which)].flatten(2)  # (N, D, s*s)
    a = torch.arange(side)
    window = (a[:, None] * spec.size + a[None, :]).flatten()  # (s*s,) offsets of a sprite's pixels
    corner = torch.from_numpy(pos[..., 1] * spec.size + pos[..., 0])  # (N, T, D) flat corners
    for d in range(spec.digits):  # paste: the maximum of overlapping digits
        idx = corner[:, :, d, None] + window  # (N, T, s*s)
        src = spr[:, d, None].expand(-1, spec.frames, -1)
        frames.scatter_reduce_(2, idx, src, reduce="amax")
    frames = frames.view(n, spec.frames, 1, spec.size, spec.size)  # (N, T, 1, S, S)
    x8 = frames.round().clamp(0, 255).to(torch.uint8)
    labels = classes[torch.from_numpy(which)]  # (N, D)
    extras = {
        "direction": torch.from_numpy(dirs[:, 0]).long(),
        "centre": centre,
        "labels": labels,
        "pos": torch.from_numpy(pos).long(),
    }
    captions = [
        f"a {DIGIT_NAMES[int(c)]} moving {DIRECTIONS[int(k)]}"
        for c, k in zip(labels[:, 0], dirs[:, 0], strict=True)
    ]
    return VideoDataset(video_info(spec.name), x8, labels[:, 0].clone(), extras, captions)


# --- moving shapes --------------------------------------------------------------------------------
def make_moving_shapes(spec: VideoSpec, split: str) -> VideoDataset:
    """One shape per clip gliding left, right, up or down without touching the border."""
    n = spec.n if split == "train" else N_TEST
    rng = np.random.default_rng(SEEDS[split] + 101 + spec.frames)
    t_span = spec.frames - 1
    scenes: list[Scene] = []
    labels, dirs, centres, captions = [], [], [], []
    for _ in range(n):
        colour, shape, size = (int(rng.integers(k)) for k in (len(COLOURS), len(SHAPES), 2))
        r = float(rng.uniform(0.11, 0.14) if size == 0 else rng.uniform(0.15, 0.18))
        ext = _EXTENT * r + 1.0 / spec.size  # room the shape needs to every border
        room = 1.0 - 2 * ext
        speed = float(rng.uniform(0.5, 1.0)) * min(room / t_span, 2.5 / spec.size)
        k = int(rng.integers(len(SHAPE_STEPS)))
        dx, dy = SHAPE_STEPS[k]
        travel = speed * t_span
        # the start leaves room for the whole travel along the motion axis
        along = rng.uniform(ext, 1 - ext - travel)
        across = rng.uniform(ext, 1 - ext)
        x0 = (along if dx > 0 else 1 - along) if dx else across
        y0 = (along if dy > 0 else 1 - along) if dy else across
        base = np.array(COLOURS[COLOUR_NAMES[colour]])
        rgb = np.clip(base + rng.integers(-15, 16, size=3), 0, 255)
        clip_centres = []
        for t in range(spec.frames):
            cx, cy = x0 + dx * speed * t, y0 + dy * speed * t
            obj = ShapeObject(shape, colour, size, _position(cx, cy), cx, cy, r,
                              (int(rgb[0]), int(rgb[1]), int(rgb[2])))  # fmt: skip
            scenes.append(Scene((obj,)))
            clip_centres.append([[cx * spec.size, cy * spec.size]])
        labels.append(colour * len(SHAPES) + shape)
        dirs.append(k)
        centres.append(clip_centres)
        name = f"{COLOUR_NAMES[colour]} {SHAPES[shape]}"
        captions.append(f"{article(name)} {name} moving {SHAPE_DIRECTIONS[k]}")
    from genzoo.data.captions import get_caption_tokenizer  # the tokenizer imports this module

    x = render(scenes, spec.size).view(n, spec.frames, 3, spec.size, spec.size)  # (N, T, 3, S, S)
    y = torch.tensor(labels)
    extras = {
        "direction": torch.tensor(dirs),
        "centre": torch.tensor(centres, dtype=torch.float32),  # (N, T, 1, 2)
        "labels": y[:, None].clone(),
        "text": get_caption_tokenizer(motion=True).encode_batch(captions),  # (N, L) caption tokens
    }
    return VideoDataset(video_info(spec.name), x, y, extras, captions)


@functools.lru_cache(maxsize=4)
def _cached(name: str, split: str) -> VideoDataset:
    spec = parse_video_spec(name)
    if spec.base == "moving-digits":
        return make_moving_digits(spec, split)
    return make_moving_shapes(spec, split)


FRAMES_PREFIX = "frames:"


def is_frames_spec(spec: str) -> bool:
    return spec.startswith(FRAMES_PREFIX)


def frames_info(spec: str) -> DataInfo:
    """What ``frames:<video spec>`` declares: the video set's frames as images."""
    inner = spec[len(FRAMES_PREFIX) :]
    if not is_video_spec(inner):
        raise DataError(
            f"Dataset {spec!r}: 'frames:' takes a video set, one of {', '.join(VIDEO_SETS)} "
            "(e.g. 'frames:moving-digits?size=16')."
        )
    clips = video_info(inner)
    return dataclasses.replace(
        clips, name=FRAMES_PREFIX + clips.name, kind="images", shape=clips.shape[1:]
    )


def load_frames(spec: str, split: str = "train") -> Dataset:
    """Split ``split`` of ``frames:<video spec>``: every frame of every clip, labelled with its
    clip's class."""
    info = frames_info(spec)
    clips = load_video(spec[len(FRAMES_PREFIX) :], split)
    assert clips.x is not None and clips.y is not None
    t = clips.x.shape[1]
    x = clips.x.flatten(0, 1)  # (N, T, C, H, W) -> (N*T, C, H, W)
    return Dataset(info, x, clips.y.repeat_interleave(t))


def load_video(spec: str, split: str = "train") -> VideoDataset:
    """Split ``split`` of a video set, generated once per process (a shallow copy is returned)."""
    if split not in SEEDS:
        raise DataError(f"Unknown split {split!r} of dataset {spec!r}; choose 'test' or 'train'.")
    return copy.copy(_cached(parse_video_spec(spec).name, split))


def clip_shape(model: str, info: DataInfo, multiple: int = 1) -> tuple[int, ...]:
    """The clip shape ``(T, C, H, W)`` of ``info`` for a video model; one sentence naming
    ``model`` if the data is not video or ``T``, ``H``, ``W`` are not multiples of ``multiple``
    (e.g. 4 for two up-sampling stages in space and time)."""
    shape = tuple(int(s) for s in info.shape)
    if info.kind != "video" or len(shape) != 4:
        raise ConfigError(
            f"{model} needs video data (moving-digits, moving-shapes); {info.name!r} holds "
            f"{info.kind}."
        )
    if shape[0] % multiple or shape[2] % multiple or shape[3] % multiple:
        raise ConfigError(
            f"{model} needs a clip length and frame side that are multiples of {multiple}; "
            f"{info.name!r} has {shape[0]} frames of {shape[2]} x {shape[3]}."
        )
    return shape


def context_length(cond: Tensor, n: int, shape: tuple[int, ...]) -> int:
    """The number ``k`` of known first frames ``cond (n, k, C, H, W)`` given to a run of clips of
    ``shape`` ``(T, C, H, W)`` to continue; one sentence if they do not fit (``1 <= k < T``) or
    hold NaN."""
    t, c, h, w = shape
    if cond.ndim != 5 or tuple(cond.shape[2:]) != (c, h, w) or cond.shape[0] != n:
        raise ConfigError(
            f"Context frames of shape {tuple(cond.shape)} do not fit this run: it takes "
            f"({n}, k, {c}, {h}, {w}) with 1 <= k < {t} (frames of {c} x {h} x {w})."
        )
    k = int(cond.shape[1])
    if not 1 <= k < t:
        raise ConfigError(f"{k} context frames: give 1 to {t - 1} of the {t} frames.")
    if cond.is_floating_point() and not bool(torch.isfinite(cond).all()):
        raise ConfigError("The context frames hold NaN or infinite values; give frames in [-1, 1].")
    return k


def clip_request(
    frames: Any, size: Any, shape: tuple[int, ...], *, any_length: bool = False
) -> int:
    """The clip length a video sampler is asked for: ``frames`` (None: the trained ``T`` of
    ``shape (T, C, H, W)``), which must be the trained length unless the model can draw clips of
    ``any_length`` (then any whole number >= 1); ``size``, if given, must be the trained frame
    side. One sentence otherwise."""
    t, _, h, _ = shape
    if frames is not None:
        ok = isinstance(frames, int | float | str) and str(frames).isdigit() and int(frames) >= 1
        if not ok or (not any_length and int(frames) != t):
            what = "any whole number of frames >= 1" if any_length else f"clips of {t} frames only"
            raise ConfigError(
                f"frames={frames}: this run was trained on clips of {t} frames and draws {what}."
            )
    if size is not None and str(size) != str(h):
        raise ConfigError(
            f"size={size}: this run was trained on {h} x {h} frames and draws those only."
        )
    return t if frames is None else int(frames)
