"""Training off the GUI thread: a worker object on a QThread, steered by thread-safe flags.

The worker calls :func:`engine.training.train` on its own thread. Its reporter only emits Qt
signals, which Qt queues to the GUI thread, and answers ``should_stop``/``should_pause`` from
:class:`threading.Event` flags the GUI sets. A batch signal carries four small values (the logs
dict Keras made anyway), so the worker never waits for the GUI. Nothing here imports TensorFlow:
the first :meth:`TrainingWorker.run` does, on the worker thread.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from engine.design import Design
from engine.errors import ConvasError
from engine.training import TrainingConfig, TrainingResult, train


class TrainingWorker(QObject):
    """Trains ``design`` on ``dataset`` with ``config`` when :meth:`run` is called (on its thread).

    Exactly one of ``sigFinished`` (a :class:`TrainingResult`; its model is None when stopped
    before training began) and ``sigFailed`` (a message for people) ends every run.
    """

    sigPhase = Signal(str)                    # what happens before the first batch
    sigBatch = Signal(int, int, int, object)  # epoch, batch (from 0), batches per epoch, logs
    sigEpoch = Signal(int, object)            # epoch (from 0), logs
    sigMessage = Signal(str)
    sigFinished = Signal(object)
    sigFailed = Signal(str)

    def __init__(self, design: Design, dataset: Any, config: TrainingConfig,
                 weights_file: Any = None) -> None:
        super().__init__()
        self.design, self.dataset, self.config = design, dataset, config
        self.weights_file = weights_file  # an imported .keras file to start from (fine-tuning)
        self._stop = threading.Event()
        self._pause = threading.Event()
        self.batches_after_stop = 0  # batches that ended after the stop request (at most one)

    # --- called from the GUI thread ---------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    def set_paused(self, paused: bool) -> None:
        if paused:
            self._pause.set()
        else:
            self._pause.clear()

    # --- the reporter (called on the worker thread by engine.training.train) ----------------

    def on_batch(self, epoch: int, batch: int, batches: int | None, logs: dict[str, float]) -> None:
        if self._stop.is_set():
            self.batches_after_stop += 1
        self.sigBatch.emit(epoch, batch, batches or 0, logs)

    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        self.sigEpoch.emit(epoch, logs)

    def on_message(self, text: str) -> None:
        self.sigMessage.emit(text)

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def should_pause(self) -> bool:
        return self._pause.is_set()

    # --- the run ------------------------------------------------------------------------------

    @Slot()
    def run(self) -> None:
        try:
            if "keras" not in sys.modules:
                self.sigPhase.emit("Loading TensorFlow…")
            import keras  # noqa: F401  (the one slow import, paid on this thread)

            if self._stop.is_set():
                self._end(self.sigFinished, TrainingResult(model=None, stopped_early=True,
                                                           stop_reason="stopped before training began"))
                return
            self.sigPhase.emit("Building the model…")
            model = self._starting_model()
            result = train(self.design, self.dataset.train, self.dataset.validation, self.config, self,
                           model=model)
        except ConvasError as exc:
            self._end(self.sigFailed, str(exc))
        except Exception as exc:  # noqa: BLE001 - whatever Keras raises becomes a message, not a crash
            self._end(self.sigFailed, failure_message(exc))
        else:
            self._end(self.sigFinished, result)

    def _starting_model(self) -> Any:
        """None (train builds fresh weights), or the design's model with the imported file's
        weights wherever a layer of the same name and shapes is there."""
        if self.weights_file is None:
            return None
        import keras

        from engine.export.run import transfer_weights
        from engine.keras_build import build_keras_model

        keras.utils.set_random_seed(self.config.seed)  # the layers left fresh, as train would
        model = build_keras_model(self.design)
        fresh = transfer_weights(model, self.weights_file, strict=False)
        name = getattr(self.weights_file, "name", str(self.weights_file))
        self.sigMessage.emit(f"Starting from the weights of {name}"
                             + (f"; fresh weights for {', '.join(fresh)}" if fresh else ""))
        return model

    def _end(self, signal: Any, value: Any) -> None:
        # Back to the GUI thread first, so that the GUI may drop (and delete) this object safely.
        self.moveToThread(QCoreApplication.instance().thread())
        signal.emit(value)


def failure_message(exc: BaseException) -> str:
    """"Training failed: <first line of the error>" for an unexpected exception."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    if len(first) > 300:
        first = first[:297] + "…"
    return f"Training failed: {first}"


def start_worker(worker: QObject, parent: QObject, name: str = "convas-training",
                 on_thread_finished: Any = None) -> QThread:
    """Move ``worker`` (a QObject with ``run``, ``sigFinished`` and ``sigFailed``) to a new thread
    (a child of ``parent``) and start it; the thread quits when the run ends.
    ``on_thread_finished`` is connected before the start, so even an instant run reaches it."""
    thread = QThread(parent)
    thread.setObjectName(name)
    if on_thread_finished is not None:
        thread.finished.connect(on_thread_finished)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.sigFinished.connect(thread.quit)
    worker.sigFailed.connect(thread.quit)
    thread.start()
    return thread
