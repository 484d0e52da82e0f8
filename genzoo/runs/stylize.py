"""``genzoo stylize CONTENT STYLE --out out.png``: neural style transfer from the command line.

CONTENT and STYLE are each one of

- an image file (PNG, JPEG, ...; grey or colour, read as it is);
- ``DATASET@INDEX``: example INDEX of a dataset's test split, e.g. ``mnist5k@3``, ``digits@0``;
- ``texture:KIND[@SEED]``: a procedural texture (``stripes``, ``checks``, ``noise``, ``dots``;
  :mod:`genzoo.data.textures`) of the content's size and channel count.

The result has the content's size and channels: a style of another size is resized to it
(bilinear, antialiased), a grey style becomes three equal channels for colour content and a colour
style becomes grey (the channel mean) for grey content; each conversion is reported.

Methods: ``gatys`` (the default; :func:`genzoo.models.style.gatys`, ``steps`` Adam steps on the
pixels) over a feature network: genzoo's own digits classifier (``features="classifier:digits"``,
trained and cached offline by :mod:`genzoo.metrics.classifier`; ``classifier:mnist5k`` and other
labelled image sets work too), or VGG19 from a local weights file (``weights=PATH``: safetensors,
or a ``.pt``/``.pth`` state dict read with ``torch.load(weights_only=True)``; pickle files are
refused and never unpickled). ``adain`` needs a trained ``adain`` run (``run=RUN``): its encoder
and decoder; content and style are then resized to the run's image size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from genzoo.core.errors import ConfigError, DataError, GenzooError, choices
from genzoo.core.options import option
from genzoo.data import load_dataset
from genzoo.data.base import DataInfo
from genzoo.data.textures import KINDS, make_texture
from genzoo.models.style import AdaIN, gatys
from genzoo.nn.style import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SMALL_CNN_TAPS,
    VGG19_TAPS,
    FeatureNet,
    content_loss,
    gram_matrix,
    gram_style_loss,
    vgg19_features,
)
from genzoo.viz import png_out

METHODS = ("gatys", "adain")
SAFE_SUFFIXES = (".safetensors", ".pt", ".pth")


# --------------------------------------------------------------------------------------------------
# weights: safetensors, or weights-only torch checkpoints; never a pickle


def load_weights(path: str | Path) -> dict[str, Tensor]:
    """A state dict from ``path``: ``.safetensors``, or ``.pt``/``.pth`` through
    ``torch.load(weights_only=True)`` (which refuses any object but tensors and containers);
    any other file, a pickle above all, is refused without being opened."""
    p = Path(path)
    if p.suffix.lower() not in SAFE_SUFFIXES:
        raise GenzooError(
            f"Weights file {str(path)!r} is not a safetensors or .pt/.pth file; genzoo never "
            "unpickles a file (a pickle can run code), so convert it to safetensors first."
        )
    if not p.is_file():
        raise DataError(f"Weights file {str(path)!r} does not exist.")
    try:
        if p.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(p))
        else:
            state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:
        raise GenzooError(
            f"Cannot read {str(path)!r} as plain weights ({type(e).__name__}); only tensors are "
            "loaded (torch.load with weights_only=True), never pickled objects."
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise GenzooError(f"Weights file {str(path)!r} does not hold a state dict of tensors.")
    return state


def vgg19_from_weights(path: str | Path) -> FeatureNet:
    """VGG19's features from a local file of torchvision's ``vgg19`` weights (``features.N.*``
    keys, or the bare ``N.*`` keys of the features alone)."""
    state = load_weights(path)
    feats = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    feats = feats or state
    body = vgg19_features()
    try:
        body.load_state_dict(feats, strict=True)
    except RuntimeError:
        raise GenzooError(
            f"Weights file {str(path)!r} does not hold VGG19 weights (torchvision's vgg19 "
            "'features.N.weight/bias' keys with matching shapes)."
        ) from None
    return FeatureNet(body, VGG19_TAPS, 3, IMAGENET_MEAN, IMAGENET_STD, name="vgg19")


def feature_net(
    features: str = "classifier:digits", weights: str | Path | None = None
) -> FeatureNet:
    """The feature network: VGG19 from ``weights``, else ``classifier:<dataset>``."""
    if weights is not None:
        return vgg19_from_weights(weights)
    kind, _, data = features.partition(":")
    if kind != "classifier" or not data:
        raise ConfigError(
            f"features = {features!r} is not valid; choose 'classifier:<dataset>' (e.g. "
            "'classifier:digits') or give a VGG19 weights file."
        )
    from genzoo.metrics import get_classifier

    clf = get_classifier(data)
    c = int(clf.info.shape[0])
    return FeatureNet(clf.net.body, SMALL_CNN_TAPS, c, name=clf.name)


# --------------------------------------------------------------------------------------------------
# inputs


def _read_file(path: Path) -> Tensor:
    try:
        with Image.open(path) as im:
            im.load()
            img = im.convert("L") if im.mode in ("L", "1", "I", "I;16", "F") else im.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"Cannot read {str(path)!r} as an image ({e}).") from None
    a = np.asarray(img, dtype=np.float32)
    a = a[:, :, None] if a.ndim == 2 else a  # (H, W, C)
    return torch.from_numpy(a / 127.5 - 1.0).permute(2, 0, 1)[None]  # (1, C, H, W) in [-1, 1]


def read_input(ref: str, like: Tensor | None = None) -> Tensor:
    """One image ``(1, C, H, W)`` in [-1, 1] from a file, ``DATASET@INDEX`` or
    ``texture:KIND[@SEED]`` (a texture takes the size and channels of ``like``, else 28x28 grey)."""
    if ref.startswith("texture:"):
        kind, _, seed = ref[len("texture:") :].partition("@")
        if kind not in KINDS or (seed and not seed.isdigit()):
            raise DataError(
                f"Unknown texture {ref!r}; choose {choices([f'texture:{k}' for k in KINDS])}, "
                "optionally with @SEED."
            )
        c, s = (like.shape[1], like.shape[2]) if like is not None else (1, 28)
        rng = np.random.default_rng(int(seed or 0))
        tex = make_texture(kind, int(s), int(c), rng)  # (C, S, S) in [0, 1]
        x = torch.from_numpy(tex).float()[None] * 2 - 1
        if like is not None and like.shape[2:] != x.shape[2:]:
            x = F.interpolate(x, size=like.shape[2:], mode="bilinear", antialias=True)
        return x
    path = Path(ref)
    if path.is_file():
        return _read_file(path)
    if "@" in ref:
        name, _, idx = ref.rpartition("@")
        ds = load_dataset(name, "test")
        if not idx.isdigit() or int(idx) >= len(ds):
            raise DataError(f"Index {idx!r} of {ref!r} must be in 0..{len(ds) - 1}.")
        if ds.info.kind != "images":
            raise DataError(f"{ref!r} is not an image: dataset {name!r} holds {ds.info.kind}.")
        return ds.get(torch.tensor([int(idx)]))["x"].float()
    raise DataError(
        f"{ref!r} is neither an image file nor a reference like 'mnist5k@3' or 'texture:stripes'."
    )


def match(x: Tensor, like_shape: tuple[int, ...], what: str) -> tuple[Tensor, list[str]]:
    """``x`` ``(1, C, H, W)`` converted to ``like_shape`` ``(C', H', W')``, with notes."""
    notes = []
    c, h, w = like_shape
    c0 = x.shape[1]
    if c0 != c:
        if c0 == 1 and c == 3:
            x = x.expand(-1, 3, -1, -1)
        elif c0 == 3 and c == 1:
            x = x.mean(dim=1, keepdim=True)
        else:
            raise DataError(f"The {what} has {c0} channels; only 1 or 3 are read.")
        notes.append(f"{what} converted from {c0} to {c} channels")
    if tuple(x.shape[2:]) != (h, w):
        notes.append(f"{what} resized from {x.shape[3]}x{x.shape[2]} to {w}x{h}")
        x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True).clamp(-1, 1)
    return x, notes


# --------------------------------------------------------------------------------------------------
# the command


def stylize(
    content: str,
    style: str,
    out: str | Path = "stylized.png",
    *,
    method: str = "gatys",
    steps: int = 300,
    weights: str | Path | None = None,
    features: str = "classifier:digits",
    style_weight: float = 1e3,
    run: str | Path | None = None,
    alpha: float = 1.0,
) -> dict[str, Any]:
    """Stylise CONTENT with STYLE, write ``out`` (PNG) and return the numbers: ``style_before``,
    ``style_after`` (the Gram loss in ``features``), ``style_reduction``, ``content_error`` and
    the conversion ``notes``."""
    if method not in METHODS:
        raise ConfigError(f"Unknown method {method!r}; choose {choices(METHODS)}.")
    steps = option({"steps": steps}, "steps", 300, ge=0)  # 0: the content image, unchanged
    style_weight = option({"style_weight": style_weight}, "style_weight", 1e3, ge=0)
    alpha = option({"alpha": alpha}, "alpha", 1.0, ge=0, le=1)
    if method == "gatys" and alpha != 1.0:
        raise ConfigError(
            f"alpha = {alpha!r} is AdaIN's style strength; method 'gatys' trades content for "
            "style with style_weight."
        )
    out = png_out(out)  # before any optimisation or training run is read
    net = feature_net(features, weights)
    c_img = read_input(content)
    if method == "adain":
        if run is None:
            raise ConfigError("Method 'adain' needs a trained 'adain' run: give --run RUN.")
        if weights is not None:
            raise ConfigError(
                "Method 'adain' uses its run's own encoder; --weights is for method 'gatys'."
            )
        from genzoo.runs.load import load

        model = load(run)
        if not isinstance(model, AdaIN):
            raise ConfigError(f"Run {str(run)!r} is a {model.name!r} run, not an 'adain' run.")
        info: DataInfo = model.info
        c_img, notes = match(c_img, tuple(info.shape), "content")
    else:
        notes = []
    s_img, s_notes = match(read_input(style, like=c_img), tuple(c_img.shape[1:]), "style")
    notes += s_notes
    with torch.no_grad():
        targets = [gram_matrix(f) for f in net(s_img)]
        p = net(c_img)[-1]
        before = float(gram_style_loss(net(c_img), targets)[0])
    if method == "gatys":
        res = gatys(c_img, s_img, net, steps=steps, style_weight=style_weight)
        image = res.image
    else:
        image = model.stylize(c_img.to(model.device), s_img.to(model.device), alpha=alpha).cpu()
    with torch.no_grad():
        feats = net(image)
        after = float(gram_style_loss(feats, targets)[0])
        cerr = float(content_loss(feats[-1], p)[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    arr = ((image[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(out)
    return {
        "out": str(out),
        "method": method,
        "features": net.name,
        "style_before": before,
        "style_after": after,
        "style_reduction": 1.0 - after / max(before, 1e-12),
        "content_error": cerr,
        "notes": notes,
        "image": image,
        "style_image": s_img,
        "content_image": c_img,
    }
