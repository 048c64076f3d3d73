"""Where a design's training data comes from, and whether it fits the design.

The GUI's dataset box and ``convas train --data`` both name a source the same way: ``digits``,
``shapes`` or a path (a ``.npz`` or ``.csv`` file, or a folder: one sub-folder per class,
``images/`` + ``masks/``, images with a ``labels.csv``, or bare images). :func:`load_dataset`
turns that into a :class:`~engine.datasets.Dataset` sized for the design's input, with targets
for the task; :func:`choose_task` settles the task (the user's, or the one the design's output
and the data suggest), and :func:`dataset_problems` explains every mismatch between the data,
the task and the design's output before any training starts. Nothing here imports TensorFlow:
the design's input and output are read from the analysis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .analysis import Analysis, analyse
from .datasets import (Dataset, DatasetError, check_compatibility, load_csv_dataset,
                       load_digits_dataset, load_npy_dataset, load_npz_dataset, make_shapes_dataset,
                       normalise_loss, npy_folder)
from .design import Design
from .image_folders import load_folder
from .pixel_range import PixelRange, deliver
from .shapes import known_sizes
from .tasks import (BCE, CCE, SPARSE_CCE, OutputShape, TargetKind, Task, infer_task,
                    spec, task_problem)

if TYPE_CHECKING:  # for an annotation only: reading data needs nothing of training
    from .training import TrainingSettings

SHAPES_SAMPLES = 2000


@dataclass(frozen=True)
class ModelIO:
    """What a single-input, single-output design looks like from the outside: a vector output
    (``output_shape`` ``(units,)``) or an image-shaped one (``(H, W, channels)``, whose
    ``output_units`` are its channels)."""

    input_shape: tuple[int, ...]  # without the batch axis
    output_units: int | None
    output_activation: str | None
    output_layer: str
    output_shape: tuple[int | None, ...] = ()  # without the batch axis

    @property
    def outputs(self) -> OutputShape:
        """The parts that decide the task (see :func:`engine.tasks.infer_task`)."""
        return OutputShape(tuple(self.input_shape), tuple(self.output_shape), self.output_activation)


def model_io(design: Design, analysis: Analysis | None = None) -> ModelIO:
    """The input shape and output layer of ``design``; :class:`DatasetError` when the design
    cannot be trained on an image dataset (invalid, several inputs or outputs, unknown sizes)."""
    analysis = analysis or analyse(design)
    if not analysis.valid:
        first = analysis.errors[0]
        where = f"'{first.node}' " if first.node else ""
        raise DatasetError(f"the design has errors; fix them before training ({where}{first.message})")
    inputs = design.input_names()
    outputs = design.output_refs()
    if len(inputs) != 1:
        raise DatasetError(f"training on an image dataset needs exactly one input; the design has "
                           f"{len(inputs)}")
    if len(outputs) != 1:
        raise DatasetError(f"training needs exactly one output; the "
                           f"design has {len(outputs)} ({', '.join(str(r) for r in outputs)})")
    shape = analysis.nodes[inputs[0]].output_shape
    sizes = None if shape is None else known_sizes(shape[1:])
    if sizes is None:
        raise DatasetError(f"the input '{inputs[0]}' has no fixed size {shape}; give it a shape such "
                           f"as (28, 28, 1)")
    out = outputs[0]
    report = analysis.nodes[out.node]
    out_shape = report.output_shapes[out.call] if out.call < len(report.output_shapes) else None
    units = out_shape[-1] if out_shape else None
    return ModelIO(sizes, units, _activation(report.kind, report.args),
                   out.node, tuple(out_shape[1:]) if out_shape else ())


def _activation(kind: str, args: dict) -> str | None:
    if kind == "Softmax":
        return "softmax"
    if kind in ("ReLU", "LeakyReLU", "PReLU", "ELU"):
        return kind.lower()
    value = args.get("activation")
    return value if isinstance(value, str) else None


def load_dataset(source: str, input_shape: tuple[int, ...], validation_split: float = 0.2,
                 seed: int = 0, pixel_range: PixelRange = PixelRange.UNIT,
                 output_units: int | None = None, *, task: Task | None = None,
                 target_columns: Sequence[str] = (),
                 output_shape: tuple[int | None, ...] | None = None) -> Dataset:
    """The dataset ``source`` names (``digits``, ``shapes`` or a path), sized to ``input_shape``,
    its pixels delivered in ``pixel_range`` ([0, 1] or raw 0–255, see :mod:`engine.pixel_range`).

    ``task`` (None: read from the data) says what to read as targets where the data could mean
    several (see the loaders): ``shapes`` draws masks for segmentation, sizes and positions for
    regression, several shapes per image for multi-label. ``target_columns`` names a CSV's
    target columns. ``output_units`` and ``output_shape`` (the design's, when known) bound the
    class numbers a file's labels may use, and tell masks stored as 1..K (K output channels)
    from masks with a background 0. Every loader sets ``Dataset.target``. Raises
    :class:`DatasetError` with a fix for anything that cannot be loaded.
    """
    task = None if task is None else Task(task)
    return deliver(_load_source(source, input_shape, validation_split, seed, output_units, task,
                                tuple(target_columns), output_shape), pixel_range)


def _load_source(source: str, input_shape: tuple[int, ...], validation_split: float,
                 seed: int, output_units: int | None = None, task: Task | None = None,
                 target_columns: tuple[str, ...] = (),
                 output_shape: tuple[int | None, ...] | None = None) -> Dataset:
    """The dataset ``source`` names, in [0, 1] as every loader delivers it."""
    text = str(source).strip()
    key = text.lower()
    if key == "digits":
        if task in (Task.REGRESSION, Task.SEGMENTATION, Task.MULTILABEL):
            raise DatasetError(f"the digits dataset has one class per image, so it cannot train "
                               f"{task.value}; use shapes (it has {_SHAPES_FOR[task]}), or a file or "
                               f"folder made for {task.value}")
        return load_digits_dataset(input_shape, validation_split, seed)
    if key == "shapes":
        if task is None and _per_pixel_classes(input_shape, output_shape):
            task = Task.SEGMENTATION  # shapes can be drawn with masks, and this output wants them
        return make_shapes_dataset(SHAPES_SAMPLES, input_shape, validation_split, seed, task=task)
    path = Path(text).expanduser()
    if not text:
        raise DatasetError("no dataset given; use digits, shapes, or the path of a .npz file, a .csv "
                           "file or a folder with one sub-folder per class")
    if not path.exists():
        raise DatasetError(f"{text} does not exist; use digits, shapes, or the path of a .npz file, a "
                           f".csv file or a folder with one sub-folder per class")
    if path.suffix.lower() == ".npy" or npy_folder(path):  # the arrays of a .npz, unzipped
        return load_npy_dataset(path, input_shape, validation_split, seed, output_units, task=task,
                                output_shape=output_shape)
    if path.is_dir():
        return load_folder(path, input_shape, validation_split, seed, task=task, output_shape=output_shape)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_npz_dataset(path, input_shape, validation_split, seed, output_units, task=task,
                                output_shape=output_shape)
    if suffix == ".csv":
        return load_csv_dataset(path, input_shape, validation_split=validation_split, seed=seed,
                                output_units=output_units, task=task, target_columns=target_columns)
    raise DatasetError(f"{path.name} is not a dataset Convas reads; use a .npz file (x_train/y_train "
                       f"or x/y), a folder of those arrays as .npy files, a .csv file (label + pixel "
                       f"columns) or a folder of class folders")


def _per_pixel_classes(input_shape: Sequence[int], output_shape: Sequence[int | None] | None) -> bool:
    """Whether an output of ``output_shape`` scores each pixel of an ``input_shape`` image: the
    input's height and width with other channels than the input's (so not its reconstruction)."""
    if output_shape is None or len(output_shape) != 3 or len(input_shape) != 3:
        return False
    return tuple(output_shape[:2]) == tuple(input_shape[:2]) and output_shape[2] != input_shape[2]


_SHAPES_FOR = {Task.REGRESSION: "each shape's size and position as targets",
               Task.SEGMENTATION: "a mask per image", Task.MULTILABEL: "several shapes per image"}


def choose_task(io: ModelIO, dataset: Dataset | None, override: Task | None = None) -> Task:
    """The task to train: ``override`` when the user chose one, else the one the design's output
    and the data's targets suggest (:func:`engine.tasks.infer_task`)."""
    if override is not None:
        return Task(override)
    return infer_task(io.outputs, dataset.target if dataset is not None else None)


def task_to_load(source: str, io: ModelIO, chosen: Task | None) -> Task | None:
    """The task to load ``source`` for: the chosen one; for the generated ``shapes``, which can be
    drawn for every task, the one the design's output suggests; else None (the data says)."""
    if chosen is None and str(source).strip().lower() == "shapes":
        return choose_task(io, None, None)
    return chosen


def load_training_data(settings: TrainingSettings, io: ModelIO) -> tuple[Dataset, Task]:
    """The dataset a project's training settings name, loaded for a design with ``io`` (its
    images resized to the input, its targets as the output wants), and the task it trains;
    :class:`DatasetError` saying what is wrong otherwise. What ``convas train`` and a sweep load."""
    config = settings.config
    dataset = load_dataset(settings.dataset, io.input_shape, config.validation_split, config.seed,
                           settings.pixel_range, output_units=io.output_units,
                           task=task_to_load(settings.dataset, io, config.task),
                           target_columns=settings.target_columns, output_shape=io.output_shape)
    return dataset, choose_task(io, dataset, config.task)


def recorded_pixel_range(path: str | Path) -> PixelRange | None:
    """The pixel range a design file records for its data: a ``.convas`` project's training
    settings (files without one mean [0, 1]), the range a Convas ``.keras`` export was trained
    on; None when the file says nothing (a Keras JSON file, a foreign ``.keras``) or is unreadable."""
    from .embedded_design import read_metadata
    from .errors import ConvasError
    from .pixel_range import of_metadata, of_project
    from .project_file import load_project

    suffix = Path(path).suffix.lower()
    if suffix == ".convas":
        try:
            return of_project({"training": load_project(path).training})
        except (ConvasError, OSError):
            return None
    return of_metadata(read_metadata(path)) if suffix in (".keras", ".zip") else None


def dataset_problems(dataset: Dataset, io: ModelIO, loss: str | None,
                     task: Task | None = None) -> list[str]:
    """Every reason ``dataset`` cannot train a design with this input and output for ``task``
    (None: the task :func:`choose_task` infers), each with a fix.

    ``loss=None`` means the automatic choice, which picks what suits the output (see
    :func:`engine.training.choose_loss`), so only the output itself is checked then.
    """
    problems: list[str] = []
    sample = tuple(dataset.sample_shape())
    if sample != tuple(io.input_shape):
        problems.append(f"the images are {_fmt(sample)} but the input expects {_fmt(io.input_shape)}; "
                        f"set the input's shape to {sample}")
    chosen = choose_task(io, dataset, task)
    mismatch = task_problem(chosen, dataset.target)
    if mismatch:
        return problems + [mismatch]
    check = {Task.CLASSIFICATION: _classification_problems, Task.MULTILABEL: _multilabel_problems,
             Task.REGRESSION: _regression_problems, Task.RECONSTRUCTION: _reconstruction_problems,
             Task.SEGMENTATION: _segmentation_problems}[chosen]
    # Classification's messages name the loss as the user wrote it (check_compatibility reads aliases).
    return problems + check(dataset, io, loss if chosen is Task.CLASSIFICATION else normalise_loss(loss))


def _vector_output(dataset: Dataset, io: ModelIO, what: str, head: str) -> str | None:
    """Why the output is not a vector of scores (None when it is)."""
    if len(io.output_shape) == 1 and io.output_units is not None:
        return None
    shape = _fmt(io.output_shape) if io.output_shape else "unknown"
    if len(io.output_shape) == 1:
        return f"the output '{io.output_layer}' has no fixed number of units"
    return (f"the output '{io.output_layer}' gives {shape} values per image, but {what}; end the "
            f"design with Flatten (or GlobalAveragePooling2D) and {head}")


def _classification_problems(dataset: Dataset, io: ModelIO, loss: str | None) -> list[str]:
    classes = len(dataset.class_names)
    wrong = _vector_output(dataset, io, "a classifier gives one score per class",
                           f"Dense(units={classes}, activation='softmax')")
    if wrong:
        return [wrong]
    assert io.output_units is not None
    if loss is None:
        binary = classes == 2 and io.output_units == 1
        loss = BCE if binary else SPARSE_CCE
    return [m[0].lower() + m[1:] for m in check_compatibility(
        dataset, io.output_units, io.output_activation, loss, io.output_layer)]


def _multilabel_problems(dataset: Dataset, io: ModelIO, loss: str | None) -> list[str]:
    labels = len(dataset.class_names)
    head = f"Dense(units={labels}, activation='sigmoid')"
    wrong = _vector_output(dataset, io, "multi-label gives one score per label", head)
    if wrong:
        return [wrong]
    problems: list[str] = []
    layer, units = io.output_layer, io.output_units
    activation = (io.output_activation or "linear").lower()
    if units != labels:
        problems.append(f"the data has {labels} labels ({_names(dataset.class_names)}) but the last layer "
                        f"'{layer}' has {units} unit{'s' if units != 1 else ''}; set units={labels}")
    if activation != "sigmoid":
        why = (" (softmax makes the labels compete, so only one could apply)" if activation == "softmax"
               else "")
        problems.append(f"the last layer '{layer}' has activation {activation!r}, but each label applies "
                        f"or not on its own{why}; use activation='sigmoid'")
    if loss is not None and loss != BCE:
        problems.append(f"the loss {loss} does not fit labels that each apply or not; use "
                        f"loss='binary_crossentropy'")
    return problems


# The values an output activation can give: a target outside them can never be reached.
_ACTIVATION_RANGE = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, math.inf),
                     "softplus": (0.0, math.inf), "hard_sigmoid": (0.0, 1.0), "elu": (-1.0, math.inf),
                     "selu": (-1.7581, math.inf), "exponential": (0.0, math.inf)}


def _regression_problems(dataset: Dataset, io: ModelIO, loss: str | None) -> list[str]:
    targets = len(dataset.class_names)
    wrong = _vector_output(dataset, io, "regression gives one number per target",
                           f"Dense(units={targets}) (no activation)")
    if wrong:
        return [wrong]
    problems: list[str] = []
    layer, units = io.output_layer, io.output_units
    activation = (io.output_activation or "linear").lower()
    if units != targets:
        problems.append(f"the data has {targets} target{'s' if targets != 1 else ''} "
                        f"({_names(dataset.class_names)}) but the last layer '{layer}' has {units} "
                        f"unit{'s' if units != 1 else ''}; set units={targets}")
    if activation == "softmax":
        problems.append(f"the last layer '{layer}' has activation 'softmax', whose outputs always sum to 1; "
                        f"for numeric targets use no activation (activation='linear')")
    elif activation in _ACTIVATION_RANGE:
        low, high = _ACTIVATION_RANGE[activation]
        values = dataset.train.y
        if values.size:
            lo, hi = float(np.min(values)), float(np.max(values))
            if lo < low or hi > high:
                problems.append(f"the targets range from {lo:g} to {hi:g}, but the last layer '{layer}' uses "
                                f"{activation}, which gives only {_range(low, high)}; use activation='linear' "
                                f"(or scale the targets into its range)")
    if loss is not None and loss not in spec(Task.REGRESSION).losses:
        problems.append(f"the loss {loss} is not a regression loss; use loss='mean_squared_error' "
                        f"(or mean_absolute_error, huber)")
    return problems


def _reconstruction_problems(dataset: Dataset, io: ModelIO, loss: str | None) -> list[str]:
    problems: list[str] = []
    layer = io.output_layer
    inp = tuple(io.input_shape)
    if tuple(io.output_shape) != inp:
        shape = _fmt(io.output_shape) if io.output_shape else "unknown"
        fix = (f"end the design with layers that give back the input's shape {inp} (a decoder of "
               f"Conv2DTranspose or UpSampling2D and a Conv2D with {inp[-1]} filter"
               f"{'s' if inp[-1] != 1 else ''})")
        if dataset.target is TargetKind.CLASS:
            fix += (f"; or, to train a classifier, end it with Flatten (or GlobalAveragePooling2D) and "
                    f"Dense(units={len(dataset.class_names)}, activation='softmax')")
        problems.append(f"the output '{layer}' gives {shape} values per image, but reconstruction learns "
                        f"the input image, {_fmt(inp)}; {fix}")
        return problems
    activation = (io.output_activation or "linear").lower()
    high_pixel = dataset.pixel_range.scale
    if activation == "softmax":
        problems.append(f"the last layer '{layer}' has activation 'softmax', which makes each pixel's "
                        f"channels sum to 1; to give back pixels use activation='sigmoid' (pixels in "
                        f"[0, 1]) or 'linear'")
    elif activation in _ACTIVATION_RANGE:
        low, high = _ACTIVATION_RANGE[activation]
        if low > 0 or high < high_pixel:
            fix = ("switch the data to [0, 1], or use activation='relu' or 'linear'"
                   if dataset.pixel_range is PixelRange.RAW else "use activation='sigmoid' or 'linear'")
            problems.append(f"the pixels are in {dataset.pixel_range.label}, but the last layer '{layer}' uses "
                            f"{activation}, which gives only {_range(low, high)}; {fix}")
    allowed = spec(Task.RECONSTRUCTION).losses + ((BCE,) if dataset.pixel_range is PixelRange.UNIT else ())
    if loss is not None and loss not in allowed:
        extra = (" (binary_crossentropy only suits pixels in [0, 1])" if loss == BCE else "")
        problems.append(f"the loss {loss} does not compare images{extra}; use loss='mean_squared_error' "
                        f"(or mean_absolute_error)")
    return problems


def _segmentation_problems(dataset: Dataset, io: ModelIO, loss: str | None) -> list[str]:
    layer = io.output_layer
    classes = len(dataset.class_names)
    height, width = dataset.train.target_shape[:2] if dataset.train.target_shape else dataset.sample_shape()[:2]
    want = (height, width, classes)
    head = (f"end the design with Conv2D(filters={classes}, kernel_size=1, activation='softmax') at "
            f"{height}×{width} (a decoder of Conv2DTranspose or UpSampling2D brings it back to size)")
    out = tuple(io.output_shape)
    if len(out) != 3:
        shape = _fmt(out) if out else "unknown"
        return [f"the output '{layer}' gives {shape} values per image, but segmentation gives one score "
                f"per class for every pixel, {_fmt(want)}; {head}"]
    problems: list[str] = []
    if out[:2] != (height, width):
        problems.append(f"the output '{layer}' is {_fmt(out[:2])} pixels but the masks are {height}×{width}; "
                        f"{head}")
    channels = out[2]
    if channels is not None and channels < classes:
        problems.append(f"the masks have {classes} classes ({_names(dataset.class_names)}) but the output "
                        f"'{layer}' has {channels} channel{'s' if channels != 1 else ''}; set its "
                        f"filters={classes}")
    activation = (io.output_activation or "linear").lower()
    if activation != "softmax":
        problems.append(f"the last layer '{layer}' has activation {activation!r}, but each pixel has exactly "
                        f"one class; use activation='softmax'")
    if loss is not None and loss not in spec(Task.SEGMENTATION).losses:
        fix = (" (the masks hold class numbers, not one-hot vectors)" if loss == CCE else "")
        problems.append(f"the loss {loss} does not fit masks of class numbers{fix}; use "
                        f"loss='sparse_categorical_crossentropy' or 'dice'")
    return problems


def _names(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … {len(names) - limit} more" if len(names) > limit else "")


def _range(low: float, high: float) -> str:
    return f"values from {low:g} to {high:g}" if math.isfinite(high) else f"values of {low:g} or more"


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "×".join("?" if d is None else str(d) for d in shape)
