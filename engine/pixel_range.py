"""The pixel range of the training data, and the rules that keep a design's preprocessing in step
with it.

Convas's datasets deliver pixels in [0, 1] by default, while Keras's tutorials (and
``image_dataset_from_directory``) deliver raw 0–255 values and start their models with
``Rescaling(1/255)``. Mixing the two conventions is silent in Keras: a ``Rescaling(1/255)`` on
[0, 1] data squeezes every pixel into [0, 0.004] and training reaches far lower accuracy; a
``RandomBrightness(0.2)`` whose ``value_range`` says 0–255 brightens [0, 1] pixels by up to 51.
So the range is a saved setting of the data (:class:`PixelRange`), the datasets deliver it
(:func:`deliver`, called once, by :func:`engine.data_source.load_dataset`), and the analysis
follows it through the design (:func:`range_problems`), warning where a layer expects the
other range, with one-click fixes.

Pure arithmetic over the analysis's normalised arguments: nothing heavy is imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from .design import Design
from .layers import CATALOGUE, Fix, FixAction


class PixelRange(StrEnum):
    """The values the datasets deliver for an image's pixels (a ``str`` too: its file text)."""

    UNIT = "0-1"    # floats in [0, 1]: Convas's default
    RAW = "0-255"   # raw byte values, Keras's ``image_dataset_from_directory`` convention

    @property
    def scale(self) -> float:
        """What [0, 1] pixels are multiplied by to deliver this range."""
        return 1.0 if self is PixelRange.UNIT else 255.0

    @property
    def value_range(self) -> tuple[float, float]:
        """The range as Keras's augmentation layers take it (``value_range=``)."""
        return (0.0, self.scale)

    @property
    def label(self) -> str:
        return "[0, 1]" if self is PixelRange.UNIT else "0–255 (raw)"

    @property
    def other(self) -> PixelRange:
        return PixelRange.RAW if self is PixelRange.UNIT else PixelRange.UNIT

    @classmethod
    def parse(cls, value: Any) -> PixelRange:
        """A range from its text (``0-1``, ``0-255``; also ``[0, 1]``/``[0, 255]`` as saved by
        :attr:`value_range`); :class:`ValueError` naming the choices otherwise."""
        if isinstance(value, PixelRange):
            return value
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            for member in cls:
                if tuple(float(v) for v in value) == member.value_range:
                    return member
        if isinstance(value, str):
            text = value.strip().replace("–", "-").replace(" ", "").lower()
            text = {"0..1": "0-1", "0..255": "0-255", "[0,1]": "0-1", "[0,255]": "0-255",
                    "unit": "0-1", "raw": "0-255"}.get(text, text)
            for member in cls:
                if text == member.value:
                    return member
        raise ValueError(f"the pixel range must be 0-1 or 0-255, not {value!r}")


DEFAULT = PixelRange.UNIT


def deliver(dataset: Any, pixel_range: PixelRange) -> Any:
    """``dataset`` (an :class:`engine.datasets.Dataset`) with its images in ``pixel_range``: the
    one place where the pixels' scale is chosen. No image is copied: every split multiplies as
    it converts or decodes a batch (``Split.pixel_scale``), so a file's array stays as stored.
    The same dataset when it is in range."""
    if dataset.pixel_range is pixel_range:
        return dataset
    factor = pixel_range.scale / dataset.pixel_range.scale

    def scaled(split: Any) -> Any:
        return None if split is None else replace(split, pixel_scale=split.pixel_scale * factor)

    return replace(dataset, train=scaled(dataset.train), validation=scaled(dataset.validation),
                   test=scaled(dataset.test), pixel_range=pixel_range)


def metadata(pixel_range: PixelRange) -> dict[str, Any]:
    """The entry a ``.keras`` file's Convas metadata (``convas.json``) records the range its
    model was trained on with: ``{"input_range": [0, 1]}`` or ``[0, 255]``."""
    low, high = pixel_range.value_range
    return {"input_range": [int(low), int(high)]}


def of_metadata(meta: Mapping[str, Any] | None) -> PixelRange | None:
    """The input range recorded in a ``.keras`` file's Convas metadata (``input_range``), or None."""
    if not meta or "input_range" not in meta:
        return None
    try:
        return PixelRange.parse(meta["input_range"])
    except ValueError:
        return None


def of_project(project: Mapping[str, Any] | None) -> PixelRange:
    """The data's range saved in a project document's training settings (the default when none)."""
    training = project.get("training") if project else None
    if isinstance(training, Mapping) and "pixel_range" in training:
        try:
            return PixelRange.parse(training["pixel_range"])
        except ValueError:
            pass
    return DEFAULT


# --------------------------------------------------------------------------------------------
# Starting arguments for the palette

def starting_args(kind: str, pixel_range: PixelRange) -> dict[str, Any]:
    """Arguments that fit data in ``pixel_range`` for a layer dropped from the palette: a
    ``Rescaling`` maps the data to [0, 1] (scale 1/255 for raw data, 1.0 otherwise) and an
    augmentation's ``value_range`` is the data's. Empty for layers the range does not concern."""
    spec = CATALOGUE.get(kind)
    if spec is None:
        return {}
    args: dict[str, Any] = {}
    if kind == "Rescaling":
        args["scale"] = 1 / 255 if pixel_range is PixelRange.RAW else 1.0
    if any(p.name == "value_range" for p in spec.params):
        args["value_range"] = pixel_range.value_range
    return args


# --------------------------------------------------------------------------------------------
# The rules

# Layers that hand on the values they get (same range): shape changes, pooling, dropout and the
# augmentations that move pixels around. Rescaling transforms the range; the normalisers make it
# irrelevant; anything else computes new values, so the pixel range ends there.
_KEEPS_RANGE = {
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "Resizing",
    "RandomBrightness", "RandomContrast",
    "Cropping2D", "ZeroPadding2D", "UpSampling2D", "Reshape", "Permute", "Flatten",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "Dropout", "SpatialDropout2D", "GaussianNoise",
}
_NORMALISERS = {"Normalization", "BatchNormalization", "LayerNormalization"}
# A Rescaling meant for raw pixels multiplies by 1/255 (to [0, 1]) or 1/127.5 (to [-1, 1] with
# offset −1): anything at most this small is taken for one.
_RAW_SCALE_LIMIT = 1 / 100
_TOLERANCE = 0.01  # of the range's span, when comparing ranges

Range = tuple[float, float]


@dataclass(frozen=True)
class RangeProblem:
    """A layer that expects pixels in another range than it gets: the analysis reports it as a
    warning of ``node`` with ``fixes``."""

    node: str
    message: str
    fixes: tuple[Fix, ...]


def switch_data_fix(pixel_range: PixelRange) -> Fix:
    """The fix that changes the data (not the design): deliver ``pixel_range`` instead."""
    return Fix(f"Switch the data to {pixel_range.label}", FixAction.SET_PIXEL_RANGE, value=pixel_range)


def _same_range(a: Range, b: Range) -> bool:
    span = max(abs(a[1] - a[0]), abs(b[1] - b[0]), 1e-12)
    return abs(a[0] - b[0]) <= _TOLERANCE * span and abs(a[1] - b[1]) <= _TOLERANCE * span


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _fmt_range(r: Range) -> str:
    return f"[{_fmt(r[0])}, {_fmt(r[1])}]"


def range_problems(design: Design, args_of: Mapping[str, Mapping[str, Any]],
                   order: Iterable[str], data: PixelRange) -> list[RangeProblem]:
    """Where ``design`` treats pixels as if they were in another range than ``data``.

    ``args_of`` holds each valid layer's normalised arguments and ``order`` the layers in
    execution order (both from the analysis). The data's range is followed from every input
    through the layers that keep it (:data:`_KEEPS_RANGE`) and through ``Rescaling``, which maps
    it; it is lost at any other layer. Three rules:

    * a ``Rescaling`` that shrinks pixels already in [0, 1] as if they were 0–255;
    * an augmentation whose ``value_range`` is not the range it gets;
    * raw 0–255 pixels reaching a computing layer (a convolution, Dense, …) unscaled.
    """
    seen: dict[str, Range | None] = {}
    problems: list[RangeProblem] = []
    for name in order:
        node = design.nodes.get(name)
        if node is None:
            continue
        if node.kind == "InputLayer":
            seen[name] = data.value_range
            continue
        args = args_of.get(name)
        ranges = {seen.get(ref.node) for ref in node.inputs}
        incoming = ranges.pop() if len(ranges) == 1 else None
        if args is None or incoming is None or node.kind in _NORMALISERS:
            seen[name] = None
            continue
        if node.kind == "Rescaling":
            flagged = _rescaling(name, args, incoming, data)
            problems += flagged
            scale, offset = float(args["scale"]), float(args["offset"])
            ends = sorted((incoming[0] * scale + offset, incoming[1] * scale + offset))
            # After a flagged Rescaling the range is wrong anyway: one warning, not one per layer.
            seen[name] = None if flagged else (ends[0], ends[1])
            continue
        if "value_range" in args:
            problems += _value_range(name, node.kind, args, incoming, data)
        if node.kind in _KEEPS_RANGE:
            seen[name] = incoming
            continue
        seen[name] = None
        if data is PixelRange.RAW and _same_range(incoming, data.value_range):
            problems.append(RangeProblem(
                name, f"gets raw pixels (0–255): the data is delivered as 0–255 and nothing before "
                f"{name} rescales it, so training starts from inputs 255× larger than Keras's "
                f"initial weights expect; insert Rescaling(scale=1/255) before it or switch the "
                f"data to [0, 1]",
                (Fix("Insert Rescaling(scale=1/255)", FixAction.INSERT_BEFORE, layer="Rescaling",
                     layer_args={"scale": 1 / 255, "offset": 0.0}),
                 switch_data_fix(PixelRange.UNIT))))
    return problems


def _rescaling(name: str, args: Mapping[str, Any], incoming: Range, data: PixelRange) -> list[RangeProblem]:
    """A Rescaling meant for 0–255 pixels that gets pixels in [0, 1]."""
    scale, offset = float(args["scale"]), float(args["offset"])
    if not (0 < abs(scale) <= _RAW_SCALE_LIMIT and _same_range(incoming, PixelRange.UNIT.value_range)):
        return []
    out = sorted((incoming[0] * scale + offset, incoming[1] * scale + offset))
    meant = sorted((offset, 255 * scale + offset))
    fixes: list[Fix] = []
    if offset == 0 and abs(255 * scale - 1) <= _TOLERANCE:
        fixes.append(Fix(f"Remove {name} (the data is in [0, 1] already)", FixAction.REMOVE_LAYER))
    else:
        fixes.append(Fix.set_arg("scale", round(255 * scale, 6)))
    if data is PixelRange.UNIT:
        fixes.append(switch_data_fix(PixelRange.RAW))
    return [RangeProblem(
        name, f"rescales pixels that are already in [0, 1] to {_fmt_range((out[0], out[1]))} "
        f"(scale {_fmt(scale)} is meant for 0–255 pixels, to give {_fmt_range((meant[0], meant[1]))}): "
        f"the data is delivered in [0, 1]; remove the rescaling, set scale={_fmt(255 * scale)}, "
        f"or switch the data to 0–255",
        tuple(fixes))]


def _value_range(name: str, kind: str, args: Mapping[str, Any], incoming: Range,
                 data: PixelRange) -> list[RangeProblem]:
    """An augmentation whose ``value_range`` is not the range of the pixels it gets."""
    value_range = tuple(float(v) for v in args["value_range"])
    if len(value_range) != 2 or _same_range(incoming, (value_range[0], value_range[1])):
        return []
    target = (round(incoming[0], 6), round(incoming[1], 6))
    fixes = [Fix.set_arg("value_range", target)]
    straight = _same_range(incoming, data.value_range)
    if straight and _same_range((value_range[0], value_range[1]), data.other.value_range):
        fixes.append(switch_data_fix(data.other))
    effect = ""
    if kind == "RandomBrightness":
        factor = args.get("factor")
        high = max(abs(f) for f in factor) if isinstance(factor, tuple) else abs(float(factor or 0))
        shift = high * (value_range[1] - value_range[0])
        effect = f", so it shifts them by up to ±{_fmt(shift)}"
    return [RangeProblem(
        name, f"value_range={_fmt_range((value_range[0], value_range[1]))} but its input pixels are in "
        f"{_fmt_range(incoming)}{effect}; set value_range={_fmt_range(target)}",
        tuple(fixes))]
