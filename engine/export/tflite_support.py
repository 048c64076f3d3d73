"""Which layers the TensorFlow Lite export will refuse, known before exporting.

The TFLite converter lowers fewer operations than TensorFlow runs, and LiteRT's kernels accept
fewer shapes than TFLite's graph does, so some designs that build, train and export to every
other format are refused by ``export_model(..., ExportOptions("tflite"))`` with an
:class:`~engine.export.run.ExportError`. :data:`TFLITE_UNSUPPORTED` lists them, per layer kind,
with the arguments (or input rank) that matter and what the user can do instead;
:func:`tflite_problems` applies it to a design so that the export dialog and the command line
can say so before a conversion is attempted.

The table is measured, not guessed: on 2026-11-29, with TensorFlow 2.21.0, Keras 3.15.1 and
LiteRT (ai-edge-litert) 2.3.0 on Linux x86-64, every accepted row of the layer table of
``tests/test_catalogue_keras.py`` (one layer fed by inputs of the row's shapes) was exported to
TFLite plain, with dynamic-range and with float16 quantization (the same layers failed in all
three), along with argument variants (channels_first with and without bias, dilation per axis,
groups, interpolations, inputs of rank 5 and 6) and a few hundred designs from the differential
test's generator. A layer is listed when its minimal design is refused and the refusal follows
from its own arguments. To re-measure, run::

    uv run python tests/test_tflite_support.py

which exports every row again and prints where the table and TensorFlow disagree;
``tests/test_tflite_support.py`` checks the table against real conversions (marked slow), so a
TensorFlow upgrade that changes the answer fails loudly.

Qt-free and TensorFlow-free: the check reads the design and its shape analysis only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..analysis import Analysis, analyse
from ..design import Design, TensorRef
from ..layers import CATALOGUE

Args = Mapping[str, Any]


@dataclass(frozen=True)
class Refusal:
    """One way a layer kind is refused: ``applies(args, rank)`` on the layer's normalised
    arguments and the rank (batch axis included) of the tensor it is called on, None when
    unknown; ``when`` says that condition in the user's words ("" = always), formatted with the
    arguments and ``rank``; ``reason`` what fails and what to do; ``example`` the arguments and
    input shape (batch axis left out) of a minimal design that shows it, for the tests and the
    re-measurement."""

    when: str
    applies: Callable[[Args, int | None], bool]
    reason: str
    example: tuple[dict[str, Any], tuple[int, ...]]


def _always(args: Args, rank: int | None) -> bool:
    return True


def _channels_first(args: Args, rank: int | None) -> bool:
    return args.get("data_format") == "channels_first"


def _channels_first_with_bias(args: Args, rank: int | None) -> bool:
    return _channels_first(args, rank) and bool(args.get("use_bias", True))


def _dilated(args: Args, rank: int | None) -> bool:
    return any(d != 1 for d in args.get("dilation_rate") or ())


def _grouped(args: Args, rank: int | None) -> bool:
    return args.get("groups", 1) != 1


_UNLOWERED_RESIZES = ("bicubic", "area", "lanczos3", "lanczos5")


def _unlowered_resize(args: Args, rank: int | None) -> bool:
    return args.get("interpolation") in _UNLOWERED_RESIZES


def _rank_above_4(args: Args, rank: int | None) -> bool:
    return rank is not None and rank > 4


CF = "channels_first"
_OTHER_FORMATS = "or export as ONNX or SavedModel instead"
_USE_CHANNELS_LAST = f"use data_format='channels_last' (a Permute can reorder the axes first), {_OTHER_FORMATS}"
_NO_3D_POOLING = (f"TensorFlow Lite has no 3-D pooling kernel; pool in 2-D (e.g. Reshape to merge two axes) "
                  f"or with a strided Conv3D, {_OTHER_FORMATS}")
_NO_DILATED_TRANSPOSE = (f"TensorFlow Lite cannot convert a dilated transposed convolution; set "
                         f"dilation_rate=1, {_OTHER_FORMATS}")
_RESIZE = (f"TensorFlow Lite only resizes with 'nearest' or 'bilinear' interpolation; choose one of them, "
           f"{_OTHER_FORMATS}")


# Kind → the ways it is refused. Kinds not listed converted and verified in every variant tried
# (2-D convolutions, depthwise and separable ones included, in both data formats).
TFLITE_UNSUPPORTED: dict[str, tuple[Refusal, ...]] = {
    "Conv1D": (
        Refusal("data_format='channels_first'", _channels_first,
                f"TensorFlow Lite cannot convert a channels_first 1-D convolution (without bias it "
                f"converts but computes the wrong shape); {_USE_CHANNELS_LAST}",
                ({"filters": 2, "kernel_size": 3, "data_format": CF}, (4, 8))),
    ),
    "Conv3D": (
        Refusal("data_format='channels_first'", _channels_first,
                f"TensorFlow Lite cannot convert a channels_first 3-D convolution; {_USE_CHANNELS_LAST}",
                ({"filters": 2, "kernel_size": 2, "data_format": CF}, (2, 4, 5, 6))),
        Refusal("dilation_rate={dilation_rate}", _dilated,
                f"TensorFlow Lite cannot convert a dilated 3-D convolution; set dilation_rate=1, {_OTHER_FORMATS}",
                ({"filters": 2, "kernel_size": 2, "dilation_rate": 2}, (5, 6, 4, 2))),
        Refusal("groups={groups}", _grouped,
                f"LiteRT's 3-D convolution kernel cannot run grouped convolutions; set groups=1, {_OTHER_FORMATS}",
                ({"filters": 4, "kernel_size": 2, "groups": 2}, (5, 6, 4, 2))),
    ),
    "Conv1DTranspose": (
        Refusal("data_format='channels_first'", _channels_first,
                f"TensorFlow Lite cannot convert a channels_first transposed convolution; {_USE_CHANNELS_LAST}",
                ({"filters": 2, "kernel_size": 2, "data_format": CF}, (3, 5))),
        Refusal("dilation_rate={dilation_rate}", _dilated, _NO_DILATED_TRANSPOSE,
                ({"filters": 2, "kernel_size": 3, "dilation_rate": 2}, (5, 3))),
    ),
    "Conv2DTranspose": (
        Refusal("data_format='channels_first'", _channels_first,
                f"TensorFlow Lite cannot convert a channels_first transposed convolution; {_USE_CHANNELS_LAST}",
                ({"filters": 2, "kernel_size": 2, "data_format": CF}, (3, 4, 5))),
        Refusal("dilation_rate={dilation_rate}", _dilated, _NO_DILATED_TRANSPOSE,
                ({"filters": 2, "kernel_size": 3, "dilation_rate": 2}, (4, 3, 3))),
    ),
    "Conv3DTranspose": (
        Refusal("data_format='channels_first'", _channels_first,
                f"TensorFlow Lite cannot convert a channels_first transposed convolution; {_USE_CHANNELS_LAST}",
                ({"filters": 2, "kernel_size": 2, "data_format": CF}, (2, 3, 4, 3))),
    ),
    "DepthwiseConv1D": (
        Refusal("data_format='channels_first' with a bias", _channels_first_with_bias,
                f"TensorFlow Lite cannot convert the bias of a channels_first 1-D depthwise convolution; "
                f"set use_bias=False or {_USE_CHANNELS_LAST}",
                ({"kernel_size": 2, "data_format": CF}, (3, 9))),
    ),
    "SeparableConv1D": (
        Refusal("data_format='channels_first' with a bias", _channels_first_with_bias,
                f"TensorFlow Lite cannot convert the bias of a channels_first 1-D separable convolution; "
                f"set use_bias=False or {_USE_CHANNELS_LAST}",
                ({"filters": 4, "kernel_size": 2, "data_format": CF}, (3, 9))),
    ),
    "MaxPooling3D": (Refusal("", _always, _NO_3D_POOLING, ({"pool_size": 2}, (4, 4, 4, 2))),),
    "AveragePooling3D": (Refusal("", _always, _NO_3D_POOLING, ({"pool_size": 2}, (4, 4, 4, 2))),),
    "UpSampling2D": (
        Refusal("interpolation={interpolation!r}", _unlowered_resize, _RESIZE,
                ({"size": 2, "interpolation": "bicubic"}, (3, 4, 2))),
    ),
    "Resizing": (
        Refusal("interpolation={interpolation!r}", _unlowered_resize, _RESIZE,
                ({"height": 3, "width": 3, "interpolation": "area"}, (6, 8, 3))),
    ),
    "PReLU": (
        Refusal("called on a tensor of {rank} axes", _rank_above_4,
                f"TensorFlow Lite's PReLU handles tensors of at most 4 axes (batch included); "
                f"Reshape to fewer axes first, {_OTHER_FORMATS}",
                ({}, (3, 4, 5, 2))),
    ),
}


def tflite_problems(design: Design) -> list[str]:
    """One message per layer of ``design`` that the TFLite export will refuse, naming the layer,
    saying why and what to do instead; [] when the table expects the export to work.

    Works on invalid designs too (a rank that cannot be inferred counts as unknown)."""
    analysis: Analysis | None = None
    problems: list[str] = []
    for node in design:
        refusals = TFLITE_UNSUPPORTED.get(node.kind, ())
        if not refusals or node.kind not in CATALOGUE:
            continue
        if analysis is None:
            analysis = analyse(design)
        args = CATALOGUE[node.kind].normalise(node.args)[0]
        # A shared layer is refused when any of its calls is; each reason is said once.
        said: set[str] = set()
        ranks = sorted({_input_rank(analysis, refs) for refs in node.inbound}, key=lambda r: r or 0)
        for rank in ranks:
            for refusal in refusals:
                if refusal.reason in said or not refusal.applies(args, rank):
                    continue
                said.add(refusal.reason)
                when = refusal.when.format(**args, rank=rank)
                condition = f", {when}" if when else ""
                problems.append(f"Layer {node.name!r} ({node.kind}{condition}): {refusal.reason}.")
    return problems


def _input_rank(analysis: Analysis, refs: list[TensorRef]) -> int | None:
    """The rank of the first tensor of one call (a layer the table lists takes one input)."""
    if not refs:
        return None
    report = analysis.nodes.get(refs[0].node)
    shapes = report.output_shapes if report is not None else []
    shape = shapes[refs[0].call] if refs[0].call < len(shapes) else None
    return len(shape) if shape is not None else None
