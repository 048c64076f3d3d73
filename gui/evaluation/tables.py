"""Read-only, sortable tables of scores: one row per class, label or target."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QFrame, QHeaderView, QTableWidget, QTableWidgetItem, QWidget


class NumberItem(QTableWidgetItem):
    """A cell that shows formatted text but sorts by its number (NaN sorts first)."""

    def __init__(self, value: float, text: str) -> None:
        super().__init__(text)
        self.value = value
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, NumberItem):
            mine = self.value if self.value == self.value else float("-inf")
            theirs = other.value if other.value == other.value else float("-inf")
            return mine < theirs
        return super().__lt__(other)


NAME_ROLE = Qt.ItemDataRole.UserRole  # the row's index in the rows given (survives sorting)


class ScoreTable(QTableWidget):
    """A name column and number columns; :meth:`set_rows` fills it, in the given order until the
    user sorts by a column."""

    def __init__(self, headers: Sequence[str], tips: Sequence[str] = (), parent: QWidget | None = None) -> None:
        super().__init__(0, len(headers), parent)
        self.setHorizontalHeaderLabels(list(headers))
        for column, tip in enumerate(tips):
            item = self.horizontalHeaderItem(column)
            if tip and item is not None:
                item.setToolTip(tip)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWordWrap(False)
        self.setStyleSheet("QTableView { outline: 0; } QTableView::item { padding: 0px 8px; }"
                           "QHeaderView::section { padding: 4px 8px; }")
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 10)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        header.setHighlightSections(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        number_width = self.fontMetrics().horizontalAdvance("Precision") + 44
        for column in range(1, len(headers)):
            header.resizeSection(column, number_width)
            item = self.horizontalHeaderItem(column)
            if item is not None:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def set_rows(self, rows: Sequence[tuple[str, Sequence[tuple[float, str]]]], keep_order: bool = False) -> None:
        """``rows`` of (name, [(value, text) per number column]). ``keep_order`` keeps the
        user's sorting (a refresh of the same rows); otherwise the rows' own order shows."""
        header = self.horizontalHeader()
        column = header.sortIndicatorSection()
        self.setSortingEnabled(False)
        self.setRowCount(len(rows))
        for row, (name, numbers) in enumerate(rows):
            item = QTableWidgetItem(name)
            item.setToolTip(name)
            item.setData(NAME_ROLE, row)
            self.setItem(row, 0, item)
            for col, (value, text) in enumerate(numbers, start=1):
                self.setItem(row, col, NumberItem(value, text))
        if not (keep_order and 0 <= column < self.columnCount()):
            header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # the rows' order until the user sorts
        self.setSortingEnabled(True)
        widest = max((self.fontMetrics().horizontalAdvance(name) for name, _ in rows), default=0)
        header.resizeSection(0, max(120, min(widest + 32, 280)))

    def natural_width(self) -> int:
        """The width that shows every column without scrolling."""
        header = self.horizontalHeader()
        return sum(header.sectionSize(c) for c in range(self.columnCount())) + 2 * self.frameWidth() + 4

    def fit_height(self, most_rows: int = 12) -> None:
        """No taller than its rows (up to ``most_rows``; more scroll), so what follows sits below."""
        rows = min(self.rowCount(), most_rows)
        self.setMaximumHeight(self.horizontalHeader().sizeHint().height()
                              + self.verticalHeader().defaultSectionSize() * rows + 2 * self.frameWidth() + 2)

    def text(self, row: int, column: int) -> str:
        item = self.item(row, column)
        return item.text() if item is not None else ""

    def row_index(self, row: int) -> int:
        """The index (in the rows given) of the table's ``row`` as currently sorted."""
        item = self.item(row, 0)
        return int(item.data(NAME_ROLE)) if item is not None else -1

    def table_row(self, index: int) -> int:
        """The table row showing the given row ``index``."""
        for row in range(self.rowCount()):
            if self.row_index(row) == index:
                return row
        return -1
