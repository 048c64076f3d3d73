"""BatchNormalization and LayerNormalization."""

from __future__ import annotations

from math import prod

from ..shapes import Shape, fmt_shape
from .base import Args, Fix, LayerError, LayerSpec, Param


def _axes(axis: int | tuple[int, ...], shape: Shape) -> list[int]:
    """Resolve (possibly negative) axes against ``shape``, each at most once."""
    rank = len(shape)
    out = []
    for a in (axis if isinstance(axis, tuple) else (axis,)):
        if not -rank <= a < rank:
            raise LayerError(f"axis {a} is out of range for its input {fmt_shape(shape)} "
                             f"(valid: 1…{rank - 1} or -1…-{rank - 1})")
        a %= rank
        if a in out:
            raise LayerError(f"axis {axis} names axis {a} of its input {fmt_shape(shape)} twice; "
                             "list each axis once")
        out.append(a)
    return out


def _feature_size(axis: int | tuple[int, ...], shape: Shape) -> int:
    """Values per sample of the learned (or tracked) statistics: the normalised axes' sizes."""
    axes = _axes(axis, shape)
    if 0 in axes and shape[0] is None:
        raise LayerError("axis 0 is the batch axis, whose size is not fixed, so there is no size for "
                         "its weights; normalise over a feature axis such as -1",
                         [Fix.set_arg("axis", -1)])
    dims = [shape[a] for a in axes]
    if any(d is None for d in dims):
        raise LayerError(f"the normalised axis of its input {fmt_shape(shape)} must have a known size")
    return prod(dims)  # type: ignore[arg-type]


def _batch_axis_lint(args: Args, inputs: list[Shape], out: Shape) -> list[tuple[str, tuple[Fix, ...]]]:
    if 0 not in _axes(args["axis"], inputs[0]):
        return []
    return [("normalises along axis 0, the batch axis, so each sample's output depends on the other "
             "samples of its batch; normalise over a feature axis such as -1",
             (Fix.set_arg("axis", -1),))]


def _bn_infer(args: Args, inputs: list[Shape]) -> Shape:
    _feature_size(args["axis"], inputs[0])
    return inputs[0]


def _bn_weights(args: Args, inputs: list[Shape], out: Shape) -> tuple[int, int]:
    c = _feature_size(args["axis"], inputs[0])
    trainable = c * (int(args["center"]) + int(args["scale"]))
    # Moving mean and variance; renormalisation adds a moving stddev and its own mean and stddev.
    moving = 2 * c + (3 * c if args["renorm"] else 0)
    return trainable, moving


def _ln_learns(args: Args) -> tuple[bool, bool]:
    """Whether LayerNormalization learns a scale (gamma) and an offset (beta)."""
    return bool(args["scale"] or args["rms_scaling"]), bool(args["center"] and not args["rms_scaling"])


def _ln_infer(args: Args, inputs: list[Shape]) -> Shape:
    # Only weights need the normalised axes' sizes; without them any axis can be normalised.
    if any(_ln_learns(args)):
        _feature_size(args["axis"], inputs[0])
    else:
        _axes(args["axis"], inputs[0])
    return inputs[0]


def _ln_weights(args: Args, inputs: list[Shape], out: Shape) -> tuple[int, int]:
    gamma, beta = _ln_learns(args)
    if not (gamma or beta):
        return 0, 0
    return _feature_size(args["axis"], inputs[0]) * (int(gamma) + int(beta)), 0


def _elementwise_macs(args: Args, inputs: list[Shape], out: Shape) -> int:
    """One scale-and-shift per value."""
    dims = out[1:]
    return 0 if any(d is None for d in dims) else prod(dims)  # type: ignore[arg-type]


_EPSILON = Param("epsilon", "float", 1e-3, minimum=0.0, min_exclusive=True, doc="Added to the variance to avoid dividing by zero.")
_CENTER = Param("center", "bool", True, shape_relevant=True, doc="Learn an offset (beta).")
_SCALE = Param("scale", "bool", True, shape_relevant=True, doc="Learn a scale (gamma).")

SPECS = [
    LayerSpec(
        kind="BatchNormalization", group="Normalization",
        summary="Normalises each channel with batch statistics; keeps moving averages for inference.",
        params=(Param("axis", "int", -1, shape_relevant=True, doc="The feature (channel) axis."),
                Param("momentum", "float", 0.99, minimum=0.0, maximum=1.0, doc="Momentum of the moving averages."),
                _EPSILON, _CENTER, _SCALE,
                Param("renorm", "bool", False, shape_relevant=True, doc="Batch renormalisation (adds statistics).")),
        infer=_bn_infer, weights=_bn_weights, macs=_elementwise_macs, lint=_batch_axis_lint,
    ),
    LayerSpec(
        kind="LayerNormalization", group="Normalization",
        summary="Normalises each sample over its features (no batch statistics).",
        params=(Param("axis", "axes", -1, shape_relevant=True, doc="Axis or axes normalised over."),
                _EPSILON, _CENTER, _SCALE,
                Param("rms_scaling", "bool", False, shape_relevant=True, doc="Scale by the RMS only (no offset).")),
        infer=_ln_infer, weights=_ln_weights, macs=_elementwise_macs, lint=_batch_axis_lint,
    ),
]
