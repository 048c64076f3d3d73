"""Understanding a trained classifier: how well it does, where it errs, and what it looks at.

:func:`evaluate` runs a model over one split of a :class:`~engine.datasets.Dataset` and returns an
:class:`Evaluation`: the class probabilities of every sample, accuracy and loss, the confusion
matrix and per-class precision/recall/F1, plus the orderings a user browses mistakes by
(:meth:`Evaluation.cell`, :meth:`Evaluation.ranked`). All numbers are computed here so that the
GUI and any other caller show the same ones; an :class:`Evaluation` can also be made from known
probabilities (:meth:`Evaluation.from_probabilities`) without TensorFlow.

:func:`feature_maps` and :func:`grad_cam` look inside the model for one image: the activations of
a convolutional layer, and the Grad-CAM heat map of where the evidence for a class lies
(Selvaraju et al., 2017). Keras/TensorFlow are imported inside the functions only.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .datasets import Dataset, Split
from .errors import ConvasError

SPLIT_ORDER = ("test", "validation", "train")
# Probabilities are clipped to this before taking logs, so a confident mistake costs a large but
# finite loss (Keras clips the same way).
_EPSILON = 1e-7


class EvaluationError(ConvasError):
    """A model could not be evaluated or inspected; the message says what to change."""


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class ClassScores:
    """How well one class is recognised. ``support`` is its number of true samples."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Evaluation:
    """A model's predictions on one split and the scores derived from them.

    ``probabilities`` has one row per sample and one column per class; ``confusion`` has the true
    class as row and the predicted class as column.
    """

    split_name: str
    class_names: list[str]
    y_true: np.ndarray
    probabilities: np.ndarray
    loss: float | None
    accuracy: float
    confusion: np.ndarray
    per_class: list[ClassScores]

    @classmethod
    def from_probabilities(cls, y_true: Any, probabilities: Any, class_names: list[str], split_name: str,
                           loss: float | None = None) -> Evaluation:
        """Scores of known predictions. ``loss`` None computes the sparse categorical
        cross-entropy of ``probabilities`` (what Keras reports for a softmax classifier)."""
        from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

        y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
        probabilities = np.asarray(probabilities, dtype=np.float32)
        classes = len(class_names)
        if probabilities.ndim != 2 or probabilities.shape != (len(y_true), classes):
            raise EvaluationError(f"expected probabilities shaped ({len(y_true)}, {classes}) for "
                                  f"{len(y_true)} samples of {classes} classes; got {probabilities.shape}")
        if len(y_true) == 0:
            raise EvaluationError(f"the {split_name} split is empty; there is nothing to evaluate")
        if y_true.min() < 0 or y_true.max() >= classes:
            raise EvaluationError(f"labels must lie between 0 and {classes - 1}; found "
                                  f"{int(y_true.min())} to {int(y_true.max())}")
        y_pred = probabilities.argmax(axis=1)
        labels = list(range(classes))
        confusion = confusion_matrix(y_true, y_pred, labels=labels).astype(np.int64)
        precision, recall, f1, support = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, zero_division=0)
        per_class = [ClassScores(str(name), float(precision[k]), float(recall[k]), float(f1[k]),
                                 int(support[k])) for k, name in enumerate(class_names)]
        if loss is None:
            loss = cross_entropy(y_true, probabilities)
        return cls(split_name=split_name, class_names=[str(n) for n in class_names], y_true=y_true,
                   probabilities=probabilities, loss=float(loss), accuracy=float(np.mean(y_pred == y_true)),
                   confusion=confusion, per_class=per_class)

    @property
    def y_pred(self) -> np.ndarray:
        """The predicted class of every sample (the most probable one)."""
        return self.probabilities.argmax(axis=1)

    def __len__(self) -> int:
        return len(self.y_true)

    def cell(self, true_class: int, predicted_class: int) -> np.ndarray:
        """Indices of the samples of ``true_class`` predicted as ``predicted_class``, the most
        confident predictions first: an off-diagonal cell lists the worst mistakes first."""
        indices = np.flatnonzero((self.y_true == true_class) & (self.y_pred == predicted_class))
        confidence = self.probabilities[indices, predicted_class]
        return indices[np.argsort(-confidence, kind="stable")]

    def ranked(self, best_first: bool = True) -> np.ndarray:
        """Every sample index, ordered by the probability given to its true class: highest first
        (``best_first``) or lowest first (the samples the model gets most wrong)."""
        scores = self.true_probabilities()
        return np.argsort(-scores if best_first else scores, kind="stable")

    def true_probabilities(self) -> np.ndarray:
        """The probability each sample's true class received."""
        return self.probabilities[np.arange(len(self.y_true)), self.y_true]

    def macro_average(self) -> ClassScores:
        """Unweighted mean of the per-class scores (every class counts the same)."""
        scores = self.per_class
        return ClassScores("macro average", precision=float(np.mean([s.precision for s in scores])),
                           recall=float(np.mean([s.recall for s in scores])),
                           f1=float(np.mean([s.f1 for s in scores])), support=sum(s.support for s in scores))


def cross_entropy(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean sparse categorical cross-entropy of ``probabilities`` for the labels ``y_true``."""
    picked = probabilities[np.arange(len(y_true)), y_true].astype(np.float64)
    return float(-np.mean(np.log(np.clip(picked, _EPSILON, 1.0))))


# --------------------------------------------------------------------------------------------
# Evaluating a model


def choose_split(dataset: Dataset, split: str | None = None) -> tuple[str, Split]:
    """The split to evaluate: the one named, else test, else validation, else train (data the
    model has not learned from is the honest judge; train is the last resort)."""
    if split is not None:
        if split not in SPLIT_ORDER:
            raise EvaluationError(f"unknown split {split!r}; choose one of {', '.join(SPLIT_ORDER)}")
        chosen = getattr(dataset, split)
        if chosen is None or len(chosen) == 0:
            raise EvaluationError(f"the dataset {dataset.name!r} has no {split} samples; choose another split")
        return split, chosen
    for name in SPLIT_ORDER:
        chosen = getattr(dataset, name)
        if chosen is not None and len(chosen) > 0:
            return name, chosen
    raise EvaluationError(f"the dataset {dataset.name!r} has no samples to evaluate on")


def evaluate(model: Any, dataset: Dataset, batch_size: int = 64, split: str | None = None) -> Evaluation:
    """Predict every sample of one split (see :func:`choose_split`) with ``model`` and score it.

    The loss is Keras's own (``model.evaluate``) when the model is compiled, so it matches the
    training curves; otherwise it is the cross-entropy of the predictions. A model with one
    sigmoid unit for two classes is read as ``[1 - p, p]``; outputs that are not probabilities
    (logits) go through a softmax first.
    """
    split_name, data = choose_split(dataset, split)
    classes = len(dataset.class_names)
    single_input_output(model, "evaluate it on an image dataset")
    units = model.outputs[0].shape[-1]
    if units != classes and not (units == 1 and classes == 2):
        raise EvaluationError(f"the model's output has {units} unit{'s' if units != 1 else ''} but the "
                              f"dataset {dataset.name!r} has {classes} classes; set the last layer's "
                              f"units to {classes} (or 1 with sigmoid for 2 classes) and train again")
    expected = tuple(model.inputs[0].shape[1:])
    if not shape_fits(expected, data.sample_shape):
        raise EvaluationError(f"the {split_name} images are {data.sample_shape} but the model's input is "
                              f"{expected}; load the dataset at the model's input size")

    batches = []
    for x, _ in data.as_tf_dataset(int(batch_size), shuffle=False):
        batches.append(np.asarray(model(x, training=False), dtype=np.float32))
    outputs = np.concatenate(batches, axis=0).reshape(len(data), -1)
    probabilities = as_probabilities(outputs, classes)
    loss = _keras_loss(model, data, batch_size)
    return Evaluation.from_probabilities(data.y, probabilities, dataset.class_names, split_name, loss)


def as_probabilities(outputs: np.ndarray, classes: int) -> np.ndarray:
    """Model outputs as one probability row per sample (see :func:`evaluate`)."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.shape[1] == 1 and classes == 2:
        p = outputs[:, 0]
        if p.min() < 0 or p.max() > 1:  # a logit: the sigmoid was left to the loss
            p = 1.0 / (1.0 + np.exp(-p))
        return np.stack([1.0 - p, p], axis=1).astype(np.float32)
    sums = outputs.sum(axis=1)
    if outputs.min() < 0 or outputs.max() > 1 or not np.allclose(sums, 1.0, atol=1e-3):
        shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        outputs = shifted / shifted.sum(axis=1, keepdims=True)
    return outputs.astype(np.float32)


def _keras_loss(model: Any, data: Split, batch_size: int) -> float | None:
    """``model.evaluate``'s loss, or None when the model is not compiled or Keras cannot say."""
    if not getattr(model, "compiled", False) or getattr(model, "loss", None) is None:
        return None
    try:
        logs = model.evaluate(data.as_tf_dataset(int(batch_size)), verbose=0, return_dict=True)
    except Exception:  # noqa: BLE001 - a loss Keras cannot compute here falls back to cross-entropy
        return None
    loss = logs.get("loss")
    return float(loss) if loss is not None and math.isfinite(float(loss)) else None


def shape_fits(expected: tuple, actual: tuple) -> bool:
    """Whether a sample of shape ``actual`` fits a model input of shape ``expected`` (None: any size)."""
    return len(expected) == len(actual) and all(e is None or e == a for e, a in zip(expected, actual))


def single_input_output(model: Any, purpose: str) -> None:
    """Raise unless ``model`` has exactly one input and one output."""
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):  # a Sequential model never called has neither
        inputs = outputs = None
    if not inputs or not outputs:
        raise EvaluationError(f"the model has not been built yet; train it before you {purpose}")
    if len(inputs) != 1 or len(outputs) != 1:
        raise EvaluationError(f"the model has {len(inputs)} input(s) and {len(outputs)} output(s); "
                              f"Convas can {purpose} only for a model with one image input and one output")


# --------------------------------------------------------------------------------------------
# Looking inside


@dataclass
class GradCam:
    """Where the evidence for ``class_index`` lies in one image: ``heatmap`` has the input's
    height and width, with values in [0, 1] (1 = the strongest evidence). All zeros means no
    channel of the layer raises the class's score on average over its positions."""

    heatmap: np.ndarray
    class_index: int
    layer_name: str
    probability: float


# Sub-models that read a layer's output, per model: {id(model): {key: sub-model}}. Building a
# keras.Model takes tens of milliseconds, too slow to repeat while a user flips through samples.
# Entries go when their model is garbage-collected.
_SUBMODELS: dict[int, dict[tuple, Any]] = {}


def _cached(model: Any, key: tuple, build: Callable[[], Any]) -> Any:
    per_model = _SUBMODELS.get(id(model))
    if per_model is None:
        per_model = _SUBMODELS[id(model)] = {}
        weakref.finalize(model, _SUBMODELS.pop, id(model), None)
    if key not in per_model:
        per_model[key] = build()
    return per_model[key]


def _layer_output(layer: Any) -> Any | None:
    """The layer's single output tensor, or None (a layer called several times, or with several
    outputs, has no single feature map to show)."""
    try:
        output = layer.output
    except (AttributeError, ValueError, RuntimeError):
        return None
    return output if hasattr(output, "shape") else None


def _is_input_layer(layer: Any) -> bool:
    return type(layer).__name__ == "InputLayer"


def feature_map_layers(model: Any) -> list[str]:
    """Names of the layers whose output is an image-like ``(batch, H, W, C)`` tensor (convolutions,
    pooling, normalisation, activations, merges...), in model order, without the input layer."""
    names = []
    for layer in getattr(model, "layers", []):
        if _is_input_layer(layer):
            continue
        output = _layer_output(layer)
        if output is not None and len(output.shape) == 4:
            names.append(layer.name)
    return names


# Layers that transform each position on its own (or merge equal-sized maps), keeping the map of a
# convolution before them just as sharp: Grad-CAM may look past a convolution through these.
_PER_POSITION = frozenset({
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
    "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
    "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
})


def _is_convolution(layer: Any) -> bool:
    return "Conv" in type(layer).__name__


def _map_size(layer: Any) -> tuple | None:
    """The (height, width) of an image-like layer's output, else None."""
    output = _layer_output(layer)
    return tuple(output.shape[1:3]) if output is not None and len(output.shape) == 4 else None


def default_grad_cam_layer(model: Any) -> str | None:
    """The layer Grad-CAM looks at unless told: the last convolution, or the last of the
    normalisations, activations and merges that follow it at the same height and width (conv →
    batch norm → ReLU gives the ReLU). Without convolutions, the last image-like layer with more
    than one position; None when the model has no image-like layer at all.

    Not the last image-like layer: that is usually a pooling layer, whose coarse map comes out
    empty more often (seed CNN after two epochs, 40 validation digits: 10 empty maps at the last
    pooling layer, 7 at the convolution before it) and is blockier where it is not.
    """
    layers = [layer for layer in getattr(model, "layers", []) if not _is_input_layer(layer)]
    convolutions = [i for i, layer in enumerate(layers) if _is_convolution(layer) and _map_size(layer)]
    if not convolutions:
        sized = [(layer, size) for layer in layers if (size := _map_size(layer)) is not None]
        images = [layer for layer, _ in sized]
        spread = [layer for layer, size in sized if math.prod(d or 2 for d in size) > 1]
        return (spread or images)[-1].name if images else None
    chosen = convolutions[-1]
    size = _map_size(layers[chosen])
    for i in range(chosen + 1, len(layers)):
        if type(layers[i]).__name__ not in _PER_POSITION or _map_size(layers[i]) != size:
            break
        chosen = i
    return layers[chosen].name


def _feature_layer(model: Any, layer_name: str) -> Any:
    """The layer named ``layer_name``, checked to have a 4-D output."""
    layers = feature_map_layers(model)
    if layer_name not in layers:
        known = {layer.name for layer in getattr(model, "layers", [])}
        if layer_name in known:
            raise EvaluationError(f"the layer {layer_name!r} does not output images (batch, height, width, "
                                  f"channels); choose one of {_listing(layers)}")
        raise EvaluationError(f"the model has no layer named {layer_name!r}; choose one of {_listing(layers)}")
    return model.get_layer(layer_name)


def _listing(names: list[str]) -> str:
    if not names:
        return "none: the model has no convolutional layers"
    shown = ", ".join(names[:8])
    return shown + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def _one_image(model: Any, image: Any, purpose: str) -> np.ndarray:
    """``image`` as a batch of one, checked against the model's input."""
    single_input_output(model, purpose)
    image = np.asarray(image, dtype=np.float32)
    expected = tuple(model.inputs[0].shape[1:])
    if len(expected) != 3:
        raise EvaluationError(f"the model's input is {expected}, not an image (height, width, channels); "
                              f"Convas can {purpose} only for image models")
    if image.ndim == 2 and expected[2] == 1:
        image = image[..., None]
    if not shape_fits(expected, image.shape):
        raise EvaluationError(f"the image is {image.shape} but the model's input is {expected}")
    return image[None]


def feature_maps(model: Any, layer_name: str, image: Any) -> np.ndarray:
    """The ``(H, W, C)`` float32 activations of ``layer_name`` for one ``(H, W, C)`` image."""
    import keras

    batch = _one_image(model, image, "show feature maps")
    layer = _feature_layer(model, layer_name)
    reader = _cached(model, ("features", layer_name),
                     lambda: keras.Model(model.inputs[0], layer.output, name=f"convas_features_{layer_name}"))
    return np.asarray(reader(batch, training=False), dtype=np.float32)[0]


def grad_cam(model: Any, image: Any, class_index: int | None = None, layer_name: str | None = None,
             independent: bool = False) -> GradCam:
    """Grad-CAM of one image for ``class_index`` (None: the predicted class) at ``layer_name``
    (None: :func:`default_grad_cam_layer`). ``independent`` says the outputs are scores of
    their own (a multi-label model's sigmoids): the map and probability are of that unit's score,
    and None picks the highest-scoring label.

    The heat map is the ReLU of the layer's channels weighted by their spatially averaged
    gradients, normalised to [0, 1] and resized to the input. The class score is the model's
    output, after the softmax: its gradient weighs a class against the others, whereas the
    pre-softmax score left the map empty for half to nearly all digits at the seed CNN's layers
    (its Flatten + Dense head makes position-averaged gradients cancel out).
    """
    import keras
    import tensorflow as tf

    batch = _one_image(model, image, "compute Grad-CAM")
    if layer_name is None:
        layer_name = default_grad_cam_layer(model)
        if layer_name is None:
            raise EvaluationError("Grad-CAM needs a layer with an image-like output (a convolution or "
                                  "pooling layer); the model has none")
    layer = _feature_layer(model, layer_name)
    reader = _cached(model, ("gradcam", layer_name),
                     lambda: keras.Model(model.inputs[0], [layer.output, model.outputs[0]],
                                         name=f"convas_gradcam_{layer_name}"))
    with tf.GradientTape() as tape:
        activations, outputs = reader(tf.convert_to_tensor(batch), training=False)
        if outputs.shape[-1] == 1 and not independent:  # one sigmoid unit scores class 1; class 0 its complement
            outputs = tf.concat([1.0 - outputs, outputs], axis=-1)
        classes = int(outputs.shape[-1])
        if class_index is None:
            class_index = int(tf.argmax(outputs[0]))
        class_index = int(class_index)
        if not 0 <= class_index < classes:
            raise EvaluationError(f"there is no class {class_index}; the model tells {classes} classes "
                                  f"apart (0 to {classes - 1})")
        target = outputs[0, class_index]
    gradients = tape.gradient(target, activations)
    if gradients is None:
        raise EvaluationError(f"the output does not depend on the layer {layer_name!r} through differentiable "
                              "operations; choose another layer")
    weights = tf.reduce_mean(gradients, axis=(1, 2))  # (1, C): how much each channel matters
    cam = tf.nn.relu(tf.reduce_sum(activations * weights[:, None, None, :], axis=-1))[..., None]
    height, width = batch.shape[1:3]
    cam = tf.image.resize(cam, (height, width), method="bilinear")[0, ..., 0].numpy()
    probability = (float(np.asarray(outputs)[0, class_index]) if independent
                   else float(as_probabilities(np.asarray(outputs), classes)[0, class_index]))
    return GradCam(heatmap=normalise(cam), class_index=class_index, layer_name=layer_name,
                   probability=probability)


def normalise(values: np.ndarray) -> np.ndarray:
    """Non-negative ``values`` scaled to [0, 1] by their maximum; an all-zero (or non-finite) map
    stays zero rather than dividing by zero."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    values = np.maximum(values, 0.0)
    peak = float(values.max()) if values.size else 0.0
    return (values / peak if peak > 0 else np.zeros_like(values)).astype(np.float32)
