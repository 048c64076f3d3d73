"""What a design is trained to do: the five CNN tasks, what each learns from, and how it is scored.

A :class:`Task` is chosen from the design's output and the data (:func:`infer_task`), may be
overridden by the user, and is saved with the training settings. Everything that depends on the
task asks its :class:`TaskSpec` here (losses offered, default metrics, the number that says how
good a model is) so that the engine, the CLI and the GUI agree. Nothing here imports Keras except
:func:`keras_loss` and :func:`keras_metrics`, which build the objects ``model.compile`` takes.

What the data holds is a :class:`TargetKind`; which tasks a kind of target can train is a fixed
table (:data:`TASKS_FOR_TARGET`), so a mismatch is explained before training, not by Keras.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .errors import ConvasError


class Task(StrEnum):
    """What the network learns. The value is what project files and ``--task`` say."""

    CLASSIFICATION = "classification"  # one class per image
    MULTILABEL = "multilabel"          # any number of labels per image (sigmoid outputs)
    REGRESSION = "regression"          # numbers per image
    RECONSTRUCTION = "reconstruction"  # the image itself (autoencoders, denoising)
    SEGMENTATION = "segmentation"      # one class per pixel

    @classmethod
    def parse(cls, value: Any) -> Task:
        """The task ``value`` names (case and ``-``/``_`` ignored); :class:`ConvasError` listing
        the tasks otherwise."""
        text = str(value).strip().lower().replace("-", "").replace("_", "")
        for task in cls:
            if text == task.value:
                return task
        if text in ("multilabelclassification", "multi"):
            return cls.MULTILABEL
        raise ConvasError(f"unknown task {value!r}; choose one of {', '.join(t.value for t in cls)}")


class TargetKind(StrEnum):
    """What a dataset gives the network to learn from, per sample (see ``Split.y``)."""

    CLASS = "class"            # int64 (N,): one class index
    MULTI_HOT = "multi_hot"    # float32 (N, L): 1 where a label applies, 0 elsewhere
    VALUES = "values"          # float32 (N, T): T numeric targets
    MASK = "mask"              # int64 (N, H, W): a class index per pixel
    NONE = "none"              # no targets: only the images (reconstruction learns them)


# Which tasks each kind of target can train. Every dataset can train reconstruction (the target
# is the input), so a labelled dataset also works for an autoencoder.
TASKS_FOR_TARGET: dict[TargetKind, tuple[Task, ...]] = {
    TargetKind.CLASS: (Task.CLASSIFICATION, Task.RECONSTRUCTION),
    TargetKind.MULTI_HOT: (Task.MULTILABEL, Task.RECONSTRUCTION),
    TargetKind.VALUES: (Task.REGRESSION, Task.RECONSTRUCTION),
    TargetKind.MASK: (Task.SEGMENTATION, Task.RECONSTRUCTION),
    TargetKind.NONE: (Task.RECONSTRUCTION,),
}

# Loss names (Keras's own identifiers, plus "dice", Keras's ``keras.losses.Dice``).
SPARSE_CCE = "sparse_categorical_crossentropy"
CCE = "categorical_crossentropy"
BCE = "binary_crossentropy"
MSE = "mean_squared_error"
MAE = "mean_absolute_error"
HUBER = "huber"
DICE = "dice"


@dataclass(frozen=True)
class TaskSpec:
    """Everything that follows from a task.

    ``losses`` are the losses offered, the first being the default. ``metrics`` name the metrics
    logged every epoch (and drawn as curves); ``quality`` is the one that says how good a model is
    (what the Evaluation panel leads with and a sweep maximises), ``higher_is_better`` its
    direction. ``label`` and ``description`` are for people.
    """

    task: Task
    label: str
    description: str
    losses: tuple[str, ...]
    metrics: tuple[str, ...]
    quality: str
    higher_is_better: bool = True

    @property
    def default_loss(self) -> str:
        return self.losses[0]


SPECS: dict[Task, TaskSpec] = {
    Task.CLASSIFICATION: TaskSpec(
        Task.CLASSIFICATION, "Classification", "one class per image",
        (SPARSE_CCE, CCE, BCE), ("accuracy",), "accuracy"),
    Task.MULTILABEL: TaskSpec(
        Task.MULTILABEL, "Multi-label", "any number of labels per image",
        (BCE,), ("accuracy", "precision", "recall"), "accuracy"),
    Task.REGRESSION: TaskSpec(
        Task.REGRESSION, "Regression", "numeric targets per image",
        (MSE, MAE, HUBER), ("mae", "r2"), "r2"),
    Task.RECONSTRUCTION: TaskSpec(
        Task.RECONSTRUCTION, "Reconstruction", "the image itself (autoencoder, denoising)",
        (MSE, MAE), ("mae",), "loss", higher_is_better=False),
    Task.SEGMENTATION: TaskSpec(
        Task.SEGMENTATION, "Segmentation", "one class per pixel",
        (SPARSE_CCE, DICE), ("accuracy", "mean_iou"), "mean_iou"),
}


def spec(task: Task) -> TaskSpec:
    """The :class:`TaskSpec` of ``task``."""
    return SPECS[Task(task)]


@dataclass(frozen=True)
class OutputShape:
    """The parts of a design's input and output that decide its task (shapes without the batch
    axis, as :class:`engine.data_source.ModelIO` has them)."""

    input_shape: tuple[int | None, ...]
    output_shape: tuple[int | None, ...]
    activation: str | None


def infer_task(io: OutputShape, target: TargetKind | None = None) -> Task:
    """The task a design with this output most likely has, given what the data holds
    (``target`` None when the data is not chosen yet).

    - an image-shaped output the size of the input (same height, width and channels) with data
      that has no masks: reconstruction;
    - an image-shaped output with the input's height and width and several channels, or data
      with masks: segmentation;
    - a vector output: classification for class data, multi-label for multi-hot data or a
      sigmoid output of several units, regression for numeric targets or a linear output.
    """
    out, inp = tuple(io.output_shape), tuple(io.input_shape)
    act = (io.activation or "linear").lower()
    if target is TargetKind.NONE:
        return Task.RECONSTRUCTION
    if len(out) == 3:
        if target is TargetKind.MASK:
            return Task.SEGMENTATION
        if out == inp and target is not TargetKind.MASK:
            return Task.RECONSTRUCTION
        if len(inp) == 3 and out[:2] == inp[:2] and (out[2] or 0) > 1 and act == "softmax":
            return Task.SEGMENTATION
        return Task.RECONSTRUCTION
    if target is TargetKind.MULTI_HOT:
        return Task.MULTILABEL
    if target is TargetKind.VALUES:
        return Task.REGRESSION
    if target is TargetKind.MASK:
        return Task.SEGMENTATION
    if target is TargetKind.CLASS:
        return Task.CLASSIFICATION
    units = out[-1] if out else None
    if act == "sigmoid" and units is not None and units > 1:
        return Task.MULTILABEL
    if act == "linear":
        return Task.REGRESSION
    return Task.CLASSIFICATION


def task_problem(task: Task, target: TargetKind) -> str | None:
    """Why data with ``target`` cannot train ``task`` (with a fix), or None when it can."""
    if task in TASKS_FOR_TARGET[target]:
        return None
    fits = " or ".join(t.value for t in TASKS_FOR_TARGET[target])
    what = {TargetKind.CLASS: "one class per image", TargetKind.MULTI_HOT: "several labels per image",
            TargetKind.VALUES: "numeric targets", TargetKind.MASK: "a mask per image",
            TargetKind.NONE: "images only"}[target]
    return (f"the task is {task.value}, but the data has {what}; choose the task {fits}, or data "
            f"made for {task.value}")


def one_hot_masks(task: Task, loss: str | None) -> bool:
    """Whether the training pipeline feeds segmentation masks one-hot ((N, H, W, classes)) rather
    than as class indices: Keras's Dice loss compares like-shaped tensors."""
    return task is Task.SEGMENTATION and loss == DICE


# --------------------------------------------------------------------------------------------
# Keras objects (imported on use)

def keras_loss(task: Task, loss: str) -> Any:
    """What ``model.compile(loss=...)`` takes for ``loss`` in ``task``: Keras's identifier, or a
    loss object where the identifier alone is not enough (``dice``)."""
    if loss == DICE:
        import keras

        return keras.losses.Dice(name="dice")
    if loss == HUBER:
        import keras

        return keras.losses.Huber(name="huber")
    return loss


def keras_metrics(task: Task, classes: int | None, extra: Sequence[str] = (),
                  loss: str | None = None) -> list[Any]:
    """The metrics ``model.compile`` takes for ``task`` (its :attr:`TaskSpec.metrics`, named as
    logged), then ``extra`` metric names not already among them. ``classes`` is the number of
    classes of a segmentation output (needed by mean IoU). With the Dice loss the masks arrive
    one-hot (see :func:`one_hot_masks`), and mean IoU reads them so."""
    import keras

    names = list(spec(task).metrics) + [m for m in extra if m not in spec(task).metrics]
    built: list[Any] = []
    for name in names:
        if task is Task.MULTILABEL and name == "accuracy":
            built.append(keras.metrics.BinaryAccuracy(name="accuracy"))
        elif name == "precision":
            built.append(keras.metrics.Precision(name="precision"))
        elif name == "recall":
            built.append(keras.metrics.Recall(name="recall"))
        elif name == "mae":
            built.append(keras.metrics.MeanAbsoluteError(name="mae"))
        elif name == "r2":
            built.append(keras.metrics.R2Score(name="r2"))
        elif name == "mean_iou":
            if not classes or classes < 2:
                raise ConvasError("mean IoU needs an output with at least 2 classes per pixel")
            built.append(keras.metrics.MeanIoU(num_classes=int(classes), sparse_y_pred=False,
                                               sparse_y_true=not one_hot_masks(task, loss),
                                               name="mean_iou"))
        else:
            built.append(name)
    return built
