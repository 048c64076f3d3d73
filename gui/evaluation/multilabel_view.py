"""A multi-label model's evaluation: per-label scores at a threshold the user slides (recomputed
at once from the stored scores, no model involved) and the samples with their true and
predicted labels, the worst first."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QSplitter, QVBoxLayout, QWidget

from engine.task_evaluation import MultiLabelEvaluation

from .results import TaskResults
from .samples import THUMBNAIL, SampleGrid, shown_note
from .tables import ScoreTable

HEADERS = ("Label", "Precision", "Recall", "F1", "Support")
TIPS = ("", "Of the samples given this label, the share that truly have it",
        "Of the samples that have this label, the share given it",
        "Harmonic mean of precision and recall", "Samples of the evaluated split that have this label")
GRID_DELAY_MS = 120  # the thumbnails follow the slider once it pauses


class MultiLabelView(QWidget):
    """Threshold slider, per-label table and averages, and the samples browser."""

    sigThresholdChanged = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results: TaskResults | None = None
        self._base: MultiLabelEvaluation | None = None
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(1, 99)
        self.slider.setValue(50)
        self.slider.setPageStep(5)
        self.slider.setToolTip("A label is predicted when its score is above this threshold")
        self.threshold_label = QLabel(self)
        self.threshold_label.setMinimumWidth(self.fontMetrics().horizontalAdvance("Threshold 0.00") + 8)
        self.table = ScoreTable(HEADERS, TIPS, self)
        self.averages = QLabel(self)
        self.averages.setWordWrap(True)
        self.averages.setContentsMargins(10, 6, 10, 8)
        self.averages.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.grid_note = QLabel(self)
        self.grid_note.setContentsMargins(10, 6, 10, 2)
        self.grid = SampleGrid(self)
        self.grid.caption_width = 3 * THUMBNAIL  # label lists are longer than a class name
        self._grid_timer = QTimer(self)
        self._grid_timer.setSingleShot(True)
        self._grid_timer.setInterval(GRID_DELAY_MS)
        self._grid_timer.timeout.connect(self._show_samples)

        bar = QHBoxLayout()
        bar.setContentsMargins(10, 8, 10, 4)
        bar.addWidget(self.threshold_label)
        bar.addWidget(self.slider, 1)
        scores = self.scores_pane = QWidget(self)
        scores_layout = QVBoxLayout(scores)
        scores_layout.setContentsMargins(0, 0, 0, 0)
        scores_layout.setSpacing(0)
        scores_layout.addWidget(self.table, 1)
        scores_layout.addWidget(self.averages)
        scores_layout.addStretch(0)
        samples = QWidget(self)
        samples_layout = QVBoxLayout(samples)
        samples_layout.setContentsMargins(0, 0, 0, 0)
        samples_layout.setSpacing(2)
        samples_layout.addWidget(self.grid_note)
        samples_layout.addWidget(self.grid, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(scores)
        splitter.addWidget(samples)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(splitter, 1)
        self.slider.valueChanged.connect(self._on_slider)

    @property
    def evaluation(self) -> MultiLabelEvaluation | None:
        ev = self.results.evaluation if self.results else None
        return ev if isinstance(ev, MultiLabelEvaluation) else None

    def threshold(self) -> float:
        return self.slider.value() / 100.0

    def set_results(self, results: TaskResults | None) -> None:
        self.results = results
        self._base = self.evaluation
        if self._base is not None:
            self.slider.blockSignals(True)
            self.slider.setValue(round(self._base.threshold * 100))
            self.slider.blockSignals(False)
        self._refresh(keep_order=False)
        self._show_samples()

    def _on_slider(self, _value: int) -> None:
        if self.results is None or self._base is None:
            return
        self.results.evaluation = self._base.at_threshold(self.threshold())
        self._refresh(keep_order=True)
        self._grid_timer.start()
        self.sigThresholdChanged.emit(self.threshold())

    def _refresh(self, keep_order: bool) -> None:
        ev = self.evaluation
        self.threshold_label.setText(f"Threshold {self.threshold():.2f}")
        if ev is None:
            self.table.set_rows([])
            self.averages.clear()
            return
        self.table.set_rows([(s.name, [(s.precision, f"{s.precision:.3f}"), (s.recall, f"{s.recall:.3f}"),
                                       (s.f1, f"{s.f1:.3f}"), (s.support, f"{s.support:,}")])
                             for s in ev.per_label], keep_order=keep_order)
        self.table.setMinimumWidth(self.table.natural_width())
        self.table.fit_height()
        self.scores_pane.setMaximumWidth(max(self.table.natural_width() + 40, 420))
        mean = ev.macro_average()
        self.averages.setText(
            f"Exact match (every label right)&nbsp;<b>{ev.exact_match:.1%}</b> · label accuracy&nbsp;"
            f"<b>{ev.label_accuracy:.1%}</b><br>Macro average: precision&nbsp;<b>{mean.precision:.3f}</b> · "
            f"recall&nbsp;<b>{mean.recall:.3f}</b> · F1&nbsp;<b>{mean.f1:.3f}</b>")

    def _show_samples(self) -> None:
        ev = self.evaluation
        if ev is None or self.results is None:
            self.grid.clear()
            self.grid_note.clear()
            return
        order = ev.ranked(worst_first=True)
        self.grid.show_samples(self.results, order)
        self.grid_note.setText(shown_note(self.grid.count(), len(order), "scores farthest from the truth first"))
