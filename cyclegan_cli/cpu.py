"""How many CPU threads to use: the one rule that training, data loading and translation ask.

Torch and ONNX Runtime default to one thread per core. On a machine whose cores are already
busy (another run, a test suite, a shared node) their threads wait on each other and a step
becomes 10-80x slower than with fewer threads (docs/benchmarks.md, "CPU threads"). So the
default counts only the cores that are free by the 1-minute load average.
"""

from __future__ import annotations

import os


def cpu_count() -> int:
    """CPUs this process may run on (affinity-aware; at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def busy_cores() -> float:
    """Cores already in use by the 1-minute load average (0 where the OS has none)."""
    try:
        return max(0.0, os.getloadavg()[0])
    except (AttributeError, OSError):  # Windows
        return 0.0


def auto_threads() -> int:
    """``$OMP_NUM_THREADS`` where set to a positive number, else the cores not busy (the
    load average rounded), at least 1."""
    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    cores = cpu_count()
    return max(1, min(cores, cores - int(busy_cores() + 0.5)))


def resolve_threads(requested: int | None) -> int:
    """``--threads``: a positive number as given; 0 or None means :func:`auto_threads`."""
    return requested if requested and requested > 0 else auto_threads()
