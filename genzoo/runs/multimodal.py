"""The multimodal commands as functions: zero-shot classification, retrieval, captioning, VQA.

``zeroshot(run)``, ``retrieve(run)``, ``caption(run, images)``, ``caption_eval(run)`` and
``vqa_eval(run)`` read a trained run (``genzoo.load``) and its dataset's test split; ``genzoo
zeroshot``, ``genzoo retrieve`` and ``genzoo caption`` print what they return.

On ``shapes``, zero-shot classification and caption attributes are measured on the single-object
test images (a class names one object), and retrieval counts a retrieved item as right when its
caption is the query's caption word for word (images with the same caption are indistinguishable
through it). On labelled image sets the captions come from the labels ("the digit seven"), and a
retrieved item is right when it has the query's class.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from genzoo.core.errors import ConfigError, DataError
from genzoo.core.options import count
from genzoo.core.protocol import GenerativeModel
from genzoo.core.runs import read_run_config
from genzoo.data import load_dataset
from genzoo.data.base import DataInfo, Dataset, levels_to_model
from genzoo.data.captions import label_captions
from genzoo.data.shapes import QUESTION_TYPES, SHAPES, ShapesDataset
from genzoo.metrics.multimodal import bleu, recall_at_k
from genzoo.models.multimodal.captioner import Captioner, attribute_match
from genzoo.models.multimodal.clip import CLIP
from genzoo.models.multimodal.vqa import VQA
from genzoo.runs.load import load

M = TypeVar("M", bound=GenerativeModel)


def _load(run: str | Path, kind: type[M], what: str) -> M:
    model = load(run)
    if not isinstance(model, kind):
        raise ConfigError(f"{what} needs a {kind.name!r} run; {str(run)!r} holds {model.name!r}.")
    return model


def _at_least_one(name: str, value: int | None, what: str) -> None:
    """One sentence for a count below 1 (``None``: not given)."""
    if value is not None:
        count(value, f"--{name}", what)


def _test(run: str | Path, split: str, data_root: str | None) -> Dataset:
    return load_dataset(read_run_config(run)["data"], split, root=data_root)


@torch.no_grad()
def _batched(fn: Any, data: Dataset, idx: Tensor, device: torch.device, bs: int = 500) -> Tensor:
    out = [fn(data.get(idx[i : i + bs])["x"].to(device)).cpu() for i in range(0, len(idx), bs)]
    return torch.cat(out)


@torch.no_grad()
def zeroshot(
    run: str | Path, *, n: int | None = None, split: str = "test", data_root: str | None = None
) -> dict[str, Any]:
    """Zero-shot accuracy of a ``clip`` run from class prompts alone (``shapes``: colour + shape
    of single-object images, also colour and shape alone and held-out vs seen pairs)."""
    _at_least_one("n", n, "test images; leave it out for all")
    model = _load(run, CLIP, "zeroshot")
    data = _test(run, split, data_root)
    if data.y is None:
        raise DataError(f"Zero-shot classification needs labels; {data.info.name!r} has none.")
    idx = data.single_object() if isinstance(data, ShapesDataset) else torch.arange(len(data))
    idx = idx[:n] if n is not None else idx
    w = model.class_embeddings()
    pred = _batched(lambda x: model.zero_shot_logits(x, w).argmax(1), data, idx, model.device)
    y = data.y[idx].cpu()
    res: dict[str, Any] = {"accuracy": float((pred == y).float().mean()), "n": len(idx)}
    res["n_classes"] = data.info.n_classes
    if isinstance(data, ShapesDataset):
        k = len(SHAPES)
        res["colour_accuracy"] = float((pred // k == y // k).float().mean())
        res["shape_accuracy"] = float((pred % k == y % k).float().mean())
        held = data.heldout[idx].bool()
        res["heldout_accuracy"] = float((pred == y)[held].float().mean()) if held.any() else None
        res["seen_accuracy"] = float((pred == y)[~held].float().mean())
        res["n_heldout"] = int(held.sum())
    return res


@torch.no_grad()
def retrieve(
    run: str | Path,
    *,
    n: int = 1000,
    ks: Sequence[int] = (1, 5, 10),
    split: str = "test",
    data_root: str | None = None,
) -> dict[str, Any]:
    """Recall@k of a ``clip`` run for image -> text and text -> image retrieval among the first
    ``n`` test pairs (each image with its own caption)."""
    _at_least_one("n", n, "test image-caption pairs searched")
    ks = list(ks)  # a tuple, list or array of ks
    if not ks or any(
        isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1 for k in ks
    ):
        raise ConfigError(f"Recall@k needs whole numbers k >= 1; got {ks}.")
    ks = [int(k) for k in ks]
    model = _load(run, CLIP, "retrieve")
    data = _test(run, split, data_root)
    idx = torch.arange(min(n, len(data)))
    img = _batched(model.encode_image, data, idx, model.device)  # (n, E)
    if isinstance(data, ShapesDataset):
        caps = [data.captions[int(i)] for i in idx]
        tokens = data.text[idx]
        relevant = torch.tensor([[a == b for b in caps] for a in caps])  # (n, n)
    else:
        if data.y is None:
            raise DataError(f"Retrieval needs captions or labels; {data.info.name!r} has neither.")
        y = data.y[idx].cpu()
        tokens = label_captions(data.info.class_names, y, torch.Generator().manual_seed(0))
        relevant = y[:, None] == y[None, :]
    txt = torch.cat(
        [
            model.encode_text(tokens[i : i + 500].to(model.device)).cpu()
            for i in range(0, len(idx), 500)
        ]
    )
    sim = img @ txt.t()  # (n images, n texts)
    return {
        "image_to_text": recall_at_k(sim, relevant, ks),
        "text_to_image": recall_at_k(sim.t(), relevant.t(), ks),
        "n": len(idx),
    }


@torch.no_grad()
def query_images(
    run: str | Path, text: str, *, k: int = 8, split: str = "test", data_root: str | None = None
) -> tuple[Tensor, Tensor, DataInfo]:
    """The ``k`` test images most similar to ``text``: ``(images (k, C, H, W), scores (k,),
    info)``."""
    _at_least_one("k", k, "test images shown")
    if not text.strip():
        raise ConfigError("--query is empty; give a text to search the test images for.")
    model = _load(run, CLIP, "retrieve")
    data = _test(run, split, data_root)
    idx = torch.arange(len(data))
    img = _batched(model.encode_image, data, idx, model.device)
    q = model.encode_text(model.encode_texts([text])).cpu()  # (1, E)
    scores, top = (img @ q.t()).squeeze(1).topk(min(k, len(data)))
    return data.get(top)["x"], scores, data.info


def read_image(path: str | Path, info: DataInfo) -> Tensor:
    """An image file -> ``(1, C, H, W)`` in model space, centre-cropped and resized to the
    dataset's size and quantized to its levels."""
    c, h, w = info.shape
    try:
        with Image.open(path) as im:
            im = ImageOps.fit(
                im.convert("RGB" if c == 3 else "L"), (w, h), Image.Resampling.BICUBIC
            )
            arr = np.asarray(im, dtype=np.int64)
    except (OSError, UnidentifiedImageError) as e:
        raise DataError(f"Cannot read image {str(path)!r}: {e}.") from None
    levels = int(info.levels or 256)
    k = torch.from_numpy(arr * levels // 256)  # 0..255 -> 0..L-1
    k = k.permute(2, 0, 1) if c == 3 else k[None]  # (C, H, W)
    return levels_to_model(k[None], levels)


@torch.no_grad()
def caption(
    run: str | Path,
    images: Sequence[str | Path] | Tensor,
    method: str | None = None,
    **options: Any,
) -> list[str]:
    """Captions of image files (or a ``(B, C, H, W)`` tensor in model space) by a ``captioner``
    run; ``method`` is ``greedy``, ``beam`` or ``top_k`` (options: ``beam_size``, ``top_k``,
    ``temperature``, ``generator``)."""
    model = _load(run, Captioner, "caption")
    if isinstance(images, Tensor):
        x = images
    elif not images:
        raise ConfigError("caption needs at least one image (a file, or a tensor of images).")
    else:
        x = torch.cat([read_image(p, model.info) for p in images])
    return model.caption(x.to(model.device), method, **options)


@torch.no_grad()
def caption_eval(
    run: str | Path,
    *,
    method: str = "greedy",
    n: int | None = None,
    split: str = "test",
    data_root: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Caption quality of a ``captioner`` run: attribute exact match and BLEU (all templates as
    references) on single-object test images, and the same on two-object images."""
    _at_least_one("n", n, "test images per group; leave it out for all")
    model = _load(run, Captioner, "caption evaluation")
    data = _test(run, split, data_root)
    res: dict[str, Any] = {"method": method}
    groups = (
        {"single": data.single_object(), "pair": torch.nonzero(data.n_objects == 2).flatten()}
        if isinstance(data, ShapesDataset)
        else {"all": torch.arange(len(data))}
    )
    for name, idx in groups.items():
        idx = idx[:n] if n is not None else idx
        if len(idx) == 0:
            continue
        texts: list[str] = []
        match = []
        for i in range(0, len(idx), 250):
            batch = {k: v.to(model.device) for k, v in data.get(idx[i : i + 250]).items()}
            t = model.caption(batch["x"], method, **options)
            texts += t
            match.append(attribute_match(t, batch, model.info).cpu())
        res[f"{name}_attr_match"] = float(torch.cat(match).mean())
        if isinstance(data, ShapesDataset):
            refs = [data.scenes[int(i)].all_captions() for i in idx]
            res[f"{name}_bleu"] = bleu(texts, refs)
        res[f"{name}_n"] = len(idx)
        res[f"{name}_examples"] = texts[:5]
    return res


@torch.no_grad()
def vqa_eval(
    run: str | Path, *, n: int | None = None, split: str = "test", data_root: str | None = None
) -> dict[str, Any]:
    """Answer accuracy of a ``vqa`` run: overall, per question type and per number of objects."""
    model = _load(run, VQA, "vqa evaluation")
    data = _test(run, split, data_root)
    if not isinstance(data, ShapesDataset):  # a VQA run is trained on shapes' questions
        raise DataError(f"VQA evaluation needs the shapes questions; {data.info.name!r} has none.")
    idx = torch.arange(len(data) if n is None else min(n, len(data)))
    right = []
    for i in range(0, len(idx), 250):
        batch = data.get(idx[i : i + 250])
        logits = model(batch["x"].to(model.device), batch["question"].to(model.device)).cpu()
        right.append(logits.argmax(-1) == batch["answer"])  # (b, Q)
    ok = torch.cat(right).float()  # (n, Q)
    qtype = data.qtype[idx]
    nobj = data.n_objects[idx][:, None].expand_as(ok)
    res: dict[str, Any] = {"fusion": model.config.fusion, "accuracy": float(ok.mean())}
    for t, name in enumerate(QUESTION_TYPES):
        sel = qtype == t
        if sel.any():
            res[f"acc_{name}"] = float(ok[sel].mean())
    for k in (1, 2):
        sel = nobj == k
        if sel.any():
            res[f"acc_{k}_objects"] = float(ok[sel].mean())
    res["n_questions"] = int(ok.numel())
    return res
