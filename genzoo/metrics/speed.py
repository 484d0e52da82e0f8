"""Sampling cost: throughput (samples per second) and network function evaluations (NFE).

NFE, the number of calls of the network per batch of samples, is the device-independent measure
of a sampler's cost that diffusion papers report (e.g. Karras et al. 2022, arXiv:2206.00364).
:class:`NFECounter` wraps any callable (a denoiser ``D(x, sigma)``, a network) and counts its
calls; :func:`count_nfe` counts the forward calls of an ``nn.Module`` inside a ``with`` block, for
a model whose sampler calls its network internally. :func:`measure_throughput` times a sampling
function with CUDA synchronisation, so that asynchronous GPU work is inside the timing.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from genzoo.core.errors import GenzooError


class NFECounter:
    """A callable that forwards to ``fn`` and counts the calls in ``.nfe``."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.nfe = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.nfe += 1
        return self.fn(*args, **kwargs)

    def reset(self) -> None:
        self.nfe = 0


class _HookCount:
    nfe: int = 0


@contextmanager
def count_nfe(module: nn.Module) -> Iterator[_HookCount]:
    """Count the forward calls of ``module`` in a ``with count_nfe(net) as c:`` block: ``c.nfe``."""
    counter = _HookCount()

    def hook(*_: Any) -> None:
        counter.nfe += 1

    handle = module.register_forward_hook(hook)
    try:
        yield counter
    finally:
        handle.remove()


def _sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_throughput(
    fn: Callable[[], Any],
    n: int,
    *,
    device: str | torch.device | None = None,
    warmup: int = 1,
    repeats: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Time ``fn()``, which produces ``n`` samples, and report throughput.

    ``warmup`` untimed calls first (compilation, caches, cuDNN autotuning), then ``repeats`` timed
    calls, each between device synchronisations when ``device`` is a CUDA device (default: the
    current CUDA device if CUDA is available). Returns ``{"samples_per_s", "seconds_per_call",
    "seconds_all", "n", "repeats", "device"}`` with the median time per call.
    """
    if n < 1 or repeats < 1 or warmup < 0:
        raise GenzooError(
            f"Need n >= 1, repeats >= 1 and warmup >= 0, got {n}, {repeats}, {warmup}."
        )
    if device is None:
        dev = (
            torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else None
        )
    else:
        dev = torch.device(device)
    for _ in range(warmup):
        fn()
    _sync(dev)
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        _sync(dev)
        times.append(clock() - t0)
    median = statistics.median(times)
    return {
        "samples_per_s": n / median if median > 0 else float("inf"),
        "seconds_per_call": median,
        "seconds_all": times,
        "n": n,
        "repeats": repeats,
        "device": str(dev) if dev is not None else "cpu",
    }
