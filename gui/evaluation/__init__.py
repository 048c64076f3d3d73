"""Understanding a trained classifier: its scores, its confusions, its samples and what it looks at."""

from .panel import EvaluationPanel

__all__ = ["EvaluationPanel"]
