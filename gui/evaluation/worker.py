"""Evaluation off the GUI thread, through the one worker utility (:mod:`gui.workers`).

The worker answers by signals on the GUI thread; the panel ignores answers from runs it has since
replaced. The utility holds a running worker, so closing the panel mid-run never destroys a
running thread; :func:`gui.workers.wait_all` waits for it at shutdown.
"""

from __future__ import annotations

from typing import Any

from engine.evaluation import evaluate

from ..workers import TaskState, Worker, create_worker


def _evaluate(state: TaskState, model: Any, dataset: Any) -> Any:
    return evaluate(model, dataset)


def start_evaluation(model: Any, dataset: Any) -> Worker:
    """A started worker that evaluates ``model`` on ``dataset`` (:func:`engine.evaluation.evaluate`)
    and ends with ``sigFinished(evaluation)`` or ``sigFailed(message)``; connect to it at once
    (answers come through the event loop, never before)."""
    return create_worker(_evaluate, model, dataset, name="convas-evaluation", failure="Evaluation failed")
