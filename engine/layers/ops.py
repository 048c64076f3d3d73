"""Keras operations stored as layers: ``keras.ops.add(x, 3.0)``, ``keras.ops.multiply(a, b)``, ….

A functional Keras model may apply a ``keras.ops`` function (or a Python operator such as
``x + 3.0``) to a symbolic tensor; Keras records it as an ``Operation`` with a name, written in
the model config like a layer (``"module": "keras.src.ops.numpy", "class_name": "Add"``) whose
inbound node holds the operands: tensors, or a plain number on either side. MobileNetV3's
hard-sigmoid is ``x + 3.0`` and ``x * (1/6)``; ConvNeXt's residuals are ``add(a, b)``.

Each element-wise binary operation is one catalogue kind, ``Ops`` + its Keras class (``OpsAdd``
for ``keras.src.ops.numpy.Add``): the prefix keeps them apart from the merge *layers* of the same
class names, which take a list of tensors and no numbers. A node of these kinds has either two
input tensors (``scalar`` None) or one input tensor and the number ``scalar``, on the right of
the operator unless ``scalar_first`` (``3.0 - x``). Shapes follow Keras's broadcast rule (the
merge layers' rule, :func:`engine.layers.merge.elementwise`, reused); operations have no weights.
They are built back by the same Keras operation class under the node's name
(:data:`KERAS_CLASSES`), so a model exported from an imported one records the same operations.

The unary operations (``keras.ops.exp``, ``relu``, …) are not kinds: no architecture in
``keras.applications`` of the pinned Keras (3.15) stores one, and each has an equivalent layer.
"""

from __future__ import annotations

from collections.abc import Callable
from math import prod

from ..shapes import Shape, fmt_shape
from .base import Args, Field, Fix, LayerError, LayerSpec, Param, ParamKind
from .merge import elementwise

OPS_MODULE = "keras.src.ops.numpy"

# kind → (its Keras class, the keras.ops function that applies it, how its card writes it: an
# operator "{a} + {b}" or a function "max({a}, {b})", with a and b the operands).
_OPERATIONS: dict[str, tuple[str, str, str]] = {
    "OpsAdd": ("Add", "add", "{a} + {b}"),
    "OpsSubtract": ("Subtract", "subtract", "{a} − {b}"),
    "OpsMultiply": ("Multiply", "multiply", "{a} × {b}"),
    "OpsDivide": ("Divide", "divide", "{a} ÷ {b}"),
    "OpsMaximum": ("Maximum", "maximum", "max({a}, {b})"),
    "OpsMinimum": ("Minimum", "minimum", "min({a}, {b})"),
}

# kind → (Keras module, Keras class): how import recognises and how build creates each kind.
KERAS_CLASSES: dict[str, tuple[str, str]] = {kind: (OPS_MODULE, cls) for kind, (cls, _, _) in _OPERATIONS.items()}
# kind → the public function that applies it (``keras.ops.add``), for scripts and messages.
OPS_FUNCTIONS: dict[str, str] = {kind: fn for kind, (_, fn, _) in _OPERATIONS.items()}


def number_text(value: float) -> str:
    """A number as a card shows it: ``3.0``, ``0.1667``, ``1e-06`` (four significant digits)."""
    if float(value).is_integer() and abs(value) < 1e6:
        return f"{float(value):.1f}"
    return f"{value:.4g}"


def _card(template: str) -> Callable[[Args], str]:
    """The card text: ``+ 3.0``, ``3.0 − x``, ``max(x, 0.5)``, ``a × b``."""
    def card(args: Args) -> str:
        scalar = args.get("scalar")
        if scalar is None:
            return template.format(a="a", b="b")
        number = number_text(scalar)
        if args.get("scalar_first"):
            return template.format(a=number, b="x")
        if template.startswith("{a} "):  # an operator: "+ 3.0" reads better than "x + 3.0"
            return template.format(a="", b=number).strip()
        return template.format(a="x", b=number)
    return card


# The broadcast rule, batch check and field union of the element-wise merge layers, for two inputs.
_TWO_TENSORS = elementwise("Subtract", "", exact_two=True)


def broadcast_two(inputs: list[Shape]) -> Shape:
    """The shape of an element-wise operation on two tensors, as ``keras.ops`` computes it.

    Unlike the merge layers, which line up the batch axes of inputs of different ranks, an
    operation aligns whole shapes from the right, so a lower-rank input's batch axis meets a
    feature axis of the other: Keras declares a shape, and running fails for every batch size
    but 1 and that axis' size. So the ranks must be equal; then the merge layers' rule applies.
    """
    if len(inputs[0]) != len(inputs[1]):
        shown = " and ".join(fmt_shape(s) for s in inputs)
        raise LayerError(f"its inputs {shown} have different ranks; Keras operations align whole shapes, "
                         "so the batch axis of one would meet a feature axis of the other and running fails; "
                         "give both inputs the same rank (e.g. with Reshape)")
    return _TWO_TENSORS.infer({}, inputs)


def _infer(args: Args, inputs: list[Shape]) -> Shape:
    scalar = args["scalar"]
    if scalar is None:
        if len(inputs) != 2:
            raise LayerError(f"combines two tensors, but has {len(inputs)} input(s); connect a second "
                             "input, or set the number it combines its input with (scalar)")
        return broadcast_two(inputs)
    if len(inputs) != 1:
        raise LayerError(f"combines its input with the number {number_text(scalar)}, but has {len(inputs)} "
                         "inputs; disconnect all but one, or clear the number to combine two tensors",
                         [Fix.set_arg("scalar", None)] if len(inputs) == 2 else [])
    return inputs[0]


def _field(args: Args, fields: list[Field | None], inputs: list[Shape], out: Shape) -> Field | None:
    return _TWO_TENSORS.field(args, fields, inputs, out) if len(fields) > 1 else (fields[0] if fields else None)


def _counting_macs(args: Args, inputs: list[Shape], out: Shape) -> int:
    """One multiplication (division) per output value, as the Multiply merge layer counts."""
    dims = out[1:]
    return 0 if any(d is None for d in dims) else prod(dims)  # type: ignore[arg-type]


def _spec(kind: str, summary: str) -> LayerSpec:
    _, function, template = _OPERATIONS[kind]
    macs = _counting_macs if kind in ("OpsMultiply", "OpsDivide") else (lambda a, i, o: 0)
    return LayerSpec(
        kind=kind, group="Operations", summary=f"{summary} (keras.ops.{function}).",
        params=(Param("scalar", ParamKind.OPTIONAL_FLOAT, None,
                      doc="The number combined with the input; None: combine two input tensors."),
                Param("scalar_first", ParamKind.BOOL, False,
                      doc="The number is the first operand (as in 3.0 − x)."),),
        infer=_infer, macs=macs, field=_field, min_inputs=1, max_inputs=2, card=_card(template))


SPECS = [
    _spec("OpsAdd", "Adds a number or a second tensor, value by value"),
    _spec("OpsSubtract", "Subtracts a number or a second tensor, value by value"),
    _spec("OpsMultiply", "Multiplies by a number or a second tensor, value by value"),
    _spec("OpsDivide", "Divides by a number or a second tensor, value by value"),
    _spec("OpsMaximum", "Keeps the larger of the input and a number or a second tensor"),
    _spec("OpsMinimum", "Keeps the smaller of the input and a number or a second tensor"),
]
