"""The layer catalogue against real Keras, one table row at a time.

Each row is (layer kind, arguments, input shapes, what we expect). For every row the catalogue's
verdict (through :func:`engine.analysis.analyse`, as the designer sees it) is compared with Keras
building the layer on symbolic inputs and running it on a batch of two zero samples, in both
inference and training mode: validity, output shape and trainable / non-trainable parameter
counts must agree. Keras is the ground truth; a disagreement is a bug in the catalogue.

``expect`` says what the row is for: ``"ok"`` and ``"error"`` rows must be accepted (rejected)
by both; ``"stricter"`` rows are the few designs Keras runs but Convas refuses on purpose
(the reason is given with each); ``"cpu"`` rows Keras builds but TensorFlow cannot run on a CPU
(``channels_first`` convolutions): Convas accepts them with a warning.

A second test checks every argument's name and default against the ``get_config()`` of a
default-constructed Keras layer.
"""

from __future__ import annotations

import inspect
import os
import re
from dataclasses import dataclass, field
from math import prod
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

from engine.analysis import analyse
from engine.design import Design, Node
from engine.keras_build import KerasBuildError, keras_arguments, keras_class
from engine.layers import ACTIVATIONS, CATALOGUE, OPERATIONS
from engine.layers.base import normalise_value

# Keras warns about odd but legal designs (softmax over a size-1 axis, rms_scaling); they are the point here.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning:keras")]

CF = "channels_first"


@dataclass(frozen=True)
class Row:
    kind: str
    args: dict[str, Any]
    shapes: tuple[tuple, ...]  # input shapes without the batch axis
    expect: str = "ok"
    why: str = ""

    def __str__(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.args.items())
        shapes = "+".join("x".join(map(str, s)) for s in self.shapes)
        return f"{self.kind}({args})<-{shapes}:{self.expect}"


def R(kind: str, args: dict[str, Any] | None = None, *shapes: tuple, expect: str = "ok", why: str = "") -> Row:
    return Row(kind, dict(args or {}), tuple(shapes), expect, why)


def E(kind: str, args: dict[str, Any] | None = None, *shapes: tuple) -> Row:
    return R(kind, args, *shapes, expect="error")


# --- the table ----------------------------------------------------------------------------

def _input_rows() -> list[Row]:
    return [R("InputLayer", {"shape": s, **extra}) for s, extra in [
        ((28, 28, 1), {}), ((10,), {}), ((5, 4, 3, 2), {}), ((7, 3), {"batch_size": 8}),
        ((None, 3), {}), ((None, None, 3), {"batch_size": 2}), ((1,), {}),
    ]]


def _conv_rows() -> list[Row]:
    rows = []
    for rank in (1, 2, 3):
        kind = f"Conv{rank}D"
        size = {1: (9, 4), 2: (7, 6, 4), 3: (5, 6, 4, 2)}[rank]
        for kernel, strides, padding, dilation in [
            (1, 1, "valid", 1), (3, 1, "valid", 1), (3, 2, "valid", 1), (3, 2, "same", 1),
            (2, 3, "same", 1), (2, 1, "valid", 2), (3, 1, "same", 2), (4, 4, "valid", 1),
        ]:
            rows.append(R(kind, {"filters": 3, "kernel_size": kernel, "strides": strides,
                                 "padding": padding, "dilation_rate": dilation}, size))
        rows += [
            R(kind, {"filters": 4, "kernel_size": 2, "groups": 2}, size),
            R(kind, {"filters": 8, "kernel_size": 1, "groups": 4 if rank != 3 else 2, "use_bias": False}, size),
            R(kind, {"filters": 2, "kernel_size": min(size[:-1]), "activation": "relu"}, size),
            R(kind, {"filters": 2, "kernel_size": 2, "groups": 2, "data_format": CF}, size[-1:] + size[:-1]),
            E(kind, {"filters": 2, "kernel_size": size[0] + 1}, size),
            E(kind, {"filters": 2, "kernel_size": 3, "dilation_rate": 5}, size),
            E(kind, {"filters": 2, "kernel_size": 2, "strides": 2, "dilation_rate": 2}, size),
            E(kind, {"filters": 3, "kernel_size": 1, "groups": 2}, size),
            E(kind, {"filters": 3, "kernel_size": 1, "groups": 3}, size),
            E(kind, {"filters": 3, "kernel_size": 1}, size + (2,)),
            E(kind, {"filters": 3, "kernel_size": 1}, size[1:]),
            E(kind, {"filters": 0, "kernel_size": 1}, size),
        ]
    rows += [
        R("Conv1D", {"filters": 2, "kernel_size": 3, "padding": "causal"}, (5, 2)),
        R("Conv1D", {"filters": 2, "kernel_size": 3, "padding": "causal", "dilation_rate": 3}, (5, 2)),
        R("Conv1D", {"filters": 2, "kernel_size": 9, "padding": "causal", "strides": 2}, (5, 2)),
        R("Conv1D", {"filters": 2, "kernel_size": 3, "padding": "causal", "groups": 2, "data_format": CF}, (4, 8)),
        R("Conv1D", {"filters": 2, "kernel_size": 3, "data_format": CF}, (4, 8), expect="cpu"),
        R("Conv1D", {"filters": 2, "kernel_size": 3, "padding": "causal", "data_format": CF}, (4, 8), expect="cpu"),
        R("Conv2D", {"filters": 2, "kernel_size": (1, 3), "data_format": CF}, (3, 4, 8), expect="cpu"),
        R("Conv2D", {"filters": 5, "kernel_size": (3, 1), "strides": (2, 1)}, (7, 5, 1)),
        R("Conv2D", {"filters": 5, "kernel_size": (1, 3), "dilation_rate": (1, 2)}, (7, 5, 1)),
        E("Conv2D", {"filters": 5, "kernel_size": (1, 3), "dilation_rate": (1, 3)}, (7, 5, 1)),
        R("Conv3D", {"filters": 2, "kernel_size": 2, "data_format": CF}, (3, 4, 4, 4)),
    ]
    return rows


def _transpose_rows() -> list[Row]:
    rows = []
    for rank in (1, 2, 3):
        kind = f"Conv{rank}DTranspose"
        size = {1: (5, 3), 2: (4, 3, 3), 3: (3, 2, 3, 2)}[rank]
        for kernel, strides, padding, out_pad, dilation in [
            (1, 1, "valid", None, 1), (3, 1, "valid", None, 1), (3, 2, "valid", None, 1),
            (2, 3, "valid", None, 1), (3, 2, "same", None, 1), (2, 2, "same", None, 1),
            (3, 2, "valid", 1, 1), (2, 3, "valid", 2, 1), (3, 2, "same", 1, 1), (3, 2, "same", 0, 1),
            (4, 2, "same", 1, 1), (2, 3, "same", 2, 1), (3, 1, "same", 0, 1), (2, 2, "valid", 0, 1),
        ]:
            rows.append(R(kind, {"filters": 2, "kernel_size": kernel, "strides": strides,
                                 "padding": padding, "output_padding": out_pad,
                                 "dilation_rate": dilation}, size))
        rows += [
            R(kind, {"filters": 3, "kernel_size": 2, "use_bias": False}, size),
            # TensorFlow cannot run a 'same' transpose whose even (dilated) kernel gets no output
            # padding: it asks for an output one row short.
            E(kind, {"filters": 2, "kernel_size": 2, "strides": 2, "padding": "same", "output_padding": 0}, size),
            E(kind, {"filters": 2, "kernel_size": 2, "padding": "same", "output_padding": 0}, size),
            E(kind, {"filters": 2, "kernel_size": 2, "padding": "same", "output_padding": 0, "dilation_rate": 3}, size),
            E(kind, {"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": 2}, size),
            E(kind, {"filters": 2, "kernel_size": 3, "strides": 2, "dilation_rate": 2}, size),
            E(kind, {"filters": 2, "kernel_size": 3}, size[1:]),
            R(kind, {"filters": 2, "kernel_size": 2, "data_format": CF}, size[-1:] + size[:-1], expect="cpu"),
            R(kind, {"filters": 2, "kernel_size": 3, "dilation_rate": 2}, size, expect="cpu"),
            R(kind, {"filters": 2, "kernel_size": 2, "padding": "same", "dilation_rate": 3}, size, expect="cpu"),
        ]
    return rows


def _depthwise_rows() -> list[Row]:
    rows = []
    for rank, sep in ((1, False), (2, False), (1, True), (2, True)):
        kind = f"{'SeparableConv' if sep else 'DepthwiseConv'}{rank}D"
        size = {1: (9, 3), 2: (7, 6, 3)}[rank]
        extra = {"filters": 4} if sep else {}
        for kernel, strides, padding, dilation, mult in [
            (1, 1, "valid", 1, 1), (3, 1, "valid", 1, 2), (3, 2, "same", 1, 1), (2, 3, "valid", 1, 3),
            (2, 1, "valid", 3, 1), (3, 2, "valid", 2, 1), (3, 3, "same", 2, 2),
        ]:
            rows.append(R(kind, {**extra, "kernel_size": kernel, "strides": strides, "padding": padding,
                                 "dilation_rate": dilation, "depth_multiplier": mult}, size))
        rows += [
            R(kind, {**extra, "kernel_size": 2, "use_bias": False}, size),
            R(kind, {**extra, "kernel_size": 2, "data_format": CF}, size[-1:] + size[:-1]),
            E(kind, {**extra, "kernel_size": size[0] + 1}, size),
            E(kind, {**extra, "kernel_size": 4, "dilation_rate": 3}, size),
            E(kind, {**extra, "kernel_size": 4, "strides": 2, "dilation_rate": 3}, size),
            E(kind, {**extra, "kernel_size": 2}, size + (2,)),
            *([R(kind, {**extra, "kernel_size": 2, "strides": (1, 2)}, size, expect="cpu"),
               R(kind, {**extra, "kernel_size": 1, "strides": (3, 2), "data_format": CF}, size, expect="cpu"),
               R(kind, {**extra, "kernel_size": 2, "strides": (1, 2), "dilation_rate": 2}, size),
               R(kind, {**extra, "kernel_size": 2, "dilation_rate": (1, 2)}, size)] if rank == 2 else []),
            E(kind, {**extra, "kernel_size": 2}, size[1:]),
        ]
    return rows


def _pool_rows() -> list[Row]:
    rows = []
    for op in ("Max", "Average"):
        for rank in (1, 2, 3):
            kind = f"{op}Pooling{rank}D"
            size = {1: (9, 3), 2: (7, 6, 3), 3: (5, 4, 6, 2)}[rank]
            for pool, strides, padding in [
                (2, None, "valid"), (3, None, "valid"), (3, 1, "valid"), (2, 3, "valid"),
                (3, None, "same"), (2, 1, "same"), (4, 3, "same"), (1, 2, "valid"),
            ]:
                rows.append(R(kind, {"pool_size": pool, "strides": strides, "padding": padding}, size))
            rows += [
                R(kind, {"pool_size": 2, "data_format": CF}, size[-1:] + size[:-1]),
                R(kind, {"pool_size": size[0] + 2, "padding": "same"}, size),
                E(kind, {"pool_size": size[0] + 1}, size),
                E(kind, {"pool_size": 2, "strides": 1}, (1,) + size[1:]),
                E(kind, {"pool_size": 2}, size + (2,)),
                E(kind, {"pool_size": 2}, size[1:]),
            ]
            g = f"Global{op}Pooling{rank}D"
            rows += [
                R(g, {}, size), R(g, {"keepdims": True}, size), R(g, {"data_format": CF}, size),
                R(g, {"data_format": CF, "keepdims": True}, size),
                E(g, {}, size + (2,)), E(g, {}, size[1:]),
            ]
    return rows


def _reshaping_rows() -> list[Row]:
    return [
        R("ZeroPadding2D", {}, (4, 5, 2)),
        R("ZeroPadding2D", {"padding": 2}, (4, 5, 2)),
        R("ZeroPadding2D", {"padding": (1, 3)}, (4, 5, 2)),
        R("ZeroPadding2D", {"padding": ((0, 1), (2, 0))}, (4, 5, 2)),
        R("ZeroPadding2D", {"padding": ((0, 1), (2, 0)), "data_format": CF}, (2, 4, 5)),
        R("ZeroPadding2D", {"padding": 0}, (1, 1, 1)),
        E("ZeroPadding2D", {}, (4, 5)),
        E("ZeroPadding2D", {}, (4, 5, 2, 2)),
        R("Cropping2D", {}, (4, 5, 2)),
        R("Cropping2D", {"cropping": 1}, (4, 5, 2)),
        R("Cropping2D", {"cropping": (1, 2)}, (4, 5, 2)),
        R("Cropping2D", {"cropping": ((0, 3), (2, 2))}, (4, 5, 2)),
        R("Cropping2D", {"cropping": ((1, 0), (0, 1)), "data_format": CF}, (2, 4, 5)),
        E("Cropping2D", {"cropping": 2}, (4, 5, 2)),
        E("Cropping2D", {"cropping": ((0, 0), (5, 0))}, (4, 5, 2)),
        E("Cropping2D", {"cropping": 1}, (4, 5)),
        R("UpSampling2D", {}, (3, 4, 2)),
        R("UpSampling2D", {"size": 3}, (3, 4, 2)),
        R("UpSampling2D", {"size": (1, 2), "data_format": CF}, (2, 3, 4)),
        *[R("UpSampling2D", {"size": (2, 3), "interpolation": i}, (3, 4, 2))
          for i in ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5", "area")],
        E("UpSampling2D", {}, (3, 4)),
        E("UpSampling2D", {}, (3, 4, 2, 1)),
        R("Flatten", {}, (5,)),
        R("Flatten", {}, (3, 4)),
        R("Flatten", {}, (3, 4, 2)),
        R("Flatten", {}, (3, 4, 2, 2)),
        R("Flatten", {"data_format": CF}, (3, 4, 2)),
        R("Flatten", {}, (None, 2)),
        R("Reshape", {"target_shape": (4, 3)}, (12,)),
        R("Reshape", {"target_shape": (-1,)}, (3, 4, 2)),
        R("Reshape", {"target_shape": (2, -1, 3)}, (3, 4, 2)),
        R("Reshape", {"target_shape": (1, 1, 24)}, (3, 4, 2)),
        R("Reshape", {"target_shape": (-1, 2)}, (None, 2)),
        E("Reshape", {"target_shape": (5, -1)}, (3, 4, 2)),
        E("Reshape", {"target_shape": (5, 5)}, (3, 4, 2)),
        E("Reshape", {"target_shape": (-1, -1)}, (3, 4, 2)),
        E("Reshape", {"target_shape": (0, -1)}, (3, 4, 2)),
        R("Permute", {"dims": (2, 1)}, (3, 4)),
        R("Permute", {"dims": (1,)}, (3,)),
        R("Permute", {"dims": (3, 1, 2)}, (3, 4, 2)),
        R("Permute", {"dims": (1, 2, 3)}, (3, 4, 2)),
        R("Permute", {"dims": (4, 2, 3, 1)}, (3, 4, 2, 5)),
        E("Permute", {"dims": (2, 3)}, (3, 4)),
        E("Permute", {"dims": (1, 1)}, (3, 4)),
        E("Permute", {"dims": (2, 1)}, (3, 4, 2)),
        E("Permute", {"dims": (0, 1, 2)}, (3, 4, 2)),
    ]


def _core_rows() -> list[Row]:
    return [
        R("Dense", {"units": 3}, (5,)),
        R("Dense", {"units": 1, "use_bias": False}, (5,)),
        R("Dense", {"units": 4, "activation": "softmax"}, (2, 5)),
        R("Dense", {"units": 2, "activation": "relu"}, (3, 2, 5)),
        R("Dense", {"units": 2}, (None, 5)),
        R("Dense", {"units": 7}, (1,)),
        E("Dense", {"units": 2}, (None,)),
        E("Dense", {"units": 2}, (5, None)),
        E("Dense", {"units": 0}, (5,)),
        R("Dropout", {"rate": 0.5}, (5,)),
        R("Dropout", {"rate": 0.0}, (3, 4, 2)),
        R("Dropout", {"rate": 0.9, "seed": 3}, (3, 4)),
        R("Dropout", {"rate": 0.2, "noise_shape": (None, 1, 4)}, (3, 4)),
        E("Dropout", {"rate": 1.5}, (5,)),
        R("SpatialDropout2D", {"rate": 0.3}, (4, 4, 3)),
        R("SpatialDropout2D", {"rate": 0.3, "data_format": CF}, (3, 4, 4)),
        R("SpatialDropout2D", {"rate": 0.0, "seed": 2}, (1, 1, 5)),
        E("SpatialDropout2D", {"rate": 0.3}, (4, 3)),
        E("SpatialDropout2D", {"rate": 0.3}, (4, 4, 4, 3)),
        R("GaussianNoise", {"stddev": 0.1}, (5,)),
        R("GaussianNoise", {"stddev": 1.0, "seed": 1}, (3, 4, 2)),
        R("GaussianNoise", {"stddev": 0.0}, (3, 4, 2, 2)),
        R("GaussianNoise", {"stddev": 0.5}, (None, 4)),
        E("GaussianNoise", {"stddev": -0.1}, (5,)),
    ]


def _normalisation_rows() -> list[Row]:
    return [
        R("BatchNormalization", {}, (5,)),
        R("BatchNormalization", {}, (4, 4, 3)),
        R("BatchNormalization", {"axis": 1}, (3, 4, 4)),
        R("BatchNormalization", {"axis": -2}, (3, 4, 4)),
        R("BatchNormalization", {"center": False}, (4, 6)),
        R("BatchNormalization", {"scale": False, "center": False}, (4, 6)),
        R("BatchNormalization", {"renorm": True}, (4, 6)),
        R("BatchNormalization", {"momentum": 0.5, "epsilon": 0.1}, (4, 6)),
        E("BatchNormalization", {"axis": 3}, (4, 6)),
        E("BatchNormalization", {"axis": -3}, (4, 6)),
        E("BatchNormalization", {}, (4, None)),
        R("LayerNormalization", {}, (5,)),
        R("LayerNormalization", {}, (4, 4, 3)),
        R("LayerNormalization", {"axis": (1, 2)}, (4, 3, 2)),
        R("LayerNormalization", {"axis": (-2, -1)}, (4, 3, 2)),
        R("LayerNormalization", {"axis": (1, 2, 3)}, (4, 3, 2)),
        R("LayerNormalization", {"axis": 1}, (4, 3, 2)),
        R("LayerNormalization", {"axis": (3, 1)}, (4, 3, 2)),
        R("LayerNormalization", {"center": False}, (4, 6)),
        R("LayerNormalization", {"scale": False}, (4, 6)),
        R("LayerNormalization", {"rms_scaling": True}, (4, 6)),
        R("LayerNormalization", {"rms_scaling": True, "scale": False, "center": False}, (4, 6)),
        E("LayerNormalization", {"axis": 3}, (4, 6)),
        E("LayerNormalization", {"axis": (-1, 2)}, (4, 6)),
        E("LayerNormalization", {"axis": (1, 1)}, (4, 6)),
        E("LayerNormalization", {}, (4, None)),
        # Without weights any axis can be normalised, even the batch axis (with a warning).
        R("LayerNormalization", {"axis": 0, "center": False, "scale": False}, (4, 6)),
        R("LayerNormalization", {"axis": (0, -1), "center": False, "scale": False}, (4, 6)),
        R("LayerNormalization", {"center": False, "scale": False}, (4, None)),
        E("LayerNormalization", {"axis": 0}, (4, 6)),
        E("LayerNormalization", {"axis": (0, 0), "center": False, "scale": False}, (4, 6)),
        E("BatchNormalization", {"axis": 0}, (4, 6)),
        # Normalization (preprocessing): mean, variance and a sample count as non-trainable
        # weights when adapt() learns them; constants (no weights) when they are given.
        R("Normalization", {}, (5,)),
        R("Normalization", {}, (4, 4, 3)),
        R("Normalization", {"axis": ()}, (4, 4, 3)),
        R("Normalization", {"axis": ()}, (None, None)),
        R("Normalization", {"axis": 1}, (4, 4, 3)),
        R("Normalization", {"axis": -2}, (6, 5)),
        R("Normalization", {"axis": (1, 2)}, (4, 5, 3)),
        R("Normalization", {"axis": (3, 1)}, (4, 5, 3)),
        R("Normalization", {"axis": (1, 2, 3)}, (2, 3, 2)),
        R("Normalization", {}, (None, 3)),
        R("Normalization", {"invert": True}, (4, 3)),
        R("Normalization", {"mean": 1.0, "variance": 2.0}, (4,)),
        R("Normalization", {"mean": 1, "variance": 2}, (4, 4, 3)),
        R("Normalization", {"mean": (1.0, 2.0, 3.0, 4.0), "variance": (1.0, 1.0, 2.0, 2.0)}, (4,)),
        R("Normalization", {"mean": (0.5,), "variance": (2.0,)}, (4,)),
        R("Normalization", {"axis": (), "mean": 3.0, "variance": 2.0, "invert": True}, (4, 4, 3)),
        R("Normalization", {"axis": (1, 2), "mean": (1.0, 2.0, 3.0, 4.0, 5.0), "variance": (1.0,) * 5}, (4, 5, 3)),
        R("Normalization", {"axis": (1, 3), "mean": ((1.0, 2.0, 3.0),) * 4, "variance": ((1.0, 1.0, 1.0),) * 4},
          (4, 5, 3)),
        R("Normalization", {"axis": (1, 3), "mean": ((1.0, 2.0, 3.0),), "variance": ((1.0, 1.0, 1.0),)}, (4, 5, 3)),
        R("Normalization", {"axis": (-1, 2), "mean": (1.0, 2.0, 3.0), "variance": (1.0, 1.0, 1.0)}, (4, 3)),
        R("Normalization", {"mean": 0.0, "variance": -1.0}, (4, 3)),
        E("Normalization", {"axis": 2}, (4,)),
        E("Normalization", {"axis": -3}, (4,)),
        E("Normalization", {"axis": 0}, (4,)),
        E("Normalization", {"axis": 1}, (None, 3)),
        E("Normalization", {}, (None,)),
        E("Normalization", {"axis": (-1, 2)}, (4, 3)),
        E("Normalization", {"mean": 1.0}, (4,)),
        E("Normalization", {"variance": 1.0}, (4,)),
        E("Normalization", {"mean": (1.0, 2.0, 3.0), "variance": (1.0, 1.0, 1.0)}, (4,)),
        E("Normalization", {"mean": (1.0, 2.0), "variance": (1.0, 1.0, 1.0)}, (4,)),
        E("Normalization", {"mean": (), "variance": ()}, (4,)),
        E("Normalization", {"mean": ((1.0, 2.0),), "variance": ((1.0, 1.0),)}, (2,)),
        E("Normalization", {"mean": ((1.0, 2.0), (3.0,)), "variance": ((1.0, 1.0), (1.0,))}, (2,)),
        E("Normalization", {"axis": (), "mean": (1.0,), "variance": (1.0,)}, (4, 3)),
        E("Normalization", {"axis": (1, 2), "mean": (1.0, 2.0, 3.0), "variance": (1.0, 1.0, 1.0)}, (4, 5, 3)),
        E("Normalization", {"axis": (-1, 2), "mean": ((1.0, 2.0, 3.0),) * 3, "variance": ((1.0, 1.0, 1.0),) * 3},
          (4, 3)),
        E("Normalization", {"mean": "a", "variance": "b"}, (4,)),
        R("Normalization", {"mean": True, "variance": False}, (4,), expect="stricter",
          why="Keras casts True/False to 1/0; a yes/no mean or variance is surely a mistake"),
    ]


def _activation_rows() -> list[Row]:
    return [
        *[R("Activation", {"activation": a}, (4, 6)) for a in ACTIVATIONS],
        # Keras knows these names but cannot run them as an activation (see ACTIVATIONS).
        E("Activation", {"activation": "glu"}, (4, 6)),
        E("Activation", {"activation": "threshold"}, (4, 6)),
        E("Dense", {"units": 4, "activation": "glu"}, (6,)),
        R("Activation", {"activation": "softmax"}, (3, 4, 2)),
        R("ReLU", {}, (5,)),
        R("ReLU", {"max_value": 6.0}, (3, 4)),
        R("ReLU", {"negative_slope": 0.1, "threshold": 0.5}, (3, 4, 2)),
        R("ReLU", {"max_value": 0.0}, (None, 3)),
        E("ReLU", {"max_value": -1.0}, (5,)),
        R("LeakyReLU", {}, (5,)),
        R("LeakyReLU", {"negative_slope": 0.01}, (3, 4)),
        R("LeakyReLU", {"negative_slope": 1.0}, (3, 4, 2, 2)),
        R("LeakyReLU", {"negative_slope": 0.0}, (None, 3)),
        E("LeakyReLU", {"negative_slope": -1.0}, (5,)),
        R("PReLU", {}, (5,)),
        R("PReLU", {}, (3, 4, 2)),
        R("PReLU", {"shared_axes": (1, 2)}, (3, 4, 2)),
        R("PReLU", {"shared_axes": 1}, (3, 4)),
        R("PReLU", {"shared_axes": (1, 2, 3)}, (3, 4, 2)),
        R("PReLU", {"shared_axes": 1}, (None, 4)),
        E("PReLU", {"shared_axes": (3,)}, (3, 4)),
        E("PReLU", {}, (None, 4)),
        R("ELU", {}, (5,)),
        R("ELU", {"alpha": 0.5}, (3, 4, 2)),
        R("ELU", {"alpha": 2.0}, (None, 4)),
        R("ELU", {"alpha": 0.0}, (2, 3, 4, 2)),
        R("ELU", {"alpha": 1.0}, (1,)),
        R("Softmax", {}, (5,)),
        R("Softmax", {"axis": 1}, (3, 4)),
        R("Softmax", {"axis": -2}, (3, 4, 2)),
        R("Softmax", {"axis": (1, 2)}, (3, 4, 2)),
        E("Softmax", {"axis": 3}, (3, 4)),
        E("Softmax", {"axis": -4}, (3, 4)),
    ]


def _preprocessing_rows() -> list[Row]:
    image = (6, 8, 3)
    rows = [
        R("Rescaling", {"scale": 1 / 255}, (5,)),
        R("Rescaling", {"scale": 2.0, "offset": -1.0}, image),
        R("Rescaling", {"scale": 1 / 127.5, "offset": -1.0}, (None, 3)),
        R("Rescaling", {"scale": -1.0}, (2, 3, 2, 2)),
        R("Rescaling", {"scale": 0.0}, (4, 5)),
        R("Resizing", {"height": 4, "width": 5}, image),
        R("Resizing", {"height": 12, "width": 3, "interpolation": "nearest"}, image),
        R("Resizing", {"height": 4, "width": 4, "crop_to_aspect_ratio": True}, image),
        R("Resizing", {"height": 4, "width": 4, "pad_to_aspect_ratio": True}, image),
        R("Resizing", {"height": 4, "width": 4, "pad_to_aspect_ratio": True, "fill_value": 1.0}, image),
        R("Resizing", {"height": 2, "width": 9, "data_format": CF}, (3, 6, 8)),
        *[R("Resizing", {"height": 3, "width": 3, "interpolation": i}, image)
          for i in ("bilinear", "bicubic", "lanczos3", "lanczos5", "area")],
        E("Resizing", {"height": 4, "width": 4, "crop_to_aspect_ratio": True, "pad_to_aspect_ratio": True}, image),
        E("Resizing", {"height": 4, "width": 4}, (6, 8, 3, 1)),
        E("Resizing", {"height": 0, "width": 4}, image),
        R("RandomFlip", {}, image),
        R("RandomFlip", {"mode": "horizontal"}, image),
        R("RandomFlip", {"mode": "vertical", "seed": 4}, image),
        R("RandomFlip", {"mode": "horizontal_and_vertical"}, (1, 1, 1)),
        R("RandomRotation", {"factor": 0.2}, image),
        R("RandomRotation", {"factor": (-0.1, 0.3), "fill_mode": "constant", "fill_value": 1.0}, image),
        R("RandomRotation", {"factor": 0.5, "interpolation": "nearest", "data_format": CF}, (3, 6, 8)),
        R("RandomZoom", {"height_factor": 0.2}, image),
        R("RandomZoom", {"height_factor": (-0.2, 0.1), "width_factor": 0.3}, image),
        R("RandomZoom", {"height_factor": 0.1, "fill_mode": "nearest"}, image),
        R("RandomZoom", {"height_factor": -0.3, "data_format": CF}, (3, 6, 8)),
        R("RandomRotation", {"factor": 0.0}, (1, 1, 1)),
        R("RandomTranslation", {"height_factor": 0.1, "width_factor": 0.2}, image),
        R("RandomTranslation", {"height_factor": (-0.2, 0.2), "width_factor": 0.0, "fill_mode": "wrap"}, image),
        R("RandomTranslation", {"height_factor": 0.3, "width_factor": (-0.1, 0.0), "fill_mode": "constant",
                                "interpolation": "nearest"}, image),
        R("RandomTranslation", {"height_factor": 0.1, "width_factor": 0.1, "data_format": CF}, (3, 6, 8)),
        R("RandomContrast", {"factor": 0.2}, image),
        R("RandomContrast", {"factor": (0.1, 0.4), "value_range": (0, 1)}, image),
        R("RandomContrast", {"factor": 0.0, "seed": 7}, (4, 4, 1)),
        R("RandomContrast", {"factor": 0.9}, (2, 3, 5)),
        R("RandomBrightness", {"factor": 0.2}, image),
        R("RandomBrightness", {"factor": (-0.1, 0.3), "value_range": (0, 1)}, image),
        R("RandomBrightness", {"factor": 0.5, "seed": 3}, (4, 4, 1)),
        R("RandomBrightness", {"factor": -0.2, "value_range": (-1, 1)}, (2, 3, 5)),
    ]
    for kind, args in [("RandomRotation", {"factor": 0.2}), ("RandomZoom", {"height_factor": 0.2}),
                       ("RandomTranslation", {"height_factor": 0.1, "width_factor": 0.1})]:
        rows += [E(kind, args, (6, 8, 3, 2))]
    for kind, args in [("RandomFlip", {}), ("RandomContrast", {"factor": 0.2}),
                       ("RandomBrightness", {"factor": 0.2}), ("Resizing", {"height": 4, "width": 4})]:
        rows.append(R(kind, args, (6, 8), expect="stricter",
                      why="Keras reads a (batch, h, w) tensor as one unbatched image whose first "
                          "axis is the batch; inside a model that is never meant"))
    return rows


def _merge_rows() -> list[Row]:
    rows = []
    for kind in ("Add", "Multiply", "Average", "Maximum", "Minimum", "Subtract"):
        two = kind == "Subtract"
        rows += [
            R(kind, {}, (5,), (5,)),
            R(kind, {}, (3, 4, 2), (3, 4, 2)),
            R(kind, {}, (3, 4), (1, 4)),
            R(kind, {}, (3, 1), (1, 4)),
            R(kind, {}, (3, 4), (4,)),
            R(kind, {}, (3, 4, 2), (2,)),
            E(kind, {}, (3, 4), (4, 4)),
            E(kind, {}, (3, 4), (3,)),
            E(kind, {}, (4, 4, 2), (2, 2, 2)),
        ]
        if two:
            rows += [E(kind, {}, (5,)), E(kind, {}, (5,), (5,), (5,))]
        else:
            rows += [R(kind, {}, (5,)), R(kind, {}, (5,), (5,), (5,)),
                     R(kind, {}, (2, 3), (1, 3), (2, 1)), E(kind, {}, (2, 3), (2, 3), (3, 3))]
    rows += [
        R("Concatenate", {}, (5,), (3,)),
        R("Concatenate", {}, (4, 4, 2), (4, 4, 3), (4, 4, 1)),
        R("Concatenate", {"axis": 1}, (3, 4), (2, 4)),
        R("Concatenate", {"axis": -2}, (3, 4), (2, 4)),
        R("Concatenate", {"axis": 2}, (3, 4, 2), (3, 1, 2)),
        R("Concatenate", {}, (5,)),
        R("Concatenate", {}, (None, 2), (None, 3)),
        R("Concatenate", {"axis": 1}, (None, 2), (3, 2)),
        E("Concatenate", {}, (4, 4, 2), (2, 2, 2)),
        E("Concatenate", {"axis": 1}, (3, 4), (3, 5)),
        E("Concatenate", {}, (3, 4), (4,)),
        E("Concatenate", {"axis": 3}, (3, 4), (3, 4)),
        # Keras declares (None, 3, 4) but stacks the two batches: the output has twice as many samples.
        E("Concatenate", {"axis": 0}, (3, 4), (3, 4)),
    ]
    return rows


def _operation_rows() -> list[Row]:
    """keras.ops element-wise operations: a tensor and a number (either side), or two tensors."""
    rows = []
    for kind in sorted(OPERATIONS):
        rows += [
            R(kind, {"scalar": 3.0}, (3, 4)),
            R(kind, {"scalar": 0.5, "scalar_first": True}, (4, 4, 2)),
            R(kind, {"scalar": -2}, (5,)),
            R(kind, {}, (3, 4), (3, 4)),
            R(kind, {}, (3, 4), (1, 4)),
            R(kind, {}, (3, 1), (1, 4)),
            R(kind, {}, (4, 4, 2), (1, 1, 2)),
            # Keras declares (None, 4, 4, 2), but the second batch axis meets the first's 4: it fails when run.
            E(kind, {}, (4, 4, 2), (2,)),
            E(kind, {}, (3, 4), (4, 4)),
            E(kind, {}, (3, 4)),  # two tensors wanted, one given
            E(kind, {"scalar": 1.0}, (3, 4), (3, 4)),  # a number and two tensors: three operands
        ]
    return rows


def _keras_helper_rows() -> list[Row]:
    """Keras's own helper layers of keras.applications."""
    return [
        R("LayerScale", {"init_values": 0.1, "projection_dim": 4}, (3, 4)),
        R("LayerScale", {"init_values": 1e-6, "projection_dim": 2}, (5, 5, 2)),
        R("LayerScale", {"init_values": 1.0, "projection_dim": 6}, (6,)),
        R("LayerScale", {"init_values": 0.5, "projection_dim": 4}, (3, 1)),
        R("LayerScale", {"init_values": 0.5, "projection_dim": 1}, (3, 5)),
        E("LayerScale", {"init_values": 0.5, "projection_dim": 4}, (3, 5)),
        R("StochasticDepth", {"drop_path_rate": 0.0}, (4, 4, 2)),
        R("StochasticDepth", {"drop_path_rate": 0.5}, (4, 4, 2)),
        R("StochasticDepth", {"drop_path_rate": 0.1}, (7,)),
        R("StochasticDepth", {"drop_path_rate": 0.2}, (3, 5)),
        R("StochasticDepth", {"drop_path_rate": 0.9}, (2, 2, 2, 2)),
        R("CustomScaleLayer", {"scale": 0.17}, (4, 4, 2), (4, 4, 2)),
        R("CustomScaleLayer", {"scale": 1.0}, (4, 4, 2), (1, 1, 2)),
        R("CustomScaleLayer", {"scale": 0.1}, (6,), (6,)),
        E("CustomScaleLayer", {"scale": 0.2}, (3, 4), (4,)),  # fails when run, as for the operations
        E("CustomScaleLayer", {"scale": 0.5}, (4, 4, 2), (4, 4, 3)),
        E("CustomScaleLayer", {"scale": 0.5}, (4, 4, 2)),
        R("CustomScaleLayer", {"scale": 0.5}, (4, 4, 2), (4, 4, 2), (4, 4, 2), expect="stricter",
          why="Keras's call reads inputs[0] and inputs[1] and ignores a third; a third input is a mistake"),
    ]


ROWS: list[Row] = (_input_rows() + _conv_rows() + _transpose_rows() + _depthwise_rows() + _pool_rows()
                   + _reshaping_rows() + _core_rows() + _normalisation_rows() + _activation_rows()
                   + _preprocessing_rows() + _merge_rows() + _operation_rows() + _keras_helper_rows())


def test_table_covers_every_kind() -> None:
    covered = {row.kind for row in ROWS}
    assert covered == set(CATALOGUE), f"no rows for {sorted(set(CATALOGUE) - covered)}"
    for kind in CATALOGUE:
        assert sum(row.kind == kind for row in ROWS) >= 5, f"too few rows for {kind}"


# --- the two verdicts ---------------------------------------------------------------------

@dataclass
class Verdict:
    valid: bool
    shape: tuple | None = None
    params: tuple[int, int] | None = None
    reason: str = ""
    warnings: list[str] = field(default_factory=list)


def ours(row: Row) -> Verdict:
    """What the analysis says about the layer of ``row`` fed by Inputs of ``row.shapes``."""
    design = Design()
    if row.kind == "InputLayer":
        design.add("InputLayer", "layer", dict(row.args))
    else:
        names = [design.add("InputLayer", f"in{i}", {"shape": s}).name for i, s in enumerate(row.shapes)]
        design.add(row.kind, "layer", dict(row.args), inputs=names)
    report = analyse(design).nodes["layer"]
    warnings = [p.message for p in report.problems if p.severity == "warning"]
    if not report.valid:
        return Verdict(False, reason="; ".join(p.message for p in report.errors), warnings=warnings)
    return Verdict(True, report.output_shape, (report.trainable_params, report.non_trainable_params),
                   warnings=warnings)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def message(exc: BaseException) -> str:
    lines = [ln.strip() for ln in _ANSI.sub("", str(exc)).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("Exception encountered")]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def cpu_only_failure(exc: BaseException) -> bool:
    """TensorFlow's CPU kernels refuse channels_first for some convolutions, and dilation in
    transposed ones; a GPU runs them."""
    text = str(exc)
    return any(marker in text for marker in ("only supports NHWC", "NHWC tensor format",
                                             "only supports NDHWC", "support dilation rates larger than 1",
                                             "equal length strides"))


def theirs(keras: Any, row: Row) -> Verdict:
    """What Keras says: construct, call on symbolic inputs, then run on zeros (batch of 2)."""
    import numpy as np

    if row.kind == "InputLayer":
        try:
            args = {"batch_size": None, **row.args}
            tensor = keras.Input(shape=args["shape"], batch_size=args["batch_size"])
        except Exception as exc:  # noqa: BLE001 - whatever Keras raises is its verdict
            return Verdict(False, reason=message(exc))
        return Verdict(True, tuple(tensor.shape), (0, 0))

    node = Node("layer", row.kind, dict(row.args))
    try:
        kwargs = keras_arguments(node)
    except KerasBuildError:  # an argument our catalogue refuses: give Keras the raw value
        kwargs = {k: (list(v) if isinstance(v, tuple) and k in ("axis", "shared_axes") else v)
                  for k, v in row.args.items()}
    merge = CATALOGUE[row.kind].max_inputs != 1
    operation = row.kind in OPERATIONS

    def arguments(tensors: list[Any]) -> list[Any]:
        """What the layer is called on: a list (merges), the operands (operations, the number
        put where the row says, whatever the count), or one tensor."""
        if operation:
            scalar = row.args.get("scalar")
            if scalar is None:
                return tensors
            return [scalar, *tensors] if row.args.get("scalar_first") else [*tensors, scalar]
        return [tensors] if merge else [tensors[0]]

    try:
        layer = keras_class(row.kind)(**({} if operation else kwargs))
        inputs = [keras.Input(shape=s) for s in row.shapes]
        symbolic = layer(*arguments(inputs))
        shape = tuple(symbolic.shape)
        if not operation:
            try:
                computed = layer.compute_output_shape([tuple(t.shape) for t in inputs] if merge
                                                      else tuple(inputs[0].shape))
            except NotImplementedError:  # Keras's helper layers leave it to a symbolic call
                computed = shape
            assert tuple(computed) == shape, f"Keras disagrees with itself: {computed} vs {shape}"
    except AssertionError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever Keras raises is its verdict
        return Verdict(False, reason=message(exc))
    # An operation has no weights (nor the attributes that list them).
    trainable = sum(int(prod(w.shape)) for w in getattr(layer, "trainable_weights", []))
    frozen = sum(int(prod(w.shape)) for w in getattr(layer, "non_trainable_weights", []))
    zeros = [np.zeros((2,) + tuple(1 if d is None else d for d in s), "float32") for s in row.shapes]
    for training in (False, True):
        try:
            out = layer(*arguments(zeros), **({} if operation else {"training": training}))
        except Exception as exc:  # noqa: BLE001 - whatever Keras raises is its verdict
            return Verdict(False, reason=("cpu-only " if cpu_only_failure(exc) else "") + message(exc))
        ran = tuple(out.shape)
        expected = tuple(2 if d is None and i == 0 else d for i, d in enumerate(shape))
        if any(e is not None and e != r for e, r in zip(expected, ran)) or len(ran) != len(shape):
            return Verdict(False, reason=f"declares {shape} but produces {ran} (training={training})")
    return Verdict(True, shape, (trainable, frozen))


@pytest.fixture(scope="module")
def keras() -> Any:
    import keras

    yield keras
    keras.backend.clear_session()


_calls = [0]


@pytest.fixture(autouse=True)
def _fresh_session_now_and_then(keras: Any) -> None:
    """Layers pile up in Keras's global state; start afresh every 50 tests."""
    _calls[0] += 1
    if _calls[0] % 50 == 0:
        keras.backend.clear_session()


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_row_matches_keras(keras: Any, row: Row) -> None:
    mine, truth = ours(row), theirs(keras, row)
    context = f"\n  ours:  {mine}\n  keras: {truth}"
    if row.expect == "cpu":
        # Whether this CPU's kernels run it depends on the CPU and TensorFlow's build (oneDNN
        # runs some channels_first convolutions on AVX-512 machines): fail as CPU-only, or agree.
        if truth.valid:
            assert (mine.shape, mine.params) == (truth.shape, truth.params), f"shapes/params differ{context}"
        else:
            assert truth.reason.startswith("cpu-only"), f"expected a CPU-only failure{context}"
        assert mine.valid, f"Convas must accept it (a GPU runs it){context}"
        assert mine.warnings, f"Convas must warn that a CPU cannot run it{context}"
        return
    if row.expect == "stricter":
        assert truth.valid and not mine.valid, f"{row.why}{context}"
        return
    assert mine.valid == truth.valid, f"validity differs{context}"
    assert mine.valid == (row.expect == "ok"), f"both {'accept' if mine.valid else 'refuse'} it, " \
                                               f"but the row expects {row.expect}{context}"
    if mine.valid:
        assert mine.shape == truth.shape, f"output shape differs{context}"
        assert mine.params == truth.params, f"(trainable, non-trainable) parameters differ{context}"


# --- argument names and defaults ------------------------------------------------------------

# The fewest arguments each Keras constructor needs; everything else keeps its default.
REQUIRED: dict[str, dict[str, Any]] = {
    **{k: {"filters": 2, "kernel_size": 3} for k in CATALOGUE
       if k.startswith(("Conv", "SeparableConv"))},
    **{k: {"kernel_size": 3} for k in CATALOGUE if k.startswith("DepthwiseConv")},
    **{f"AveragePooling{r}D": {"pool_size": 2} for r in (1, 2, 3)},
    "Dense": {"units": 2}, "Dropout": {"rate": 0.5}, "SpatialDropout2D": {"rate": 0.5},
    "GaussianNoise": {"stddev": 0.1}, "Reshape": {"target_shape": (2,)}, "Permute": {"dims": (1,)},
    "Activation": {"activation": "relu"}, "Rescaling": {"scale": 0.5},
    "Resizing": {"height": 4, "width": 4}, "RandomRotation": {"factor": 0.1},
    "RandomZoom": {"height_factor": 0.1},
    "RandomTranslation": {"height_factor": 0.1, "width_factor": 0.1},
    "RandomContrast": {"factor": 0.1}, "RandomBrightness": {"factor": 0.1},
}


REQUIRED.update({"LayerScale": {"init_values": 0.1, "projection_dim": 4},
                 "StochasticDepth": {"drop_path_rate": 0.1}, "CustomScaleLayer": {"scale": 0.2}})


@pytest.mark.parametrize("kind", sorted(CATALOGUE))
def test_argument_names_and_defaults_match_keras(keras: Any, kind: str) -> None:
    spec = CATALOGUE[kind]
    cls = keras_class(kind)
    if kind in OPERATIONS:
        # An operation's config is its name only: its number and the number's side are operands
        # of the call (read from the inbound node), which is what the two arguments say.
        assert set(cls(name="op").get_config()) == {"name"}
        assert [p.name for p in spec.params] == ["scalar", "scalar_first"]
        assert all(p.default is inspect.Parameter.empty or name in ("self", "name")
                   for name, p in inspect.signature(cls.__init__).parameters.items())
        return
    if kind == "InputLayer":
        layer = cls(shape=(3,))
        assert layer.get_config()["batch_shape"] == (None, 3)
        return
    given = REQUIRED.get(kind, {})
    config = cls(**given).get_config()
    signature = inspect.signature(cls.__init__).parameters
    for param in spec.params:
        assert param.name in config, f"{kind} has no argument {param.name!r} in its Keras config"
        keras_default = signature.get(param.name)
        keras_requires = keras_default is not None and keras_default.default is inspect.Parameter.empty
        assert param.required == keras_requires, (
            f"{kind}.{param.name}: required={param.required} but Keras "
            f"{'requires' if keras_requires else 'does not require'} it")
        if param.name in given:
            continue
        mine = normalise_value(param, param.default)
        theirs_ = normalise_value(param, config[param.name])
        if param.name == "strides" and mine is None:
            # Keras stores a pooling layer's strides=None as the pool size it stands for.
            pool = spec.param("pool_size")
            mine = normalise_value(pool, given.get("pool_size", pool.default))
        assert mine == theirs_, f"{kind}.{param.name}: our default {param.default!r} ≠ Keras's {config[param.name]!r}"
    for name, p in signature.items():
        if p.default is inspect.Parameter.empty and name not in ("self", "kwargs", "args"):
            assert any(q.name == name for q in spec.params), \
                f"{kind}: Keras requires {name!r}, which the catalogue lacks"
