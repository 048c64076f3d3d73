"""The static checkers configured in pyproject.toml find nothing: ruff (style, imports, likely
bugs) over the code, the tests and the benchmarks, and mypy (types) over engine/, gui/ and
main.py. Each takes a few seconds; run one alone with ``uv run ruff check`` or ``uv run mypy``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 600


def run_checker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)


@pytest.mark.parametrize("command", [
    ("ruff", "check", "--no-fix", "--output-format", "concise", "engine", "gui", "tests", "benchmarks", "main.py"),
    ("mypy", "--no-error-summary", "--no-pretty", "engine", "gui", "main.py"),
], ids=["ruff", "mypy"])
def test_checker_finds_nothing(command: tuple[str, ...]) -> None:
    result = run_checker(*command)
    if result.returncode != 0:
        findings = (result.stdout + result.stderr).strip()
        pytest.fail(f"{' '.join(command)} found:\n{findings}", pytrace=False)
