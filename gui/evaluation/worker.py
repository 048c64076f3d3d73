"""Evaluation off the GUI thread: a worker object on its own QThread, answering by signals only.

Every run carries a number; the panel ignores answers from runs it has since replaced. Threads
are kept alive here until they have finished, so closing the panel mid-run never destroys a
running QThread (which would abort the application).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from engine.errors import ConvasError
from engine.evaluation import evaluate

_RUNNING: set[tuple[QThread, "EvaluationWorker"]] = set()


class EvaluationWorker(QObject):
    """Calls :func:`engine.evaluation.evaluate` when :meth:`run` is called on its thread; ends with
    exactly one of ``sigFinished(run, evaluation)`` and ``sigFailed(run, message)``."""

    sigFinished = Signal(int, object)
    sigFailed = Signal(int, str)

    def __init__(self, run_id: int, model: Any, dataset: Any) -> None:
        super().__init__()
        self.run_id, self.model, self.dataset = run_id, model, dataset

    @Slot()
    def run(self) -> None:
        try:
            result = evaluate(self.model, self.dataset)
        except ConvasError as exc:
            self._end(self.sigFailed, str(exc))
        except Exception as exc:  # noqa: BLE001 - whatever Keras raises becomes a message, not a crash
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            self._end(self.sigFailed, f"Evaluation failed: {lines[0] if lines else type(exc).__name__}")
        else:
            self._end(self.sigFinished, result)

    def _end(self, signal: Any, value: Any) -> None:
        self.moveToThread(QCoreApplication.instance().thread())
        signal.emit(self.run_id, value)


def start_worker(worker: EvaluationWorker) -> QThread:
    """Run ``worker`` on a new thread that quits when the run ends (call on the GUI thread)."""
    global _REAPER
    if _REAPER is None:
        _REAPER = _Reaper()
    thread = QThread()
    thread.setObjectName("convas-evaluation")
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.sigFinished.connect(thread.quit)
    worker.sigFailed.connect(thread.quit)
    _RUNNING.add((thread, worker))
    thread.finished.connect(_REAPER.forget, Qt.ConnectionType.QueuedConnection)
    thread.start()
    return thread


class _Reaper(QObject):
    """Lives on the GUI thread and drops threads once they have ended."""

    @Slot()
    def forget(self) -> None:
        thread = self.sender()
        for entry in [e for e in _RUNNING if e[0] is thread]:
            entry[0].wait()
            _RUNNING.discard(entry)


_REAPER: _Reaper | None = None


def running() -> int:
    """How many evaluation threads are still alive."""
    return len(_RUNNING)


def wait_all(timeout_ms: int = 30_000) -> bool:
    """Wait for every evaluation thread to end (call before the application quits: a QThread
    destroyed while it runs aborts the process). False if one is still running at the deadline."""
    done = True
    for thread, _worker in list(_RUNNING):
        done = thread.wait(timeout_ms) and done
    return done
