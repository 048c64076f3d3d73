"""Undo and Redo reach the design from every panel.

Qt text fields claim Ctrl+Z for their own text history even when there is nothing to revert,
so after typing a value and pressing Enter, Edit → Undo's shortcut would never fire while the
field keeps focus. :class:`UndoShortcutRouter` watches the application's shortcut overrides:
a field whose text differs from its committed value keeps Ctrl+Z (it reverts its own text
first, as Qt editors do); everywhere else in the window the shortcut goes to the window's
Undo/Redo actions.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox, QApplication, QDoubleSpinBox, QLineEdit, QPlainTextEdit, QSpinBox, QTextEdit,
    QWidget,
)

_UNDO_KEYS = (QKeySequence.StandardKey.Undo, QKeySequence.StandardKey.Redo)


def _spin_box_of(widget: QWidget) -> QAbstractSpinBox | None:
    if isinstance(widget, QAbstractSpinBox):
        return widget
    parent = widget.parentWidget()
    if isinstance(widget, QLineEdit) and isinstance(parent, QAbstractSpinBox):
        return parent
    return None


def committed_text(spin: QAbstractSpinBox) -> str | None:
    """What a spin box shows for its current value (None for kinds it cannot tell)."""
    # Two branches with the same call: one isinstance per class lets mypy pair value() (int or
    # float) with that class's textFromValue.
    if isinstance(spin, QSpinBox):  # noqa: SIM114
        at_minimum, text = spin.value() == spin.minimum(), spin.textFromValue(spin.value())
    elif isinstance(spin, QDoubleSpinBox):
        at_minimum, text = spin.value() == spin.minimum(), spin.textFromValue(spin.value())
    else:
        return None
    if spin.specialValueText() and at_minimum:
        return spin.specialValueText()
    return spin.prefix() + text + spin.suffix()


def has_uncommitted_text(widget: QWidget | None) -> bool:
    """True when ``widget`` is a text field whose text differs from the value it committed:
    a spin box showing text other than its value, or a line edit changed since its text was
    last set (``QLineEdit.isModified``; owners reset it with ``setModified(False)`` on commit)."""
    if widget is None:
        return False
    spin = _spin_box_of(widget)
    if spin is not None:
        shown = committed_text(spin)
        return shown is not None and spin.lineEdit().displayText() != shown
    if isinstance(widget, QLineEdit):
        return not widget.isReadOnly() and widget.isModified()
    if isinstance(widget, (QPlainTextEdit, QTextEdit)):
        return not widget.isReadOnly() and widget.document().isUndoAvailable()
    return False


class UndoShortcutRouter(QObject):
    """Installed on the application for one window: Undo/Redo keys pressed anywhere in
    ``window`` fire its actions unless the focused field has uncommitted text."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self._window = window

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.ShortcutOverride:
            return False
        assert isinstance(event, QKeyEvent)
        if not any(event.matches(key) for key in _UNDO_KEYS):
            return False
        focus = QApplication.focusWidget()
        if focus is None or focus.window() is not self._window or has_uncommitted_text(focus):
            return False
        event.ignore()  # not overridden: the window's shortcut fires
        return True
