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

from PySide6.QtCore import QCoreApplication, QObject, QSettings, QSize, QStandardPaths, Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from engine.app_identity import APP_ID, APP_NAME, APP_VERSION, ICON_SIZES, ORGANIZATION, ORGANIZATION_DOMAIN, icon_png
from engine.internal_error import LOG_NAME, report

from . import single_instance


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


def app_icon() -> QIcon:
    """The application icon at every drawn size up to 512 px (the files are read when a size
    is first drawn); empty when the icon files are missing."""
    icon = QIcon()
    for size in ICON_SIZES:
        path = icon_png(size)
        if size <= 512 and path.is_file():
            icon.addFile(str(path), QSize(size, size))
    return icon


def identify(app: QApplication) -> None:
    """Tell Qt, and through it the desktop, who this application is: name and version (About,
    QSettings and QStandardPaths folders), the window icon, and on Linux the desktop entry's
    name, which Wayland and the task bars use to match windows to their entry and icon."""
    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setOrganizationDomain(ORGANIZATION_DOMAIN)  # macOS names the settings file after it
    QCoreApplication.setApplicationName(APP_NAME)
    QCoreApplication.setApplicationVersion(APP_VERSION)
    if sys.platform not in ("win32", "darwin"):
        QGuiApplication.setDesktopFileName(APP_ID)
    app.setWindowIcon(app_icon())


def files_in(argv: list[str]) -> list[str]:
    return [a for a in argv if not a.startswith("-")]


def run(argv: list[str]) -> int:
    from engine.quiet_tf import quiet_tensorflow

    quiet_tensorflow()  # before any worker imports TensorFlow (training, evaluation, export)
    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APP_NAME)
    QApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    assert isinstance(app, QApplication)
    identify(app)
    QApplication.setStyle("Fusion")  # the same crisp look on every platform; follows the system's light/dark scheme
    debug = "--debug" in argv
    files = files_in(argv)
    quit_when_shown = bool(os.environ.get("CONVAS_QUIT_WHEN_SHOWN"))
    server = None
    # A start that only measures or smoke-tests the window stays independent of a running Convas.
    if single_instance.wanted(argv) and not quit_when_shown:
        name = single_instance.server_name(QSettings(ORGANIZATION, APP_NAME).fileName())
        if files and single_instance.forward(name, files) is single_instance.ForwardResult.FORWARDED:
            return 0  # the running Convas opens them
        server = single_instance.InstanceServer(name, parent=app)
        server.listen()  # False: another Convas listens already; this window is an independent one
    reporter = ErrorReporter(log_path(), debug, parent=app)
    try:
        from .main_window import MainWindow

        window = MainWindow()
        window.show()
    except Exception as exc:  # noqa: BLE001 - no window to show a dialog in: say it on stderr
        print(f"convas: cannot start the window: {report(exc, debug=debug, log=reporter.log)}", file=sys.stderr)
        return 1
    reporter.install()
    if quit_when_shown:
        # Used by benchmarks/bench_gui.py to time "start to visible window": paint once, then leave.
        app.processEvents()
        window.repaint()
        return 0
    requests = single_instance.OpenRequests(window, parent=app)
    if server is not None:
        server.sigOpenRequested.connect(requests.request)
    file_events = single_instance.FileOpenEvents(app)  # macOS: Finder's double-click, also at start
    file_events.sigOpenRequested.connect(requests.request)
    app.installEventFilter(file_events)
    if files:
        window.open_path(Path(files[0]), ask=False)
        for extra in files[1:]:  # one design per window: each further file in a window of its own
            single_instance.start_new_window(extra)
    else:
        window.offer_recovery()
    try:
        return app.exec()
    finally:
        app.removeEventFilter(file_events)
        if server is not None:
            server.close()
        reporter.uninstall()
