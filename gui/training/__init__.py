"""Training in the window: the Train panel, its worker thread, dataset box, settings and curves.

Only :class:`TrainPanel` is needed by the window; pyqtgraph and TensorFlow are imported later (the
first time the panel shows, and on the worker thread when a run starts).
"""

from .panel import TrainPanel

__all__ = ["TrainPanel"]
