"""When the Trainer logs, draws samples, checkpoints and stops.

:class:`Cadence` holds the clock of one ``fit``: the step limit and the time budget, the time of
the last checkpoint (for ``ckpt_every_s``), and the SIGINT/SIGTERM flag. Under torchrun every
rank must leave the loop, and checkpoint, at the same step: every 10 steps one all-reduce shares
a stop signal, a spent budget and a due timed checkpoint (rank 0's clock is never trusted alone).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from genzoo.train import distributed
from genzoo.train.distributed import DistInfo

AGREE_EVERY = 10
"""torchrun: steps between the all-reduces that agree on stopping and timed checkpoints."""


@dataclass(frozen=True)
class Due:
    """What is due after a step."""

    log: bool
    sample: bool
    ckpt: bool

    def __bool__(self) -> bool:
        return self.log or self.sample or self.ckpt


class Cadence:
    """The schedule of one ``fit``: ``total`` steps (``None``: no limit) and ``budget`` seconds
    of training time (0: none), counted on from ``elapsed`` seconds already trained. ``reserve``
    seconds of the budget are kept for the work after the last step (the last checkpoint and
    sample grid), so that a budget bounds the whole run: training stops at ``budget - reserve``."""

    def __init__(
        self,
        *,
        total: int | None,
        budget: float,
        log_every: int,
        sample_every: int,
        ckpt_every: int,
        ckpt_every_s: float,
        step: int,
        elapsed: float,
        dist: DistInfo,
        device: torch.device,
        reserve: float = 0.0,
    ) -> None:
        self.total = total
        self.budget = budget
        self.reserve = min(max(reserve, 0.0), budget)
        self.log_every = log_every
        self.sample_every = sample_every
        self.ckpt_every = ckpt_every
        self.ckpt_every_s = ckpt_every_s
        self.dist = dist
        self.device = device
        self.start = time.perf_counter() - elapsed
        self.last_ckpt_t = time.perf_counter()
        self.last_ckpt_step = step
        self.stop: list[str] = []  # the name of the signal that asks to stop, if any
        self._ckpt_due_t = False  # torchrun: a timed checkpoint agreed at the last check

    def elapsed(self) -> float:
        """Training time of the run so far in seconds."""
        return time.perf_counter() - self.start

    def left(self, elapsed: float) -> float | None:
        """Training seconds left before the budget's reserve (None: no budget)."""
        if not self.budget:
            return None
        return max(self.budget - self.reserve - elapsed, 0.0)

    def finished(self, step: int, elapsed: float) -> bool:
        """Whether to leave the loop before the next step: a signal, the step limit or a spent
        budget less its reserve (under torchrun: as agreed by all ranks)."""
        done_steps = self.total is not None and step >= self.total
        done = done_steps or bool(self.budget and elapsed >= self.budget - self.reserve)
        if self.dist.enabled:
            done, self._ckpt_due_t = self._agree(step, done, done_steps)
        return bool(self.stop) or done

    def due(self, step: int) -> Due:
        """What the step just taken (now ``step``) calls for."""
        last = self.total is not None and step == self.total
        due_t = bool(self.ckpt_every_s) and (
            time.perf_counter() - self.last_ckpt_t >= self.ckpt_every_s
        )
        if self.dist.enabled:
            due_t = self._ckpt_due_t  # rank 0's clock, agreed at the last check
        return Due(
            log=step % self.log_every == 0 or last,
            sample=bool(self.sample_every) and step % self.sample_every == 0,
            ckpt=bool(self.ckpt_every and step % self.ckpt_every == 0) or due_t,
        )

    def checkpointed(self, step: int) -> None:
        """A checkpoint of ``step`` was written (or, after a rollback, read)."""
        self.last_ckpt_step = step
        self.last_ckpt_t = time.perf_counter()

    def rolled_back(self, step: int) -> None:
        """Training goes on from the checkpoint of ``step`` (the checkpoint clock runs on)."""
        self.last_ckpt_step = step

    def _agree(self, step: int, done: bool, done_steps: bool) -> tuple[bool, bool]:
        """torchrun: every ``AGREE_EVERY`` steps (and at the step limit) one all-reduce of
        (a stop signal, a spent budget, a due timed checkpoint); in between, neither."""
        if not (done_steps or step % AGREE_EVERY == 0):
            return False, False
        due_t = bool(self.ckpt_every_s) and (
            time.perf_counter() - self.last_ckpt_t >= self.ckpt_every_s
        )
        flags = torch.tensor(
            [bool(self.stop), done, due_t], dtype=torch.float32, device=self.device
        )
        flags = distributed.max_across(flags, self.dist).tolist()
        if flags[0] and not self.stop:
            self.stop.append("a signal to another rank")
        return bool(flags[1]) or done_steps, bool(flags[2])

    @contextmanager
    def catch_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM set :attr:`stop`, which the loop checks after the current step (main
        thread only); a second signal acts as usual. The old handlers are back on exit."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old: dict[int, Any] = {}

        def handler(signum: int, frame: Any) -> None:
            self.stop.append(signal.Signals(signum).name)
            for sig, h in old.items():
                signal.signal(sig, h)

        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.getsignal(sig)
            signal.signal(sig, handler)
        try:
            yield
        finally:
            for sig, h in old.items():
                signal.signal(sig, h)
