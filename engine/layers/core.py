"""Input, Dense and the regularisation layers (dropout and noise)."""

from __future__ import annotations

from math import prod

from ..shapes import Shape, fmt_shape
from .base import Args, Field, Fix, LayerError, LayerSpec, Param, ParamKind
from .windows import check_rank, p_activation, p_data_format, p_use_bias


def _input_infer(args: Args, inputs: list[Shape]) -> Shape:
    return (args["batch_size"], *args["shape"])


def _input_field(args: Args, fields: list[Field | None], inputs: list[Shape], out: Shape) -> Field | None:
    # (steps, channels), (h, w, channels) and (d, h, w, channels) inputs start a spatial path.
    rank = len(args["shape"]) - 1
    return Field.identity(rank) if 1 <= rank <= 3 else None


def _dense_infer(args: Args, inputs: list[Shape]) -> Shape:
    shape = inputs[0]
    if len(shape) < 2:
        raise LayerError(f"needs an input with at least one axis besides the batch; got {fmt_shape(shape)}")
    if shape[-1] is None:
        raise LayerError(f"the last axis of its input {fmt_shape(shape)} must be known; "
                         "give the Input a fixed size or Flatten a fixed-size tensor")
    return (*shape[:-1], args["units"])


def _dense_weights(args: Args, inputs: list[Shape], out: Shape) -> tuple[int, int]:
    n_in = inputs[0][-1]
    return n_in * args["units"] + (args["units"] if args["use_bias"] else 0), 0


def _dense_macs(args: Args, inputs: list[Shape], out: Shape) -> int:
    rows = out[1:-1]
    if any(d is None for d in rows):
        return 0
    return prod(rows) * inputs[0][-1] * args["units"]  # type: ignore[operator,arg-type]


def _dense_lint(args: Args, inputs: list[Shape], out: Shape) -> list[tuple[str, tuple[Fix, ...]]]:
    shape = inputs[0]
    if len(shape) < 4:
        return []
    fixes = [Fix.insert("Flatten")]
    if len(shape) in (4, 5):  # images or volumes: the global pooling of that rank also fits
        fixes.append(Fix.insert(f"GlobalAveragePooling{len(shape) - 2}D"))
    first = " or ".join(f.layer for f in fixes if f.layer)
    return [(f"Dense acts on the last axis only, so its {fmt_shape(shape)} input gives "
             f"{fmt_shape(out)}, not one vector per sample; {first} first was probably meant",
             tuple(fixes))]


def _dense_card(args: Args) -> str:
    text = str(args["units"])
    return text if args["activation"] == "linear" else f"{text}, {args['activation']}"


def _rate(doc: str) -> Param:
    return Param("rate", ParamKind.FLOAT, 0.5, minimum=0.0, maximum=1.0, required=True, doc=doc)


def _seed() -> Param:
    return Param("seed", ParamKind.OPTIONAL_INT, None, minimum=0, doc="Random seed (None: different every run).")


def _spatial_dropout_infer(args: Args, inputs: list[Shape]) -> Shape:
    return check_rank(inputs, 2, "SpatialDropout2D")


SPECS = [
    LayerSpec(
        kind="InputLayer", group="Input",
        summary="Where data enters the network: the shape of one sample.",
        params=(Param("shape", ParamKind.SHAPE, (28, 28, 1), minimum=1,
                      doc="Shape of one sample without the batch axis, e.g. (28, 28, 1)."),
                Param("batch_size", ParamKind.OPTIONAL_INT, None, minimum=1,
                      doc="Fixed batch size (None: any).")),
        infer=_input_infer, field=_input_field, min_inputs=0, max_inputs=0,
        card=lambda a: fmt_shape(a["shape"]),
    ),
    LayerSpec(
        kind="Dense", group="Core",
        summary="Fully connected: every output unit is a learned weighted sum of all inputs on the last axis.",
        params=(Param("units", ParamKind.INT, None, minimum=1, maximum=1 << 24, required=True,
                      doc="Number of output units."),
                p_activation(), p_use_bias()),
        infer=_dense_infer, weights=_dense_weights, macs=_dense_macs, lint=_dense_lint,
        card=_dense_card,
    ),
    LayerSpec(
        kind="Dropout", group="Regularization",
        summary="During training, zeroes a random fraction of values to fight overfitting.",
        params=(_rate("Fraction of values dropped during training."),
                Param("noise_shape", ParamKind.ANY, None, doc="Shape of the dropout mask (None: the input's)."),
                _seed()),
        infer=lambda a, i: i[0], card=lambda a: f"rate {a['rate']:g}",
    ),
    LayerSpec(
        kind="SpatialDropout2D", group="Regularization",
        summary="During training, drops whole feature maps instead of single values.",
        params=(_rate("Fraction of feature maps dropped during training."), p_data_format(), _seed()),
        infer=_spatial_dropout_infer, card=lambda a: f"rate {a['rate']:g}",
    ),
    LayerSpec(
        kind="GaussianNoise", group="Regularization",
        summary="During training, adds zero-mean Gaussian noise to every value.",
        params=(Param("stddev", ParamKind.FLOAT, 0.1, minimum=0.0, maximum=1.0, required=True,
                      doc="Standard deviation of the noise."), _seed()),
        infer=lambda a, i: i[0], card=lambda a: f"σ {a['stddev']:g}",
    ),
]

