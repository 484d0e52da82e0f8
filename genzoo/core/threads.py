"""How many CPU threads genzoo's training uses: chosen from measurements, not guessed.

``benchmarks/cpu_threads.py`` measured each family's default configuration on a 2-core machine
(benchmarks/RESULTS.md, "CPU threads"): alone, two threads trained 21-84% faster than one; beside
one other busy process, one thread trained 1.5-3.6x as fast as two (the second thread waits for a
core that is taken). So the right count is the number of cores that are *idle* when training
starts: :func:`default_threads` reads it from the kernel's CPU counters over a tenth of a
second. ``--threads N`` on the command line or the ``GENZOO_THREADS`` environment variable fixes
it (a CPU run is reproducible bit for bit at a given thread count).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from genzoo.core.errors import ConfigError

THREADS_ENV = "GENZOO_THREADS"


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


def _cpu_times() -> tuple[float, float, int] | None:
    """(idle, total) jiffies of all CPUs and the machine's CPU count, from /proc/stat (Linux)."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    fields = [float(v) for v in lines[0].split()[1:]]  # user nice system idle iowait irq ...
    n_cpus = sum(1 for ln in lines if ln.startswith("cpu") and ln[3:4].isdigit())
    return fields[3] + (fields[4] if len(fields) > 4 else 0.0), sum(fields[:8]), max(1, n_cpus)


def idle_cores(interval: float = 0.1) -> float | None:
    """How many of this process's cores are idle now, or busy with this process itself: the
    machine's idle share over ``interval`` seconds times its CPU count, plus the CPU time this
    process used meanwhile, capped by the affinity; from the 1-minute load average where the
    kernel does not say, ``None`` where neither does."""
    a = _cpu_times()
    if a is None:
        try:
            return max(0.0, available_cores() - os.getloadavg()[0])
        except (AttributeError, OSError):
            return None
    own0, wall0 = time.process_time(), time.perf_counter()
    time.sleep(interval)
    b = _cpu_times()
    own = (time.process_time() - own0) / max(time.perf_counter() - wall0, 1e-9)
    if b is None or b[1] <= a[1]:
        return None
    share = (b[0] - a[0]) / (b[1] - a[1])
    # this process's own threads (an OpenMP pool still spinning after torch's last parallel
    # region) are not competition: their time counts as idle
    return min(float(available_cores()), share * b[2] + own)


def default_threads() -> int:
    """The intra-op thread count for training on the CPU: ``GENZOO_THREADS`` if set, else the
    number of idle cores (rounded, at least 1), else every available core."""
    env = threads_from_env()
    if env is not None:
        return env
    idle = idle_cores()
    cores = available_cores()
    if idle is None:
        return cores
    return max(1, min(cores, math.floor(idle + 0.5)))
