"""Render the designer window to a PNG, for the README and for looking at changes.

Run: ``uv run python -m gui.screenshot [OUT.png] [--example NAME | --open FILE] [--dark]
[--scale 2] [--train EPOCHS] [--panel train|evaluation] [--expand all|GROUP,…] [--find TEXT]
[--no-overview]``.
Works without a display (offscreen) or under Xvfb.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", nargs="?", default="resources/screenshot.png")
    parser.add_argument("--example", default="resnet_block")
    parser.add_argument("--select", default=None, help="layer to select (shown in the inspector)")
    parser.add_argument("--dark", action="store_true", help="render with a dark palette")
    parser.add_argument("--scale", type=float, default=1.0, help="device pixel ratio (e.g. 2 for 200 %)")
    parser.add_argument("--size", default="1440x900")
    parser.add_argument("--train", type=int, default=0, metavar="EPOCHS",
                        help="train the design on its data for EPOCHS first (imports TensorFlow)")
    parser.add_argument("--panel", choices=("train", "evaluation"), default=None,
                        help="bring this bottom panel to the front")
    parser.add_argument("--open", default=None, metavar="FILE",
                        help="open this design file (.convas, .keras, .json) instead of an example")
    parser.add_argument("--expand", default=None, metavar="all|GROUP,…",
                        help="expand every group, or the named ones, before the picture")
    parser.add_argument("--find", default=None, metavar="TEXT",
                        help="type TEXT into Find (Ctrl+F) and go to the first match")
    parser.add_argument("--no-overview", action="store_true", help="hide the overview minimap")
    args = parser.parse_args(argv)

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("CONVAS_RECOVERY_DIR", tempfile.mkdtemp())
    if args.scale != 1.0:
        os.environ["QT_SCALE_FACTOR"] = str(args.scale)
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    QApplication.setStyle("Fusion")
    from engine.examples import load_example

    from .document import Document
    from .main_window import MainWindow

    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    from .theme import THEME_KEY, Theme

    settings.setValue(THEME_KEY, (Theme.DARK if args.dark else Theme.LIGHT).value)  # the window applies it
    window = MainWindow(Document(load_example(args.example)), settings=settings)
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.show()
    app.processEvents()
    if args.open:
        if not window.open_path(Path(args.open), ask=False):
            return 1
        app.processEvents()
    if args.no_overview:
        window.act_overview.trigger()  # it starts checked (fresh settings)
    if args.expand:
        design = window.document.design
        names = list(design.groups) if args.expand == "all" else args.expand.split(",")
        from engine.grouping import plan_collapse
        window.document.edit("Expand", plan_collapse(design, names, False))
        app.processEvents()
    window.view.fit_to_view()
    selected = args.select or next(iter(n for n in window.document.design.nodes
                                        if window.document.design.nodes[n].kind.startswith("Conv")), None)
    if args.find:
        window.act_find.trigger()
        app.processEvents()
        bar = window.view.find_bar
        bar.field.setText(args.find)
        bar.find_next()
    elif selected:
        window.scene.select_nodes([selected])
    for _ in range(3):
        app.processEvents()
    if args.train or args.panel:
        window.show_training_panel()
        panel = window.train_panel
        _wait(app, lambda: panel.dataset is not None or bool(panel.session.problems), 120)
    if args.train:
        panel.form.epochs_spin.setValue(args.train)
        panel.start()
        _wait(app, lambda: panel.state == "idle" and panel.result is not None, 1800)
        from .workers import running
        _wait(app, lambda: running() == 0, 300)
    if args.panel == "evaluation":
        window._docks["Evaluation"].raise_()
    _wait(app, lambda: False, 0.5)  # let everything paint
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(out))
    print(out)
    window.document.mark_saved()
    window.close()
    return 0


def _wait(app, condition, timeout_s: float) -> None:
    """Process events until ``condition()`` holds, or ``timeout_s`` has passed."""
    import time
    end = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


if __name__ == "__main__":
    sys.exit(main())
