"""Convas's engine: layer catalogue, design graph, analysis, file formats, Keras bridges.

Pure Python. It never imports Qt, and imports TensorFlow/Keras only inside the functions that
need them, so that analysis and start-up stay instant.
"""

__version__ = "0.1.0"
