"""Freezing at scale: Model → Freeze Backbone on 1,000- and 10,000-layer designs.

What is timed is what the window does for that one undo step: find the backbone
(engine.freezing.backbone_nodes), apply the one SetTrainable op, and analyse again after it
(incremental, as after any edit). The baseline, measured in the same run, is a full analysis of the
same design: freezing every layer should cost about that, no more.
Run: uv run python benchmarks/bench_freezing.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from bench_analysis import conv_stack  # noqa: E402

from engine.analysis import analyse  # noqa: E402
from engine.editing import apply_op, plan_set_trainable, touched_by  # noqa: E402
from engine.freezing import backbone_nodes  # noqa: E402

from _timing import best_of  # noqa: E402


def freeze_backbone_seconds(layers: int, repeat: int) -> tuple[float, float, int]:
    """Best time of finding the backbone, freezing it and analysing again; the full analysis's
    best time; how many layers were frozen."""
    times = []
    frozen = 0
    for _ in range(repeat):
        design = conv_stack(layers)
        previous = analyse(design)
        started = time.perf_counter()
        names = sorted(backbone_nodes(design))
        touched: set[str] = set()
        for op in plan_set_trainable(design, names, False):
            touched |= touched_by(design, op) or set(design.nodes)
            apply_op(design, op)
        after = analyse(design, previous=previous, touched=touched)
        times.append(time.perf_counter() - started)
        assert after.trainable_params == sum(r.trainable_params for n, r in after.nodes.items()
                                             if n not in names)
        frozen = len(names)
    design = conv_stack(layers)
    full = best_of(lambda: analyse(design), repeat=repeat)
    return min(times), full, frozen


def main() -> None:
    print(f"{'design':<16}{'frozen':>8}{'freeze backbone':>18}{'full analysis':>16}{'ratio':>8}")
    for layers, repeat in ((1000, 7), (10000, 3)):
        freeze, full, frozen = freeze_backbone_seconds(layers, repeat)
        print(f"{f'{layers:,} layers':<16}{frozen:>8,}{freeze * 1000:>15.1f} ms{full * 1000:>13.1f} ms"
              f"{freeze / full:>7.2f}×")


if __name__ == "__main__":
    main()
