"""Structural edits on large designs: adding a layer in the middle of a chain, which inserts it
and moves every layer below one row down (an edit of ~N ops), until the canvas is redrawn and
every connection re-routed.

Goal (issue 12, the 50 ms edit goal of issue 3 carried to structural edits): ≤ 50 ms at 300
layers; issue 14 carries it to 1,000 layers. The same run also times one argument edit on the
same window, the cheapest edit (goal ≤ 50 ms at 1,000 layers, issue 14), with its p90.
Run: uv run python benchmarks/bench_canvas_edits.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("CONVAS_RECOVERY_DIR", tempfile.mkdtemp())

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from engine.design import Design  # noqa: E402
from engine.editing import SetArg  # noqa: E402
from engine.layout import layered_positions  # noqa: E402

GOAL_MS = 50.0
REPEAT = 15
SETTLE_S = 0.3  # idle time before each timed edit: the overview's debounced re-draw of the last one is done


def settle(app: QApplication) -> None:
    """Let the window go idle, so that work deferred by the previous edit (the overview map is
    re-drawn 120 ms after the graph last changed) is not counted in the next one."""
    end = time.perf_counter() + SETTLE_S
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.005)


def chain(n: int) -> Design:
    design = Design(name=f"chain{n}")
    design.add("InputLayer", "in", {"shape": (32,)})
    previous = "in"
    for i in range(n):
        design.add("Dense", f"d{i}", {"units": 8}, [previous])
        previous = f"d{i}"
    for name, pos in layered_positions(design).items():
        design.nodes[name].position = pos
    return design


def main() -> None:
    app = QApplication.instance() or QApplication([])
    from gui.document import Document
    from gui.main_window import MainWindow

    print("design          add a layer mid-chain (median)   one argument edit (median, p90)   add ÷ goal")
    for n in (300, 1000):
        settings = QSettings(str(Path(tempfile.mkdtemp()) / "bench.ini"), QSettings.Format.IniFormat)
        window = MainWindow(Document(chain(n)), settings=settings)
        window.show()
        app.processEvents()
        adds, args = [], []
        for i in range(REPEAT):
            window.scene.select_nodes([f"d{n // 2 + i}"])
            settle(app)
            t = time.perf_counter()
            window.add_layer("Dropout")
            app.processEvents()  # the canvas mirrors the edit and re-routes its connections
            adds.append(time.perf_counter() - t)
            settle(app)
            t = time.perf_counter()
            window.document.edit("units", [SetArg(f"d{i}", "units", 9 + i % 2)])
            app.processEvents()
            args.append(time.perf_counter() - t)
        add_ms, arg_ms = statistics.median(adds) * 1000, statistics.median(args) * 1000
        arg_p90 = sorted(args)[int(0.9 * len(args))] * 1000
        print(f"{n:>5} layers     {add_ms:9.1f} ms                     {arg_ms:9.1f} ms, {arg_p90:5.1f} ms"
              f"               {add_ms / GOAL_MS:6.2f}")
        window.document.mark_saved()
        window.close()


if __name__ == "__main__":
    main()
