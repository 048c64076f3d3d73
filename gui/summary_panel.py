"""The summary panel: the design as Keras's ``model.summary()`` table, with costs and totals.

The rows come from :func:`engine.summary.summary_rows`, the same cells ``convas summary`` prints,
so the panel and the command line always agree. Updates replace cells in place and only reset
the model when the layers themselves change; after an incremental analysis only the rows of the
layers whose reports are new are formatted again (``Analysis.changed_since``), so an edit of a
1,000-layer design refreshes in well under a millisecond and keeps the selection.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel, QItemSelectionModel, QModelIndex, QPersistentModelIndex, QSize, Qt, Signal,
)
from PySide6.QtGui import QBrush, QColor, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView, QFrame, QHBoxLayout, QHeaderView, QLabel, QSpinBox, QTableView, QVBoxLayout,
    QWidget,
)

from engine.analysis import Analysis, NodeReport
from engine.design import Design
from engine.summary import human_bytes, human_count, summary_rows

from .document import Document
from .icons import layer_icon
from .theme import ERROR_COLOR, WARNING_COLOR

HEADERS = ("Layer (type)", "Output Shape", "Param #", "MACs", "Activations", "RF", "Connected to")
NUMERIC = frozenset({2, 3, 4, 5})
NAME_ROLE = Qt.ItemDataRole.UserRole
ICON_SIZE = QSize(16, 16)
_TOP = QModelIndex()  # the parent of top-level rows (Qt's usual default, made once)
_MAX_AUTO_WIDTH = 320  # a column never grows past this on its own; the user may drag it wider
_SPLICE_LIMIT = 64     # rows an update inserts and removes in place; past this it resets the table
_EAGER_ROWS = 64       # changed rows formatted at once; more are formatted when shown


def _state(rep: NodeReport) -> tuple[str, str]:
    """The state of a row ("ok", "warning", "error" or "blocked") and its tooltip."""
    if rep.errors:
        return "error", "\n".join(p.message for p in rep.errors)
    if rep.blocked:
        return "blocked", "Unknown: a layer upstream is invalid."
    if rep.problems:
        return "warning", "\n".join(p.message for p in rep.problems)
    return "ok", ""


def _tint(color: str, alpha: int) -> QBrush:
    c = QColor(color)
    c.setAlpha(alpha)
    return QBrush(c)


class SummaryModel(QAbstractTableModel):
    """Cells of :func:`summary_rows`, one row per layer in execution order."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.names: list[str] = []
        self.kinds: list[str] = []
        # The cells of each row; None for a row formatted only when it is shown (after an edit
        # that changed many rows: the table shows a few dozen of them).
        self.rows: list[list[str] | None] = []
        self.states: list[str] = []   # "ok", "warning", "error" or "blocked"
        self.tooltips: list[str] = []
        self._rows_of: dict[str, int] = {}
        self._design: Design | None = None
        self._shown: Analysis | None = None  # the analysis the rows show
        self.spliced: list[int] = []         # the rows the last update inserted in place
        self._error = _tint(ERROR_COLOR, 46)
        self._warning = _tint(WARNING_COLOR, 40)
        self._right = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._left = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)

    # --- updates --------------------------------------------------------------------------

    def update(self, design: Design, analysis: Analysis) -> bool:
        """Take new cells; returns True when the rows themselves changed (a model reset)."""
        changed = analysis.changed_since(self._shown)
        self._shown, self._design = analysis, design
        self.spliced = []
        if changed is not None:
            if analysis.order == self.names:
                self._update_rows(design, analysis, changed)
                return False
            if self._splice(design, analysis, changed):
                return False
        names = list(analysis.order)
        cells, states, tips = self._cells(design, analysis, names)
        kinds = [design.nodes[n].kind for n in names]
        if names == self.names and kinds == self.kinds:
            self.rows, self.states, self.tooltips = list(cells), states, tips
            if names:
                self.dataChanged.emit(self.index(0, 0), self.index(len(names) - 1, len(HEADERS) - 1))
            return False
        self.beginResetModel()
        self.names, self.kinds, self.states, self.tooltips = names, kinds, states, tips
        self.rows = list(cells)
        self._rows_of = {name: i for i, name in enumerate(names)}
        self.endResetModel()
        return True

    def _splice(self, design: Design, analysis: Analysis, changed: frozenset[str]) -> bool:
        """Rows inserted or removed in one place (a layer added, deleted or renamed): only those
        move, the others keep their cells (updated where ``changed``) and the selection. False
        when the order changed in a way this does not cover: the caller resets the model."""
        old, new = self.names, analysis.order
        shortest = min(len(old), len(new))
        head = 0
        while head < shortest and old[head] == new[head]:
            head += 1
        tail = 0
        while tail < shortest - head and old[-1 - tail] == new[-1 - tail]:
            tail += 1
        gone, added = old[head:len(old) - tail], new[head:len(new) - tail]
        if len(gone) + len(added) > _SPLICE_LIMIT:
            return False
        if gone:
            self.beginRemoveRows(_TOP, head, head + len(gone) - 1)
            for rows in (self.names, self.kinds, self.rows, self.states, self.tooltips):
                del rows[head:head + len(gone)]
            self.endRemoveRows()
        if added:
            cells, states, tips = self._cells(design, analysis, added)
            self.beginInsertRows(_TOP, head, head + len(added) - 1)
            self.names[head:head] = added
            self.kinds[head:head] = [design.nodes[n].kind for n in added]
            self.rows[head:head] = cells
            self.states[head:head] = states
            self.tooltips[head:head] = tips
            self.endInsertRows()
        self._rows_of = {name: i for i, name in enumerate(self.names)}
        self._update_rows(design, analysis, changed.difference(added))
        self.spliced = list(range(head, head + len(added)))
        return True

    def _update_rows(self, design: Design, analysis: Analysis, changed: frozenset[str]) -> None:
        """Replace the rows of the ``changed`` layers (the others' reports are the same objects)."""
        rows = sorted(i for n in changed if (i := self._rows_of.get(n)) is not None)
        if not rows:
            return
        names = [self.names[i] for i in rows]
        if len(rows) <= _EAGER_ROWS:
            cells: list[list[str] | None] = list(self._cells(design, analysis, names)[0])
        else:  # formatted when shown (see row_cells)
            cells = [None] * len(rows)
        for i, name, row in zip(rows, names, cells):
            self.rows[i] = row
            self.states[i], self.tooltips[i] = _state(analysis.nodes[name])
            self.kinds[i] = design.nodes[name].kind
        last = len(HEADERS) - 1
        if len(rows) <= 8:
            for i in rows:
                self.dataChanged.emit(self.index(i, 0), self.index(i, last))
        else:
            self.dataChanged.emit(self.index(rows[0], 0), self.index(rows[-1], last))

    @staticmethod
    def _cells(design: Design, analysis: Analysis,
               names: list[str]) -> tuple[list[list[str]], list[str], list[str]]:
        """The cells, state and tooltip of the rows of ``names``."""
        # summary_rows formats the layers of ``analysis.order``: a copy listing only ``names``.
        cells = summary_rows(design, analysis if names == analysis.order else replace(analysis, order=names))
        states, tips = [], []
        for name in names:
            state, tip = _state(analysis.nodes[name])
            states.append(state)
            tips.append(tip)
        for row in cells:
            row[1] = row[1].replace("\n", "; ")  # shared layers: one shape per call, on one line
        return cells, states, tips

    def row_of(self, name: str) -> int:
        return self._rows_of.get(name, -1)

    def row_cells(self, row: int) -> list[str]:
        """The cells of ``row``, formatted now if they were left for when they are shown."""
        cells = self.rows[row]
        if cells is None:
            assert self._design is not None and self._shown is not None
            cells = self.rows[row] = self._cells(self._design, self._shown, [self.names[row]])[0][0]
        return cells

    # --- model ----------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _TOP) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _TOP) -> int:
        return 0 if parent.isValid() else len(HEADERS)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.row_cells(r)[c]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self._right if c in NUMERIC else self._left
        if role == Qt.ItemDataRole.BackgroundRole:
            state = self.states[r]
            return self._error if state == "error" else self._warning if state == "warning" else None
        if role == Qt.ItemDataRole.ForegroundRole:
            blocked = self.states[r] == "blocked" and c != 0
            return QGuiApplication.palette().placeholderText() if blocked else None  # the current theme's
        if role == Qt.ItemDataRole.DecorationRole and c == 0:
            return layer_icon(self.kinds[r])
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltips[r] or (self.row_cells(r)[c] if c in (0, 1, 6) else None)
        if role == NAME_ROLE:
            return self.names[r]
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self._right if section in NUMERIC else self._left
        if role == Qt.ItemDataRole.ToolTipRole:
            return {2: "Weights of the layer (trainable + non-trainable)",
                    3: "Multiply-accumulate operations per sample",
                    4: "Values of the layer's outputs per sample (float32)",
                    5: "Receptive field: input pixels one output value sees"}.get(section)
        return None


class SummaryWidget(QWidget):
    """The summary table of ``document`` with its totals and the batch size."""

    sigNodeClicked = Signal(str)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.model = SummaryModel(self)
        self._syncing = False

        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setFrameShape(QFrame.Shape.NoFrame)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.table.setIconSize(ICON_SIZE)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setStyleSheet("QTableView { outline: 0; } QTableView::item { padding: 0px 8px; }"
                                 "QHeaderView::section { padding: 4px 8px; }")
        vertical = self.table.verticalHeader()
        vertical.hide()
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(self.fontMetrics().height() + 10)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setHighlightSections(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_row)
        self.table.clicked.connect(self._on_clicked)

        self.totals_label = QLabel(self)
        self.totals_label.setTextFormat(Qt.TextFormat.RichText)
        self.totals_label.setWordWrap(True)
        self.totals_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.batch_spin = QSpinBox(self)
        self.batch_spin.setRange(1, 1 << 20)
        self.batch_spin.setKeyboardTracking(False)
        self.batch_spin.setAccelerated(True)
        self.batch_spin.setToolTip("Samples per batch: scales the activation memory of training")
        self.batch_spin.setValue(document.batch_size)
        self.batch_spin.valueChanged.connect(self._on_batch_size)
        batch_label = QLabel("Batch size", self)
        batch_label.setBuddy(self.batch_spin)

        line = QFrame(self)
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)

        footer = QHBoxLayout()
        footer.setContentsMargins(10, 6, 10, 8)
        footer.setSpacing(8)
        footer.addWidget(self.totals_label, 1)
        footer.addWidget(batch_label, 0, Qt.AlignmentFlag.AlignTop)
        footer.addWidget(self.batch_spin, 0, Qt.AlignmentFlag.AlignTop)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.table, 1)
        layout.addWidget(line)
        layout.addLayout(footer)

        self._widths = [self.fontMetrics().horizontalAdvance(h) + 28 for h in HEADERS]
        for column, width in enumerate(self._widths):
            header.resizeSection(column, width)
        self._selected: str | None = None
        self._announced: str | None = None
        document.analysed.connect(self.refresh)
        self.refresh()

    # --- public ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Mirror the document's latest analysis (cheap: cells are updated in place)."""
        self._syncing = True
        try:
            reset = self.model.update(self.document.design, self.document.analysis)
            if reset:
                self._fit_columns()
                self._select_row(self.model.row_of(self._selected) if self._selected else -1, scroll=False)
            elif self.model.spliced:
                self._fit_columns(self.model.spliced)
            if not reset and self._selected is not None:
                row = self.model.row_of(self._selected)
                if row != self.table.selectionModel().currentIndex().row():
                    self._select_row(row, scroll=False)
        finally:
            self._syncing = False
        if self.batch_spin.value() != self.document.batch_size:
            self.batch_spin.blockSignals(True)
            self.batch_spin.setValue(self.document.batch_size)
            self.batch_spin.blockSignals(False)
        self.totals_label.setText(self._totals_html())

    def select_node(self, name: str | None) -> None:
        """Highlight the row of ``name`` (None clears) without emitting sigNodeClicked."""
        self._selected = name
        self._syncing = True
        try:
            self._select_row(self.model.row_of(name) if name else -1, scroll=True)
        finally:
            self._syncing = False

    def totals_text(self) -> str:
        """The totals as plain text, one line per group of figures."""
        return "\n".join(" · ".join(f"{k} {v}" for k, v in line) for line in self._totals())

    # --- internals ------------------------------------------------------------------------

    def _totals(self) -> list[list[tuple[str, str]]]:
        a = self.document.analysis
        lines = [
            [("Total params", f"{a.total_params:,} ({human_bytes(a.weight_bytes)})"),
             ("Trainable", f"{a.trainable_params:,}"),
             ("Non-trainable", f"{a.non_trainable_params:,}"),
             ("MACs per sample", human_count(a.macs))],
            [(f"Activations at batch {a.batch_size}", human_bytes(a.activation_bytes)),
             ("Peak inference", human_bytes(a.peak_inference_bytes))],
        ]
        if a.errors:
            n = len(a.errors)
            why = "totals leave out invalid layers"
            unknown = len(a.unsupported)
            if unknown:
                why += (f"; the parameters and MACs of {unknown} unsupported layer{'s' if unknown != 1 else ''} "
                        "are unknown")
            lines.append([(f"{n} error{'s' if n != 1 else ''}:", why)])
        return lines

    def _totals_html(self) -> str:
        lines = self._totals()
        html = ["&nbsp;&nbsp;·&nbsp;&nbsp;".join(f"{k}&nbsp;<b>{v}</b>" for k, v in line) for line in lines[:2]]
        if len(lines) > 2:
            (k, v), = lines[2]
            html.append(f"<span style='color:{ERROR_COLOR}'>{k} {v}</span>")
        return "<br>".join(html)

    def _fit_columns(self, rows: list[int] | None = None) -> None:
        """Widen columns to the longest text of ``rows`` (all by default: measured once per
        structural change; columns never shrink on their own, so the table does not jump while
        editing)."""
        header = self.table.horizontalHeader()
        metrics = self.table.fontMetrics()
        icon = ICON_SIZE.width() + 8
        cells = [self.model.row_cells(i) for i in (range(len(self.model.names)) if rows is None else rows)]
        for column in range(len(HEADERS) - 1):
            longest = max((row[column] for row in cells), key=len, default="")
            width = metrics.horizontalAdvance(longest) + 24 + (icon if column == 0 else 0)
            width = min(max(width, self._widths[column]), _MAX_AUTO_WIDTH)
            if width > header.sectionSize(column):
                header.resizeSection(column, width)

    def _select_row(self, row: int, scroll: bool) -> None:
        selection = self.table.selectionModel()
        if row < 0:
            selection.clearSelection()
            selection.setCurrentIndex(QModelIndex(), QItemSelectionModel.SelectionFlag.NoUpdate)
            return
        index = self.model.index(row, 0)
        selection.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect
                                  | QItemSelectionModel.SelectionFlag.Rows)
        if scroll:
            self.table.scrollTo(index, QAbstractItemView.ScrollHint.EnsureVisible)

    def _on_current_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        """The user moved to a row (mouse press or arrow keys)."""
        if self._syncing or not current.isValid():
            return
        name = self.model.names[current.row()]
        self._selected = self._announced = name
        self.sigNodeClicked.emit(name)

    def _on_clicked(self, index: QModelIndex) -> None:
        """A click on the row that was already current still means "show me this layer"; a click
        that moved the current row was announced by :meth:`_on_current_row` already."""
        if not index.isValid() or self._syncing:
            return
        name = self.model.names[index.row()]
        if self._announced == name:
            self._announced = None
            return
        self._selected = name
        self.sigNodeClicked.emit(name)

    def _on_batch_size(self, value: int) -> None:
        if value != self.document.batch_size:
            self.document.set_batch_size(value)
