"""The training session: the data for the current design, one run at a time and its outcome.

:class:`TrainingSession` owns what a run is — its state, thread and worker, clock, messages and
results — and the dataset loaded for the design, without a single widget. The Train panel draws
it and the window asks it (``is_training``, ``stop_and_wait``, ``result_model``). A run trains a
copy of the design taken at :meth:`TrainingSession.start`, on a worker thread (:mod:`.worker`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from PySide6.QtCore import QEventLoop, QObject, QTimer, Signal

from engine.design import Design
from engine.distribute import Distribution, Strategy
from engine.pixel_range import PixelRange
from engine.tasks import Task
from engine.training import MessageKind, TrainingConfig, TrainingSettings
from engine.weights import WeightsSource

from ..workers import Worker
from .cluster_run import ABANDON_GRACE_S, ClusterRun
from .loading import DatasetLoader, LoadedData
from .worker import TrainingWorker

STOP_TIMEOUT_S = 30.0     # how long closing waits for a run to stop
BUILTIN_SOURCES = ("digits", "shapes")


class RunState(StrEnum):
    """Where the session is; a ``str`` so that it reads as its value (``"idle"``)."""

    IDLE = "idle"            # no run (the last one, if any, is over)
    STARTING = "starting"    # a run began; no batch has ended yet
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"    # asked to stop; ends after the current batch


@dataclass(frozen=True)
class RunMessage:
    """One message of a run: its kind (which decides how it is shown) and its words."""

    kind: MessageKind
    text: str


class RunClock:
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


class TrainingSession(QObject):
    """The data for the current design, and the current or last run of a design snapshot.

    After a run that trained a model: ``result`` (the :class:`engine.training.TrainingResult`),
    ``result_model``, ``result_design`` (the snapshot it was trained on), ``result_dataset`` and
    ``result_config`` (the run's config, its ``task`` resolved; ``result_task``, its noise and
    loss are what an evaluation needs).
    """

    sigStateChanged = Signal(object)       # RunState
    sigStarted = Signal()                  # a run began (state STARTING)
    sigPhase = Signal(str)                 # what happens before the first batch
    sigFineTuning = Signal(int)            # fine-tuning's second phase begins after this many epochs
    sigBatch = Signal(int, int, int, object)
    sigEpoch = Signal(int, object)
    sigMessagesChanged = Signal()
    sigEnded = Signal()                    # the run is over, its thread has ended, its outcome is set
    # A trained Keras model and its dataset, to look at now, with what evaluating it needs: the
    # task it learnt (engine.tasks.Task), the noise it was trained with, its loss (None: default).
    sigFinished = Signal(object, object, object, float, object)
    sigDataLoading = Signal()
    sigDataLoaded = Signal(object)         # LoadedData
    sigDataFailed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = RunState.IDLE
        # The data for the current design (its input and output as the design says them).
        self.io: Any = None
        self.io_error: str | None = None
        self.dataset: Any = None
        self.notes: list[str] = []                 # warnings about the data that do not block training
        self.dataset_error: str | None = None
        self.problems: list[str] = []              # why the current design cannot train on the data
        self.head_problem: str | None = None       # the design's head does not fit the data (fitting it may fix it)
        self._design: Design | None = None          # the current design and its analysis (read_design)
        self._analysis: Any = None
        self.loaded_key: tuple | None = None
        self.loading_key: tuple | None = None
        self.failed_key: tuple | None = None
        self.start_pending = False                 # Train was pressed while the data loaded
        self.loader = DatasetLoader(self)
        self.loader.sigLoaded.connect(self._on_dataset_loaded)
        self.loader.sigFailed.connect(self._on_dataset_failed)
        # The current or last run.
        self.worker: TrainingWorker | ClusterRun | None = None
        self.task: Worker | None = None            # the run's worker (gui.workers) until it has ended
        self.clock: RunClock | None = None
        self.started_at: datetime | None = None    # when the snapshot was taken (None: no run shown)
        self.run_design: Design | None = None
        self.run_dataset: Any = None
        self.run_config: TrainingConfig | None = None
        self.run_result: Any = None
        self.run_error: str | None = None
        self.messages: list[RunMessage] = []
        self.batches_seen = 0                      # batch signals of the current or last run
        self.epochs_seen = 0                       # epoch signals of the current or last run
        self.phase_epoch: int | None = None        # epochs of phase one, once phase two began
        self.stop_requested = False
        self._hand_on = True                       # emit sigFinished when the run ends
        self._waiting = False
        # The last run that trained a model.
        self.result: Any = None
        self.result_model: Any = None
        self.result_design: Design | None = None
        self.result_dataset: Any = None
        self.result_config: TrainingConfig | None = None

    # --- asking ---------------------------------------------------------------------------

    def is_training(self) -> bool:
        """A run's worker is alive (from Train until its outcome is known)."""
        return self.task is not None

    def is_loading(self) -> bool:
        return self.loading_key is not None

    def can_train(self) -> bool:
        """True when a run could start right now on the loaded data."""
        return (self.state == RunState.IDLE and not self.is_training() and self.dataset is not None
                and self.loading_key is None and self.io is not None and not self.problems)

    def trained(self) -> bool:
        """The last run ended with a model (and did not fail)."""
        return self.run_error is None and self.run_result is not None and self.run_result.model is not None

    @property
    def result_task(self) -> Task | None:
        """The task the last run that trained a model learnt."""
        if self.result is not None:
            return Task(self.result.task)
        return None if self.result_config is None else self.result_config.task

    def choose_task(self, chosen: Task | None, with_data: bool = True) -> Task:
        """The task in effect: ``chosen`` (the user's) or the one the design's output and the
        loaded data (unless not ``with_data``) suggest (:func:`engine.data_source.choose_task`)."""
        if self.io is None:
            return chosen or Task.CLASSIFICATION
        from engine.data_source import choose_task

        return choose_task(self.io, self.dataset if with_data else None, chosen)

    # --- the data -------------------------------------------------------------------------

    def read_design(self, design: Design, analysis: Any) -> None:
        """Note the input and output of the current design (or why they are unknown)."""
        from engine.data_source import model_io  # numpy; not needed before the panel shows
        from engine.datasets import DatasetError

        self._design, self._analysis = design, analysis
        try:
            self.io, self.io_error = model_io(design, analysis), None
        except DatasetError as exc:
            self.io, self.io_error = None, str(exc)

    def dataset_key(self, source: str, config: TrainingConfig, pixel_range: PixelRange = PixelRange.UNIT,
                    target_columns: tuple[str, ...] = ()) -> tuple | None:
        """What the data to load depends on, or None when the design's input is unknown: the
        arguments of :meth:`DatasetLoader.load`."""
        if self.io is None:
            return None
        builtin = source.strip().lower() in BUILTIN_SOURCES
        from engine.data_source import task_to_load

        task = task_to_load(source, self.io, config.task)
        # A file's targets are read against the design's output; the built-in sets ignore it, so
        # changing the units does not load them again.
        units, shape = (None, None) if builtin else (self.io.output_units, tuple(self.io.output_shape))
        return (source, tuple(self.io.input_shape), config.validation_split, config.seed, pixel_range,
                task, tuple(target_columns), units, shape)

    def request_dataset(self, key: tuple | None) -> bool:
        """Load the data for ``key`` unless it is loaded, loading or failed already (or a run
        holds the data: the run's end asks again). True when a load began."""
        if key is None or key in (self.loaded_key, self.loading_key, self.failed_key) or self.is_training():
            return False
        self.loading_key = key
        self.dataset_error = None
        self.loader.load(*key)
        self.sigDataLoading.emit()
        return True

    def _on_dataset_loaded(self, loaded: LoadedData) -> None:
        self.loaded_key, self.loading_key, self.failed_key = self.loading_key, None, None
        self.dataset = loaded.dataset
        self.notes = list(loaded.dataset.warnings)
        self.sigDataLoaded.emit(loaded)

    def _on_dataset_failed(self, message: str) -> None:
        self.failed_key, self.loading_key, self.loaded_key = self.loading_key, None, None
        self.dataset, self.notes = None, []
        self.dataset_error = message
        self.sigDataFailed.emit(message)

    def find_problems(self, loss: str | None, task: Task | None = None) -> list[str]:
        """Why the current design cannot train on the data for ``task`` (None: the inferred
        one) (empty when it can), kept in ``problems``; ``head_problem`` says what in the design's
        head does not fit the data, when fitting it can help. During a run these
        concern the next run, not the one going on."""
        problems: list[str] = []
        self.head_problem = None
        if self.io_error:
            problems = [self.io_error]
        elif self.dataset_error:
            problems = [self.dataset_error]
        elif self.dataset is not None and self.loading_key is None and self.io is not None:
            from engine.data_source import dataset_problems

            chosen = self.choose_task(task)
            problems = dataset_problems(self.dataset, self.io, loss, task=chosen)
            if problems and self._design is not None and self._analysis is not None:
                from engine.heads import head_problem

                names = list(self.dataset.class_names)
                self.head_problem = head_problem(self._design, self._analysis, chosen, len(names), names)
        self.problems = problems
        return problems

    # --- the run --------------------------------------------------------------------------

    def start(self, design: Design, config: TrainingConfig, weights: WeightsSource | None = None,
              settings: TrainingSettings | None = None) -> None:
        """Train a copy of ``design`` on the loaded data with ``config`` (see :meth:`can_train`),
        starting from the design's imported or saved ``weights`` when there are some. An
        automatic task is resolved now, so the run and its evaluation agree on it.

        ``settings`` (the panel's, with the data source) say where to run (``distribution``):
        here, mirrored over the local GPUs (in this process), or on a cluster, whose chief is a
        ``convas train`` child process (:class:`.cluster_run.ClusterRun`) that reads the same data
        from the same source."""
        config = dataclasses.replace(config, task=self.choose_task(config.task))
        self.run_design = design.copy()
        self.run_dataset, self.run_config = self.dataset, config
        self.run_result, self.run_error = None, None
        self.stop_requested = False
        self._hand_on = True
        self.batches_seen = self.epochs_seen = 0
        self.phase_epoch = None
        self.messages.clear()
        self.clock = RunClock(config.epochs, config.batch_size)
        self.started_at = datetime.now()

        run_on = settings.distribution.strategy if settings is not None else Strategy.NONE
        worker: TrainingWorker | ClusterRun
        if settings is not None and run_on is Strategy.MULTIWORKER:
            worker = ClusterRun(design.copy(), settings, config, weights)
        else:
            distribution = Distribution(Strategy.MIRRORED) if run_on is Strategy.MIRRORED else None
            worker = TrainingWorker(design.copy(), self.run_dataset, config, weights, distribution)
        worker.sigPhase.connect(self._on_phase)
        worker.sigBatch.connect(self._on_batch)
        worker.sigEpoch.connect(self._on_epoch)
        worker.sigMessage.connect(self._on_message)
        worker.sigFinished.connect(self._on_finished)
        worker.sigFailed.connect(self._on_failed)
        worker.sigEnded.connect(self._on_thread_finished)
        self.worker = worker
        self.task = worker.start()
        self._set_state(RunState.STARTING)
        self.sigMessagesChanged.emit()
        self.sigStarted.emit()

    def can_pause(self) -> bool:
        """The run can pause (a cluster run cannot: its workers would time out waiting)."""
        return self.worker is not None and self.worker.can_pause

    def toggle_pause(self) -> None:
        if self.worker is None or not self.can_pause() or self.state not in (RunState.RUNNING, RunState.PAUSED):
            return
        paused = self.state == RunState.RUNNING
        self.worker.set_paused(paused)
        if self.clock is not None:
            self.clock.pause(paused)
        self._set_state(RunState.PAUSED if paused else RunState.RUNNING)

    def stop(self) -> None:
        """Ask the run to stop after its current batch (the weights trained so far are kept)."""
        if self.worker is None or self.state not in (RunState.STARTING, RunState.RUNNING, RunState.PAUSED):
            return
        self.stop_requested = True
        self.worker.request_stop()
        if self.clock is not None:
            self.clock.pause(False)
        self._set_state(RunState.STOPPING)

    def stop_and_wait(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Stop a run and wait (handling events) until its thread ends; False on time-out.

        For closing or replacing the design: the model is kept in ``result_model`` but not handed
        on with ``sigFinished`` (nothing should start evaluating it now)."""
        if not self.is_training():
            return True
        if self._waiting:
            return False
        self._hand_on = False
        if isinstance(self.worker, ClusterRun):
            # Nobody will look at the model: do not load it; a chief that does not stop is ended.
            self.worker.abandon(min(ABANDON_GRACE_S, timeout_s / 2))
        self.stop()
        task = self.task
        assert task is not None
        loop = QEventLoop()
        task.sigEnded.connect(loop.quit)  # after _on_thread_finished, connected first
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        self._waiting = True
        try:
            if self.task is task:
                loop.exec()
        finally:
            self._waiting = False
            task.sigEnded.disconnect(loop.quit)
        return self.task is not task  # _on_thread_finished has run

    def forget_results(self) -> None:
        """A new design: the last run's model is not this design's."""
        self.result = self.result_model = self.result_design = self.result_dataset = None
        self.result_config = None

    def forget_run(self) -> None:
        """Nothing of the last run is shown any more (only when no run is going)."""
        if self.is_training():
            return
        self.clock = None
        self.started_at = None
        self.run_result = self.run_error = None
        self.messages.clear()
        self.sigMessagesChanged.emit()

    # --- from the worker (queued to this thread) -------------------------------------------

    def _on_phase(self, text: str) -> None:
        if self.state in (RunState.STARTING, RunState.STOPPING):
            self.sigPhase.emit(text)

    def _on_batch(self, epoch: int, batch: int, batches: int, logs: dict) -> None:
        # O(1): counters; drawing waits for the panel's timer.
        self.batches_seen += 1
        if self.state == RunState.STARTING:
            self._set_state(RunState.RUNNING)
        if self.clock is not None:
            self.clock.on_batch(epoch, batch, batches)
        self.sigBatch.emit(epoch, batch, batches, logs)

    def _on_epoch(self, epoch: int, logs: dict) -> None:
        self.epochs_seen = epoch + 1
        self.sigEpoch.emit(epoch, logs)

    def _on_message(self, kind: MessageKind, text: str) -> None:
        if kind is MessageKind.PHASE:
            # Signals from the worker arrive in order: the epochs seen so far are phase one's.
            self.phase_epoch = self.epochs_seen
            self.sigFineTuning.emit(self.epochs_seen)
        self.messages.append(RunMessage(kind, text))
        self.sigMessagesChanged.emit()

    def _on_finished(self, result: Any) -> None:
        self.run_result = result
        phase = result.phase_epochs
        if phase is not None and phase != self.phase_epoch and phase < result.epochs_run:
            self.phase_epoch = phase  # the run's own count is the truth
            self.sigFineTuning.emit(phase)

    def _on_failed(self, message: str) -> None:
        self.run_error = message
        self.messages.append(RunMessage(MessageKind.ERROR, message))
        self.sigMessagesChanged.emit()

    def _on_thread_finished(self) -> None:
        """The run is over and its thread has ended: keep the outcome, hand the model on."""
        if self.task is None:
            return
        self.task = self.worker = None
        if self.trained():
            result = self.run_result
            self.result, self.result_model, self.result_dataset = result, result.model, self.run_dataset
            self.result_design, self.result_config = self.run_design, self.run_config
        self._set_state(RunState.IDLE)
        self.sigEnded.emit()
        if self.trained() and self._hand_on:
            config = self.run_config
            self.sigFinished.emit(self.run_result.model, self.run_dataset, self.result_task,
                                  float(config.noise_stddev) if config is not None else 0.0,
                                  config.loss if config is not None else None)

    def _set_state(self, state: RunState) -> None:
        if state == self.state:
            return
        self.state = state
        self.sigStateChanged.emit(state)
