"""``sample(run, n)``: draw samples from a trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Samples
from genzoo.core.seeding import make_generator
from genzoo.runs.load import load


def sample(
    run: str | Path,
    n: int = 64,
    *,
    seed: int = 0,
    sampler: str | None = None,
    steps: int | None = None,
    batch_size: int = 1000,
    **options: Any,
) -> torch.Tensor:
    """``n`` samples from a run, in the dataset's model range, on the CPU; ``options`` go to the
    model's ``sample`` (``cond``: labels ``(n,)``, split with the batches)."""
    if n < 1:
        raise ConfigError(f"--n {n} must be at least 1 (samples to draw).")
    model = load(run)
    if not isinstance(model, Samples):
        raise ConfigError(
            f"Run {str(run)!r} holds model {model.name!r}, which does not draw samples; "
            f"use `genzoo eval` (or the {model.family} commands) with it."
        )
    g = make_generator(seed, device=model.device)
    extra = dict(options)
    if sampler is not None:
        extra["sampler"] = sampler
    if steps is not None:
        extra["steps"] = steps
    cond = extra.pop("cond", None)
    out = []
    for i in range(0, n, batch_size):
        m = min(batch_size, n - i)
        part = cond[i : i + m] if cond is not None else None  # labels of this chunk
        if part is not None:
            extra["cond"] = part
        out.append(model.sample(m, generator=g, **extra).cpu())
    return torch.cat(out)
