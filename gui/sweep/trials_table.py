"""The table of a sweep's trials: one row per trial, one column per figure and per searched value.

:class:`TrialsModel` holds the :class:`~engine.sweep_results.TrialRecord` values by trial number
and updates a row in place when a trial's record changes (running → complete), so that the
selection and the sort survive live updates. :class:`TrialsProxy` sorts every column by its
value (numbers as numbers, empty cells last), not by the text shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, QSortFilterProxyModel, Qt,
)
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from engine.search_space import SearchTarget
from engine.summary import human_count
from engine.sweep_results import TrialOutcome, TrialRecord
from engine.sweep_settings import CostKind

SORT_ROLE = Qt.ItemDataRole.UserRole + 1    # the value a column sorts by
NUMBER_ROLE = Qt.ItemDataRole.UserRole + 2  # the trial number of a row (any column)
Index = QModelIndex | QPersistentModelIndex

OUTCOME_TEXT = {
    TrialOutcome.COMPLETE: "complete", TrialOutcome.PRUNED: "pruned", TrialOutcome.FAILED: "failed",
    TrialOutcome.INVALID: "invalid", TrialOutcome.OVER_BUDGET: "over budget",
    TrialOutcome.STOPPED: "stopped", TrialOutcome.RUNNING: "running", TrialOutcome.WAITING: "waiting",
}
# Rows whose trial gave no usable result read fainter than complete ones.
FAINT_OUTCOMES = frozenset({TrialOutcome.PRUNED, TrialOutcome.FAILED, TrialOutcome.INVALID,
                            TrialOutcome.OVER_BUDGET, TrialOutcome.STOPPED, TrialOutcome.WAITING})


def metric_label(metric: str) -> str:
    """``val_accuracy`` → ``val accuracy`` (a column header or axis title)."""
    return metric.replace("_", " ")


def format_metric(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.4f}"


def format_value(value: Any) -> str:
    """A searched value as a person writes it: 0.001, 1e-05, 32, relu, (3, 3)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(format_value(v) for v in value) + ")"
    return str(value)


@dataclass(frozen=True)
class Column:
    """One column: its header, how a record fills it (the raw value) and how that reads."""

    header: str
    tip: str
    align_right: bool = True
    key: str | None = None  # a searched value's key

    def value(self, record: TrialRecord) -> Any:
        return _COLUMN_VALUES[self.header](record) if self.key is None else record.params.get(self.key)


_COLUMN_VALUES: dict[str, Any] = {
    "#": lambda r: r.number,
    "Outcome": lambda r: r.outcome,
    "Parameters": lambda r: r.params_count,
    "MACs": lambda r: r.macs,
    "Latency (ms)": lambda r: r.latency_ms,
    "Epochs": lambda r: r.epochs_run,
    "Seconds": lambda r: r.seconds,
    "Reason": lambda r: r.reason,
}
METRIC_HEADER = "metric"  # placeholder key of the metric column (its header is the metric's name)


class TrialsModel(QAbstractTableModel):
    """The trials of one study, in the order they arrived (the proxy sorts them)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.records: list[TrialRecord] = []
        self._rows: dict[int, int] = {}  # trial number -> row
        self.metric = "val_accuracy"
        self.columns: list[Column] = []
        self.current_number: int | None = None  # the trial equal to the current design
        self.set_study("val_accuracy", CostKind.MACS, [])

    # --- the study ------------------------------------------------------------------------------

    def set_study(self, metric: str, cost: CostKind | None, keys: list[str]) -> None:
        """The columns of a study: its metric, whether latency is measured, its searched keys."""
        columns = [Column("#", "The trial's number in the study"),
                   Column("Outcome", "How the trial ended", align_right=False),
                   Column(METRIC_HEADER, "The validation metric the sweep optimises (the best epoch's)"),
                   Column("Parameters", "Parameters of the trial's design"),
                   Column("MACs", "Multiply-accumulates per image of the trial's design")]
        if cost is CostKind.LATENCY:
            columns.append(Column("Latency (ms)", "Measured inference latency per image"))
        columns += [Column("Epochs", "Epochs the trial trained"),
                    Column("Seconds", "How long the trial took (a rejected one: the check alone)")]
        for key in keys:
            try:
                label = SearchTarget.parse(key).label
            except Exception:  # noqa: BLE001 - a key from another version of Convas: show it as it is
                label = key
            columns.append(Column(label, f"The value the trial tried for {label}", key=key))
        columns.append(Column("Reason", "Why the trial failed, was pruned or was rejected", align_right=False))
        self.beginResetModel()
        self.metric = metric
        self.columns = columns
        self.records = []
        self._rows = {}
        self.endResetModel()

    def set_records(self, records: list[TrialRecord]) -> None:
        """Show ``records``: rows of known trials change in place, new trials are appended,
        trials no longer there are removed."""
        wanted = {r.number for r in records}
        gone = sorted((row for number, row in self._rows.items() if number not in wanted), reverse=True)
        for row in gone:
            self.beginRemoveRows(QModelIndex(), row, row)
            del self.records[row]
            self.endRemoveRows()
        if gone:
            self._rows = {r.number: i for i, r in enumerate(self.records)}
        for record in records:
            self.upsert(record)

    def upsert(self, record: TrialRecord) -> None:
        """Add a trial, or update its row when it is known."""
        row = self._rows.get(record.number)
        if row is None:
            row = len(self.records)
            self.beginInsertRows(QModelIndex(), row, row)
            self.records.append(record)
            self._rows[record.number] = row
            self.endInsertRows()
        elif self.records[row] != record:
            self.records[row] = record
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.columns) - 1))

    def set_current(self, number: int | None) -> None:
        """Mark the trial equal to the current design (its number is bold)."""
        old, self.current_number = self.current_number, number
        for n in (old, number):
            if n is not None and n in self._rows:
                index = self.index(self._rows[n], 0)
                self.dataChanged.emit(index, index)

    def record(self, number: int) -> TrialRecord | None:
        row = self._rows.get(number)
        return self.records[row] if row is not None else None

    def row_of(self, number: int) -> int | None:
        return self._rows.get(number)

    def column_of(self, header: str) -> int:
        """The column whose header reads ``header`` (the metric column: its metric's label)."""
        for i in range(len(self.columns)):
            if self.headerData(i, Qt.Orientation.Horizontal) == header:
                return i
        raise KeyError(header)

    # --- Qt -------------------------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.records)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.columns):
            return None
        column = self.columns[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return metric_label(self.metric) if column.header == METRIC_HEADER else column.header
        if role == Qt.ItemDataRole.ToolTipRole:
            return column.tip
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        record = self.records[index.row()]
        column = self.columns[index.column()]
        if role == NUMBER_ROLE:
            return record.number
        value = record.metric if column.header == METRIC_HEADER else column.value(record)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(column, value)
        if role == SORT_ROLE:
            return value.value if isinstance(value, TrialOutcome) else value
        if role == Qt.ItemDataRole.ToolTipRole:
            if column.header == "Reason" and record.reason:
                return record.reason
            if column.header == "Outcome" and record.worker:
                return f"Ran in {record.worker}"
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            horizontal = Qt.AlignmentFlag.AlignRight if column.align_right else Qt.AlignmentFlag.AlignLeft
            return int(horizontal | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and record.outcome in FAINT_OUTCOMES:
            from PySide6.QtWidgets import QApplication

            return QApplication.palette().color(QPalette.ColorRole.PlaceholderText)
        if role == Qt.ItemDataRole.FontRole and record.number == self.current_number and column.header == "#":
            from PySide6.QtGui import QFont

            font = QFont()
            font.setBold(True)
            return font
        return None

    def _text(self, column: Column, value: Any) -> str:
        if value is None:
            return ""
        header = column.header
        if header == METRIC_HEADER:
            return format_metric(value)
        if header == "Outcome":
            return OUTCOME_TEXT.get(value, str(value))
        if header in ("Parameters", "MACs"):
            return human_count(value) if header == "MACs" else f"{value:,}"
        if header == "Seconds":
            return f"{value:.3f}" if value < 1 else f"{value:.1f}"
        if header == "Latency (ms)":
            return f"{value:.2f}"
        if header == "Reason":
            return str(value)
        return format_value(value)


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers before text, both in their own order; empty cells (None, NaN) after both."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (2, 0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value))
    return (1, str(value))


class TrialsProxy(QSortFilterProxyModel):
    """Sorts by :data:`SORT_ROLE`: numbers numerically, text alphabetically, empty cells last."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    def lessThan(self, left: Index, right: Index) -> bool:
        a, b = _sort_key(left.data(SORT_ROLE)), _sort_key(right.data(SORT_ROLE))
        if a == b:  # ties: by trial number, so the order is stable
            return bool(left.data(NUMBER_ROLE) < right.data(NUMBER_ROLE))
        return a < b


class TrialsTable(QTableView):
    """The table view: whole rows selected one at a time, sortable by clicking a header."""

    def __init__(self, model: TrialsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.trials = model
        self.proxy = TrialsProxy(self)
        self.proxy.setSourceModel(model)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.horizontalHeader()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setHighlightSections(False)
        self.setAccessibleName("Trials")

    def selected_number(self) -> int | None:
        rows = self.selectionModel().selectedRows()
        return int(rows[0].data(NUMBER_ROLE)) if rows else None

    def select_number(self, number: int | None) -> None:
        """Select the row of trial ``number`` (None: clear the selection) and scroll to it."""
        if number is None:
            self.clearSelection()
            return
        row = self.trials.row_of(number)
        if row is None:
            return
        index = self.proxy.mapFromSource(self.trials.index(row, 0))
        if self.selected_number() != number:
            self.selectRow(index.row())
        self.scrollTo(index)

    def row_rect_of(self, number: int) -> Any:
        """Where trial ``number``'s first cell is drawn (for tests that click a row)."""
        row = self.trials.row_of(number)
        assert row is not None
        return self.visualRect(self.proxy.mapFromSource(self.trials.index(row, 0)))

    def fit_columns(self) -> None:
        """Columns as wide as their contents (the reason column takes what is left)."""
        self.resizeColumnsToContents()
        header = self.horizontalHeader()
        for i in range(self.trials.columnCount() - 1):
            header.resizeSection(i, min(header.sectionSize(i) + 8, 220))

