"""Understanding a trained model of any task: its scores, its mistakes, its samples and what it looks at."""

from .panel import EvaluationPanel

__all__ = ["EvaluationPanel"]
