"""The static checkers configured in pyproject.toml find nothing: ruff (style, imports, likely
bugs) over the code, the tests, the benchmarks and the packaging scripts, and mypy (types) over
engine/, gui/, packaging/ and main.py. Each takes a few seconds; run one alone with
``uv run ruff check`` or ``uv run mypy``."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 600
CHECKED = ("engine", "gui", "tests", "benchmarks", "packaging", "main.py")


def run_checker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)


@pytest.mark.parametrize("command", [
    ("ruff", "check", "--no-fix", "--output-format", "concise", *CHECKED),
    ("mypy", "--no-error-summary", "--no-pretty", "engine", "gui", "main.py"),
], ids=["ruff", "mypy"])
def test_checker_finds_nothing(command: tuple[str, ...]) -> None:
    result = run_checker(*command)
    if result.returncode != 0:
        findings = (result.stdout + result.stderr).strip()
        pytest.fail(f"{' '.join(command)} found:\n{findings}", pytrace=False)


def test_imports_are_sorted(tmp_path: Path) -> None:
    """ruff's isort (I001) sorts imports but would also rewrap them one name per line, so the
    configuration ignores I001; here ruff sorts a copy, and only a change of order (the syntax
    tree differs, not just the line breaks) is a finding."""
    for name in (*CHECKED, "pyproject.toml"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "I001", "--fix", "--quiet", *CHECKED],
                   cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    unsorted = [str(path.relative_to(tmp_path)) for path in sorted(tmp_path.rglob("*.py"))
                if ast.dump(ast.parse(path.read_text("utf-8")))
                != ast.dump(ast.parse((ROOT / path.relative_to(tmp_path)).read_text("utf-8")))]
    assert not unsorted, f"imports out of order (`ruff check --select I001 --diff FILE` shows how): {unsorted}"
