"""What GUI tests do as a user would: pick a menu item, type into a field and press Enter."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QWidget


def menu_action(win: QMainWindow, menu_title: str, text: str) -> QAction:
    """The action of ``menu_title → text`` in ``win``'s menu bar (``text`` may omit "…")."""
    for top in win.menuBar().actions():
        if top.text().replace("&", "") == menu_title:
            for action in top.menu().actions():
                if action.text().replace("&", "").rstrip("…").startswith(text):
                    return action
    raise AssertionError(f"no {menu_title} → {text}")


def select_all_and_type(qtbot, widget: QWidget, text: str) -> None:
    """Ctrl+A, type ``text``, Enter: replacing a field's value as a person does."""
    qtbot.keyClick(widget, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key.Key_Return)
