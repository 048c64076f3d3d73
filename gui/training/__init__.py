"""Training in the window: the Train panel, its worker thread, dataset box, settings and curves.

The package imports nothing itself, so the widget-free parts (:mod:`.session`, :mod:`.loading`,
:mod:`.worker`, :mod:`.series`, :mod:`.pacing`) load without any widget; the window takes
:class:`.panel.TrainPanel` from its module. pyqtgraph and TensorFlow are imported later (the first
time the panel shows, and on the worker thread when a run starts).
"""
