"""The canvas at real size: opening, panning, zooming and editing NASNetMobile (771 layers) and a
generated 1,000-layer residual network in the designer window (offscreen platform).

Goals (issue 14): open + lay out + first paint ≤ 1 s each; pan and zoom frame time p95 ≤ 33 ms
at Fit zoom and at 1.0; one argument edit (canvas, inspector and summary updated) ≤ 50 ms.
Baselines measured in the same run: the plain layered layout (``layered_positions``) for laying
out, and a bare QGraphicsScene with one rectangle per card, fitted the same way, for painting.
Each frame is one step (a scroll by a tenth of the view, or one wheel notch of zoom) followed by
a synchronous repaint of the whole viewport, the worst case of what Qt paints for that step.
Panning goes back and forth over the graph; zooming at Fit wheels in towards 1.0 and back out,
at 1.0 five notches either way.

NASNetMobile's Keras JSON is built once by Keras (``weights=None``, 32×32×3 input, 10 classes)
and kept under the system temp folder; only the Convas side is timed.
Run: uv run python benchmarks/bench_canvas_scale.py
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CONVAS_RECOVERY_DIR", tempfile.mkdtemp())

from PySide6.QtCore import QPointF, QRectF, QSettings  # noqa: E402
from PySide6.QtGui import QBrush, QColor, QPen  # noqa: E402
from PySide6.QtWidgets import QApplication, QGraphicsScene, QGraphicsView  # noqa: E402

from engine.design import Design  # noqa: E402
from engine.editing import SetArg  # noqa: E402
from engine.layout import design_layout, layered_positions  # noqa: E402

OPEN_GOAL_MS = 1000.0
FRAME_GOAL_MS = 33.0
EDIT_GOAL_MS = 50.0
WINDOW_SIZE = (1440, 900)
FRAMES = 40          # steps per pan or zoom series
EDITS = 21
NASNET_JSON = Path(tempfile.gettempdir()) / "convas-bench-nasnetmobile.json"
NASNET_SCRIPT = (
    "import sys, keras; from pathlib import Path; "
    "Path(sys.argv[1]).write_text(keras.applications.NASNetMobile("
    "weights=None, input_shape=(32, 32, 3), classes=10).to_json())")


def nasnet_json() -> Path:
    """The cached Keras JSON of NASNetMobile (built by Keras in a child process the first time)."""
    if not NASNET_JSON.exists():
        print(f"building {NASNET_JSON.name} with Keras (once)…", flush=True)
        partial = NASNET_JSON.with_suffix(".partial")
        subprocess.run([sys.executable, "-c", NASNET_SCRIPT, str(partial)], check=True, capture_output=True)
        partial.replace(NASNET_JSON)
    return NASNET_JSON


def residual_network(layers: int) -> Design:
    """Input, a stem convolution, then residual blocks (Conv → BN → ReLU → Conv → BN → Add →
    ReLU, the Add taking the block's input) until ``layers`` layers, then a classifier head."""
    d = Design(name=f"residual_{layers}")
    d.add("InputLayer", "input", {"shape": (32, 32, 3)})
    x = d.add("Conv2D", "stem", {"filters": 16, "kernel_size": 3, "padding": "same"}, ["input"]).name
    block = 0
    while len(d.nodes) + 7 + 2 <= layers:
        p = f"block{block}_"
        skip = x
        x = d.add("Conv2D", p + "conv1", {"filters": 16, "kernel_size": 3, "padding": "same"}, [x]).name
        x = d.add("BatchNormalization", p + "bn1", {}, [x]).name
        x = d.add("ReLU", p + "relu1", {}, [x]).name
        x = d.add("Conv2D", p + "conv2", {"filters": 16, "kernel_size": 3, "padding": "same"}, [x]).name
        x = d.add("BatchNormalization", p + "bn2", {}, [x]).name
        x = d.add("Add", p + "add", {}, [x, skip]).name
        x = d.add("ReLU", p + "out", {}, [x]).name
        block += 1
    while len(d.nodes) + 2 < layers:  # fill up to the exact count
        x = d.add("ReLU", f"pad{len(d.nodes)}", {}, [x]).name
    x = d.add("GlobalAveragePooling2D", "pool", {}, [x]).name
    d.add("Dense", "predictions", {"units": 10, "activation": "softmax"}, [x])
    return d


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def frames(view: QGraphicsView, step: Callable[[int], None], whole: bool = True) -> list[float]:
    """Time ``FRAMES`` steps, each followed by a synchronous repaint of the whole viewport
    (``whole``), or by the repaint Qt itself does for the step (scrolling moves the pixels it
    has and paints only the strip that comes into view)."""
    app = QApplication.instance()
    assert app is not None
    app.processEvents()
    times = []
    for i in range(FRAMES):
        t = time.perf_counter()
        step(i)
        if whole:
            view.viewport().repaint()
        else:
            app.processEvents()
        times.append(time.perf_counter() - t)
    return times


def triangle(i: int, amplitude: int) -> int:
    """0, 1, …, amplitude, …, 1, 0, -1, …, -amplitude, …, -1, 0, 1, … (period 4 × amplitude)."""
    phase = i % (4 * amplitude)
    if phase <= amplitude:
        return phase
    if phase <= 3 * amplitude:
        return 2 * amplitude - phase
    return phase - 4 * amplitude


def pan_steps(view: QGraphicsView) -> Callable[[int], None]:
    """Scroll by a tenth of the viewport at a time, down-right and back up-left, so that the view
    stays within half a viewport of where it started (over the graph)."""
    dx, dy = view.viewport().width() // 10, view.viewport().height() // 10

    def step(i: int) -> None:
        sign = 1 if triangle(i, 5) > triangle(i - 1, 5) else -1
        view.horizontalScrollBar().setValue(view.horizontalScrollBar().value() + sign * dx)
        view.verticalScrollBar().setValue(view.verticalScrollBar().value() + sign * dy)
    return step


def zoom_steps(view: QGraphicsView, zoom_to: Callable[[float, QPointF], None], start: float,
               notches: int) -> Callable[[int], None]:
    """One wheel notch (×1.2) per step about the viewport's centre: in ``notches`` notches from
    ``start``, back out past it by as many, and in again."""
    def step(i: int) -> None:
        anchor = view.mapToScene(view.viewport().rect().center())
        zoom_to(start * 1.2 ** triangle(i + 1, notches), QPointF(anchor))
    return step


def notches_to_readable(fit: float) -> int:
    """Wheel notches from ``fit`` to zoom 1.0 (at most a quarter of the series)."""
    return max(1, min(FRAMES // 4, round(math.log(1 / fit) / math.log(1.2))))


def plain_scene_frames(rects: list[QRectF]) -> tuple[float, float, float]:
    """Baseline: first paint, pan p95 and zoom p95 of a bare QGraphicsScene with one rectangle
    item per card (no text, no connections), in a view of the window's canvas size."""
    scene = QGraphicsScene()
    pen, brush = QPen(QColor("#c9ccd1")), QBrush(QColor("#ffffff"))
    for rect in rects:
        scene.addRect(rect, pen, brush)
    view = QGraphicsView(scene)
    view.resize(*WINDOW_SIZE)
    view.show()
    QApplication.processEvents()
    t = time.perf_counter()
    view.fitInView(scene.itemsBoundingRect())
    view.viewport().repaint()
    first = time.perf_counter() - t

    def zoom_to(zoom: float, anchor: QPointF) -> None:
        view.resetTransform()
        view.scale(zoom, zoom)
        view.centerOn(anchor)
    fit = view.transform().m11()
    pan = frames(view, pan_steps(view))
    zoom = frames(view, zoom_steps(view, zoom_to, fit, notches_to_readable(fit)))
    view.close()
    return first, p95(pan), p95(zoom)


def measure(label: str, window, open_design: Callable[[], None], layout_s: float, baseline_layout_s: float,
            edit_layer: str, edit_arg: str, values: tuple[object, object]) -> None:
    app = QApplication.instance()
    assert app is not None
    view = window.view
    t = time.perf_counter()
    open_design()
    app.processEvents()            # the window fits the new design (a queued Fit to Window)
    window.repaint()               # first paint of the whole window, canvas included
    opened = time.perf_counter() - t
    design = window.document.design
    rects = [item.sceneBoundingRect() for item in window.scene.node_items()]
    base_first, base_pan, base_zoom = plain_scene_frames(rects)
    print(f"\n{label}: {len(design.nodes)} layers, {len(window.scene.edge_items())} connections, "
          f"graph {view.content_rect().width():,.0f} × {view.content_rect().height():,.0f} scene px")
    print(f"  open + lay out + first paint  : {ms(opened)}   goal ≤ {OPEN_GOAL_MS:.0f} ms"
          f"   ({opened * 1000 / OPEN_GOAL_MS:.2f} of goal)")
    print(f"    of which lay out            : {ms(layout_s)}   plain layered_positions {ms(baseline_layout_s)}"
          f"   (× {layout_s / baseline_layout_s:.2f})")
    print(f"    plain QGraphicsScene, same rectangles, fit + paint: {ms(base_first)}"
          f"   (first paint of ours includes the whole window)")

    view.fit_to_view()
    fit = view.zoom()
    print(f"  Fit to Window zoom            : {fit:8.4f}  (every card inside the view)")
    for where, zoom in (("Fit", fit), ("1.0", 1.0)):
        view.fit_to_view()
        if zoom != fit:
            view.set_zoom(zoom)
        pan = frames(view, pan_steps(view))
        view.fit_to_view()
        if zoom != fit:
            view.set_zoom(zoom)
        pan_qt = frames(view, pan_steps(view), whole=False)
        view.fit_to_view()
        if zoom != fit:
            view.set_zoom(zoom)
        zooms = frames(view, zoom_steps(view, view.set_zoom, zoom, notches_to_readable(fit) if zoom == fit else 5))
        pan_base = f"   plain scene × {p95(pan) / base_pan:.1f}" if where == "Fit" else ""
        zoom_base = f"   plain scene × {p95(zooms) / base_zoom:.1f}" if where == "Fit" else ""
        print(f"  pan  frame p95 at {where:<4}        : {ms(p95(pan))}   goal ≤ {FRAME_GOAL_MS:.0f} ms"
              f"   (median {statistics.median(pan) * 1000:.1f} ms){pan_base}")
        print(f"    … as Qt repaints a scroll   : {ms(p95(pan_qt))}"
              f"   (median {statistics.median(pan_qt) * 1000:.1f} ms)")
        print(f"  zoom frame p95 at {where:<4}        : {ms(p95(zooms))}   goal ≤ {FRAME_GOAL_MS:.0f} ms"
              f"   (median {statistics.median(zooms) * 1000:.1f} ms){zoom_base}")
    print(f"    plain QGraphicsScene at Fit : pan p95 {ms(base_pan)}, zoom p95 {ms(base_zoom)}")

    window.scene.select_nodes([edit_layer])   # the inspector shows the edited layer, as for a user
    app.processEvents()
    edits = []
    for i in range(EDITS):
        t = time.perf_counter()
        window.document.edit(f"Set {edit_arg}", [SetArg(edit_layer, edit_arg, values[i % 2])])
        app.processEvents()
        edits.append(time.perf_counter() - t)
    print(f"  edit one argument             : {ms(statistics.median(edits))}   goal ≤ {EDIT_GOAL_MS:.0f} ms"
          f"   (median of {EDITS}; p95 {p95(edits) * 1000:.1f} ms)")


def main() -> None:
    app = QApplication.instance() or QApplication([])
    from engine.keras_import import design_from_keras_config
    from gui.document import Document
    from gui.main_window import MainWindow

    settings = QSettings(str(Path(tempfile.mkdtemp()) / "bench.ini"), QSettings.Format.IniFormat)
    window = MainWindow(Document(), settings=settings)
    window.resize(*WINDOW_SIZE)
    window.show()
    app.processEvents()
    print(f"platform {os.environ['QT_QPA_PLATFORM']}, window {WINDOW_SIZE[0]}×{WINDOW_SIZE[1]}, "
          f"canvas {window.view.viewport().width()}×{window.view.viewport().height()}")

    import json
    config = json.loads(nasnet_json().read_text())
    nasnet = design_from_keras_config(config)
    layout_s = min(_timed(lambda: design_layout(nasnet)) for _ in range(3))
    base_s = min(_timed(lambda: layered_positions(nasnet)) for _ in range(3))
    conv = next(n.name for n in nasnet.nodes.values() if n.kind == "Conv2D")

    def open_nasnet() -> None:
        window.document.reset(design_from_keras_config(json.loads(nasnet_json().read_text())))
    measure("NASNetMobile (Keras JSON), as it opens: blocks collapsed", window, open_nasnet, layout_s, base_s,
            conv, "filters", (16, 32))

    from dataclasses import replace

    from engine.layout import apply_design_layout

    def expanded(design: Design) -> Design:
        for name, group in list(design.groups.items()):
            design.groups[name] = replace(group, collapsed=False)
        apply_design_layout(design)
        return design

    every = expanded(design_from_keras_config(config))
    layout_s = min(_timed(lambda: design_layout(every)) for _ in range(3))

    def open_nasnet_expanded() -> None:  # read, grouped, every group expanded: all 771 cards
        window.document.reset(expanded(design_from_keras_config(json.loads(nasnet_json().read_text()))))
    measure("NASNetMobile (Keras JSON), every block expanded", window, open_nasnet_expanded, layout_s, base_s,
            conv, "filters", (16, 32))

    big = residual_network(1000)
    layout_s = min(_timed(lambda: design_layout(big)) for _ in range(3))
    base_s = min(_timed(lambda: layered_positions(big)) for _ in range(3))

    def open_big() -> None:
        design = big.copy()
        positions, _groups = design_layout(design)
        for name, pos in positions.items():
            design.nodes[name].position = pos
        window.document.reset(design)
    measure("1,000-layer residual network", window, open_big, layout_s, base_s, "block70_conv1", "filters", (16, 24))
    window.document.mark_saved()
    window.close()


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
