"""Understanding a trained model of any task but single-label classification (which
:mod:`engine.evaluation` scores): multi-label, regression, reconstruction and segmentation.

Each task has a result class holding what its Evaluation view shows, computed here (numpy only)
so the GUI, the CLI and tests show the same numbers; each can be made from known arrays
(``from_arrays``) without TensorFlow. :func:`evaluate_task` runs a model over one split and
returns the result of the task (a classification gives :class:`engine.evaluation.Evaluation`).
Pictures (reconstructions, predicted masks) are computed for the few samples shown, on demand,
by :func:`predict_samples`, never for a whole split at once.

Reconstruction and segmentation are scored batch by batch (:class:`ReconstructionScorer`,
:class:`SegmentationScorer`): what they keep per split is one number per sample and a
classes × classes confusion matrix, never the model's outputs, so a big split fits in memory.
The numbers equal Keras's own metrics (``R2Score``, ``MeanIoU``, ``BinaryAccuracy``,
``Precision``, ``Recall``); tests compare them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import ConvasError
from .evaluation import ClassScores, EvaluationError
from .tasks import BCE, DICE, HUBER, MAE, Task, spec

# Probabilities are clipped to this before taking logs (as Keras clips).
_EPSILON = 1e-7


class TaskEvaluationError(EvaluationError):
    """A model could not be evaluated for its task; the message says what to change."""


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else 0.0


def _check_split(split_name: str, n: int) -> None:
    if n == 0:
        raise TaskEvaluationError(f"the {split_name} split is empty; there is nothing to evaluate")


# --------------------------------------------------------------------------------------------
# Multi-label


# How well one label of a multi-label model is recognised (at the result's threshold): the same
# scores as a class's, ``support`` being the number of samples that truly have the label.
LabelScores = ClassScores


@dataclass
class MultiLabelEvaluation:
    """Sigmoid scores of every sample and label, thresholded at ``threshold``.

    ``y_true`` is (N, L) of 0/1; ``probabilities`` (N, L). ``exact_match`` is the fraction of
    samples whose every label is right; ``label_accuracy`` the fraction of right (sample, label)
    pairs (Keras's binary accuracy). ``precision`` and ``recall`` count every (sample, label)
    pair together (Keras's ``Precision`` and ``Recall``, the curves of training). A score above
    the threshold predicts the label (Keras's rule: strictly above)."""

    split_name: str
    label_names: list[str]
    y_true: np.ndarray
    probabilities: np.ndarray
    loss: float | None
    threshold: float
    per_label: list[LabelScores]
    exact_match: float
    label_accuracy: float
    precision: float = 0.0
    recall: float = 0.0

    @classmethod
    def from_arrays(cls, y_true: Any, probabilities: Any, label_names: Sequence[str], split_name: str,
                    loss: float | None = None, threshold: float = 0.5) -> MultiLabelEvaluation:
        """Scores of known sigmoid outputs. ``loss`` None computes the binary cross-entropy."""
        y_true = np.asarray(y_true, dtype=np.float32)
        probabilities = np.asarray(probabilities, dtype=np.float32)
        labels = len(label_names)
        if y_true.ndim != 2 or y_true.shape[1] != labels:
            raise TaskEvaluationError(f"expected true labels shaped (samples, {labels}) for {labels} labels; "
                                      f"got {y_true.shape}")
        if probabilities.shape != y_true.shape:
            raise TaskEvaluationError(f"expected scores shaped {y_true.shape}, one per sample and label; got "
                                      f"{probabilities.shape}")
        _check_split(split_name, len(y_true))
        if not np.isin(y_true, (0.0, 1.0)).all():
            raise TaskEvaluationError("multi-label targets must be 0 or 1 (1 where a label applies); found "
                                      f"values from {float(y_true.min()):.3g} to {float(y_true.max()):.3g}")
        if not 0.0 <= float(threshold) <= 1.0:
            raise TaskEvaluationError(f"the threshold must lie between 0 and 1; got {threshold}")
        if loss is None:
            loss = binary_cross_entropy(y_true, probabilities)
        result = cls(split_name=split_name, label_names=[str(n) for n in label_names], y_true=y_true,
                     probabilities=probabilities, loss=float(loss), threshold=float(threshold), per_label=[],
                     exact_match=0.0, label_accuracy=0.0)
        return result.at_threshold(threshold)

    def at_threshold(self, threshold: float) -> MultiLabelEvaluation:
        """The same predictions scored at another threshold (instant: no model involved)."""
        truth = self.y_true > 0.5
        predicted = self.probabilities > float(threshold)
        tp = (truth & predicted).sum(axis=0)
        fp = (~truth & predicted).sum(axis=0)
        fn = (truth & ~predicted).sum(axis=0)
        per_label = []
        for k, name in enumerate(self.label_names):
            precision, recall = _ratio(tp[k], tp[k] + fp[k]), _ratio(tp[k], tp[k] + fn[k])
            per_label.append(LabelScores(name, precision, recall, _ratio(2 * precision * recall, precision + recall),
                                         int(truth[:, k].sum())))
        right = truth == predicted
        return replace(self, threshold=float(threshold), per_label=per_label,
                       exact_match=float(right.all(axis=1).mean()), label_accuracy=float(right.mean()),
                       precision=_ratio(tp.sum(), tp.sum() + fp.sum()), recall=_ratio(tp.sum(), tp.sum() + fn.sum()))

    @property
    def predicted(self) -> np.ndarray:
        """(N, L) booleans: the labels predicted at the threshold."""
        return self.probabilities > self.threshold

    def __len__(self) -> int:
        return len(self.y_true)

    def wrong_labels(self) -> np.ndarray:
        """How many labels each sample gets wrong at the threshold."""
        return (self.predicted != (self.y_true > 0.5)).sum(axis=1)

    def ranked(self, worst_first: bool = True) -> np.ndarray:
        """Sample indices by how far their scores are from the truth (mean absolute difference),
        the worst first unless asked otherwise."""
        distance = np.abs(self.probabilities - self.y_true).mean(axis=1)
        return np.argsort(-distance if worst_first else distance, kind="stable")

    def macro_average(self) -> LabelScores:
        scores = self.per_label
        return LabelScores("macro average", float(np.mean([s.precision for s in scores])),
                           float(np.mean([s.recall for s in scores])), float(np.mean([s.f1 for s in scores])),
                           sum(s.support for s in scores))


def binary_cross_entropy(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean binary cross-entropy (Keras's ``binary_crossentropy`` on probabilities)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPSILON, 1.0 - _EPSILON)
    y = np.asarray(y_true, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


# --------------------------------------------------------------------------------------------
# Regression


@dataclass
class TargetScores:
    """How well one regression target is predicted."""

    name: str
    mae: float
    rmse: float
    r2: float


@dataclass
class RegressionEvaluation:
    """Predicted and true targets, (N, T) each, and per-target scores. ``worst`` lists sample
    indices by decreasing absolute error (summed over targets)."""

    split_name: str
    target_names: list[str]
    y_true: np.ndarray
    y_pred: np.ndarray
    loss: float | None
    per_target: list[TargetScores]
    mae: float
    r2: float  # the mean of the per-target R² (Keras's R2Score with uniform averaging)
    worst: np.ndarray

    @classmethod
    def from_arrays(cls, y_true: Any, y_pred: Any, target_names: Sequence[str], split_name: str,
                    loss: float | None = None) -> RegressionEvaluation:
        """Scores of known predictions; ``y_true`` and ``y_pred`` are (N, T) (or (N,) for one
        target). ``loss`` None is the mean squared error. A target that never varies has no
        R² (Keras gives 0 when predictions miss it, NaN when they hit it exactly)."""
        y_true = np.asarray(y_true, dtype=np.float64)
        y_pred = np.asarray(y_pred, dtype=np.float64)
        if y_true.ndim == 1:
            y_true = y_true[:, None]
        if y_pred.ndim == 1:
            y_pred = y_pred[:, None]
        targets = len(target_names)
        if y_true.ndim != 2 or y_true.shape[1] != targets:
            raise TaskEvaluationError(f"expected true targets shaped (samples, {targets}) for {targets} "
                                      f"target{'s' if targets != 1 else ''}; got {y_true.shape}")
        if y_pred.shape != y_true.shape:
            raise TaskEvaluationError(f"expected predictions shaped {y_true.shape}, one per sample and target; "
                                      f"got {y_pred.shape}")
        _check_split(split_name, len(y_true))
        error = y_pred - y_true
        mae = np.abs(error).mean(axis=0)
        rmse = np.sqrt((error ** 2).mean(axis=0))
        r2 = r2_scores(y_true, y_pred)
        per_target = [TargetScores(str(name), float(mae[k]), float(rmse[k]), float(r2[k]))
                      for k, name in enumerate(target_names)]
        worst = np.argsort(-np.abs(error).sum(axis=1), kind="stable")
        if loss is None:
            loss = float((error ** 2).mean())
        return cls(split_name=split_name, target_names=[str(n) for n in target_names],
                   y_true=y_true.astype(np.float32), y_pred=y_pred.astype(np.float32), loss=float(loss),
                   per_target=per_target, mae=float(np.abs(error).mean()), r2=float(np.mean(r2)), worst=worst)

    def __len__(self) -> int:
        return len(self.y_true)


def r2_scores(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Each column's coefficient of determination, as Keras's ``R2Score`` computes it: 1 -
    residual / total sum of squares, with an infinite ratio (a constant target missed) read as 0."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    total = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    residual = ((y_true - y_pred) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = 1.0 - residual / total
    return np.where(np.isinf(scores), 0.0, scores)


# --------------------------------------------------------------------------------------------
# Reconstruction


@dataclass
class ReconstructionEvaluation:
    """How close a model's outputs are to its inputs (the clean inputs when it learned to
    denoise, ``noise_stddev`` > 0). ``errors`` is each sample's mean squared error; ``variance``
    the data's pixel variance (a model that outputs the mean image scores about this).
    ``worst``/``best`` list sample indices by error."""

    split_name: str
    errors: np.ndarray
    mse: float
    mae: float
    variance: float
    noise_stddev: float
    loss: float | None
    worst: np.ndarray
    best: np.ndarray

    @classmethod
    def from_arrays(cls, inputs_clean: Any, outputs: Any, split_name: str, noise_stddev: float = 0.0,
                    loss: float | None = None) -> ReconstructionEvaluation:
        """Scores of known reconstructions (all at once; :class:`ReconstructionScorer` streams)."""
        scorer = ReconstructionScorer(split_name, noise_stddev)
        scorer.add(inputs_clean, outputs)
        return scorer.result(loss)

    def __len__(self) -> int:
        return len(self.errors)

    def random(self, count: int, seed: int = 0) -> np.ndarray:
        """``count`` sample indices drawn without repetition (the same ones for the same seed)."""
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(len(self.errors), size=min(count, len(self.errors)), replace=False))


class ReconstructionScorer:
    """Accumulates a reconstruction's scores batch by batch (see :meth:`add`)."""

    def __init__(self, split_name: str, noise_stddev: float = 0.0) -> None:
        self.split_name = split_name
        self.noise_stddev = float(noise_stddev)
        self._errors: list[np.ndarray] = []
        self._absolute = 0.0
        self._sum = 0.0
        self._squares = 0.0
        self._count = 0

    def add(self, inputs_clean: Any, outputs: Any) -> None:
        """Score one batch: the clean images (n, H, W, C) and the model's outputs for them."""
        clean = np.asarray(inputs_clean, dtype=np.float64)
        out = np.asarray(outputs, dtype=np.float64)
        if out.shape != clean.shape:
            raise TaskEvaluationError(f"the model's outputs are {out.shape[1:]} per sample but its inputs are "
                                      f"{clean.shape[1:]}; a reconstruction must have the input's shape: end the "
                                      "design with a layer giving the input's height, width and channels")
        difference = (out - clean).reshape(len(clean), -1)
        self._errors.append((difference ** 2).mean(axis=1))
        self._absolute += float(np.abs(difference).sum())
        self._sum += float(clean.sum())
        self._squares += float((clean ** 2).sum())
        self._count += clean.size

    def result(self, loss: float | None = None) -> ReconstructionEvaluation:
        """The scores of everything added; ``loss`` None is the mean squared error."""
        errors = np.concatenate(self._errors) if self._errors else np.zeros(0)
        _check_split(self.split_name, len(errors))
        mean = self._sum / self._count
        variance = max(self._squares / self._count - mean ** 2, 0.0)
        order = np.argsort(errors, kind="stable")
        mse = float(errors.mean())
        return ReconstructionEvaluation(
            split_name=self.split_name, errors=errors.astype(np.float32), mse=mse,
            mae=self._absolute / self._count, variance=float(variance), noise_stddev=self.noise_stddev,
            loss=mse if loss is None else float(loss), worst=order[::-1].copy(), best=order)


# --------------------------------------------------------------------------------------------
# Segmentation


@dataclass
class SegmentationEvaluation:
    """Pixel confusion matrix (true class as row, predicted as column) over one split, and the
    scores derived from it: per-class IoU (NaN for a class absent from both), their mean over the
    classes present (Keras's ``MeanIoU``), pixel accuracy, and each image's own mean IoU
    (``per_image_iou``) with ``worst`` image indices by it."""

    split_name: str
    class_names: list[str]
    confusion: np.ndarray
    per_class_iou: np.ndarray
    mean_iou: float
    pixel_accuracy: float
    per_image_iou: np.ndarray
    loss: float | None
    worst: np.ndarray = field(default_factory=lambda: np.zeros(0, np.intp))

    @classmethod
    def from_arrays(cls, true_masks: Any, predicted_masks: Any, class_names: Sequence[str], split_name: str,
                    loss: float | None = None) -> SegmentationEvaluation:
        """Scores of known masks, (N, H, W) class indices each (all at once;
        :class:`SegmentationScorer` streams)."""
        scorer = SegmentationScorer(class_names, split_name)
        scorer.add(true_masks, predicted_masks)
        return scorer.result(loss)

    def __len__(self) -> int:
        return len(self.per_image_iou)

    def class_pixels(self) -> np.ndarray:
        """How many pixels of each class the split truly has."""
        return self.confusion.sum(axis=1)


def iou_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """Each class's intersection over union; NaN for a class neither true nor predicted."""
    confusion = np.asarray(confusion, dtype=np.float64)
    hits = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - hits
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, hits / union, np.nan)


class SegmentationScorer:
    """Accumulates a segmentation's pixel confusion and per-image IoU batch by batch."""

    def __init__(self, class_names: Sequence[str], split_name: str) -> None:
        self.class_names = [str(n) for n in class_names]
        self.split_name = split_name
        classes = len(self.class_names)
        if classes < 2:
            raise TaskEvaluationError(f"segmentation needs at least 2 mask classes; the data names {classes}")
        self.confusion = np.zeros((classes, classes), dtype=np.int64)
        self._per_image: list[np.ndarray] = []

    def add(self, true_masks: Any, predicted_masks: Any) -> None:
        """Score one batch of (n, H, W) class-index masks (a trailing axis of 1 is allowed)."""
        truth = _as_masks(true_masks, "true")
        predicted = _as_masks(predicted_masks, "predicted")
        if truth.shape != predicted.shape:
            raise TaskEvaluationError(f"the predicted masks are {predicted.shape[1:]} but the true masks are "
                                      f"{truth.shape[1:]}; the model's output must have the masks' height and width")
        classes = len(self.class_names)
        for name, masks in (("true", truth), ("predicted", predicted)):
            if masks.size and (masks.min() < 0 or masks.max() >= classes):
                raise TaskEvaluationError(
                    f"the {name} masks hold class {int(masks.max()) if masks.max() >= classes else int(masks.min())}"
                    f", but the data names {classes} classes (0 to {classes - 1}); give the model's output "
                    f"{int(masks.max()) + 1} channels or fix the masks")
        n = len(truth)
        # One bincount per batch: image i's pixel (t, p) lands in bin i·C² + t·C + p.
        flat = (np.arange(n, dtype=np.int64)[:, None] * classes * classes
                + truth.reshape(n, -1) * classes + predicted.reshape(n, -1))
        per_image = np.bincount(flat.ravel(), minlength=n * classes * classes).reshape(n, classes, classes)
        self.confusion += per_image.sum(axis=0)
        hits = np.diagonal(per_image, axis1=1, axis2=2).astype(np.float64)
        union = per_image.sum(axis=1) + per_image.sum(axis=2) - hits
        with np.errstate(divide="ignore", invalid="ignore"):
            ious = np.where(union > 0, hits / union, np.nan)
        counted = (union > 0).sum(axis=1)
        self._per_image.append(np.where(counted > 0, np.nansum(ious, axis=1) / np.maximum(counted, 1), 1.0))

    def result(self, loss: float | None = None) -> SegmentationEvaluation:
        per_image = np.concatenate(self._per_image) if self._per_image else np.zeros(0)
        _check_split(self.split_name, len(per_image))
        per_class = iou_from_confusion(self.confusion)
        present = ~np.isnan(per_class)
        mean_iou = float(per_class[present].mean()) if present.any() else 0.0
        total = int(self.confusion.sum())
        return SegmentationEvaluation(
            split_name=self.split_name, class_names=list(self.class_names), confusion=self.confusion.copy(),
            per_class_iou=per_class, mean_iou=mean_iou, pixel_accuracy=_ratio(np.trace(self.confusion), total),
            per_image_iou=per_image.astype(np.float32), loss=None if loss is None else float(loss),
            worst=np.argsort(per_image, kind="stable"))


def _as_masks(masks: Any, which: str) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if masks.ndim != 3:
        raise TaskEvaluationError(f"expected {which} masks shaped (samples, height, width) of class indices; "
                                  f"got {masks.shape}")
    if not np.issubdtype(masks.dtype, np.integer) and not np.array_equal(masks, np.round(masks)):
        raise TaskEvaluationError(f"the {which} masks hold fractions; a mask holds one class index per pixel")
    return masks.astype(np.int64)


def masks_from_outputs(outputs: Any) -> np.ndarray:
    """Class-index masks (n, H, W) of a segmentation model's outputs (n, H, W, C): the most
    probable class of each pixel; one sigmoid channel predicts class 1 above 0.5."""
    outputs = np.asarray(outputs)
    if outputs.ndim != 4:
        raise TaskEvaluationError(f"a segmentation model outputs (height, width, classes) per image; this one "
                                  f"outputs {outputs.shape[1:]}")
    if outputs.shape[-1] == 1:
        return (outputs[..., 0] > 0.5).astype(np.int64)
    return outputs.argmax(axis=-1).astype(np.int64)


TaskEvaluation = MultiLabelEvaluation | RegressionEvaluation | ReconstructionEvaluation | SegmentationEvaluation


# --------------------------------------------------------------------------------------------
# Evaluating a model


def noisy(images: np.ndarray, indices: Sequence[int] | np.ndarray, stddev: float, seed: int = 0,
          high: float = 1.0) -> np.ndarray:
    """``images`` with Gaussian noise added and clipped to the pixel range [0, ``high``], as
    training feeds a denoising autoencoder (:mod:`engine.task_data`; ``stddev`` is in [0, 1]
    pixel units, scaled by ``high``). Each sample's noise depends only on ``seed`` and its index
    in the split, so the pictures shown are the inputs that were scored."""
    images = np.asarray(images, dtype=np.float32)
    if stddev <= 0:
        return images
    out = np.empty_like(images)
    for row, index in enumerate(np.asarray(indices, dtype=np.int64).reshape(-1)):
        rng = np.random.default_rng((int(seed), int(index)))
        noise = rng.normal(0.0, float(stddev) * float(high), size=images.shape[1:]).astype(np.float32)
        out[row] = np.clip(images[row] + noise, 0.0, float(high))
    return out


def _pixel_high(dataset: Any) -> float:
    """The top of the pixel range the dataset's images are in (1 or 255)."""
    pixel_range = getattr(dataset, "pixel_range", None)
    return float(getattr(pixel_range, "scale", 1.0) or 1.0)


def _batches(count: int, batch_size: int) -> Iterator[np.ndarray]:
    for start in range(0, count, max(int(batch_size), 1)):
        yield np.arange(start, min(start + int(batch_size), count))


def _predict(model: Any, images: np.ndarray) -> np.ndarray:
    return np.asarray(model(images, training=False), dtype=np.float32)


def _sigmoid_scores(outputs: np.ndarray) -> np.ndarray:
    """Scores in [0, 1]: outputs outside it are logits (the sigmoid was left to the loss)."""
    if outputs.size and (outputs.min() < 0 or outputs.max() > 1):
        return (1.0 / (1.0 + np.exp(-outputs.astype(np.float64)))).astype(np.float32)
    return outputs


def _softmax_scores(outputs: np.ndarray) -> np.ndarray:
    """Per-pixel class probabilities: outputs that do not sum to 1 go through a softmax."""
    if outputs.shape[-1] == 1:
        return np.concatenate([1.0 - outputs, outputs], axis=-1)
    if outputs.min() < 0 or outputs.max() > 1 or not np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3):
        shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)
    return outputs


def _regression_loss(loss: str, error: np.ndarray) -> float:
    """Mean ``loss`` of prediction errors (Keras's definitions; Huber with delta 1)."""
    if loss == MAE:
        return float(np.abs(error).mean())
    if loss == HUBER:
        absolute = np.abs(error)
        return float(np.where(absolute <= 1.0, 0.5 * error ** 2, absolute - 0.5).mean())
    return float((error ** 2).mean())


def _segmentation_loss(loss: str, masks: np.ndarray, probabilities: np.ndarray) -> float:
    """One batch's sparse categorical cross-entropy, or Keras's Dice loss over the batch."""
    classes = probabilities.shape[-1]
    if loss == DICE:
        one_hot = np.eye(classes, dtype=np.float64)[masks]
        inter = float((one_hot * probabilities).sum())
        return 1.0 - 2.0 * inter / (float(one_hot.sum() + probabilities.sum()) + _EPSILON)
    picked = np.take_along_axis(probabilities, masks[..., None], axis=-1)
    return float(-np.log(np.clip(picked.astype(np.float64), _EPSILON, 1.0)).mean())


def _check_output(model: Any, dataset: Any, task: Task, sample_shape: tuple) -> tuple:
    """The model's output shape (without the batch axis), checked against what ``task`` needs
    of this data; a mismatch names the numbers and the fix."""
    output = tuple(model.outputs[0].shape[1:])
    names = list(getattr(dataset, "class_names", []))
    what = {Task.MULTILABEL: "label", Task.REGRESSION: "target", Task.SEGMENTATION: "class"}.get(task, "")
    if task in (Task.MULTILABEL, Task.REGRESSION):
        wanted = len(names)
        if len(output) != 1 or output[0] != wanted:
            raise TaskEvaluationError(
                f"the model outputs {output} per sample but the data has {wanted} {what}{'s' if wanted != 1 else ''} "
                f"for {task.value}; end the design with a Dense of {wanted} unit{'s' if wanted != 1 else ''}"
                + (" and sigmoid activation" if task is Task.MULTILABEL else " and linear activation"))
    elif task is Task.RECONSTRUCTION:
        if output != tuple(sample_shape):
            raise TaskEvaluationError(
                f"the model outputs {output} per sample but its input images are {tuple(sample_shape)}; a "
                "reconstruction must give back the input's shape: end the design with a layer of that shape")
    elif task is Task.SEGMENTATION:
        classes = len(names)
        if len(output) != 3 or tuple(output[:2]) != tuple(sample_shape[:2]):
            raise TaskEvaluationError(
                f"the model outputs {output} per image but segmentation needs (height, width, classes) at the "
                f"input's size {tuple(sample_shape[:2])}; end the design with a 1×1 Conv2D of {classes} filters")
        if output[2] != classes and not (output[2] == 1 and classes == 2):
            raise TaskEvaluationError(
                f"the model outputs {output[2]} channel{'s' if output[2] != 1 else ''} per pixel but the masks have "
                f"{classes} classes; set the last layer's filters to {classes} (softmax)")
    return output


def evaluate_task(model: Any, dataset: Any, task: Any, batch_size: int = 64, split: str | None = None,
                  loss: str | None = None, noise_stddev: float = 0.0, seed: int = 0) -> Any:
    """Predict one split (see :func:`engine.evaluation.choose_split`) with ``model`` and score it
    for ``task``: a classification gives :class:`engine.evaluation.Evaluation`, the other tasks
    their result class above.

    The split is fed batch by batch; reconstruction and segmentation keep only their running
    scores. ``loss`` names the loss trained with (None: the task's default), computed here as
    Keras defines it. A denoising autoencoder (``noise_stddev`` > 0) gets noisy inputs (see
    :func:`noisy`) and is scored against the clean images.
    """
    from .evaluation import choose_split, evaluate, shape_fits, single_input_output

    task = Task.parse(task) if not isinstance(task, Task) else task
    if task is Task.CLASSIFICATION:
        return evaluate(model, dataset, batch_size=batch_size, split=split)
    split_name, data = choose_split(dataset, split)
    single_input_output(model, f"evaluate it for {task.value}")
    expected = tuple(model.inputs[0].shape[1:])
    if not shape_fits(expected, data.sample_shape):
        raise TaskEvaluationError(f"the {split_name} images are {data.sample_shape} but the model's input is "
                                  f"{expected}; load the dataset at the model's input size")
    _check_output(model, dataset, task, data.sample_shape)
    loss = loss or spec(task).default_loss
    names = list(dataset.class_names)
    n = len(data)

    if task is Task.RECONSTRUCTION:
        scorer = ReconstructionScorer(split_name, noise_stddev)
        losses = 0.0
        for indices in _batches(n, batch_size):
            clean = data.images(indices)
            outputs = _predict(model, noisy(clean, indices, noise_stddev, seed, _pixel_high(dataset)))
            scorer.add(clean, outputs)
            losses += _regression_loss(loss, outputs.astype(np.float64) - clean) * len(indices)
        return scorer.result(losses / n)

    if task is Task.SEGMENTATION:
        segmenter = SegmentationScorer(names, split_name)
        losses = 0.0
        for indices in _batches(n, batch_size):
            masks = np.asarray(data.targets(indices) if hasattr(data, "targets") else data.y[indices])
            masks = masks[..., 0] if masks.ndim == 4 and masks.shape[-1] == 1 else masks
            outputs = _predict(model, data.images(indices))
            probabilities = _softmax_scores(outputs.astype(np.float64))
            segmenter.add(masks, probabilities.argmax(axis=-1))
            losses += _segmentation_loss(loss, masks.astype(np.int64), probabilities) * len(indices)
        return segmenter.result(losses / n)

    outputs = np.concatenate([_predict(model, data.images(indices)) for indices in _batches(n, batch_size)])
    y = np.asarray(data.y, dtype=np.float32)
    if task is Task.MULTILABEL:
        scores = _sigmoid_scores(outputs)
        return MultiLabelEvaluation.from_arrays(y, scores, names, split_name,
                                                loss=binary_cross_entropy(y, scores) if loss == BCE else None)
    if task is Task.REGRESSION:
        y = y.reshape(len(y), -1)
        outputs = outputs.reshape(len(outputs), -1)
        return RegressionEvaluation.from_arrays(y, outputs, names, split_name,
                                                loss=_regression_loss(loss, outputs.astype(np.float64) - y))
    raise ConvasError(f"Convas cannot evaluate the task {task.value!r}")


def predict_samples(model: Any, split: Any, indices: Any, task: Any, noise_stddev: float = 0.0,
                    seed: int = 0, pixel_high: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The inputs the model was given for the samples at ``indices`` (noisy ones when denoising,
    the same noise for the same seed as :func:`evaluate_task`; ``pixel_high`` is the top of the
    data's pixel range) and the model's outputs for them: reconstructions (n, H, W, C) or
    predicted masks as class indices (n, H, W); the other tasks' raw outputs (n, units)."""
    task = Task.parse(task) if not isinstance(task, Task) else task
    indices = np.atleast_1d(np.asarray(indices, dtype=np.intp))
    images = split.images(indices)
    if task is Task.RECONSTRUCTION:
        images = noisy(images, indices, noise_stddev, seed, pixel_high)
    if not len(indices):
        return images, np.zeros((0,), np.float32)
    outputs = _predict(model, images)
    if task is Task.SEGMENTATION:
        return images, masks_from_outputs(outputs)
    return images, outputs
