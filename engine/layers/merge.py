"""Merge layers: element-wise Add, Subtract, Multiply, Average, Maximum, Minimum; Concatenate."""

from __future__ import annotations

from math import prod

from ..shapes import Dim, Shape, fmt_shape
from .base import Args, Field, Fix, LayerError, LayerSpec, Param


def _broadcast(a: tuple[Dim, ...], b: tuple[Dim, ...], kind: str, all_shapes: list[Shape]) -> tuple[Dim, ...]:
    """Keras's element-wise rule: align from the right; 1 stretches; None is unknown."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return a
    out = list(a[: len(a) - len(b)])
    for i, j in zip(a[len(a) - len(b):], b):
        if i is None or j is None:
            out.append(None)
        elif i == 1:
            out.append(j)
        elif j == 1 or i == j:
            out.append(i)
        else:
            shown = " and ".join(fmt_shape(s) for s in all_shapes)
            raise LayerError(f"cannot combine inputs of shapes {shown}: {i} ≠ {j}; make the shapes "
                             "match, e.g. with a 1×1 Conv2D projection or pooling on one branch",
                             _projection_fixes(all_shapes))
    return tuple(out)


def _projection_fixes(shapes: list[Shape]) -> tuple[Fix, ...]:
    """A 1×1 Conv2D that gives a branch the channels of the first input, when only channels differ."""
    first = shapes[0]
    if len(first) != 4 or first[-1] is None:
        return ()
    fixes = []
    for n, s in enumerate(shapes[1:], start=1):
        if len(s) == 4 and s[1:3] == first[1:3] and s[-1] != first[-1]:
            fixes.append(Fix.insert("Conv2D", input_index=n, filters=first[-1], kernel_size=(1, 1)))
    return tuple(fixes)


def _elementwise_infer(kind: str, exact_two: bool = False):
    def infer(args: Args, inputs: list[Shape]) -> Shape:
        if exact_two and len(inputs) != 2:
            raise LayerError(f"takes exactly 2 inputs (first minus second); it has {len(inputs)}")
        batches = {s[0] for s in inputs} - {None}
        if len(batches) > 1:
            raise LayerError(f"its inputs have different batch sizes {sorted(batches)}")
        out: tuple[Dim, ...] = tuple(inputs[0][1:])
        for s in inputs[1:]:
            out = _broadcast(out, tuple(s[1:]), kind, inputs)
        batch = next(iter(batches)) if len(batches) == 1 else None
        return (batch, *out)
    return infer


def _elementwise_macs(args: Args, inputs: list[Shape], out: Shape) -> int:
    dims = out[1:]
    return 0 if any(d is None for d in dims) else prod(dims) * (len(inputs) - 1)  # type: ignore[arg-type]


def _merge_field(args: Args, fields: list[Field | None], inputs: list[Shape], out: Shape) -> Field | None:
    """The union of what the branches see: the largest field and stride per axis."""
    if not fields or any(f is None for f in fields) or len({len(f.size) for f in fields}) != 1:  # type: ignore[union-attr]
        return None
    return Field(tuple(max(sizes) for sizes in zip(*(f.size for f in fields))),  # type: ignore[union-attr]
                 tuple(max(jumps) for jumps in zip(*(f.jump for f in fields))))  # type: ignore[union-attr]


def _single_input_lint(args: Args, inputs: list[Shape], out: Shape) -> list[tuple[str, tuple[Fix, ...]]]:
    if len(inputs) == 1:
        return [("has a single input, which it passes through unchanged; connect a second input", ())]
    return []


def _concat_infer(args: Args, inputs: list[Shape]) -> Shape:
    rank = len(inputs[0])
    axis = args["axis"]
    if any(len(s) != rank for s in inputs):
        shown = ", ".join(fmt_shape(s) for s in inputs)
        raise LayerError(f"its inputs {shown} have different ranks; Concatenate needs tensors of the same rank")
    if not -rank <= axis < rank:
        raise LayerError(f"axis {axis} is out of range for inputs of rank {rank}")
    ax = axis % rank
    if ax == 0:
        raise LayerError("axis 0 is the batch axis; concatenate along a feature axis such as -1",
                         [Fix.set_arg("axis", -1)])
    for i in range(1, rank):
        if i == ax:
            continue
        known = {s[i] for s in inputs} - {None}
        if len(known) > 1:
            shown = " and ".join(fmt_shape(s) for s in inputs)
            raise LayerError(f"inputs {shown} differ on axis {i} ({' vs '.join(map(str, sorted(known)))}); "
                             f"all axes except the concatenation axis {axis} must match — resize a "
                             "branch (pooling, strides, UpSampling2D or Cropping2D)")
    out = list(inputs[0])
    total: Dim = 0
    for s in inputs:
        total = None if total is None or s[ax] is None else total + s[ax]
    out[ax] = total
    return tuple(out)


def elementwise(kind: str, summary: str, exact_two: bool = False) -> LayerSpec:
    macs = _elementwise_macs if kind in ("Multiply", "Average") else (lambda a, i, o: 0)
    return LayerSpec(kind=kind, group="Merge", summary=summary, params=(),
                     infer=_elementwise_infer(kind, exact_two), macs=macs, field=_merge_field,
                     min_inputs=2 if exact_two else 1, max_inputs=2 if exact_two else None,
                     lint=None if exact_two else _single_input_lint)


SPECS = [
    elementwise("Add", "Adds its inputs value by value (e.g. a residual connection)."),
    elementwise("Subtract", "Subtracts its second input from its first, value by value.", exact_two=True),
    elementwise("Multiply", "Multiplies its inputs value by value (e.g. attention gating)."),
    elementwise("Average", "Averages its inputs value by value."),
    elementwise("Maximum", "Keeps the largest of its inputs, value by value."),
    elementwise("Minimum", "Keeps the smallest of its inputs, value by value."),
    LayerSpec(
        kind="Concatenate", group="Merge",
        summary="Joins its inputs along an axis (by default the channels).",
        params=(Param("axis", "int", -1, shape_relevant=True, doc="The axis joined along."),),
        infer=_concat_infer, field=_merge_field, min_inputs=1, max_inputs=None,
        lint=_single_input_lint, card=lambda a: f"axis {a['axis']}",
    ),
]
