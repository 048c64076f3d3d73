"""Fit Head to Data: the one-click edit that fits the design's output to a loaded dataset.

One function, called by the Model menu and by the Train panel's button alike, so that both
make the same single undo step (:func:`engine.heads.plan_fit_head`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.heads import HeadRefused, plan_fit_head
from engine.tasks import TASKS_FOR_TARGET, TargetKind, Task

if TYPE_CHECKING:  # pragma: no cover
    from .document import Document

FIT_HEAD_TEXT = "Fit Head to Data"


def data_outputs(dataset: Any) -> int:
    """How many values per sample (or per pixel) ``dataset`` needs from the network: its classes,
    labels, targets or mask classes (:attr:`engine.datasets.Dataset.class_names`, else the width
    of its targets)."""
    names = list(getattr(dataset, "class_names", None) or [])
    if names:
        return len(names)
    y = getattr(getattr(dataset, "train", None), "y", None)
    shape: tuple[int, ...] = tuple(getattr(y, "shape", ()))
    return int(shape[1]) if len(shape) == 2 else 0


def data_task(dataset: Any) -> Task:
    """The task ``dataset``'s targets train first (classes: classification, masks: segmentation…)."""
    target = getattr(dataset, "target", TargetKind.CLASS)
    return TASKS_FOR_TARGET[TargetKind(target)][0]


def fit_head(document: Document, dataset: Any, task: Task | None = None) -> str | None:
    """Fit the document's design to ``dataset`` for ``task`` (None: the task its targets train)
    as one undo step. Returns why nothing was done (a sentence for people), or None when done."""
    if dataset is None:
        return "Load a dataset in the Train panel first: the head is fitted to its classes or targets."
    task = Task(task) if task is not None else data_task(dataset)
    count = data_outputs(dataset)
    names = list(getattr(dataset, "class_names", None) or []) or None
    try:
        ops = plan_fit_head(document.design, document.analysis, task, count, names)
    except HeadRefused as refused:
        text = str(refused)
        return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
    document.edit(f"{FIT_HEAD_TEXT} ({count} {'output' if count == 1 else 'outputs'}, {task.value})", ops)
    return None
