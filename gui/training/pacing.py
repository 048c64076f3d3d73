"""How often the live curves may redraw: a budget on the GUI thread's share of the CPU.

Training and drawing share the machine (and the GIL). Drawing two plots 20 times a second costs
next to nothing on a fast desktop, but on a two-core laptop it can take a fifth of a core away
from TensorFlow. :class:`RedrawPacer` measures the GUI thread's own CPU time (``time.thread_time``)
over each second of wall time and stretches the redraw interval while that share is over budget,
shrinking it back when there is room: the curves stay as live as the machine can afford, and
training keeps ≥ 97 % of its speed (benchmarks/bench_gui_training.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

FASTEST_MS = 50          # 20 Hz: smooth to the eye
SLOWEST_MS = 500         # 2 Hz: still visibly live
CPU_BUDGET = 0.04        # of one core, on the GUI thread, while training
WINDOW_S = 1.0           # the share is judged over this much wall time


@dataclass
class RedrawPacer:
    """Adapts a redraw interval (ms) to keep the calling thread's CPU share under budget.

    Call :meth:`restart` when training starts and :meth:`tick` from the redraw timer on the
    thread being measured; ``tick`` returns the interval to use from now on.
    """

    budget: float = CPU_BUDGET
    fastest_ms: int = FASTEST_MS
    slowest_ms: int = SLOWEST_MS
    wall: Callable[[], float] = time.monotonic
    cpu: Callable[[], float] = time.thread_time
    interval_ms: int = FASTEST_MS
    _since: tuple[float, float] = field(default=(0.0, 0.0), repr=False)

    def restart(self) -> int:
        self.interval_ms = self.fastest_ms
        self._since = (self.wall(), self.cpu())
        return self.interval_ms

    def tick(self) -> int:
        wall, cpu = self.wall(), self.cpu()
        elapsed = wall - self._since[0]
        if elapsed < WINDOW_S:
            return self.interval_ms
        share = (cpu - self._since[1]) / elapsed
        self._since = (wall, cpu)
        if share > self.budget:
            # Scale by how far over budget we are, at most ×2 per second.
            factor = min(2.0, share / self.budget)
            self.interval_ms = min(self.slowest_ms, max(self.interval_ms + 10, round(self.interval_ms * factor)))
        elif share < self.budget / 2:
            self.interval_ms = max(self.fastest_ms, round(self.interval_ms * 0.8))
        return self.interval_ms
