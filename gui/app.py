"""Start the designer: a QApplication, the main window on the seed CNN (or a file), shown."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtWidgets import QApplication


def run(argv: list[str]) -> int:
    from engine.quiet_tf import quiet_tensorflow

    quiet_tensorflow()  # before any worker imports TensorFlow (training, evaluation, export)
    QCoreApplication.setOrganizationName("Convas")
    QCoreApplication.setApplicationName("Convas")
    QApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    QApplication.setStyle("Fusion")  # the same crisp look on every platform; follows the system's light/dark scheme
    from .main_window import MainWindow

    window = MainWindow()
    window.show()
    if os.environ.get("CONVAS_QUIT_WHEN_SHOWN"):
        # Used by benchmarks/bench_gui.py to time "start to visible window": paint once, then leave.
        app.processEvents()
        window.repaint()
        return 0
    files = [a for a in argv if not a.startswith("-")]
    if files:
        window.open_path(Path(files[0]), ask=False)
    else:
        window.offer_recovery()
    return app.exec()
