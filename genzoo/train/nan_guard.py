"""The NaN/Inf guard: what happens when a step's loss or gradient norm is not finite.

The steps only record the first bad step on the device (no host synchronisation per step);
the Trainer asks :meth:`NaNGuard.check` before it logs, samples, checkpoints or stops, so that
nothing is written from a diverged model. ``nan_policy`` (see :class:`~genzoo.train.trainer.
TrainConfig`) decides: ``stop`` raises :class:`TrainingDiverged`; ``rollback`` reloads the last
checkpoint with a lower learning rate; ``skip`` is handled inside the step (the update is
dropped) and reported through :meth:`NaNGuard.skipped`. Every fault is an event row of
``metrics.jsonl`` and a warning; after ``nan_limit`` faults in one process training stops.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from genzoo.core.errors import TrainingDiverged
from genzoo.train import distributed
from genzoo.train.distributed import DistInfo
from genzoo.train.metrics_log import MetricsLog

Restore = Callable[[float], tuple[int, float, float]]
"""``restore(lr_factor) -> (step, lr_scale, lr)``: reload the last checkpoint and lower the
learning rate by ``lr_factor``; returns the step it went back to and the new rate."""


class NaNGuard:
    """Counts this process's NaN/Inf faults and acts on them as ``policy`` says."""

    def __init__(
        self,
        *,
        policy: str,
        limit: int,
        lr_factor: float,
        ckpt_dir: Path,
        log: MetricsLog,
        dist: DistInfo,
        device: torch.device,
    ) -> None:
        self.policy = policy
        self.limit = limit
        self.lr_factor = lr_factor
        self.ckpt_dir = ckpt_dir
        self.log = log
        self.dist = dist
        self.faults = 0
        self._bad_step = torch.full((), -1, dtype=torch.long, device=device)  # -1: none yet

    def note(self, finite: Tensor, step: int) -> None:
        """Step ``step`` was finite or not (a device flag; the first bad step is kept)."""
        bad = self._bad_step
        self._bad_step = torch.where((~finite) & (bad < 0), torch.full_like(bad, step), bad)

    def check(self, step: int, restore: Restore) -> bool:
        """Act on a fault since the last check (on any rank): raise under ``stop`` (or past
        ``nan_limit``), or roll back with ``restore`` and return True. False: all finite."""
        s = int(distributed.max_across(self._bad_step, self.dist))
        if s < 0:
            return False
        self._bad_step.fill_(-1)
        if self.policy != "rollback" or self.faults >= self.limit:
            self.log.event(step, {"event": "nan_stop", "bad_step": s})
            raise TrainingDiverged(self._diverged(s))
        self.faults += 1
        to_step, scale, lr = restore(self.lr_factor)
        self.log.event(
            to_step, {"event": "nan_rollback", "bad_step": s, "to_step": to_step, "lr_scale": scale}
        )
        warnings.warn(
            f"NaN/Inf at step {s}: rolled back to the checkpoint of step {to_step} and lowered "
            f"the learning rate to {lr:.3g} (x{scale:.3g}); "
            f"fault {self.faults} of at most {self.limit}.",
            RuntimeWarning,
            stacklevel=3,
        )
        return True

    def skipped(self, step: int, groups: list[str]) -> None:
        """Step ``step`` dropped the updates of ``groups`` (``nan_policy = skip``)."""
        self.faults += 1
        self.log.event(step, {"event": "nan_skip", "bad_step": step, "groups": groups})
        if self.faults > self.limit:
            raise TrainingDiverged(self._diverged(step))
        warnings.warn(
            f"NaN/Inf at step {step}: skipped the update of {', '.join(groups)}; "
            f"fault {self.faults} of at most {self.limit}.",
            RuntimeWarning,
            stacklevel=3,
        )

    def _diverged(self, s: int) -> str:
        tried = ""
        if self.policy != "stop":
            tried = f" after {self.faults} {self.policy} attempts (nan_limit)"
        return (
            f"Training diverged: the loss or gradients became NaN/Inf at step {s}{tried}; the "
            f"last good checkpoint in {str(self.ckpt_dir)!r} is kept "
            "(try a lower lr, or nan_policy=skip or rollback)."
        )
