"""Understanding a trained model of any task but single-label classification (which
:mod:`engine.evaluation` scores): multi-label, regression, reconstruction and segmentation.

Each task has a result class holding what its Evaluation view shows, computed here (numpy only)
so the GUI, the CLI and tests show the same numbers; each can be made from known arrays
(``from_arrays``) without TensorFlow. :func:`evaluate_task` runs a model over one split and
returns the result of the task (a classification gives :class:`engine.evaluation.Evaluation`).
Pictures (reconstructions, predicted masks) are computed for the few samples shown, on demand,
by :func:`predict_samples`, never for a whole split at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ConvasError


@dataclass
class LabelScores:
    """How well one label of a multi-label model is recognised (at the result's threshold);
    ``support`` is the number of samples that truly have it."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class MultiLabelEvaluation:
    """Sigmoid scores of every sample and label, thresholded at ``threshold``.

    ``y_true`` is (N, L) of 0/1; ``probabilities`` (N, L). ``exact_match`` is the fraction of
    samples whose every label is right; ``label_accuracy`` the fraction of right (sample, label)
    pairs (Keras's binary accuracy)."""

    split_name: str
    label_names: list[str]
    y_true: np.ndarray
    probabilities: np.ndarray
    loss: float | None
    threshold: float
    per_label: list[LabelScores]
    exact_match: float
    label_accuracy: float


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


TaskEvaluation = MultiLabelEvaluation | RegressionEvaluation | ReconstructionEvaluation | SegmentationEvaluation


class TaskEvaluationError(ConvasError):
    """A model could not be evaluated for its task; the message says what to change."""


def evaluate_task(model: Any, dataset: Any, task: Any, batch_size: int = 64, split: str | None = None,
                  loss: str | None = None, noise_stddev: float = 0.0) -> Any:
    """Predict one split (see :func:`engine.evaluation.choose_split`) with ``model`` and score it
    for ``task``: a classification gives :class:`engine.evaluation.Evaluation`, the other tasks
    their result class above."""
    raise NotImplementedError  # contract: the implementation lands with issue 15's engine work


def predict_samples(model: Any, split: Any, indices: Any, task: Any, noise_stddev: float = 0.0,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The inputs the model was given for the samples at ``indices`` (noisy ones when denoising,
    the same noise for the same seed) and the model's outputs for them: reconstructions (n, H, W,
    C) or predicted masks as class indices (n, H, W)."""
    raise NotImplementedError  # contract: the implementation lands with issue 15's engine work
