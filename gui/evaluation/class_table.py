"""Precision, recall, F1 and support of every class, in a read-only sortable table."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView, QFrame, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from engine.evaluation import Evaluation

from .tables import NumberItem

HEADERS = ("Class", "Precision", "Recall", "F1", "Support")
TIPS = ("", "Of the samples predicted as this class, the share that really are",
        "Of the samples of this class, the share the model recognised",
        "Harmonic mean of precision and recall", "Samples of this class in the evaluated split")


class ClassTable(QWidget):
    """One row per class, and the macro averages below the table."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, len(HEADERS), self)
        self.table.setHorizontalHeaderLabels(HEADERS)
        for column, tip in enumerate(TIPS):
            if tip:
                self._header_item(column).setToolTip(tip)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setFrameShape(QFrame.Shape.NoFrame)
        self.table.setWordWrap(False)
        self.table.setStyleSheet("QTableView { outline: 0; } QTableView::item { padding: 0px 8px; }"
                                 "QHeaderView::section { padding: 4px 8px; }")
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 10)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        header.setHighlightSections(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        number_width = self.fontMetrics().horizontalAdvance("Precision") + 44
        for column in range(1, len(HEADERS)):
            header.resizeSection(column, number_width)
            self._header_item(column).setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.averages = QLabel(self)
        self.averages.setWordWrap(True)
        self.averages.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.averages)
        self.averages.setContentsMargins(10, 6, 10, 8)

    def _header_item(self, column: int) -> QTableWidgetItem:
        item = self.table.horizontalHeaderItem(column)
        assert item is not None, "setHorizontalHeaderLabels made one item per column"
        return item

    def set_evaluation(self, evaluation: Evaluation | None) -> None:
        self.table.setSortingEnabled(False)  # rows are filled in place, not re-sorted mid-way
        rows = evaluation.per_class if evaluation is not None else []
        self.table.setRowCount(len(rows))
        for row, scores in enumerate(rows):
            name = QTableWidgetItem(scores.name)
            name.setToolTip(scores.name)
            self.table.setItem(row, 0, name)
            for column, value in enumerate((scores.precision, scores.recall, scores.f1), start=1):
                self.table.setItem(row, column, NumberItem(value, f"{value:.3f}"))
            self.table.setItem(row, 4, NumberItem(scores.support, f"{scores.support:,}"))
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # class order until the user sorts
        metrics = self.table.fontMetrics()
        widest = max((metrics.horizontalAdvance(s.name) for s in rows), default=0)
        self.table.horizontalHeader().resizeSection(0, max(120, min(widest + 32, 280)))
        if evaluation is None:
            self.averages.clear()
            return
        mean = evaluation.macro_average()
        self.averages.setText(f"Macro average (every class counts the same): "
                              f"precision&nbsp;<b>{mean.precision:.3f}</b> · recall&nbsp;<b>{mean.recall:.3f}</b>"
                              f" · F1&nbsp;<b>{mean.f1:.3f}</b>")

    def cell_text(self, row: int, column: int) -> str:
        item = self.table.item(row, column)
        return item.text() if item is not None else ""
