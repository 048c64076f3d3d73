"""The layer catalogue: one :class:`LayerSpec` per Keras layer class Convas understands."""

from __future__ import annotations

import re

from . import activations, convolution, core, merge, normalization, pooling, preprocessing, reshaping
from .base import ACTIVATIONS, Field, Fix, FixAction, LayerError, LayerSpec, Param, ParamKind

GROUPS: tuple[str, ...] = (
    "Input", "Convolution", "Pooling", "Reshaping", "Core", "Normalization", "Regularization",
    "Activation", "Preprocessing & Augmentation", "Merge",
)

CATALOGUE: dict[str, LayerSpec] = {
    spec.kind: spec
    for module in (core, convolution, pooling, reshaping, normalization, activations, preprocessing, merge)
    for spec in module.SPECS
}

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


def spec_for(kind: str) -> LayerSpec:
    """The spec of a supported layer kind (KeyError otherwise)."""
    return CATALOGUE[ALIASES.get(kind, kind)]


def snake_name(kind: str) -> str:
    """Keras's default layer name stem for a class: ``Conv2D`` → ``conv2d``, ``ReLU`` → ``re_lu``."""
    name = re.sub(r"\W+", "", kind)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


__all__ = ["ACTIVATIONS", "ALIASES", "CATALOGUE", "GROUPS", "Field", "Fix", "FixAction", "LayerError", "LayerSpec",
           "Param", "ParamKind", "canonical_kind", "snake_name", "spec_for"]
