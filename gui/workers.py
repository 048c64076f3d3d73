"""Running a function off the GUI thread: one worker utility for every long job in Convas.

In the shape of superqt's ``create_worker``: :func:`create_worker` runs ``func`` on a new
:class:`QThread` and hands back a :class:`Worker` whose signals say how it went. As in
orange-canvas-core, the function receives a :class:`TaskState` as its first argument, through which
it reports progress and learns that it should stop::

    def count(state: TaskState, n: int) -> int:
        for i in range(n):
            state.check()          # raises Cancelled once cancel() was called
            state.progress(i)
        return n

    worker = create_worker(count, 10, name="convas-count")
    worker.sigProgress.connect(bar.setValue)
    worker.sigFinished.connect(show)

A generator function may instead ``yield`` its progress: each value becomes ``sigProgress``, the
cancel flag is checked between values, and the generator's ``return`` value is the result.

What the signals promise:

* Every public signal is emitted on the GUI thread, so slots may touch widgets.
* ``sigProgress(value)`` any number of times, then exactly one of ``sigFinished(result)``,
  ``sigFailed(message)`` and ``sigCancelled()``, then ``sigEnded()``. The outcome comes only
  after the thread has ended: in those slots :meth:`Worker.is_running` is False and a new worker
  may be started at once.
* A function that returns normally finishes, even after a cancel request (a training run that
  stops early still has a result); raising :class:`Cancelled` (or ``state.check()``) cancels.
* Any other exception fails, with a message for people: a :class:`~engine.errors.ConvasError`'s
  own text, otherwise ``describe(exc)`` (by default "<failure>: <first line of the error>").

Ownership: a running worker is held by this module's registry, not by any widget, and its
QThread has no Qt parent. Closing or deleting whoever started a worker therefore never destroys a
running QThread (which would abort the process); the worker simply ends and its answer goes
nowhere. :func:`wait_all` waits for every running worker, for application shutdown;
:func:`running` counts them.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QDeadlineTimer, QObject, QThread, Signal, Slot

from engine.errors import ConvasError, first_line


class Cancelled(Exception):
    """Raised inside a task (by :meth:`TaskState.check` or by the task itself) to end it as
    cancelled rather than failed."""


class TaskState:
    """What a running task shares with the GUI: a cancel flag (thread-safe) and a progress
    channel. Made by :class:`Worker`; the task only reads the flag and reports progress."""

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._report: Callable[[Any], None] | None = None

    def request_cancel(self) -> None:
        """Ask the task to stop (any thread; the task decides when it can)."""
        self._cancel.set()

    def is_cancelled(self) -> bool:
        """True once a cancel was requested."""
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if a cancel was requested: a place where the task may stop."""
        if self._cancel.is_set():
            raise Cancelled

    def progress(self, value: Any = None) -> None:
        """Report progress; it arrives as ``sigProgress(value)`` on the GUI thread."""
        if self._report is not None:
            self._report(value)


# Outcomes, as the thread leaves them for the GUI thread.
_FINISHED, _FAILED, _CANCELLED = "finished", "failed", "cancelled"


class _TaskThread(QThread):
    """The QThread that calls the task; it keeps the outcome for :class:`Worker` to deliver."""

    sigProgress = Signal(object)  # emitted on this thread; queued to the Worker on the GUI thread

    def __init__(self, call: Callable[[], Any], state: TaskState,
                 describe: Callable[[BaseException], str]) -> None:
        super().__init__()
        self.call, self.state, self.describe = call, state, describe
        self.outcome: tuple[str, Any] = (_FAILED, "the task stopped unexpectedly")

    def run(self) -> None:  # Qt override, on the new thread
        state = self.state
        try:
            result = self.call()
            if inspect.isgenerator(result):
                result = self._drain(result)
        except Cancelled:
            self.outcome = (_CANCELLED, None)
        except ConvasError as exc:
            self.outcome = (_FAILED, str(exc))
        except Exception as exc:  # noqa: BLE001 - whatever a task raises becomes a message, not a crash
            self.outcome = (_FAILED, self.describe(exc))
        else:
            self.outcome = (_FINISHED, result)
        state._report = None

    def _drain(self, generator: Any) -> Any:
        """Run a generator task: each value is progress; stop between values once cancelled."""
        while True:
            if self.state.is_cancelled():
                generator.close()
                raise Cancelled
            try:
                value = next(generator)
            except StopIteration as stop:
                return stop.value
            self.sigProgress.emit(value)


def first_line_failure(failure: str) -> Callable[[BaseException], str]:
    """The default ``describe``: "<failure>: <first non-blank line of the error>"."""

    def describe(exc: BaseException) -> str:
        return f"{failure}: {first_line(exc)}"

    return describe


_RUNNING: set[Worker] = set()  # started and not yet delivered; see the module docstring


class Worker(QObject):
    """One run of a task on its own thread. Make it with :func:`create_worker`.

    ``sigProgress(value)``, then one of ``sigFinished(result)``, ``sigFailed(message)``,
    ``sigCancelled()``, then ``sigEnded()``: all on the GUI thread.
    """

    sigProgress = Signal(object)
    sigFinished = Signal(object)
    sigFailed = Signal(str)
    sigCancelled = Signal()
    sigEnded = Signal()

    def __init__(self, func: Callable[..., Any], *args: Any, name: str = "convas-worker",
                 failure: str = "Failed", describe: Callable[[BaseException], str] | None = None,
                 **kwargs: Any) -> None:
        app = QCoreApplication.instance()
        if app is None or QThread.currentThread() is not app.thread():
            raise RuntimeError("workers are made on the GUI thread, with a QApplication")
        super().__init__()  # no parent: the registry owns it while it runs
        self.name = name
        self.state = TaskState()
        self._thread: _TaskThread | None = _TaskThread(lambda: func(self.state, *args, **kwargs), self.state,
                                                       describe or first_line_failure(failure))
        self._thread.setObjectName(name)
        self._thread.sigProgress.connect(self._on_progress)
        self._thread.finished.connect(self._on_thread_finished)
        self._started = False
        self.outcome: str | None = None  # "finished", "failed" or "cancelled" once delivered

    # --- GUI thread ---------------------------------------------------------------------------

    def start(self) -> Worker:
        """Start the thread (once); returns self."""
        if self._started:
            return self
        self._started = True
        thread = self._thread
        assert thread is not None
        # The task's progress is emitted by the thread object, on the task's thread, and queued
        # to this object (which lives on the GUI thread) like any cross-thread signal.
        thread.state._report = thread.sigProgress.emit
        _RUNNING.add(self)
        thread.start()
        return self

    def cancel(self) -> None:
        """Ask the task to stop; it ends with ``sigCancelled`` if it obeys, or finishes anyway."""
        self.state.request_cancel()

    def is_cancelled(self) -> bool:
        return self.state.is_cancelled()

    def is_running(self) -> bool:
        """Started and its outcome not yet delivered."""
        return self in _RUNNING

    def wait(self, timeout_ms: int | None = None) -> bool:
        """Block until the thread has ended (not until the outcome is delivered: that needs the
        event loop). True if it has ended (or never started)."""
        thread = self._thread
        if thread is None or not self._started:
            return True
        return thread.wait() if timeout_ms is None else thread.wait(QDeadlineTimer(timeout_ms))

    # --- delivery (slots on the GUI thread) ---------------------------------------------------

    @Slot(object)
    def _on_progress(self, value: Any) -> None:
        self.sigProgress.emit(value)

    @Slot()
    def _on_thread_finished(self) -> None:
        thread = self._thread
        if thread is None:
            return
        thread.wait()  # QThread.finished comes just before run() has fully returned
        self._thread = None
        kind, value = thread.outcome  # the thread object goes with this frame: it has ended
        _RUNNING.discard(self)
        self.outcome = kind
        if kind == _FINISHED:
            self.sigFinished.emit(value)
        elif kind == _CANCELLED:
            self.sigCancelled.emit()
        else:
            self.sigFailed.emit(value)
        self.sigEnded.emit()


def create_worker(func: Callable[..., Any], *args: Any, name: str = "convas-worker", failure: str = "Failed",
                  describe: Callable[[BaseException], str] | None = None, start: bool = True,
                  **kwargs: Any) -> Worker:
    """A :class:`Worker` that calls ``func(state, *args, **kwargs)`` on a new thread, started
    unless ``start`` is False (to connect signals first; connecting right after a started
    worker is also safe, as every signal is delivered through the GUI thread's event loop).

    ``name`` names the thread; an unexpected exception fails with ``describe(exc)``, by default
    "``failure``: <first line of the error>". Those four keywords are the worker's own and never
    reach ``func``.
    """
    worker = Worker(func, *args, name=name, failure=failure, describe=describe, **kwargs)
    return worker.start() if start else worker


def running() -> int:
    """How many workers have started and not yet delivered their outcome."""
    return len(_RUNNING)


def wait_all(timeout_ms: int = 30_000) -> bool:
    """Cancel nothing; wait up to ``timeout_ms`` for every running worker's thread to end. For
    application shutdown: a QThread destroyed while it runs aborts the process. False if one is
    still running at the deadline."""
    deadline = QDeadlineTimer(timeout_ms)
    return all([worker.wait(max(0, deadline.remainingTime())) for worker in list(_RUNNING)])


class TaskOwner(QObject):
    """Owns one piece of long work on a worker thread (:attr:`task`, made by :meth:`own_task`)
    and relays how it ends: exactly one of ``sigFinished`` (its result) and ``sigFailed`` (a
    message for people), then ``sigEnded`` once the thread has ended, all on the GUI thread.
    The training, cluster and sweep runs are task owners with signals of their own besides."""

    sigFinished = Signal(object)
    sigFailed = Signal(str)
    sigEnded = Signal()

    task: Worker

    def own_task(self, func: Callable[..., Any], *, name: str, failure: str = "Failed",
                 describe: Callable[[BaseException], str] | None = None) -> None:
        """Make :attr:`task`, which calls ``func(state)`` once :meth:`start` is called."""
        self.task = create_worker(func, name=name, failure=failure, describe=describe, start=False)
        self.task.sigFinished.connect(self.sigFinished)
        self.task.sigFailed.connect(self.sigFailed)
        self.task.sigEnded.connect(self.sigEnded)

    def start(self) -> Worker:
        """Start the work; returns its worker."""
        return self.task.start()

    def request_stop(self) -> None:
        """Ask the work to stop (its cancel flag: the work decides when it can)."""
        self.task.cancel()
