"""The vocabulary of the layer catalogue: arguments, fixes, receptive fields and layer specs.

Every layer kind Convas knows is one :class:`LayerSpec` value: its Keras class name, its
arguments (names, defaults and ranges exactly as Keras has them), and four pure rules (output
shape, weights, multiply-accumulates, receptive field). The analysis, the inspector, file import
and export all read these specs; nothing else in Convas hard-codes a layer.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any

from ..shapes import MAX_ARG, Shape
from ..text import power_of_ten

Args = Mapping[str, Any]

# Keras also names "glu" (it halves the last axis while Keras reports the shape unchanged, so the
# next layer fails when run) and "threshold" (it needs two arguments a name cannot give, so it
# fails when run); neither works as an activation name, so neither is offered.
ACTIVATIONS: tuple[str, ...] = (
    "linear", "relu", "sigmoid", "softmax", "tanh", "elu", "selu", "gelu", "silu", "swish",
    "softplus", "softsign", "hard_sigmoid", "hard_silu", "hard_swish", "leaky_relu", "relu6",
    "exponential", "mish", "log_softmax", "celu", "hard_tanh", "log_sigmoid",
    "hard_shrink", "soft_shrink", "tanh_shrink", "sparse_plus", "sparsemax", "squareplus",
)
DATA_FORMATS = ("channels_last", "channels_first")


class LayerError(ValueError):
    """A layer cannot produce an output: the message says what is wrong in numbers and how to fix
    it; ``fixes`` are the mechanical repairs the designer can offer as one click."""

    def __init__(self, message: str, fixes: Sequence[Fix] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.fixes = tuple(fixes)


class FixAction(StrEnum):
    """What a :class:`Fix` does (a ``str`` too, so files and messages read it as plain text)."""

    SET_ARG = "set_arg"              # set ``arg`` to ``value``
    INSERT_BEFORE = "insert_before"  # insert ``layer`` on input ``input_index``
    REMOVE_LAYER = "remove_layer"    # remove the layer, its input feeding its readers
    SET_PIXEL_RANGE = "set_pixel_range"  # not a design edit: the data's range becomes ``value``
    RENAME = "rename"                # rename the layer to ``value``


@dataclass(frozen=True)
class Fix:
    """A mechanical repair of a problem, applied by the designer as one undoable edit.

    ``action`` is :attr:`FixAction.SET_ARG` (set ``arg`` to ``value``) or
    :attr:`FixAction.INSERT_BEFORE` (insert a ``layer`` with ``layer_args`` on input number
    ``input_index``), :attr:`FixAction.RENAME` (rename the layer to ``value``),
    :attr:`FixAction.REMOVE_LAYER` or :attr:`FixAction.SET_PIXEL_RANGE` (the
    training data's :class:`~engine.pixel_range.PixelRange` becomes ``value``: a change of the
    data, which the designer makes in the training settings, not in the design). They act on the
    layer with the problem unless ``node`` names another one (a merge's fix may set padding on
    the layer up a branch that shrank it).
    """

    label: str
    action: FixAction
    arg: str | None = None
    value: Any = None
    layer: str | None = None
    layer_args: Mapping[str, Any] = field(default_factory=dict)
    input_index: int = 0
    node: str | None = None

    @staticmethod
    def set_arg(arg: str, value: Any, node: str | None = None) -> Fix:
        where = f" on {node}" if node else ""
        return Fix(f"Set {arg}={value!r}{where}", FixAction.SET_ARG, arg=arg, value=value, node=node)

    @staticmethod
    def rename(new: str) -> Fix:
        return Fix(f"Rename to {new}", FixAction.RENAME, value=new)

    @staticmethod
    def insert(layer: str, input_index: int = 0, **layer_args: Any) -> Fix:
        shown = ", ".join(f"{k}={v!r}" for k, v in layer_args.items())
        return Fix(f"Insert {layer}({shown})", FixAction.INSERT_BEFORE, layer=layer,
                   layer_args=layer_args, input_index=input_index)


Number = int | Fraction


@dataclass(frozen=True)
class Field:
    """Receptive field and effective stride (jump) of a tensor, per spatial axis, in input pixels.

    Values are plain ints, which keeps the common case fast, and become exact fractions only when
    up-sampling divides a jump unevenly.
    """

    size: tuple[Number, ...]
    jump: tuple[Number, ...]

    @staticmethod
    def identity(rank: int) -> Field:
        one = (1,) * rank
        return Field(one, one)

    def window(self, kernels: Sequence[int], strides: Sequence[int],
               dilations: Sequence[int] | None = None) -> Field:
        """Field after a sliding window: r' = r + (k_eff − 1)·j, j' = j·s."""
        dil = dilations or [1] * len(kernels)
        size = tuple(r + ((k - 1) * d) * j for r, k, d, j in zip(self.size, kernels, dil, self.jump))
        jump = tuple(j * s for j, s in zip(self.jump, strides))
        return Field(size, jump)

    def upsample(self, factors: Sequence[Number]) -> Field:
        def divide(j: Number, f: Number) -> Number:
            q = Fraction(j) / Fraction(f)
            return int(q) if q.denominator == 1 else q
        return Field(self.size, tuple(divide(j, f) for j, f in zip(self.jump, factors)))

    def rounded(self) -> tuple[list[int | float], list[int | float]]:
        """Plain numbers for reports: whole numbers stay ints, fractions become floats."""
        cached = self.__dict__.get("_rounded")
        if cached is None:
            def plain(x: Number) -> int | float:
                return x if isinstance(x, int) else (int(x) if x.denominator == 1 else float(x))
            cached = ([s if isinstance(s, int) else math.ceil(s) for s in self.size],
                      [plain(j) for j in self.jump])
            object.__setattr__(self, "_rounded", cached)
        return list(cached[0]), list(cached[1])


# Rule signatures. ``inputs`` are the input shapes (batch dimension first); ``out`` the output.
ShapeRule = Callable[[Args, list[Shape]], Shape]
WeightRule = Callable[[Args, list[Shape], Shape], tuple[int, int]]
MacRule = Callable[[Args, list[Shape], Shape], int]
FieldRule = Callable[[Args, list["Field | None"], list[Shape], Shape], "Field | None"]
# Warnings about designs Keras accepts but that are probably not meant: (message, fixes) pairs.
LintRule = Callable[[Args, list[Shape], Shape], list[tuple[str, tuple["Fix", ...]]]]


def no_weights(args: Args, inputs: list[Shape], out: Shape) -> tuple[int, int]:
    return 0, 0


def no_macs(args: Args, inputs: list[Shape], out: Shape) -> int:
    return 0


def same_field(args: Args, fields: list[Field | None], inputs: list[Shape], out: Shape) -> Field | None:
    """Element-wise layers see exactly what their input sees."""
    return fields[0] if fields else None


def no_field(args: Args, fields: list[Field | None], inputs: list[Shape], out: Shape) -> Field | None:
    """Layers that mix every position (Flatten, global pooling) end the spatial path."""
    return None


class ParamKind(StrEnum):
    """The type of a layer argument's values (a ``str`` too: ``ParamKind.INT == "int"``)."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    CHOICE = "choice"                  # one of ``choices``
    STR = "str"
    INTS = "ints"                      # an int or a tuple of ``length`` ints, stored as a tuple
    SHAPE = "shape"                    # a tuple of ints or None
    AXES = "axes"                      # a tuple of ints
    OPTIONAL_INT = "optional_int"
    OPTIONAL_INTS = "optional_ints"    # None or ``ints``
    OPTIONAL_FLOAT = "optional_float"
    FACTOR = "factor"                  # a float or a (low, high) pair
    PAIR = "pair"                      # two floats
    PADDING2D = "padding2d"            # ((top, bottom), (left, right))
    ANY = "any"                        # kept as given

    @property
    def optional(self) -> bool:
        """None is a valid value of its own (not "use the default")."""
        return self in (ParamKind.OPTIONAL_INT, ParamKind.OPTIONAL_INTS, ParamKind.OPTIONAL_FLOAT)


@dataclass(frozen=True)
class Param:
    """One constructor argument of a layer, with Keras's name and default.

    ``kind`` is a :class:`ParamKind` (given as its text in the specs, turned into the enum here).
    """

    name: str
    kind: ParamKind
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()
    length: int | None = None
    doc: str = ""
    required: bool = False
    min_exclusive: bool = False

    def __post_init__(self) -> None:
        # ValueError for a kind that does not exist: a typo in a spec fails at import.
        object.__setattr__(self, "kind", ParamKind(self.kind))


class ArgError(ValueError):
    """An argument value is not acceptable; the message names the argument and the valid range."""


def _as_tuple(value: Any) -> tuple:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Shown(reprlib.Repr):
    """``repr`` for messages: short, and whole numbers of any size as ``1.2e400``."""

    def repr_int(self, x: int, level: int) -> str:
        return _num(x)


_SHOWN = _Shown()
_SHOWN.maxstring = _SHOWN.maxother = 60


def _shown(value: Any) -> str:
    """A given value as a message quotes it (bounded in length, never failing)."""
    return _SHOWN.repr(value)


def _bounded(name: str, value: int) -> int:
    """``value`` when it fits the 64-bit integers Keras stores (else :class:`ArgError`)."""
    if abs(value) > MAX_ARG:
        raise ArgError(f"{name} must be at most {MAX_ARG:,} (a 64-bit integer), got {_num(value)}")
    return value


def _float(name: str, value: Any) -> float:
    """``float(value)``, or :class:`ArgError` when it is past the float range (1e308)."""
    try:
        return float(value)
    except OverflowError:
        raise ArgError(f"{name} must be a number below 1e308, got {_num(value)}") from None


def normalise_value(p: Param, value: Any) -> Any:
    """Check one argument value and return it in canonical form (tuples for tuple arguments).

    Raises :class:`ArgError` with a message that says what was given and what is allowed.
    """
    name = p.name
    if value is None:
        if p.required:
            raise ArgError(f"{name} is required")
        if p.default is None or p.kind.optional or p.kind == ParamKind.ANY:
            return None
        # Keras treats None as "use the default" (e.g. data_format=None → channels_last).
        return normalise_value(p, p.default)
    k = p.kind
    if k in (ParamKind.INT, ParamKind.OPTIONAL_INT):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _is_int(value):
            raise ArgError(f"{name} must be a whole number, got {_shown(value)}")
        _check_range(p, _bounded(name, value))
        return value
    if k in (ParamKind.FLOAT, ParamKind.OPTIONAL_FLOAT):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ArgError(f"{name} must be a number, got {_shown(value)}")
        value = _float(name, value)
        if math.isnan(value):
            raise ArgError(f"{name} must be a number, got NaN")
        _check_range(p, value)
        return value
    if k == ParamKind.BOOL:
        if not isinstance(value, bool):
            raise ArgError(f"{name} must be true or false, got {_shown(value)}")
        return value
    if k == ParamKind.CHOICE:
        if value not in p.choices:
            allowed = ", ".join(repr(c) for c in p.choices)
            raise ArgError(f"{name} must be one of {allowed}; got {_shown(value)}")
        return value
    if k == ParamKind.STR:
        if not isinstance(value, str):
            raise ArgError(f"{name} must be text, got {_shown(value)}")
        return value
    if k in (ParamKind.INTS, ParamKind.OPTIONAL_INTS):
        items = _as_tuple(value)
        if p.length is not None and len(items) == 1:
            items = items * p.length
        if p.length is not None and len(items) != p.length:
            raise ArgError(f"{name} must be one whole number or {p.length} of them, got {_shown(value)}")
        out = []
        for item in items:
            if isinstance(item, float) and item.is_integer():
                item = int(item)
            if not _is_int(item):
                raise ArgError(f"{name} must hold whole numbers, got {_shown(value)}")
            _check_range(p, _bounded(name, item))
            out.append(item)
        return tuple(out)
    if k == ParamKind.SHAPE:
        items = _as_tuple(value)
        out = []
        for item in items:
            if item is None:
                out.append(None)
                continue
            if isinstance(item, float) and item.is_integer():
                item = int(item)
            if not _is_int(item):
                raise ArgError(f"{name} must hold whole numbers, got {_shown(value)}")
            _check_range(p, _bounded(name, item))
            out.append(item)
        if not out and p.minimum is not None:
            raise ArgError(f"{name} needs at least one dimension")
        return tuple(out)
    if k == ParamKind.AXES:
        items = _as_tuple(value)
        if not all(_is_int(i) for i in items):
            raise ArgError(f"{name} must hold whole numbers, got {_shown(value)}")
        return tuple(_bounded(name, i) for i in items)
    if k == ParamKind.FACTOR:
        items = _as_tuple(value)
        if len(items) not in (1, 2) or not all(isinstance(i, (int, float)) and not isinstance(i, bool)
                                               for i in items):
            raise ArgError(f"{name} must be a number or a (low, high) pair, got {_shown(value)}")
        if len(items) == 1 and not isinstance(value, (list, tuple)):
            return _float(name, items[0])
        return tuple(_float(name, i) for i in items)
    if k == ParamKind.PAIR:
        items = _as_tuple(value)
        if len(items) != 2 or not all(isinstance(i, (int, float)) and not isinstance(i, bool) for i in items):
            raise ArgError(f"{name} must be two numbers, got {_shown(value)}")
        return tuple(_float(name, i) for i in items)
    if k == ParamKind.PADDING2D:
        return _padding2d(name, value, p)
    return value


def _padding2d(name: str, value: Any, p: Param) -> tuple[tuple[int, int], tuple[int, int]]:
    """Keras accepts n, (h, w) or ((top, bottom), (left, right)) for ZeroPadding2D/Cropping2D."""
    def whole(x: Any) -> int:
        if isinstance(x, float) and x.is_integer():
            x = int(x)
        if not _is_int(x) or x < 0:
            raise ArgError(f"{name} must hold whole numbers ≥ 0, got {_shown(value)}")
        return _bounded(name, x)
    if _is_int(value) or isinstance(value, float):
        n = whole(value)
        return ((n, n), (n, n))
    items = _as_tuple(value)
    if len(items) != 2:
        raise ArgError(f"{name} must be n, (h, w) or ((top, bottom), (left, right)); got {_shown(value)}")
    if all(not isinstance(i, (list, tuple)) for i in items):
        h, w = whole(items[0]), whole(items[1])
        return ((h, h), (w, w))
    pairs = []
    for pair in items:
        pair = _as_tuple(pair)
        if len(pair) != 2:
            raise ArgError(f"{name} must be n, (h, w) or ((top, bottom), (left, right)); got {_shown(value)}")
        pairs.append((whole(pair[0]), whole(pair[1])))
    return (pairs[0], pairs[1])


def _check_range(p: Param, value: float) -> None:
    lo, hi = p.minimum, p.maximum
    if lo is not None and (value < lo or (p.min_exclusive and value == lo)):
        rel = ">" if p.min_exclusive else "≥"
        raise ArgError(f"{p.name} must be {rel} {_num(lo)}, got {_num(value)}")
    if hi is not None and value > hi:
        raise ArgError(f"{p.name} must be ≤ {_num(hi)}, got {_num(value)}")


def _num(x: float) -> str:
    """A number as given, briefly: ``3``, ``0.5``, ``1.2e400`` (any int, no float overflow)."""
    if isinstance(x, int):
        return str(x) if abs(x) < 10**15 else power_of_ten(x)
    return str(int(x)) if x.is_integer() else str(x)


@dataclass(frozen=True)
class LayerSpec:
    """Everything Convas knows about one Keras layer class.

    ``min_inputs``/``max_inputs`` bound the tensors one application takes (``None``: unbounded);
    ``key_args`` are shown on the canvas card; ``group`` places it in the palette.
    """

    kind: str
    group: str
    summary: str
    params: tuple[Param, ...]
    infer: ShapeRule
    weights: WeightRule = no_weights
    macs: MacRule = no_macs
    field: FieldRule = same_field
    min_inputs: int = 1
    max_inputs: int | None = 1
    key_args: tuple[str, ...] = ()
    card: Callable[[Args], str] | None = None
    lint: LintRule | None = None

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def normalise(self, args: Args) -> tuple[dict[str, Any], dict[str, str]]:
        """Fill defaults and canonicalise every argument.

        Returns the clean arguments and, per invalid argument, the reason it was refused
        (the refused argument keeps its default in the clean arguments).
        """
        clean: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for p in self.params:
            raw = args.get(p.name, p.default)
            try:
                clean[p.name] = normalise_value(p, raw)
            except ArgError as exc:
                problems[p.name] = str(exc)
                clean[p.name] = p.default
        return clean, problems

    def describe(self, args: Args) -> str:
        """Short text of the key arguments for a canvas card, e.g. ``32 × 3×3, relu``."""
        if self.card is not None:
            return self.card(args)
        parts = []
        for name in self.key_args:
            value = args.get(name)
            if isinstance(value, tuple):
                value = "×".join(str(v) for v in value)
            parts.append(f"{name}={value}")
        return ", ".join(parts)
