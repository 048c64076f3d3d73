"""Designer speed: start to visible window, one argument edit and opening, on 300 layers.

Goals (issue 3): start ≤ 0.25 × `python -c "import tensorflow"` (same run); editing one argument
in a 300-layer design updates canvas and summary in ≤ 50 ms; opening it ≤ 1 s.
Run: uv run python benchmarks/bench_gui.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CONVAS_RECOVERY_DIR", tempfile.mkdtemp())

from bench_analysis import conv_stack  # noqa: E402

from _timing import median_process  # noqa: E402


def startup() -> None:
    env = dict(os.environ, CONVAS_QUIT_WHEN_SHOWN="1")
    py = sys.executable
    median_process([py, "-c", "import tensorflow"], repeat=1, env=env)
    median_process([py, str(ROOT / "main.py")], repeat=1, env=env, cwd=str(ROOT))
    tf = median_process([py, "-c", "import tensorflow"], repeat=5, env=env)
    app = median_process([py, str(ROOT / "main.py")], repeat=7, env=env, cwd=str(ROOT))
    platform = os.environ["QT_QPA_PLATFORM"]
    print(f"start to visible window        : {app * 1000:8.1f} ms (median of 7, platform {platform})")
    print(f"python -c 'import tensorflow'  : {tf * 1000:8.1f} ms (median of 5)")
    print(f"ratio                          : {app / tf:8.3f}  (goal ≤ 0.25)")


def editing() -> None:
    from PySide6.QtWidgets import QApplication

    from engine.editing import SetArg
    from engine.layout import apply_layout
    from engine.project_file import save_project
    from gui.document import Document
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    design = conv_stack(300)
    apply_layout(design)
    path = Path(tempfile.mkdtemp()) / "stack300.convas"
    save_project(path, design)

    window = MainWindow(Document(design))
    window.show()
    app.processEvents()
    conv = next(n for n in design.nodes.values() if n.kind == "Conv2D")
    window.scene.select_nodes([conv.name])  # the inspector shows the edited node, as for a user
    app.processEvents()
    times = []
    for i in range(40):
        t = time.perf_counter()
        window.document.edit("Set filters", [SetArg(conv.name, "filters", 8 + (i % 2) * 8)])
        app.processEvents()
        times.append(time.perf_counter() - t)
    edit = statistics.median(times)
    opens = []
    for _ in range(5):
        t = time.perf_counter()
        window.open_path(path, ask=False)
        app.processEvents()
        opens.append(time.perf_counter() - t)
        window.document.mark_saved()
    print(f"edit one argument, 300 layers  : {edit * 1000:8.1f} ms median of 40 (p90 "
          f"{sorted(times)[int(0.9 * len(times))] * 1000:.1f} ms; goal ≤ 50 ms)")
    print(f"open a 300-layer design        : {statistics.median(opens) * 1000:8.1f} ms median of 5 (goal ≤ 1000 ms)")
    window.document.mark_saved()
    window.close()


if __name__ == "__main__":
    startup()
    editing()
