"""A regression model's evaluation: predicted against true values for one target (a scatter with
the identity line, R² and MAE in its title), a per-target table when there are several (a click
on a row plots that target), and the samples with the largest errors."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from engine.task_evaluation import RegressionEvaluation

from .plots import MARK_COLOR, POINT_COLOR, PalettePlot, colour
from .results import TaskResults
from .samples import SampleGrid, shown_note
from .tables import ScoreTable

HEADERS = ("Target", "MAE", "RMSE", "R²")
TIPS = ("", "Mean absolute error", "Root mean squared error",
        "Coefficient of determination: 1 is perfect, 0 is no better than always predicting the mean")


class RegressionView(QWidget):
    """Scatter (and the target table beside it when there are several), worst samples below."""

    sigTargetShown = Signal(int)
    sigSampleChosen = Signal(int)  # a point of the scatter was clicked: its sample index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results: TaskResults | None = None
        self.target = 0
        self.plot = PalettePlot(self)
        self.points = pg.ScatterPlotItem(size=6, pen=pg.mkPen(None), brush=pg.mkBrush(colour(POINT_COLOR, 150)))
        self.identity = pg.PlotCurveItem(pen=pg.mkPen(colour(MARK_COLOR, 200), width=1.5, style=Qt.PenStyle.DashLine))
        self.plot.addItem(self.identity)
        self.plot.addItem(self.points)
        self.points.sigClicked.connect(self._on_points_clicked)
        self.points.setToolTip("Click a point to look at its sample in Feature maps")
        self.plot.setMinimumSize(260, 220)
        self.table = ScoreTable(HEADERS, TIPS, self)
        self.table.setToolTip("Click a target to plot its predictions")
        self.table.itemSelectionChanged.connect(self._on_row)
        self.worst_note = QLabel(self)
        self.worst_note.setContentsMargins(10, 6, 10, 2)
        self.worst = SampleGrid(self)

        for name in ("left", "bottom"):
            self.plot.getAxis(name).enableAutoSIPrefix(False)  # values as they are, not "×0.001"
        left = QSplitter(Qt.Orientation.Vertical, self)
        left.setChildrenCollapsible(False)
        left.addWidget(self.table)
        left.addWidget(self.plot)
        left.setStretchFactor(0, 1)
        left.setStretchFactor(1, 4)
        right = QWidget(self)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.setSpacing(2)
        right_layout.addWidget(self.worst_note)
        right_layout.addWidget(self.worst, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    @property
    def evaluation(self) -> RegressionEvaluation | None:
        ev = self.results.evaluation if self.results else None
        return ev if isinstance(ev, RegressionEvaluation) else None

    def set_results(self, results: TaskResults | None) -> None:
        self.results = results
        ev = self.evaluation
        rows = [(s.name, [(s.mae, f"{s.mae:.4g}"), (s.rmse, f"{s.rmse:.4g}"), (s.r2, f"{s.r2:.3f}")])
                for s in (ev.per_target if ev else [])]
        self.table.blockSignals(True)
        self.table.set_rows(rows)
        self.table.blockSignals(False)
        self.table.setVisible(len(rows) > 1)  # one target: its numbers are in the title
        self.table.fit_height(8)
        self.show_target(0)

    def show_target(self, target: int) -> None:
        """Plot target ``target``'s predictions against the truth and list its worst samples."""
        ev = self.evaluation
        if ev is None or self.results is None:
            self.points.setData([], [])
            self.identity.setData([], [])
            self.plot.setTitle("")
            self.worst.clear()
            self.worst_note.clear()
            return
        self.target = self.results.target = int(target)
        truth, predicted = ev.y_true[:, self.target], ev.y_pred[:, self.target]
        self.points.setData(truth, predicted, data=np.arange(len(truth)))
        finite = np.concatenate([truth, predicted])
        finite = finite[np.isfinite(finite)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        self.identity.setData([low, high], [low, high])
        self.plot.setXRange(low, high)  # the same range across and up: the identity line at 45°
        self.plot.setYRange(low, high)
        scores = ev.per_target[self.target]
        name = scores.name
        self.plot.setTitle(f"{html.escape(name)}: R² {scores.r2:.3f} · MAE {scores.mae:.4g}", size="10pt")
        self.plot.set_labels(f"true {name}", f"predicted {name}")
        row = self.table.table_row(self.target)
        if row >= 0 and self.table.currentRow() != row:
            self.table.blockSignals(True)
            self.table.selectRow(row)
            self.table.blockSignals(False)
        order = np.argsort(-np.abs(predicted - truth), kind="stable")
        self.worst.show_samples(self.results, order)
        self.worst_note.setText(f"<b>{html.escape(name)}</b>: "
                                + shown_note(self.worst.count(), len(order), "largest errors first"))
        self.sigTargetShown.emit(self.target)

    def shown_points(self) -> tuple[np.ndarray, np.ndarray]:
        """The scatter's (true, predicted) values."""
        x, y = self.points.getData()
        return np.asarray(x), np.asarray(y)

    def _on_points_clicked(self, _item: object, points: Sequence[Any], _event: object = None) -> None:
        if len(points) and self.results is not None:
            index = int(points[0].data())
            self.worst_note.setText(f"Sample {index}: " + html.escape(self.results.caption(index).replace("\n", ", "))
                                    + " (its feature maps are in the Feature maps tab)")
            self.sigSampleChosen.emit(index)

    def _on_row(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.show_target(self.table.row_index(rows[0].row()))
