"""Convolution layers: Conv1D/2D/3D, their transposes, depthwise and separable convolutions."""

from __future__ import annotations

from math import prod

from ..shapes import Shape, deconv_length, spatial_axes
from .base import Args, Field, Fix, LayerError, LayerSpec, Param, ParamKind
from .windows import (
    check_rank, conv_card, p_activation, p_data_format, p_dilation, p_filters, p_kernel,
    p_padding, p_strides, p_use_bias, place, require_channels, window_sizes,
)


def _no_stride_and_dilation(args: Args) -> None:
    """Conv and transposed conv refuse both above 1 (depthwise and separable ones accept it)."""
    if max(args["strides"]) > 1 and max(args.get("dilation_rate", (1,))) > 1:
        raise LayerError(
            f"strides {args['strides']} and dilation_rate {args['dilation_rate']} cannot both be "
            "above 1 (Keras refuses it); set strides=1 or dilation_rate=1",
            [Fix.set_arg("dilation_rate", 1), Fix.set_arg("strides", 1)])


def _cpu_lint(*, channels_first: bool, dilated: bool = False, depthwise: bool = False):
    """Warn about settings that some of TensorFlow's kernels cannot run: whether they run depends
    on the machine (a GPU, or oneDNN's kernels on some CPUs, run them), so they are not errors."""
    def lint(args: Args, inputs: list[Shape], out: Shape) -> list[tuple[str, tuple[Fix, ...]]]:
        found: list[tuple[str, tuple[Fix, ...]]] = []
        strides = args.get("strides", ())
        # TensorFlow's own depthwise kernels take one stride for both axes (Keras avoids them,
        # and so allows unequal strides, when it emulates strides together with dilation).
        if depthwise and len(set(strides)) > 1 and max(args["dilation_rate"]) == 1:
            found.append((f"strides {strides} differ between the axes: TensorFlow's depthwise "
                          "convolution runs that only with some CPU kernels: on many CPUs it fails "
                          "when run; use equal strides to run anywhere",
                          (Fix.set_arg("strides", min(strides)), Fix.set_arg("strides", max(strides)))))
        if channels_first and args["data_format"] == "channels_first" and args.get("groups", 1) == 1:
            found.append(("TensorFlow runs this convolution with data_format='channels_first' on a "
                          "GPU, but on many CPUs it fails when run; use 'channels_last' to run anywhere",
                          (Fix.set_arg("data_format", "channels_last"),)))
        if dilated and max(args["dilation_rate"]) > 1:
            found.append((f"TensorFlow runs a transposed convolution with dilation_rate "
                          f"{args['dilation_rate']} on a GPU, but on many CPUs it fails when run; "
                          "use dilation_rate=1 to run anywhere", (Fix.set_arg("dilation_rate", 1),)))
        return found
    return lint


def _spatial_elements(shape: Shape, data_format: str) -> int:
    axes, _ = spatial_axes(len(shape), data_format)
    dims = [shape[a] for a in axes]
    return 0 if any(d is None for d in dims) else prod(dims)  # type: ignore[arg-type]


def _window_field(args: Args, fields: list[Field | None], inputs: list[Shape], out: Shape) -> Field | None:
    f = fields[0]
    if f is None or len(f.size) != len(args["kernel_size"]):
        return None
    return f.window(args["kernel_size"], args["strides"], args.get("dilation_rate"))


# --- Conv1D / Conv2D / Conv3D ---------------------------------------------------------------

def _conv_infer(rank: int):
    def infer(args: Args, inputs: list[Shape]) -> Shape:
        shape = check_rank(inputs, rank, f"Conv{rank}D")
        fmt = args["data_format"]
        _no_stride_and_dilation(args)
        groups, filters = args["groups"], args["filters"]
        if filters % groups:
            raise LayerError(f"filters={filters} is not divisible by groups={groups}; "
                             f"use filters that are a multiple of {groups}",
                             [Fix.set_arg("groups", 1)])
        channels = require_channels(shape, fmt)
        if channels % groups:
            raise LayerError(f"its input has {channels} channels, not divisible by groups={groups}; "
                             f"use groups dividing {channels}", [Fix.set_arg("groups", 1)])
        sizes = window_sizes(shape, fmt, args["kernel_size"], args["strides"], args["padding"],
                             args["dilation_rate"])
        return place(shape, fmt, sizes, filters)
    return infer


def _conv_weights(args: Args, inputs: list[Shape], out: Shape) -> tuple[int, int]:
    cin = require_channels(inputs[0], args["data_format"])
    kernel = prod(args["kernel_size"]) * (cin // args["groups"]) * args["filters"]
    return kernel + (args["filters"] if args["use_bias"] else 0), 0


def _conv_macs(args: Args, inputs: list[Shape], out: Shape) -> int:
    cin = require_channels(inputs[0], args["data_format"])
    per_output = prod(args["kernel_size"]) * (cin // args["groups"])
    return _spatial_elements(out, args["data_format"]) * args["filters"] * per_output


def conv(rank: int) -> LayerSpec:
    what = {1: "sequences", 2: "images", 3: "volumes"}[rank]
    return LayerSpec(
        kind=f"Conv{rank}D", group="Convolution",
        summary=f"Slides learned {rank}-D filters over {what}, producing one feature map per filter.",
        params=(p_filters(), p_kernel(rank), p_strides(rank), p_padding(causal=rank == 1),
                p_data_format(), p_dilation(rank),
                Param("groups", ParamKind.INT, 1, minimum=1, maximum=1 << 20,
                      doc="Split channels into this many independent groups."),
                p_activation(), p_use_bias()),
        infer=_conv_infer(rank), weights=_conv_weights, macs=_conv_macs, field=_window_field,
        card=conv_card,
        # Grouped and 3-D convolutions go through XLA, which runs channels_first on a CPU too.
        lint=_cpu_lint(channels_first=rank < 3),
    )


# --- Transposed convolutions --------------------------------------------------------------

def _transpose_infer(rank: int):
    def infer(args: Args, inputs: list[Shape]) -> Shape:
        shape = check_rank(inputs, rank, f"Conv{rank}DTranspose")
        fmt = args["data_format"]
        _no_stride_and_dilation(args)
        require_channels(shape, fmt)
        strides, pads = args["strides"], args["output_padding"]
        if pads is not None:
            for p, s in zip(pads, strides):
                if p >= s:
                    raise LayerError(f"output_padding {pads} must be smaller than strides {strides} "
                                     "on every axis; lower output_padding or leave it None",
                                     [Fix.set_arg("output_padding", None)])
        if pads is not None and args["padding"] == "same":
            _check_same_output_padding(args)
        axes, _ = spatial_axes(len(shape), fmt)
        sizes = [deconv_length(shape[a], k, s, args["padding"], None if pads is None else pads[i], d)
                 for i, (a, k, s, d) in enumerate(zip(axes, args["kernel_size"], strides,
                                                      args["dilation_rate"]))]
        if any(n is not None and n <= 0 for n in sizes):
            raise LayerError(f"the output size {sizes} would be zero or negative; "
                             "use padding='valid' or a larger input")
        return place(shape, fmt, sizes, args["filters"])
    return infer


def _check_same_output_padding(args: Args) -> None:
    """With padding='same', TensorFlow checks that convolving the output gives back the input:
    ⌈out / s⌉ = in, where out = (in − 1)·s + k_eff mod 2 + output_padding. That fails on an axis
    whose dilated kernel k_eff is even and whose output_padding is 0 (the output is a row short).
    """
    for k, d, p in zip(args["kernel_size"], args["dilation_rate"], args["output_padding"]):
        span = (k - 1) * d + 1
        if span % 2 == 0 and p == 0:
            raise LayerError(
                f"with padding='same', an even kernel span {span} (kernel_size {args['kernel_size']}, "
                f"dilation_rate {args['dilation_rate']}) and output_padding "
                f"{args['output_padding']} give an output one row short of what TensorFlow computes; "
                "set output_padding to 1 on that axis (it must stay below strides), leave it None "
                "or use an odd kernel",
                [Fix.set_arg("output_padding", None)])


def _transpose_weights(args: Args, inputs: list[Shape], out: Shape) -> tuple[int, int]:
    cin = require_channels(inputs[0], args["data_format"])
    kernel = prod(args["kernel_size"]) * cin * args["filters"]
    return kernel + (args["filters"] if args["use_bias"] else 0), 0


def _transpose_macs(args: Args, inputs: list[Shape], out: Shape) -> int:
    # Every input value is scattered through the whole kernel into every filter.
    cin = require_channels(inputs[0], args["data_format"])
    return _spatial_elements(inputs[0], args["data_format"]) * cin * prod(args["kernel_size"]) * args["filters"]


def _transpose_field(args: Args, fields: list[Field | None], inputs: list[Shape], out: Shape) -> Field | None:
    # An output position is touched by ⌈k_eff / s⌉ input positions per axis.
    f = fields[0]
    if f is None or len(f.size) != len(args["kernel_size"]):
        return None
    spans = [-(-((k - 1) * d + 1) // s) for k, d, s in
             zip(args["kernel_size"], args["dilation_rate"], args["strides"])]
    grown = f.window(spans, [1] * len(spans))
    return grown.upsample(args["strides"])


def conv_transpose(rank: int) -> LayerSpec:
    return LayerSpec(
        kind=f"Conv{rank}DTranspose", group="Convolution",
        summary=f"Learned {rank}-D up-sampling: the reverse of a strided convolution (a 'deconvolution').",
        params=(p_filters(), p_kernel(rank), p_strides(rank), p_padding(),
                Param("output_padding", ParamKind.OPTIONAL_INTS, None, minimum=0, maximum=4096, length=rank,
                      doc="Extra rows/columns added to one side of the output."),
                p_data_format(), p_dilation(rank), p_activation(), p_use_bias()),
        infer=_transpose_infer(rank), weights=_transpose_weights, macs=_transpose_macs,
        field=_transpose_field, card=conv_card, lint=_cpu_lint(channels_first=True, dilated=True),
    )


# --- Depthwise and separable --------------------------------------------------------------

def p_depth_multiplier() -> Param:
    return Param("depth_multiplier", ParamKind.INT, 1, minimum=1, maximum=1 << 16,
                 doc="Output channels per input channel of the depthwise step.")


def _depthwise_infer(rank: int, kind: str):
    def infer(args: Args, inputs: list[Shape]) -> Shape:
        shape = check_rank(inputs, rank, kind)
        fmt = args["data_format"]
        cin = require_channels(shape, fmt)
        sizes = window_sizes(shape, fmt, args["kernel_size"], args["strides"], args["padding"],
                             args["dilation_rate"])
        channels = args["filters"] if "filters" in args else cin * args["depth_multiplier"]
        return place(shape, fmt, sizes, channels)
    return infer


def _depthwise_weights(args: Args, inputs: list[Shape], out: Shape) -> tuple[int, int]:
    cin = require_channels(inputs[0], args["data_format"])
    mid = cin * args["depth_multiplier"]
    n = prod(args["kernel_size"]) * mid
    if "filters" in args:  # separable: depthwise then a 1×1 pointwise projection
        n += mid * args["filters"]
        return n + (args["filters"] if args["use_bias"] else 0), 0
    return n + (mid if args["use_bias"] else 0), 0


def _depthwise_macs(args: Args, inputs: list[Shape], out: Shape) -> int:
    cin = require_channels(inputs[0], args["data_format"])
    mid = cin * args["depth_multiplier"]
    positions = _spatial_elements(out, args["data_format"])
    n = positions * mid * prod(args["kernel_size"])
    if "filters" in args:
        n += positions * mid * args["filters"]
    return n


def depthwise(rank: int) -> LayerSpec:
    kind = f"DepthwiseConv{rank}D"
    return LayerSpec(
        kind=kind, group="Convolution",
        summary="Filters each input channel separately with its own kernel (no mixing across channels).",
        params=(p_kernel(rank), p_strides(rank), p_padding(), p_depth_multiplier(), p_data_format(),
                p_dilation(rank), p_activation(), p_use_bias()),
        infer=_depthwise_infer(rank, kind), weights=_depthwise_weights, macs=_depthwise_macs,
        field=_window_field, card=conv_card, lint=_cpu_lint(channels_first=False, depthwise=True),
    )


def separable(rank: int) -> LayerSpec:
    kind = f"SeparableConv{rank}D"
    return LayerSpec(
        kind=kind, group="Convolution",
        summary="A depthwise convolution followed by a 1×1 convolution: far fewer weights than a full one.",
        params=(p_filters(), p_kernel(rank), p_strides(rank), p_padding(), p_data_format(),
                p_dilation(rank), p_depth_multiplier(), p_activation(), p_use_bias()),
        infer=_depthwise_infer(rank, kind), weights=_depthwise_weights, macs=_depthwise_macs,
        field=_window_field, card=conv_card, lint=_cpu_lint(channels_first=False, depthwise=True),
    )


SPECS = [conv(1), conv(2), conv(3), conv_transpose(1), conv_transpose(2), conv_transpose(3),
         depthwise(1), depthwise(2), separable(1), separable(2)]

