"""A reconstruction model's evaluation: rows of input / output / |difference| for the worst, best
or random samples (with the noisy input the model was given when it learned to denoise), and
the distribution of per-sample errors with their mean and the data's variance marked (a model
that always outputs the mean image scores about the variance)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractButton, QButtonGroup, QGridLayout, QHBoxLayout, QLabel, QScrollArea, QSplitter, QToolButton,
    QVBoxLayout, QWidget,
)

from engine.task_evaluation import ReconstructionEvaluation, predict_samples
from engine.tasks import Task

from ..theme import ERROR_COLOR
from .background import LatestAnswer
from .images import scaled, to_qimage
from .plots import MARK_COLOR, POINT_COLOR, SECOND_MARK_COLOR, PalettePlot, colour
from .results import TaskResults

COLUMNS = 8
CELL = 100
BINS = 30
ORDERS = ("worst", "best", "random")


class ReconstructionView(QWidget):
    """The sample rows on the left, the error histogram on the right."""

    sigPicturesShown = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results: TaskResults | None = None
        self.shown_indices: list[int] = []
        self.row_names: list[str] = []
        self._answer = LatestAnswer(self)
        self.buttons: dict[str, QToolButton] = {}
        group = QButtonGroup(self)
        tips = {"worst": "The samples reconstructed worst (largest mean squared error)",
                "best": "The samples reconstructed best", "random": "Samples drawn at random"}
        bar = QHBoxLayout()
        bar.setContentsMargins(10, 8, 10, 4)
        bar.setSpacing(0)
        for order in ORDERS:
            button = QToolButton(self)
            button.setText(order.capitalize())
            button.setToolTip(tips[order])
            button.setCheckable(True)
            group.addButton(button)
            bar.addWidget(button)
            self.buttons[order] = button
        self.buttons["worst"].setChecked(True)
        group.buttonToggled.connect(self._on_order)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        bar.addSpacing(12)
        bar.addWidget(self.note, 1)

        self.cells = QWidget(self)
        self.cell_layout = QGridLayout(self.cells)
        self.cell_layout.setContentsMargins(10, 4, 10, 4)
        self.cell_layout.setHorizontalSpacing(6)
        self.cell_layout.setVerticalSpacing(4)
        scroll = QScrollArea(self)
        scroll.setWidget(self.cells)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)

        self.plot = PalettePlot(self)
        self.plot.setMinimumSize(240, 200)
        self.bars = pg.BarGraphItem(x0=[], x1=[], height=[], brush=colour(POINT_COLOR, 160), pen=pg.mkPen(None))
        self.plot.addItem(self.bars)
        self.mean_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(colour(MARK_COLOR), width=2),
                                         label="mean {value:.4f}", labelOpts={"position": 0.9, "color": MARK_COLOR})
        self.variance_line = pg.InfiniteLine(
            angle=90, pen=pg.mkPen(colour(SECOND_MARK_COLOR), width=2, style=Qt.PenStyle.DashLine),
            label="data variance {value:.4f}", labelOpts={"position": 0.75, "color": SECOND_MARK_COLOR})
        self.plot.addItem(self.mean_line)
        self.plot.addItem(self.variance_line)
        # A variance far right of every error would squeeze the bars into a sliver: then the axis
        # ends past the errors and this arrow at its edge says where the variance lies.
        self.variance_arrow = pg.TextItem("", color=SECOND_MARK_COLOR, anchor=(1, 0))
        self.plot.addItem(self.variance_arrow)
        self.plot.set_labels("mean squared error of a sample", "samples")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)  # errors as they are, not "×0.001"

        left = QWidget(self)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.setSpacing(0)
        left_layout.addLayout(bar)
        left_layout.addWidget(scroll, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(left)
        splitter.addWidget(self.plot)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    @property
    def evaluation(self) -> ReconstructionEvaluation | None:
        ev = self.results.evaluation if self.results else None
        return ev if isinstance(ev, ReconstructionEvaluation) else None

    def order(self) -> str:
        return next(name for name, button in self.buttons.items() if button.isChecked())

    def set_order(self, order: str) -> None:
        self.buttons[order].click()

    def set_results(self, results: TaskResults | None) -> None:
        self.results = results
        self._answer.forget()
        ev = self.evaluation
        if ev is None:
            self.bars.setOpts(x0=[], x1=[], height=[])
            self._clear_cells()
            self.note.clear()
            return
        counts, edges = np.histogram(ev.errors, bins=BINS)
        self.bars.setOpts(x0=edges[:-1], x1=edges[1:], height=counts)
        self.mean_line.setValue(ev.mse)
        self.variance_line.setValue(ev.variance)
        self.plot.setTitle(f"MSE {ev.mse:.4f} · {ev.mse / ev.variance:.1%} of the data variance"
                           if ev.variance > 0 else f"MSE {ev.mse:.4f}", size="10pt")
        top = float(edges[-1]) * 1.15
        off_scale = ev.variance > 3 * top
        self.variance_line.setVisible(not off_scale)
        self.variance_arrow.setVisible(off_scale)
        if off_scale:
            self.variance_arrow.setText(f"data variance {ev.variance:.4f} →")
            self.variance_arrow.setPos(top, float(counts.max()))
        self.plot.setXRange(0, top if off_scale else max(top, ev.variance * 1.05), padding=0)
        self.plot.setYRange(0, float(counts.max()) * 1.05, padding=0)
        self.refresh()

    def refresh(self) -> None:
        """Compute and show the rows of the chosen samples."""
        ev, results = self.evaluation, self.results
        if ev is None or results is None:
            return
        order = self.order()
        chosen = (ev.worst if order == "worst" else ev.best if order == "best"
                  else ev.random(COLUMNS, seed=results.seed))
        indices = [int(i) for i in chosen[:COLUMNS]]
        model, split, noise, seed = results.model, results.split, results.noise_stddev, results.seed
        high = results.pixel_high()
        self.note.setText(f"Computing the {order} reconstructions…")

        def work() -> Any:
            clean = split.images(indices)
            given, outputs = predict_samples(model, split, indices, Task.RECONSTRUCTION, noise, seed, high)
            return clean, given, outputs

        self._answer.request(work, lambda answer: self._show(indices, order, *answer), self._show_error)

    def _show(self, indices: list[int], order: str, clean: np.ndarray, given: np.ndarray,
              outputs: np.ndarray) -> None:
        ev = self.evaluation
        assert ev is not None
        self._clear_cells()
        rows: list[tuple[str, np.ndarray]] = []
        if ev.noise_stddev > 0:
            rows.append((f"Noisy input (σ {ev.noise_stddev:g})", given))
        difference = np.abs(outputs.astype(np.float32) - clean)
        rows += [("Input" if ev.noise_stddev <= 0 else "Clean input", clean), ("Output", outputs),
                 ("|Difference|", difference)]
        self.row_names = [name for name, _ in rows]
        self.shown_indices = list(indices)
        for row, (name, images) in enumerate(rows):
            label = QLabel(name, self.cells)
            label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.cell_layout.addWidget(label, row, 0)
            for column, image in enumerate(images, start=1):
                cell = QLabel(self.cells)
                cell.setPixmap(scaled(_absolute(image) if name == "|Difference|" else to_qimage(image), CELL))
                cell.setToolTip(self.results.tooltip(indices[column - 1]) if self.results else "")
                self.cell_layout.addWidget(cell, row, column)
        for column, index in enumerate(indices, start=1):
            caption = QLabel(f"#{index}\nMSE {ev.errors[index]:.4f}", self.cells)
            caption.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            if ev.errors[index] > ev.variance:
                caption.setStyleSheet(f"color: {ERROR_COLOR};")
            self.cell_layout.addWidget(caption, len(rows), column)
        self.cell_layout.setColumnStretch(len(indices) + 1, 1)
        self.cell_layout.setRowStretch(len(rows) + 1, 1)
        what = {"worst": "reconstructed worst", "best": "reconstructed best", "random": "drawn at random"}[order]
        self.note.setText(f"{len(indices)} of {len(ev):,} samples, {what}. |Difference|: black is exact, "
                          "white is off by the whole range.")
        self.sigPicturesShown.emit()

    def _show_error(self, message: str) -> None:
        self._clear_cells()
        self.note.setText(f"<span style='color:{ERROR_COLOR}'>{message}</span>")
        self.sigPicturesShown.emit()

    def _clear_cells(self) -> None:
        while self.cell_layout.count():
            item = self.cell_layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.shown_indices = []
        self.row_names = []

    def _on_order(self, _button: QAbstractButton, checked: bool) -> None:
        if checked:
            self.refresh()


def _absolute(difference: np.ndarray) -> Any:
    """A difference image on the absolute [0, 1] scale (not stretched: black means exact)."""
    # Clipped to [0, 1]: to_qimage stretches only images outside that range.
    return to_qimage(np.clip(np.asarray(difference, dtype=np.float32), 0.0, 1.0))
