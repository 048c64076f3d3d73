"""The redraw pacer stretches the interval while the GUI thread is over its CPU budget."""

from gui.training.pacing import FASTEST_MS, SLOWEST_MS, RedrawPacer


class Clocks:
    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def advance(self, seconds: float, share: float) -> None:
        self.wall += seconds
        self.cpu += seconds * share


def pacer(clocks: Clocks) -> RedrawPacer:
    p = RedrawPacer(budget=0.05, wall=lambda: clocks.wall, cpu=lambda: clocks.cpu)
    assert p.restart() == FASTEST_MS
    return p


def test_over_budget_slows_down_and_caps() -> None:
    clocks = Clocks()
    p = pacer(clocks)
    seen = []
    for _ in range(10):
        clocks.advance(1.0, 0.25)  # five times the budget
        seen.append(p.tick())
    assert seen[0] == 2 * FASTEST_MS          # at most ×2 per second
    assert seen == sorted(seen)
    assert seen[-1] == SLOWEST_MS


def test_within_budget_keeps_fastest_and_recovers() -> None:
    clocks = Clocks()
    p = pacer(clocks)
    clocks.advance(1.0, 0.01)
    assert p.tick() == FASTEST_MS
    for _ in range(4):
        clocks.advance(1.0, 0.5)
        p.tick()
    assert p.interval_ms == SLOWEST_MS
    for _ in range(30):
        clocks.advance(1.0, 0.01)
        p.tick()
    assert p.interval_ms == FASTEST_MS


def test_judges_only_whole_windows() -> None:
    clocks = Clocks()
    p = pacer(clocks)
    clocks.advance(0.5, 1.0)                  # half a second fully busy: not yet judged
    assert p.tick() == FASTEST_MS
    clocks.advance(0.6, 0.0)                  # now 1.1 s at 45 % share
    assert p.tick() > FASTEST_MS


def test_between_half_and_full_budget_holds() -> None:
    clocks = Clocks()
    p = pacer(clocks)
    clocks.advance(1.0, 0.2)
    held = p.tick()
    clocks.advance(1.0, 0.04)                 # 80 % of the budget: neither faster nor slower
    assert p.tick() == held
