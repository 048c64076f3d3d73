"""The Sweep panel: search the project's ranges for the most accurate design for its cost.

Left, the sweep's settings (saved with the project through ``document.set_sweep``) and the
search space the design's ranges make, with what stops them from being searched. Right, Start /
Stop and what the sweep is doing, then the scatter of the study's trials (:mod:`.plot`) beside
the table of trials (:mod:`.trials_table`), and under the table what the selected trial would
change in the current design, with **Apply**.

The sweep runs :func:`engine.sweep.run_sweep` on a worker thread on a snapshot of the project
taken when Start is pressed (:mod:`.worker`); only Qt signals come back. Stop marks the running
trial stopped; the study trains it first when it resumes. The panel reattaches to the project's
study when a project opens (its storage is read off the GUI thread) and, while trials of the
study run in another process, reads it again every :data:`REFRESH_MS`.

Apply makes the document's design and training settings those of the selected trial
(:func:`engine.sweep.trial_design`) as one undo step: the design ops of
:func:`engine.design_diff.plan_become` and one training-settings command, in a macro. Rejected
trials can be applied too: their design is known (an invalid one then shows its problem on the
canvas, which is how to see why it was rejected).
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy, QSplitter, QStyle, QToolButton,
    QVBoxLayout, QWidget,
)

from engine.errors import ConvasError
from engine.search_space import base_values, search_space, space_problems
from engine.summary import human_count
from engine.sweep_results import TrialOutcome, TrialRecord
from engine.sweep_settings import CostKind, metric_higher_is_better
from engine.tasks import Task, spec

from ..commands import OpCommand, TrainingCommand
from ..document import Document
from ..theme import ERROR_COLOR, WARNING_COLOR
from ..widgets import ElidedLabel, mute, sentence, settings_column
from ..workers import Worker
from .settings_box import SweepSettingsBox
from .trials_table import OUTCOME_TEXT, TrialsModel, TrialsTable, format_metric, format_value, metric_label
from .worker import SweepWorker, start_loading

REFRESH_MS = 2000        # how often a study another process runs is read again
RELOAD_DELAY_MS = 150    # a burst of project changes (open: reset, path, sweep) reads the study once
SPACE_SHOWN = 6          # ranges named one by one in the space summary
STOP_TIMEOUT_S = 60.0


def space_summary(design: Any, training: Any) -> str:
    """``4 ranges: conv2d.filters 16–64 step 16, …``; "No ranges yet" when there are none."""
    space = search_space(design, training)
    if not space:
        return ""
    parts = [f"{target.label} {rng.describe()}" for target, rng in space]
    shown = ", ".join(parts[:SPACE_SHOWN]) + (f", … and {len(parts) - SPACE_SHOWN} more"
                                              if len(parts) > SPACE_SHOWN else "")
    return f"{len(space)} range{'s' if len(space) != 1 else ''}: {shown}"


def same_values(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether a trial's values ``a`` are the values ``b`` (floats compared to 1e-9)."""
    if not a or set(a) != set(b):
        return False
    for key, value in a.items():
        other = b[key]
        if isinstance(value, float) or isinstance(other, float):
            try:
                if not math.isclose(float(value), float(other), rel_tol=1e-9):
                    return False
            except (TypeError, ValueError):
                return False
        elif value != other and not (isinstance(other, (list, tuple)) and list(other) == [value] * len(other)):
            return False
    return True


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.1f} ms" if value >= 0.001 else f"{value * 1e6:.0f} µs"
    minutes, secs = divmod(round(value), 60)
    return f"{minutes}:{secs:02d}" if minutes else f"{value:.1f} s"


class SweepPanel(QWidget):
    """Runs and shows the document's sweep. :attr:`model` holds the trials shown, :attr:`plot`
    draws them (made when the panel is first shown)."""

    sigStatusMessage = Signal(str)
    sigSaveRequested = Signal()
    sigSweepStarted = Signal()

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.worker: SweepWorker | None = None
        self.info: Any = None                     # engine.sweep.StudyInfo of the study shown
        self.shown_key: tuple[str, str] | None = None  # (storage, study) of the trials shown
        self.selected: int | None = None
        self.plot: Any = None                     # SweepPlot, made on first show
        self._active = False
        self._loader: Worker | None = None
        self._loading_key: tuple[str, str] = ("", "")
        self._load_again = False
        self._others_running = False
        self._running_number: int | None = None
        self._epochs: int | None = None
        self._build()

        self._reload_timer = QTimer(self)
        self._reload_timer.setSingleShot(True)
        self._reload_timer.setInterval(RELOAD_DELAY_MS)
        self._reload_timer.timeout.connect(self.reload)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setInterval(REFRESH_MS)
        self._refresh_timer.timeout.connect(self.reload)

        document.sweepChanged.connect(self._on_sweep_changed)
        document.designReset.connect(self._on_design_reset)
        document.pathChanged.connect(self._on_project_changed)
        document.analysed.connect(self._on_analysed)
        document.searchChanged.connect(lambda _name: self._show_space())
        document.trainingChanged.connect(self._on_project_changed)  # the task's metric may be another
        self._on_design_reset()

    # --- construction ----------------------------------------------------------------------------

    def _build(self) -> None:
        style = self.style()
        self.settings_box = SweepSettingsBox(self)
        self.settings_box.sigChanged.connect(self._on_settings_edited)
        self.settings_box.sigSaveRequested.connect(self.sigSaveRequested)
        self.space_label = QLabel(self)
        self.space_label.setWordWrap(True)
        self.space_label.setTextFormat(Qt.TextFormat.RichText)
        self.space_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.left_scroll = settings_column(self, [("Search space", self.space_label), ("Sweep", self.settings_box)])

        self.start_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "Start", self)
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaStop), "Stop", self)
        self.stop_button.setToolTip("Stop after the current batch; the running trial is trained again first "
                                    "when the sweep resumes")
        self.stop_button.clicked.connect(self.stop)
        self.refresh_button = QToolButton(self)
        self.refresh_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_BrowserReload))
        self.refresh_button.setToolTip("Read the study's trials again from its storage")
        self.refresh_button.setAutoRaise(True)
        self.refresh_button.clicked.connect(self.reload)
        self.status_label = QLabel(self)
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        self.status_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        controls = QHBoxLayout()
        controls.setSpacing(6)
        controls.addWidget(self.start_button, 0, Qt.AlignmentFlag.AlignTop)
        controls.addWidget(self.stop_button, 0, Qt.AlignmentFlag.AlignTop)
        controls.addSpacing(6)
        controls.addWidget(self.status_label, 1)
        controls.addWidget(self.refresh_button, 0, Qt.AlignmentFlag.AlignTop)
        self.trial_label = ElidedLabel(self)  # the running trial: its epoch and metric
        mute(self.trial_label)

        self.plot_box = QWidget(self)
        self._plot_layout = QVBoxLayout(self.plot_box)
        self._plot_layout.setContentsMargins(0, 0, 0, 0)
        self._plot_layout.setSpacing(2)
        self._plot_placeholder = QLabel("The trials appear here as they finish.", self.plot_box)
        self._plot_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        mute(self._plot_placeholder)
        self._plot_layout.addWidget(self._plot_placeholder, 1)
        self.hover_label = ElidedLabel(self.plot_box)  # the trial under the pointer
        mute(self.hover_label)
        self._plot_layout.addWidget(self.hover_label)

        self.model = TrialsModel(self)
        self.table = TrialsTable(self.model, self)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection)
        self.details_label = QLabel(self)
        self.details_label.setWordWrap(True)
        self.details_label.setTextFormat(Qt.TextFormat.RichText)
        self.details_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.details_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.details_scroll = QScrollArea(self)
        self.details_scroll.setWidget(self.details_label)
        self.details_scroll.setWidgetResizable(True)
        self.details_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.details_scroll.setMinimumHeight(self.fontMetrics().height() * 4)
        self.apply_button = QPushButton("Apply", self)
        self.apply_button.setToolTip("Make the design and training settings those of the selected trial "
                                     "(one undo step)")
        self.apply_button.clicked.connect(self.apply_selected)
        details = QWidget(self)
        details_row = QHBoxLayout(details)
        details_row.setContentsMargins(0, 4, 0, 0)
        details_row.addWidget(self.details_scroll, 1)
        details_row.addWidget(self.apply_button, 0, Qt.AlignmentFlag.AlignTop)

        trials = QSplitter(Qt.Orientation.Vertical, self)
        trials.setChildrenCollapsible(False)
        trials.addWidget(self.table)
        trials.addWidget(details)
        trials.setStretchFactor(0, 2)
        trials.setStretchFactor(1, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.plot_box)
        self.splitter.addWidget(trials)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)

        right = QVBoxLayout()
        right.setContentsMargins(10, 8, 10, 6)
        right.setSpacing(6)
        right.addLayout(controls)
        right.addWidget(self.trial_label)
        right.addWidget(self.splitter, 1)

        divider = QFrame(self)
        divider.setFrameShape(QFrame.Shape.VLine)
        divider.setFrameShadow(QFrame.Shadow.Plain)
        divider.setStyleSheet("color: palette(mid);")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.left_scroll)
        layout.addWidget(divider)
        layout.addLayout(right, 1)
        self._show_details()

    # --- public ----------------------------------------------------------------------------------

    def activate(self) -> None:
        """Make the plot (pyqtgraph, about a second) once; called when the panel is first shown."""
        if self._active:
            return
        self._active = True
        from .plot import SweepPlot

        self.plot = SweepPlot(self.plot_box)
        self.plot.sigClicked.connect(self.select_trial)
        self.plot.sigHovered.connect(self._on_hovered)
        self._plot_layout.removeWidget(self._plot_placeholder)
        self._plot_placeholder.deleteLater()
        self._plot_layout.insertWidget(0, self.plot, 1)
        self._show_study_in_plot()

    def is_running(self) -> bool:
        return self.worker is not None

    def start_problem(self) -> str | None:
        """Why Start cannot run now (None: it can)."""
        document = self.document
        if self.worker is not None:
            return "A sweep is running"
        if not search_space(document.design, document.training):
            return ("The design has no search ranges yet: make a layer argument or a training setting a "
                    "range in the Inspector (its “…” button)")
        problems = space_problems(document.design, document.training)
        if problems:
            return "Fix the search ranges first"
        if not document.analysis.valid:
            return "The design has problems; fix the layers marked in red first"
        if self.settings_box.storage() is None:
            return "Save the project first: its sweep is kept in a file beside it"
        return None

    def start(self) -> None:
        """Run the sweep on a snapshot of the project as it is now."""
        from engine.sweep import SweepProject

        self.activate()
        problem = self.start_problem()
        if problem is not None:
            self.sigStatusMessage.emit(sentence(problem))
            return
        document = self.document
        try:
            settings = self.settings_box.settings()
        except ConvasError as exc:
            self.sigStatusMessage.emit(sentence(str(exc)))
            return
        if settings != document.sweep:
            document.set_sweep(settings)
        project = SweepProject(document.design.copy(), document.training, settings, document.path)
        self._refresh_timer.stop()
        self._others_running = False
        self._epochs = settings.epochs or document.training.config.epochs
        self.worker = SweepWorker(project)
        worker = self.worker
        worker.sigStarted.connect(self._on_started)
        worker.sigTrialStarted.connect(self._on_trial_started)
        worker.sigTrialEpoch.connect(self._on_trial_epoch)
        worker.sigTrialFinished.connect(self._on_trial_finished)
        worker.sigFinished.connect(self._on_finished)
        worker.sigFailed.connect(self._on_failed)
        worker.sigEnded.connect(self._on_ended)
        self._set_status("Starting: loading TensorFlow, the data and the study…")
        worker.start()
        self._update_controls()
        self.sigSweepStarted.emit()

    def stop(self) -> None:
        """Ask the sweep to stop after the current batch."""
        if self.worker is None or self.worker.stop_requested():
            return
        self.worker.request_stop()
        self._set_status("Stopping after this batch… The running trial is marked stopped and is trained "
                         "again first when you start the sweep again.")
        self._update_controls()

    def stop_and_wait(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Stop a running sweep and wait for its thread to end (events keep flowing); True when
        none is running any more."""
        from PySide6.QtCore import QDeadlineTimer, QEventLoop
        from PySide6.QtWidgets import QApplication

        worker = self.worker
        if worker is None:
            return True
        worker.request_stop()
        deadline = QDeadlineTimer(int(timeout_s * 1000))
        while worker.is_running() and not deadline.hasExpired():
            QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            worker.task.wait(20)
        return not worker.is_running()

    def select_trial(self, number: int | None) -> None:
        """Select trial ``number`` in the plot and the table, and say what it would change."""
        if number == self.selected:
            return
        self.selected = number
        self.table.select_number(number)
        if self.plot is not None:
            self.plot.select(number)
        self._show_details()

    def apply_selected(self) -> None:
        """Make the design and training settings those of the selected trial, in one undo step."""
        from engine.design_diff import plan_become

        record = self.model.record(self.selected) if self.selected is not None else None
        target = self._trial_design(record) if record is not None else None
        if record is None or target is None:
            return
        design, training = target
        document = self.document
        try:
            ops = list(plan_become(document.design, design))
        except ConvasError as exc:
            self.sigStatusMessage.emit(f"Cannot apply trial {record.number}: {exc}")
            return
        training_changed = training != document.training
        if not ops and not training_changed:
            self.sigStatusMessage.emit(f"The design is already trial {record.number}'s")
            return
        stack = document.undo_stack
        stack.beginMacro(f"Apply trial {record.number}")
        try:
            for op in ops:
                stack.push(OpCommand(document, op))
            if training_changed:
                stack.push(TrainingCommand(document, document.training, training))
        finally:
            stack.endMacro()
        self.sigStatusMessage.emit(f"Applied trial {record.number} (Ctrl+Z undoes it)")

    # --- the project -------------------------------------------------------------------------------

    def _task_metric(self) -> str:
        task = self.document.training.config.task or Task.CLASSIFICATION
        quality = spec(task).quality
        return f"val_{quality}"

    def _on_design_reset(self) -> None:
        """A project was opened (or a new design begun): show its settings and read its study."""
        document = self.document
        if document.sweep_error:
            self.sigStatusMessage.emit(f"The sweep settings in this file are not usable "
                                       f"({document.sweep_error}); using the defaults")
        self._on_project_changed()

    def _on_project_changed(self) -> None:
        """The project's file, design or training settings changed: what the box says of the
        storage and the metric, the space, and the study shown."""
        document = self.document
        self.settings_box.set_project(document.path, document.design.name, self._task_metric())
        self.settings_box.set_settings(document.sweep)
        self._show_space()
        self._schedule_reload()

    def _on_sweep_changed(self) -> None:
        document = self.document
        self.settings_box.set_settings(document.sweep)
        self._schedule_reload()
        self._update_controls()

    def _on_settings_edited(self) -> None:
        try:
            settings = self.settings_box.settings()
        except ConvasError:
            return  # the box says why
        self.document.set_sweep(settings)  # sweepChanged shows it and reads the study

    def _on_analysed(self) -> None:
        self._show_space()
        self._show_current()
        self._show_details()

    def _show_space(self) -> None:
        document = self.document
        summary = space_summary(document.design, document.training)
        problems = space_problems(document.design, document.training)
        if not summary:
            text = ("<span style='color:palette(placeholder-text)'>No ranges yet. In the Inspector, make a "
                    "layer argument, a group's repeats or a training setting a range (its “…” button)."
                    "</span>")
        else:
            text = _escape(summary)
        if problems:
            # Not sentence(): a problem may start with a layer's name, which keeps its case.
            text += "<br>" + "<br>".join(f"<span style='color:{ERROR_COLOR}'>• {_escape(p)}</span>"
                                         for p in problems)
        self.space_label.setText(text)
        self._update_controls()

    # --- reading the study -------------------------------------------------------------------------

    def _schedule_reload(self) -> None:
        if self.worker is None:
            self._reload_timer.start()

    def reload(self) -> None:
        """Read the project's study from its storage, off the GUI thread (once at a time)."""
        if self.worker is not None:
            return
        storage, study = self.settings_box.storage(), self.settings_box.study()
        if storage is None:
            self.show_study(None, None, [])
            self._refresh_timer.stop()
            self._update_controls()
            return
        if self._loader is not None:
            self._load_again = True
            return
        self._loading_key = (storage, study)
        loader = start_loading(storage, study)
        self._loader = loader
        # Bound methods, not lambdas: Qt drops them with this panel if it goes first.
        loader.sigFinished.connect(self._on_read)
        loader.sigFailed.connect(self._on_load_failed)
        loader.sigEnded.connect(self._on_load_ended)

    def _on_read(self, answer: Any) -> None:
        self._on_loaded(self._loading_key, answer)

    def _on_loaded(self, key: tuple[str, str], answer: Any) -> None:
        if self.worker is not None or key != (self.settings_box.storage(), self.settings_box.study()):
            return  # a run began, or the project changed, while it was read
        if answer is None:
            self.show_study(key, None, [])
            self._others_running = False
        else:
            info, records = answer
            self.show_study(key, info, records)
            self._others_running = any(r.outcome is TrialOutcome.RUNNING for r in records)
        if self._others_running:
            self._refresh_timer.start()
        else:
            self._refresh_timer.stop()
        self._show_idle_status()
        self._update_controls()

    def _on_load_failed(self, message: str) -> None:
        self._refresh_timer.stop()
        self._set_status(f"<span style='color:{ERROR_COLOR}'>{_escape(sentence(message))}</span>")

    def _on_load_ended(self) -> None:
        self._loader = None
        if self._load_again:
            self._load_again = False
            self.reload()

    def show_study(self, key: tuple[str, str] | None, info: Any, records: list[TrialRecord]) -> None:
        """Show ``records`` of the study ``info`` (None: none yet) stored at ``key``."""
        if key != self.shown_key or (info is not None and self.info is None) or info is None:
            self.shown_key = key
            self.info = info
            metric = info.metric if info is not None else (self.document.sweep.objectives.metric
                                                            or self._task_metric())
            cost = info.cost if info is not None else self.document.sweep.objectives.cost
            keys = list(info.space) if info is not None else search_space(
                self.document.design, self.document.training).keys()
            self.model.set_study(metric, cost, keys)
            self.selected = None
        else:
            self.info = info
        self.model.set_records(records)
        self.table.fit_columns()
        self._show_study_in_plot()
        self._show_details()

    def _show_study_in_plot(self) -> None:
        if self.plot is None:
            return
        info = self.info
        metric = self.model.metric
        cost = info.cost if info is not None else self.document.sweep.objectives.cost
        higher = info.higher_is_better if info is not None else metric_higher_is_better(metric)
        self.plot.set_study(metric, cost, higher)
        self.plot.set_records(self.model.records)
        self._show_current()
        self.plot.select(self.selected)

    def _show_current(self) -> None:
        """Mark the current design: its cost on the plot, and the trial with its values."""
        info = self.info
        number = None
        if info is not None:
            try:
                values = base_values(self.document.design, self.document.training)
            except Exception:  # noqa: BLE001 - a range on a layer the design lost: no trial matches
                values = {}
            number = next((r.number for r in self.model.records if same_values(r.params, values)), None)
        self.model.set_current(number)
        if self.plot is None:
            return
        cost = info.cost if info is not None else self.document.sweep.objectives.cost
        analysis = self.document.analysis
        value: float | None = None
        if analysis.valid and cost is CostKind.PARAMS:
            value = float(analysis.total_params)
        elif analysis.valid and cost is CostKind.MACS:
            value = float(analysis.macs)
        self.plot.set_current(value, number)

    # --- a run ---------------------------------------------------------------------------------

    def _on_started(self, info: Any, records: list[TrialRecord]) -> None:
        self.show_study((info.storage, info.study), info, records)
        self.shown_key = (info.storage, info.study)
        self._set_status(self._progress_text())

    def _on_trial_started(self, number: int, params: dict[str, Any]) -> None:
        self._running_number = number
        self.model.upsert(TrialRecord(number, TrialOutcome.RUNNING, params=params))
        self.trial_label.setText(f"Trial {number}: training… " + self._values_text(params))
        self._set_status(self._progress_text())

    def _on_trial_epoch(self, number: int, epoch: int, logs: dict[str, float]) -> None:
        metric = self.model.metric
        value = logs.get(metric)
        epochs = f"epoch {epoch + 1}" + (f"/{self._epochs}" if self._epochs else "")
        shown = f" · {metric_label(metric)} {format_metric(value)}" if value is not None else ""
        self.trial_label.setText(f"Trial {number}: {epochs}{shown}")

    def _on_trial_finished(self, record: TrialRecord) -> None:
        self.model.upsert(record)
        self.trial_label.setText(f"Trial {record.number} {OUTCOME_TEXT.get(record.outcome, record.outcome)}; "
                                 "choosing the next values…")
        if self.model.rowCount() <= 12:
            self.table.fit_columns()
        if self.plot is not None:
            self.plot.set_records(self.model.records)
            self._show_current()
        self._set_status(self._progress_text())
        if record.number == self.selected:
            self._show_details()

    def _on_finished(self, outcome: Any) -> None:
        self.info = outcome.info
        self.model.set_records(outcome.records)
        self._show_study_in_plot()
        self.trial_label.clear()
        trained = f"{outcome.trained} trial{'s' if outcome.trained != 1 else ''} trained"
        if outcome.trained_seconds:
            trained += f" in {_seconds(outcome.trained_seconds)}"
        rejected = ""
        if outcome.rejected:
            rejected = (f"; {outcome.rejected} design{'s' if outcome.rejected != 1 else ''} rejected before "
                        f"training in {_seconds(outcome.rejected_seconds)}")
        if outcome.stopped:
            why = _escape(sentence(outcome.stop_reason)) if outcome.stop_reason else (
                "Start resumes the study; a trial stopped while training is trained again first.")
            self._set_status(f"<b>Stopped</b>: {trained}{rejected}. {why}")
        elif outcome.stop_reason:  # a time limit, or nothing but rejected designs
            self._set_status(f"<b>Ended early</b>: {trained}{rejected}. {_escape(sentence(outcome.stop_reason))} "
                             f"{self._front_text()}")
        elif not outcome.ran:  # the study held its trials already: nothing to do
            held = sum(1 for r in outcome.records if r.outcome.trained)
            self._set_status(f"<b>Nothing to do</b>: the study already holds {held} trained trials; raise "
                             f"Trials to train more. {self._front_text()}")
        else:
            self._set_status(f"<b>Finished</b>: {trained}{rejected}. {self._front_text()}")

    def _on_failed(self, message: str) -> None:
        self.trial_label.clear()
        self._set_status(f"<span style='color:{ERROR_COLOR}'>{_escape(sentence(message))}</span>")
        self.sigStatusMessage.emit(sentence(message))

    def _on_ended(self) -> None:
        self.worker = None
        self._running_number = None
        self._update_controls()
        self._schedule_reload()  # the project may have changed while it ran; else its own study, again

    def _progress_text(self) -> str:
        records = self.model.records
        trained = sum(1 for r in records if r.outcome.trained and r.outcome is not TrialOutcome.RUNNING)
        rejected = sum(1 for r in records if r.outcome.rejected)
        total = self.document.sweep.trials
        text = f"<b>Sweeping</b>: {trained} of {total} trials trained"
        if rejected:
            text += f" · {rejected} rejected before training"
        if self.worker is not None and self.worker.stop_requested():
            text = "Stopping after this batch…"
        return text

    def _front_text(self) -> str:
        from engine.sweep_results import pareto_front

        info = self.info
        if info is None:
            return ""
        front = pareto_front(self.model.records, info.higher_is_better)
        if not front:
            return ""
        if info.cost is None:
            best = front[0]
            return f"Best: trial {best.number}, {metric_label(info.metric)} {format_metric(best.metric)}."
        return f"{len(front)} trial{'s' if len(front) != 1 else ''} on the Pareto front (orange)."

    def _show_idle_status(self) -> None:
        if self.worker is not None:
            return
        records = self.model.records
        if self.info is None:
            study = _escape(self.settings_box.study())
            self._set_status("" if self.settings_box.storage() is None else f"No trials yet in study “{study}”.")
            return
        running = [r for r in records if r.outcome is TrialOutcome.RUNNING]
        trained = sum(1 for r in records if r.outcome.trained and r.outcome is not TrialOutcome.RUNNING)
        rejected = sum(1 for r in records if r.outcome.rejected)
        text = f"Study “{_escape(self.info.study)}”: {trained} trial{'s' if trained != 1 else ''} trained"
        if rejected:
            text += f", {rejected} rejected before training"
        if running:
            text = (f"<span style='color:{WARNING_COLOR}'><b>Running in another process</b></span> "
                    f"({len(running)} trial{'s' if len(running) != 1 else ''} training now) · " + text
                    + ". Its trials appear as they finish.")
        else:
            text += ". " + self._front_text()
        self._set_status(text)

    # --- selection and details -------------------------------------------------------------------

    def _on_table_selection(self, *_args: Any) -> None:
        number = self.table.selected_number()
        if number is not None and number != self.selected:
            self.select_trial(number)

    def _on_hovered(self, number: int | None) -> None:
        record = self.model.record(number) if number is not None else None
        if record is None:
            self.hover_label.clear()
            if self.plot is not None:
                self.plot.setToolTip("")
            return
        text = self._record_line(record)
        self.hover_label.setText(text)
        if self.plot is not None:
            self.plot.setToolTip(text)

    def _record_line(self, record: TrialRecord, values: bool = True) -> str:
        """``Trial 7 · complete · val accuracy 0.9512 · 12,345 parameters · 1.2 M MACs · filters 32``."""
        parts = [f"Trial {record.number}", OUTCOME_TEXT.get(record.outcome, str(record.outcome))]
        if record.metric is not None:
            parts.append(f"{metric_label(self.model.metric)} {format_metric(record.metric)}")
        if record.params_count is not None:
            parts.append(f"{record.params_count:,} parameters")
        if record.macs is not None:
            parts.append(f"{human_count(record.macs)} MACs")
        if record.latency_ms is not None:
            parts.append(f"{record.latency_ms:.2f} ms")
        tried = self._values_text(record.params) if values else ""
        if tried:
            parts.append(tried)
        return " · ".join(parts)

    def _values_text(self, params: dict[str, Any]) -> str:
        labels = {c.key: c.header for c in self.model.columns if c.key is not None}
        return ", ".join(f"{labels.get(k, k)} {format_value(v)}" for k, v in params.items())

    def _trial_design(self, record: TrialRecord) -> tuple[Any, Any] | None:
        """The design and settings of ``record`` (None: unknown, e.g. a trial still waiting)."""
        from engine.sweep import trial_design

        if self.info is None or not record.params:
            return None
        try:
            return trial_design(self.info, record)
        except ConvasError:
            return None

    def _show_details(self) -> None:
        record = self.model.record(self.selected) if self.selected is not None else None
        if record is None:
            self.details_label.setText("<span style='color:palette(placeholder-text)'>Click a point or a row "
                                       "to see what that trial changes in the current design.</span>")
            self.apply_button.setEnabled(False)
            return
        lines = [f"<b>{_escape(self._record_line(record, values=False))}</b>"]
        if record.reason:
            lines.append("Why: " + _escape(record.reason))  # as written: it may start with a layer's name
        target = self._trial_design(record)
        if target is None:
            lines.append("This trial's design is not known.")
        else:
            from engine.design_diff import differences, training_differences

            design, training = target
            changes = list(differences(self.document.design, design))
            changes += list(training_differences(self.document.training, training))
            if changes:
                lines.append("Apply changes: " + "; ".join(_escape(c) for c in changes))
            else:
                lines.append("Same as the current design.")
            if record.outcome.rejected:
                lines.append("It was rejected before training; applying it shows why on the canvas.")
        self.details_label.setText("<br>".join(lines))
        self.apply_button.setEnabled(target is not None)

    # --- state -----------------------------------------------------------------------------------

    def _set_status(self, html: str) -> None:
        self.status_label.setText(html)

    def _update_controls(self) -> None:
        running = self.worker is not None
        problem = self.start_problem() if not running else None
        self.start_button.setEnabled(not running and problem is None)
        self.start_button.setToolTip(sentence(problem) if problem else
                                     "Run the sweep on a snapshot of the project; it resumes the study "
                                     "when it has trials already")
        self.stop_button.setEnabled(running and not (self.worker is not None and self.worker.stop_requested()))
        self.settings_box.setEnabled(not running)
        self.refresh_button.setEnabled(not running)
        if not running and problem is not None and not self.model.records:
            self._set_status(f"<span style='color:palette(placeholder-text)'>{_escape(sentence(problem))}</span>")
        elif not running and self.status_label.text().startswith("<span style='color:palette(placeholder"):
            self._show_idle_status()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.activate_when_seen()

    def activate_when_seen(self) -> None:
        """Activate once the panel is really on screen (a dock tabbed behind another is
        "visible" but out of sight)."""
        if not self._active:
            QTimer.singleShot(0, self._activate_if_seen)

    def _activate_if_seen(self) -> None:
        if self.isVisible() and not self.visibleRegion().isEmpty():
            self.activate()
