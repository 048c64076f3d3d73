"""The window's guard of last resort (gui/app.py's ErrorReporter): an exception a slot or a
thread raised and nothing caught is logged with its traceback and shown in one non-modal
dialog; more errors are counted in it, and an error while reporting is never reported again."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox

from gui.app import ErrorReporter

TIMEOUT_MS = 5000


def _raised(exc: Exception) -> Exception:
    try:
        raise exc
    except Exception as caught:  # noqa: BLE001 - to give it a traceback
        return caught


@pytest.fixture
def reporter(qtbot, tmp_path: Path):
    reporter = ErrorReporter(tmp_path / "convas.log")
    yield reporter
    reporter.uninstall()
    if reporter.box is not None:
        reporter.box.close()


def _report(reporter: ErrorReporter, exc: Exception) -> None:
    reporter.excepthook(type(exc), exc, exc.__traceback__)


def test_an_error_is_logged_and_shown_without_blocking(reporter, tmp_path: Path):
    _report(reporter, _raised(ValueError("boom")))  # returns at once: no nested event loop
    box = reporter.box
    assert box is not None and box.isVisible() and not box.isModal()
    assert box.text() == ("Internal error: ValueError: boom; please report it, with the traceback from "
                          f"{tmp_path / 'convas.log'}")
    assert "Traceback (most recent call last)" in box.detailedText()
    assert "ValueError: boom" in (tmp_path / "convas.log").read_text(encoding="utf-8")


def test_more_errors_are_counted_in_the_open_dialog(reporter, tmp_path: Path, qtbot):
    _report(reporter, _raised(ValueError("first")))
    first = reporter.box
    _report(reporter, _raised(KeyError("second")))
    _report(reporter, _raised(KeyError("third")))
    assert reporter.box is first and first is not None and "2 more internal error(s)" in first.informativeText()
    assert "KeyError: 'third'" in (tmp_path / "convas.log").read_text(encoding="utf-8")
    first.close()
    qtbot.waitUntil(lambda: reporter.box is None, timeout=TIMEOUT_MS)
    _report(reporter, _raised(ValueError("after")))
    assert reporter.box is not None and reporter.box is not first and "after" in reporter.box.text()


def test_an_error_while_showing_one_is_not_reported_again(reporter, monkeypatch, capsys):
    """Installed as the hook, so that a second report would have to come through it."""
    calls = []

    def broken(self, *args):
        calls.append(args)
        raise RuntimeError("the dialog itself failed")

    monkeypatch.setattr(QMessageBox, "setDetailedText", broken)
    reporter.install()
    _report(reporter, _raised(ValueError("boom")))
    reporter.uninstall()
    assert len(calls) == 1 and reporter.box is None
    assert "the dialog itself failed" in capsys.readouterr().err


def test_an_error_inside_the_hook_falls_back_to_stderr(reporter, monkeypatch, capsys):
    def broken_report(*args, **kwargs):
        raise OSError("the log folder vanished")

    monkeypatch.setattr("gui.app.report", broken_report)
    _report(reporter, _raised(ValueError("boom")))
    err = capsys.readouterr().err
    assert "the log folder vanished" in err and "ValueError: boom" in err and reporter.box is None


def test_a_slot_that_raises_reaches_the_dialog(reporter, qtbot):
    """Installed as sys.excepthook, as gui.app.run does: PySide6 hands it what a slot raised."""
    reporter.install()
    assert sys.excepthook == reporter.excepthook
    QTimer.singleShot(0, lambda: _bug("in a slot"))
    qtbot.waitUntil(lambda: reporter.box is not None, timeout=TIMEOUT_MS)
    reporter.uninstall()
    assert reporter.box is not None and "ZeroDivisionError: in a slot" in reporter.box.text()


def test_a_thread_that_raises_reaches_the_dialog_on_the_gui_thread(reporter, qtbot):
    reporter.install()
    thread = threading.Thread(target=_bug, args=("in a thread",))
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: reporter.box is not None, timeout=TIMEOUT_MS)  # queued to this thread
    reporter.uninstall()
    assert reporter.box is not None and "ZeroDivisionError: in a thread" in reporter.box.text()


def _bug(where: str) -> None:
    raise ZeroDivisionError(where)


def test_keyboard_interrupt_keeps_its_usual_meaning(reporter, monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "__excepthook__", lambda *args: seen.append(args[0]))
    reporter.excepthook(KeyboardInterrupt, KeyboardInterrupt(), None)
    assert seen == [KeyboardInterrupt] and reporter.box is None
