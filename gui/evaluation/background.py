"""Pictures a task view computes with the model (reconstructions, predicted masks), off the GUI
thread, showing only the answer to the latest request.

One computation runs at a time per :class:`LatestAnswer`; a request made meanwhile waits and
replaces any older waiting one, and the running one's answer is dropped. The work holds the same
lock as the feature-map and Grad-CAM views, so the model is never called from two threads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from ..workers import Worker, create_worker
from .inspector_base import locked


class LatestAnswer(QObject):
    """Runs ``work()`` on a worker and calls ``show(answer)`` (or ``fail(message)``) on the GUI
    thread, only for the latest request; ``sigAnswered`` follows every answer shown."""

    sigAnswered = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._request = 0
        self._worker: Worker | None = None
        self._worker_request = 0
        self._worker_calls: tuple[Callable[[Any], None], Callable[[str], None]] | None = None
        self._waiting: tuple[int, Callable[[], Any], Callable[[Any], None], Callable[[str], None]] | None = None

    def request(self, work: Callable[[], Any], show: Callable[[Any], None],
                fail: Callable[[str], None]) -> None:
        self._request += 1
        self._waiting = (self._request, work, show, fail)
        if self._worker is None:
            self._start_waiting()
        else:
            self._worker.cancel()

    def forget(self) -> None:
        """Drop every pending answer (the results changed)."""
        self._request += 1
        self._waiting = None
        if self._worker is not None:
            self._worker.cancel()

    def is_busy(self) -> bool:
        return self._worker is not None or self._waiting is not None

    def _start_waiting(self) -> None:
        assert self._waiting is not None
        request, work, show, fail = self._waiting
        self._waiting = None
        worker = create_worker(locked, work, name="convas-task-view", failure="Could not compute this view",
                               start=False)
        worker.sigFinished.connect(self._on_answer)
        worker.sigFailed.connect(self._on_failure)
        worker.sigEnded.connect(self._on_ended)
        self._worker, self._worker_request, self._worker_calls = worker, request, (show, fail)
        worker.start()

    def _wanted(self) -> bool:
        return self._worker_request == self._request and self._waiting is None

    def _on_answer(self, answer: Any) -> None:
        if self._wanted() and self._worker_calls is not None:
            self._worker_calls[0](answer)
            self.sigAnswered.emit()

    def _on_failure(self, message: str) -> None:
        if self._wanted() and self._worker_calls is not None:
            self._worker_calls[1](message)
            self.sigAnswered.emit()

    def _on_ended(self) -> None:
        self._worker = self._worker_calls = None
        if self._waiting is not None:
            self._start_waiting()
