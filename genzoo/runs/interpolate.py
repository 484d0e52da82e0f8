"""``interpolate(run)``: decoded latent paths between pairs of a run's test examples (the maths
is :func:`genzoo.models.latent.interpolate_latents`)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from genzoo.core.errors import GenzooError
from genzoo.core.options import count, option
from genzoo.core.seeding import make_generator
from genzoo.data import load_dataset
from genzoo.models.latent import check_latent, interpolate_latents
from genzoo.runs.load import open_run
from genzoo.viz import png_out, save_samples_png


def interpolate(
    run: str | Path,
    *,
    n: int = 4,
    steps: int = 8,
    seed: int = 0,
    method: str = "auto",
    out: str | Path | None = None,
    data_root: str | None = None,
) -> Tensor:
    """Interpolate between ``n`` pairs of test examples of a run: ``(n, steps + 2, *shape)``,
    each row ``[input a, steps decoded frames, input b]``; with ``out``, also a PNG grid (one row
    per pair; points: a scatter plot of the paths over the data)."""
    if out is not None:
        out = png_out(out)
    loaded = open_run(run)
    model, cfg = loaded.model, loaded.config
    check_latent(model)
    n = count(n, "n", "pairs to interpolate")
    steps = option({"steps": steps}, "steps", 8, ge=2)  # decoded frames, both end points in
    test = load_dataset(cfg["data"], "test", root=data_root)
    if len(test) < 2:
        raise GenzooError(f"The test split of {cfg['data']!r} has fewer than two examples.")
    idx = torch.randperm(len(test), generator=make_generator(seed))[: 2 * n]
    if idx.numel() % 2:
        idx = idx[:-1]
    x = test.get(idx)["x"]  # bin centres for images, (2n, *shape)
    x_a, x_b = x[0::2], x[1::2]
    frames = interpolate_latents(model, x_a, x_b, steps=steps, method=method)
    grid = torch.cat([x_a.unsqueeze(1), frames, x_b.unsqueeze(1)], dim=1)  # (n, steps + 2, ...)
    if out is not None:
        flat = grid.reshape(-1, *grid.shape[2:])  # (n * (steps + 2), *shape)
        ref = test.x[:2000] if model.info.kind == "points" else None
        title = f"{cfg['model']} on {cfg['data']}: latent interpolation"
        save_samples_png(flat, model.info, out, reference=ref, title=title, nrow=steps + 2)
    return grid
