"""Keep TensorFlow's start-up chatter off stderr (its real errors still arrive as exceptions).

TensorFlow's C++ logging reads ``TF_CPP_MIN_LOG_LEVEL`` once, when TensorFlow is imported: the
oneDNN, CUDA-driver and ``cuInit`` lines of a machine without a GPU are not news to a user.
Call :func:`quiet_tensorflow` before the first ``import keras``; a level the user set is kept.
"""

from __future__ import annotations

import os

TF_LOG_LEVEL = "3"  # 0 all, 1 no INFO, 2 no WARNING, 3 no ERROR (cuInit reports an "error")


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ log and absl's Python log (unless the user asked for them)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)
    try:
        from absl import logging as absl_logging  # ships with TensorFlow; cheap, imports no TF
    except ImportError:
        return
    absl_logging.set_verbosity(absl_logging.ERROR)
