"""The Problems panel: every problem of the design, one row each, and the status-bar count that
opens it.

Rows mirror ``document.analysis.problems``: the layer's problems and those of the design as a
whole (no InputLayer, a cycle), which belong to no layer. Clicking a row names its layer through
:attr:`ProblemsWidget.sigNodeClicked`; the window selects and centres it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import (
    QAbstractItemView, QHeaderView, QLabel, QStackedLayout, QStyle, QTreeWidget, QTreeWidgetItem,
    QWidget,
)

from engine.analysis import Problem, Severity

from .document import Document
from .widgets import mute

DESIGN_LABEL = "(design)"   # the layer column of a problem that belongs to no layer
NODE_ROLE = Qt.ItemDataRole.UserRole


class ProblemsWidget(QWidget):
    """A table of the design's problems: severity icon, layer, message."""

    sigNodeClicked = Signal(str)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self._shown: tuple = ()
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Layer", "Problem"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(False)
        self.tree.setWordWrap(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.header().setStretchLastSection(True)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemClicked.connect(self._on_clicked)
        self.tree.itemActivated.connect(self._on_clicked)
        self.empty_label = mute(QLabel("No problems: the design is valid.", self))
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._stack = QStackedLayout(self)
        self._stack.addWidget(self.empty_label)
        self._stack.addWidget(self.tree)
        document.analysed.connect(self.refresh)
        self.refresh()

    def row_count(self) -> int:
        return self.tree.topLevelItemCount()

    def row(self, index: int) -> QTreeWidgetItem:
        item = self.tree.topLevelItem(index)
        if item is None:
            raise IndexError(index)
        return item

    def refresh(self) -> None:
        problems = self.document.analysis.problems
        key = tuple((p.node, p.message, p.severity) for p in problems)
        if key == self._shown:
            return
        self._shown = key
        self.tree.clear()
        style = self.style()
        icons = {"error": style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical),
                 "warning": style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)}
        for problem in problems:
            self.tree.addTopLevelItem(_problem_item(problem, icons))
        self._stack.setCurrentWidget(self.tree if problems else self.empty_label)

    def _on_clicked(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        node = item.data(0, NODE_ROLE)
        if node:
            self.sigNodeClicked.emit(node)


def _problem_item(problem: Problem, icons: dict) -> QTreeWidgetItem:
    word = "Error" if problem.severity == Severity.ERROR else "Warning"
    item = QTreeWidgetItem([problem.node or DESIGN_LABEL, problem.message])
    item.setIcon(0, icons.get(problem.severity, icons["warning"]))
    item.setData(0, NODE_ROLE, problem.node)
    item.setToolTip(0, word)
    item.setToolTip(1, f"{word}: {problem.message}")
    return item


class ProblemCountLabel(QLabel):
    """The status bar's "N problems" text; a click opens the Problems panel."""

    sigClicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("List every problem of the design (Problems panel)")

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(event.position().toPoint()):
            self.sigClicked.emit()
        super().mouseReleaseEvent(event)
