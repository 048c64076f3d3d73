"""BatchNormalization, LayerNormalization and the Normalization preprocessing layer."""

from __future__ import annotations

from math import prod
from numbers import Real
from typing import Any

from ..shapes import Shape, fmt_shape
from .base import Args, Fix, LayerError, LayerSpec, Param, ParamKind


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


def _value_shape(name: str, value: Any) -> tuple[int, ...]:
    """The array shape of a number or a nested list of numbers, as NumPy reads it."""
    if isinstance(value, bool) or not isinstance(value, (Real, list, tuple)):
        raise LayerError(f"{name} must be a number or a list of numbers, got {value!r}")
    if isinstance(value, Real):
        return ()
    shapes = {_value_shape(name, v) for v in value}
    if len(shapes) > 1:
        raise LayerError(f"{name} is ragged: its lists must all have the same length")
    return (len(value),) + (shapes.pop() if shapes else ())


def _kept_axes(axis: tuple[int, ...], shape: Shape) -> list[int]:
    """The axes with their own statistics, resolved and sorted as Keras keeps them (a repeated
    axis stays repeated: Keras accepts it with given mean and variance, not with learned ones)."""
    rank = len(shape)
    for a in axis:
        if not -rank <= a < rank:
            raise LayerError(f"axis {a} is out of range for its input {fmt_shape(shape)} "
                             f"(valid: 1…{rank - 1} or -1…-{rank - 1}; () for one scalar mean and variance)")
    kept = sorted(a % rank for a in axis)
    for d in kept:
        if shape[d] is None:
            if d == 0:
                raise LayerError("axis 0 is the batch axis, whose size is not fixed, so it cannot have its "
                                 "own mean and variance; use a feature axis such as -1",
                                 [Fix.set_arg("axis", -1)])
            raise LayerError(f"axis {d} of its input {fmt_shape(shape)} has no fixed size, so it cannot "
                             "have its own mean and variance; give that axis a size or use another axis")
    return kept


def _check_statistics(args: Args, kept: list[int], shape: Shape) -> None:
    """Check a given mean and variance against the kept axes, as Keras does when it builds."""
    mean, variance = args["mean"], args["variance"]
    if (mean is None) != (variance is None):
        given, missing = ("mean", "variance") if variance is None else ("variance", "mean")
        raise LayerError(f"{given} is set but {missing} is not; Keras needs both or neither "
                         "(neither: they are learned by adapt())", [Fix.set_arg(given, None)])
    if mean is None:
        if len(set(kept)) != len(kept):
            raise LayerError(f"axis {args['axis']} names an axis twice; list each axis once",
                             [Fix.set_arg("axis", tuple(sorted(set(kept))))])
        return
    m_shape, v_shape = _value_shape("mean", mean), _value_shape("variance", variance)
    if m_shape != v_shape:
        raise LayerError(f"mean has shape {fmt_shape(m_shape)} but variance has shape "
                         f"{fmt_shape(v_shape)}; give them the same shape")
    axis = args["axis"]
    if not axis and m_shape:
        raise LayerError("axis () keeps one scalar mean and variance, so give each as a single number")
    if len(m_shape) > len(axis):
        shown = axis[0] if len(axis) == 1 else axis
        raise LayerError(f"mean and variance are {len(m_shape)}-dimensional but axis {shown} keeps "
                         f"{len(axis)} {'axis' if len(axis) == 1 else 'axes'}; give at most one "
                         "dimension per kept axis")
    # Keras aligns their dimensions with the kept axes from the right, then broadcasts.
    placed = [1] * len(shape)
    for size, d in zip(reversed(m_shape), reversed(kept)):
        placed[d] = size
    wanted = tuple(shape[d] for d in kept)
    if prod(placed) != prod(m_shape) or any(placed[d] not in (1, shape[d]) for d in kept):
        want = (f"one value or {wanted[0]}" if len(wanted) == 1
                else f"sizes 1 or {fmt_shape(wanted)}, aligned from the right")
        raise LayerError(f"mean and variance have shape {fmt_shape(m_shape)}, which does not fit the "
                         f"normalised axes of its input {fmt_shape(shape)}: give {want}")


def _norm_infer(args: Args, inputs: list[Shape]) -> Shape:
    _check_statistics(args, _kept_axes(args["axis"], inputs[0]), inputs[0])
    return inputs[0]


def _norm_weights(args: Args, inputs: list[Shape], out: Shape) -> tuple[int, int]:
    if args["mean"] is not None:
        return 0, 0  # given statistics are constants, not weights
    kept = _kept_axes(args["axis"], inputs[0])
    size = prod(inputs[0][d] for d in kept)  # type: ignore[misc]
    # Mean and variance per kept position, and the sample count older Keras files expect.
    return 0, 2 * size + 1


def _norm_lint(args: Args, inputs: list[Shape], out: Shape) -> list[tuple[str, tuple[Fix, ...]]]:
    found: list[tuple[str, tuple[Fix, ...]]] = []
    if 0 in _kept_axes(args["axis"], inputs[0]):
        found.append(("keeps statistics per position of axis 0, the batch axis, so a sample's output "
                      "depends on where it sits in its batch; use a feature axis such as -1",
                      (Fix.set_arg("axis", -1),)))
    values = [] if args["variance"] is None else [args["variance"]]
    while values:
        v = values.pop()
        if isinstance(v, (list, tuple)):
            values.extend(v)
        elif v < 0:
            found.append(("has a negative variance, whose square root is undefined: its outputs "
                          "would be NaN", ()))
            break
    return found


def _norm_card(args: Args) -> str:
    axis = args["axis"]
    shown = "all" if axis == () else ",".join(str(a) for a in axis)
    how = "adapted" if args["mean"] is None else "fixed"
    return f"axis {shown}, {how}" + (", inverted" if args["invert"] else "")


_EPSILON = Param("epsilon", ParamKind.FLOAT, 1e-3, minimum=0.0, min_exclusive=True,
                 doc="Added to the variance to avoid dividing by zero.")
_CENTER = Param("center", ParamKind.BOOL, True, doc="Learn an offset (beta).")
_SCALE = Param("scale", ParamKind.BOOL, True, doc="Learn a scale (gamma).")

SPECS = [
    LayerSpec(
        kind="BatchNormalization", group="Normalization",
        summary="Normalises each channel with batch statistics; keeps moving averages for inference.",
        params=(Param("axis", ParamKind.INT, -1, doc="The feature (channel) axis."),
                Param("momentum", ParamKind.FLOAT, 0.99, minimum=0.0, maximum=1.0,
                      doc="Momentum of the moving averages."),
                _EPSILON, _CENTER, _SCALE,
                Param("renorm", ParamKind.BOOL, False,
                      doc="Batch renormalisation (adds statistics).")),
        infer=_bn_infer, weights=_bn_weights, macs=_elementwise_macs, lint=_batch_axis_lint,
    ),
    LayerSpec(
        kind="LayerNormalization", group="Normalization",
        summary="Normalises each sample over its features (no batch statistics).",
        params=(Param("axis", ParamKind.AXES, -1, doc="Axis or axes normalised over."),
                _EPSILON, _CENTER, _SCALE,
                Param("rms_scaling", ParamKind.BOOL, False,
                      doc="Scale by the RMS only (no offset).")),
        infer=_ln_infer, weights=_ln_weights, macs=_elementwise_macs, lint=_batch_axis_lint,
    ),
    LayerSpec(
        kind="Normalization", group="Preprocessing & Augmentation",
        summary="Shifts and scales inputs to mean 0 and variance 1 with a fixed mean and variance "
                "(given, or computed from data by adapt()).",
        params=(Param("axis", ParamKind.AXES, -1,
                      doc="Axis or axes with their own mean and variance; () for one scalar mean and "
                          "variance (Keras's axis=None)."),
                Param("mean", ParamKind.ANY, None,
                      doc="Fixed mean: a number or a list per kept axis (None: learned by adapt())."),
                Param("variance", ParamKind.ANY, None,
                      doc="Fixed variance, with mean (None: learned by adapt())."),
                Param("invert", ParamKind.BOOL, False, doc="Undo the normalisation instead (x·σ + μ).")),
        infer=_norm_infer, weights=_norm_weights, macs=_elementwise_macs, lint=_norm_lint,
        card=_norm_card,
    ),
]
