"""A sweep off the GUI thread, and reading a study back, both on :mod:`gui.workers` workers.

:class:`SweepWorker` is the reporter of :func:`engine.sweep.run_sweep`: its methods run on the
worker thread and only emit Qt signals (queued to the GUI thread) or read the task's cancel flag
(``should_stop``, which the runner polls between trials and every batch). :func:`load_study`
reads a study's trials for the panel (a reattach, or a refresh while another process runs it)
without creating a database that is not there. Nothing here imports Optuna or TensorFlow: the
task does, on its thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal

from engine.errors import first_line

from ..workers import TaskOwner, TaskState, Worker, create_worker


class SweepWorker(TaskOwner):
    """Runs ``project`` (an :class:`engine.sweep.SweepProject`) once :meth:`start` is called.

    ``sigStarted(info, records)``, then per trial ``sigTrialStarted(number, params)``,
    ``sigTrialEpoch(number, epoch, logs)`` and ``sigTrialFinished(record)``; then one of
    ``sigFinished(outcome)`` (an :class:`engine.sweep.SweepOutcome`, also after a stop) and
    ``sigFailed(message)``; then ``sigEnded``. All on the GUI thread."""

    sigStarted = Signal(object, object)
    sigTrialStarted = Signal(int, object)
    sigTrialEpoch = Signal(int, int, object)
    sigTrialFinished = Signal(object)

    def __init__(self, project: Any, dataset: Any = None) -> None:
        super().__init__()
        self.project, self.dataset = project, dataset
        self.own_task(self._run, name="convas-sweep", describe=failure_message)

    # --- the GUI thread ----------------------------------------------------------------------------


    def is_running(self) -> bool:
        return self.task.is_running()

    def stop_requested(self) -> bool:
        return self.task.is_cancelled()

    # --- the reporter (the worker thread) ----------------------------------------------------------

    def sweep_started(self, info: Any, records: list[Any]) -> None:
        self.sigStarted.emit(info, list(records))

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        self.sigTrialStarted.emit(number, dict(params))

    def trial_epoch(self, number: int, epoch: int, logs: dict[str, float]) -> None:
        self.sigTrialEpoch.emit(number, epoch, dict(logs))

    def trial_finished(self, record: Any) -> None:
        self.sigTrialFinished.emit(record)

    def should_stop(self) -> bool:
        return self.task.is_cancelled()

    def _run(self, state: TaskState) -> Any:
        from engine.quiet_tf import importing_tensorflow
        from engine.sweep import run_sweep

        with importing_tensorflow():  # TensorFlow's start-up lines stay off the user's terminal
            import keras  # noqa: F401  (the one slow import, paid on this thread)
        state.check()
        return run_sweep(self.project, self, dataset=self.dataset)


def failure_message(exc: BaseException) -> str:
    return f"The sweep failed: {first_line(exc)}"


def sqlite_file(storage: str) -> Path | None:
    """The file of a ``sqlite:///`` storage URL (None for other databases)."""
    from engine.sweep_storage import sqlite_path

    path = sqlite_path(storage)
    return Path(path) if path is not None else None


def load_study(_state: TaskState, storage: str, study: str) -> tuple[Any, list[Any]] | None:
    """The task of a reattach: ``(StudyInfo, records)`` of ``study`` in ``storage``, or None when
    the storage has no such study (a SQLite file that does not exist is not created)."""
    from engine.sweep import load_records, study_names

    database = sqlite_file(storage)
    if database is not None and not database.is_file():
        return None
    if study not in study_names(storage):
        return None
    return load_records(storage, study)


def start_loading(storage: str, study: str) -> Worker:
    """A started worker running :func:`load_study` (``sigFinished`` carries its answer)."""
    return create_worker(load_study, storage, study, name="convas-sweep-load",
                         describe=lambda exc: f"Could not read the study: {first_line(exc)}")
