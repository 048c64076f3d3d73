"""Test set-up shared by every test: headless Qt, quiet TensorFlow, the project root importable."""

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Keep tests away from the user's real settings, recent files and recovery folder.
_sandbox = tempfile.mkdtemp(prefix="convas-tests-")
os.environ.setdefault("XDG_CONFIG_HOME", os.path.join(_sandbox, "config"))
os.environ.setdefault("CONVAS_RECOVERY_DIR", os.path.join(_sandbox, "recovery"))

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
