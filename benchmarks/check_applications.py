"""Every ``keras.applications`` architecture of the pinned Keras through Convas (issue 14).

For each architecture the module offers (enumerated, not listed by hand): build it with
``weights=None`` (nothing is downloaded) at a small input (32×32; 75×75 for InceptionV3 and
InceptionResNetV2, 71×71 for Xception) with 10 classes, save it as ``.keras``, import that
into a design (``engine.files.load_design``), check that the design is read exactly (totals, the
trainable/non-trainable split, every layer's output shapes and parameters, as Keras has them),
then export it the way ``convas export MODEL.keras`` does (the same weights rule, the file's own
weights; :func:`engine.export.run.export_model` with verification on) to ``.keras`` and ONNX.

One row per architecture: its layers and parameters (Keras's count), the range of its outputs on
the probe batch, whether it was read exactly, each export's max abs difference on the probe
batch and how much of its allowance the worst element used (the export verified every element
against ``engine.export.run.FLOAT_TOLERANCE``, or its row says why not), and the seconds the
row took. BatchNormalization statistics are calibrated first (:func:`calibrate_batch_norm`), so
that the outputs vary with the input and a wrong export would show. Each architecture is
checked in a process of its own (the GB column is its peak memory): an architecture the
importer refuses is a row ``refused: <message>``, one whose process the system kills a row
``crashed``. ConvNeXtLarge's ONNX export alone took more than 23 GB (tf2onnx copies the
weights several times); leave the largest out with ``--only`` on a smaller machine. Exit status
0 when every architecture read exactly and exported, 1 otherwise.

Run: uv run python benchmarks/check_applications.py [--only ResNet50,MobileNetV2] [--skip-onnx]
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from engine.errors import ConvasError, first_line  # noqa: E402

# The smallest input each architecture accepts, where 32×32 is too small for it.
INPUT_SIZE = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71}
DEFAULT_SIZE = 32
CLASSES = 10
FORMATS = ("keras", "onnx")
SUFFIX = {"keras": ".keras", "onnx": ".onnx"}


def architectures() -> dict[str, Any]:
    """Every model-building function ``keras.applications`` exports, by name."""
    import keras

    found = {}
    for name in dir(keras.applications):
        builder = getattr(keras.applications, name)
        if (inspect.isfunction(builder) and name[:1].isupper()
                and builder.__module__.startswith("keras.src.applications")):
            found[name] = builder
    return found


def input_size(name: str) -> int:
    return INPUT_SIZE.get(name, DEFAULT_SIZE)


def build(name: str) -> Any:
    """The architecture with fresh weights (seeded), at its small input, with 10 classes, its
    BatchNormalization statistics calibrated (:func:`calibrate_batch_norm`)."""
    import keras

    keras.utils.set_random_seed(0)
    size = input_size(name)
    model = architectures()[name](weights=None, input_shape=(size, size, 3), classes=CLASSES)
    calibrate_batch_norm(model)
    return model


def calibrate_batch_norm(model: Any) -> None:
    """Give every BatchNormalization layer the scale of its inputs on the export's probe batch,
    as training gives it statistics. With fresh ones (mean 0, variance 1) the signal fades layer
    after layer: MobileNetV2's last features are ~1e-12 at 32×32, its outputs exactly 1/10, and
    any export that also returned 1/10 would "verify". Each layer gets mean 0 and, as variance
    of every channel, the mean square of all its inputs: it rescales them to unit size as a
    whole, and removes no mean. (Per-channel statistics instead divide the channels that carry
    almost nothing, deep in the network where 8 random images look alike, by almost nothing: the
    network then amplifies float32 rounding until 1e-7 more input changes an output by 0.4 %,
    and no export of it can match, a network no training makes.)
    One pass over the export's probe batch in training mode, with momentum 0 and dropout off,
    sets them all, each layer seeing inputs already rescaled upstream, exactly as it will when
    the export verifies its predictions on that batch. (Deep layers see 1×1 maps of 8 random
    images: statistics from another batch would leave some channels hundreds of times too large.)"""
    import keras

    from engine.export.formats import model_call
    from engine.export.run import probe_inputs

    layers = list(model._flatten_layers(include_self=False, recursive=True))
    norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    drops = [layer for layer in layers if isinstance(layer, keras.layers.Dropout)]
    if not norms:
        return
    momenta, rates = [layer.momentum for layer in norms], [layer.rate for layer in drops]

    def mean_square(layer: Any) -> Any:
        def moments(inputs: Any, mask: Any) -> tuple[Any, Any]:
            square = keras.ops.mean(keras.ops.square(inputs), axis=layer._reduction_axes)
            return keras.ops.zeros_like(square), keras.ops.ones_like(square) * keras.ops.mean(square)
        return moments

    try:
        for layer in norms:
            layer.momentum = 0.0
            object.__setattr__(layer, "_moments", mean_square(layer))  # past Keras's attribute tracking
        for layer in drops:
            layer.rate = 0.0
        model(model_call(probe_inputs(model)), training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
            if "_moments" in vars(layer):
                object.__delattr__(layer, "_moments")
        for layer, rate in zip(drops, rates):
            layer.rate = rate


@dataclass
class Row:
    name: str
    layers: int = 0
    params: int = 0
    outputs: tuple[float, float] = (0.0, 0.0)  # the model's smallest and largest output on the probe batch
    refused: str | None = None          # the importer's message
    read_exact: str | None = None       # None: exact; else the first difference from Keras
    errors: dict[str, float] = field(default_factory=dict)   # format → max abs difference
    used: dict[str, float] = field(default_factory=dict)     # format → worst element's share of its allowance
    failures: dict[str, str] = field(default_factory=dict)   # format → why the export failed
    crashed: str | None = None          # how the process checking it ended, when it did not report
    seconds: float = 0.0
    peak_gb: float = 0.0                # the checking process's peak resident memory

    @property
    def ok(self) -> bool:
        return self.refused is None and self.read_exact is None and not self.failures and self.crashed is None


def leaf_layers(model: Any) -> Iterator[Any]:
    """The model's layers, those of nested models in their place (the models themselves not)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer)
        else:
            yield layer


def _weight_count(weights: list[Any]) -> int:
    from math import prod

    return sum(int(prod(w.shape)) for w in weights)


def read_difference(design: Any, model: Any) -> str | None:
    """None when ``design`` is what Keras says ``model`` is: valid, the same totals and
    trainable/non-trainable split, and every layer with Keras's output shapes and parameters;
    else the first difference, in words."""
    from engine.analysis import analyse

    analysis = analyse(design)
    if not analysis.valid:
        return f"invalid design: {analysis.errors[0]}"
    trainable, frozen = _weight_count(model.trainable_weights), _weight_count(model.non_trainable_weights)
    if (analysis.trainable_params, analysis.non_trainable_params) != (trainable, frozen):
        return (f"parameters {analysis.trainable_params:,} trainable + {analysis.non_trainable_params:,} "
                f"non-trainable, Keras {trainable:,} + {frozen:,}")
    for layer in leaf_layers(model):
        report = analysis.nodes.get(layer.name)
        if report is None:
            return f"Keras layer {layer.name!r} is not in the design"
        shapes = [tuple(node.output_tensors[0].shape) for node in layer._inbound_nodes]
        if shapes and [tuple(s) if s is not None else None for s in report.output_shapes] != shapes:
            return f"{layer.name}: output shapes {report.output_shapes}, Keras {shapes}"
        split = (_weight_count(layer.trainable_weights), _weight_count(layer.non_trainable_weights))
        if (report.trainable_params, report.non_trainable_params) != split:
            return (f"{layer.name}: parameters {report.trainable_params} + {report.non_trainable_params}, "
                    f"Keras {split[0]} + {split[1]}")
    return None


def output_range(model: Any) -> tuple[float, float]:
    """The model's smallest and largest output on the export's probe batch: a narrow range
    (every class near 1/10) would make any verification easy."""
    import numpy as np

    from engine.export.formats import as_list, model_call
    from engine.export.run import probe_inputs

    outputs = as_list(model(model_call(probe_inputs(model)), training=False))
    return min(float(np.min(o)) for o in outputs), max(float(np.max(o)) for o in outputs)


def one_line(text: str, limit: int) -> str:
    """``text`` with its line breaks and bullets as spaces, cut at ``limit`` characters."""
    flat = " ".join(text.replace("•", " ").split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def export_like_the_cli(source: Path, out: Path, fmt: str) -> Any:
    """``convas export SOURCE --format FMT --out OUT``'s path, returning its ExportResult: the
    design read from ``source``, the weights it brings chosen by the one rule, verification on."""
    from engine.data_source import recorded_pixel_range
    from engine.export.run import ExportOptions, export_model
    from engine.files import load_design
    from engine.weights import kept_weights, resolve_weights

    design = load_design(source)
    kept, _warnings = kept_weights(source)
    weights = resolve_weights(design, kept=kept)
    return export_model(design, out, ExportOptions(fmt), weights=weights,
                        input_range=recorded_pixel_range(source))


def check(name: str, formats: tuple[str, ...] = FORMATS) -> Row:
    """One architecture through import and every export of ``formats``, in a temporary folder."""
    import keras

    from engine.files import load_design

    started = time.monotonic()
    row = Row(name)
    with tempfile.TemporaryDirectory(prefix="convas-apps-") as folder:
        model = build(name)
        row.layers, row.params = len(model.layers), model.count_params()
        row.outputs = output_range(model)
        source = Path(folder) / f"{name}.keras"
        model.save(source)
        try:
            design = load_design(source)
        except ConvasError as exc:
            row.refused = one_line(str(exc), limit=240)
        else:
            row.read_exact = read_difference(design, model)
            for fmt in formats:
                try:
                    result = export_like_the_cli(source, Path(folder) / f"out{SUFFIX[fmt]}", fmt)
                except ConvasError as exc:  # an ExportError, or the design refused by the model builder
                    row.failures[fmt] = first_line(exc, limit=400)
                else:
                    row.errors[fmt] = result.max_abs_diff
                    row.used[fmt] = result.comparison.worst_diff / result.comparison.allowed
                (Path(folder) / f"out{SUFFIX[fmt]}").unlink(missing_ok=True)
    del model
    keras.backend.clear_session()  # layers pile up in Keras's global state
    row.seconds = time.monotonic() - started
    return row


def check_in_a_process(name: str, formats: tuple[str, ...]) -> Row:
    """:func:`check` in a new process, so that each architecture starts from a fresh Keras and
    gives its memory back (the largest need many gigabytes), and a process the system kills
    is a row that says so instead of the end of the table."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, __file__, "--child", name, "--formats", ",".join(formats)],
                          capture_output=True, text=True, check=False,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    for text in reversed(done.stdout.splitlines()):
        if text.startswith(ROW_MARK):
            return Row(**json.loads(text[len(ROW_MARK):]))
    if done.returncode < 0:
        how = f"killed by {signal.Signals(-done.returncode).name}"
        if done.returncode == -signal.SIGKILL:
            how += " (out of memory?)"
    else:
        how = f"exit status {done.returncode}"
    last = [t for t in done.stderr.splitlines() if t.strip()][-1:] or ["no message"]
    return Row(name, crashed=f"{how}: {one_line(last[0], 200)}", seconds=time.monotonic() - started)


def _child(name: str, formats: tuple[str, ...]) -> None:
    # When memory runs out, the system should end this process, not someone else's.
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text("1000")
    row = check(name, formats)
    row.peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux
    print(ROW_MARK + json.dumps(asdict(row)), flush=True)


ROW_MARK = "CHECKED "
HEADER = (f"{'architecture':<18} {'layers':>6} {'params':>12} {'outputs':>13} {'read exact':>10} "
          f"{'.keras err (used)':>17} {'ONNX err (used)':>17} {'s':>6} {'GB':>5}")


def line(row: Row, formats: tuple[str, ...]) -> str:
    if row.crashed is not None:
        return f"{row.name:<18} {'—':>6} {'—':>12} {'—':>13} crashed after {row.seconds:.0f} s: {row.crashed}"
    low, high = row.outputs
    start = f"{row.name:<18} {row.layers:>6} {row.params:>12,} {f'{low:.0e}–{high:.2f}':>13}"
    if row.refused is not None:
        return f"{start} refused: {row.refused}"

    def error(fmt: str) -> str:
        if fmt not in formats:
            return "skipped"
        if fmt not in row.errors:
            return "FAILED"
        return f"{row.errors[fmt]:.1e} ({row.used[fmt]:.1%})"
    text = (f"{start} {'yes' if row.read_exact is None else 'no':>10} {error('keras'):>17} "
            f"{error('onnx'):>17} {row.seconds:>6.1f} {row.peak_gb:>5.1f}")
    notes = ([f"read differs: {row.read_exact}"] if row.read_exact else []) + [
        f"{fmt} export failed: {why}" for fmt, why in row.failures.items()]
    return text + "".join(f"\n    {note}" for note in notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Every keras.applications architecture through "
                                                 "Convas's import and verified exports.")
    parser.add_argument("--only", metavar="NAME,...", help="these architectures only (comma-separated)")
    parser.add_argument("--skip-onnx", action="store_true", help="export to .keras only")
    parser.add_argument("--child", help=argparse.SUPPRESS)    # one architecture, in this process
    parser.add_argument("--formats", help=argparse.SUPPRESS)  # the child's formats
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, tuple(args.formats.split(",")))
        return 0

    import keras

    available = list(architectures())
    names = available
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in available]
        if unknown:
            parser.error(f"not in keras.applications of Keras {keras.__version__}: {', '.join(unknown)}; "
                         f"choose among {', '.join(available)}")
    formats = ("keras",) if args.skip_onnx else FORMATS
    print(f"Keras {keras.__version__}: {len(available)} architectures in keras.applications; checking "
          f"{len(names)} at {DEFAULT_SIZE}×{DEFAULT_SIZE} (InceptionV3, InceptionResNetV2 75, Xception 71), "
          f"{CLASSES} classes, weights=None; exports to {' and '.join(formats)}\n", flush=True)
    print(HEADER, flush=True)
    rows = []
    for name in names:
        row = check_in_a_process(name, formats)
        rows.append(row)
        print(line(row, formats), flush=True)
    refused = sum(r.refused is not None for r in rows)
    inexact = sum(r.refused is None and r.read_exact is not None for r in rows)
    failed = sum(bool(r.failures) for r in rows)
    crashed = sum(r.crashed is not None for r in rows)
    ok = sum(r.ok for r in rows)
    print(f"\n{ok} of {len(rows)} architectures read exactly and exported to {' and '.join(formats)} "
          f"with verified predictions; {refused} refused by the importer, {inexact} read inexactly, "
          f"{failed} with a failed export, {crashed} crashed; {sum(r.seconds for r in rows):.0f} s in all")
    return 0 if ok == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
