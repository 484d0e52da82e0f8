"""shapes: seeded procedural images whose captions, attributes and answers agree with the pixels."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

pytest.importorskip("tokenizers")

from genzoo.core.errors import DataError
from genzoo.data import dataset_info, list_datasets, load_dataset
from genzoo.data import shapes as sh
from genzoo.metrics.multimodal import caption_matches

SMALL = "shapes?n=400"


@pytest.fixture(scope="module")
def train() -> sh.ShapesDataset:
    return load_dataset(SMALL, "train")  # type: ignore[return-value]


@pytest.fixture(scope="module")
def test_split() -> sh.ShapesDataset:
    return load_dataset(SMALL, "test")  # type: ignore[return-value]


def test_info_and_image_dataset_api(train: sh.ShapesDataset) -> None:
    assert "shapes" in list_datasets()
    info = dataset_info("shapes")
    assert info.kind == "images" and info.shape == (3, 32, 32) and info.levels == 256
    assert info.n_classes == 30 and info.class_names[0] == "red circle"
    assert dataset_info("shapes?size=48").shape == (3, 48, 48)
    assert train.info.name == SMALL and len(train) == 400
    batch = train.get(torch.arange(8))
    assert batch["x"].shape == (8, 3, 32, 32) and batch["x"].dtype == torch.float32
    assert -1 < float(batch["x"].min()) and float(batch["x"].max()) < 1
    assert batch["y"].shape == (8,) and int(batch["y"].max()) < 30
    assert batch["text"].shape == (8, 24) and batch["question"].shape == (8, 4, 24)
    assert batch["attrs"].shape == (8, 2, 4) and batch["answer"].shape == (8, 4)
    # the label is the class of the first object
    a = train.attrs[:, 0]
    assert torch.equal(train.y, a[:, 1] * len(sh.SHAPES) + a[:, 0])


def test_seeded_and_prefix_stable(train: sh.ShapesDataset) -> None:
    again = sh.make_scenes(400, sh.SEEDS["train"], "train")
    assert [s.caption() for s in again] == train.captions
    longer = sh.make_scenes(500, sh.SEEDS["train"], "train")
    assert [s.caption() for s in longer[:400]] == train.captions  # larger n extends the set
    assert torch.equal(sh.render(again[:50]), train.x[:50])


@pytest.mark.parametrize("spec", ["shapes?size=8", "shapes?colour=3", "shapes?objects=3"])
def test_bad_options_name_the_value(spec: str) -> None:
    with pytest.raises(DataError, match=re.escape(repr(spec))):
        dataset_info(spec)


def test_heldout_pairs_never_in_train(
    train: sh.ShapesDataset, test_split: sh.ShapesDataset
) -> None:
    held = {(sh.COLOUR_NAMES.index(c), sh.SHAPES.index(s)) for c, s in sh.HELDOUT_PAIRS}
    big = sh.make_scenes(3000, sh.SEEDS["train"], "train")
    seen = {(o.colour, o.shape) for s in big for o in s.objects}
    assert not (seen & held) and len(seen) == 25
    test_pairs = {(o.colour, o.shape) for s in test_split.scenes for o in s.objects}
    assert held <= test_pairs
    assert int(train.heldout.sum()) == 0 and 0 < int(test_split.heldout.sum())


def test_pixels_agree_with_attributes() -> None:
    scenes = sh.make_scenes(200, 5, "test", max_objects=1)
    size = 64
    x = sh.render(scenes, size).float()
    for s, img in zip(scenes, x, strict=True):
        o = s.objects[0]
        cx, cy = int(o.cx * size), int(o.cy * size)
        assert torch.allclose(img[:, cy, cx], torch.tensor(o.rgb, dtype=torch.float32))
        cover = img.max(0).values / max(o.rgb)  # coverage in [0, 1] (the background is black)
        area = float(cover.sum())
        r = o.r * size
        expect = {
            "circle": math.pi * r * r,
            "square": (2 * 0.88 * r) ** 2,
            "triangle": 3 * math.sqrt(3) / 4 * (1.2 * r) ** 2,
            "diamond": 2 * (1.2 * r) ** 2,
            "cross": 2 * (2 * 1.1 * r) * (2 * 0.36 * r) - (2 * 0.36 * r) ** 2,
        }[sh.SHAPES[o.shape]]
        assert abs(area - expect) < 0.06 * expect + 2  # anti-aliased area = geometric area
        assert sh.POSITIONS[o.position] == sh.POSITIONS[sh._position(o.cx, o.cy)]


def test_pairs_relation_and_no_overlap() -> None:
    scenes = [s for s in sh.make_scenes(400, 7, "test") if len(s.objects) == 2]
    for s in scenes:
        a, b = s.objects
        dx, dy = b.cx - a.cx, b.cy - a.cy
        rel = sh.RELATIONS[s.relation]
        main, other = (dx, dy) if rel in ("left of", "right of") else (dy, dx)
        assert abs(main) >= 1.5 * abs(other)
        assert (main > 0) == (rel in ("left of", "above"))  # image y grows downwards
        assert math.hypot(dx, dy) >= sh._EXTENT * (a.r + b.r)
    x = sh.render(scenes, 32)
    one = sh.render([sh.Scene(s.objects[:1]) for s in scenes], 32)
    two = sh.render([sh.Scene(s.objects[1:]) for s in scenes], 32)
    assert torch.equal(x.int(), one.int() + two.int())  # disjoint supports: images add up


def test_every_caption_describes_its_scene(test_split: sh.ShapesDataset) -> None:
    for s, attrs in zip(test_split.scenes, test_split.attrs, strict=True):
        for cap in s.all_captions():
            assert caption_matches(cap, attrs, s.relation), cap
        wrong = attrs.clone()
        wrong[0, 1] = (wrong[0, 1] + 1) % len(sh.COLOURS)  # another colour for object 1
        assert not caption_matches(s.caption(0), wrong, s.relation)
    assert any(c.startswith("an orange") for c in test_split.captions)
    assert not any(re.search(r"\ba [aeiou]", c) for c in test_split.captions)


def _answer(q: str, s: sh.Scene) -> str:
    """An independent reading of a question against the scene."""
    objs = [(sh.COLOUR_NAMES[o.colour], sh.SHAPES[o.shape], sh.SIZES[o.size]) for o in s.objects]
    if m := re.fullmatch(r"what colour is the (\w+)\?", q):
        return next(c for c, sh_, _ in objs if sh_ == m[1])
    if m := re.fullmatch(r"what size is the (\w+)\?", q):
        return next(z for _, sh_, z in objs if sh_ == m[1])
    if m := re.fullmatch(r"what shape is the (\w+) object\?", q):
        return next(sh_ for c, sh_, _ in objs if c == m[1])
    if q == "how many objects are there?":
        return sh.COUNT_WORDS[len(objs)]
    if m := re.fullmatch(r"how many (\w+) are there\?", q):
        return sh.COUNT_WORDS[sum(sh.PLURALS[sh_] == m[1] for _, sh_, _ in objs)]
    if m := re.fullmatch(r"is there an? (\w+) (\w+)\?", q):
        return "yes" if any((c, sh_) == (m[1], m[2]) for c, sh_, _ in objs) else "no"
    m = re.fullmatch(r"is the (\w+) (\w+) (to the left of|to the right of|above|below) "
                     r"the (\w+) (\w+)\?", q)  # fmt: skip
    assert m is not None, q
    first = [i for i, (c, sh_, _) in enumerate(objs) if (c, sh_) == (m[1], m[2])]
    assert len(first) == 1
    a, b = s.objects[first[0]], s.objects[1 - first[0]]
    dx, dy = b.cx - a.cx, b.cy - a.cy
    truth = ("to the left of" if dx > 0 else "to the right of") if abs(dx) > abs(dy) else (
        "above" if dy > 0 else "below")  # fmt: skip
    return "yes" if m[3] == truth else "no"


def test_answers_are_right(test_split: sh.ShapesDataset) -> None:
    types = set()
    for s, qa in zip(test_split.scenes, test_split.qa, strict=True):
        assert len(qa) == sh.QUESTIONS_PER_IMAGE
        for q, a, t in qa:
            assert a in sh.ANSWERS and _answer(q, s) == a, (q, a)
            types.add(t)
    assert types == set(range(len(sh.QUESTION_TYPES)))
    yes = np.mean([a == "yes" for qa in test_split.qa for _, a, t in qa if t == 5])
    assert 0.3 < yes < 0.8  # "is there ..." is not answerable by a constant


def test_tokenizer_round_trip_and_determinism(test_split: sh.ShapesDataset) -> None:
    from genzoo.data.captions import CaptionTokenizer, caption_corpus, get_caption_tokenizer

    tok = get_caption_tokenizer()
    assert (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 1, 2)
    for cap, row in zip(test_split.captions[:200], test_split.text[:200], strict=True):
        assert tok.decode(row) == cap
        assert int(row[0]) == tok.bos_id and int(row[(row != 0).sum() - 1]) == tok.eos_id
    qs = [q for qa in test_split.qa[:50] for q, _, _ in qa]
    assert tok.decode_batch(tok.encode_batch(qs)) == qs
    assert tok.unk_id not in test_split.text.unique().tolist()
    assert CaptionTokenizer.train(caption_corpus()).fingerprint() == tok.fingerprint()


def test_digit_captions() -> None:
    from genzoo.data.captions import get_caption_tokenizer, label_captions

    texts = get_caption_tokenizer().decode_batch(
        label_captions([str(i) for i in range(10)], torch.tensor([7, 8, 0] * 20))
    )
    assert set(texts[0::3]) <= {"the digit seven", "a handwritten seven", "a seven",
                                "the number seven"}  # fmt: skip
    assert set(texts[1::3]) <= {"the digit eight", "a handwritten eight", "an eight",
                                "the number eight"}  # fmt: skip
    assert len(set(texts[0::3])) > 1  # templates vary
