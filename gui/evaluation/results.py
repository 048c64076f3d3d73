"""What every evaluation view shows from: the model, the evaluated split and its scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.datasets import Dataset, Split
from engine.evaluation import Evaluation


@dataclass
class Results:
    """A finished evaluation with what is needed to show its samples and look inside the model."""

    model: Any
    dataset: Dataset
    evaluation: Evaluation

    @property
    def split(self) -> Split:
        return getattr(self.dataset, self.evaluation.split_name)

    def __len__(self) -> int:
        return len(self.evaluation)

    def image(self, index: int) -> np.ndarray:
        """The ``(H, W, C)`` image of one sample, as the model saw it."""
        return self.split.images([int(index)])[0]

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
