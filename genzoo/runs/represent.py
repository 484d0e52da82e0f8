"""What reads a run's representation: ``features`` of a data split, ``probe(run)`` (the linear
probe and k-NN table of ``genzoo eval``) and ``embed(run, out)`` (``genzoo embed``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from genzoo.core.errors import ConfigError, StorageError
from genzoo.core.protocol import Embeds, GenerativeModel
from genzoo.data import load_dataset
from genzoo.data.base import Dataset
from genzoo.data.shapes import ShapesDataset
from genzoo.metrics.representation import BUDGETS, probe_table
from genzoo.models.ssl.base import SSLModel
from genzoo.runs.load import open_run


def _embedder(model: GenerativeModel, run: str | Path) -> Embeds:
    if not isinstance(model, Embeds):
        raise ConfigError(
            f"Run {str(run)!r} holds model {model.name!r}, which has no representation to probe "
            "or embed; use a self-supervised run (simclr, moco, byol, dino)."
        )
    return model


@torch.no_grad()
def features(model: Embeds, data: Dataset, batch_size: int = 500, stages: int = 1) -> np.ndarray:
    """Frozen features ``(N, d)`` (float32) of every example of ``data`` (bin centres);
    ``stages > 1``: a self-supervised ResNet's last ``stages`` stages, mean-pooled and
    concatenated (:meth:`~genzoo.models.ssl.base.SSLModel.embed`)."""
    assert isinstance(model, GenerativeModel)
    if stages != 1 and not isinstance(model, SSLModel):
        raise ConfigError(
            f"stages = {stages} pools a self-supervised ResNet's stages, and model "
            f"{type(model).__name__!r} is not one; use stages=1."
        )
    was = model.training
    model.eval()
    out = []
    for i in range(0, len(data), batch_size):
        x = data.get(torch.arange(i, min(i + batch_size, len(data))))["x"]
        x = x.to(model.device)
        h = model.embed(x, stages) if isinstance(model, SSLModel) else model.embed(x)
        out.append(h.float().cpu())
    model.train(was)
    return torch.cat(out).numpy()


def probe_targets(data: Dataset) -> dict[str, np.ndarray]:
    """What a probe predicts: the class, and for ``shapes`` also the first object's shape and
    colour. A dataset without labels is a :class:`ConfigError`."""
    if data.y is None or data.info.n_classes == 0:
        raise ConfigError(
            f"A probe needs labels, and dataset {data.info.name!r} has none; probe a run trained "
            "on a labelled dataset (digits, mnist5k, shapes, ...) or export its features with "
            "`genzoo embed`."
        )
    out = {"class": data.y.numpy()}
    if isinstance(data, ShapesDataset):
        out["shape"] = data.attrs[:, 0, 0].numpy()
        out["colour"] = data.attrs[:, 0, 1].numpy()
    return out


def probe(
    run: str | Path,
    *,
    budgets: tuple[int | None, ...] = BUDGETS,
    seed: int = 0,
    data_root: str | None = None,
) -> dict[str, Any]:
    """The probe table of a run: linear probe and weighted k-NN on the frozen features of the
    train split (``budgets`` labels per class), accuracy on the test split."""
    loaded = open_run(run, device="auto")
    model = _embedder(loaded.model, run)
    spec = loaded.config["data"]
    train = load_dataset(spec, "train", root=data_root)
    test = load_dataset(spec, "test", root=data_root)
    ytr, yte = probe_targets(train), probe_targets(test)
    rows = probe_table(features(model, train), ytr, features(model, test), yte, budgets, seed)
    return {"data": spec, "step": loaded.step, "rows": rows}


def embed(
    run: str | Path, out: str | Path, *, split: str = "test", data_root: str | None = None
) -> tuple[Path, tuple[int, ...]]:
    """Write the frozen features of a split of the run's dataset to ``out`` (``.npy``, float32,
    ``(N, d)``, in the split's order); returns the path and the shape."""
    path = Path(out)
    if path.suffix != ".npy":
        raise ConfigError(f"--out {str(path)!r} must end in .npy (a NumPy array file).")
    loaded = open_run(run, device="auto")
    model = _embedder(loaded.model, run)
    data = load_dataset(loaded.config["data"], split, root=data_root)
    f = features(model, data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, f, allow_pickle=False)
    except OSError as e:
        raise StorageError(f"Cannot write {str(path)!r}: {e.strerror or e}.") from None
    return path, tuple(f.shape)
