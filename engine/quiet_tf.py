"""Keep TensorFlow's start-up chatter off stderr (its real errors still arrive as exceptions).

TensorFlow's C++ logging reads ``TF_CPP_MIN_LOG_LEVEL`` when TensorFlow is imported: the
``cuInit`` "error" of a machine without a GPU is not news to a user. Since TensorFlow 2.17 a few
lines (oneDNN, CUDA drivers, CPU features) are written by absl before its logging is set up, and
no setting silences them; :func:`importing_tensorflow` holds back what the import writes to the
stderr file descriptor and passes on whatever is not such a line.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from .keras_startup import skip_sklearn_for_keras_wrappers

TF_LOG_LEVEL = "3"  # 0 all, 1 no INFO, 2 no WARNING, 3 no ERROR (cuInit reports an "error")

# What TensorFlow's C++ writes while it loads: absl-style "I0000 00:00:…" lines (I, W or E and a
# date), absl's notice about them, and the second line of the CPU-features notice.
_CHATTER = re.compile(r"^(?:[IWE]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl::InitializeLog\(\)"
                      r"|To enable the following instructions:)")


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ log and absl's Python log (unless the user asked for them), and
    keep Keras's import from loading scikit-learn (:mod:`engine.keras_startup`)."""
    skip_sklearn_for_keras_wrappers()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)
    try:
        from absl import logging as absl_logging  # ships with TensorFlow; cheap, imports no TF
    except ImportError:
        return
    absl_logging.set_verbosity(absl_logging.ERROR)


def is_chatter(line: str) -> bool:
    """True for a line TensorFlow's C++ writes while it loads (see the module docstring)."""
    return bool(_CHATTER.match(line))


@contextmanager
def importing_tensorflow() -> Iterator[None]:
    """Around the first ``import keras``: :func:`quiet_tensorflow`, and the lines written to
    file descriptor 2 meanwhile are held back; all but TensorFlow's chatter is then written to
    stderr (from any thread, so nothing real is lost). A user's own ``TF_CPP_MIN_LOG_LEVEL``
    below 3 shows everything."""
    quiet_tensorflow()
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") != TF_LOG_LEVEL:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (a GUI without a console)
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            held.seek(0)
            text = held.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(keepends=True) if not is_chatter(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
