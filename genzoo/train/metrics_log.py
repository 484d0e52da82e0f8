"""The Trainer's metrics: step logs averaged between log lines, written to ``metrics.jsonl``
(one JSON object a line; NaN/Inf faults as ``{"event": ...}`` rows) and to TensorBoard.

Only rank 0 of a torchrun job writes; the logs are averaged over the ranks first.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from genzoo.train import distributed
from genzoo.train.distributed import DistInfo
from genzoo.train.safety import METRICS_FILE, repair_metrics, storage_error


class MetricsLog:
    """Accumulates the logs of the steps since the last line (:meth:`add`) and writes their
    mean (:meth:`flush`); :attr:`last` is the last line's metrics."""

    def __init__(
        self, run_dir: Path, dist: DistInfo, device: torch.device, *, tensorboard: bool
    ) -> None:
        self.run_dir = run_dir
        self.dist = dist
        self.device = device
        self.tensorboard = tensorboard and dist.is_main  # off when tensorboard is not installed
        self.last: dict[str, float] = {}
        self._writer: Any = None
        self._sum: dict[str, Tensor] = {}
        self._n = 0
        self._t = time.perf_counter()
        self._step = 0

    def begin(self, step: int) -> None:
        """A ``fit`` starts (or, after a rollback, continues) at ``step``: nothing is pending."""
        self._sum, self._n = {}, 0
        self._step = step

    def start(self, step: int) -> None:
        """A new ``fit`` from ``step``: also the clock of the steps-per-second rate."""
        self.begin(step)
        self.last = {}
        self._t = time.perf_counter()

    def add(self, logs: dict[str, Tensor]) -> None:
        """One step's detached logs (kept on the device; no synchronisation)."""
        for k, v in logs.items():
            self._sum[k] = self._sum.get(k, 0) + v
        self._n += 1

    def running(self) -> dict[str, float]:
        """The mean of the logs since the last line, without writing it (one synchronisation;
        the progress bar shows it before the first line)."""
        return {k: float(v) / self._n for k, v in self._sum.items()} if self._n else {}

    @property
    def pending(self) -> bool:
        return self._n > 0

    def flush(self, step: int, elapsed: float, lr: float) -> dict[str, float] | None:
        """Write the mean of the pending logs (averaged over ranks) as the line of ``step``,
        with the steps per second since the last line; ``None`` when nothing is pending."""
        if not self._n:
            return None
        now = time.perf_counter()
        rate = (step - self._step) / max(now - self._t, 1e-9)
        self._t, self._step = now, step
        sums = distributed.mean_across(self._sum, self.dist, self.device)
        self.last = {k: float(v) / self._n for k, v in sums.items()}
        self._sum, self._n = {}, 0
        self.write(step, elapsed, lr, self.last, rate)
        return self.last

    def flush_rest(self, step: int, elapsed: float, lr: float) -> None:
        """At the end of ``fit``: the steps since the last line, this rank's mean, no rate."""
        if self._n:
            self.last = {k: float(v) / self._n for k, v in self._sum.items()}
            self._sum, self._n = {}, 0
            self.write(step, elapsed, lr, self.last, 0.0)

    def write(
        self, step: int, elapsed: float, lr: float, metrics: dict[str, float], rate: float
    ) -> None:
        row = {"step": step, "time": round(elapsed, 3), "lr": lr, **metrics}
        if rate:
            row["steps_per_s"] = round(rate, 3)
        self.append(row)
        if self.tensorboard:
            writer = self._tensorboard()
            if writer is None:
                return
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    writer.add_scalar(k, v, step)

    def event(self, step: int, row: dict[str, Any]) -> None:
        """An event row (a NaN/Inf fault and what was done)."""
        self.append({"step": step, **row})

    def append(self, row: dict[str, Any]) -> None:
        """One row of ``metrics.jsonl`` (rank 0 only)."""
        if not self.dist.is_main:
            return
        path = self.run_dir / METRICS_FILE
        try:
            with open(path, "a") as f:
                f.write(json.dumps(row) + "\n")
        except OSError as e:
            raise storage_error("metrics file", path, e) from None

    def repair(self, step: int) -> None:
        """Drop a line cut short by a crash and the rows after ``step`` (trained again)."""
        if not self.dist.is_main:
            return
        try:
            repair_metrics(self.run_dir, step)
        except OSError as e:
            raise storage_error("metrics file", self.run_dir / METRICS_FILE, e) from None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _tensorboard(self) -> Any:
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter  # slow to import: on first use
            except ImportError:  # tensorboard not installed: JSONL only
                self.tensorboard = False
                return None
            self._writer = SummaryWriter(str(self.run_dir / "events"))
        return self._writer


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, values: dict[str, str]) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(show: bool, total: int | None, initial: int, desc: str) -> Any:
    """A tqdm bar of the steps, or one that shows nothing."""
    if not show:
        return _NoBar()
    return tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True)
