"""Pooling layers: local max/average pooling and global pooling, in 1, 2 and 3 dimensions."""

from __future__ import annotations

from ..shapes import Shape, spatial_axes
from .base import Args, Field, LayerSpec, Param, ParamKind, no_field
from .windows import check_rank, p_data_format, p_padding, p_strides, place, window_sizes


def _strides(args: Args) -> tuple[int, ...]:
    return args["strides"] if args["strides"] is not None else args["pool_size"]


def _pool_infer(rank: int, kind: str):
    def infer(args: Args, inputs: list[Shape]) -> Shape:
        shape = check_rank(inputs, rank, kind)
        fmt = args["data_format"]
        _, ch = spatial_axes(len(shape), fmt)
        sizes = window_sizes(shape, fmt, args["pool_size"], _strides(args), args["padding"],
                             what="pool", arg="pool_size")
        return place(shape, fmt, sizes, shape[ch])
    return infer


def _pool_field(args: Args, fields: list[Field | None], inputs: list[Shape], out: Shape) -> Field | None:
    f = fields[0]
    if f is None or len(f.size) != len(args["pool_size"]):
        return None
    return f.window(args["pool_size"], _strides(args))


def _card(args: Args) -> str:
    text = "×".join(map(str, args["pool_size"]))
    strides = _strides(args)
    if tuple(strides) != tuple(args["pool_size"]):
        text += " /" + "×".join(map(str, strides))
    if args["padding"] != "valid":
        text += " " + args["padding"]
    return text


def pool(op: str, rank: int) -> LayerSpec:
    kind = f"{op}Pooling{rank}D"
    word = "largest" if op == "Max" else "mean"
    return LayerSpec(
        kind=kind, group="Pooling",
        summary=f"Keeps the {word} value of each window, shrinking the feature maps.",
        # Keras requires AveragePooling's pool_size but gives MaxPooling's a default.
        params=(Param("pool_size", ParamKind.INTS, (2,) * rank, minimum=1, maximum=4096, length=rank,
                      required=op == "Average", doc="Window size per spatial axis."),
                p_strides(rank, default=None, optional=True), p_padding(), p_data_format()),
        infer=_pool_infer(rank, kind), field=_pool_field, card=_card,
    )


def _global_infer(rank: int, kind: str):
    def infer(args: Args, inputs: list[Shape]) -> Shape:
        shape = check_rank(inputs, rank, kind)
        fmt = args["data_format"]
        _, ch = spatial_axes(len(shape), fmt)
        if args["keepdims"]:
            return place(shape, fmt, [1] * rank, shape[ch])
        return (shape[0], shape[ch])
    return infer


def global_pool(op: str, rank: int) -> LayerSpec:
    word = "maximum" if op == "Max" else "mean"
    return LayerSpec(
        kind=f"Global{op}Pooling{rank}D", group="Pooling",
        summary=f"Reduces each feature map to its {word}: one value per channel.",
        params=(p_data_format(),
                Param("keepdims", ParamKind.BOOL, False,
                      doc="Keep the spatial axes with size 1 instead of dropping them.")),
        infer=_global_infer(rank, f"Global{op}Pooling{rank}D"), field=no_field,
        card=lambda a: "keepdims" if a["keepdims"] else "",
    )


SPECS = ([pool(op, r) for op in ("Max", "Average") for r in (1, 2, 3)]
         + [global_pool(op, r) for op in ("Max", "Average") for r in (1, 2, 3)])
