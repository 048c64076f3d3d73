"""Small timing helpers shared by the benchmark scripts (best-of and median of repeats)."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable, Sequence


def best_of(fn: Callable[[], object], repeat: int = 7, number: int = 1) -> float:
    """Fastest of ``repeat`` runs of ``number`` calls, in seconds per call (noise only adds)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t) / number)
    return min(times)


def median_process(cmd: Sequence[str], repeat: int = 5, env: dict | None = None, cwd: str | None = None) -> float:
    """Median wall time of a whole process, in seconds (the process must succeed)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=cwd)
        times.append(time.perf_counter() - t)
    return statistics.median(times)
