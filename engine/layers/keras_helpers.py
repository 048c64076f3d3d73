"""Keras's own helper layers in ``keras.applications``: LayerScale, StochasticDepth (ConvNeXt) and
CustomScaleLayer (InceptionResNetV2).

These classes live in Keras's application modules, not in ``keras.layers``, so a model config
names them with their module (``"module": "keras.src.applications.convnext"``). They are Keras
code, not user code: import recognises each by its module AND class (:data:`KERAS_CLASSES`), so
that a user's own class that happens to be called ``LayerScale`` stays unsupported, and build
creates them from that same module. Arguments, weights and shapes are Keras's (see the classes in
``keras/src/applications/``):

- ``LayerScale(init_values, projection_dim)``: ``x * gamma``, one trainable weight of
  ``projection_dim`` values broadcast against the input's last axis.
- ``StochasticDepth(drop_path_rate)``: drops whole residual paths while training; the identity
  otherwise. No weights.
- ``CustomScaleLayer(scale)``: called on ``[x, r]``, gives ``x + r * scale``. No weights.
"""

from __future__ import annotations

from math import prod

from ..shapes import Shape, fmt_shape
from .base import Args, Fix, LayerError, LayerSpec, Param, ParamKind
from .merge import elementwise
from .ops import broadcast_two, number_text

CONVNEXT = "keras.src.applications.convnext"
INCEPTION_RESNET_V2 = "keras.src.applications.inception_resnet_v2"

KERAS_CLASSES: dict[str, tuple[str, str]] = {
    "LayerScale": (CONVNEXT, "LayerScale"),
    "StochasticDepth": (CONVNEXT, "StochasticDepth"),
    "CustomScaleLayer": (INCEPTION_RESNET_V2, "CustomScaleLayer"),
}

# x + r * scale broadcasts its two inputs exactly like the element-wise merge layers.
_TWO_TENSORS = elementwise("Add", "", exact_two=True)


def _layer_scale_infer(args: Args, inputs: list[Shape]) -> Shape:
    shape = inputs[0]
    dim = args["projection_dim"]
    if len(shape) < 2:
        raise LayerError(f"needs an input with at least one axis besides the batch; got {fmt_shape(shape)}")
    last = shape[-1]
    if last is not None and last not in (1, dim) and dim != 1:
        raise LayerError(f"scales the last axis by {dim} values (projection_dim), but its input "
                         f"{fmt_shape(shape)} has {last} there; set projection_dim to {last}",
                         [Fix.set_arg("projection_dim", last)])
    return (*shape[:-1], dim if last == 1 else last)


def _layer_scale_weights(args: Args, inputs: list[Shape], out: Shape) -> tuple[int, int]:
    return args["projection_dim"], 0


def _per_value_macs(args: Args, inputs: list[Shape], out: Shape) -> int:
    dims = out[1:]
    return 0 if any(d is None for d in dims) else prod(dims)  # type: ignore[arg-type]


def _custom_scale_infer(args: Args, inputs: list[Shape]) -> Shape:
    if len(inputs) != 2:
        raise LayerError(f"takes exactly 2 inputs [x, r] and gives x + r × scale; it has {len(inputs)}")
    return broadcast_two(inputs)  # x + r * scale is computed by keras.ops


SPECS = [
    LayerSpec(
        kind="LayerScale", group="Keras applications",
        summary="Multiplies each channel by a learned factor (ConvNeXt's layer scale).",
        params=(Param("init_values", ParamKind.FLOAT, 1e-6, required=True,
                      doc="The factors' starting value."),
                Param("projection_dim", ParamKind.INT, 96, minimum=1, required=True,
                      doc="How many channels (factors) the input's last axis has."),),
        infer=_layer_scale_infer, weights=_layer_scale_weights, macs=_per_value_macs,
        card=lambda a: f"× γ[{a['projection_dim']}], init {number_text(a['init_values'])}"),
    LayerSpec(
        kind="StochasticDepth", group="Keras applications",
        summary="Drops whole residual paths at random while training (ConvNeXt); passes its input on otherwise.",
        params=(Param("drop_path_rate", ParamKind.FLOAT, 0.0, minimum=0.0, maximum=1.0, required=True,
                      doc="Probability of dropping the path while training."),),
        infer=lambda a, inputs: inputs[0], card=lambda a: f"drop {a['drop_path_rate']:g}"),
    LayerSpec(
        kind="CustomScaleLayer", group="Keras applications",
        summary="Adds its second input, scaled, to its first: x + r × scale (InceptionResNetV2).",
        params=(Param("scale", ParamKind.FLOAT, 1.0, required=True, doc="The factor on the second input."),),
        infer=_custom_scale_infer, macs=_per_value_macs, field=_TWO_TENSORS.field,
        min_inputs=2, max_inputs=2, card=lambda a: f"x + r × {number_text(a['scale'])}"),
]
