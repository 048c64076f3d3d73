"""Where a design's training data comes from, and whether it fits the design.

The GUI's dataset box and ``convas train --data`` both name a source the same way: ``digits``,
``shapes`` or a path (a ``.npz`` or ``.csv`` file, or a folder with one sub-folder per class).
:func:`load_dataset` turns that into a :class:`~engine.datasets.Dataset` sized for the design's
input, and :func:`dataset_problems` explains every mismatch with the design's output before any
training starts. Nothing here imports TensorFlow: the design's input and output are read from the
analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .analysis import Analysis, analyse
from .datasets import (Dataset, DatasetError, check_compatibility, load_csv_dataset,
                       load_digits_dataset, load_image_folder, load_npz_dataset,
                       make_shapes_dataset)
from .design import Design
from .pixel_range import PixelRange, deliver
from .shapes import known_sizes

SHAPES_SAMPLES = 2000


@dataclass(frozen=True)
class ModelIO:
    """What a single-input, single-output classifier design looks like from the outside."""

    input_shape: tuple[int, ...]  # without the batch axis
    output_units: int | None
    output_activation: str | None
    output_layer: str
    output_shape: tuple[int | None, ...] = ()  # without the batch axis


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
        raise DatasetError(f"training on a classification dataset needs exactly one output; the "
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
                 output_units: int | None = None) -> Dataset:
    """The dataset ``source`` names (``digits``, ``shapes`` or a path), sized to ``input_shape``,
    its pixels delivered in ``pixel_range`` ([0, 1] or raw 0–255, see :mod:`engine.pixel_range`).

    ``output_units`` (the design's, when known) bounds the class numbers a file's labels may
    use, with its sample count. Raises :class:`DatasetError` with a fix for anything that cannot
    be loaded.
    """
    return deliver(_load_source(source, input_shape, validation_split, seed, output_units), pixel_range)


def _load_source(source: str, input_shape: tuple[int, ...], validation_split: float,
                 seed: int, output_units: int | None = None) -> Dataset:
    """The dataset ``source`` names, in [0, 1] as every loader delivers it."""
    text = str(source).strip()
    key = text.lower()
    if key == "digits":
        return load_digits_dataset(input_shape, validation_split, seed)
    if key == "shapes":
        return make_shapes_dataset(SHAPES_SAMPLES, input_shape, validation_split, seed)
    path = Path(text).expanduser()
    if not text:
        raise DatasetError("no dataset given; use digits, shapes, or the path of a .npz file, a .csv "
                           "file or a folder with one sub-folder per class")
    if not path.exists():
        raise DatasetError(f"{text} does not exist; use digits, shapes, or the path of a .npz file, a "
                           f".csv file or a folder with one sub-folder per class")
    if path.is_dir():
        return load_image_folder(path, input_shape, validation_split, seed)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_npz_dataset(path, input_shape, validation_split, seed, output_units)
    if suffix == ".csv":
        return load_csv_dataset(path, input_shape, validation_split=validation_split, seed=seed,
                                output_units=output_units)
    raise DatasetError(f"{path.name} is not a dataset Convas reads; use a .npz file (x_train/y_train "
                       f"or x/y), a .csv file (label + pixel columns) or a folder of class folders")


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


def dataset_problems(dataset: Dataset, io: ModelIO, loss: str | None) -> list[str]:
    """Every reason ``dataset`` cannot train a design with this input and output, each with a fix.

    ``loss=None`` means the automatic choice, which picks what suits the output (see
    :func:`engine.training.choose_loss`), so only the output itself is checked then.
    """
    problems: list[str] = []
    sample = tuple(dataset.sample_shape())
    if sample != tuple(io.input_shape):
        problems.append(f"the images are {_fmt(sample)} but the input expects {_fmt(io.input_shape)}; "
                        f"set the input's shape to {sample}")
    if len(io.output_shape) != 1:
        shape = _fmt(io.output_shape) if io.output_shape else "unknown"
        head = f"end the design with Flatten (or GlobalAveragePooling2D) and " \
               f"Dense(units={len(dataset.class_names)}, activation='softmax')"
        if tuple(io.output_shape) == tuple(io.input_shape):
            problems.append(f"the output '{io.output_layer}' gives {shape} values per image, an image "
                            f"the size of its input: the design reconstructs its input (an "
                            f"autoencoder), and a reconstruction task is not supported yet (training "
                            f"is classification only for now); this design shows the architecture. "
                            f"To train a classifier instead, {head}")
        else:
            problems.append(f"the output '{io.output_layer}' gives {shape} values per image, but a "
                            f"classifier gives one score per class; {head}")
        return problems
    if io.output_units is None:
        problems.append(f"the output '{io.output_layer}' has no fixed number of units")
        return problems
    if loss is None:
        binary = len(dataset.class_names) == 2 and io.output_units == 1
        loss = "binary_crossentropy" if binary else "sparse_categorical_crossentropy"
    problems += [m[0].lower() + m[1:] for m in check_compatibility(
        dataset, io.output_units, io.output_activation, loss, io.output_layer)]
    return problems


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "×".join("?" if d is None else str(d) for d in shape)
