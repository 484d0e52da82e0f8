"""Seeding and device helpers."""

from __future__ import annotations

import numbers
import random

import numpy as np
import torch

from genzoo.core.errors import ConfigError


def check_seed(seed: int) -> None:
    """A seed must be a whole number (a bool, float or string is one sentence) that fits a
    signed 64-bit integer (what torch's generators take)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ConfigError(f"seed = {seed!r} must be a whole number.")
    if not -(2**63) <= seed < 2**63:
        raise ConfigError(f"seed = {seed} is out of range; use an integer in [-2**63, 2**63).")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator seeded with ``seed`` as well."""
    check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return make_generator(seed)


def make_generator(seed: int | None, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    if seed is not None:
        check_seed(seed)
        g.manual_seed(seed)
    else:
        g.seed()
    return g


def auto_device(requested: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else the CPU; a named device must exist here (one
    clear :class:`ConfigError` otherwise, before anything is written)."""
    if requested != "auto":
        try:
            dev = torch.device(requested)
        except (RuntimeError, ValueError):
            raise ConfigError(
                f"device = {requested!r} is not a device; choose 'auto', 'cpu', 'cuda' or 'cuda:N'."
            ) from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                f"device = {requested!r} needs a CUDA GPU, and none is available here; use "
                "device=cpu or device=auto."
            )
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device = {requested!r} does not exist; this machine has "
                f"{torch.cuda.device_count()} CUDA device(s) (cuda:0 ...)."
            )
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise ConfigError(f"device = {requested!r} needs Apple's MPS, not available here.")
        if dev.type not in ("cpu", "cuda", "mps"):
            raise ConfigError(f"device = {requested!r} is not supported; choose 'cpu' or 'cuda'.")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def randn(
    shape: tuple[int, ...] | torch.Size,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal noise drawn on the generator's device and moved to ``device``.

    Drawing on the generator's own device keeps results identical whatever device runs the model.
    """
    gdev = generator.device if generator is not None else torch.device(device)
    return torch.randn(shape, generator=generator, device=gdev, dtype=dtype).to(device)


def rand(
    shape: tuple[int, ...] | torch.Size,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Uniform [0, 1) noise, drawn like :func:`randn`."""
    gdev = generator.device if generator is not None else torch.device(device)
    return torch.rand(shape, generator=generator, device=gdev, dtype=dtype).to(device)
