"""The Train panel: data, settings, Train/Pause/Stop, progress and live curves.

The panel mirrors ``document.training`` (the settings a ``.convas`` file keeps) and writes each
change back, marking the document modified. What a run is — its state, thread, clock, messages and
results, and the data loaded for the design — lives in a widget-free :class:`.session.TrainingSession`
that this panel draws; the run trains a copy of the design taken when Train is pressed, so edits on
the canvas never disturb it. Per-batch signals only append to numpy buffers; a timer redraws the
curves and the progress, up to 20 Hz but within a CPU budget (:mod:`.pacing`).

The task (classification, multi-label, regression, reconstruction, segmentation) is the form's
choice or, when automatic, what the design's output and the loaded data suggest; it decides how
the data is read, the losses offered, the problems checked and the curves drawn. When the head of
the design does not fit the data, "Fit Head to Data" fits it in one undo step
(:func:`gui.head_fit.fit_head`).

Heavy parts wait until the panel is first shown (or Train is pressed): the plots import
pyqtgraph, the dataset loads off the GUI thread, and TensorFlow is imported by the worker.
"""

from __future__ import annotations

import math
import sys
import time
from functools import lru_cache
from typing import Any

from PySide6.QtCore import QBuffer, QIODevice, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QPainter, QPaintEvent, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QGridLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QStyle,
    QTabWidget, QToolButton, QVBoxLayout, QWidget,
)

from engine.errors import ConvasError
from engine.tasks import Task, spec
from engine.training import MessageKind, TrainingConfig, TrainingSettings

from ..document import Document
from ..theme import ERROR_COLOR, WARNING_COLOR
from ..widgets import ElidedLabel, mute, sentence, settings_column
from .dataset_box import DatasetBox, SamplePreview
from .loading import LoadedData
from .pacing import FASTEST_MS, RedrawPacer
from .series import PLOTS, UNIT_METRICS
from .session import STOP_TIMEOUT_S, RunState, TrainingSession
from .settings_form import SettingsForm

__all__ = ["STOP_TIMEOUT_S", "TrainPanel", "format_duration"]

GIL_SWITCH_S = 0.001      # sys.setswitchinterval while training (see start)
PROGRESS_S = 0.2          # the progress bar moves at most this often
MESSAGES_SHOWN = 4
PAUSE_CLUSTER_TIP = ("A cluster run cannot pause: its workers wait on one another in every step and "
                     "would time out. Stop it instead (the model trained so far is kept)")
_QUIET_MESSAGES = (MessageKind.PAUSED, MessageKind.RESUMED)  # the Pause button already says so

IDLE, STARTING, RUNNING, PAUSED, STOPPING = (RunState.IDLE, RunState.STARTING, RunState.RUNNING,
                                             RunState.PAUSED, RunState.STOPPING)


def format_duration(seconds: float) -> str:
    """``0:42``, ``12:05``, ``1:02:03``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Divider(QWidget):
    """A 1-pixel vertical rule in a muted colour of the current palette."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedWidth(1)

    def paintEvent(self, _event: QPaintEvent) -> None:
        color = self.palette().color(QPalette.ColorRole.PlaceholderText)
        color.setAlpha(90)
        QPainter(self).fillRect(self.rect(), color)


class TrainPanel(QWidget):
    """Trains the document's design and shows how it goes; :attr:`session` is the run itself.

    ``result``, ``result_model``, ``result_design`` and ``result_dataset`` read the session's
    outcome of the last run that trained a model.
    """

    sigTrainingStarted = Signal()
    # Keras model, engine.datasets.Dataset, engine.tasks.Task, noise std-dev, loss (None: default):
    # what the evaluation panel's set_result takes.
    sigTrainingFinished = Signal(object, object, object, float, object)
    sigStatusMessage = Signal(str)                 # for the window's status bar

    def __init__(self, document: Document, settings: QSettings | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.app_settings = settings  # the window's QSettings (the last data folder lives there)
        self.session = TrainingSession(self)
        self.curves: Any = None                    # TrainingCurves, made on first show
        self._active = False
        self._dirty = False

        session = self.session
        session.sigStateChanged.connect(self._on_state_changed)
        session.sigPhase.connect(self._on_phase)
        session.sigFineTuning.connect(self._on_fine_tuning)
        session.sigBatch.connect(self._on_batch)
        session.sigEpoch.connect(self._on_epoch)
        session.sigMessagesChanged.connect(self._show_messages)
        session.sigEnded.connect(self._on_run_ended)
        session.sigFinished.connect(self.sigTrainingFinished)
        session.sigDataLoading.connect(self._on_dataset_loading)
        session.sigDataLoaded.connect(self._on_dataset_loaded)
        session.sigDataFailed.connect(self._on_dataset_failed)
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
        document.trainingChanged.connect(self._on_training_changed)
        document.pathChanged.connect(self._show_project)
        document.modifiedChanged.connect(self._show_project)
        self._update_controls()

    # --- the session's outcome, read-only (the window's weights code reads these) -------------

    @property
    def state(self) -> RunState:
        return self.session.state

    @property
    def dataset(self) -> Any:
        """The dataset loaded for the current design (None until it is)."""
        return self.session.dataset

    @property
    def result(self) -> Any:
        return self.session.result

    @property
    def result_model(self) -> Any:
        return self.session.result_model

    @property
    def result_design(self) -> Any:
        return self.session.result_design

    @property
    def result_dataset(self) -> Any:
        return self.session.result_dataset

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
        self.dataset_box.sigPixelRangeChanged.connect(self._on_settings_changed)
        self.dataset_box.sigTargetColumnsChanged.connect(self._on_settings_changed)
        self.form = SettingsForm(self)
        self.form.sigChanged.connect(self._on_settings_changed)
        self.left_scroll = settings_column(self, [("Data", self.dataset_box), ("Settings", self.form)])

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
        # Which snapshot a run trains: wrapped over the two lines beside the stats, never cut short.
        self.snapshot_label = QLabel(self)
        self.snapshot_label.setTextFormat(Qt.TextFormat.PlainText)
        self.snapshot_label.setWordWrap(True)
        mute(self.snapshot_label)
        self.snapshot_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.snapshot_label.hide()
        stats = QGridLayout()
        stats.setHorizontalSpacing(16)
        stats.setVerticalSpacing(2)
        stats.addWidget(self.stats_label, 0, 0)
        stats.addWidget(self.epoch_label, 1, 0)
        stats.addWidget(self.snapshot_label, 0, 1, 2, 1)
        stats.setColumnStretch(0, 3)
        stats.setColumnStretch(1, 2)

        self.problem_label = QLabel(self)
        self.problem_label.setWordWrap(True)
        self.problem_label.setTextFormat(Qt.TextFormat.RichText)
        self.problem_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem_label.hide()
        self.fit_head_button = QPushButton("Fit Head to Data", self)
        self.fit_head_button.setToolTip("Set the output layer (or add a head) for the data's classes or "
                                        "targets and the task; one undo step")
        self.fit_head_button.clicked.connect(self.fit_head)
        self.fit_head_button.hide()
        self.message_label = QLabel(self)
        self.message_label.setWordWrap(True)
        self.message_label.setTextFormat(Qt.TextFormat.RichText)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.hide()

        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.curves_page = QWidget()
        self._curves_layout = QVBoxLayout(self.curves_page)
        self._curves_layout.setContentsMargins(0, 4, 0, 0)
        self._curves_placeholder = QLabel("The loss and accuracy of each run appear here.", self.curves_page)
        self._curves_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        mute(self._curves_placeholder)
        self._curves_layout.addWidget(self._curves_placeholder)
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
        right.addWidget(self.fit_head_button, 0, Qt.AlignmentFlag.AlignLeft)
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
        self._curves_layout.removeWidget(self._curves_placeholder)
        self._curves_placeholder.deleteLater()
        self._curves_layout.addWidget(self.curves)
        self._refresh_data()
        self._show_task()

    def is_training(self) -> bool:
        return self.session.is_training()

    def can_train(self) -> bool:
        """True when Train would start a run right now."""
        return self.session.can_train()

    def _train_enabled(self) -> bool:
        """Train may be pressed: ready, or not known to be impossible while the data loads."""
        session = self.session
        if session.state != IDLE or session.is_training() or session.problems \
                or self.form.fine_tuning_problem() or self.form.run_on_problem():
            return False
        return not self._active or session.is_loading() or session.can_train()

    def load_settings(self) -> None:
        """Show ``document.training``; unusable saved settings become the defaults."""
        settings = self.document.training
        if self.document.training_error is not None:
            self.sigStatusMessage.emit(f"The training settings in this file are not usable "
                                       f"({self.document.training_error}); using the defaults")
        self.form.set_config(settings.config)
        self.form.set_run_on(settings.distribution)
        self.form.set_search(settings.search)
        self.dataset_box.set_source(settings.dataset)
        self.dataset_box.set_pixel_range(settings.pixel_range)
        self.dataset_box.set_target_columns(settings.target_columns)
        self._show_task()
        self._show_project()

    def _show_project(self, *_args: Any) -> None:
        """The project the cluster's commands for other machines name, and whether it is saved."""
        document = self.document
        source = self.dataset_box.source.strip().lower()
        self.form.run_on_box.set_project(document.path, document.design.name or "design", document.modified,
                                         source not in ("digits", "shapes"))

    def settings(self) -> TrainingSettings:
        """What the form and the dataset choice say."""
        return TrainingSettings(self.dataset_box.source, self.form.config(), self.dataset_box.pixel_range,
                                self.dataset_box.target_columns, self.form.run_on(), self.form.search_ranges())

    def task(self) -> Task:
        """The task the next run learns: the form's choice, else the inferred one."""
        return self.session.choose_task(self.form.chosen_task())

    def fit_head(self) -> None:
        """Fit the design's head to the loaded data and the task, in one undo step."""
        if self.session.dataset is None:
            return
        from ..head_fit import fit_head

        try:
            refused = fit_head(self.document, self.session.dataset, self.task())
        except ConvasError as exc:
            refused = sentence(str(exc))
        if refused:
            self.sigStatusMessage.emit(refused)

    def start(self) -> None:
        """Train a copy of the design as it is now; while the data is still loading, as soon as
        it is there (and fits)."""
        # The worker and this thread share the GIL. With Python's default 5 ms switch interval
        # each hand-over can keep one waiting 5 ms: the curves stutter and batches slow down
        # (measured in benchmarks/bench_gui_training.py). 1 ms keeps both moving.
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_S))
        self.activate()
        session = self.session
        session.start_pending = False
        if not session.can_train():
            if session.state == IDLE and session.is_loading() and not session.problems:
                session.start_pending = True
                self.stats_label.setText("Training starts when the data is loaded…")
            return
        try:
            config = self.form.config()
        except ConvasError as exc:
            self.sigStatusMessage.emit(str(exc))
            return
        self.epoch_label.clear()
        metrics, shown = run_metrics(session.choose_task(config.task), config.metrics)
        self.curves.start_run(len(session.dataset.train), config.batch_size, config.epochs, shown, metrics)
        self.progress.setRange(0, 0)  # busy until the first batch tells how many there are
        self.progress.setFormat("Starting…")
        self.stats_label.setText("Starting…")
        self.tabs.setCurrentWidget(self.curves_page)
        session.start(self.document.design, config, self.document.weights, self.settings())
        self._timer.start(self._pacer.restart())
        self._show_snapshot()
        self._update_problems()  # problems of the design now concern the next run
        self.sigTrainingStarted.emit()

    def toggle_pause(self) -> None:
        self.session.toggle_pause()

    def stop(self) -> None:
        """Ask the run to stop after its current batch (the weights trained so far are kept)."""
        self.session.stop()

    def stop_and_wait(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """See :meth:`TrainingSession.stop_and_wait`."""
        return self.session.stop_and_wait(timeout_s)

    def clear_runs(self) -> None:
        if self.curves is not None:
            self.curves.clear_runs(keep_current=self.is_training())

    # --- data -----------------------------------------------------------------------------

    def _refresh_data(self) -> None:
        """Re-read the design's input/output; load the data again if its input changed."""
        self.form.set_design(self.document.design, self.document.analysis)
        if not self._active:
            return
        self.session.read_design(self.document.design, self.document.analysis)
        self._request_dataset()
        self._update_problems()

    def _request_dataset(self) -> None:
        try:
            config = self.form.config(fine_tuning=False)
        except ConvasError:
            return  # the form says why
        key = self.session.dataset_key(self.dataset_box.source, config, self.dataset_box.pixel_range,
                                       self.dataset_box.target_columns)
        self.session.request_dataset(key)

    def _show_task(self) -> None:
        """What "Automatic" means now, and the fields that depend on the task."""
        task = self.task()
        self.form.set_inferred_task(self.session.choose_task(None))
        if self.curves is not None:  # made on first show, which shows the task again
            self.curves.title_next_run(run_metrics(task, self.document.training.config.metrics)[1])
        self.dataset_box.want_target_columns(self.dataset_box.is_csv()
                                             and task in (Task.REGRESSION, Task.MULTILABEL))

    def _on_dataset_loading(self) -> None:
        self.dataset_box.show_loading()
        self._update_controls()

    def _on_dataset_loaded(self, loaded: LoadedData) -> None:
        self.dataset_box.show_dataset(loaded.dataset)
        self.sample_preview.show_data(loaded)
        self._update_problems()
        self._request_dataset()  # the design may have changed while this one loaded
        session = self.session
        if session.start_pending and session.state == IDLE:
            if session.can_train():
                self.start()
            elif not session.is_loading():
                session.start_pending = False
                self.stats_label.clear()

    def _on_dataset_failed(self, message: str) -> None:
        self.dataset_box.show_error(message)
        self.sample_preview.show_message("No images: the data could not be loaded.")
        self._update_problems()
        self._request_dataset()
        session = self.session
        if session.start_pending and not session.is_loading():
            session.start_pending = False
            self.stats_label.clear()

    def _update_problems(self) -> None:
        self._show_task()
        config = self.form.config(fine_tuning=False)
        problems = self.session.find_problems(config.loss, config.task)
        # While a run goes on, the design's problems are about the next run, not this one.
        training = self.session.is_training()
        title = "The next run cannot start yet:" if training else "Cannot train yet:"
        parts = []
        if len(problems) == 1:
            parts.append(f"<b>{title}</b> {_escape(sentence(problems[0]))}")
        elif problems:
            parts.append(f"<b>{title}</b><br>" + "<br>".join(f"• {_escape(sentence(p))}" for p in problems))
        if parts:
            parts[0] = f"<span style='color:{WARNING_COLOR if training else ERROR_COLOR}'>{parts[0]}</span>"
        parts += [f"{_icon_html(self, MessageKind.WARNING)} {_escape(note)}" for note in self.session.notes]
        text = "<br>".join(parts)
        self.problem_label.setText(text)
        self.problem_label.setVisible(bool(text))
        self.fit_head_button.setVisible(self.session.head_problem is not None and not training)
        self._update_controls()

    # --- document -------------------------------------------------------------------------

    def _on_analysed(self) -> None:
        self._refresh_data()

    def _on_design_reset(self) -> None:
        """A whole new design: the last run's model is not its model; when no run is going,
        nothing of that run is shown either."""
        self.load_settings()
        self.session.forget_results()
        if self.curves is not None:
            self.curves.clear_runs(keep_current=self.is_training())
        if not self.is_training():
            self.session.forget_run()
            self.stats_label.clear()
            self.epoch_label.clear()
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("Not started")
            self._show_snapshot()
        self._refresh_data()

    def _on_training_changed(self) -> None:
        """The document's settings changed elsewhere (a fix switched the pixel range): show them."""
        try:
            shown = self.settings()
        except ConvasError:
            shown = None
        if shown != self.document.training:
            self.load_settings()
            self._request_dataset()
            self._update_problems()

    def _on_settings_changed(self, *_args: Any) -> None:
        self._show_project()
        try:
            new = self.settings()
        except ConvasError as exc:  # the form shows it too, beside the field
            self.sigStatusMessage.emit(sentence(str(exc)))
            self._request_dataset()
            self._update_problems()
            return
        if new != self.document.training:
            self.document.set_training(new)
        self._request_dataset()
        self._update_problems()

    # --- the run --------------------------------------------------------------------------

    def _on_state_changed(self, state: RunState) -> None:
        self._update_controls()
        self._show_snapshot()

    def _on_phase(self, text: str) -> None:
        self.progress.setFormat(text)
        self.stats_label.setText(text)

    def _on_fine_tuning(self, epoch: int) -> None:
        """Phase two began after ``epoch`` epochs: mark it on the curves."""
        if self.curves is not None:
            self.curves.mark_phase(epoch)
        self._dirty = True

    def _phase_text(self) -> str:
        """"Phase 1 of 2: head" or "Phase 2 of 2: fine-tuning" during a two-phase run."""
        config: TrainingConfig | None = self.session.run_config
        if config is None or config.head_epochs is None:
            return ""
        if self.session.phase_epoch is None:
            return "Phase 1 of 2: head"
        return "Phase 2 of 2: fine-tuning"

    def _on_batch(self, epoch: int, batch: int, batches: int, logs: dict) -> None:
        # O(1): buffer appends; drawing waits for the timer.
        self.curves.add_batch(epoch, batch, batches, logs)
        self._dirty = True

    def _on_epoch(self, epoch: int, logs: dict) -> None:
        self.curves.add_epoch(epoch, logs)
        self._show_epoch(epoch, logs)
        self._dirty = True

    def _on_run_ended(self) -> None:
        """Show the outcome of the run that ended (the session keeps it)."""
        session = self.session
        self._timer.stop()
        self._tick(force=True)
        result, clock = session.run_result, session.clock
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        if session.run_error is not None:
            self.progress.setFormat("Failed")
            self.stats_label.clear()  # the message below says why; "Building the model…" is over
            self.sigStatusMessage.emit(session.run_error)
        elif session.trained():
            if not result.stopped_early and clock is not None and clock.total:
                self.progress.setValue(self.progress.maximum())
            done = "Stopped" if result.stopped_early else "Finished"
            epochs = f"{result.epochs_run} epoch{'s' if result.epochs_run != 1 else ''}"
            rate = clock.samples_per_s() if clock is not None else None
            elapsed = format_duration(clock.elapsed()) if clock is not None else "–"
            phases = (f" ({result.phase_epochs} on the head, then fine-tuning)"
                      if result.phase_epochs is not None and result.phase_epochs < result.epochs_run else "")
            self.stats_label.setText(f"{done} after {epochs}{phases} in {elapsed}"
                                     + (f" · {rate:,.0f} samples/s" if rate else ""))
            self.progress.setFormat(f"{done} · {self.progress.format()}" if clock and clock.done else done)
        else:
            self.progress.setFormat("Stopped before training began")
            self.stats_label.setText("Stopped before training began")
        self._show_snapshot()
        self._refresh_data()  # the design or the data may have changed during the run

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
        clock, state = self.session.clock, self.session.state
        if clock is None or not (self._dirty or force or state in (RUNNING, STARTING)):
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
        if state in (RUNNING, PAUSED, STOPPING) and clock.done:
            parts = []
            rate = clock.samples_per_s()
            if rate:
                parts.append(f"{rate:,.0f} samples/s")
            eta = clock.eta()
            if eta is not None and state == RUNNING:
                parts.append(f"ETA {format_duration(eta)}")
            parts.append(f"{format_duration(clock.elapsed())} elapsed")
            phase = self._phase_text()
            if phase:
                parts.insert(0, phase)
            if state == PAUSED:
                parts.insert(0, "Paused")
            elif state == STOPPING:
                parts.insert(0, "Stopping after this batch…")
            text = " · ".join(parts)
            if text != self.stats_label.text():
                self.stats_label.setText(text)

    def _show_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        """``Epoch 2: loss 0.3298 · accuracy 90.5 % · val loss 0.2895 · val accuracy 90.3 %``."""
        shown = [(k, v) for k, v in logs.items() if k not in ("lr", "samples_per_s")]
        shown.sort(key=lambda kv: (kv[0].startswith("val_"), kv[0] != "loss" and kv[0] != "val_loss"))
        values = [f"{_log_name(k)} {v * 100:.1f} %" if _is_share(k) and math.isfinite(v)
                  else f"{_log_name(k)} {v:.4g}" for k, v in shown]
        config = self.session.run_config
        if "lr" in logs and config is not None and not math.isclose(logs["lr"], config.learning_rate,
                                                                    rel_tol=1e-5):
            values.append(f"learning rate now {logs['lr']:.3g}")  # lowered on a plateau
        self.epoch_label.setText(f"Epoch {epoch + 1}: " + " · ".join(values))

    def _show_messages(self) -> None:
        """The last few messages of the run, each with the icon of its kind."""
        lines = []
        shown = [m for m in self.session.messages if m.kind not in _QUIET_MESSAGES]
        for message in shown[-MESSAGES_SHOWN:]:
            body = _escape(sentence(message.text))
            icon = _icon_html(self, message.kind)
            if message.kind is MessageKind.ERROR:
                lines.append(f"{icon} <span style='color:{ERROR_COLOR}'><b>{body}</b></span>")
            elif message.kind.is_warning:
                lines.append(f"{icon} <span style='color:{WARNING_COLOR}'><b>{body}</b></span>")
            else:
                lines.append(f"{icon} {body}")
        self.message_label.setText("<br>".join(lines))
        self.message_label.setVisible(bool(lines))

    def _show_snapshot(self) -> None:
        """Which design the current or last run trains, said from the session's state."""
        session = self.session
        when = session.started_at
        if when is None:
            text = ""
        elif session.is_training():
            text = f"Training a snapshot of the design from {when:%H:%M}; edits apply to the next run"
        elif session.trained():
            text = f"Trained a snapshot of the design from {when:%H:%M}"
        else:
            text = ""
        self.snapshot_label.setText(text)
        self.snapshot_label.setToolTip(text)
        self.snapshot_label.setVisible(bool(text))

    # --- state ----------------------------------------------------------------------------

    def _update_controls(self) -> None:
        session = self.session
        state = session.state
        busy = state != IDLE
        self.act_train.setEnabled(self._train_enabled())
        self.act_pause.setEnabled(state in (RUNNING, PAUSED) and session.can_pause())
        self.act_pause.setText("&Resume" if state == PAUSED else "&Pause")
        self.act_pause.setIcon(self.style().standardIcon(
            QStyle.StandardPixmap.SP_MediaPlay if state == PAUSED else QStyle.StandardPixmap.SP_MediaPause))
        self.act_stop.setEnabled(state in (STARTING, RUNNING, PAUSED))
        for button, action in ((self.train_button, self.act_train), (self.pause_button, self.act_pause),
                               (self.stop_button, self.act_stop)):
            button.setEnabled(action.isEnabled())
            button.setText(action.text().replace("&", ""))
            button.setIcon(action.icon())
        self.pause_button.setToolTip(PAUSE_CLUSTER_TIP if session.is_training() and not session.can_pause()
                                     else self.act_pause.statusTip())
        self.dataset_box.setEnabled(not busy)
        self.form.setEnabled(not busy)
        if state == IDLE and (session.problems or self.form.fine_tuning_problem() or self.form.run_on_problem()):
            self.train_button.setToolTip("Fix the problems shown to train")
        elif state == IDLE and session.is_loading():
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


_MESSAGE_ICONS = {MessageKind.ERROR: QStyle.StandardPixmap.SP_MessageBoxCritical,
                  MessageKind.WARNING: QStyle.StandardPixmap.SP_MessageBoxWarning,
                  MessageKind.NAN: QStyle.StandardPixmap.SP_MessageBoxWarning}


def _icon_html(widget: QWidget, kind: MessageKind) -> str:
    """An ``<img>`` of the style's icon for a message of ``kind``, one text line high (a glyph
    such as ⓘ is missing from many Linux fonts and shows as a box)."""
    pixmap = _MESSAGE_ICONS.get(kind, QStyle.StandardPixmap.SP_MessageBoxInformation)
    size = max(12, widget.fontMetrics().height() - 2)
    return _icon_data(widget.style(), pixmap, size, widget.devicePixelRatioF())


@lru_cache(maxsize=32)
def _icon_data(style: QStyle, pixmap: QStyle.StandardPixmap, size: int, ratio: float) -> str:
    image = style.standardIcon(pixmap).pixmap(QSize(size, size), ratio)
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    # QByteArray has the buffer protocol; PySide6's stub does not say so.
    data = bytes(buffer.data().toBase64()).decode("ascii")  # type: ignore[call-overload]
    return (f"<img src='data:image/png;base64,{data}' width='{size}' height='{size}' "
            f"style='vertical-align: middle'>")


def _log_name(key: str) -> str:
    """``val_mean_iou`` → ``val mean IoU``: a log key for the epoch line."""
    names = {"mae": "MAE", "r2": "R²", "mean_iou": "mean IoU"}
    prefix = "val " if key.startswith("val_") else ""
    base = key[4:] if prefix else key
    return prefix + names.get(base, base.replace("_", " "))


def _is_share(key: str) -> bool:
    """A log shown as a percentage (accuracy, precision, recall, mean IoU; not R²)."""
    base = key[4:] if key.startswith("val_") else key
    return base in UNIT_METRICS and base != "r2"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def run_metrics(task: Task, extra: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    """The metrics a run of ``task`` logs (the task's own, then ``extra``) and the one its curves
    show first: the task's quality metric."""
    task_spec = spec(task)
    metrics = tuple(dict.fromkeys((*task_spec.metrics, *extra)))
    shown = task_spec.quality if task_spec.quality in metrics else (metrics[0] if metrics else "loss")
    return metrics, shown
