"""What the feature-map and Grad-CAM views share: a sample chooser, a layer combo, a note, and
computing only when shown, off the GUI thread.

The first look at a layer builds a Keras sub-model (tens of milliseconds on the seed CNN, seconds
on a big model), so every computation runs on a :mod:`gui.workers` worker while the view says it
is busy. One runs at a time per view: a request made meanwhile replaces any older waiting one
and is computed next, and the running one's answer is dropped, as is any answer for results
that have since changed. A lock keeps the views from calling into Keras at the same time.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QProgressBar, QSizePolicy, QWidget

from engine.evaluation import feature_map_layers

from ..theme import ERROR_COLOR
from ..workers import TaskState, Worker, create_worker
from .results import Results, TaskResults
from .samples import SampleChooser

BUSY_DELAY_MS = 150  # a quick answer shows no busy bar (it would only flicker)

_KERAS = threading.Lock()  # one inspector computation at a time, whichever view asks


def locked(state: TaskState, work: Callable[[], Any]) -> Any:
    """``work()`` on a worker thread, never while another evaluation view calls into Keras."""
    with _KERAS:
        state.check()  # replaced while it waited: skip the work
        return work()


def shape_text(shape: Any) -> str:
    return "×".join(str(d) for d in tuple(shape)[1:])


class InspectorView(QWidget):
    """Base of the views that look inside the model for one sample at one layer."""

    sigSampleChanged = Signal(int)
    sigComputed = Signal()  # a computation's answer (or its error) is now shown

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results: Results | TaskResults | None = None
        self._stale = False
        self._request = 0                                  # bumped by every refresh
        self._worker: Worker | None = None                 # at most one computing
        self._worker_request = 0                           # ... for this request
        self._worker_show: Callable[[Any], None] | None = None  # ... to be shown by this
        self._waiting: tuple[int, Callable[[], Any], Callable[[Any], None]] | None = None
        self.chooser = SampleChooser(self)
        self.chooser.sigChanged.connect(self._on_sample)
        self.layer_combo = QComboBox(self)
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_combo.setToolTip("The layer whose output to look at (layers with image-like outputs)")
        self.layer_combo.currentIndexChanged.connect(lambda _i: self.request_refresh())
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.RichText)
        self.note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.busy_bar = QProgressBar(self)
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.setFixedSize(90, 8)
        self.busy_bar.setToolTip("Computing…")
        self.busy_bar.hide()
        self._busy_timer = QTimer(self)
        self._busy_timer.setSingleShot(True)
        self._busy_timer.setInterval(BUSY_DELAY_MS)
        self._busy_timer.timeout.connect(lambda: self.busy_bar.setVisible(self.is_busy()))
        # The note with the busy bar beside it: what subclasses put in their layouts.
        self.status_row = QWidget(self)
        row = QHBoxLayout(self.status_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(8)
        row.addWidget(self.note, 1)
        row.addWidget(self.busy_bar, 0, Qt.AlignmentFlag.AlignVCenter)

    # --- public -------------------------------------------------------------------------------

    def set_results(self, results: Results | TaskResults | None) -> None:
        self.results = results
        self.chooser.set_results(results)
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        if results is not None:
            for name in feature_map_layers(results.model):
                shape = results.model.get_layer(name).output.shape
                self.layer_combo.addItem(f"{name}  ({shape_text(shape)})", name)
            self.layer_combo.setCurrentIndex(self.default_layer_row())
        self.layer_combo.blockSignals(False)
        self.results_changed()
        self.request_refresh()

    def set_sample(self, index: int) -> None:
        """Look at sample ``index`` (from a thumbnail elsewhere) without announcing it back."""
        if self.results is None or self.chooser.index() == index:
            return
        self.chooser.set_index(index)
        self.request_refresh()

    def layer_name(self) -> str | None:
        return self.layer_combo.currentData()

    def select_layer(self, name: str) -> None:
        row = self.layer_combo.findData(name)
        if row >= 0:
            self.layer_combo.setCurrentIndex(row)

    def layer_names(self) -> list[str]:
        return [self.layer_combo.itemData(row) for row in range(self.layer_combo.count())]

    def request_refresh(self) -> None:
        """Compute now if shown, else when next shown."""
        self._stale = True
        if self.isVisible():
            self.refresh()

    def is_busy(self) -> bool:
        """A computation runs or waits for this view."""
        return self._worker is not None or self._waiting is not None

    def refresh(self) -> None:
        """Start computing what the controls ask for; the answer replaces the view when it comes."""
        self._stale = False
        self._request += 1
        self._waiting = None
        layer_name = self.layer_name()
        if self.results is None or layer_name is None:
            self._cancel_running()
            self.show_nothing()
            if self.results is not None:
                self.show_error("The model has no layer with an image-like output (convolution, pooling...) "
                                "to look at.")
            self._update_busy()
            return
        work, show = self.compute(self.results, self.chooser.index(), layer_name)
        self._waiting = (self._request, work, show)
        if self._worker is None:
            self._start_waiting()
        else:
            self._cancel_running()  # its answer is stale; this request runs once it ends
        self._update_busy()

    def show_error(self, message: str) -> None:
        self.note.setText(f"<span style='color:{ERROR_COLOR}'>{html.escape(message)}</span>")

    # --- for subclasses -----------------------------------------------------------------------

    def default_layer_row(self) -> int:
        return 0

    def results_changed(self) -> None:
        """New results arrived (before the first refresh)."""

    def compute(self, results: Results | TaskResults, index: int, layer_name: str
                ) -> tuple[Callable[[], Any], Callable[[Any], None]]:
        """What to compute for this sample and layer, as ``(work, show)``: ``work()`` runs on a
        worker thread (give it plain data: the model, an image, numbers; never widgets) and its
        answer is passed to ``show`` on the GUI thread."""
        raise NotImplementedError

    def show_nothing(self) -> None:
        raise NotImplementedError

    # --- internals ----------------------------------------------------------------------------

    def _start_waiting(self) -> None:
        assert self._waiting is not None
        request, work, show = self._waiting
        self._waiting = None
        worker = create_worker(locked, work, name="convas-inspector", failure="Could not compute this view",
                               start=False)
        # Bound methods, not lambdas: should this view be deleted first, Qt drops the connections.
        worker.sigFinished.connect(self._on_answer)
        worker.sigFailed.connect(self._on_failure)
        worker.sigEnded.connect(self._on_ended)
        self._worker, self._worker_request, self._worker_show = worker, request, show
        worker.start()

    def _wanted(self) -> bool:
        """The running computation's answer is still what the controls ask for."""
        return self._worker_request == self._request and self._waiting is None

    def _on_answer(self, answer: Any) -> None:
        if self._wanted() and self._worker_show is not None:
            self._worker_show(answer)
            self.sigComputed.emit()

    def _on_failure(self, message: str) -> None:
        if self._wanted():
            self.show_nothing()
            self.show_error(message)
            self.sigComputed.emit()

    def _on_ended(self) -> None:
        self._worker = self._worker_show = None
        if self._waiting is not None:
            self._start_waiting()
        self._update_busy()

    def _cancel_running(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    def _update_busy(self) -> None:
        if not self.is_busy():
            self._busy_timer.stop()
            self.busy_bar.hide()
        elif not self.busy_bar.isVisible() and not self._busy_timer.isActive():
            self._busy_timer.start()

    def _on_sample(self, index: int) -> None:
        self.request_refresh()
        self.sigSampleChanged.emit(index)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._stale:
            self.refresh()
