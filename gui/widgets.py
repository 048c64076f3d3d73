"""Small widgets and label styles that several panels share (inspector, Train panel, Problems).

Only presentation lives here: a spin box that ignores the wheel unless focused, a number spin
box that shows values as written, a one-line label that elides, section titles and muted labels.
"""

from __future__ import annotations

import math
import re

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPainter, QPaintEvent, QValidator, QWheelEvent
from PySide6.QtWidgets import QDoubleSpinBox, QFrame, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

_NUMBER_PREFIX = re.compile(r"[+-]?(\d*\.?\d*)([eE][+-]?\d*)?")


class NoWheelMixin:
    """Scrolling a form must not change the value under the mouse: the wheel only edits a field
    that has keyboard focus. Mix in before the Qt class: ``class Spin(NoWheelMixin, QSpinBox)``."""

    def wheelEvent(self, event: QWheelEvent) -> None:
        if not self.hasFocus():  # type: ignore[attr-defined]
            event.ignore()
            return
        super().wheelEvent(event)  # type: ignore[misc]


class SteppingMixin:
    """A spin box that knows when its value is being stepped (an arrow key, the wheel, its
    buttons) rather than typed: quick steps merge into one undo step, a typed value never does.
    Mix in before the Qt class: ``class Spin(SteppingMixin, NoWheelMixin, QSpinBox)``."""

    stepping = False  # True while a step changes the value

    def stepBy(self, steps: int) -> None:
        self.stepping = True
        try:
            super().stepBy(steps)  # type: ignore[misc]
        finally:
            self.stepping = False


class NumberSpinBox(NoWheelMixin, QDoubleSpinBox):
    """A float spin box that shows values as written (0.001, 1e-05), accepts scientific
    notation, and calls text outside ``[floor, maximum]`` unfinished rather than valid.

    ``floor`` is the smallest real value; an optional field keeps one step below it for its
    special value text ("None"), which :meth:`special_text_matches` recognises."""

    def __init__(self, lo: float, hi: float, digits: int = 10, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.floor = lo
        self._digits = digits
        self.setDecimals(12)
        self.setRange(lo, hi)
        self.setKeyboardTracking(False)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def special_text_matches(self, text: str) -> bool:
        special = self.specialValueText()
        return bool(special) and text.strip().lower() == special.lower()

    def textFromValue(self, value: float) -> str:
        return f"{value:.{self._digits}g}"

    def valueFromText(self, text: str) -> float:
        if self.special_text_matches(text):
            return self.minimum()
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> QValidator.State:  # type: ignore[override]  # PySide accepts a bare State
        stripped = text.strip()
        special = self.specialValueText().lower()
        if self.special_text_matches(stripped):
            return QValidator.State.Acceptable
        if special and stripped and special.startswith(stripped.lower()):
            return QValidator.State.Intermediate
        try:
            value = float(stripped)
        except ValueError:
            # A number being typed ("", "-", "1e", "2.") may still become valid.
            return QValidator.State.Intermediate if _NUMBER_PREFIX.fullmatch(stripped) \
                else QValidator.State.Invalid
        if not math.isfinite(value) or not self.floor <= value <= self.maximum():
            return QValidator.State.Intermediate
        return QValidator.State.Acceptable


class ElidedLabel(QLabel):
    """One line of plain text that shortens with "…" instead of widening its panel; the full
    text is its tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.hide()

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)
        self.setVisible(bool(text))  # an empty line takes no room

    def clear(self) -> None:
        self.setText("")

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(rect, int(self.alignment() | Qt.AlignmentFlag.AlignVCenter), text)


def mute(label: QLabel) -> QLabel:
    """Secondary text in the palette's placeholder colour (readable in light and dark themes)."""
    label.setStyleSheet("color: palette(placeholder-text);")
    return label


def settings_column(owner: QWidget, sections: list[tuple[str, QWidget]]) -> QScrollArea:
    """The settings column at the left of a bottom panel (Train, Sweep): each widget under its
    :func:`section_title`, top-aligned, in a frameless scroll area of the column's natural width
    when there is room, and narrower (scrolling) on a small screen."""
    column_widget = QWidget()
    column = QVBoxLayout(column_widget)
    column.setContentsMargins(10, 2, 10, 8)
    column.setSpacing(4)
    for title, widget in sections:
        column.addWidget(section_title(title, column_widget))
        column.addWidget(widget)
    column.addStretch(1)
    scroll = QScrollArea(owner)
    scroll.setWidget(column_widget)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    width = max(column_widget.sizeHint().width(), 400) + scroll.verticalScrollBar().sizeHint().width()
    scroll.setMaximumWidth(width)
    scroll.setMinimumWidth(min(width, 240))
    return scroll


def section_title(title: str, parent: QWidget) -> QLabel:
    """A small, bold, muted upper-case heading over a group of fields."""
    label = QLabel(title.upper(), parent)
    font = QFont(label.font())
    font.setBold(True)
    font.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
    font.setLetterSpacing(QFont.SpacingType.PercentageSpacing, 108)
    label.setFont(font)
    mute(label)
    label.setContentsMargins(0, 10, 0, 2)
    return label


def sentence(text: str) -> str:
    """``text`` with a capital first letter and a final full stop."""
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
