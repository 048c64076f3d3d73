"""The Train panel: data, settings, Train/Pause/Stop, progress and live curves.

The panel mirrors ``document.training`` (the settings a ``.convas`` file keeps) and writes each
change back, marking the document modified. It trains a copy of the design taken when Train is
pressed, on a worker thread (:mod:`.worker`), so edits on the canvas never disturb a run. Per-batch
signals only append to numpy buffers; a timer redraws the curves and the progress, up to 20 Hz
but within a CPU budget (:mod:`.pacing`).

Heavy parts wait until the panel is first shown (or Train is pressed): the plots import
pyqtgraph, the dataset loads off the GUI thread, and TensorFlow is imported by the worker.
"""

from __future__ import annotations

import math
import sys
import time
from datetime import datetime
from typing import Any

from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QPainter, QPaintEvent, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QFrame, QGridLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QScrollArea, QSizePolicy, QStyle,
    QTabWidget, QToolButton, QVBoxLayout, QWidget,
)

from engine.errors import ConvasError
from engine.training import TrainingConfig, TrainingSettings

from ..document import Document
from ..inspector import _mute, _section, _sentence
from ..theme import ERROR_COLOR, WARNING_COLOR
from .dataset_box import DatasetBox, DatasetLoader, LoadedData, SamplePreview
from .pacing import FASTEST_MS, RedrawPacer
from .series import PLOTS
from .settings_form import SettingsForm
from .worker import TrainingWorker, start_worker

GIL_SWITCH_S = 0.001      # sys.setswitchinterval while training (see start)
PROGRESS_S = 0.2          # the progress bar moves at most this often
STOP_TIMEOUT_S = 30.0     # how long closing waits for a run to stop
MESSAGES_SHOWN = 4
_QUIET_MESSAGES = ("training paused", "training resumed")  # the buttons already say so

IDLE, STARTING, RUNNING, PAUSED, STOPPING = "idle", "starting", "running", "paused", "stopping"


def format_duration(seconds: float) -> str:
    """``0:42``, ``12:05``, ``1:02:03``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ElidedLabel(QLabel):
    """One line of plain text that shortens with "…" instead of widening the panel; the full
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


class _Divider(QWidget):
    """A 1-pixel vertical rule in a muted colour of the current palette."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedWidth(1)

    def paintEvent(self, _event: QPaintEvent) -> None:
        color = self.palette().color(QPalette.ColorRole.PlaceholderText)
        color.setAlpha(90)
        QPainter(self).fillRect(self.rect(), color)


class _RunClock:
    """Where a run is and how fast it goes: batches done, pauses, rate, ETA."""

    def __init__(self, epochs: int, batch_size: int) -> None:
        self.epochs, self.batch_size = epochs, batch_size
        self.started = time.perf_counter()
        self.first_batch: float | None = None
        self.batches = 0                  # per epoch, known from the first batch
        self.done = 0                     # batches reported (over all epochs)
        self.epoch = self.batch = 0
        self.paused_total = 0.0
        self.paused_since: float | None = None

    def on_batch(self, epoch: int, batch: int, batches: int) -> None:
        if self.first_batch is None:
            self.first_batch = time.perf_counter()
        self.batches = batches or self.batches
        self.epoch, self.batch = epoch, batch
        self.done += 1

    def pause(self, paused: bool) -> None:
        now = time.perf_counter()
        if paused and self.paused_since is None:
            self.paused_since = now
        elif not paused and self.paused_since is not None:
            self.paused_total += now - self.paused_since
            self.paused_since = None

    @property
    def total(self) -> int:
        return self.epochs * self.batches

    @property
    def position(self) -> int:
        return self.epoch * self.batches + self.batch + 1 if self.done else 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def batch_seconds(self) -> float | None:
        """Seconds per batch since the first batch (validation included, pauses excluded)."""
        if self.first_batch is None or self.done < 2:
            return None
        now = self.paused_since or time.perf_counter()
        active = now - self.first_batch - self.paused_total
        return active / (self.done - 1) if active > 0 else None

    def samples_per_s(self) -> float | None:
        seconds = self.batch_seconds()
        return self.batch_size / seconds if seconds else None

    def eta(self) -> float | None:
        seconds = self.batch_seconds()
        if seconds is None or not self.total:
            return None
        return max(0, self.total - self.position) * seconds


class TrainPanel(QWidget):
    """Trains the document's design and shows how it goes.

    Attributes after a run: ``result`` (the :class:`engine.training.TrainingResult`),
    ``result_model`` (the trained Keras model) and ``result_dataset`` (the dataset it was trained
    on); ``dataset`` is the dataset loaded for the current design.
    """

    sigTrainingStarted = Signal()
    sigTrainingFinished = Signal(object, object)   # Keras model, engine.datasets.Dataset
    sigStateChanged = Signal(str)
    sigStatusMessage = Signal(str)                 # for the window's status bar

    def __init__(self, document: Document, settings: QSettings | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.app_settings = settings  # the window's QSettings (the last data folder lives there)
        self.state = IDLE
        self.dataset: Any = None
        self.preview: LoadedData | None = None
        self.problems: list[str] = []
        self.notes: list[str] = []                 # warnings that do not block training
        self.messages: list[tuple[str, str]] = []  # (level, text) of the current or last run
        self.result: Any = None
        self.result_model: Any = None
        self.result_design: Any = None             # the snapshot the result was trained on
        self._run_design: Any = None
        self.result_dataset: Any = None
        self.worker: TrainingWorker | None = None
        self.thread: Any = None
        self._old_thread: Any = None
        self.curves: Any = None                    # TrainingCurves, made on first show
        self.batches_seen = 0                      # batch signals of the current or last run
        self.batches_after_stop = 0                # of those, how many came after Stop
        self._active = False
        self._io: Any = None
        self._io_error: str | None = None
        self._dataset_error: str | None = None
        self._loaded_key: tuple | None = None
        self._loading_key: tuple | None = None
        self._failed_key: tuple | None = None
        self._clock: _RunClock | None = None
        self._run_dataset: Any = None
        self._run_config: TrainingConfig | None = None
        self._run_result: Any = None
        self._run_error: str | None = None
        self._stop_requested = False
        self._dirty = False
        self._waiting = False
        self._start_pending = False               # Train was pressed while the data loaded
        self._hand_on = True                       # emit sigTrainingFinished when the run ends

        self.loader = DatasetLoader(self)
        self.loader.sigLoaded.connect(self._on_dataset_loaded)
        self.loader.sigFailed.connect(self._on_dataset_failed)
        self._timer = QTimer(self)
        self._flush_turn = 0
        self._progress_shown = 0.0  # time.monotonic() of the last progress bar move
        self._pacer = RedrawPacer()
        self._timer.setInterval(FASTEST_MS)
        self._timer.timeout.connect(self._tick)

        self._build()
        self.load_settings()
        document.analysed.connect(self._on_analysed)
        document.designReset.connect(self._on_design_reset)
        self._update_controls()

    # --- construction ---------------------------------------------------------------------

    def _build(self) -> None:
        style = self.style()
        self.act_train = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "&Train", self)
        self.act_train.setStatusTip("Train a copy of the design on the chosen data")
        self.act_train.triggered.connect(self.start)
        self.act_pause = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaPause), "&Pause", self)
        self.act_pause.triggered.connect(self.toggle_pause)
        self.act_stop = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaStop), "&Stop", self)
        self.act_stop.setStatusTip("Stop after the current batch, keeping the weights trained so far")
        self.act_stop.triggered.connect(self.stop)

        # Left: data and settings, scrollable so nothing is ever clipped.
        self.dataset_box = DatasetBox(self.app_settings, self)
        self.dataset_box.sigSourceChanged.connect(self._on_settings_changed)
        self.form = SettingsForm(self)
        self.form.sigChanged.connect(self._on_settings_changed)
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(10, 2, 10, 8)
        column.setSpacing(4)
        column.addWidget(_section("Data", left))
        column.addWidget(self.dataset_box)
        column.addWidget(_section("Settings", left))
        column.addWidget(self.form)
        column.addStretch(1)
        self.left_scroll = QScrollArea(self)
        self.left_scroll.setWidget(left)
        self.left_scroll.setWidgetResizable(True)
        self.left_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        width = max(left.sizeHint().width(), 400) + self.left_scroll.verticalScrollBar().sizeHint().width()
        self.left_scroll.setFixedWidth(width)

        # Right: controls, progress, messages, then curves and samples.
        self.train_button = self._button(self.act_train)
        self.train_button.setDefault(True)
        self.pause_button = self._button(self.act_pause)
        self.stop_button = self._button(self.act_stop)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.progress.setFormat("Not started")
        self.progress.setValue(0)
        self.progress.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        controls = QHBoxLayout()
        controls.setSpacing(6)
        for button in (self.train_button, self.pause_button, self.stop_button):
            controls.addWidget(button)
        controls.addSpacing(6)
        controls.addWidget(self.progress, 1)

        self.stats_label = ElidedLabel(self)
        self.epoch_label = ElidedLabel(self)
        self.snapshot_label = ElidedLabel(self)
        _mute(self.snapshot_label)
        self.snapshot_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        stats = QGridLayout()
        stats.setHorizontalSpacing(16)
        stats.setVerticalSpacing(2)
        stats.addWidget(self.stats_label, 0, 0)
        stats.addWidget(self.epoch_label, 1, 0)
        stats.addWidget(self.snapshot_label, 1, 1)
        stats.setColumnStretch(0, 3)
        stats.setColumnStretch(1, 2)

        self.problem_label = QLabel(self)
        self.problem_label.setWordWrap(True)
        self.problem_label.setTextFormat(Qt.TextFormat.RichText)
        self.problem_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem_label.hide()
        self.message_label = QLabel(self)
        self.message_label.setWordWrap(True)
        self.message_label.setTextFormat(Qt.TextFormat.RichText)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.hide()

        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.curves_page = QWidget()
        curves_layout = QVBoxLayout(self.curves_page)
        curves_layout.setContentsMargins(0, 4, 0, 0)
        self._curves_placeholder = QLabel("The loss and accuracy of each run appear here.", self.curves_page)
        self._curves_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        _mute(self._curves_placeholder)
        curves_layout.addWidget(self._curves_placeholder)
        self.sample_preview = SamplePreview(self)
        self.tabs.addTab(self.curves_page, "Curves")
        self.tabs.addTab(self.sample_preview, "Samples")
        self.clear_button = QToolButton(self)
        self.clear_button.setText("Clear runs")
        self.clear_button.setToolTip("Remove earlier runs from the plots")
        self.clear_button.setAutoRaise(True)
        self.clear_button.clicked.connect(self.clear_runs)
        self.tabs.setCornerWidget(self.clear_button, Qt.Corner.TopRightCorner)

        right = QVBoxLayout()
        right.setContentsMargins(10, 8, 10, 6)
        right.setSpacing(6)
        right.addLayout(controls)
        right.addLayout(stats)
        right.addWidget(self.problem_label)
        right.addWidget(self.message_label)
        right.addWidget(self.tabs, 1)

        divider = _Divider(self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.left_scroll)
        layout.addWidget(divider)
        layout.addLayout(right, 1)

    def _button(self, action: QAction) -> QPushButton:
        button = QPushButton(action.icon(), action.text().replace("&", ""), self)
        button.setToolTip(action.statusTip())
        button.clicked.connect(action.trigger)
        return button

    # --- public ---------------------------------------------------------------------------

    def activate(self) -> None:
        """Make the plots and load the data (once; called when the panel is first shown)."""
        if self._active:
            return
        self._active = True
        from .curves import TrainingCurves  # pyqtgraph: about a second, paid on first show

        self.curves = TrainingCurves(self.curves_page)
        layout = self.curves_page.layout()
        layout.removeWidget(self._curves_placeholder)
        self._curves_placeholder.deleteLater()
        layout.addWidget(self.curves)
        self._refresh_data()

    def is_training(self) -> bool:
        return self.thread is not None

    def can_train(self) -> bool:
        """True when Train would start a run right now."""
        return (self.state == IDLE and not self.is_training() and self.dataset is not None
                and self._loading_key is None and self._io is not None and not self.problems)

    def _train_enabled(self) -> bool:
        """Train may be pressed: ready, or not known to be impossible while the data loads."""
        if self.state != IDLE or self.is_training() or self.problems:
            return False
        return not self._active or self._loading_key is not None or self.can_train()

    def load_settings(self) -> None:
        """Show ``document.training``; unusable saved settings become the defaults."""
        try:
            settings = TrainingSettings.from_dict(self.document.training or None)
        except ConvasError as exc:
            settings = TrainingSettings()
            self.document.training = {}
            self.sigStatusMessage.emit(f"The training settings in this file are not usable ({exc}); "
                                       f"using the defaults")
        self.form.set_config(settings.config)
        self.dataset_box.set_source(settings.dataset)

    def settings(self) -> TrainingSettings:
        """What the form and the dataset choice say."""
        return TrainingSettings(self.dataset_box.source, self.form.config())

    def start(self) -> None:
        """Train a copy of the design as it is now; while the data is still loading, as soon as
        it is there (and fits)."""
        # The worker and this thread share the GIL. With Python's default 5 ms switch interval
        # each hand-over can keep one waiting 5 ms: the curves stutter and batches slow down
        # (measured in benchmarks/bench_gui_training.py). 1 ms keeps both moving.
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_S))
        self.activate()
        self._start_pending = False
        if not self.can_train():
            if self.state == IDLE and self._loading_key is not None and not self.problems:
                self._start_pending = True
                self.stats_label.setText("Training starts when the data is loaded…")
            return
        try:
            config = self.form.config()
        except ConvasError as exc:
            self.sigStatusMessage.emit(str(exc))
            return
        design = self.document.design.copy()
        self._run_design = design.copy()
        self._run_dataset, self._run_config = self.dataset, config
        self._run_result, self._run_error = None, None
        self._stop_requested = False
        self._hand_on = True
        self.batches_seen = self.batches_after_stop = 0
        self.messages.clear()
        self.epoch_label.clear()
        self._show_messages()
        self._clock = _RunClock(config.epochs, config.batch_size)
        self.curves.start_run(len(self._run_dataset.train), config.batch_size, config.epochs,
                              config.metrics[0] if config.metrics else "accuracy")
        self.snapshot_label.setText(f"Training a snapshot of the design from "
                                    f"{datetime.now():%H:%M}; edits apply to the next run")
        self.progress.setRange(0, 0)  # busy until the first batch tells how many there are
        self.progress.setFormat("Starting…")
        self.stats_label.setText("Starting…")
        self.tabs.setCurrentWidget(self.curves_page)

        worker = TrainingWorker(design, self._run_dataset, config, self.document.weights_file)
        worker.sigPhase.connect(self._on_phase)
        worker.sigBatch.connect(self._on_batch)
        worker.sigEpoch.connect(self._on_epoch)
        worker.sigMessage.connect(self._on_message)
        worker.sigFinished.connect(self._on_finished)
        worker.sigFailed.connect(self._on_failed)
        self.worker = worker
        if self._old_thread is not None:
            self._old_thread.deleteLater()  # the previous run's thread, finished long ago
            self._old_thread = None
        self.thread = start_worker(worker, self, on_thread_finished=self._on_thread_finished)
        self._timer.start(self._pacer.restart())
        self._set_state(STARTING)
        self.sigTrainingStarted.emit()

    def toggle_pause(self) -> None:
        if self.worker is None or self.state not in (RUNNING, PAUSED):
            return
        paused = self.state == RUNNING
        self.worker.set_paused(paused)
        if self._clock is not None:
            self._clock.pause(paused)
        self._set_state(PAUSED if paused else RUNNING)

    def stop(self) -> None:
        """Ask the run to stop after its current batch (the weights trained so far are kept)."""
        if self.worker is None or self.state not in (STARTING, RUNNING, PAUSED):
            return
        self._stop_requested = True
        self.worker.request_stop()
        if self._clock is not None:
            self._clock.pause(False)
        self._set_state(STOPPING)

    def stop_and_wait(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Stop a run and wait (handling events) until its thread ends; False on time-out.

        For closing or replacing the design: the model is kept in ``result_model`` but not handed
        on with ``sigTrainingFinished`` (nothing should start evaluating it now)."""
        if not self.is_training():
            return True
        if self._waiting:
            return False
        self._hand_on = False
        self.stop()
        thread = self.thread
        loop = QEventLoop()
        thread.finished.connect(loop.quit)
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        self._waiting = True
        try:
            if thread.isRunning():
                loop.exec()
        finally:
            self._waiting = False
        if self.thread is not thread:
            return True  # _on_thread_finished has run
        if not thread.wait(100):
            return False
        self._on_thread_finished()  # its queued call has not come yet
        return True

    def clear_runs(self) -> None:
        if self.curves is not None:
            self.curves.clear_runs(keep_current=self.is_training())

    # --- data -----------------------------------------------------------------------------

    def _refresh_data(self) -> None:
        """Re-read the design's input/output; load the data again if its input changed."""
        if not self._active:
            return
        from engine.data_source import model_io  # numpy; not needed before the panel shows
        from engine.datasets import DatasetError

        try:
            self._io, self._io_error = model_io(self.document.design, self.document.analysis), None
        except DatasetError as exc:
            self._io, self._io_error = None, str(exc)
        self._request_dataset()
        self._update_problems()

    def _dataset_key(self) -> tuple | None:
        if self._io is None:
            return None
        config = self.form.config()
        return (self.dataset_box.source, tuple(self._io.input_shape), config.validation_split, config.seed)

    def _request_dataset(self) -> None:
        key = self._dataset_key()
        if key is None or key in (self._loaded_key, self._loading_key, self._failed_key):
            return
        if self.is_training():
            return  # the run keeps its data; _on_thread_finished asks again
        self._loading_key = key
        self._dataset_error = None
        self.dataset_box.show_loading()
        self.loader.load(*key)
        self._update_controls()

    def _on_dataset_loaded(self, loaded: LoadedData) -> None:
        self._loaded_key, self._loading_key, self._failed_key = self._loading_key, None, None
        self.dataset, self.preview = loaded.dataset, loaded
        self.notes = list(loaded.dataset.warnings)
        self.dataset_box.show_dataset(loaded.dataset)
        self.sample_preview.show_data(loaded)
        self._update_problems()
        self._request_dataset()  # the design may have changed while this one loaded
        if self._start_pending and self.state == IDLE:
            if self.can_train():
                self.start()
            elif self._loading_key is None:
                self._start_pending = False
                self.stats_label.clear()

    def _on_dataset_failed(self, message: str) -> None:
        self._failed_key, self._loading_key, self._loaded_key = self._loading_key, None, None
        self.dataset, self.preview, self.notes = None, None, []
        self._dataset_error = message
        self.dataset_box.show_error(message)
        self.sample_preview.show_message("No images: the data could not be loaded.")
        self._update_problems()
        self._request_dataset()
        if self._start_pending and self._loading_key is None:
            self._start_pending = False
            self.stats_label.clear()

    def _update_problems(self) -> None:
        problems: list[str] = []
        if self._io_error:
            problems = [self._io_error]
        elif self._dataset_error:
            problems = [self._dataset_error]
        elif self.dataset is not None and self._loading_key is None and self._io is not None:
            from engine.data_source import dataset_problems

            problems = dataset_problems(self.dataset, self._io, self.form.config().loss)
        self.problems = problems
        parts = []
        if len(problems) == 1:
            parts.append(f"<b>Cannot train yet:</b> {_escape(_sentence(problems[0]))}")
        elif problems:
            parts.append("<b>Cannot train yet:</b><br>"
                         + "<br>".join(f"• {_escape(_sentence(p))}" for p in problems))
        if parts:
            parts[0] = f"<span style='color:{ERROR_COLOR}'>{parts[0]}</span>"
        parts += [f"<span style='color:{WARNING_COLOR}'>⚠</span> {_escape(note)}" for note in self.notes]
        text = "<br>".join(parts)
        self.problem_label.setText(text)
        self.problem_label.setVisible(bool(text))
        self._update_controls()

    # --- document -------------------------------------------------------------------------

    def _on_analysed(self) -> None:
        self._refresh_data()

    def _on_design_reset(self) -> None:
        self.load_settings()
        self.result = self.result_model = self.result_dataset = None
        if self.curves is not None:
            self.curves.clear_runs(keep_current=self.is_training())
        if not self.is_training():
            self.snapshot_label.clear()
            self.messages.clear()
            self._show_messages()
        self._refresh_data()

    def _on_settings_changed(self, *_args: Any) -> None:
        try:
            new = self.settings().to_dict()
        except ConvasError as exc:
            self.sigStatusMessage.emit(str(exc))
            return
        try:
            old = TrainingSettings.from_dict(self.document.training or None).to_dict()
        except ConvasError:
            old = None
        if new != old:
            self.document.training = new
            self.document.mark_unsaved()
        self._request_dataset()
        self._update_problems()

    # --- the run --------------------------------------------------------------------------

    def _on_phase(self, text: str) -> None:
        if self.state in (STARTING, STOPPING):
            self.progress.setFormat(text)
            self.stats_label.setText(text)

    def _on_batch(self, epoch: int, batch: int, batches: int, logs: dict) -> None:
        # O(1): counters and buffer appends; drawing waits for the timer.
        self.batches_seen += 1
        if self._stop_requested:
            self.batches_after_stop += 1
        if self.state == STARTING:
            self._set_state(RUNNING)
        self._clock.on_batch(epoch, batch, batches)
        self.curves.add_batch(epoch, batch, batches, logs)
        self._dirty = True

    def _on_epoch(self, epoch: int, logs: dict) -> None:
        self.curves.add_epoch(epoch, logs)
        self._show_epoch(epoch, logs)
        self._dirty = True

    def _on_message(self, text: str) -> None:
        if text in _QUIET_MESSAGES:
            return
        level = "warning" if ("became nan" in text.lower() or "became infinite" in text.lower()) else "info"
        self.messages.append((level, text))
        self._show_messages()

    def _on_finished(self, result: Any) -> None:
        self._run_result = result

    def _on_failed(self, message: str) -> None:
        self._run_error = message
        self.messages.append(("error", message))
        self._show_messages()

    def _on_thread_finished(self) -> None:
        """The run is over and its thread has ended: show the outcome, hand the model on."""
        thread = self.thread
        if thread is None:
            return
        thread.wait()
        self.thread = self.worker = None
        self._old_thread = thread
        self._timer.stop()
        self._tick(force=True)
        result, clock = self._run_result, self._clock
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        if self._run_error is not None:
            self.progress.setFormat("Failed")
            self.sigStatusMessage.emit(self._run_error)
        elif result is not None and result.model is not None:
            self.result, self.result_model, self.result_dataset = result, result.model, self._run_dataset
            self.result_design = self._run_design
            if not result.stopped_early and clock is not None and clock.total:
                self.progress.setValue(self.progress.maximum())
            done = "Stopped" if result.stopped_early else "Finished"
            epochs = f"{result.epochs_run} epoch{'s' if result.epochs_run != 1 else ''}"
            rate = clock.samples_per_s() if clock is not None else None
            self.stats_label.setText(f"{done} after {epochs} in {format_duration(clock.elapsed())}"
                                     + (f" · {rate:,.0f} samples/s" if rate else ""))
            self.snapshot_label.setText(self.snapshot_label.text().replace("Training a", "Trained a")
                                        .split(";")[0])
            self.progress.setFormat(f"{done} · {self.progress.format()}" if clock and clock.done else done)
        else:
            self.progress.setFormat("Stopped before training began")
            self.stats_label.setText("Stopped before training began")
        self._set_state(IDLE)
        self._refresh_data()  # the design or the data may have changed during the run
        if result is not None and result.model is not None and self._run_error is None and self._hand_on:
            self.sigTrainingFinished.emit(result.model, self._run_dataset)

    def _tick(self, force: bool = False) -> None:
        """Redraw curves and progress (up to 20 Hz while training, slower when drawing would
        take more than its CPU budget; see :mod:`.pacing`), only when something arrived."""
        interval = self._pacer.tick()
        if interval != self._timer.interval():
            self._timer.setInterval(interval)
        if self.curves is not None:
            # One plot per tick, in turn (each redraws at 10 Hz), all of them when forced.
            self._flush_turn = (self._flush_turn + 1) % len(PLOTS)
            self.curves.flush(PLOTS if force else (PLOTS[self._flush_turn],))
        clock = self._clock
        if clock is None or not (self._dirty or force or self.state in (RUNNING, STARTING)):
            return
        self._dirty = False
        now = time.monotonic()
        # QProgressBar.setValue repaints synchronously: move it at 5 Hz, not at every tick.
        if clock.done and clock.total and (force or now - self._progress_shown >= PROGRESS_S):
            self._progress_shown = now
            if self.progress.maximum() != clock.total:
                self.progress.setRange(0, clock.total)
            self.progress.setValue(min(clock.position, clock.total))
            self.progress.setFormat(f"Epoch {clock.epoch + 1}/{clock.epochs} · batch "
                                    f"{clock.batch + 1}/{clock.batches}")
        if self.state in (RUNNING, PAUSED, STOPPING) and clock.done:
            parts = []
            rate = clock.samples_per_s()
            if rate:
                parts.append(f"{rate:,.0f} samples/s")
            eta = clock.eta()
            if eta is not None and self.state == RUNNING:
                parts.append(f"ETA {format_duration(eta)}")
            parts.append(f"{format_duration(clock.elapsed())} elapsed")
            if self.state == PAUSED:
                parts.insert(0, "Paused")
            elif self.state == STOPPING:
                parts.insert(0, "Stopping after this batch…")
            text = " · ".join(parts)
            if text != self.stats_label.text():
                self.stats_label.setText(text)

    def _show_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        """``Epoch 2: loss 0.3298 · accuracy 90.5 % · val loss 0.2895 · val accuracy 90.3 %``."""
        shown = [(k, v) for k, v in logs.items() if k not in ("lr", "samples_per_s")]
        order = {"loss": 0, "accuracy": 1, "val_loss": 2, "val_accuracy": 3}
        shown.sort(key=lambda kv: (order.get(kv[0], 9), kv[0]))
        values = [f"{k.replace('_', ' ')} {v * 100:.1f} %" if k.endswith("accuracy") and math.isfinite(v)
                  else f"{k.replace('_', ' ')} {v:.4g}" for k, v in shown]
        config = self._run_config
        if "lr" in logs and config is not None and not math.isclose(logs["lr"], config.learning_rate,
                                                                    rel_tol=1e-5):
            values.append(f"learning rate now {logs['lr']:.3g}")  # lowered on a plateau
        self.epoch_label.setText(f"Epoch {epoch + 1}: " + " · ".join(values))

    def _show_messages(self) -> None:
        lines = []
        for level, text in self.messages[-MESSAGES_SHOWN:]:
            body = _escape(_sentence(text))
            if level == "warning":
                lines.append(f"<span style='color:{WARNING_COLOR}'><b>⚠ {body}</b></span>")
            elif level == "error":
                lines.append(f"<span style='color:{ERROR_COLOR}'><b>✕ {body}</b></span>")
            else:
                lines.append(f"ⓘ {body}")
        self.message_label.setText("<br>".join(lines))
        self.message_label.setVisible(bool(lines))

    # --- state ----------------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        self._update_controls()
        self.sigStateChanged.emit(state)

    def _update_controls(self) -> None:
        state = self.state
        busy = state != IDLE
        self.act_train.setEnabled(self._train_enabled())
        self.act_pause.setEnabled(state in (RUNNING, PAUSED))
        self.act_pause.setText("&Resume" if state == PAUSED else "&Pause")
        self.act_pause.setIcon(self.style().standardIcon(
            QStyle.StandardPixmap.SP_MediaPlay if state == PAUSED else QStyle.StandardPixmap.SP_MediaPause))
        self.act_stop.setEnabled(state in (STARTING, RUNNING, PAUSED))
        for button, action in ((self.train_button, self.act_train), (self.pause_button, self.act_pause),
                               (self.stop_button, self.act_stop)):
            button.setEnabled(action.isEnabled())
            button.setText(action.text().replace("&", ""))
            button.setIcon(action.icon())
        self.dataset_box.setEnabled(not busy)
        self.form.setEnabled(not busy)
        if state == IDLE and self.problems:
            self.train_button.setToolTip("Fix the problems shown to train")
        elif state == IDLE and self._loading_key is not None:
            self.train_button.setToolTip("Loading the data…")
        else:
            self.train_button.setToolTip(self.act_train.statusTip())

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.activate_when_seen()

    def activate_when_seen(self) -> None:
        """Activate once the panel is really on screen (call when its dock may have become
        visible): a dock tabbed behind another is "visible" but moved out of sight."""
        if not self._active:
            QTimer.singleShot(0, self._activate_if_seen)  # paint first, then load plots and data

    def _activate_if_seen(self) -> None:
        if self.isVisible() and not self.visibleRegion().isEmpty():
            self.activate()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
