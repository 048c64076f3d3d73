"""Preprocessing and augmentation layers. Augmentation acts only while training, as in Keras."""

from __future__ import annotations

from fractions import Fraction
from math import prod

from ..shapes import Shape, fmt_shape, spatial_axes
from .base import Args, Field, Fix, LayerError, LayerSpec, Param, ParamKind
from .windows import check_rank, p_data_format, place

_FILL = ("reflect", "wrap", "constant", "nearest", "crop")
_INTERP = ("nearest", "bilinear")


def _same(args: Args, inputs: list[Shape]) -> Shape:
    return inputs[0]


def _image(kind: str):
    def infer(args: Args, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        if len(shape) != 4:
            raise LayerError(f"works on images (height, width, channels); its input is {fmt_shape(shape)}")
        return shape
    return infer


def _resizing_infer(args: Args, inputs: list[Shape]) -> Shape:
    shape = check_rank(inputs, 2, "Resizing")
    if args["crop_to_aspect_ratio"] and args["pad_to_aspect_ratio"]:
        raise LayerError("crop_to_aspect_ratio and pad_to_aspect_ratio cannot both be true "
                         "(Keras refuses it when run); keep one of them",
                         [Fix.set_arg("pad_to_aspect_ratio", False), Fix.set_arg("crop_to_aspect_ratio", False)])
    fmt = args["data_format"]
    _, ch = spatial_axes(4, fmt)
    return place(shape, fmt, [args["height"], args["width"]], shape[ch])


def _resizing_field(args: Args, fields: list[Field | None], inputs: list[Shape], out: Shape) -> Field | None:
    f = fields[0]
    if f is None or len(f.size) != 2:
        return None
    axes, _ = spatial_axes(4, args["data_format"])
    sizes = [inputs[0][a] for a in axes]
    if any(s is None for s in sizes):
        return None
    return f.upsample([Fraction(o, s) for o, s in zip((args["height"], args["width"]), sizes)])


def _elementwise_macs(args: Args, inputs: list[Shape], out: Shape) -> int:
    dims = out[1:]
    return 0 if any(d is None for d in dims) else prod(dims)  # type: ignore[arg-type]


def _factor(doc: str, default: object = 0.1) -> Param:
    return Param("factor", ParamKind.FACTOR, default, required=True, doc=doc)


_SEED = Param("seed", ParamKind.OPTIONAL_INT, None, minimum=0, doc="Random seed (None: different every run).")
_VALUE_RANGE = Param("value_range", ParamKind.PAIR, (0.0, 255.0), doc="The range of the input pixel values.")


def _geometric(kind: str, summary: str, factors: tuple[Param, ...]) -> LayerSpec:
    return LayerSpec(
        kind=kind, group="Preprocessing & Augmentation", summary=summary,
        params=factors + (Param("fill_mode", ParamKind.CHOICE, "reflect", choices=_FILL,
                                doc="How new pixels are filled."),
                          Param("interpolation", ParamKind.CHOICE, "bilinear", choices=_INTERP, doc="Resampling."),
                          _SEED, Param("fill_value", ParamKind.FLOAT, 0.0, doc="Value for fill_mode='constant'."),
                          p_data_format()),
        infer=_image(kind),
    )


SPECS = [
    LayerSpec(
        kind="Rescaling", group="Preprocessing & Augmentation",
        summary="Multiplies every value by scale and adds offset, e.g. 1/255 to map raw 0–255 pixels to "
                "[0, 1] (Convas's data is in [0, 1] unless its pixel range is set to 0–255).",
        params=(Param("scale", ParamKind.FLOAT, 1 / 255, required=True, doc="Multiplier."),
                Param("offset", ParamKind.FLOAT, 0.0, doc="Added after scaling.")),
        infer=_same, macs=_elementwise_macs, card=lambda a: f"×{a['scale']:.4g} + {a['offset']:g}",
    ),
    LayerSpec(
        kind="Resizing", group="Preprocessing & Augmentation",
        summary="Resizes images to a fixed height and width.",
        params=(Param("height", ParamKind.INT, 32, minimum=1, maximum=1 << 16, required=True,
                      doc="Output height."),
                Param("width", ParamKind.INT, 32, minimum=1, maximum=1 << 16, required=True,
                      doc="Output width."),
                Param("interpolation", ParamKind.CHOICE, "bilinear",
                      choices=("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5", "area"), doc="Resampling."),
                Param("crop_to_aspect_ratio", ParamKind.BOOL, False,
                      doc="Crop instead of distorting the aspect ratio."),
                Param("pad_to_aspect_ratio", ParamKind.BOOL, False, doc="Pad instead of distorting the aspect ratio."),
                Param("fill_mode", ParamKind.CHOICE, "constant", choices=("constant",), doc="Fill for padding."),
                Param("fill_value", ParamKind.FLOAT, 0.0, doc="Padding value."),
                p_data_format()),
        infer=_resizing_infer, field=_resizing_field, card=lambda a: f"{a['height']}×{a['width']}",
    ),
    LayerSpec(
        kind="RandomFlip", group="Preprocessing & Augmentation",
        summary="During training, flips images horizontally and/or vertically at random.",
        params=(Param("mode", ParamKind.CHOICE, "horizontal_and_vertical",
                      choices=("horizontal", "vertical", "horizontal_and_vertical"), doc="Which flips."),
                _SEED),
        infer=_image("RandomFlip"), card=lambda a: a["mode"].replace("_and_", "+"),
    ),
    _geometric("RandomRotation", "During training, rotates images by a random angle (factor × 2π).",
               (_factor("Rotation range as a fraction of a full turn: f or (low, high)."),)),
    _geometric("RandomZoom", "During training, zooms images in or out at random.",
               (Param("height_factor", ParamKind.FACTOR, 0.1, required=True,
                      doc="Zoom range for height: f or (low, high)."),
                Param("width_factor", ParamKind.FACTOR, None, doc="Zoom range for width (None: same as height)."))),
    _geometric("RandomTranslation", "During training, shifts images by a random offset.",
               (Param("height_factor", ParamKind.FACTOR, 0.1, required=True,
                      doc="Vertical shift as a fraction of height."),
                Param("width_factor", ParamKind.FACTOR, 0.1, required=True,
                      doc="Horizontal shift as a fraction of width."))),
    LayerSpec(
        kind="RandomContrast", group="Preprocessing & Augmentation",
        summary="During training, changes image contrast by a random factor.",
        params=(_factor("Contrast range: f or (low, high)."), _VALUE_RANGE, _SEED),
        infer=_image("RandomContrast"),
    ),
    LayerSpec(
        kind="RandomBrightness", group="Preprocessing & Augmentation",
        summary="During training, brightens or darkens images by a random amount.",
        params=(_factor("Brightness range: f or (low, high), as a fraction of value_range."), _VALUE_RANGE, _SEED),
        infer=_image("RandomBrightness"),
    ),
]
