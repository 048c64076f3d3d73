"""One Python process that runs many generated scripts in turn, so that a test module pays
TensorFlow's import (about 15 s on CI) once instead of once per script.

``ScriptServer.run`` takes the arguments ``subprocess.run`` is given for ``python -c CODE ARGS...``
and answers with a ``subprocess.CompletedProcess``: a test swaps it in for the ``subprocess`` module
of the code under test (``ScriptServer.as_subprocess``). Each script runs as ``python -c`` would run
it: a fresh ``__main__`` namespace, its own ``sys.argv``, working directory, ``sys.path`` and
captured stdout/stderr, an exit code from ``SystemExit`` or 1 with the traceback on stderr, and
Keras's session cleared first, so that automatic layer names start again as in a new process.
At least one test per feature must still run the real new process; this only spares the repeats.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

_SERVER = r"""
import contextlib, io, json, os, sys, traceback
replies = sys.stdout
sys.stdout = sys.stderr  # only replies reach the pipe
import keras
home, base_path = os.getcwd(), list(sys.path)
for line in sys.stdin:
    request = json.loads(line)
    keras.backend.clear_session()
    os.chdir(request["cwd"])
    sys.argv, sys.path[:] = request["argv"], base_path
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            exec(compile(request["code"], "<string>", "exec"), {"__name__": "__main__"})
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
    os.chdir(home)
    replies.write(json.dumps({"returncode": code, "stdout": out.getvalue(), "stderr": err.getvalue()}) + "\n")
    replies.flush()
"""


class ScriptServer:
    """A long-lived ``python -c`` stand-in; ``close()`` ends it."""

    def __init__(self, log: Path) -> None:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        self._log = open(log, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._process = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._log, text=True, env=env)
        self.runs = 0

    def run(self, args, cwd=None, **_ignored) -> subprocess.CompletedProcess:
        """Run ``[sys.executable, "-c", code, *argv]`` like ``subprocess.run(..., text=True)``."""
        assert list(args[:2]) == [sys.executable, "-c"], args
        assert self._process.stdin is not None and self._process.stdout is not None
        request = {"code": args[2], "argv": ["-c", *map(str, args[3:])], "cwd": str(cwd or os.getcwd())}
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        assert line, f"the script server ended (exit code {self._process.poll()}); see {self._log.name}"
        reply = json.loads(line)
        self.runs += 1
        return subprocess.CompletedProcess(list(args), reply["returncode"], reply["stdout"], reply["stderr"])

    def as_subprocess(self) -> types.SimpleNamespace:
        """What to put in place of a module's ``subprocess`` so that its ``subprocess.run`` comes here."""
        return types.SimpleNamespace(run=self.run, TimeoutExpired=subprocess.TimeoutExpired,
                                     PIPE=subprocess.PIPE, DEVNULL=subprocess.DEVNULL)

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait()
        self._log.close()
