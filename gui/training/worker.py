"""Training off the GUI thread: the reporter of a run, whose task runs on a :mod:`gui.workers` worker.

:class:`TrainingWorker` lives on the GUI thread; its task calls :func:`engine.training.train` on
the worker's thread with the TrainingWorker as the reporter. The reporter only emits Qt signals,
which Qt queues to the GUI thread, and answers ``should_stop`` from the task's cancel flag and
``should_pause`` from a :class:`threading.Event` the GUI sets. A batch signal carries four small
values (the logs dict Keras made anyway), so the task never waits for the GUI. Nothing here
imports TensorFlow: the first run's task does, on the worker thread.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from PySide6.QtCore import Signal

from engine.design import Design
from engine.distribute import Distribution
from engine.errors import first_line
from engine.quiet_tf import importing_tensorflow
from engine.training import MessageKind, TrainingConfig, TrainingResult, train
from engine.weights import WeightsSource

from ..workers import TaskOwner, TaskState


class TrainingWorker(TaskOwner):
    """Trains ``design`` on ``dataset`` with ``config`` once :meth:`start` is called (on a worker
    thread, whose :class:`~gui.workers.Worker` is :attr:`task`).

    Exactly one of ``sigFinished`` (a :class:`TrainingResult`; its model is None when stopped
    before training began) and ``sigFailed`` (a message for people) ends every run, followed by
    ``sigEnded`` once the thread has ended. All three come on the GUI thread.
    """

    sigPhase = Signal(str)                    # what happens before the first batch
    sigBatch = Signal(int, int, int, object)  # epoch, batch (from 0), batches per epoch, logs
    sigEpoch = Signal(int, object)            # epoch (from 0), logs
    sigMessage = Signal(object, str)          # engine.training.MessageKind, text

    can_pause = True

    def __init__(self, design: Design, dataset: Any, config: TrainingConfig,
                 weights: WeightsSource | None = None, distribution: Distribution | None = None) -> None:
        super().__init__()
        self.design, self.dataset, self.config = design, dataset, config
        self.distribution = distribution  # None: the default device; MIRRORED: every local GPU
        self.weights = weights  # the design's imported or saved weights, to fine-tune from
        self._pause = threading.Event()
        self.batches_after_stop = 0  # batches that ended after the stop request (at most one)
        # Stop is the task's cancel flag: train() then returns early with the weights so far.
        self.own_task(self._train, name="convas-training", describe=failure_message)

    # --- called from the GUI thread ---------------------------------------------------------


    def set_paused(self, paused: bool) -> None:
        if paused:
            self._pause.set()
        else:
            self._pause.clear()

    # --- the reporter (called on the worker thread by engine.training.train) ----------------

    def on_batch(self, epoch: int, batch: int, batches: int | None, logs: dict[str, float]) -> None:
        if self.task.is_cancelled():
            self.batches_after_stop += 1
        self.sigBatch.emit(epoch, batch, batches or 0, logs)

    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        self.sigEpoch.emit(epoch, logs)

    def on_message(self, kind: MessageKind, text: str) -> None:
        self.sigMessage.emit(kind, text)

    def should_stop(self) -> bool:
        return self.task.is_cancelled()

    def should_pause(self) -> bool:
        return self._pause.is_set()

    # --- the run ------------------------------------------------------------------------------

    def _train(self, state: TaskState) -> TrainingResult:
        """The task, on the worker thread; what it raises becomes ``sigFailed``."""
        if "keras" not in sys.modules:
            self.sigPhase.emit("Loading TensorFlow…")
        with importing_tensorflow():  # its start-up lines stay off the user's terminal
            import keras  # noqa: F401  (the one slow import, paid on this thread)

        if state.is_cancelled():
            return TrainingResult(model=None, stopped_early=True, stop_reason="stopped before training began")
        self.sigPhase.emit("Building the model…")
        model = self._starting_model()
        return train(self.design, self.dataset.train, self.dataset.validation, self.config, self, model=model,
                     pixel_range=self.dataset.pixel_range, distribution=self.distribution)

    def _starting_model(self) -> Any:
        """The weights this run starts from (:func:`engine.weights.resolve_weights`, as
        ``convas train`` decides them): None for fresh ones (train builds them), else the
        design's model with the kept weights wherever a layer of the same name and shapes is
        there. Says which, as a message."""
        from engine.weights import WeightsUse, resolve_weights, starting_model

        source = resolve_weights(self.design, kept=self.weights, use=WeightsUse.TRAINING)
        model, message = starting_model(self.design, source, self.config.seed)
        self.on_message(MessageKind.INFO, message)
        return model


def failure_message(exc: BaseException) -> str:
    """"Training failed: <first line of the error>" for an unexpected exception."""
    return f"Training failed: {first_line(exc)}"

