"""Text-to-image metrics on ``shapes``: does a generated image show what its prompt says?

- :class:`AttributeClassifier`: a small CNN trained by genzoo on freshly drawn ``shapes`` scenes
  (every colour-shape pair, one or two objects) to read an image's attributes: the number of
  objects, the colour / shape / size / position of a single object, and which of the 30
  colour-shape pairs are present (multi-label). It keeps spatial layout (no global pooling before
  the head), so it can judge positions. The present pairs are read as the ``count`` highest-scoring
  ones. Training is deterministic (fixed seed, one thread) and the
  weights are cached as safetensors under ``$GENZOO_CACHE/classifiers``, keyed by a content hash.
- :func:`prompt_attribute_accuracy`: each prompt is parsed (:func:`~genzoo.metrics.multimodal.
  parse_caption`) and compared with the classifier's reading of its image. Single-object prompts:
  count, colour, shape, and size / position when the prompt states them; ``all`` needs every one
  right. Two-object prompts: count, ``words`` (both named colours and both named shapes are
  present, binding not checked), ``objects`` (both named colour-shape pairs are present) and
  ``all`` (count and objects); the relation is not judged.
- :func:`clip_score`: ``100 * mean(max(cos(image, text), 0))`` with genzoo's CLIP embeddings
  (CLIPScore of Hessel et al., arXiv:2104.08718, Eq. 1, without its 2.5 rescaling).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.io import load_tensors, save_tensors
from genzoo.data.base import levels_to_model
from genzoo.data.captions import parse_caption
from genzoo.data.shapes import ShapesDataset, load_shapes, make_scenes, shapes_info
from genzoo.metrics.classifier import cache_dir

ATTR_VERSION = 2
HEADS = {"count": 2, "colour": 6, "shape": 5, "size": 2, "position": 9, "pairs": 30,
         "colours": 6, "shapes": 5}  # fmt: skip
MULTI = ("pairs", "colours", "shapes")  # multi-label heads: what is present


class AttributeNet(nn.Module):
    """Conv stack (two stride-2 stages) -> flatten -> ``features`` (128) -> one linear head per
    attribute (logits concatenated in the order of :data:`HEADS`)."""

    def __init__(self, size: int, width: int = 32) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),
        )  # fmt: skip
        s = (size + 3) // 4
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(2 * w * s * s, 128), nn.ReLU())
        self.head = nn.Linear(128, sum(HEADS.values()))

    def features(self, x: Tensor) -> Tensor:
        return self.fc(self.body(x))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out = self.head(self.features(x))
        return dict(zip(HEADS, out.split(list(HEADS.values()), dim=1), strict=True))


def _targets(ds: object) -> dict[str, Tensor]:
    attrs = ds.attrs  # type: ignore[attr-defined]  # (N, 2, 4): shape, colour, size, position
    n_obj = ds.n_objects  # type: ignore[attr-defined]
    pairs = torch.zeros(len(n_obj), 30)
    colours, shapes = torch.zeros(len(n_obj), 6), torch.zeros(len(n_obj), 5)
    for slot in range(2):
        ok = attrs[:, slot, 0] >= 0
        idx = (attrs[:, slot, 1] * 5 + attrs[:, slot, 0]).clamp_min(0)
        pairs[ok, idx[ok]] = 1.0
        colours[ok, attrs[ok, slot, 1]] = 1.0
        shapes[ok, attrs[ok, slot, 0]] = 1.0
    return {
        "count": n_obj - 1,
        "colour": attrs[:, 0, 1],
        "shape": attrs[:, 0, 0],
        "size": attrs[:, 0, 2],
        "position": attrs[:, 0, 3],
        "pairs": pairs,
        "colours": colours,
        "shapes": shapes,
        "single": n_obj == 1,
    }


def _model_x(ds: object) -> Tensor:
    return levels_to_model(ds.x, 256)  # type: ignore[attr-defined]


def _loss(out: dict[str, Tensor], t: dict[str, Tensor]) -> Tensor:
    single = t["single"]
    loss = F.cross_entropy(out["count"], t["count"])
    for k in MULTI:
        loss = loss + F.binary_cross_entropy_with_logits(out[k], t[k])
    for k in ("colour", "shape", "size", "position"):
        if single.any():
            loss = loss + F.cross_entropy(out[k][single], t[k][single])
    return loss


@dataclass
class AttributeClassifier:
    """A trained :class:`AttributeNet` and its accuracy on the ``shapes`` test split."""

    net: AttributeNet
    test_accuracy: dict[str, float]

    @torch.no_grad()
    def read(self, x: Tensor, batch_size: int = 500) -> dict[str, Tensor]:
        """Attributes of images ``(B, 3, S, S)`` in model space: indices per head, and ``pairs``
        as a (B, 30) bool presence; ``features`` (B, 128) for Fréchet distances."""
        self.net.eval()
        outs: list[dict[str, Tensor]] = []
        for i in range(0, x.shape[0], batch_size):
            xb = x[i : i + batch_size].float()
            o = self.net(xb)
            r = {k: v.argmax(1) for k, v in o.items() if k not in MULTI}
            r["colours"], r["shapes"] = o["colours"] > 0, o["shapes"] > 0
            k = r["count"] + 1  # the (count + 1) highest-scoring colour-shape pairs are present
            ranks = o["pairs"].argsort(1, descending=True).argsort(1)  # (B, 30)
            r["pairs"] = ranks < k[:, None]
            r["features"] = self.net.features(xb)
            outs.append(r)
        return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}


def _accuracy(clf: AttributeClassifier, ds: object) -> dict[str, float]:
    r = clf.read(_model_x(ds))
    t = _targets(ds)
    s = t["single"]
    acc = {"count": float((r["count"] == t["count"]).float().mean())}
    for k in ("colour", "shape", "size", "position"):
        acc[k] = float((r[k][s] == t[k][s]).float().mean())
    for k in MULTI:
        acc[k] = float((r[k] == t[k].bool()).all(1).float().mean())
    return acc


def train_attribute_classifier(
    size: int = 16, *, n: int = 20_000, steps: int = 4000, seed: int = 0, cache: bool = True
) -> AttributeClassifier:
    """Train (or load from the cache) the attribute classifier for ``shapes?size=<size>``."""
    key = json.dumps({"v": ATTR_VERSION, "size": size, "n": n, "steps": steps, "seed": seed})
    h = hashlib.sha256(key.encode()).hexdigest()[:16]
    base = cache_dir() / f"shapes-attributes-{size}-{h}"
    net = AttributeNet(size)
    test = load_shapes(f"shapes?size={size}", "test")
    weights, meta = base.with_suffix(".safetensors"), base.with_suffix(".json")
    if cache and weights.exists() and meta.exists():
        net.load_state_dict(load_tensors(weights))
        clf = AttributeClassifier(net.eval(), {})
        clf.test_accuracy = _accuracy(clf, test)
        return clf
    info = shapes_info(f"shapes?size={size}")
    scenes = make_scenes(n, 30_029 + seed, "test")  # every colour-shape pair, one or two objects
    train = ShapesDataset(info, scenes, "test", 30_029 + seed)
    x, t = _model_x(train), _targets(train)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        net = AttributeNet(size)
        opt = torch.optim.Adam(net.parameters(), lr=2e-3)
        rng = np.random.default_rng(seed)
        for _ in range(steps):
            idx = torch.from_numpy(rng.integers(0, n, size=64))
            xb = x[idx] + (torch.rand(x[idx].shape) - 0.5) * (2 / 255)  # dequantize
            loss = _loss(net(xb), {k: v[idx] for k, v in t.items()})
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    clf = AttributeClassifier(net.eval(), {})
    clf.test_accuracy = _accuracy(clf, test)
    if cache:
        base.parent.mkdir(parents=True, exist_ok=True)
        save_tensors(weights, net.state_dict())
        meta.write_text(json.dumps({"config": json.loads(key), "test_accuracy": clf.test_accuracy}))
    return clf


def prompt_attribute_accuracy(
    readings: dict[str, Tensor], prompts: Sequence[str]
) -> dict[str, float]:
    """Fractions of images whose attributes (read by :meth:`AttributeClassifier.read`) match
    their prompts: per attribute and ``all``, for single-object (``single_*``) and two-object
    (``pair_*``) prompts; NaN where there is no prompt of a kind."""
    hits: dict[str, list[float]] = {}

    def add(k: str, ok: bool) -> None:
        hits.setdefault(k, []).append(float(ok))

    for i, text in enumerate(prompts):
        p = parse_caption(text)
        if len(p.objects) == 1:
            o = p.objects[0]
            checks = {
                "count": int(readings["count"][i]) == 0,
                "colour": o.colour is None or int(readings["colour"][i]) == o.colour,
                "shape": int(readings["shape"][i]) == o.shape,
            }
            if o.size is not None:
                checks["size"] = int(readings["size"][i]) == o.size
            if p.position is not None:
                checks["position"] = int(readings["position"][i]) == p.position
            for k, v in checks.items():
                add(f"single_{k}", v)
            add("single_all", all(checks.values()))
        elif len(p.objects) == 2:
            count_ok = int(readings["count"][i]) == 1
            pairs_ok = all(
                o.colour is not None and bool(readings["pairs"][i, o.colour * 5 + o.shape])
                for o in p.objects
            )
            words_ok = all(
                (o.colour is None or bool(readings["colours"][i, o.colour]))
                and bool(readings["shapes"][i, o.shape])
                for o in p.objects
            )
            add("pair_count", count_ok)
            add("pair_words", words_ok)
            add("pair_objects", pairs_ok)
            add("pair_all", count_ok and pairs_ok)
    return {k: float(np.mean(v)) for k, v in sorted(hits.items())}


@torch.no_grad()
def clip_score(clip: object, images: Tensor, tokens: Tensor) -> float:
    """``100 * mean(max(cos(E_img(x_i), E_txt(t_i)), 0))`` with a genzoo CLIP (unit embeddings)."""
    e_img = clip.encode_image(images.to(clip.device))  # type: ignore[attr-defined]
    e_txt = clip.encode_text(tokens.to(clip.device))  # type: ignore[attr-defined]
    return float(100 * (e_img * e_txt).sum(1).clamp_min(0).mean())


__all__ = [
    "AttributeClassifier",
    "AttributeNet",
    "clip_score",
    "prompt_attribute_accuracy",
    "train_attribute_classifier",
]
