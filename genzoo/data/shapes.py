"""``shapes``: procedural RGB images of coloured shapes with captions, attributes and questions.

Every image shows one or two objects on a black background. An object has a shape
(:data:`SHAPES`), a colour (:data:`COLOURS`), a size (``small`` or ``large``) and a position (the
cell of a 3 x 3 grid its centre falls in); two objects also have a spatial relation (the first is
``left of``, ``right of``, ``above`` or ``below`` the second, along the axis of their larger
offset, which is at least 1.5 times the smaller one, so the relation is never ambiguous) and never
overlap. Shapes are rasterised from signed distance functions with one pixel of linear
anti-aliasing, ``coverage = clip(1/2 - d, 0, 1)`` for the distance ``d`` (in pixels) of a pixel
centre to the shape's outline.

Each image carries:

- ``y``: the class ``colour * len(SHAPES) + shape`` of its first object (``class_names`` reads
  "red circle", ...), so the images work as an ordinary labelled image set for every image model;
- a caption drawn from templates (:data:`SINGLE_TEMPLATES`, :data:`PAIR_TEMPLATES`), e.g. "a small
  red circle in the top left" or "a blue square to the left of an orange triangle";
  :func:`all_captions` renders every template, the references for BLEU;
- attributes ``(2, 4)``: shape, colour, size, position of each object (-1 for a missing second);
- :data:`QUESTIONS_PER_IMAGE` questions with one-word answers out of :data:`ANSWERS`, e.g. "what
  colour is the square?" -> "red", "how many circles are there?" -> "two";
- hard negative captions for image-text matching (:func:`itm_negatives`): the caption with one
  colour, one shape or the relation swapped (:data:`ITM_NEGATIVES`), each false for the image.

Spec: ``shapes`` with options ``size=N`` (image side, default 32, at least 16), ``n=N`` (training
images, default 10,000) and ``objects=1`` (single objects only; default 1 or 2, half each), e.g.
``shapes?size=64&objects=1``. The test split always has 2,000 images. Everything is drawn from
fixed seeds, so a spec gives the same images on every machine, and nothing is downloaded.

Held-out combinations: the colour-shape pairs in :data:`HELDOUT_PAIRS` never appear in the train
split (in neither object); the test split draws every pair uniformly, so a model's compositional
generalisation can be measured on the test images whose ``heldout`` flag is set.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from genzoo.core.errors import DataError
from genzoo.data.base import DataInfo, Dataset

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles",
           "diamond": "diamonds", "cross": "crosses"}  # fmt: skip
COLOURS = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (240, 225, 40),
    "green": (40, 180, 60),
    "blue": (45, 95, 240),
    "purple": (155, 60, 215),
}
COLOUR_NAMES = tuple(COLOURS)
SIZES = ("small", "large")
# 3 x 3 grid cells (row-major from the top left) and how a caption says "where"
POSITIONS = ("top left", "top", "top right", "left", "centre", "right",
             "bottom left", "bottom", "bottom right")  # fmt: skip
POSITION_PHRASES = ("in the top left", "at the top", "in the top right", "on the left",
                    "in the centre", "on the right", "in the bottom left", "at the bottom",
                    "in the bottom right")  # fmt: skip
RELATIONS = ("left of", "right of", "above", "below")
RELATION_PHRASES = ("to the left of", "to the right of", "above", "below")
CONVERSE = (1, 0, 3, 2)  # A left of B <=> B right of A, A above B <=> B below A
HELDOUT_PAIRS = (
    ("red", "cross"),
    ("orange", "circle"),
    ("yellow", "square"),
    ("green", "triangle"),
    ("blue", "diamond"),
)
"""Colour-shape pairs never seen together in the train split (one per shape)."""

COUNT_WORDS = ("zero", "one", "two")
ANSWERS = (*COLOUR_NAMES, *SHAPES, *SIZES, *COUNT_WORDS, "yes", "no")
"""Every answer to a question (18 classes for VQA)."""
QUESTION_TYPES = ("colour", "shape", "size", "count", "objects", "exists", "relation")
QUESTIONS_PER_IMAGE = 4

SINGLE_TEMPLATES = (
    "{a} {colour} {shape}",
    "{a} {size} {colour} {shape}",
    "{a} {colour} {shape} {where}",
    "{a} {size} {colour} {shape} {where}",
    "there is {a} {colour} {shape}",
    "a picture of {a} {size} {colour} {shape}",
)
PAIR_TEMPLATES = (
    "{a1} {c1} {s1} {rel} {a2} {c2} {s2}",
    "{a1} {z1} {c1} {s1} {rel} {a2} {z2} {c2} {s2}",
    "{a1} {c1} {s1} and {a2} {c2} {s2}",
    "there is {a1} {c1} {s1} {rel} {a2} {c2} {s2}",
)
PROMPT_TEMPLATES = ("{a} {colour} {shape}", "there is {a} {colour} {shape}",
                    "a picture of {a} {colour} {shape}")  # fmt: skip
"""Zero-shot class prompts (no size or position): averaged as a prompt ensemble."""

DEFAULT_SIZE = 32
DEFAULT_TRAIN = 10_000
N_TEST = 2_000
SEEDS = {"train": 10_007, "test": 20_011}  # split -> seed of its scenes
MIN_SIZE = 16
N_CLASSES = len(COLOURS) * len(SHAPES)
CLASS_NAMES = tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)  # class = colour * 5 + shape


def article(word: str) -> str:
    """``"an"`` before a vowel sound ("an orange"), else ``"a"``."""
    return "an" if word[0] in "aeiou" else "a"


@dataclass(frozen=True)
class ShapeObject:
    """One object: indices into SHAPES / COLOURS / SIZES / POSITIONS, centre and radius in units
    of the image side (so a scene renders at any size)."""

    shape: int
    colour: int
    size: int
    position: int
    cx: float  # centre, x to the right, in [0, 1]
    cy: float  # centre, y downwards, in [0, 1]
    r: float  # nominal radius in [0, 1]
    rgb: tuple[int, int, int]  # the colour with its per-object jitter

    @property
    def words(self) -> dict[str, str]:
        return {
            "shape": SHAPES[self.shape],
            "colour": COLOUR_NAMES[self.colour],
            "size": SIZES[self.size],
            "where": POSITION_PHRASES[self.position],
        }

    @property
    def label(self) -> int:
        return self.colour * len(SHAPES) + self.shape


@dataclass(frozen=True)
class Scene:
    """The objects of one image and, for two, the relation of the first to the second."""

    objects: tuple[ShapeObject, ...]
    relation: int = -1  # index into RELATIONS, -1 for one object
    template: int = 0  # the caption template drawn for it

    @property
    def label(self) -> int:
        return self.objects[0].label

    def caption(self, template: int | None = None) -> str:
        """The caption from template ``template`` (default: the scene's own)."""
        t = self.template if template is None else template
        if len(self.objects) == 1:
            w = self.objects[0].words
            first = w["size"] if "{size}" in SINGLE_TEMPLATES[t].split("{colour}")[0] else None
            a = article(first or w["colour"])
            return SINGLE_TEMPLATES[t].format(a=a, **w)
        o1, o2 = (o.words for o in self.objects)
        has_size = "{z1}" in PAIR_TEMPLATES[t]
        return PAIR_TEMPLATES[t].format(
            a1=article(o1["size"] if has_size else o1["colour"]),
            a2=article(o2["size"] if has_size else o2["colour"]),
            c1=o1["colour"], s1=o1["shape"], z1=o1["size"],
            c2=o2["colour"], s2=o2["shape"], z2=o2["size"],
            rel=RELATION_PHRASES[self.relation],
        )  # fmt: skip

    def all_captions(self) -> list[str]:
        """The caption under every template of its kind (references for BLEU)."""
        n = len(SINGLE_TEMPLATES) if len(self.objects) == 1 else len(PAIR_TEMPLATES)
        return [self.caption(t) for t in range(n)]

    @property
    def heldout(self) -> bool:
        """Whether an object is a held-out colour-shape pair."""
        return any((COLOUR_NAMES[o.colour], SHAPES[o.shape]) in HELDOUT_PAIRS for o in self.objects)

    def attributes(self) -> list[list[int]]:
        """``[[shape, colour, size, position]] * 2``, -1 for a missing second object."""
        rows = [[o.shape, o.colour, o.size, o.position] for o in self.objects]
        return rows + [[-1, -1, -1, -1]] * (2 - len(rows))


# --- scenes -------------------------------------------------------------------------------------
_HELD = {(COLOUR_NAMES.index(c), SHAPES.index(s)) for c, s in HELDOUT_PAIRS}
_EXTENT = 1.25  # the bounding circle of every shape has radius <= 1.25 r (placement uses it)


def _pairs(split: str) -> list[tuple[int, int]]:
    """The (colour, shape) pairs a split draws from."""
    allp = [(c, s) for c in range(len(COLOURS)) for s in range(len(SHAPES))]
    return [p for p in allp if p not in _HELD] if split == "train" else allp


def _position(cx: float, cy: float) -> int:
    col = min(int(cx * 3), 2)
    row = min(int(cy * 3), 2)
    return row * 3 + col


def _radius(rng: np.random.Generator, size: int) -> float:
    return float(rng.uniform(0.11, 0.14) if size == 0 else rng.uniform(0.17, 0.21))


def _object(
    rng: np.random.Generator,
    pair: tuple[int, int],
    size: int,
    r: float,
    cx: float,
    cy: float,
) -> ShapeObject:
    base = np.array(COLOURS[COLOUR_NAMES[pair[0]]])
    rgb = np.clip(base + rng.integers(-15, 16, size=3), 0, 255)
    return ShapeObject(pair[1], pair[0], size, _position(cx, cy), cx, cy, r,
                       (int(rgb[0]), int(rgb[1]), int(rgb[2])))  # fmt: skip


def _pair_positions(
    rng: np.random.Generator, r1: float, r2: float, rel: int, tries: int = 64
) -> tuple[float, float, float, float] | None:
    """Centres of two objects with object 1 ``RELATIONS[rel]`` object 2 (the first of ``tries``
    uniform draws that fits), or None."""
    e1, e2 = _EXTENT * r1, _EXTENT * r2
    x1, y1 = rng.uniform(e1, 1 - e1, size=(2, tries))
    x2, y2 = rng.uniform(e2, 1 - e2, size=(2, tries))
    dx, dy = x2 - x1, y2 - y1  # object 2 relative to object 1
    main, other = (dx, dy) if rel in (0, 1) else (dy, dx)
    sign = 1.0 if rel in (0, 2) else -1.0  # left of / above: object 2 has the larger x / y
    ok = (sign * main > 0) & (np.abs(main) >= 1.5 * np.abs(other))
    ok &= np.hypot(dx, dy) >= e1 + e2 + 0.04
    hits = np.flatnonzero(ok)
    if hits.size == 0:
        return None
    i = int(hits[0])
    return float(x1[i]), float(y1[i]), float(x2[i]), float(y2[i])


def make_scenes(n: int, seed: int, split: str = "train", max_objects: int = 2) -> list[Scene]:
    """``n`` random scenes (objects, relation, caption template) from ``seed``; the pairs of
    :data:`HELDOUT_PAIRS` are left out when ``split == "train"``."""
    rng = np.random.default_rng(seed)
    pairs = _pairs(split)
    scenes: list[Scene] = []
    for _ in range(n):
        n_obj = 1 if max_objects == 1 else int(rng.integers(1, 3))
        if n_obj == 1:
            pair = pairs[int(rng.integers(len(pairs)))]
            size = int(rng.integers(2))
            r = _radius(rng, size)
            e = _EXTENT * r
            cx, cy = rng.uniform(e, 1 - e, size=2)
            obj = _object(rng, pair, size, r, float(cx), float(cy))
            t = int(rng.integers(len(SINGLE_TEMPLATES)))
            scenes.append(Scene((obj,), -1, t))
            continue
        p1, p2 = (pairs[int(i)] for i in rng.integers(len(pairs), size=2))
        rel = int(rng.integers(len(RELATIONS)))
        sizes = [int(s) for s in rng.integers(2, size=2)]
        while True:
            r1, r2 = _radius(rng, sizes[0]), _radius(rng, sizes[1])
            pos = _pair_positions(rng, r1, r2, rel)
            if pos is not None:
                break
            sizes = [0, 0] if sizes != [0, 0] else sizes  # two large ones may not fit: shrink
        o1 = _object(rng, p1, sizes[0], r1, pos[0], pos[1])
        o2 = _object(rng, p2, sizes[1], r2, pos[2], pos[3])
        t = int(rng.integers(len(PAIR_TEMPLATES)))
        scenes.append(Scene((o1, o2), rel, t))
    return scenes


# --- questions ----------------------------------------------------------------------------------
def make_questions(
    scene: Scene, rng: np.random.Generator, k: int = QUESTIONS_PER_IMAGE
) -> list[tuple[str, str, int]]:
    """``k`` questions about ``scene``: ``(question, answer, type)`` with the answer in
    :data:`ANSWERS` and the type an index into :data:`QUESTION_TYPES`; every question has exactly
    one right answer (an object is only named by a shape or colour it alone has)."""
    objs = scene.objects
    shape_count = [sum(o.shape == s for o in objs) for s in range(len(SHAPES))]
    colour_count = [sum(o.colour == c for o in objs) for c in range(len(COLOURS))]
    unique_shape = [o for o in objs if shape_count[o.shape] == 1]
    unique_colour = [o for o in objs if colour_count[o.colour] == 1]
    distinct = len(objs) == 2 and (objs[0].shape, objs[0].colour) != (objs[1].shape, objs[1].colour)
    types = [1, 3, 4, 5]  # shape needs a unique colour: usually there; checked below
    types = [t for t in types if t != 1 or unique_colour]
    if unique_shape:
        types += [0, 2]
    if distinct:
        types.append(6)

    def draw() -> tuple[str, str, int]:
        t = types[int(rng.integers(len(types)))]
        if t == 0:
            o = unique_shape[int(rng.integers(len(unique_shape)))]
            return (f"what colour is the {SHAPES[o.shape]}?", COLOUR_NAMES[o.colour], t)
        elif t == 1:
            o = unique_colour[int(rng.integers(len(unique_colour)))]
            return (f"what shape is the {COLOUR_NAMES[o.colour]} object?", SHAPES[o.shape], t)
        elif t == 2:
            o = unique_shape[int(rng.integers(len(unique_shape)))]
            return (f"what size is the {SHAPES[o.shape]}?", SIZES[o.size], t)
        elif t == 3:
            present = [o.shape for o in objs]
            s = present[int(rng.integers(len(present)))] if rng.random() < 0.5 else None
            s = int(rng.integers(len(SHAPES))) if s is None else s
            return (f"how many {PLURALS[SHAPES[s]]} are there?",
                        COUNT_WORDS[shape_count[s]], t)  # fmt: skip
        elif t == 4:
            return ("how many objects are there?", COUNT_WORDS[len(objs)], t)
        elif t == 5:
            if rng.random() < 0.5:
                o = objs[int(rng.integers(len(objs)))]
                c, s = o.colour, o.shape
            else:
                c, s = int(rng.integers(len(COLOURS))), int(rng.integers(len(SHAPES)))
            yes = any(o.colour == c and o.shape == s for o in objs)
            q = f"is there {article(COLOUR_NAMES[c])} {COLOUR_NAMES[c]} {SHAPES[s]}?"
            return (q, "yes" if yes else "no", t)
        else:
            first = int(rng.integers(2))
            a, b = objs[first], objs[1 - first]
            truth = scene.relation if first == 0 else CONVERSE[scene.relation]
            asked = int(rng.integers(len(RELATIONS)))
            q = (
                f"is the {COLOUR_NAMES[a.colour]} {SHAPES[a.shape]} {RELATION_PHRASES[asked]} "
                f"the {COLOUR_NAMES[b.colour]} {SHAPES[b.shape]}?"
            )
            return (q, "yes" if asked == truth else "no", t)

    out: list[tuple[str, str, int]] = []
    for _ in range(8 * k):  # distinct questions where the scene allows k of them
        qa = draw()
        if qa[0] not in [q for q, _, _ in out]:
            out.append(qa)
        if len(out) == k:
            return out
    while len(out) < k:
        out.append(draw())
    return out


# --- hard negatives for image-text matching ------------------------------------------------------
ITM_NEGATIVES = ("colour", "shape", "relation")
"""The kinds of hard negative caption: one attribute of the true caption swapped."""


def _swap_object(
    scene: Scene, field: str, n_values: int, rng: np.random.Generator, split: str
) -> Scene | None:
    """``scene`` with the ``field`` (``"colour"`` or ``"shape"``) of one object changed so that
    the new colour-shape pair is none of the scene's objects (the caption becomes false) and is
    a pair the split draws (a train negative never names a held-out pair); None if impossible."""
    have = {(o.colour, o.shape) for o in scene.objects}
    held = _HELD if split == "train" else set()
    options = []
    for i, o in enumerate(scene.objects):
        for v in range(n_values):
            pair = (v, o.shape) if field == "colour" else (o.colour, v)
            if pair != (o.colour, o.shape) and pair not in have and pair not in held:
                options.append((i, v))
    if not options:
        return None
    i, v = options[int(rng.integers(len(options)))]
    objs = list(scene.objects)
    objs[i] = dataclasses.replace(objs[i], **{field: v})
    return dataclasses.replace(scene, objects=tuple(objs))


def swap_negative(scene: Scene, kind: str, rng: np.random.Generator, split: str) -> Scene | None:
    """The scene description of a hard negative of kind ``kind`` (:data:`ITM_NEGATIVES`): one
    object's colour or shape changed, or the relation replaced by its converse ("left of" ->
    "right of", "above" -> "below"); its :meth:`Scene.caption` (same template) is false for the
    image. None where the kind does not apply: a relation swap needs a caption that states the
    relation of two objects that differ in colour or shape (two red circles stay true either
    way round)."""
    if kind == "colour":
        return _swap_object(scene, "colour", len(COLOURS), rng, split)
    if kind == "shape":
        return _swap_object(scene, "shape", len(SHAPES), rng, split)
    if kind != "relation":
        raise DataError(f"Unknown negative kind {kind!r}; choose one of {ITM_NEGATIVES}.")
    if len(scene.objects) != 2 or "{rel}" not in PAIR_TEMPLATES[scene.template]:
        return None
    a, b = scene.objects
    if (a.colour, a.shape) == (b.colour, b.shape):
        return None
    return dataclasses.replace(scene, relation=CONVERSE[scene.relation])


def itm_negatives(scene: Scene, rng: np.random.Generator, split: str) -> list[str | None]:
    """One hard negative caption per kind of :data:`ITM_NEGATIVES` (None where it does not
    apply), each differing from ``scene.caption()`` in exactly one attribute."""
    out: list[str | None] = []
    for kind in ITM_NEGATIVES:
        neg = swap_negative(scene, kind, rng, split)
        out.append(None if neg is None else neg.caption())
    return out


# --- rendering ----------------------------------------------------------------------------------
def _sdf(shape: int, dx: Tensor, dy: Tensor, r: Tensor) -> Tensor:
    """Signed distance (pixels, negative inside) of offsets ``(dx, dy)`` (broadcastable, e.g.
    ``(M, 1, W)`` and ``(M, H, 1)``) from a shape's centre;
    exact for the circle, a close bound for the polygons (enough for one pixel of anti-aliasing)."""
    ax, ay = dx.abs(), dy.abs()
    name = SHAPES[shape]
    if name == "circle":
        return torch.sqrt(dx * dx + dy * dy) - r
    if name == "square":
        return torch.maximum(ax, ay) - 0.88 * r
    if name == "triangle":  # equilateral, pointing up, circumradius 1.2 r, inradius 0.6 r
        s3 = math.sqrt(3.0) / 2.0
        d = torch.maximum(dy, torch.maximum(s3 * dx - 0.5 * dy, -s3 * dx - 0.5 * dy))
        return d - 0.6 * r
    if name == "diamond":
        return (ax + ay - 1.2 * r) / math.sqrt(2.0)
    arm, half = 1.1 * r, 0.36 * r  # cross: the union of two bars
    bar1 = torch.maximum(ax - arm, ay - half)
    bar2 = torch.maximum(ax - half, ay - arm)
    return torch.minimum(bar1, bar2)


def render(scenes: list[Scene], size: int = DEFAULT_SIZE) -> Tensor:
    """Rasterise scenes to ``(N, 3, size, size)`` uint8 images (black background)."""
    out = torch.empty(len(scenes), 3, size, size, dtype=torch.uint8)
    chunk = max(1, 2**22 // (size * size))  # about 50 MB of float32 work space at a time
    centres = torch.arange(size, dtype=torch.float32) + 0.5  # pixel centres
    for start in range(0, len(scenes), chunk):
        part = scenes[start : start + chunk]
        img = torch.zeros(len(part), 3, size, size)
        for slot in range(2):  # the second object is drawn over the first (they never overlap)
            rows = [i for i, s in enumerate(part) if len(s.objects) > slot]
            if not rows:
                continue
            objs = [part[i].objects[slot] for i in rows]
            cover = torch.zeros(len(rows), size, size)
            for shape in range(len(SHAPES)):
                sel = [j for j, o in enumerate(objs) if o.shape == shape]
                if not sel:
                    continue
                geo = torch.tensor([(objs[j].cx, objs[j].cy, objs[j].r) for j in sel]) * size
                dx = centres.view(1, 1, -1) - geo[:, 0].view(-1, 1, 1)  # (M, 1, W)
                dy = centres.view(1, -1, 1) - geo[:, 1].view(-1, 1, 1)  # (M, H, 1)
                r = geo[:, 2].view(-1, 1, 1)
                d = _sdf(shape, dx, dy, r)  # broadcasts to (M, H, W)
                cover[torch.tensor(sel)] = (0.5 - d).clamp_(0.0, 1.0)
            rgb = torch.tensor([o.rgb for o in objs], dtype=torch.float32)[:, :, None, None]
            idx = torch.tensor(rows)
            c = cover[:, None]  # (M, 1, H, W)
            img[idx] = img[idx] * (1 - c) + rgb * c
        out[start : start + len(part)] = img.round_().clamp_(0, 255).to(torch.uint8)
    return out


def object_masks(scenes: list[Scene], size: int = DEFAULT_SIZE) -> Tensor:
    """The exact object masks of scenes, ``(N, 1, size, size)`` float in {0, 1}: 1 where a pixel
    centre lies inside an object (signed distance ``d <= 0``, i.e. coverage ``>= 1/2`` in
    :func:`render`), 0 on the black background."""
    out = torch.zeros(len(scenes), 1, size, size)
    centres = torch.arange(size, dtype=torch.float32) + 0.5  # pixel centres, as render's
    for i, scene in enumerate(scenes):
        for o in scene.objects:
            geo = torch.tensor([o.cx, o.cy, o.r]) * size  # float32, as render's
            dx = centres.view(1, -1) - geo[0]  # (1, W)
            dy = centres.view(-1, 1) - geo[1]  # (H, 1)
            d = _sdf(o.shape, dx, dy, geo[2])  # (H, W)
            out[i, 0] = torch.maximum(out[i, 0], (d <= 0).float())
    return out


# --- the dataset --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShapesSpec:
    size: int = DEFAULT_SIZE
    n: int = DEFAULT_TRAIN
    max_objects: int = 2

    @property
    def name(self) -> str:
        opts = []
        if self.size != DEFAULT_SIZE:
            opts.append(f"size={self.size}")
        if self.n != DEFAULT_TRAIN:
            opts.append(f"n={self.n}")
        if self.max_objects != 2:
            opts.append("objects=1")
        return "shapes" + ("?" + "&".join(opts) if opts else "")


def parse_shapes_spec(spec: str) -> ShapesSpec:
    """``shapes[?size=N&n=N&objects=1]`` -> its options; anything else is a one-sentence error."""
    base, _, query = spec.partition("?")
    if base != "shapes":
        raise DataError(f"Unknown dataset {spec!r}; 'shapes' takes options after '?'.")
    vals = {"size": DEFAULT_SIZE, "n": DEFAULT_TRAIN, "objects": 2}
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        ok = key in vals and value.isdigit()
        ok = ok and (
            (key == "size" and int(value) >= MIN_SIZE)
            or (key == "n" and int(value) >= 1)
            or (key == "objects" and int(value) in (1, 2))
        )
        if not ok:
            raise DataError(
                f"Bad option {item!r} in dataset {spec!r}; valid options are size=N "
                f"(N >= {MIN_SIZE}), n=N (training images) and objects=1 or objects=2, "
                "e.g. 'shapes?size=64'."
            )
        vals[key] = int(value)
    return ShapesSpec(vals["size"], vals["n"], vals["objects"])


def shapes_info(spec: str = "shapes") -> DataInfo:
    """What ``shapes[?...]`` declares: RGB images, 256 levels, 30 colour-shape classes."""
    s = parse_shapes_spec(spec)
    return DataInfo(
        name=s.name,
        kind="images",
        shape=(3, s.size, s.size),
        levels=256,
        n_classes=N_CLASSES,
        value_range=(-1.0, 1.0),
        class_names=CLASS_NAMES,
    )


class ShapesDataset(Dataset):
    """Images ``x`` ``(N, 3, S, S)`` uint8 and labels ``y`` with their scenes, captions and
    questions; :meth:`get` adds token tensors for the multimodal models.

    Batch keys from :meth:`get` (besides ``x`` and ``y``): ``text`` ``(B, L)`` caption tokens
    (``[BOS] words [EOS]`` then ``[PAD] = 0``), ``question`` ``(B, Q, Lq)`` tokens, ``answer``
    ``(B, Q)`` indices into :data:`ANSWERS`, ``qtype`` ``(B, Q)`` indices into
    :data:`QUESTION_TYPES`, ``attrs`` ``(B, 2, 4)`` (shape, colour, size, position per object, -1
    for none), ``n_objects`` ``(B,)``, ``relation`` ``(B,)`` (-1 for one object), ``heldout``
    ``(B,)`` (0/1), and for image-text matching ``itm_text`` ``(B, 3, L)``, the hard negative
    captions of :data:`ITM_NEGATIVES` (the true caption where a kind does not apply), with
    ``itm_valid`` ``(B, 3)`` (False there). The negatives are drawn from the split's own seed, so
    they are the same on every machine, and from the split's own scenes.
    """

    def __init__(self, info: DataInfo, scenes: list[Scene], split: str, seed: int) -> None:
        from genzoo.data.captions import get_caption_tokenizer

        size = info.shape[-1]
        x = render(scenes, size)
        y = torch.tensor([s.label for s in scenes], dtype=torch.long)
        super().__init__(info, x, y)
        self.split = split
        self.scenes = scenes
        self.captions = [s.caption() for s in scenes]
        rng = np.random.default_rng(seed + 1)
        self.qa = [make_questions(s, rng) for s in scenes]
        tok = get_caption_tokenizer()
        self.text = tok.encode_batch(self.captions)  # (N, L)
        flat_q = [q for qs in self.qa for q, _, _ in qs]
        self.question = tok.encode_batch(flat_q).view(len(scenes), QUESTIONS_PER_IMAGE, -1)
        self.answer = torch.tensor([[ANSWERS.index(a) for _, a, _ in qs] for qs in self.qa])
        self.qtype = torch.tensor([[t for _, _, t in qs] for qs in self.qa])
        self.attrs = torch.tensor([s.attributes() for s in scenes], dtype=torch.long)
        self.n_objects = torch.tensor([len(s.objects) for s in scenes])
        self.relation = torch.tensor([s.relation for s in scenes])
        self.heldout = torch.tensor([int(s.heldout) for s in scenes])
        rng_neg = np.random.default_rng(seed + 2)
        negs = [itm_negatives(s, rng_neg, split) for s in scenes]
        pairs = zip(negs, self.captions, strict=True)
        flat_n = [n if n is not None else c for ns, c in pairs for n in ns]
        self.itm_text = tok.encode_batch(flat_n).view(len(scenes), len(ITM_NEGATIVES), -1)
        self.itm_valid = torch.tensor([[n is not None for n in ns] for ns in negs])

    EXTRA_KEYS = (
        "text",
        "question",
        "answer",
        "qtype",
        "attrs",
        "n_objects",
        "relation",
        "heldout",
        "itm_text",
        "itm_valid",
    )

    def extra(
        self, idx: Tensor, *, dequantize: bool = False, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Captions, questions, answers and attributes of the scenes ``idx`` (``EXTRA_KEYS``)."""
        cpu = idx.cpu()
        return {key: getattr(self, key)[cpu].to(idx.device) for key in self.EXTRA_KEYS}

    def single_object(self) -> Tensor:
        """Indices ``(M,)`` of the images with one object."""
        return torch.nonzero(self.n_objects == 1).flatten()


@functools.lru_cache(maxsize=4)
def _cached(name: str, split: str) -> ShapesDataset:
    s = parse_shapes_spec(name)
    n = s.n if split == "train" else N_TEST
    seed = SEEDS[split] + (0 if s.max_objects == 2 else 1)  # larger n: the same first images
    scenes = make_scenes(n, seed, split, s.max_objects)
    return ShapesDataset(shapes_info(name), scenes, split, seed)


def load_shapes(spec: str = "shapes", split: str = "train") -> ShapesDataset:
    """Split ``split`` of ``shapes[?...]``; generated once per process and spec (a shallow copy
    is returned, so a caller that moves ``x`` to a device leaves the cache alone)."""
    if split not in SEEDS:
        raise DataError(f"Unknown split {split!r} of dataset {spec!r}; choose 'test' or 'train'.")
    return copy.copy(_cached(parse_shapes_spec(spec).name, split))
