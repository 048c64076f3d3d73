"""Export a design: build (or take) the model, write the file beside its destination, reload it
the way users will and compare predictions, and only then move it into place.

A failed write or verification leaves the destination as it was (no partial file, no
half-replaced folder), and so does a cancelled export: the caller's ``cancelled`` callable is
asked between steps, since a step itself (a TFLite conversion, say) cannot be interrupted.
Qt-free; TensorFlow is imported on first use.
"""

from __future__ import annotations

import contextlib
import enum
import keyword
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..atomic import (
    HeldOpenError, check_can_create, fsync_folder, fsync_tree, held_open_message, replace_file, sibling_path,
    write_target,
)
from ..design import Design, valid_name
from ..errors import ConvasError, destination_refusal, first_line, refusal_reason
from ..pixel_range import PixelRange, of_project
from ..weights import WeightsError, WeightsKind, WeightsSource, design_hash, model_with_weights
from .formats import FORMATS, ONNX_OPSET, QUANTIZATIONS, WriteOptions, as_list, model_call

PROBE_BATCH = 8
PROBE_SEED = 1234


class ExportFailure(enum.Enum):
    """Whose fault a failed export is, for the exit status (the message says the rest)."""
    FAILED = "failed"          # the design, a converter or the verification
    UNWRITABLE = "unwritable"  # the destination cannot take the file: missing folder, full disk, read-only
    UNREADABLE = "unreadable"  # a file the export reads (the weights) cannot be read


class ExportError(ConvasError):
    """Writing or verifying an export failed; the message says why and what to do."""

    def __init__(self, message: str, failure: ExportFailure = ExportFailure.FAILED) -> None:
        super().__init__(message)
        self.failure = failure


class ExportCancelled(ExportError):
    """The caller cancelled the export between two steps; nothing was written and the
    destination is as it was. A subclass of :class:`ExportError`, so that code which only
    reports failures still stops cleanly."""


@dataclass(frozen=True)
class ExportOptions:
    format: str
    quantize: str | None = None
    opset: int = ONNX_OPSET


@dataclass(frozen=True)
class Tolerance:
    """How close a reloaded export's outputs must be to the model's, element by element, in the
    form of ``numpy.allclose``: ``|got − expected| ≤ rtol·|expected| + atol·scale``, where
    ``scale`` is the largest ``|expected|`` of that output (a float32's smallest normal number when
    the output is all zeros).

    Both terms follow the outputs, so no fixed number can hide a relative error in small
    outputs (an absolute 1e-4 accepted 10 % errors on the ~1e-3 probabilities of a 1,000-class
    softmax). ``rtol`` bounds each element's own error; ``atol·scale`` covers an element near
    zero that is the difference of large terms (a logit, a BatchNorm-centred feature), whose
    rounding error is a fraction of the output's size rather than of its own.
    """

    rtol: float
    atol: float  # a fraction of the output's scale (its largest magnitude)

    def allowed(self, expected: np.ndarray) -> np.ndarray:
        """The largest difference allowed for each element of one output."""
        magnitude = np.abs(expected.astype(np.float64))
        scale = max(float(np.max(magnitude)) if magnitude.size else 0.0, _SMALLEST_NORMAL)
        return self.atol * scale + self.rtol * magnitude

    def describe(self) -> str:
        """The rule as people read it: ``|Δ| ≤ 1e-03·|y| + 1e-04·max|y|``."""
        return f"|Δ| ≤ {self.rtol:.0e}·|y| + {self.atol:.0e}·max|y|"


_SMALLEST_NORMAL = float(np.finfo(np.float32).tiny)  # below it, runtimes may flush to zero

# Float exports compute the same sums in another order, with other kernels (oneDNN, XNNPack,
# MLAS; Winograd convolutions, fused multiply-adds, approximated exp and sigmoid): float32
# rounding (6e-8 per operation) grows with depth and with the size of the terms summed, so it is
# a fraction of the output's scale, not of each element. Measured through ONNX and TFLite on
# keras.applications networks at 32-75 px (benchmarks/check_applications.py; BatchNorm
# calibrated so that outputs vary): logits (no softmax) differ by up to 1.2e-5 of their largest
# magnitude (EfficientNetB0, V2B0), and by 1.3e-4 in a badly conditioned network (BatchNorm
# dividing near-empty channels by their tiny variance); softmax probabilities keep their own
# relative error. atol 1e-4·scale covers the first eightfold, and the second wherever rtol helps
# (elements not near zero); for an output whose largest value is ~1 it is the absolute 1e-4
# this rule replaces. rtol 1e-3 keeps small outputs honest: on an untrained
# 1,000-class softmax (every output ~1e-3) an element may move by ~0.1 %, and a 1 % error fails.
FLOAT_TOLERANCE = Tolerance(rtol=1e-3, atol=1e-4)
# Quantized weights change outputs by design: float16 weights round to 2^-11 ≈ 5e-4 of their
# value, dynamic-range int8 weights (and activations) to 1/254 of their range; the errors
# accumulate through the layers, relative to each output's scale more than to the element.
QUANTIZED_TOLERANCE = {"float16": Tolerance(rtol=1e-2, atol=1e-2),
                       "dynamic": Tolerance(rtol=5e-2, atol=5e-2)}


@dataclass(frozen=True)
class Comparison:
    """How a reloaded export's outputs compared with the model's on the probe batch, under
    ``tolerance``. ``max_abs_diff`` is the largest difference over all elements, wherever it is;
    the other fields describe the element closest to (or furthest beyond) its own limit: which
    output (``output``, its name), where in it (``index``, batch first), the reloaded file's value
    (``value``), the model's (``expected``) and the difference allowed there (``allowed``)."""

    tolerance: Tolerance
    max_abs_diff: float
    output: str
    index: tuple[int, ...]
    value: float
    expected: float
    allowed: float

    @property
    def ok(self) -> bool:
        """Whether every element is within its limit (NaN never is)."""
        return bool(abs(self.value - self.expected) <= self.allowed)

    @property
    def worst_diff(self) -> float:
        return abs(self.value - self.expected)

    @property
    def where(self) -> str:
        """The worst element's place: ``predictions[3, 417]``."""
        return f"{self.output}[{', '.join(map(str, self.index))}]"

    def worst(self) -> str:
        """The worst element in words: where, what, what was expected and allowed."""
        return (f"{self.where} is {self.value:.6g} where the model gives {self.expected:.6g}, off by "
                f"{self.worst_diff:.3g}, allowed {self.allowed:.3g}")


def compare_outputs(got: list[np.ndarray], expected: list[np.ndarray], tolerance: Tolerance,
                    names: list[str] | None = None) -> Comparison:
    """Compare a reloaded file's outputs with the model's (same count and shapes) element by
    element under ``tolerance``; ``names`` name the outputs (else ``output 0``, ``output 1``, …)."""
    names = names if names is not None and len(names) == len(expected) else [
        f"output {i}" for i in range(len(expected))]
    best: tuple[float, Comparison] | None = None
    largest = [0.0]
    for name, g, e in zip(names, got, expected):
        if not e.size:
            continue
        e64, g64 = e.astype(np.float64), g.astype(np.float64)
        diff = np.abs(g64 - e64)
        allowed = tolerance.allowed(e)
        with np.errstate(divide="ignore", invalid="ignore"):  # allowed is 0 only for rtol-only rules
            ratio = np.where(diff == 0, 0.0, diff / allowed)
        ratio = np.where(np.isnan(ratio), np.inf, ratio)  # NaN in the file: worst of all
        at = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        largest.append(float(np.max(diff)))
        here = Comparison(tolerance, 0.0, name, tuple(int(i) for i in at), float(g64[at]),
                          float(e64[at]), float(allowed[at]))
        if best is None or float(ratio[at]) > best[0]:
            best = (float(ratio[at]), here)
    if best is None:  # nothing to compare: every output is empty
        return Comparison(tolerance, 0.0, names[0] if names else "output", (), 0.0, 0.0, 0.0)
    return replace(best[1], max_abs_diff=float(np.max(largest)))  # NaN when the file gave one


@dataclass
class ExportResult:
    """A verified export. ``comparison`` is how the reloaded file's predictions compared with
    the model's (None for a Python script, verified by rebuilding its layers instead)."""

    format: str
    path: Path
    size_bytes: int
    reloaded_with: str
    comparison: Comparison | None
    weights: str
    seconds: float

    @property
    def max_abs_diff(self) -> float:
        """The largest difference between the reloaded file's outputs and the model's (0 for a script)."""
        return self.comparison.max_abs_diff if self.comparison is not None else 0.0

    def summary(self) -> str:
        """One line for the CLI and the dialog: verified, what reloaded it, the rule and the difference."""
        if self.comparison is None:
            return (f"Verified {self.path}: {self.reloaded_with} rebuilt the same layers, "
                    f"shapes and parameter counts; the script builds the architecture only")
        c = self.comparison
        return (f"Verified {self.path}: reloaded with {self.reloaded_with}, every output within "
                f"{c.tolerance.describe()} on {PROBE_BATCH} probe samples (max abs difference "
                f"{c.max_abs_diff:.2e}; closest to its limit: {c.worst_diff:.2e} of {c.allowed:.2e} "
                f"allowed at {c.where}); {self.weights}")


def probe_inputs(model: Any) -> list[np.ndarray]:
    """A fixed random batch for every model input (unknown sizes become 16)."""
    rng = np.random.default_rng(PROBE_SEED)
    batch = []
    for tensor in model.inputs:
        shape = tuple(tensor.shape)
        first = shape[0] if shape and shape[0] is not None else PROBE_BATCH
        dims = tuple(16 if d is None else int(d) for d in shape[1:])
        batch.append(rng.random((first,) + dims, dtype=np.float32))
    return batch


def export_model(design: Design, out: str | os.PathLike[str], options: ExportOptions, *,
                 weights: WeightsSource | None = None, model: Any = None,
                 weights_file: Path | None = None, project: dict[str, Any] | None = None,
                 training: Any = None, progress: Callable[[str], None] | None = None,
                 cancelled: Callable[[], bool] | None = None,
                 input_range: PixelRange | None = None) -> ExportResult:
    """Write ``design`` with the weights of ``weights`` (see :func:`engine.weights.resolve_weights`;
    None: fresh ones) to ``out`` as ``options.format`` and prove the file works; raises
    :class:`ExportError` when it cannot. Weights from a file must fit every layer (matched by
    name). ``model`` (a Keras model of the design) and ``weights_file`` (a ``.keras`` file) are
    shorthands for a TRAINED and an IMPORTED source.

    ``project`` (a ``.convas`` document) goes into a ``.keras`` file's metadata so that
    importing it restores the design exactly; ``training`` (a TrainingConfig) sets a Python
    script's compile and fit. ``input_range``, the pixel range the model was trained on (when
    None, the one ``project``'s training settings name, else [0, 1]), is recorded in a ``.keras``
    file's metadata and a script's ``INPUT_RANGE``.
    ``cancelled`` (called from this thread, so it must be thread-safe, e.g. ``Event.is_set``) is
    asked between steps; when it answers True, :class:`ExportCancelled` is raised.
    """
    say = progress or (lambda _text: None)
    stop_if_cancelled = _canceller(cancelled)
    input_range = input_range or of_project(project)
    if options.format == "python":
        return _export_python(design, write_target(out), training, say, stop_if_cancelled, input_range)
    fmt = FORMATS.get(options.format)
    if fmt is None:
        raise ExportError(f"unknown export format {options.format!r}; choose one of {', '.join(FORMATS)}")
    if options.quantize is not None and (options.format != "tflite" or options.quantize not in QUANTIZATIONS):
        raise ExportError(f"quantization {options.quantize!r} applies to TFLite only, as one of "
                          f"{', '.join(QUANTIZATIONS)}")
    target = write_target(out)  # a symlink's target, as editors do
    _check_destination(target, fmt.directory)
    stop_if_cancelled()
    started = time.monotonic()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    source = _source(weights, model, weights_file)
    if source.kind is not WeightsKind.TRAINED:
        say(f"Building the model with {source.summary()}")
    try:
        model, _ = model_with_weights(design, source, strict=True, seed=0)
    except WeightsError as exc:
        raise ExportError(str(exc), ExportFailure.UNREADABLE) from None
    stop_if_cancelled()
    write_options = WriteOptions(
        quantize=options.quantize, opset=options.opset,
        metadata=_metadata(design, project, input_range) if fmt.key == "keras" else None,
        input_names=tuple(design.input_names()),
        output_names=tuple(ref.node for ref in design.output_refs()))
    tmp = sibling_path(target, "part", fmt.suffix)
    try:
        say(f"Writing {fmt.label}")
        written = model if fmt.key == "keras" else _graph_safe(design, model)
        try:
            fmt.write(written, tmp, write_options)
        except ConvasError as exc:
            if destination_refusal(exc) is None:
                raise
            raise _unwritable(target, exc) from exc
        except Exception as exc:
            # The destination's refusal (a full disk, a read-only folder) as an OSError or as
            # TensorFlow's SaveV2 error wrapping one; any other OSError is the destination's too.
            if destination_refusal(exc) is not None or isinstance(exc, OSError):
                raise _unwritable(target, exc) from exc
            raise _known_refusal(design, fmt.key) or ExportError(
                f"{fmt.label} export failed: {_export_failure_line(exc)}") from exc
        stop_if_cancelled()
        say(f"Verifying: reloading with {fmt.reloaded_with}")
        try:
            comparison = _verify(fmt, tmp, model, options, [ref.node for ref in design.output_refs()])
        except ExportError as exc:
            raise _known_refusal(design, fmt.key) or exc from exc
        if not comparison.ok:
            raise ExportError(f"verification failed: the {fmt.label} file reloaded with "
                              f"{fmt.reloaded_with} differs from the model: {comparison.worst()} "
                              f"({comparison.tolerance.describe()}; max abs difference "
                              f"{comparison.max_abs_diff:.3g} on {PROBE_BATCH} probe samples); "
                              "nothing was written")
        stop_if_cancelled()  # the last moment at which the destination is still untouched
        try:
            _move_into_place(tmp, target)
        except HeldOpenError as exc:
            raise ExportError(held_open_message(f"the {fmt.label} export", target, "export again"),
                              ExportFailure.UNWRITABLE) from exc
        except OSError as exc:
            raise _unwritable(target, exc) from exc
    finally:
        _remove(tmp)
    return ExportResult(fmt.key, target, _size(target), fmt.reloaded_with, comparison,
                        source.summary(), time.monotonic() - started)


def _unwritable(target: Path, exc: BaseException) -> ExportError:
    """The destination refused the file (:func:`engine.errors.destination_refusal`), in the
    system's words when they can be found."""
    reason = refusal_reason(destination_refusal(exc) or exc)
    return ExportError(f"cannot write {target}: {reason}; choose another folder or free some disk space",
                       ExportFailure.UNWRITABLE)


def _source(weights: WeightsSource | None, model: Any, weights_file: Path | None) -> WeightsSource:
    if weights is not None:
        return weights
    if model is not None:
        return WeightsSource(WeightsKind.TRAINED, "", model=model)
    if weights_file is not None:
        return WeightsSource.imported(weights_file)
    return WeightsSource.fresh()


def _known_refusal(design: Design, fmt: str) -> ExportError | None:
    """For a failed TFLite export of a design whose layers the TFLite table lists: an error
    naming those layers and what to do, clearer than the converter's own words."""
    if fmt != "tflite":
        return None
    from .tflite_support import tflite_problems

    problems = tflite_problems(design)
    if not problems:
        return None
    return ExportError("TensorFlow Lite cannot convert this design: " + " ".join(problems))


def _traceable(name: str) -> bool:
    """A name TensorFlow can trace: one the design's layer-name rule accepts (:func:`valid_name`,
    which the analysis enforces) that is not a Python keyword (an input's name becomes a
    parameter name of the traced function; ``in`` or ``class`` make the TFLite converter fail)."""
    return valid_name(name) and not keyword.iskeyword(name)


def _graph_safe(design: Design, model: Any) -> Any:
    """``model``, or a twin with the same weights whose layer names TensorFlow accepts as graph
    scope names: SavedModel, TFLite and ONNX trace the model, and a layer called ``my layer``
    or ``it's`` would stop the trace. Keras files keep the names as they are."""
    if all(_traceable(layer.name) for layer in model.layers):
        return model
    from ..keras_build import build_keras_model
    from .formats import fresh_name, onnx_name

    renamed, names, used = design.copy(), {}, {n.name for n in design}
    for node in list(design):
        if _traceable(node.name):
            continue
        new = fresh_name(onnx_name(node.name), used)
        renamed.rename(node.name, new)
        names[new] = node.name
    twin = build_keras_model(renamed, check=False)
    for layer in twin.layers:
        weights = model.get_layer(names.get(layer.name, layer.name)).get_weights()
        if weights:
            layer.set_weights(weights)
    return twin


def _export_python(design: Design, target: Path, training: Any, say: Callable[[str], None],
                   stop_if_cancelled: Callable[[], None], input_range: PixelRange) -> ExportResult:
    """The architecture as a Keras script; verified by running ``build_model()`` in a new
    process and comparing layer types, output shapes and parameter counts."""
    from ..atomic import write_bytes_atomically
    from ..keras_build import build_keras_model
    from .python_source import python_source, verify_python_source

    _check_destination(target, directory=False)
    stop_if_cancelled()
    started = time.monotonic()
    say("Writing the Python script")
    source = python_source(design, training, input_range)
    model = build_keras_model(design)
    stop_if_cancelled()
    say("Verifying: running build_model() in a new Python process")
    check = verify_python_source(source, model)
    if not check.ok:
        raise ExportError(f"verification failed: {check.detail}; nothing was written")
    stop_if_cancelled()
    try:
        write_bytes_atomically(target, source.encode("utf-8"))
    except ConvasError as exc:
        raise _unwritable(target, exc) from exc
    return ExportResult("python", target, _size(target), "build_model() in a new Python process",
                        None, "architecture only (no weights)", time.monotonic() - started)


def tolerance_for(options: ExportOptions) -> Tolerance:
    """The rule an export's predictions must meet: a quantized TFLite file's own, looser one."""
    return QUANTIZED_TOLERANCE[options.quantize] if options.quantize else FLOAT_TOLERANCE


def _verify(fmt: Any, path: Path, model: Any, options: ExportOptions, names: list[str]) -> Comparison:
    xs = probe_inputs(model)
    try:
        expected = as_list(model(model_call(xs), training=False))
    except Exception as exc:
        raise ExportError(f"the model itself cannot run on this machine, so there is nothing to "
                          f"compare the {fmt.label} file with: {first_line(exc)}") from exc
    if any(not np.all(np.isfinite(e)) for e in expected):
        raise ExportError("the model outputs NaN or infinite values on the probe batch (random "
                          "inputs in [0, 1)), so the export cannot be verified; look for a layer "
                          "that divides by zero or takes the root of a negative number (e.g. a "
                          "negative Normalization variance)")
    try:
        got = fmt.reload(path, model)(xs)
    except Exception as exc:
        raise ExportError(f"verification failed: {fmt.reloaded_with} could not load or run the "
                          f"{fmt.label} file: {first_line(exc)}") from exc
    if len(got) != len(expected) or any(g.shape != e.shape for g, e in zip(got, expected)):
        raise ExportError(f"verification failed: the reloaded {fmt.label} model returns shapes "
                          f"{[g.shape for g in got]}, the model {[e.shape for e in expected]}")
    return compare_outputs(got, expected, tolerance_for(options), names)


def _metadata(design: Design, project: dict[str, Any] | None, input_range: PixelRange) -> dict[str, Any]:
    from ..pixel_range import metadata
    from ..project_file import project_to_dict

    return {"convas_export": 1, "app_version": __version__, "design_sha256": design_hash(design),
            "project": project if project is not None else project_to_dict(design),
            **metadata(input_range)}


def _canceller(cancelled: Callable[[], bool] | None) -> Callable[[], None]:
    """A step boundary: raises :class:`ExportCancelled` once ``cancelled()`` answers True."""
    def stop_if_cancelled() -> None:
        if cancelled is not None and cancelled():
            raise ExportCancelled("export cancelled; nothing was written")
    return stop_if_cancelled


def _check_destination(target: Path, directory: bool) -> None:
    """Fail before anything is built when ``target`` cannot be written. The folder is probed
    by creating (and deleting) a file in it: ``os.access`` says yes to root for folders such as
    ``/proc`` where creating a file fails, and knows nothing of read-only mounts or quotas."""
    folder = target.parent
    if not folder.is_dir():
        raise ExportError(f"cannot write {target}: the folder {folder} does not exist", ExportFailure.UNWRITABLE)
    if target.exists() and target.is_dir() != directory:
        kind = "a folder" if target.is_dir() else "a file"
        raise ExportError(f"cannot write {target}: it is {kind}; choose another name", ExportFailure.UNWRITABLE)
    try:
        check_can_create(target)
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}; choose another folder",
                          ExportFailure.UNWRITABLE) from None


def _move_into_place(tmp: Path, target: Path) -> None:
    """Replace ``target`` by ``tmp``, already written and verified beside it, flushed to disk
    first: a file atomically; a folder (a SavedModel) via a moment-long backup, since no system
    call swaps two folders (a kill between the two renames leaves the backup, which
    :func:`engine.atomic.clean_leftovers` puts back). Not
    :func:`engine.atomic.replace_atomically`: that one writes the temporary file itself, while
    an export must verify the file it wrote before it may replace anything. Each rename waits
    out a Windows program holding a file open (:func:`engine.atomic.replace_file`)."""
    fsync_tree(tmp)
    if not tmp.is_dir():
        replace_file(tmp, target)
        fsync_folder(target.parent)
        return
    backup = None
    if target.exists():
        backup = sibling_path(target, "old")
        replace_file(target, backup)  # Windows: refused while a program has a file inside open
    try:
        replace_file(tmp, target)
    except OSError:
        if backup is not None:
            replace_file(backup, target)
        raise
    fsync_folder(target.parent)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _export_failure_line(exc: BaseException) -> str:
    """The informative line of a writer's error (:func:`first_line`); for the TFLite
    converter's MLIR diagnostics (``loc(callsite(...)): error: 'tf.X' op ...``) the part after
    the location."""
    line = first_line(exc, limit=2000)  # the location part is long; cut after rewriting it
    if "loc(" in line and "error: " in line:
        detail = line.rsplit("error: ", 1)[1]
        op = re.search(r"'(?:tf|tfl)\.[A-Za-z0-9_]+' op.*", detail)  # past the nested loc(...)
        line = ("TensorFlow Lite has no kernel for part of this model ("
                + (op.group(0) if op else detail.split("): ")[-1])
                + "); TFLite supports fewer layers than TensorFlow (e.g. some 3-D convolutions)")
    return first_line(line)
