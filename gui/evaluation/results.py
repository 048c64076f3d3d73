"""What every evaluation view shows from: the model, the evaluated split and its scores
(:class:`Results` for a classifier, :class:`TaskResults` for the other tasks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.datasets import Dataset, Split
from engine.evaluation import Evaluation
from engine.task_evaluation import (
    MultiLabelEvaluation, ReconstructionEvaluation, RegressionEvaluation, SegmentationEvaluation, TaskEvaluation,
)
from engine.tasks import Task


class _OnSplit:
    """The evaluated split of a result that holds ``dataset`` and ``evaluation``, and its images."""

    dataset: Dataset
    evaluation: Any

    @property
    def split(self) -> Split:
        return getattr(self.dataset, self.evaluation.split_name)

    def __len__(self) -> int:
        return len(self.evaluation)

    def image(self, index: int) -> np.ndarray:
        """The ``(H, W, C)`` image of one sample, as the model saw it."""
        return self.split.images([int(index)])[0]


@dataclass
class Results(_OnSplit):
    """A finished evaluation with what is needed to show its samples and look inside the model."""

    model: Any
    dataset: Dataset
    evaluation: Evaluation

    def predicted(self, index: int) -> int:
        return int(self.evaluation.probabilities[index].argmax())

    def is_wrong(self, index: int) -> bool:
        return self.predicted(index) != int(self.evaluation.y_true[index])

    def name(self, class_index: int) -> str:
        return self.evaluation.class_names[class_index]

    def caption(self, index: int) -> str:
        """"pred 7 (0.83)" over "true 1": what the model said, how sure, and the truth."""
        pred = self.predicted(index)
        probability = float(self.evaluation.probabilities[index, pred])
        return f"pred {self.name(pred)} ({probability:.2f})\ntrue {self.name(int(self.evaluation.y_true[index]))}"

    def tooltip(self, index: int) -> str:
        ev = self.evaluation
        true = int(ev.y_true[index])
        pred = self.predicted(index)
        verdict = "wrong" if pred != true else "right"
        return (f"Sample {index} of the {ev.split_name} split ({verdict})\n"
                f"True class: {self.name(true)} (probability {ev.probabilities[index, true]:.3f})\n"
                f"Predicted: {self.name(pred)} (probability {ev.probabilities[index, pred]:.3f})")


@dataclass
class TaskResults(_OnSplit):
    """A finished evaluation of a task other than classification (:mod:`engine.task_evaluation`),
    with what its views need: the model (for the pictures computed on demand), the data, and the
    noise a denoising autoencoder was given. It captions samples as :class:`Results` does, so
    the sample grids and the feature-map view take either."""

    model: Any
    dataset: Dataset
    task: Task
    evaluation: TaskEvaluation
    noise_stddev: float = 0.0
    seed: int = 0
    target: int = 0  # the regression target the captions speak of

    def mask(self, index: int) -> np.ndarray:
        """The true (H, W) mask of one sample of a segmentation split."""
        split = self.split
        mask = np.asarray(split.targets([int(index)])[0] if hasattr(split, "targets") else split.y[int(index)])
        return mask[..., 0] if mask.ndim == 3 else mask

    def pixel_high(self) -> float:
        """The top of the pixel range of the data (1 or 255), for the noise of denoising."""
        return float(getattr(getattr(self.dataset, "pixel_range", None), "scale", 1.0) or 1.0)

    def names(self) -> list[str]:
        ev = self.evaluation
        if isinstance(ev, MultiLabelEvaluation):
            return ev.label_names
        if isinstance(ev, RegressionEvaluation):
            return ev.target_names
        if isinstance(ev, SegmentationEvaluation):
            return ev.class_names
        return []

    def is_wrong(self, index: int) -> bool:
        """Multi-label: a label wrong at the threshold; regression: an error above twice the
        target's RMSE (an outlier, not merely the worse half); reconstruction: an error above the
        data's variance (worse than the mean image); segmentation: an image IoU below 0.5."""
        ev, index = self.evaluation, int(index)
        if isinstance(ev, MultiLabelEvaluation):
            return bool((ev.predicted[index] != (ev.y_true[index] > 0.5)).any())
        if isinstance(ev, RegressionEvaluation):
            t = self.target
            return bool(abs(ev.y_pred[index, t] - ev.y_true[index, t]) > 2 * ev.per_target[t].rmse)
        if isinstance(ev, ReconstructionEvaluation):
            return bool(ev.errors[index] > ev.variance)
        return bool(ev.per_image_iou[index] < 0.5)

    def caption(self, index: int) -> str:
        ev, index = self.evaluation, int(index)
        if isinstance(ev, MultiLabelEvaluation):
            return (f"pred {label_list(ev.label_names, ev.predicted[index])}\n"
                    f"true {label_list(ev.label_names, ev.y_true[index] > 0.5)}")
        if isinstance(ev, RegressionEvaluation):
            t = self.target
            return f"pred {number(ev.y_pred[index, t])}\ntrue {number(ev.y_true[index, t])}"
        if isinstance(ev, ReconstructionEvaluation):
            return f"MSE {ev.errors[index]:.4f}"
        return f"IoU {ev.per_image_iou[index]:.2f}"

    def tooltip(self, index: int) -> str:
        ev, index = self.evaluation, int(index)
        head = f"Sample {index} of the {ev.split_name} split"
        if isinstance(ev, MultiLabelEvaluation):
            scores = ", ".join(f"{name} {p:.2f}" for name, p in zip(ev.label_names, ev.probabilities[index]))
            return f"{head}\nScores: {scores}\nThreshold: {ev.threshold:.2f}"
        if isinstance(ev, RegressionEvaluation):
            rows = [f"{name}: predicted {number(ev.y_pred[index, k])}, true {number(ev.y_true[index, k])}"
                    for k, name in enumerate(ev.target_names)]
            return "\n".join([head, *rows])
        if isinstance(ev, ReconstructionEvaluation):
            return f"{head}\nMean squared error {ev.errors[index]:.5f} (data variance {ev.variance:.5f})"
        return f"{head}\nMean IoU of this image {ev.per_image_iou[index]:.3f}"


def label_list(names: list[str], chosen: Any) -> str:
    """The names where ``chosen`` is true, comma-separated ("none" when there are none)."""
    picked = [name for name, on in zip(names, np.asarray(chosen).reshape(-1)) if on]
    return ", ".join(picked) if picked else "none"


def number(value: Any) -> str:
    """A predicted or true value, short: 4 significant digits."""
    return f"{float(value):.4g}"
