"""Activation layers: Activation, ReLU, LeakyReLU, PReLU, ELU and Softmax."""

from __future__ import annotations

from math import prod

from ..shapes import Shape, fmt_shape
from .base import ACTIVATIONS, Args, LayerError, LayerSpec, Param, ParamKind


def _same(args: Args, inputs: list[Shape]) -> Shape:
    return inputs[0]


def _softmax_infer(args: Args, inputs: list[Shape]) -> Shape:
    shape = inputs[0]
    for a in args["axis"]:
        if not -len(shape) <= a < len(shape):
            raise LayerError(f"axis {a} is out of range for its input {fmt_shape(shape)}")
    return shape


def _prelu_param_shape(args: Args, shape: Shape) -> list:
    dims = list(shape[1:])
    for a in args["shared_axes"] or ():
        if not 1 <= a <= len(dims):
            raise LayerError(f"shared_axes {args['shared_axes']} must name axes 1…{len(dims)} of its "
                             f"input {fmt_shape(shape)}")
        dims[a - 1] = 1
    return dims


def _prelu_infer(args: Args, inputs: list[Shape]) -> Shape:
    dims = _prelu_param_shape(args, inputs[0])
    if any(d is None for d in dims):
        raise LayerError(f"PReLU learns one slope per value, so every axis of its input "
                         f"{fmt_shape(inputs[0])} must be known (or listed in shared_axes)")
    return inputs[0]


def _prelu_weights(args: Args, inputs: list[Shape], out: Shape) -> tuple[int, int]:
    return prod(_prelu_param_shape(args, inputs[0])), 0


def _elementwise_macs(args: Args, inputs: list[Shape], out: Shape) -> int:
    dims = out[1:]
    return 0 if any(d is None for d in dims) else prod(dims)  # type: ignore[arg-type]


SPECS = [
    LayerSpec(
        kind="Activation", group="Activation",
        summary="Applies an activation function to every value.",
        params=(Param("activation", ParamKind.CHOICE, "relu", choices=ACTIVATIONS, required=True,
                      doc="The function applied."),),
        infer=_same, card=lambda a: a["activation"],
    ),
    LayerSpec(
        kind="ReLU", group="Activation",
        summary="Rectified linear unit: keeps positive values, zeroes (or scales) the rest.",
        params=(Param("max_value", ParamKind.OPTIONAL_FLOAT, None, minimum=0.0, doc="Upper clip (None: no clip)."),
                Param("negative_slope", ParamKind.FLOAT, 0.0, minimum=0.0, doc="Slope below the threshold."),
                Param("threshold", ParamKind.FLOAT, 0.0, doc="Values below this are treated as negative.")),
        infer=_same,
    ),
    LayerSpec(
        kind="LeakyReLU", group="Activation",
        summary="ReLU with a small fixed slope for negative values.",
        params=(Param("negative_slope", ParamKind.FLOAT, 0.3, minimum=0.0, doc="Slope for negative values."),),
        infer=_same, card=lambda a: f"slope {a['negative_slope']:g}",
    ),
    LayerSpec(
        kind="PReLU", group="Activation",
        summary="ReLU with a learned slope for negative values (per value, or shared along axes).",
        params=(Param("shared_axes", ParamKind.AXES, None,
                      doc="Axes (from 1) sharing one slope, e.g. (1, 2) for one per channel."),),
        infer=_prelu_infer, weights=_prelu_weights, macs=_elementwise_macs,
    ),
    LayerSpec(
        kind="ELU", group="Activation",
        summary="Exponential linear unit: smooth for negative values, linear for positive ones.",
        params=(Param("alpha", ParamKind.FLOAT, 1.0, doc="Scale of the negative part."),),
        infer=_same,
    ),
    LayerSpec(
        kind="Softmax", group="Activation",
        summary="Turns values along an axis into probabilities that sum to 1.",
        params=(Param("axis", ParamKind.AXES, -1, doc="Axis (or axes) normalised over."),),
        infer=_softmax_infer,
    ),
]
