"""How many CPU threads genzoo's work uses: chosen from measurements, not guessed.

PyTorch's default intra-op thread count (one per core) makes the small models genzoo trains on a
CPU several times slower than one thread, and more so when another process shares the cores;
large convolutions and matrix products still gain from a second thread on a quiet machine.
``benchmarks/cpu_threads.py`` measured each family's default configuration at 1..N threads,
quiet and beside one competing process (benchmarks/RESULTS.md, "CPU threads"), and
:func:`default_threads` follows that table. ``--threads N`` on the command line or the
``GENZOO_THREADS`` environment variable overrides it.
"""

from __future__ import annotations

import os

from torch import nn

from genzoo.core.errors import ConfigError

THREADS_ENV = "GENZOO_THREADS"

LARGE_MODEL_PARAMS = 5_000_000
"""Models with at least this many parameters get more than one thread (see the module text)."""


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's core count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def threads_from_env() -> int | None:
    """``GENZOO_THREADS`` as a count, ``None`` when unset; a bad value is one clear error."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{THREADS_ENV} = {raw!r} must be a whole number of threads >= 1.")
    return int(raw)


def default_threads(model: nn.Module | None = None, cores: int | None = None) -> int:
    """The intra-op thread count for training or sampling ``model`` on the CPU: the
    environment's ``GENZOO_THREADS`` if set, else one thread for models under
    :data:`LARGE_MODEL_PARAMS` parameters, else every available core."""
    env = threads_from_env()
    if env is not None:
        return env
    cores = cores or available_cores()
    params = sum(p.numel() for p in model.parameters()) if model is not None else 0
    return 1 if params < LARGE_MODEL_PARAMS else cores
