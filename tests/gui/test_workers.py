"""The worker utility (gui/workers.py): results, failures, cancelling and progress arrive on the
GUI thread, the task runs on another, and a running thread outlives whoever started it."""

from __future__ import annotations

import threading
import time

import shiboken6
from PySide6.QtWidgets import QWidget

from engine.errors import ConvasError
from gui import workers
from gui.workers import Cancelled, TaskState, create_worker

TIMEOUT_MS = 10_000


def outcome_recorder(worker: workers.Worker) -> list[tuple[str, object, int, bool]]:
    """(signal, value, thread id, worker still running) for every signal the worker sends."""
    seen: list[tuple[str, object, int, bool]] = []

    def note(kind: str):
        return lambda *value: seen.append((kind, value[0] if value else None, threading.get_ident(),
                                           worker.is_running()))

    worker.sigProgress.connect(note("progress"))
    worker.sigFinished.connect(note("finished"))
    worker.sigFailed.connect(note("failed"))
    worker.sigCancelled.connect(note("cancelled"))
    worker.sigEnded.connect(note("ended"))
    return seen


def test_a_function_runs_on_another_thread_and_its_result_arrives_on_the_gui_thread(qtbot):
    ran_on = []

    def task(state: TaskState, a: int, b: int = 0) -> int:
        ran_on.append(threading.get_ident())
        return a + b

    worker = create_worker(task, 2, b=3, start=False)
    seen = outcome_recorder(worker)
    with qtbot.waitSignal(worker.sigEnded, timeout=TIMEOUT_MS):
        worker.start()
        assert worker.is_running() and workers.running() >= 1
    main = threading.get_ident()
    assert ran_on and ran_on[0] != main
    # The outcome comes after the thread has ended, then sigEnded; both on the GUI thread.
    assert seen == [("finished", 5, main, False), ("ended", None, main, False)]
    assert worker.outcome == "finished" and not worker.is_running()


def test_an_exception_fails_with_its_first_line_and_a_convas_error_with_its_text(qtbot):
    def broken(state: TaskState) -> None:
        raise ValueError("\nshapes do not match\n  at layer dense")

    def refused(state: TaskState) -> None:
        raise ConvasError("the model has 3 units but the data has 2 classes")

    worker = create_worker(broken, failure="Evaluation failed")
    with qtbot.waitSignal(worker.sigFailed, timeout=TIMEOUT_MS) as failed:
        pass
    assert failed.args == ["Evaluation failed: shapes do not match"]
    worker = create_worker(refused, describe=lambda exc: "not used")
    with qtbot.waitSignal(worker.sigFailed, timeout=TIMEOUT_MS) as failed:
        pass
    assert failed.args == ["the model has 3 units but the data has 2 classes"]


def test_cancel_stops_a_task_that_checks_its_state(qtbot):
    started = threading.Event()

    def slow(state: TaskState) -> str:
        started.set()
        while True:
            state.check()
            time.sleep(0.005)

    worker = create_worker(slow, start=False)
    seen = outcome_recorder(worker)
    with qtbot.waitSignal(worker.sigEnded, timeout=TIMEOUT_MS):
        worker.start()
        assert started.wait(5)
        worker.cancel()
    assert [kind for kind, *_ in seen] == ["cancelled", "ended"] and worker.outcome == "cancelled"


def test_a_task_that_returns_after_a_cancel_request_still_finishes(qtbot):
    def stops_early(state: TaskState) -> str:
        while not state.is_cancelled():
            time.sleep(0.005)
        return "stopped early, with what was done"

    worker = create_worker(stops_early)
    with qtbot.waitSignal(worker.sigFinished, timeout=TIMEOUT_MS) as finished:
        worker.cancel()
    assert finished.args == ["stopped early, with what was done"]


def test_progress_arrives_in_order_before_the_result(qtbot):
    def reporting(state: TaskState) -> str:
        for step in ("build", "save", "verify"):
            state.progress(step)
        return "done"

    def generating(state: TaskState, n: int):
        yield from range(n)
        return n * 10

    for func, args, progress, result in ((reporting, (), ["build", "save", "verify"], "done"),
                                         (generating, (4,), [0, 1, 2, 3], 40)):
        worker = create_worker(func, *args, start=False)
        seen = outcome_recorder(worker)
        with qtbot.waitSignal(worker.sigEnded, timeout=TIMEOUT_MS):
            worker.start()
        assert [value for kind, value, *_ in seen if kind == "progress"] == progress
        assert seen[-2][:2] == ("finished", result) and seen[-1][0] == "ended"
        assert {ident for _kind, _value, ident, _running in seen} == {threading.get_ident()}


def test_a_generator_is_cancelled_between_its_values(qtbot):
    closed = threading.Event()
    gate = threading.Event()

    def endless(state: TaskState):
        try:
            i = 0
            while True:
                gate.wait(5)
                time.sleep(0.002)
                yield i
                i += 1
        finally:
            closed.set()

    worker = create_worker(endless, start=False)
    values = []
    worker.sigProgress.connect(values.append)
    worker.start()
    gate.set()
    qtbot.waitUntil(lambda: len(values) >= 2, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(worker.sigCancelled, timeout=TIMEOUT_MS):
        worker.cancel()
    assert closed.is_set() and values[:2] == [0, 1]


def test_closing_the_owner_mid_run_neither_destroys_the_thread_nor_aborts(qtbot):
    release = threading.Event()
    ran = threading.Event()

    def blocked(state: TaskState) -> str:
        release.wait(10)
        ran.set()
        return "done"

    owner = QWidget()
    owner.show()
    received = []

    class Listener(QWidget):  # a child of the owner: deleted with it
        def take(self, value: object) -> None:
            received.append(value)

    listener = Listener(owner)
    worker = create_worker(blocked)
    worker.sigFinished.connect(listener.take)
    owner.close()
    owner.deleteLater()
    qtbot.waitUntil(lambda: not shiboken6.isValid(listener), timeout=TIMEOUT_MS)
    assert worker.is_running() and workers.running() >= 1
    with qtbot.waitSignal(worker.sigEnded, timeout=TIMEOUT_MS):
        release.set()
    assert ran.is_set() and received == []  # the answer went nowhere: its receiver is gone
    assert workers.wait_all(1000)


def test_wait_all_waits_for_every_thread_to_end(qtbot):
    release = threading.Event()
    ends = []

    def blocked(state: TaskState) -> None:
        release.wait(10)
        ends.append(time.monotonic())

    started = [create_worker(blocked) for _ in range(3)]
    assert workers.running() >= 3
    assert not workers.wait_all(50)
    release.set()
    assert workers.wait_all(5000) and len(ends) == 3
    qtbot.waitUntil(lambda: not any(w.is_running() for w in started), timeout=TIMEOUT_MS)


def test_workers_are_made_on_the_gui_thread_only(qtbot):
    errors = []

    def make() -> None:
        try:
            workers.Worker(lambda state: None)
        except RuntimeError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    assert errors and "GUI thread" in errors[0]


def test_raising_cancelled_without_a_request_still_counts_as_cancelled(qtbot):
    def gives_up(state: TaskState) -> None:
        raise Cancelled

    worker = create_worker(gives_up)
    with qtbot.waitSignal(worker.sigCancelled, timeout=TIMEOUT_MS):
        pass
