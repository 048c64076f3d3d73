"""The one size helper of the sliding-window family (convolutions and pooling).

Keras computes every conv and pool output size with the same formula
(``keras.src.ops.operation_utils``); so do we, and the messages for a window that does not fit
are written once, here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..shapes import Dim, Shape, conv_length, effective_kernel, fmt_shape, fmt_size, spatial_axes
from .base import ACTIVATIONS, DATA_FORMATS, Args, Fix, LayerError, Param, ParamKind


def check_rank(inputs: list[Shape], rank: int, kind: str) -> Shape:
    """The single input of a ``rank``-D window layer, which must be (batch, *spatial, channels)."""
    shape = inputs[0]
    want = rank + 2
    if len(shape) != want:
        example = {1: "(steps, channels)", 2: "(height, width, channels)",
                   3: "(depth, height, width, channels)"}[rank]
        fixes: list[Fix] = []
        # A Reshape adding a channel axis is only exact when every size is known.
        if len(shape) == want - 1 and all(d is not None for d in shape[1:]):
            fixes.append(Fix.insert("Reshape", target_shape=tuple(shape[1:]) + (1,)))
        hint = "add a Reshape" if len(shape) < want else "use a layer of the matching rank or Reshape"
        raise LayerError(
            f"expects a {rank + 1}-D input {example} per sample, but its input has shape "
            f"{fmt_shape(shape)}; {hint}", fixes)
    return shape


def channels_of(shape: Shape, data_format: str) -> Dim:
    _, ch = spatial_axes(len(shape), data_format)
    return shape[ch]


def require_channels(shape: Shape, data_format: str) -> int:
    c = channels_of(shape, data_format)
    if c is None:
        raise LayerError(f"the channel dimension of its input {fmt_shape(shape)} must be known; "
                         "give the Input a fixed number of channels")
    return c


def window_sizes(shape: Shape, data_format: str, kernel: Sequence[int], strides: Sequence[int],
                 padding: str, dilation: Sequence[int] | None = None, what: str = "kernel",
                 arg: str = "kernel_size") -> list[Dim]:
    """Output spatial sizes of a window of ``kernel`` sliding over ``shape``.

    Raises a :class:`LayerError` naming both sizes when a ``valid`` window does not fit.
    """
    axes, _ = spatial_axes(len(shape), data_format)
    sizes = [shape[a] for a in axes]
    dil = list(dilation or [1] * len(kernel))
    out = [conv_length(s, k, st, padding, d) for s, k, st, d in zip(sizes, kernel, strides, dil)]
    bad = [i for i, o in enumerate(out) if o is not None and o <= 0]
    if bad:
        span = [effective_kernel(k, d) for k, d in zip(kernel, dil)]
        dilated = any(d > 1 for d in dil)
        what_text = f"{fmt_size(kernel)} {what}"
        if dilated:
            what_text += f" with dilation {fmt_size(dil)} spans {fmt_size(span)} and"
        # The largest window that fits each axis: its dilated span k_eff = (k − 1)·d + 1 ≤ size.
        fitting = tuple(k if s is None else max(1, min(k, (s - 1) // d + 1))
                        for s, k, d in zip(sizes, kernel, dil))
        known = [s for s in sizes if s is not None]
        advice = f"use padding='same' or a {what} ≤ {min(known) if known else 1}"
        if dilated:
            advice = f"use padding='same', a smaller dilation_rate or a {what} of {fmt_size(fitting)}"
        raise LayerError(f"{what_text} is larger than its {fmt_size(sizes)} input; {advice}",
                         [Fix.set_arg("padding", "same"), Fix.set_arg(arg, fitting)])
    return out


def place(shape: Shape, data_format: str, spatial: Sequence[Dim], channels: Dim) -> Shape:
    """Assemble an output shape from spatial sizes and a channel count."""
    if data_format == "channels_first":
        return (shape[0], channels, *spatial)
    return (shape[0], *spatial, channels)


# Argument builders shared by every window layer, with Keras's names and defaults.

def p_filters() -> Param:
    return Param("filters", ParamKind.INT, None, minimum=1, maximum=1 << 20, required=True,
                 doc="Number of output channels.")


def p_kernel(rank: int, name: str = "kernel_size", default: Any = None) -> Param:
    return Param(name, ParamKind.INTS, default, minimum=1, maximum=4096, length=rank,
                 required=default is None, doc="Window size per spatial axis.")


def p_strides(rank: int, default: Any = 1, optional: bool = False) -> Param:
    return Param("strides", ParamKind.OPTIONAL_INTS if optional else ParamKind.INTS, default, minimum=1,
                 maximum=4096, length=rank,
                 doc="Step of the window per spatial axis" + (" (None: the pool size)." if optional else "."))


def p_padding(causal: bool = False) -> Param:
    choices = ("valid", "same", "causal") if causal else ("valid", "same")
    return Param("padding", ParamKind.CHOICE, "valid", choices=choices,
                 doc="'valid': no padding, the output shrinks; 'same': pad so that output = ceil(input / stride)."
                 + (" 'causal': pad on the left only (for sequences)." if causal else ""))


def p_data_format() -> Param:
    return Param("data_format", ParamKind.CHOICE, "channels_last", choices=DATA_FORMATS,
                 doc="Where the channels are: last (batch, ..., channels) or first (batch, channels, ...).")


def p_dilation(rank: int) -> Param:
    return Param("dilation_rate", ParamKind.INTS, 1, minimum=1, maximum=4096, length=rank,
                 doc="Spacing between kernel taps (atrous convolution).")


def p_activation() -> Param:
    return Param("activation", ParamKind.CHOICE, "linear", choices=ACTIVATIONS, doc="Applied to the output.")


def p_use_bias() -> Param:
    return Param("use_bias", ParamKind.BOOL, True, doc="Add a learned bias per output channel.")


def conv_card(args: Args) -> str:
    """``32 × 3×3 /2 same, relu``: what a person reads on a conv card."""
    parts = []
    if "filters" in args:
        parts.append(f"{args['filters']} ×")
    parts.append("×".join(map(str, args["kernel_size"])))
    if max(args.get("strides") or (1,)) > 1:
        parts.append("/" + "×".join(map(str, args["strides"])) if len(set(args["strides"])) > 1
                     else f"/{args['strides'][0]}")
    if max(args.get("dilation_rate") or (1,)) > 1:
        parts.append(f"dil {'×'.join(map(str, args['dilation_rate']))}")
    if args.get("padding", "valid") != "valid":
        parts.append(args["padding"])
    text = " ".join(parts)
    if args.get("activation", "linear") not in ("linear", None):
        text += f", {args['activation']}"
    return text
