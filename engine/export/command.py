"""``convas export``: write a design as a verified .keras, SavedModel, TFLite, ONNX or Python file.

SOURCE is a ``.convas`` project (the weights saved beside it, else fresh ones; ``--weights
FILE.keras`` overrides) or a ``.keras`` model (its own weights); which weights apply is decided
by :func:`engine.weights.resolve_weights`, as in the window. Exit 0 with the verification on
stdout; 2 with a message on stderr when a file cannot be read or written (the export's
:class:`~engine.export.run.ExportFailure` says which, decided by the error's type), 1 when the
design is invalid or the export fails verification. What an interrupted export to the same
destination left behind is cleaned up first (:func:`engine.atomic.clean_leftovers`), and said.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ConvasError
from ..text import printable
from .formats import FORMATS, ONNX_OPSET, QUANTIZATIONS

EXIT_OK, EXIT_FAILED, EXIT_UNREADABLE = 0, 1, 2
ALL_FORMATS = tuple(FORMATS) + ("python",)


def add_parser(sub: Any) -> None:
    e = sub.add_parser("export", help="export a design as a verified .keras, SavedModel, TFLite, ONNX or Python file",
                       description="Export a design and prove the file works by reloading it and "
                                   "comparing predictions (Python: rebuilding it in a new process).")
    e.add_argument("source", metavar="SOURCE", help="a .convas project or a .keras model")
    e.add_argument("--format", required=True, type=str.lower, choices=ALL_FORMATS)
    e.add_argument("--out", required=True, metavar="PATH", help="the file (a folder for savedmodel)")
    e.add_argument("--quantize", type=str.lower, choices=QUANTIZATIONS, help="TFLite only")
    e.add_argument("--opset", type=int, default=ONNX_OPSET, help=f"ONNX opset (default {ONNX_OPSET})")
    e.add_argument("--weights", metavar="FILE.keras",
                   help="take the weights of a .convas design from this .keras model (by layer name) "
                        "instead of those saved with the project")


def cmd_export(args: argparse.Namespace) -> int:
    try:
        return _export(args)
    except _Failure as exc:
        print(printable(f"convas: {exc}"), file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print("\nconvas: interrupted; nothing was written", file=sys.stderr)
        return 130


class _Failure(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _export(args: argparse.Namespace) -> int:
    from ..analysis import analyse
    from ..atomic import clean_leftovers
    from ..data_source import recorded_pixel_range
    from ..files import load_design
    from ..weights import WeightsSource, resolve_weights
    from .run import ExportError, ExportFailure, ExportOptions, export_model

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    source = Path(args.source)
    if args.quantize and args.format != "tflite":
        raise _Failure("--quantize applies to --format tflite only", EXIT_UNREADABLE)
    for note in clean_leftovers(args.out):
        print(f"convas: {note}", file=sys.stderr)
    try:
        design = load_design(source)
    except ConvasError as exc:
        raise _Failure(str(exc), EXIT_UNREADABLE) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _Failure(f"cannot read {source}: {exc}", EXIT_UNREADABLE) from None
    analysis = analyse(design)
    if not analysis.valid:
        problems = "; ".join(str(p) for p in analysis.errors[:5])
        raise _Failure(f"{source} cannot be exported until its problems are fixed: {problems}", EXIT_FAILED)
    is_keras = source.suffix.lower() in (".keras", ".zip")
    if args.weights and is_keras:
        raise _Failure("--weights is for a .convas design; a .keras model brings its own", EXIT_UNREADABLE)
    if args.weights:
        kept = WeightsSource.imported(args.weights)
    elif args.format == "python":
        kept = None  # the architecture only
    else:
        kept = _kept_weights(source)
    weights = resolve_weights(design, kept=kept)
    try:
        label = FORMATS[args.format].label if args.format in FORMATS else "a Python script"
        if args.format == "tflite":
            from .tflite_support import tflite_problems

            for problem in tflite_problems(design):
                print(printable(f"convas: warning: TensorFlow Lite is known to refuse this: {problem}"),
                      file=sys.stderr)
        print(f"Exporting {printable(design.name)} as {label}…", file=sys.stderr)
        result = export_model(design, args.out, ExportOptions(args.format, args.quantize, args.opset),
                              weights=weights, training=_training(source), input_range=recorded_pixel_range(source),
                              progress=lambda text: print(f"  {text}…", file=sys.stderr))
    except ExportError as exc:
        status = EXIT_FAILED if exc.failure is ExportFailure.FAILED else EXIT_UNREADABLE
        raise _Failure(str(exc), status) from None
    except ConvasError as exc:
        raise _Failure(str(exc), EXIT_FAILED) from None
    print(result.summary())
    return EXIT_OK


def _kept_weights(source: Path) -> Any:
    """The weights ``source`` brings (a ``.keras`` model's own, a project's saved ones; see
    :func:`engine.weights.kept_weights`), warnings printed; None when there are none."""
    from ..weights import kept_weights

    try:
        kept, warnings = kept_weights(source)
    except (ConvasError, OSError):
        return None  # load_design already read it; nothing new to say
    for warning in warnings:
        print(f"convas: warning: {warning}", file=sys.stderr)
    return kept


def _training(source: Path) -> Any:
    """A project's training settings (for a Python script's compile and fit), else None."""
    if source.suffix.lower() != ".convas":
        return None
    from ..project_file import load_project
    from ..training import TrainingSettings

    try:
        return TrainingSettings.from_dict(load_project(source).training).config
    except (ConvasError, OSError):
        return None
