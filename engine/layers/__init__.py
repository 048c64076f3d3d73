"""The layer catalogue: one :class:`LayerSpec` per Keras layer class Convas understands.

Most kinds are the ``keras.layers`` class of the same name. The others say where Keras keeps
them in :data:`KERAS_CLASSES` (kind → Keras module and class): operations stored as layers
(:mod:`.ops`, ``OpsAdd`` is ``keras.src.ops.numpy.Add``) and Keras's helper layers in
``keras.applications`` (:mod:`.keras_helpers`). Import recognises those by module and class
(:func:`kind_of_keras_class`), build creates them from there (:func:`keras_class_of`).
"""

from __future__ import annotations

import re

from . import (
    activations, convolution, core, keras_helpers, merge, normalization, ops, pooling, preprocessing, reshaping)
from .base import ACTIVATIONS, Field, Fix, FixAction, LayerError, LayerSpec, Param, ParamKind

GROUPS: tuple[str, ...] = (
    "Input", "Convolution", "Pooling", "Reshaping", "Core", "Normalization", "Regularization",
    "Activation", "Preprocessing & Augmentation", "Merge", "Operations", "Keras applications",
)

CATALOGUE: dict[str, LayerSpec] = {
    spec.kind: spec
    for module in (core, convolution, pooling, reshaping, normalization, activations, preprocessing, merge, ops,
                   keras_helpers)
    for spec in module.SPECS
}

# Kinds that are not the keras.layers class of their name: kind → (Keras module, Keras class).
KERAS_CLASSES: dict[str, tuple[str, str]] = {**ops.KERAS_CLASSES, **keras_helpers.KERAS_CLASSES}
_KIND_OF_CLASS: dict[tuple[str, str], str] = {source: kind for kind, source in KERAS_CLASSES.items()}
# Kinds that are Keras operations (called on their operands), not layers (called on a tensor or a list).
OPERATIONS: frozenset[str] = frozenset(ops.KERAS_CLASSES)

# Other names Keras accepts for the same classes (older files and shorthands).
ALIASES: dict[str, str] = {
    "Input": "InputLayer",
    "Convolution1D": "Conv1D", "Convolution2D": "Conv2D", "Convolution3D": "Conv3D",
    "Convolution2DTranspose": "Conv2DTranspose", "Deconvolution2D": "Conv2DTranspose",
    "SeparableConvolution2D": "SeparableConv2D", "SeparableConvolution1D": "SeparableConv1D",
    "MaxPool1D": "MaxPooling1D", "MaxPool2D": "MaxPooling2D", "MaxPool3D": "MaxPooling3D",
    "AvgPool1D": "AveragePooling1D", "AvgPool2D": "AveragePooling2D", "AvgPool3D": "AveragePooling3D",
    "GlobalMaxPool1D": "GlobalMaxPooling1D", "GlobalMaxPool2D": "GlobalMaxPooling2D",
    "GlobalMaxPool3D": "GlobalMaxPooling3D", "GlobalAvgPool1D": "GlobalAveragePooling1D",
    "GlobalAvgPool2D": "GlobalAveragePooling2D", "GlobalAvgPool3D": "GlobalAveragePooling3D",
}


def canonical_kind(kind: str) -> str | None:
    """The catalogue name for a Keras class name or alias, or None when it is not supported."""
    kind = ALIASES.get(kind, kind)
    return kind if kind in CATALOGUE else None


def kind_of_keras_class(module: str, class_name: str) -> str | None:
    """The catalogue kind of a class Keras keeps outside ``keras.layers`` (an operation, a helper
    layer of ``keras.applications``), recognised by its module and class together; None for any
    other pair, including a class of the same name from another module."""
    return _KIND_OF_CLASS.get((module, class_name))


def keras_class_of(kind: str) -> tuple[str, str]:
    """(module, class) of the Keras class that builds ``kind``: ``("keras.layers", kind)`` for
    most kinds, the module Keras keeps it in for the others (:data:`KERAS_CLASSES`)."""
    return KERAS_CLASSES.get(kind, ("keras.layers", kind))


def spec_for(kind: str) -> LayerSpec:
    """The spec of a supported layer kind (KeyError otherwise)."""
    return CATALOGUE[ALIASES.get(kind, kind)]


def snake_name(kind: str) -> str:
    """Keras's default layer name stem for a class: ``Conv2D`` → ``conv2d``, ``ReLU`` → ``re_lu``."""
    name = re.sub(r"\W+", "", kind)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


__all__ = ["ACTIVATIONS", "ALIASES", "CATALOGUE", "GROUPS", "KERAS_CLASSES", "OPERATIONS", "Field", "Fix", "FixAction",
           "LayerError", "LayerSpec", "Param", "ParamKind", "canonical_kind", "keras_class_of", "kind_of_keras_class",
           "snake_name", "spec_for"]
