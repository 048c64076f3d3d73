"""Test set-up shared by every test: headless Qt, quiet TensorFlow, the project root importable."""

import os
import sys
import tempfile
import traceback
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Keep tests away from the user's real settings, recent files and recovery folder.
_sandbox = tempfile.mkdtemp(prefix="convas-tests-")
os.environ.setdefault("XDG_CONFIG_HOME", os.path.join(_sandbox, "config"))
os.environ.setdefault("XDG_DATA_HOME", os.path.join(_sandbox, "data"))  # recently-used.xbel, .desktop
os.environ.setdefault("CONVAS_RECOVERY_DIR", os.path.join(_sandbox, "recovery"))
os.environ.setdefault("CONVAS_CACHE_DIR", os.path.join(_sandbox, "cache"))

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.keras_startup import skip_sklearn_for_keras_wrappers  # noqa: E402 - after the path

skip_sklearn_for_keras_wrappers()  # as Convas's entry points do


# pytest-qt fails a test when an exception reaches sys.excepthook while it runs (a Qt slot or
# virtual method raised: PySide6 can only report it there); pytest turns unraisable and thread
# exceptions into errors (pyproject.toml). This catches the rest: an exception reported between
# tests, so that no traceback reaches stderr without failing the run.
_stray_exceptions: list[str] = []


def _record_stray_exception(kind, value, tb) -> None:
    _stray_exceptions.append("".join(traceback.format_exception(kind, value, tb)))
    sys.__excepthook__(kind, value, tb)


sys.excepthook = _record_stray_exception


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _stray_exceptions:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    if _stray_exceptions:
        terminalreporter.section("exceptions raised outside any test", red=True)
        for text in _stray_exceptions:
            terminalreporter.write(text)


@pytest.fixture(scope="module")
def script_server(tmp_path_factory):
    """One Python process for all the generated scripts a test module runs (tests/script_server.py)."""
    from script_server import ScriptServer

    server = ScriptServer(tmp_path_factory.mktemp("script-server") / "stderr.log")
    yield server
    server.close()


@pytest.fixture
def scripts_in_one_process(script_server, monkeypatch):
    """verify_python_source runs its script in the module's shared script server instead of a new
    Python process each time (tests that check the real new process do not use this)."""
    from engine.export import python_source

    monkeypatch.setattr(python_source, "subprocess", script_server.as_subprocess())
    return script_server
