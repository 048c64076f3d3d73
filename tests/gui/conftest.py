"""Fixtures for GUI tests: a designer window with its own settings and recovery folder."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PySide6.QtCore import QEventLoop, QSettings
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

if TYPE_CHECKING:
    from gui.main_window import MainWindow

CLOSE_TIMEOUT_S = 60


@pytest.fixture(autouse=True)
def empty_clipboard_after_test(qapp):
    """The offscreen platform crashes at exit while freeing clipboard data a test left behind."""
    yield
    QGuiApplication.clipboard().clear()


def close_without_prompts(win: MainWindow) -> None:
    """Teardown closes the window: end any training run (and the evaluation a finished run
    started, while events flow) and skip the unsaved-changes question."""
    from gui.workers import running

    assert win.train_panel.stop_and_wait(CLOSE_TIMEOUT_S)
    deadline = time.monotonic() + CLOSE_TIMEOUT_S
    while running() and time.monotonic() < deadline:
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    win.document.mark_saved()


@pytest.fixture
def new_window(qtbot, tmp_path: Path) -> Callable[..., MainWindow]:
    """Make a designer window on the seed CNN, as Convas starts, with its own settings file and
    recovery folder under ``tmp_path`` (pass the same ``recovery`` to play a restart after a
    crash); it is closed without prompts at teardown."""
    from engine.examples import seed_design
    from gui.document import Document
    from gui.main_window import MainWindow

    def make(settings: str = "settings.ini", recovery: str = "recovery") -> MainWindow:
        stored = QSettings(str(tmp_path / settings), QSettings.Format.IniFormat)
        win = MainWindow(Document(seed_design()), settings=stored, autosave_dir=tmp_path / recovery)
        qtbot.addWidget(win, before_close_func=close_without_prompts)
        return win

    return make


@pytest.fixture
def window(new_window, qtbot) -> MainWindow:
    """The designer window on the seed CNN, shown and active."""
    win = new_window()
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    return win


@pytest.fixture
def panel(window, qtbot):
    """The Train panel, shown through the Train menu, with the digits loaded (modules whose
    panel is another one define their own)."""
    window.act_show_training.trigger()
    panel = window.train_panel
    qtbot.waitUntil(lambda: panel.dataset is not None, timeout=60_000)
    return panel
