"""Layers that move values around without learning: padding, cropping, up-sampling, flatten,
reshape and permute."""

from __future__ import annotations

from math import prod

from ..shapes import Dim, Shape, fmt_shape, fmt_size, spatial_axes
from .base import Args, Field, Fix, LayerError, LayerSpec, Param, ParamKind, no_field
from .windows import check_rank, p_data_format, place

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5", "area")


def _spatial(shape: Shape, fmt: str) -> tuple[list[Dim], Dim]:
    axes, ch = spatial_axes(len(shape), fmt)
    return [shape[a] for a in axes], shape[ch]


def _padding_infer(args: Args, inputs: list[Shape]) -> Shape:
    shape = check_rank(inputs, 2, "ZeroPadding2D")
    (top, bottom), (left, right) = args["padding"]
    (h, w), c = _spatial(shape, args["data_format"])
    grow = lambda n, a, b: None if n is None else n + a + b  # noqa: E731
    return place(shape, args["data_format"], [grow(h, top, bottom), grow(w, left, right)], c)


def _cropping_infer(args: Args, inputs: list[Shape]) -> Shape:
    shape = check_rank(inputs, 2, "Cropping2D")
    (top, bottom), (left, right) = args["cropping"]
    (h, w), c = _spatial(shape, args["data_format"])
    for size, cut, axis in ((h, top + bottom, "height"), (w, left + right, "width")):
        if size is not None and cut >= size:
            raise LayerError(f"crops {cut} of the {size} rows along {axis} (input {fmt_size([h, w])}), "
                             f"leaving nothing; crop fewer than {size}")
    shrink = lambda n, a, b: None if n is None else n - a - b  # noqa: E731
    return place(shape, args["data_format"], [shrink(h, top, bottom), shrink(w, left, right)], c)


def _upsampling_infer(args: Args, inputs: list[Shape]) -> Shape:
    shape = check_rank(inputs, 2, "UpSampling2D")
    (h, w), c = _spatial(shape, args["data_format"])
    sh, sw = args["size"]
    return place(shape, args["data_format"],
                 [None if h is None else h * sh, None if w is None else w * sw], c)


def _upsampling_field(args: Args, fields: list[Field | None], inputs: list[Shape], out: Shape) -> Field | None:
    f = fields[0]
    return None if f is None or len(f.size) != 2 else f.upsample(args["size"])


def _flatten_infer(args: Args, inputs: list[Shape]) -> Shape:
    dims = inputs[0][1:]
    if not dims:
        return (inputs[0][0], 1)
    if any(d is None for d in dims):
        return (inputs[0][0], None)
    return (inputs[0][0], prod(dims))  # type: ignore[arg-type]


def _reshape_infer(args: Args, inputs: list[Shape]) -> Shape:
    target = list(args["target_shape"])
    shape = inputs[0]
    unknown = [i for i, d in enumerate(target) if d == -1]
    if len(unknown) > 1:
        raise LayerError(f"target_shape {tuple(target)} has more than one -1; only one axis can be inferred")
    if any(d is not None and d != -1 and d <= 0 for d in target):
        raise LayerError(f"target_shape {tuple(target)} must hold positive sizes (or one -1)")
    dims = shape[1:]
    known_in = None if any(d is None for d in dims) else prod(dims)  # type: ignore[arg-type]
    fixed = prod(d for d in target if d != -1)
    if known_in is None:
        if unknown:
            target[unknown[0]] = None
        return (shape[0], *target)
    if unknown:
        if fixed == 0 or known_in % fixed:
            raise LayerError(f"cannot reshape {fmt_shape(shape)} ({known_in} values) into "
                             f"{tuple(target)}: {known_in} is not divisible by {fixed}")
        target[unknown[0]] = known_in // fixed
    elif fixed != known_in:
        raise LayerError(f"cannot reshape {fmt_shape(shape)} ({known_in} values) into "
                         f"{tuple(target)} ({fixed} values); the sizes must multiply to {known_in} "
                         "(use -1 for one axis to infer it)",
                         [Fix.set_arg("target_shape", (-1,))])
    return (shape[0], *target)


def _permute_infer(args: Args, inputs: list[Shape]) -> Shape:
    dims = args["dims"]
    shape = inputs[0]
    if sorted(dims) != list(range(1, len(dims) + 1)):
        raise LayerError(f"dims {dims} must be a permutation of 1…{len(dims)} (axis 0 is the batch)")
    if len(dims) != len(shape) - 1:
        raise LayerError(f"dims {dims} permute {len(dims)} axes but its input {fmt_shape(shape)} has "
                         f"{len(shape) - 1}; give one index per non-batch axis")
    return (shape[0], *(shape[d] for d in dims))


SPECS = [
    LayerSpec(
        kind="ZeroPadding2D", group="Reshaping",
        summary="Adds rows and columns of zeros around each feature map.",
        params=(Param("padding", ParamKind.PADDING2D, ((1, 1), (1, 1)),
                      doc="n, (rows, columns) or ((top, bottom), (left, right))."), p_data_format()),
        infer=_padding_infer, card=lambda a: f"pad {a['padding'][0]}, {a['padding'][1]}",
    ),
    LayerSpec(
        kind="Cropping2D", group="Reshaping",
        summary="Cuts rows and columns off the borders of each feature map.",
        params=(Param("cropping", ParamKind.PADDING2D, ((0, 0), (0, 0)),
                      doc="n, (rows, columns) or ((top, bottom), (left, right))."), p_data_format()),
        infer=_cropping_infer, card=lambda a: f"crop {a['cropping'][0]}, {a['cropping'][1]}",
    ),
    LayerSpec(
        kind="UpSampling2D", group="Reshaping",
        summary="Enlarges feature maps by repeating (or interpolating) rows and columns.",
        params=(Param("size", ParamKind.INTS, (2, 2), minimum=1, maximum=4096, length=2,
                      doc="Factor per axis."), p_data_format(),
                Param("interpolation", ParamKind.CHOICE, "nearest", choices=_INTERPOLATIONS,
                      doc="How new pixels are filled.")),
        infer=_upsampling_infer, field=_upsampling_field,
        card=lambda a: f"×{a['size'][0]}" if a["size"][0] == a["size"][1] else f"×{a['size'][0]}×{a['size'][1]}",
    ),
    LayerSpec(
        kind="Flatten", group="Reshaping",
        summary="Unrolls each sample into one long vector, e.g. before Dense layers.",
        params=(p_data_format(),), infer=_flatten_infer, field=no_field,
    ),
    LayerSpec(
        kind="Reshape", group="Reshaping",
        summary="Gives each sample a new shape with the same number of values (-1 infers one axis).",
        params=(Param("target_shape", ParamKind.SHAPE, None, minimum=-1, required=True,
                      doc="New shape without the batch axis; one entry may be -1."),),
        infer=_reshape_infer, field=no_field, card=lambda a: fmt_shape(a["target_shape"]),
    ),
    LayerSpec(
        kind="Permute", group="Reshaping",
        summary="Reorders the axes of each sample (1-based, the batch axis stays first).",
        params=(Param("dims", ParamKind.AXES, None, required=True,
                      doc="New order of the non-batch axes, counted from 1."),),
        infer=_permute_infer, field=no_field, card=lambda a: str(tuple(a["dims"])),
    ),
]

