"""Layout time and shape at 1,000 layers, against the old one-column layout (issue 14).

Goals: :func:`engine.layout.design_layout` ≤ 100 ms on a 1,000-layer chain, on 1,000 layers with
residual skips, and on NASNetMobile and DenseNet121 with their blocks expanded and collapsed; the
result fits a landscape window (width : height near 16 : 10) instead of a 60,000-pixel column.
The old :func:`engine.layout.layered_positions` is timed in the same run for the ratio; so is
:func:`engine.blocks.add_block_groups`, which an import runs once.
Run: uv run python benchmarks/bench_layout.py [--no-keras]   (Keras builds the two applications
at 32×32 with weights=None: nothing is downloaded)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from engine.blocks import add_block_groups, collapse_for_size  # noqa: E402
from engine.design import Design  # noqa: E402
from engine.layout import CARD_HEIGHT, CARD_WIDTH, card_rect, design_layout, layered_positions  # noqa: E402

from _timing import best_of  # noqa: E402

GOAL_MS = 100.0


def chain(layers: int) -> Design:
    d = Design(name=f"chain_{layers}")
    prev = d.add("InputLayer", args={"shape": (8,)}).name
    for _ in range(layers - 1):
        prev = d.add("Dense", args={"units": 8}, inputs=[prev]).name
    return d


def residual(layers: int) -> Design:
    """Input, then blocks of Dense → ReLU → Dense added to the block's input (a skip of 2 ranks)."""
    d = Design(name=f"residual_{layers}")
    prev = d.add("InputLayer", args={"shape": (8,)}).name
    while len(d) + 4 <= layers:
        a = d.add("Dense", args={"units": 8}, inputs=[prev]).name
        b = d.add("ReLU", inputs=[a]).name
        c = d.add("Dense", args={"units": 8}, inputs=[b]).name
        prev = d.add("Add", inputs=[prev, c]).name
    return d


def application(name: str) -> Design:
    """A keras.applications network read back through its JSON, as a file would be."""
    import keras

    from engine.keras_import import design_from_keras_config

    model = getattr(keras.applications, name)(weights=None, input_shape=(32, 32, 3), classes=10)
    design = design_from_keras_config(json.loads(model.to_json()))
    keras.backend.clear_session()
    # The import groups blocks itself; the flat design, as it was before, is the baseline here.
    for node in design.nodes.values():
        node.group = None
    design.groups.clear()
    return design


def extent(positions: dict[str, tuple[float, float]]) -> tuple[float, float]:
    rects = [card_rect(p) for p in positions.values()]
    return (max(r[2] for r in rects) - min(r[0] for r in rects),
            max(r[3] for r in rects) - min(r[1] for r in rects))


def shown_cards(design: Design) -> int:
    return len({design.collapsed_group(n) or ("layer", n) for n in design.nodes})


def main() -> None:
    rows: list[tuple[str, Design]] = [("chain", chain(1000)), ("residual skips", residual(1000))]
    if "--no-keras" not in sys.argv:
        for name in ("NASNetMobile", "DenseNet121"):
            flat = application(name)
            rows.append((f"{name} flat", flat))
            grouped = flat.copy()
            made = add_block_groups(grouped)
            grouping = best_of(lambda flat=flat: add_block_groups(flat.copy()), repeat=3)
            print(f"{name}: add_block_groups made {made} groups in {grouping * 1000:.1f} ms "
                  f"(copying included; runs once per import)")
            rows.append((f"{name} blocks expanded", grouped))
            collapsed = grouped.copy()
            collapse_for_size(collapsed)
            rows.append((f"{name} blocks collapsed", collapsed))
    print(f"\n{'design':<30}{'layers':>7}{'cards':>7}{'layout':>11}{'goal':>9}{'old':>10}{'ratio':>8}"
          f"  {'new extent (px)':<22}{'old extent (px)':<18}")
    for label, design in rows:
        new = best_of(lambda design=design: design_layout(design), repeat=5)
        old = best_of(lambda design=design: layered_positions(design), repeat=5)
        w, h = extent(design_layout(design)[0] if not any(
            g.collapsed for g in design.groups.values()) else _shown_positions(design))
        ow, oh = extent(layered_positions(design))
        verdict = "ok" if new * 1000 <= GOAL_MS else "SLOW"
        print(f"{label:<30}{len(design):>7}{shown_cards(design):>7}{new * 1000:>8.1f} ms"
              f"{'≤100 ' + verdict:>9}{old * 1000:>7.1f} ms{new / old:>7.1f}×"
              f"  {w:>6.0f} × {h:<6.0f} ({w / h:.2f})  {ow:>6.0f} × {oh:<6.0f}")
    print(f"\ncards are {CARD_WIDTH:.0f} × {CARD_HEIGHT:.0f}; the extent is what Fit to Window must show "
          f"(aim: width/height near 1.6); 'old' is the one-column layered_positions, which knows no groups")


def _shown_positions(design: Design) -> dict[str, tuple[float, float]]:
    """Centres of the cards shown: layers not hidden, and the outermost collapsed groups."""
    nodes, groups = design_layout(design)
    shown: dict[str, tuple[float, float]] = {}
    for name in design.nodes:
        g = design.collapsed_group(name)
        shown[f"group {g}" if g else name] = groups[g] if g else nodes[name]
    return shown


if __name__ == "__main__":
    main()
