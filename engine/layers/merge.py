"""Merge layers: element-wise Add, Subtract, Multiply, Average, Maximum, Minimum; Concatenate."""

from __future__ import annotations

from math import prod

from ..shapes import Dim, Shape, fmt_shape, fmt_size
from .base import Args, Field, Fix, LayerError, LayerSpec, Param, ParamKind


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
            advice, fixes = _matching_fixes(all_shapes, channels_too=True)
            raise LayerError(f"cannot combine inputs of shapes {shown}: {i} ≠ {j}; {advice}", fixes)
    return tuple(out)


# What to say when no resizing layer fits exactly: cropping or padding works for any two sizes.
# (When a window layer up a branch shrank it, the analysis offers its padding='same' as a fix.)
_RESIZE_BY_HAND = "make the branches the same size, e.g. with Cropping2D or ZeroPadding2D on one of them"


def _matching_fixes(shapes: list[Shape], channels_too: bool) -> tuple[str, tuple[Fix, ...]]:
    """Advice and one-click fixes that bring every input to the size of the smallest one.

    For images (batch, height, width, channels): an input whose height and width are whole
    multiples of the smallest input's gets pooling, or a strided 1×1 Conv2D that also sets its
    channels (``channels_too``, the element-wise merges); an input of the same size but other
    channels gets a 1×1 Conv2D projection. For vectors, a Dense layer. Each fix is exact: after
    it, that input has the reference shape. Padding fixes on the branches themselves need the
    graph; the analysis adds those."""
    known = all(all(d is not None for d in s[1:]) for s in shapes)
    if not known or len({len(s) for s in shapes}) != 1:
        return "make the shapes of the inputs match", ()
    rank = len(shapes[0])
    if rank == 2 and channels_too:
        units = shapes[0][-1]
        dense = tuple(Fix.insert("Dense", input_index=n, units=units)
                      for n, s in enumerate(shapes) if s[-1] != units)
        return f"give every input {units} values, e.g. with a Dense layer on the others", dense
    if rank != 4:
        return "make the shapes of the inputs match", ()
    area = [s[1] * s[2] for s in shapes]  # type: ignore[operator]
    ref_i = min(range(len(shapes)), key=lambda n: (area[n], n))
    ref = shapes[ref_i]
    fixes: list[Fix] = []
    hints: list[str] = []
    for n, s in enumerate(shapes):
        if n == ref_i:
            continue
        same_size = s[1:3] == ref[1:3]
        same_channels = s[3] == ref[3] or not channels_too
        if same_size and same_channels:
            continue
        if same_size:
            fixes.append(Fix.insert("Conv2D", input_index=n, filters=ref[3], kernel_size=(1, 1)))
            hints.append(f"project input {n + 1} to {ref[3]} channels with a 1×1 Conv2D")
            continue
        if s[1] % ref[1] or s[2] % ref[2] or s[1] < ref[1] or s[2] < ref[2]:  # type: ignore[operator]
            continue
        ratio = (s[1] // ref[1], s[2] // ref[2])  # type: ignore[operator]
        if same_channels:
            fixes.append(Fix.insert("MaxPooling2D", input_index=n, pool_size=ratio))
            hints.append(f"shrink input {n + 1} with MaxPooling2D(pool_size={ratio})")
        if channels_too:
            fixes.append(Fix.insert("Conv2D", input_index=n, filters=ref[3], kernel_size=(1, 1), strides=ratio))
            hints.append(f"{'or ' if same_channels else ''}give input {n + 1} the size {fmt_size(ref[1:3])} "
                         f"and {ref[3]} channels with a 1×1 Conv2D of strides {ratio}")
    if not hints:
        return _RESIZE_BY_HAND, ()
    return "; ".join(hints), tuple(fixes)


def _elementwise_infer(kind: str, exact_two: bool = False):
    def infer(args: Args, inputs: list[Shape]) -> Shape:
        if exact_two and len(inputs) != 2:
            raise LayerError(f"takes exactly 2 inputs (first minus second); it has {len(inputs)}")
        batches = {s[0] for s in inputs if s[0] is not None}
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
        known = {d for s in inputs if (d := s[i]) is not None}
        if len(known) > 1:
            shown = " and ".join(fmt_shape(s) for s in inputs)
            advice, fixes = (_matching_fixes(inputs, channels_too=False) if rank == 4 and ax == 3
                             else ("make those axes match", ()))
            raise LayerError(f"inputs {shown} differ on axis {i} ({' vs '.join(map(str, sorted(known)))}); "
                             f"all axes except the concatenation axis {axis} must match: {advice}", fixes)
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
        params=(Param("axis", ParamKind.INT, -1, doc="The axis joined along."),),
        infer=_concat_infer, field=_merge_field, min_inputs=1, max_inputs=None,
        lint=_single_input_lint, card=lambda a: f"axis {a['axis']}",
    ),
]
