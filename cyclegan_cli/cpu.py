"""How many CPU threads to use: the one rule that training, data loading and translation ask.

Torch and ONNX Runtime default to one thread per core. On a machine whose cores are already
busy (another run, a test suite, a shared node) their threads wait on each other and a step
becomes several times slower than with fewer threads (docs/benchmarks.md, "CPU threads").
So the default counts only the cores that are idle when the process starts.
"""

from __future__ import annotations

import functools
import os
import time

SAMPLE_SECONDS = 0.25  # how long the CPUs are watched to see how busy they are


def cpu_count() -> int:
    """CPUs this process may run on (affinity-aware; at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat (Linux), else None."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(window: float = SAMPLE_SECONDS) -> float:
    """Cores in use right now: the CPUs' busy share over ``window`` seconds where the OS
    tells (Linux), else the 1-minute load average (0 where there is none, as on Windows)."""
    before = _cpu_times()
    if before is not None:
        time.sleep(window)
        after = _cpu_times()
        if after is not None and after[1] > before[1]:
            share = (after[0] - before[0]) / (after[1] - before[1])
            return max(0.0, share * (os.cpu_count() or 1))
    try:
        return max(0.0, os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def auto_threads() -> int:
    """``$OMP_NUM_THREADS`` where set to a positive number, else the cores this process may
    use that are not busy (rounded), at least 1."""
    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    return _free_cores()


@functools.lru_cache(maxsize=1)
def _free_cores() -> int:
    """Watched once per process (a quarter of a second), then remembered."""
    cores = cpu_count()
    return max(1, min(cores, cores - int(busy_cores() + 0.5)))


def resolve_threads(requested: int | None) -> int:
    """``--threads``: a positive number as given; 0 or None means :func:`auto_threads`."""
    return requested if requested and requested > 0 else auto_threads()
