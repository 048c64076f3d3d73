"""Hypothesis strategies shared by tests: random Convas designs for the differential test
(tests/test_differential.py) and the export round trips (test_export.py, test_export_python.py).

Every random choice is a Hypothesis draw, so a failing design shrinks: choices shrink to the first
option, numbers to their lower bound, and chances to "no", the common case.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from math import prod
from typing import Any, TypeVar

from hypothesis import strategies as st

from engine.analysis import analyse
from engine.design import Design, TensorRef
from engine.layers import ACTIVATIONS

T = TypeVar("T")

CF, CL = "channels_first", "channels_last"
MERGES = ("Add", "Concatenate", "Multiply", "Subtract", "Average", "Maximum", "Minimum", "CustomScaleLayer")
# Not drawn: the keras.ops operations (OpsAdd, …). The differential test counts each built layer's
# weights through ``layer.trainable_weights``, which a Keras operation does not have; they are
# compared with Keras in tests/test_catalogue_keras.py and tests/test_keras_import.py instead.


class Draws:
    """The random choices a design generator makes, each drawn from Hypothesis.

    Chances are drawn as whole percentages rather than floats: Hypothesis favours "simple" floats
    (0.0, 0.5, ...), which would make rare branches common; bounded integers come out even."""

    def __init__(self, draw: st.DrawFn) -> None:
        self._draw = draw

    def chance(self, p: float) -> bool:
        """True with probability ``p`` (to the percent); shrinks to False."""
        return self._draw(st.integers(0, 99)) >= round(100 * (1 - p))

    def randint(self, low: int, high: int) -> int:
        return self._draw(st.integers(low, high))

    def choice(self, options: Sequence[T]) -> T:
        return self._draw(st.sampled_from(options))

    def permutation(self, items: Iterable[T]) -> list[T]:
        return list(self._draw(st.permutations(list(items))))

    def weighted(self, options: dict[str, int]) -> str:
        """One key of ``options``, with probability proportional to its weight; shrinks to the first."""
        roll = self._draw(st.integers(0, sum(options.values()) - 1))
        for option, weight in options.items():
            if roll < weight:
                return option
            roll -= weight
        raise AssertionError("unreachable")


class Builder:
    """Grows a design one random layer at a time, looking at the shapes Convas infers so that
    most layers get an input of a rank they accept (the sizes are left to chance)."""

    def __init__(self, rnd: Draws) -> None:
        self.rnd = rnd
        self.design = Design(name="differential")
        self.tensors: list[TensorRef] = []

    def shape(self, ref: TensorRef) -> tuple | None:
        shapes = analyse(self.design).nodes[ref.node].output_shapes
        return shapes[ref.call] if ref.call < len(shapes) else None

    def add(self, kind: str, args: dict[str, Any], inputs: list[TensorRef]) -> None:
        node = self.design.add(kind, args=args, inputs=inputs)
        self.tensors.append(TensorRef(node.name, 0))

    def pick(self) -> TensorRef:
        # Mostly the newest tensor (a stack), sometimes an older one (a branch).
        if self.rnd.chance(0.4):
            return self.rnd.choice(self.tensors)
        return self.tensors[-1]


def _fmt(r: Draws) -> str:
    return CF if r.chance(0.12) else CL


def _window(r: Draws, rank: int, hi: int = 4) -> tuple[int, ...] | int:
    return tuple(r.randint(1, hi) for _ in range(rank)) if r.chance(0.3) else r.randint(1, hi)


def _conv_args(r: Draws, rank: int, channels: int | None) -> dict[str, Any]:
    args: dict[str, Any] = {"filters": r.randint(1, 4), "kernel_size": _window(r, rank)}
    strided = r.chance(0.4)
    if strided:
        args["strides"] = _window(r, rank, 3)
    if r.chance(0.3):
        args["dilation_rate"] = _window(r, rank, 3)
    args["padding"] = r.choice(["valid", "same", "causal"] if rank == 1 else ["valid", "same"])
    if r.chance(0.15):
        groups = r.choice([2, 3, channels or 2])
        args["groups"] = groups
        args["filters"] = groups * r.randint(1, 2) if r.chance(0.8) else r.randint(1, 5)
    if r.chance(0.2):
        args["use_bias"] = False
    args["data_format"] = _fmt(r)
    return args


def _transpose_args(r: Draws, rank: int) -> dict[str, Any]:
    args: dict[str, Any] = {"filters": r.randint(1, 3), "kernel_size": _window(r, rank),
                            "strides": _window(r, rank, 3), "padding": r.choice(["valid", "same"])}
    if r.chance(0.4):
        args["output_padding"] = _window(r, rank, 3) if r.chance(0.5) else r.randint(0, 2)
    if r.chance(0.15):
        args["dilation_rate"] = r.randint(1, 2)
    if r.chance(0.2):
        args["data_format"] = _fmt(r)
    return args


def _depthwise_args(r: Draws, rank: int, separable: bool) -> dict[str, Any]:
    args: dict[str, Any] = {"kernel_size": _window(r, rank), "padding": r.choice(["valid", "same"]),
                            "depth_multiplier": r.randint(1, 2), "data_format": _fmt(r)}
    if separable:
        args["filters"] = r.randint(1, 4)
    if r.chance(0.4):
        args["strides"] = _window(r, rank, 3)
    if r.chance(0.3):
        args["dilation_rate"] = _window(r, rank, 2)
    return args


def _pool_args(r: Draws, rank: int) -> dict[str, Any]:
    args: dict[str, Any] = {"pool_size": _window(r, rank), "padding": r.choice(["valid", "same"]),
                            "data_format": _fmt(r)}
    if r.chance(0.4):
        args["strides"] = _window(r, rank, 3)
    return args


def _reshape_target(r: Draws, shape: tuple | None) -> tuple:
    n = prod(d for d in shape[1:] if d is not None) if shape else r.randint(1, 12)
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    d = r.choice(divisors)
    return r.choice([
        (-1,), (n,), (d, -1), (-1, d), (d, n // d), (d, -1, 1), (1, d, n // d), (d, -1, 1, 1),
        (n + 1,), (d + 1, -1), (2, 2, -1),
    ])


def _feature_layer(b: Builder, r: Draws, shape: tuple, ref: TensorRef) -> None:
    """Layers that accept any rank: dense, normalisation, activations, reshaping, regularisers."""
    rank = len(shape)
    choice = r.choice(["Dense", "BN", "LN", "act", "act", "Reshape", "Permute", "Flatten", "reg", "keras_app"])
    if choice == "Dense":
        args: dict[str, Any] = {"units": r.randint(1, 5)}
        if r.chance(0.3):
            args["activation"] = r.choice(ACTIVATIONS)
        if r.chance(0.2):
            args["use_bias"] = False
        b.add("Dense", args, [ref])
    elif choice == "BN":
        args = {"center": not r.chance(0.2), "scale": not r.chance(0.2), "renorm": r.chance(0.1)}
        if r.chance(0.3):
            args["axis"] = r.choice([1, rank - 1, -2, rank, -rank])
        b.add("BatchNormalization", args, [ref])
    elif choice == "LN":
        args = {"center": not r.chance(0.2), "scale": not r.chance(0.2), "rms_scaling": r.chance(0.1)}
        if r.chance(0.4):
            axes = r.permutation(range(-rank, rank))[:min(rank, r.randint(1, 2))]
            args["axis"] = tuple(axes) if len(axes) > 1 else axes[0]
        b.add("LayerNormalization", args, [ref])
    elif choice == "act":
        kind = r.choice(["Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax"])
        if kind == "Activation":
            b.add(kind, {"activation": r.choice(ACTIVATIONS)}, [ref])
        elif kind == "PReLU":
            shared = tuple(a for a in range(1, rank) if r.chance(0.5))
            b.add(kind, {"shared_axes": shared or None}, [ref])
        elif kind == "Softmax":
            b.add(kind, {"axis": r.choice([-1, 1, rank - 1, rank])}, [ref])
        elif kind == "ReLU":
            b.add(kind, {"max_value": r.choice([None, 6.0])}, [ref])
        else:
            b.add(kind, {}, [ref])
    elif choice == "Reshape":
        b.add("Reshape", {"target_shape": _reshape_target(r, shape)}, [ref])
    elif choice == "Permute":
        dims = r.permutation(range(1, rank))
        if r.chance(0.1):
            dims = dims + [rank]
        b.add("Permute", {"dims": tuple(dims)}, [ref])
    elif choice == "Flatten":
        b.add("Flatten", {}, [ref])
    elif choice == "keras_app":  # Keras's helper layers of keras.applications (ConvNeXt)
        if r.chance(0.5):
            last = shape[-1] if shape[-1] is not None else 4
            dim = last if r.chance(0.8) else r.randint(1, 5)
            b.add("LayerScale", {"init_values": r.choice([1e-6, 0.5]), "projection_dim": dim}, [ref])
        else:
            b.add("StochasticDepth", {"drop_path_rate": r.choice([0.0, 0.2])}, [ref])
    else:
        kind = r.choice(["Dropout", "GaussianNoise", "SpatialDropout2D"])
        if kind == "Dropout":
            b.add(kind, {"rate": r.choice([0.0, 0.3])}, [ref])
        elif kind == "GaussianNoise":
            b.add(kind, {"stddev": 0.1}, [ref])
        else:
            b.add(kind, {"rate": 0.2, "data_format": _fmt(r)}, [ref])


def _spatial_layer(b: Builder, r: Draws, shape: tuple, ref: TensorRef) -> None:
    """Layers for (batch, *spatial, channels) tensors of spatial rank 1, 2 or 3."""
    rank = len(shape) - 2
    d = rank
    channels = shape[-1]
    family = r.choice(["conv", "conv", "transpose", "depthwise", "separable", "pool", "global", "resize"])
    if family in ("depthwise", "separable") and rank == 3:
        family = "conv"
    if family == "resize" and rank != 2:
        family = "pool"
    if family == "conv":
        b.add(f"Conv{d}D", _conv_args(r, d, channels), [ref])
    elif family == "transpose":
        b.add(f"Conv{d}DTranspose", _transpose_args(r, d), [ref])
    elif family == "depthwise":
        b.add(f"DepthwiseConv{d}D", _depthwise_args(r, d, False), [ref])
    elif family == "separable":
        b.add(f"SeparableConv{d}D", _depthwise_args(r, d, True), [ref])
    elif family == "pool":
        b.add(f"{r.choice(['Max', 'Average'])}Pooling{d}D", _pool_args(r, d), [ref])
    elif family == "global":
        b.add(f"Global{r.choice(['Max', 'Average'])}Pooling{d}D",
              {"keepdims": r.chance(0.3), "data_format": _fmt(r)}, [ref])
    else:
        kind = r.choice(["ZeroPadding2D", "Cropping2D", "UpSampling2D", "Resizing", "Rescaling"])
        if kind == "ZeroPadding2D":
            b.add(kind, {"padding": r.choice([1, (0, 2), ((1, 0), (0, 2))]), "data_format": _fmt(r)}, [ref])
        elif kind == "Cropping2D":
            b.add(kind, {"cropping": r.choice([1, (2, 0), ((0, 1), (3, 0)), 2]), "data_format": _fmt(r)}, [ref])
        elif kind == "Resizing":
            b.add(kind, {"height": r.randint(1, 6), "width": r.randint(1, 6),
                         "crop_to_aspect_ratio": r.chance(0.2), "pad_to_aspect_ratio": r.chance(0.2),
                         "data_format": _fmt(r)}, [ref])
        elif kind == "Rescaling":
            b.add(kind, {"scale": 1 / 255, "offset": r.choice([0.0, -1.0])}, [ref])
        else:
            b.add(kind, {"size": r.choice([2, (1, 3)]), "interpolation": r.choice(["nearest", "bilinear"]),
                         "data_format": _fmt(r)}, [ref])


def _merge(b: Builder, r: Draws) -> None:
    kind = r.choice(MERGES)
    n = 2 if kind in ("Subtract", "CustomScaleLayer") else r.choice([2, 2, 3])
    refs = [b.tensors[-1]] + [r.choice(b.tensors) for _ in range(n - 1)]
    args: dict[str, Any] = {}
    if kind == "CustomScaleLayer":
        args["scale"] = r.choice([1.0, 0.17])
    if kind == "Concatenate" and r.chance(0.3):
        shape = b.shape(refs[0])
        rank = len(shape) if shape else 3
        args["axis"] = r.choice([a for a in range(-rank + 1, rank) if a != 0])
    b.add(kind, args, refs)


def _share(b: Builder, r: Draws) -> bool:
    """Apply an existing layer once more, to another tensor of the same rank (a shared layer).

    Same rank because Keras pins some layers' input rank when it builds them (BatchNormalization,
    pooling, ...), which Convas does not model yet: see test_shared_layer_keeps_its_input_rank.
    Same shape for LayerNormalization and PReLU, which Keras does not pin at all: it lets their
    weights, sized by the first call, broadcast over another call's different sizes, which Convas
    refuses on purpose (a shared layer has one set of weights).
    """
    candidates = [n for n in b.design if n.kind not in ("InputLayer", *MERGES)]
    if not candidates:
        return False
    node = r.choice(candidates)
    first = b.shape(node.inbound[0][0])
    exact = node.kind in ("LayerNormalization", "PReLU")
    sources = [t for t in b.tensors if first is not None and (s := b.shape(t)) is not None
               and (s == first if exact else len(s) == len(first))]
    if not sources:
        return False
    b.design.connect(r.choice(sources), node.name, call=node.calls)
    b.tensors.append(TensorRef(node.name, node.calls - 1))
    return True


@st.composite
def designs(draw: st.DrawFn) -> Design:
    """Small random designs, valid or not: one or two inputs, then one to seven layers, merges
    and shared layers. A failing design shrinks to fewer layers and default arguments."""
    r = Draws(draw)
    b = Builder(r)
    for _ in range(2 if r.chance(0.2) else 1):
        kind = r.choice(["image", "image", "seq", "flat", "volume"]) if r.chance(0.9) else "image"
        shape = {
            "seq": lambda: (r.randint(1, 12), r.randint(1, 4)),
            "image": lambda: (r.randint(1, 9), r.randint(1, 9), r.randint(1, 4)),
            "flat": lambda: (r.randint(1, 12),),
            "volume": lambda: (r.randint(1, 5), r.randint(1, 5), r.randint(1, 5), r.randint(1, 3)),
        }[kind]()
        b.add("InputLayer", {"shape": shape}, [])
    for _ in range(r.randint(1, 7)):
        step = r.weighted({"layer": 78, "merge": 15, "share": 7})
        if step == "merge" and len(b.tensors) > 1:
            _merge(b, r)
            continue
        if step != "layer" and _share(b, r):
            continue
        ref = b.pick()
        shape = b.shape(ref) or (None,) + (4,) * r.randint(1, 4)
        if 3 <= len(shape) <= 5 and r.chance(0.65):
            _spatial_layer(b, r, shape, ref)
        else:
            _feature_layer(b, r, shape, ref)
    return b.design
