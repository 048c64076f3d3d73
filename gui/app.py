"""Start the designer: a QApplication, the main window on the seed CNN (or a file), shown; and the
window's guard of last resort, :class:`ErrorReporter`, for exceptions nothing else caught."""

from __future__ import annotations

import os
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QStandardPaths, Qt, Signal, Slot
from PySide6.QtWidgets import QApplication, QMessageBox

from engine.internal_error import LOG_NAME, report


def log_path() -> Path | None:
    """The window's log of internal errors: ``convas.log`` in the platform's cache location
    (Qt's ``CacheLocation``, e.g. ``~/.cache/Convas/Convas`` on Linux), or in
    ``$CONVAS_CACHE_DIR`` when that is set."""
    if os.environ.get("CONVAS_CACHE_DIR"):
        return Path(os.environ["CONVAS_CACHE_DIR"]) / LOG_NAME
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.CacheLocation)
    return Path(base) / LOG_NAME if base else None


class ErrorReporter(QObject):
    """``sys.excepthook`` and ``threading.excepthook`` for the window: an exception that a slot,
    a virtual method or a thread raised and nothing caught (a bug) is logged with its traceback
    (:func:`engine.internal_error.report`; also on stderr with ``--debug``) and a dialog says
    "internal error: …; please report it" and where the traceback is.

    The dialog is shown without a nested event loop (``show()``, never ``exec()``), so it may
    appear from inside any slot and from other threads (the signal queues it to the GUI thread).
    While it is open, further errors are only counted in it; an error raised while one is being
    reported goes to stderr and is never reported again (no recursion)."""

    sigReported = Signal(str, str)  # the one-line message, the traceback

    def __init__(self, log: Path | None, debug: bool = False, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.log, self.debug = log, debug
        self.box: QMessageBox | None = None
        self.more = 0                      # errors reported while the dialog was open
        self._local = threading.local()    # per thread: "reporting now", to refuse recursion
        self._showing = False
        self._previous: tuple[Any, Any] | None = None
        self.sigReported.connect(self._show)

    def install(self) -> None:
        self._previous = (sys.excepthook, threading.excepthook)
        sys.excepthook = self.excepthook
        threading.excepthook = self._thread_excepthook

    def uninstall(self) -> None:
        if self._previous is not None:
            sys.excepthook, threading.excepthook = self._previous
            self._previous = None

    def excepthook(self, kind: type[BaseException], value: BaseException | None,
                   tb: TracebackType | None) -> None:
        if not issubclass(kind, Exception) or getattr(self._local, "reporting", False):
            sys.__excepthook__(kind, value if value is not None else kind(), tb)
            return
        self._local.reporting = True
        try:
            exc = value if value is not None else kind()
            if exc.__traceback__ is None and tb is not None:
                exc = exc.with_traceback(tb)
            message = report(exc, debug=self.debug, log=self.log)
            self.sigReported.emit(message, "".join(traceback.format_exception(kind, exc, tb)))
        except Exception:  # noqa: BLE001 - reporting failed: say both on stderr, nothing more
            traceback.print_exc()
            sys.__excepthook__(kind, value if value is not None else kind(), tb)
        finally:
            self._local.reporting = False

    def _thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        self.excepthook(args.exc_type, args.exc_value, args.exc_traceback)

    @Slot(str, str)
    def _show(self, message: str, details: str) -> None:
        if self._showing:
            return
        self._showing = True
        try:
            if self.box is not None and self.box.isVisible():
                self.more += 1
                self.box.setInformativeText(f"{self.more} more internal error(s) since; the log has each.")
                return
            self.more = 0
            box = QMessageBox(QMessageBox.Icon.Critical, "Convas: internal error", message[:1].upper() + message[1:],
                              QMessageBox.StandardButton.Close, QApplication.activeWindow())
            box.setInformativeText("The window is still running, but may be in an odd state: save your "
                                   "work under a new name.")
            box.setDetailedText(details)
            box.setWindowModality(Qt.WindowModality.NonModal)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.finished.connect(self._closed)
            box.show()
            self.box = box
        except Exception:  # noqa: BLE001 - never report a failure to report
            traceback.print_exc()
        finally:
            self._showing = False

    @Slot()
    def _closed(self) -> None:
        self.box = None


def run(argv: list[str]) -> int:
    from engine.quiet_tf import quiet_tensorflow

    quiet_tensorflow()  # before any worker imports TensorFlow (training, evaluation, export)
    QCoreApplication.setOrganizationName("Convas")
    QCoreApplication.setApplicationName("Convas")
    QApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    QApplication.setStyle("Fusion")  # the same crisp look on every platform; follows the system's light/dark scheme
    debug = "--debug" in argv
    reporter = ErrorReporter(log_path(), debug, parent=app)
    try:
        from .main_window import MainWindow

        window = MainWindow()
        window.show()
    except Exception as exc:  # noqa: BLE001 - no window to show a dialog in: say it on stderr
        print(f"convas: cannot start the window: {report(exc, debug=debug, log=reporter.log)}", file=sys.stderr)
        return 1
    reporter.install()
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
    try:
        return app.exec()
    finally:
        reporter.uninstall()
