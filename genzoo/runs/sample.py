"""``sample(run, n)``: draw samples from a trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Samples
from genzoo.core.seeding import make_generator
from genzoo.data.base import DataInfo
from genzoo.runs.load import load

AUDIO_GAP = 0.25  # seconds of silence between the samples of one WAV file


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


def save_audio_samples(x: torch.Tensor, info: DataInfo, out: str | Path, title: str = "") -> None:
    """Audio samples ``(n, T)`` to ``out``: a ``.wav`` file (16-bit PCM at the dataset's rate;
    the samples one after another, :data:`AUDIO_GAP` seconds of silence between them) or a
    ``.png`` picture of their spectrograms."""
    from genzoo.audio import write_wav
    from genzoo.viz import save_spectrograms_png

    out = Path(out)
    if info.kind != "audio":
        raise ConfigError(f"--out {str(out)!r}: a WAV file needs an audio run, not {info.kind}.")
    if out.suffix == ".png":
        save_spectrograms_png(x, info, out, title=title)
        return
    gap = torch.zeros(int(AUDIO_GAP * info.sample_rate))
    parts = [p for wave in x.detach().float().cpu().reshape(x.shape[0], -1) for p in (wave, gap)]
    write_wav(out, torch.cat(parts[:-1]), info.sample_rate)
