"""Evaluation off the GUI thread, through the one worker utility (:mod:`gui.workers`).

The worker answers by signals on the GUI thread; the panel ignores answers from runs it has since
replaced. The utility holds a running worker, so closing the panel mid-run never destroys a
running thread; :func:`gui.workers.wait_all` waits for it at shutdown.
"""

from __future__ import annotations

from typing import Any

from engine.tasks import OutputShape, Task, infer_task

from ..workers import TaskState, Worker, create_worker


def model_task(model: Any, dataset: Any) -> Task:
    """The task a trained model most likely has on ``dataset`` (when the trainer did not say):
    from its output's shape and activation and what the data holds."""
    from engine.evaluation import single_input_output

    single_input_output(model, "evaluate it")
    last = model.layers[-1] if getattr(model, "layers", None) else None
    activation = getattr(getattr(last, "activation", None), "__name__", None)
    io = OutputShape(tuple(model.inputs[0].shape[1:]), tuple(model.outputs[0].shape[1:]), activation)
    return infer_task(io, getattr(dataset, "target", None))


def _evaluate(state: TaskState, model: Any, dataset: Any, task: Task | None, noise_stddev: float,
              loss: str | None) -> tuple[Task, Any]:
    from engine.task_evaluation import evaluate_task

    task = model_task(model, dataset) if task is None else Task(task)
    return task, evaluate_task(model, dataset, task, loss=loss, noise_stddev=noise_stddev)


def start_evaluation(model: Any, dataset: Any, task: Task | None = None, noise_stddev: float = 0.0,
                     loss: str | None = None) -> Worker:
    """A started worker that evaluates ``model`` on ``dataset`` for ``task`` (None: inferred, see
    :func:`model_task`) with :func:`engine.task_evaluation.evaluate_task`, ending with
    ``sigFinished((task, evaluation))`` or ``sigFailed(message)``; connect to it at once
    (answers come through the event loop, never before)."""
    return create_worker(_evaluate, model, dataset, task, float(noise_stddev), loss, name="convas-evaluation",
                         failure="Evaluation failed")
